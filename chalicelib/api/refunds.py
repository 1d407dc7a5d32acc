"""Merchant refunds over HTTP, for the counter's operator (the console will call the same routes).

    POST /refunds/v1/orders/{order_id}        {"request_no": 1, "refund_fen": 500, "reason": "..."}
    GET  /refunds/v1/orders/{order_id}/{request_no}

Authenticated like the other merchant routes (api/cards.py): headers `X-ScanPay-Merchant:
<merchant_id>` and `Authorization: Bearer <operator token>`; a merchant can only refund its own orders
(another merchant's order answers 404, exactly as an unknown one, so ids cannot be probed).

`request_no` numbers the merchant's refunds of one order (1, 2, ...): repeating a request with the same
number is idempotent (the platform refunds once, the ledger books once); the same number with another
amount is 409. Answers: 200 REFUNDED, 202 PENDING (the platform has not confirmed yet: ask again with
GET, or repeat the POST), 409 FAILED (the platform refused; nothing was booked). Malformed requests are
400 and change nothing.
"""
from __future__ import annotations

import logging

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.api.operator_auth import json_object, operator_merchant
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.domain.errors import InvalidRequest

refunds = Blueprint(__name__)
log = logging.getLogger(__name__)

MAX_REASON_CHARS = 80  # WeChat's refund_desc limit
STATUS_HTTP = {"REFUNDED": 200, "PENDING": 202, "FAILED": 409}


def _whole(body: dict, name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be a whole number")
    return value


def _answer(answer: dict) -> Response:
    status = STATUS_HTTP.get(answer["status"], 200)
    return Response(body={"ok": status == 200, **answer}, status_code=status,
                    headers={"Content-Type": "application/json"})


@refunds.route("/refunds/v1/orders/{order_id}", methods=["POST"])
@domain_errors_to_http
def refund_order(order_id: str) -> Response:
    merchant_id = operator_merchant(refunds.current_request.headers)
    body = json_object(refunds.current_request.raw_body)
    unknown = set(body) - {"request_no", "refund_fen", "reason"}
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    request_no, refund_fen = _whole(body, "request_no"), _whole(body, "refund_fen")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise InvalidRequest(f"reason is text of at most {MAX_REASON_CHARS} characters")
    answer = container.current().refunds.refund(merchant_id, order_id, refund_fen, request_no, reason)
    log.info("refund %s of order %s by merchant %s: %s", answer["out_refund_no"], order_id, merchant_id,
             answer["status"])
    return _answer(answer)


@refunds.route("/refunds/v1/orders/{order_id}/{request_no}", methods=["GET"])
@domain_errors_to_http
def refund_status(order_id: str, request_no: str) -> Response:
    merchant_id = operator_merchant(refunds.current_request.headers)
    if not request_no.isdigit():
        raise InvalidRequest("request_no must be a whole number")
    return _answer(container.current().refunds.status(merchant_id, order_id, int(request_no)))
