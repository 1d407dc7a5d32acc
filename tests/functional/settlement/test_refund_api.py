"""The merchant refund route (api/refunds.py) and refunds the platform does not complete at once.

Every money path asserts the order, its ledger, the refund records and the day's settlement totals;
every refusal asserts that none of them changed.
"""
from __future__ import annotations

import json
from datetime import date

import pytest

from chalicelib.services.refunds import out_refund_no
from chalicelib.store.settlement_totals import read_totals
from tests.functional.settlement.ledger_support import at, move_clock, paid_order
from tests.support.card_world import OperatorClient, operator_for
from tests.support.state import dedupe_keys, ledger_of_order
from tests.support.world import seed_world

DAY = date(2026, 4, 2)


@pytest.fixture
def world(container):  # type: ignore[no-untyped-def]
    return seed_world(container, scheme=2)


@pytest.fixture
def operator(http, container, world) -> OperatorClient:  # type: ignore[no-untyped-def]
    from chalicelib.services.card_container import card_services

    return operator_for(http, card_services(container), world.merchant_id)


def state(container, order_id: str) -> tuple:  # type: ignore[no-untyped-def]
    """Everything a refund can change: the order's sums, its ledger, the refund records, the day's totals."""
    stored = container.orders.get(order_id)
    totals = sorted(read_totals(stored.order.merchant_id, DAY.isoformat()), key=str)
    requests = [(k, container.dedupe.get(k).kind) for k in dedupe_keys(f"refundreq#R{order_id[1:]}")]
    return (stored.order.status.value, stored.order.refunded_fen, stored.refund_pending_fen,
            sorted((e["entry_id"], e["amount_fen"], e["kind"]) for e in ledger_of_order(order_id)),
            dedupe_keys(f"refund#R{order_id[1:]}"), requests, totals)


def post(operator: OperatorClient, order_id: str, body: object) -> tuple[int, dict]:
    answer = operator.http.post(f"/refunds/v1/orders/{order_id}", headers=operator._headers(),
                                body=json.dumps(body).encode())
    return answer.status_code, json.loads(answer.body or b"{}")


def get(operator: OperatorClient, order_id: str, request_no: object) -> tuple[int, dict]:
    answer = operator.http.get(f"/refunds/v1/orders/{order_id}/{request_no}", headers=operator._headers())
    return answer.status_code, json.loads(answer.body or b"{}")


def test_a_refund_through_the_api_books_once_and_a_repeat_is_idempotent(container, clock, world, operator,
                                                                         fake_channels):
    order = paid_order(container, world, 1000, at(DAY, 9))
    move_clock(clock, at(DAY, 10))
    channel = fake_channels.by_wallet["wechat"]

    status, body = post(operator, order.order_id, {"request_no": 1, "refund_fen": 300, "reason": "少找零"})
    after_first = state(container, order.order_id)
    calls = len(channel.calls)
    again = post(operator, order.order_id, {"request_no": 1, "refund_fen": 300, "reason": "少找零"})

    refund_no = out_refund_no(order.order_id, 1)
    assert (status, body["status"], body["out_refund_no"], body["ok"]) == (200, "REFUNDED", refund_no, True)
    assert again == (200, body)
    assert len(channel.calls) == calls  # the platform was not asked again
    assert after_first[:6] == ("PARTIALLY_REFUNDED", 300, 0, [("payment", 1000, "QR_PAYMENT"),
                                                               (f"refund#{refund_no}", -300, "REFUND")],
                               [f"refund#{refund_no}"], [(f"refundreq#{refund_no}", "refund_booked")])
    assert state(container, order.order_id) == after_first
    assert channel.refunds[refund_no].reason == "少找零"
    assert get(operator, order.order_id, 1) == (200, {"ok": True, "order_id": order.order_id, "out_refund_no": refund_no,
                                                      "refund_fen": 300, "status": "REFUNDED"})


@pytest.mark.parametrize("case", [
    "over_refund", "zero", "string_amount", "float_amount", "bool_amount", "missing_request_no", "request_no_0",
    "unknown_field", "long_reason", "not_json", "unknown_order", "foreign_order", "no_token", "wrong_token",
    "changed_repeat",
])
def test_bad_refund_requests_change_nothing(container, clock, world, operator, fake_channels, case):
    order = paid_order(container, world, 1000, at(DAY, 9))
    other = seed_world(container, scheme=2)
    foreign = paid_order(container, other, 500, at(DAY, 9))
    move_clock(clock, at(DAY, 10))
    assert post(operator, order.order_id, {"request_no": 1, "refund_fen": 100})[0] == 200
    before = state(container, order.order_id), state(container, foreign.order_id)
    calls = len(fake_channels.by_wallet["wechat"].calls)
    order_id, body = order.order_id, {"request_no": 2, "refund_fen": 100}
    client = operator
    expected = (400, "INVALID_REQUEST")
    if case == "over_refund":
        body, expected = {"request_no": 2, "refund_fen": 901}, (400, "ERR009")
    elif case == "zero":
        body, expected = {"request_no": 2, "refund_fen": 0}, (400, "ERR009")
    elif case == "string_amount":
        body = {"request_no": 2, "refund_fen": "100"}
    elif case == "float_amount":
        body = {"request_no": 2, "refund_fen": 100.5}
    elif case == "bool_amount":
        body = {"request_no": 2, "refund_fen": True}
    elif case == "missing_request_no":
        body = {"refund_fen": 100}
    elif case == "request_no_0":
        body = {"request_no": 0, "refund_fen": 100}
    elif case == "unknown_field":
        body = {"request_no": 2, "refund_fen": 100, "amount": 100}
    elif case == "long_reason":
        body = {"request_no": 2, "refund_fen": 100, "reason": "x" * 81}
    elif case == "not_json":
        body = None
    elif case == "unknown_order":
        order_id, expected = "O-NOBODY", (404, "NOT_FOUND")
    elif case == "foreign_order":
        order_id, expected = foreign.order_id, (404, "NOT_FOUND")  # as unknown: ids cannot be probed
    elif case == "no_token":
        client, expected = OperatorClient(operator.http, world.merchant_id, ""), (401, "UNAUTHORIZED")
    elif case == "wrong_token":
        client, expected = OperatorClient(operator.http, world.merchant_id, "x" * 30), (401, "UNAUTHORIZED")
    elif case == "changed_repeat":
        body, expected = {"request_no": 1, "refund_fen": 200}, (409, "CONFLICT")

    if body is None:
        answer = client.http.post(f"/refunds/v1/orders/{order_id}", headers=client._headers(), body=b"{not json")
        status, reply = answer.status_code, json.loads(answer.body)
    else:
        status, reply = post(client, order_id, body)

    assert (status, reply["code"]) == expected, reply
    assert (state(container, order.order_id), state(container, foreign.order_id)) == before
    assert len(fake_channels.by_wallet["wechat"].calls) == calls  # the platform heard nothing


def test_a_refund_the_platform_keeps_processing_is_pending_until_it_confirms(container, clock, world, operator,
                                                                             fake_channels):
    order = paid_order(container, world, 1000, at(DAY, 9))
    move_clock(clock, at(DAY, 10))
    channel = fake_channels.by_wallet["wechat"]
    channel.next_refund_states.append("PROCESSING")
    refund_no = out_refund_no(order.order_id, 1)

    status, body = post(operator, order.order_id, {"request_no": 1, "refund_fen": 600})

    assert (status, body["status"], body["ok"]) == (202, "PENDING", False)
    pending = state(container, order.order_id)
    assert pending[:6] == ("PAID", 0, 600, [("payment", 1000, "QR_PAYMENT")], [],
                           [(f"refundreq#{refund_no}", "refund_request")])  # held, not booked
    # While it is pending, the held amount cannot be refunded again.
    assert post(operator, order.order_id, {"request_no": 2, "refund_fen": 401})[1]["code"] == "ERR009"
    assert get(operator, order.order_id, 1)[0] == 202  # still processing: asking changes nothing
    assert state(container, order.order_id) == pending

    channel.refund_states[refund_no] = "SUCCESS"  # the platform finishes it
    move_clock(clock, at(DAY, 11))
    assert get(operator, order.order_id, 1)[1]["status"] == "REFUNDED"

    done = state(container, order.order_id)
    assert done[:6] == ("PARTIALLY_REFUNDED", 600, 0, [("payment", 1000, "QR_PAYMENT"),
                                                       (f"refund#{refund_no}", -600, "REFUND")],
                        [f"refund#{refund_no}"], [(f"refundreq#{refund_no}", "refund_booked")])
    assert sum(c.get("S|wechat|refunds_fen", 0) for _, c in done[6]) == 600  # the day's totals carry the refund
    assert sum(c.get("S|wechat|refunds_fen", 0) for _, c in pending[6]) == 0
    assert post(operator, order.order_id, {"request_no": 1, "refund_fen": 600})[1]["status"] == "REFUNDED"
    assert state(container, order.order_id) == done


def test_a_refund_the_platform_fails_releases_the_amount_and_books_nothing(container, clock, world, operator,
                                                                           fake_channels):
    order = paid_order(container, world, 1000, at(DAY, 9))
    move_clock(clock, at(DAY, 10))
    channel = fake_channels.by_wallet["wechat"]
    channel.next_refund_states.append("PROCESSING")
    before = state(container, order.order_id)
    refund_no = out_refund_no(order.order_id, 1)
    assert post(operator, order.order_id, {"request_no": 1, "refund_fen": 1000})[0] == 202

    channel.refund_states[refund_no] = "FAILED"  # the money could not go back (WeChat CHANGE)
    status, body = get(operator, order.order_id, 1)

    assert (status, body["status"], body["code"]) == (409, "FAILED", "CHANGE")
    failed = state(container, order.order_id)
    assert failed == (*before[:5], [(f"refundreq#{refund_no}", "refund_failed")], before[6])  # only the record
    assert post(operator, order.order_id, {"request_no": 1, "refund_fen": 1000})[1]["status"] == "FAILED"
    # The released amount can be refunded again, under a new number.
    assert post(operator, order.order_id, {"request_no": 2, "refund_fen": 1000})[1]["status"] == "REFUNDED"
    assert state(container, order.order_id)[:3] == ("REFUNDED", 1000, 0)


def test_a_lost_refund_request_is_sent_again_on_the_next_ask(container, clock, world, operator, fake_channels):
    from chalicelib.channels.base import ChannelState

    order = paid_order(container, world, 1000, at(DAY, 9))
    channel = fake_channels.by_wallet["wechat"]
    channel.next_answer["refund"] = ChannelState.UNKNOWN  # lost on the way: the platform never saw it
    assert post(operator, order.order_id, {"request_no": 1, "refund_fen": 250})[0] == 202
    assert state(container, order.order_id)[:3] == ("PAID", 0, 250)

    assert get(operator, order.order_id, 1)[1]["status"] == "REFUNDED"

    refund_no = out_refund_no(order.order_id, 1)
    assert [c for c in channel.calls if c[1] == refund_no] == [
        ("refund", refund_no), ("query_refund", refund_no), ("refund", refund_no)]
    assert state(container, order.order_id)[:3] == ("PARTIALLY_REFUNDED", 250, 0)
    assert get(operator, order.order_id, 9)[0] == 404  # a number never used
