"""Who is calling a merchant's operator route (the counter, and later the console on its behalf).

Headers `X-ScanPay-Merchant: <merchant_id>` and `Authorization: Bearer <operator token>`; the token is
checked by the canteen rules store (operator_token_ok), which holds each merchant's token. One place,
so that every operator route (cards, terminal status, refunds) refuses exactly the same requests.
"""
from __future__ import annotations

import json
from typing import Mapping

from chalicelib import container
from chalicelib.domain.errors import InvalidRequest, Unauthorized
from chalicelib.services.card_container import card_services


def bearer_token(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth[7:] if auth[:7].lower() == "bearer " else ""


def operator_merchant(headers: Mapping[str, str]) -> str:
    """The merchant whose operator token the request carries, or Unauthorized."""
    merchant_id = headers.get("x-scanpay-merchant", "")
    token = bearer_token(headers)
    rules = card_services(container.current()).rules
    if not merchant_id or not token or not rules.operator_token_ok(merchant_id, token):
        raise Unauthorized("operator token required")
    return merchant_id


def json_object(raw_body: bytes | None) -> dict:
    """An operator request's body: a JSON object (an empty body is {}), or InvalidRequest."""
    try:
        body = json.loads(raw_body or b"{}")
    except ValueError:
        raise InvalidRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body
