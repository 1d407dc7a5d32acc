"""Edge API for the terminal link: terminal keys for LOGIN, heartbeats and online status.

POST /edge/v1/terminals             {}  -> {ok, merchant_name, params_ver, terminals: [{terminal_id, key_box}]}
POST /edge/v1/terminals/heartbeat   {reported_at, terminals: [{terminal_id, online, last_seen,
                                                               offline_pending, terminal_offline_pending}]}
                                        -> {ok, updated, skipped: [terminal_id], stale: [terminal_id],
                                            server_time}

Both are signed edge requests (edge_common.authenticate). Keys travel only in boxes that the
calling agent alone can open (services/edge_link.py). A report's counts (offline_pending: the
terminal's records the agent holds for upload; terminal_offline_pending: what the terminal said
it holds) are optional, stored with the time of the report; operators read them at
GET /cards/v1/terminals (api/terminal_status.py). A terminal that is not the agent's is named
in `skipped` and nothing is written for it.

`reported_at` (Unix milliseconds, an integer; optional for older agents, which are ordered by the
cloud's arrival time) orders the reports: a terminal whose stored report is as new or newer is
named in `stale` and nothing is written for it, so a late retry of an older report never
overwrites newer counts (services/edge_link.py). A bad `reported_at` is a 400 that writes nothing.
"""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.api.edge_common import authenticate, ok
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.services.edge_link import EdgeLinkService
from chalicelib.store.terminals import TerminalLinkStore

edge_terminals = Blueprint(__name__)


def _service() -> EdgeLinkService:
    c = container.current()
    return EdgeLinkService(c.directory, TerminalLinkStore(), c.clock)


@edge_terminals.route("/edge/v1/terminals", methods=["POST"])
@domain_errors_to_http
def terminal_list() -> Response:
    agent, _body = authenticate(edge_terminals)
    return ok(_service().terminal_list(agent))


@edge_terminals.route("/edge/v1/terminals/heartbeat", methods=["POST"])
@domain_errors_to_http
def terminal_heartbeat() -> Response:
    agent, body = authenticate(edge_terminals)
    return ok(_service().record_heartbeat(agent, body.get("terminals"), body.get("reported_at")))
