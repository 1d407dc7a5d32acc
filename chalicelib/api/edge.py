"""The edge API: HTTPS JSON endpoints that edge agents call, each request HMAC-signed per agent.

A request with a bad signature, a stale timestamp or a reused nonce is answered 401 and changes
nothing. A terminal id that is not one of the calling agent's terminals is answered 404, exactly
like an unknown one, so one tenant cannot learn another's ids.
"""
from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.domain import edge_auth
from chalicelib.domain.errors import InvalidRequest, NotFound, Unauthorized
from chalicelib.services.orders import voice_text
from chalicelib.store.directory import EdgeAgentInfo, TerminalInfo

edge = Blueprint(__name__)

MAX_EVENTS = 100
EVENT_OVERLAP_MS = 10_000  # events re-sent for 10 s: a write committed late is not skipped by the cursor


def _authenticate() -> tuple[EdgeAgentInfo, dict]:
    request = edge.current_request
    raw = request.raw_body or b""
    signed = edge_auth.parse_headers(dict(request.headers))
    if signed is None:
        raise Unauthorized("missing or malformed signature headers")
    c = container.current()
    agent = c.directory.edge_agent(signed.agent_id)
    now = c.clock.now()
    if agent is None or not agent.active:
        raise Unauthorized("bad signature")
    # The route path (no API Gateway stage prefix) is what is signed, so one signature works on every stage.
    problem = edge_auth.verify(agent.secret, signed, request.method, request.path, raw, now)
    if problem is not None:
        raise Unauthorized(problem)
    # Only a genuine request may use up a nonce, so the check comes after the MAC.
    if not c.dedupe.claim_nonce(agent.agent_id, signed.nonce, now, edge_auth.MAX_SKEW_S):
        raise Unauthorized("nonce already used")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return agent, body


def _field(body: dict, name: str, kind: type, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidRequest(f"field {name!r} must be {kind.__name__}")
    return value


def _terminal(agent: EdgeAgentInfo, body: dict) -> TerminalInfo:
    terminal_id = _field(body, "terminal_id", str)
    terminal = container.current().directory.terminal(terminal_id)
    if terminal is None or terminal.agent_id != agent.agent_id or not terminal.active:
        raise NotFound("unknown terminal")
    return terminal


def _ok(body: dict, status: int = 200) -> Response:
    return Response(body={"ok": True, **body}, status_code=status, headers={"Content-Type": "application/json"})


@edge.route("/edge/v1/orders/qr", methods=["POST"])
@domain_errors_to_http
def create_qr_order() -> Response:
    agent, body = _authenticate()
    terminal = _terminal(agent, body)
    wallet = _field(body, "wallet", str, required=False)
    if wallet not in (None, "wechat", "alipay"):
        raise InvalidRequest("wallet is wechat or alipay")
    answer = container.current().order_service.create_qr_order(
        terminal, _field(body, "txn", int), _field(body, "amount_fen", int), wallet)
    return _ok(answer)


@edge.route("/edge/v1/orders/scan", methods=["POST"])
@domain_errors_to_http
def scan_pay() -> Response:
    agent, body = _authenticate()
    terminal = _terminal(agent, body)
    answer = container.current().order_service.scan_pay(
        terminal, _field(body, "txn", int), _field(body, "amount_fen", int), _field(body, "auth_code", str))
    if answer["status"] == "PAID":
        answer |= {"msg": "支付成功", "voice": voice_text(answer.get("wallet"), answer["amount_fen"])}
    return _ok(answer)


@edge.route("/edge/v1/orders/query", methods=["POST"])
@domain_errors_to_http
def query_order() -> Response:
    agent, body = _authenticate()
    terminal = _terminal(agent, body)
    return _ok(container.current().order_service.query(terminal, _field(body, "txn", int)))


@edge.route("/edge/v1/orders/cancel", methods=["POST"])
@domain_errors_to_http
def cancel_order() -> Response:
    agent, body = _authenticate()
    terminal = _terminal(agent, body)
    answer = container.current().order_service.cancel(terminal, _field(body, "txn", int))
    return Response(body=answer, status_code=200, headers={"Content-Type": "application/json"})


@edge.route("/edge/v1/events", methods=["POST"])
@domain_errors_to_http
def events() -> Response:
    """Orders of this agent's terminals that were paid or closed since `after` (an opaque cursor).

    Events inside the last EVENT_OVERLAP_MS before the cursor are sent again, because DynamoDB
    writes from many Lambdas do not commit in timestamp order; the agent drops repeats by
    (order_id, status).
    """
    agent, body = _authenticate()
    after = _field(body, "after", str, required=False) or ""
    limit = min(_field(body, "limit", int, required=False) or MAX_EVENTS, MAX_EVENTS)
    since = _rewind(after)
    c = container.current()
    found = c.orders.events_for_agent(agent.agent_id, since, limit)
    items = []
    for key, order in found:
        status = "PAID" if order.status.value in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED") else order.status.value
        items.append({
            "event_id": f"{order.order_id}:{status}",
            "order_id": order.order_id, "terminal_id": order.terminal_id, "txn": order.txn,
            "status": status, "amount_fen": order.amount_fen,
            "channel": order.wallet.value if order.wallet else None,
            "msg": "支付成功" if status == "PAID" else "订单已关闭",
            "voice": voice_text(order.wallet.value if order.wallet else None, order.amount_fen) if status == "PAID" else "",
        })
    cursor = max([after] + [key for key, _ in found])
    return _ok({"events": items, "cursor": cursor, "more": len(found) == limit})


def _rewind(cursor: str) -> str:
    if not cursor:
        return ""
    try:
        millis = int(cursor.split("#", 1)[0])
    except ValueError:
        raise InvalidRequest("bad cursor") from None
    return f"{max(0, millis - EVENT_OVERLAP_MS):015d}"
