"""The terminals' link status (online, last seen, offline records pending) as the edge agents report it.

The only writes to a terminal item on the edge path: one conditional UpdateItem per reported
terminal. The condition does two jobs: the terminal must belong to the reporting agent (a
missing item has no agent_id, so nothing is ever created here), and a report older than the one
stored (reports can arrive out of order) cannot move last_seen back.

Reads for the operators: a merchant's terminals, one Query on the `by_merchant` index (eventually
consistent like every index read: a report stored a moment ago may show on the next read).
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import UpdateError

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


class TerminalLinkStore:
    def record_link_status(self, agent_id: str, report: LinkReport, reported_at: int) -> bool:
        """True when stored; False for a terminal that is not this agent's, or a stale report.
        A count the report does not carry is removed, so nobody reads an old one as current."""
        condition = (TerminalModel.agent_id == agent_id) & (
            TerminalModel.last_seen_at.does_not_exist() | (TerminalModel.last_seen_at <= report.last_seen_at))
        actions = [TerminalModel.online.set(report.online), TerminalModel.last_seen_at.set(report.last_seen_at),
                   TerminalModel.status_reported_at.set(reported_at)]
        for attribute, value in ((TerminalModel.terminal_offline_pending, report.terminal_offline_pending),
                                 (TerminalModel.agent_offline_pending, report.agent_offline_pending)):
            actions.append(attribute.remove() if value is None else attribute.set(value))
        try:
            TerminalModel(report.terminal_id).update(actions=actions, condition=condition)
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def merchant_terminals(self, merchant_id: str) -> list[TerminalStatus]:
        """Every terminal of a merchant with its link status, by terminal id."""
        return [TerminalStatus(item.terminal_id, item.name or "", item.site_id, item.status, bool(item.online),
                               int(item.last_seen_at or 0), _optional_int(item.terminal_offline_pending),
                               _optional_int(item.agent_offline_pending), _optional_int(item.status_reported_at))
                for item in TerminalModel.by_merchant.query(merchant_id)]
