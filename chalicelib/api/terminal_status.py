"""Operators' view of their terminals' link status, as the edge agents last reported it.

GET /cards/v1/terminals -> {terminals: [{terminal_id, name, site_id, status, online, last_seen_at,
                                          terminal_offline_pending, agent_offline_pending,
                                          status_reported_at}]}

`terminal_offline_pending` is what the terminal said it holds (its HEARTBEAT), `agent_offline_pending`
the terminal's records the edge agent still has to upload (each null: never reported, or the last
report did not carry it), `status_reported_at` the cloud's clock, in whole seconds, when the report
they came with was stored (null: no report yet). It is never the agent's own time of the report,
which only orders the reports (store/terminals.py). A terminal whose counts stay above zero while
`status_reported_at` is recent is a site whose payments have not reached the cloud.

Same interim operator token as the other merchant operator routes (api/cards.py): headers
`X-ScanPay-Merchant: <merchant_id>` and `Authorization: Bearer <token>`; anything else is 401.
"""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.api.operator_auth import operator_merchant
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.store.terminals import TerminalLinkStore

terminal_status = Blueprint(__name__)


@terminal_status.route("/cards/v1/terminals", methods=["GET"])
@domain_errors_to_http
def list_terminals() -> Response:
    merchant_id = operator_merchant(terminal_status.current_request.headers)
    terminals = [t.to_dict() for t in TerminalLinkStore().merchant_terminals(merchant_id)]
    return Response(body={"terminals": terminals}, status_code=200, headers={"Content-Type": "application/json"})
