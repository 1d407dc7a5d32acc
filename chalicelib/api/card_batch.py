"""``POST /edge/v1/cards/pay-batch``: many CARD_PAYs of one edge agent in one signed request.

Request: ``{"items": [{terminal_id, txn, card, amount_fen, ts}, ...]}`` (1 to MAX_ITEMS items, each
exactly what ``/edge/v1/cards/pay`` takes). Answer 200: ``{"ok": true, "results": [{"status",
"body"}, ...]}``, one per item in the same order, where ``status`` and ``body`` are what the single
endpoint would have answered for that item alone: 200 with the result code (``ok`` false for a
refusal), 400 for a malformed item, 404 for a terminal that is not the calling agent's (nothing
booked, and the same answer as for an unknown id), 409 for a txn used for another request. A
repeated (terminal, txn) gets its first answer, whether the first came alone or in a batch.

The request is authenticated once and its nonce claimed once (its own PutItem, before any item is
applied), so a replayed batch is refused 401 as a whole and changes nothing. A malformed envelope
(no item list, too many items) is 400 and changes nothing.
"""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.api.edge_common import authenticate, field, terminal_of
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.domain.errors import DomainError, InvalidRequest
from chalicelib.services.card_batch import BatchItem, CardBatchService, ItemAnswer
from chalicelib.services.card_container import card_services
from chalicelib.store.directory import EdgeAgentInfo

card_batch = Blueprint(__name__)

MAX_ITEMS = 100


@card_batch.route("/edge/v1/cards/pay-batch", methods=["POST"])
@domain_errors_to_http
def card_pay_batch() -> Response:
    agent, body = authenticate(card_batch)  # the nonce is claimed here, once for the batch
    raw = field(body, "items", list)
    if not 1 <= len(raw) <= MAX_ITEMS:
        raise InvalidRequest(f"items: 1 to {MAX_ITEMS} payments")
    parsed = [_item(agent, r) for r in raw]
    valid = [p for p in parsed if isinstance(p, BatchItem)]
    answers = iter(_service().pay(valid))
    results = [next(answers) if isinstance(p, BatchItem) else p for p in parsed]
    return Response(body={"ok": True, "results": [r.to_dict() for r in results]}, status_code=200,
                    headers={"Content-Type": "application/json"})


def _item(agent: EdgeAgentInfo, raw: object) -> BatchItem | ItemAnswer:
    """A payment to apply, or the answer the single endpoint gives such a request."""
    try:
        if not isinstance(raw, dict):
            raise InvalidRequest("body must be a JSON object")
        terminal = terminal_of(agent, raw)
        txn, card_no = field(raw, "txn", int), field(raw, "card", str)
        amount_fen = field(raw, "amount_fen", int)
        field(raw, "ts", int)  # as the single endpoint: a bad field is a bad request
    except DomainError as error:
        return ItemAnswer.of_error(error)
    return BatchItem(terminal, txn, card_no, amount_fen)


def _service() -> CardBatchService:
    current = container.current()
    services = card_services(current)
    return CardBatchService(current.settings, services.cards, services.rules, current.directory, current.clock)
