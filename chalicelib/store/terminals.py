"""The terminals' link status (online, last seen) as the edge agents report it.

The only writes to a terminal item on the edge path: one conditional UpdateItem per reported
terminal. The condition does two jobs: the terminal must belong to the reporting agent (a
missing item has no agent_id, so nothing is ever created here), and a report older than the one
stored (reports can arrive out of order) cannot move last_seen back.
"""
from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.store.models import TerminalModel


class TerminalLinkStore:
    def record_link_status(self, agent_id: str, terminal_id: str, online: bool, last_seen_at: int) -> bool:
        """True when stored; False for a terminal that is not this agent's, or a stale report."""
        condition = (TerminalModel.agent_id == agent_id) & (
            TerminalModel.last_seen_at.does_not_exist() | (TerminalModel.last_seen_at <= last_seen_at))
        try:
            TerminalModel(terminal_id).update(
                actions=[TerminalModel.online.set(online), TerminalModel.last_seen_at.set(last_seen_at)],
                condition=condition)
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True
