"""The edge API: HTTPS JSON endpoints that edge agents call, each request HMAC-signed per agent.

Authentication and field checks are in edge_common.py, shared with the other edge blueprints.
"""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.api.edge_common import authenticate, field, ok, terminal_of
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.domain.errors import InvalidRequest
from chalicelib.services.orders import voice_text

edge = Blueprint(__name__)

MAX_EVENTS = 100
EVENT_OVERLAP_MS = 10_000  # events re-sent for 10 s: a write committed late is not skipped by the cursor


@edge.route("/edge/v1/orders/qr", methods=["POST"])
@domain_errors_to_http
def create_qr_order() -> Response:
    agent, body = authenticate(edge)
    terminal = terminal_of(agent, body)
    wallet = field(body, "wallet", str, required=False)
    if wallet not in (None, "wechat", "alipay"):
        raise InvalidRequest("wallet is wechat or alipay")
    answer = container.current().order_service.create_qr_order(
        terminal, field(body, "txn", int), field(body, "amount_fen", int), wallet)
    return ok(answer)


@edge.route("/edge/v1/orders/scan", methods=["POST"])
@domain_errors_to_http
def scan_pay() -> Response:
    agent, body = authenticate(edge)
    terminal = terminal_of(agent, body)
    answer = container.current().order_service.scan_pay(
        terminal, field(body, "txn", int), field(body, "amount_fen", int), field(body, "auth_code", str))
    if answer["status"] == "PAID":
        answer |= {"msg": "支付成功", "voice": voice_text(answer.get("wallet"), answer["amount_fen"])}
    return ok(answer)


@edge.route("/edge/v1/orders/query", methods=["POST"])
@domain_errors_to_http
def query_order() -> Response:
    agent, body = authenticate(edge)
    terminal = terminal_of(agent, body)
    return ok(container.current().order_service.query(terminal, field(body, "txn", int)))


@edge.route("/edge/v1/orders/cancel", methods=["POST"])
@domain_errors_to_http
def cancel_order() -> Response:
    agent, body = authenticate(edge)
    terminal = terminal_of(agent, body)
    answer = container.current().order_service.cancel(terminal, field(body, "txn", int))
    return Response(body=answer, status_code=200, headers={"Content-Type": "application/json"})


@edge.route("/edge/v1/events", methods=["POST"])
@domain_errors_to_http
def events() -> Response:
    """Orders of this agent's terminals that were paid or closed since `after` (an opaque cursor).

    Events inside the last EVENT_OVERLAP_MS before the cursor are sent again, because DynamoDB
    writes from many Lambdas do not commit in timestamp order; the agent drops repeats by
    (order_id, status).
    """
    agent, body = authenticate(edge)
    after = field(body, "after", str, required=False) or ""
    limit = min(field(body, "limit", int, required=False) or MAX_EVENTS, MAX_EVENTS)
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
    return ok({"events": items, "cursor": cursor, "more": len(found) == limit})


def _rewind(cursor: str) -> str:
    if not cursor:
        return ""
    try:
        millis = int(cursor.split("#", 1)[0])
    except ValueError:
        raise InvalidRequest("bad cursor") from None
    return f"{max(0, millis - EVENT_OVERLAP_MS):015d}"
