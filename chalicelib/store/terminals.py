"""The terminals' link status (online, last seen, offline records pending) as the edge agents report it.

The only writes to a terminal item on the edge path: one conditional UpdateItem per reported
terminal. The condition, checked by DynamoDB in that same write (never a read-then-write), does
three jobs:
- the terminal must belong to the reporting agent (a missing item has no agent_id, so nothing is
  ever created here);
- the report must be newer than the one stored: `status_report_ms` holds the stored report's own
  time (Unix ms, written in the same UpdateItem; an item without it takes any report), and reports
  can arrive out of order (an HTTP retry of an older report landing after a newer one), so an older
  or equal one changes nothing and is answered as stale;
- a report cannot move last_seen back. A last_seen of 0 means the agent has not seen the terminal
  since it started: it leaves the stored last_seen as it is.
Only when the write fails does one consistent read of the item's agent_id tell "stale" from "not
this agent's"; that read labels the answer, it never decides a write.

`status_reported_at`, which operators read, stays the cloud's clock when the report was stored
(whole seconds): the report's own time is the agent's clock, which may run ahead of ours.

Reads for the operators: a merchant's terminals, one Query on the `by_merchant` index (eventually
consistent like every index read: a report stored a moment ago may show on the next read).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from chalicelib.store.conditional import update_if
from chalicelib.store.models import TerminalModel


@dataclass(frozen=True)
class LinkReport:
    """One terminal's line of an agent's status report, checked (services/edge_link.py)."""

    terminal_id: str
    online: bool
    last_seen_at: int
    terminal_offline_pending: int | None = None  # None: the agent did not say
    agent_offline_pending: int | None = None


@dataclass(frozen=True)
class TerminalStatus:
    terminal_id: str
    name: str
    site_id: str
    status: str
    online: bool
    last_seen_at: int
    terminal_offline_pending: int | None
    agent_offline_pending: int | None
    status_reported_at: int | None

    def to_dict(self) -> dict:
        return {"terminal_id": self.terminal_id, "name": self.name, "site_id": self.site_id,
                "status": self.status, "online": self.online, "last_seen_at": self.last_seen_at,
                "terminal_offline_pending": self.terminal_offline_pending,
                "agent_offline_pending": self.agent_offline_pending,
                "status_reported_at": self.status_reported_at}


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


class LinkWrite(Enum):
    STORED = "stored"
    STALE = "stale"  # the stored report is as new or newer (or has a later last_seen)
    NOT_THE_AGENTS = "not_the_agents"  # no such terminal, or another agent's


class TerminalLinkStore:
    def record_link_status(self, agent_id: str, report: LinkReport, report_ms: int, stored_at: int) -> LinkWrite:
        """Store the report when it is newer than the stored one. report_ms: the report's own time (Unix
        ms), which orders the reports; stored_at: the cloud's clock now (whole seconds), what operators
        see as status_reported_at. A count the report does not carry is removed, so nobody reads an
        old one as current."""
        condition = (TerminalModel.agent_id == agent_id) & (
            TerminalModel.status_report_ms.does_not_exist() | (TerminalModel.status_report_ms < report_ms))
        actions = [TerminalModel.online.set(report.online), TerminalModel.status_report_ms.set(report_ms),
                   TerminalModel.status_reported_at.set(stored_at)]
        if report.last_seen_at > 0:
            condition &= (TerminalModel.last_seen_at.does_not_exist()
                          | (TerminalModel.last_seen_at <= report.last_seen_at))
            actions.append(TerminalModel.last_seen_at.set(report.last_seen_at))
        for attribute, value in ((TerminalModel.terminal_offline_pending, report.terminal_offline_pending),
                                 (TerminalModel.agent_offline_pending, report.agent_offline_pending)):
            actions.append(attribute.remove() if value is None else attribute.set(value))
        if not update_if(TerminalModel(report.terminal_id), actions, condition):
            return _why_not_stored(agent_id, report.terminal_id)
        return LinkWrite.STORED

    def merchant_terminals(self, merchant_id: str) -> list[TerminalStatus]:
        """Every terminal of a merchant with its link status, by terminal id."""
        return [TerminalStatus(item.terminal_id, item.name or "", item.site_id, item.status, bool(item.online),
                               int(item.last_seen_at or 0), _optional_int(item.terminal_offline_pending),
                               _optional_int(item.agent_offline_pending), _optional_int(item.status_reported_at))
                for item in TerminalModel.by_merchant.query(merchant_id)]


def _why_not_stored(agent_id: str, terminal_id: str) -> LinkWrite:
    """After a failed condition: the agent's own terminal means the report was stale."""
    try:
        item = TerminalModel.get(terminal_id, consistent_read=True, attributes_to_get=["agent_id"])
    except TerminalModel.DoesNotExist:
        return LinkWrite.NOT_THE_AGENTS
    return LinkWrite.STALE if item.agent_id == agent_id else LinkWrite.NOT_THE_AGENTS
