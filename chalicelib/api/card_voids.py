"""Edge API: void of a card payment the agent refused after an online attempt that may have landed.

POST /edge/v1/cards/void  {terminal_id, txn}
    -> 200 {ok, terminal_id, txn, outcome: "reversed", reversed_fen, balance_fen, ...}  a booked payment given back
    -> 200 {ok, terminal_id, txn, outcome: "never_booked"}  nothing was booked; the txn can never book now
A repeat gets the same answer. A malformed request is 400, a terminal that is not the calling
agent's 404, a txn that is not a card payment (or a card that holds no account any more) 409,
a card too busy to write 503 (try again); each changes nothing. A signed edge request
(edge_common.authenticate); the rules are in services/card_voids.py.
"""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.api.edge_common import authenticate, field, ok, terminal_of
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.domain.errors import InvalidRequest
from chalicelib.services.card_container import card_services
from chalicelib.services.card_voids import CardVoidService
from chalicelib.store.txn_voids import CardVoidStore

card_voids = Blueprint(__name__)

MAX_TXN = 2**63 - 1  # the terminal's txn: a non-negative integer (protocol.md)


@card_voids.route("/edge/v1/cards/void", methods=["POST"])
@domain_errors_to_http
def card_void() -> Response:
    agent, body = authenticate(card_voids)
    txn = field(body, "txn", int)
    if not 0 <= txn <= MAX_TXN:
        raise InvalidRequest("txn must be a non-negative integer")
    terminal = terminal_of(agent, body)
    services = card_services(container.current())
    return ok(CardVoidService(services.cards, CardVoidStore(), services.container.clock).void(terminal, txn))
