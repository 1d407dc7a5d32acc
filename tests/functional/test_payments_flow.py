"""Notifications, queries, cancels, payment codes and expiry, with an in-memory channel.

Every money path asserts the order, the ledger and the dedupe records, not only the answer.
"""
from __future__ import annotations

import json
import random

from chalicelib.channels.base import ChannelState
from tests.support.state import dedupe_keys, ledger_of_order, snapshot

QR = "/edge/v1/orders/qr"


def open_order(edge, world, fake_channels, txn=1, amount=1250, wallet="wechat"):  # type: ignore[no-untyped-def]
    body = json.loads(edge.post(QR, {"terminal_id": world.terminal_id, "txn": txn, "amount_fen": amount,
                                     "wallet": wallet}).body)
    return body["order_id"], fake_channels.by_wallet[wallet]


def post_notification(http, world, kind, headers, body):  # type: ignore[no-untyped-def]
    return http.post(f"/notify/{kind}/{world.merchant_id}", headers={"Content-Type": "application/json", **headers},
                     body=body)


def test_paid_notification_books_exactly_once(http, edge, world, fake_channels) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    channel.pay(order_id)
    headers, body = channel.notification(order_id)
    answers = [post_notification(http, world, "wechat_v2", headers, body) for _ in range(20)]
    assert {(a.status_code, a.body) for a in answers} == {(200, b"ok")}
    order = snapshot(world.terminal_id)["orders"][0]
    assert order["status"] == "PAID" and order["channel_trade_no"] == f"TW{order_id}"
    assert "expiry_bucket" not in order and order["event_key"]
    entries = ledger_of_order(order_id)
    assert [(e["entry_id"], e["amount_fen"], e["kind"]) for e in entries] == [("payment", 1250, "QR_PAYMENT")]
    assert dedupe_keys(f"trade#wechat#TW{order_id}") == [f"trade#wechat#TW{order_id}"]


def test_shuffled_genuine_and_bad_notifications(http, edge, world, fake_channels) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    channel.pay(order_id)
    genuine = channel.notification(order_id)
    tampered = (genuine[0], genuine[1].replace(b"1250", b"1"))
    wrong_amount = channel.notification(order_id, amount_fen=1)
    deliveries = [genuine] * 20 + [tampered] * 3 + [wrong_amount] * 3
    random.Random(7).shuffle(deliveries)
    codes = [post_notification(http, world, "wechat_v2", *d).status_code for d in deliveries]
    assert codes.count(200) == 20 and codes.count(400) == 6
    assert [e["amount_fen"] for e in ledger_of_order(order_id)] == [1250]


def test_rejected_notifications_change_nothing(http, edge, world, fake_channels) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    channel.pay(order_id)
    before = snapshot(world.terminal_id)
    headers, body = channel.notification(order_id)
    cases = {
        "forged": ({"x-fake-signature": "0" * 64}, body),
        "tampered amount": (headers, body.replace(b"1250", b"12")),
        "wrong amount": channel.notification(order_id, amount_fen=1249),
        "wrong merchant": channel.notification(order_id, merchant_ref="OTHER"),
    }
    for name, (h, b) in cases.items():
        answer = post_notification(http, world, "wechat_v2", h, b)
        assert answer.status_code == 400, name
        assert answer.body.startswith(b"fail: "), name
    channel.trades["P0UNKNOWN"] = type(channel.trades[order_id])("P0UNKNOWN", 1250, trade_no="X1")
    unknown = post_notification(http, world, "wechat_v2", *channel.notification("P0UNKNOWN"))
    assert (unknown.status_code, unknown.body) == (400, b"fail: unknown order")
    wrong_channel = post_notification(http, world, "wechat_v3", headers, body)
    assert wrong_channel.status_code == 404
    assert snapshot(world.terminal_id) == before


def test_notification_for_another_merchants_order_changes_nothing(http, edge, world, container, fake_channels) -> None:
    from tests.support.world import seed_world

    order_id, channel = open_order(edge, world, fake_channels)
    channel.pay(order_id)
    before = snapshot(world.terminal_id)
    other = seed_world(container)
    answer = http.post(f"/notify/wechat_v2/{other.merchant_id}", headers={"Content-Type": "application/json",
                       **channel.notification(order_id)[0]}, body=channel.notification(order_id)[1])
    assert (answer.status_code, answer.body) == (400, b"fail: unknown order")
    assert snapshot(world.terminal_id) == before


def test_unsupported_content_type_is_415(http, world) -> None:
    answer = http.post(f"/notify/wechat_v2/{world.merchant_id}", headers={"Content-Type": "image/png"}, body=b"x")
    assert answer.status_code == 415


def test_query_finds_a_payment_before_its_notification(edge, world, fake_channels) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    answer = json.loads(edge.post("/edge/v1/orders/query", {"terminal_id": world.terminal_id, "txn": 1}).body)
    assert answer["status"] == "PAYING"
    channel.pay(order_id)
    answer = json.loads(edge.post("/edge/v1/orders/query", {"terminal_id": world.terminal_id, "txn": 1}).body)
    assert answer["status"] == "PAID"
    assert [e["kind"] for e in ledger_of_order(order_id)] == ["QR_PAYMENT"]


def test_cancel_closes_at_the_channel_then_here(edge, world, fake_channels) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    answer = json.loads(edge.post("/edge/v1/orders/cancel", {"terminal_id": world.terminal_id, "txn": 1}).body)
    assert answer["ok"] is True and answer["status"] == "CLOSED"
    assert ("close", order_id) in channel.calls
    assert snapshot(world.terminal_id)["orders"][0]["status"] == "CLOSED"
    assert ledger_of_order(order_id) == []


def test_cancel_of_an_order_paid_meanwhile_books_the_payment(edge, world, fake_channels) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    channel.pay(order_id)
    answer = json.loads(edge.post("/edge/v1/orders/cancel", {"terminal_id": world.terminal_id, "txn": 1}).body)
    assert answer["ok"] is False and answer["status"] == "PAID"
    assert [e["amount_fen"] for e in ledger_of_order(order_id)] == [1250]


def test_payment_after_close_is_refunded_automatically(http, edge, world, fake_channels) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    edge.post("/edge/v1/orders/cancel", {"terminal_id": world.terminal_id, "txn": 1})
    channel.pay(order_id)  # the consumer paid just as it closed
    headers, body = channel.notification(order_id)
    for _ in range(3):
        assert post_notification(http, world, "wechat_v2", headers, body).status_code == 200
    entries = sorted((e["kind"], e["amount_fen"]) for e in ledger_of_order(order_id))
    assert entries == [("LATE_PAYMENT", 1250), ("LATE_REFUND", -1250)]
    assert len(channel.refunds) == 1
    order = snapshot(world.terminal_id)["orders"][0]
    assert order["status"] == "CLOSED" and "late_refund" not in order


def test_late_refund_that_does_not_answer_is_retried_by_expiry(http, edge, world, fake_channels, container) -> None:
    order_id, channel = open_order(edge, world, fake_channels)
    edge.post("/edge/v1/orders/cancel", {"terminal_id": world.terminal_id, "txn": 1})
    channel.pay(order_id)
    channel.next_answer["refund"] = ChannelState.UNKNOWN
    assert post_notification(http, world, "wechat_v2", *channel.notification(order_id)).status_code == 200
    assert snapshot(world.terminal_id)["orders"][0]["late_refund"] == "PENDING"
    assert [e["kind"] for e in ledger_of_order(order_id)] == ["LATE_PAYMENT"]
    report = container.expiry.run()
    assert report.late_refunds[order_id] == "LATE_REFUNDED"
    assert sorted(e["kind"] for e in ledger_of_order(order_id)) == ["LATE_PAYMENT", "LATE_REFUND"]
    assert len(channel.refunds) == 1


def test_late_payment_accepted_by_merchant_policy(http, container, clock, fake_channels) -> None:
    from tests.support.edge_client import EdgeTestClient
    from tests.support.world import seed_world

    world = seed_world(container, late_payment_policy="accept")
    edge = EdgeTestClient(http, world.agent_id, world.agent_secret, clock)
    order_id, channel = open_order(edge, world, fake_channels)
    edge.post("/edge/v1/orders/cancel", {"terminal_id": world.terminal_id, "txn": 1})
    channel.pay(order_id)
    assert post_notification(http, world, "wechat_v2", *channel.notification(order_id)).status_code == 200
    assert snapshot(world.terminal_id)["orders"][0]["status"] == "PAID"
    assert [(e["kind"], e["amount_fen"]) for e in ledger_of_order(order_id)] == [("ACCEPTED_LATE_PAYMENT", 1250)]
    assert channel.refunds == {}


def test_aggregated_order_paid_in_both_wallets_refunds_the_second(http, edge, world, fake_channels) -> None:
    body = json.loads(edge.post(QR, {"terminal_id": world.terminal_id, "txn": 4, "amount_fen": 800}).body)
    order_id = body["order_id"]
    for wallet, agent in (("wechat", "MicroMessenger/8.0"), ("alipay", "AlipayClient/10.5")):
        page = http.get(f"/pay/{order_id}", headers={"User-Agent": agent})
        assert page.status_code == 302 and page.headers["Location"] == f"fake://{wallet}/{order_id}"
    wechat, alipay = fake_channels.by_wallet["wechat"], fake_channels.by_wallet["alipay"]
    wechat.pay(order_id)
    alipay.pay(order_id)
    assert post_notification(http, world, "wechat_v2", *wechat.notification(order_id)).status_code == 200
    assert post_notification(http, world, "alipay", *alipay.notification(order_id)).status_code == 200
    entries = sorted((e["kind"], e["amount_fen"], e["wallet"]) for e in ledger_of_order(order_id))
    assert entries == [("LATE_PAYMENT", 800, "alipay"), ("LATE_REFUND", -800, "alipay"), ("QR_PAYMENT", 800, "wechat")]
    assert snapshot(world.terminal_id)["orders"][0]["opened_wallets"] == ["wechat", "alipay"]


def test_pay_page_in_a_plain_browser_explains(http, edge, world) -> None:
    body = json.loads(edge.post(QR, {"terminal_id": world.terminal_id, "txn": 5, "amount_fen": 800}).body)
    page = http.get(f"/pay/{body['order_id']}", headers={"User-Agent": "Mozilla/5.0 Firefox"})
    assert page.status_code == 200 and "微信或支付宝".encode() in page.body
    assert http.get("/pay/P0NOSUCH", headers={"User-Agent": "MicroMessenger"}).status_code == 404


class TestScanPay:
    def scan(self, edge, world, txn, code, amount=600):  # type: ignore[no-untyped-def]
        return json.loads(edge.post("/edge/v1/orders/scan", {"terminal_id": world.terminal_id, "txn": txn,
                                                             "amount_fen": amount, "auth_code": code}).body)

    def test_instant(self, edge, world) -> None:
        answer = self.scan(edge, world, 11, "134567890123451234")
        assert answer["status"] == "PAID" and answer["msg"] == "支付成功" and answer["voice"] == "微信收款6.00元"
        assert [e["amount_fen"] for e in ledger_of_order(answer["order_id"])] == [600]

    def test_password_then_paid_after_queries(self, edge, world, fake_channels) -> None:
        answer = self.scan(edge, world, 12, "281234567890120000")
        assert answer["status"] == "PAID" and answer["wallet"] == "alipay"
        assert [c[0] for c in fake_channels.by_wallet["alipay"].calls] == ["scan_pay", "query", "query"]
        assert [e["amount_fen"] for e in ledger_of_order(answer["order_id"])] == [600]

    def test_no_money_fails_and_closes(self, edge, world) -> None:
        answer = self.scan(edge, world, 13, "134567890123459999")
        assert answer["status"] == "FAILED" and answer["code"] == "NOTENOUGH"
        assert snapshot(world.terminal_id)["orders"][0]["status"] == "CLOSED"
        assert ledger_of_order(answer["order_id"]) == []

    def test_abandoned_is_paying_then_cancelled_by_expiry(self, edge, world, fake_channels, container, clock) -> None:
        answer = self.scan(edge, world, 14, "134567890123458888")
        assert answer["status"] == "PAYING"
        again = self.scan(edge, world, 14, "134567890123458888")
        assert again["order_id"] == answer["order_id"] and again["status"] == "PAYING"
        clock.advance(200)
        report = container.expiry.run()
        assert answer["order_id"] in report.closed
        assert ("cancel", answer["order_id"]) in fake_channels.by_wallet["wechat"].calls
        assert snapshot(world.terminal_id)["orders"][0]["status"] == "CLOSED"
        assert ledger_of_order(answer["order_id"]) == []

    def test_lost_request_is_paying_not_failed_then_reversed_by_expiry(self, edge, world, fake_channels, container,
                                                                       clock) -> None:
        channel = fake_channels.by_wallet["wechat"]
        channel.next_answer["scan_pay"] = ChannelState.UNKNOWN  # timed out; the platform has no trade
        answer = self.scan(edge, world, 16, "134567890123451111")
        assert answer["status"] == "PAYING"  # never FAILED because a call timed out
        assert [c[0] for c in channel.calls if c[1] == answer["order_id"]] == ["scan_pay", "query", "query", "query"]
        assert snapshot(world.terminal_id)["orders"][0]["status"] == "CREATED"
        clock.advance(60)
        assert answer["order_id"] in container.expiry.run().closed
        assert ("cancel", answer["order_id"]) in channel.calls
        assert ledger_of_order(answer["order_id"]) == []

    def test_not_a_payment_code(self, edge, world) -> None:
        answer = edge.post("/edge/v1/orders/scan", {"terminal_id": world.terminal_id, "txn": 15, "amount_fen": 1,
                                                    "auth_code": "99999"})
        assert answer.status_code == 400
        assert snapshot(world.terminal_id)["orders"] == []


class TestExpiry:
    def test_expired_unpaid_order_is_closed_at_channel_and_here(self, edge, world, fake_channels, container, clock) -> None:
        order_id, channel = open_order(edge, world, fake_channels)
        assert order_id not in container.expiry.run().examined  # not yet due
        clock.advance(301)
        report = container.expiry.run()
        assert order_id in report.examined and order_id in report.closed
        assert [c for c in channel.calls if c[1] == order_id] == [
            ("create_native_qr", order_id), ("query", order_id), ("close", order_id)]
        assert snapshot(world.terminal_id)["orders"][0]["status"] == "CLOSED"
        assert order_id not in container.expiry.run().examined  # gone from the sparse index

    def test_expired_but_paid_is_booked_not_closed(self, edge, world, fake_channels, container, clock) -> None:
        order_id, channel = open_order(edge, world, fake_channels)
        channel.pay(order_id)
        clock.advance(301)
        assert order_id in container.expiry.run().paid
        assert [e["amount_fen"] for e in ledger_of_order(order_id)] == [1250]

    def test_channel_silent_leaves_order_for_next_run(self, edge, world, fake_channels, container, clock) -> None:
        order_id, channel = open_order(edge, world, fake_channels)
        channel.next_answer["close"] = ChannelState.UNKNOWN
        clock.advance(301)
        assert order_id in container.expiry.run().left_open
        assert snapshot(world.terminal_id)["orders"][0]["status"] == "CREATED"
        assert order_id in container.expiry.run().closed

    def test_aggregated_order_never_opened_closes_without_channel_calls(self, edge, world, fake_channels, container, clock) -> None:
        body = json.loads(edge.post(QR, {"terminal_id": world.terminal_id, "txn": 21, "amount_fen": 100}).body)
        clock.advance(301)
        assert body["order_id"] in container.expiry.run().closed
        calls = fake_channels.by_wallet["wechat"].calls + fake_channels.by_wallet["alipay"].calls
        assert [c for c in calls if c[1] == body["order_id"]] == []


def test_event_feed_reports_paid_and_closed_orders(http, edge, world, fake_channels, clock) -> None:
    paid_id, channel = open_order(edge, world, fake_channels, txn=1)
    closed_id, _ = open_order(edge, world, fake_channels, txn=2)
    feed = json.loads(edge.post("/edge/v1/events", {}).body)
    assert feed["events"] == []
    channel.pay(paid_id)
    post_notification(http, world, "wechat_v2", *channel.notification(paid_id))
    clock.advance(1)
    edge.post("/edge/v1/orders/cancel", {"terminal_id": world.terminal_id, "txn": 2})
    feed = json.loads(edge.post("/edge/v1/events", {}).body)
    assert [(e["order_id"], e["status"], e["txn"]) for e in feed["events"]] == [(paid_id, "PAID", 1), (closed_id, "CLOSED", 2)]
    assert feed["events"][0]["voice"] == "微信收款12.50元"
    clock.advance(60)
    later = json.loads(edge.post("/edge/v1/events", {"after": feed["cursor"]}).body)
    assert later["events"] == [] or all(e["order_id"] in (paid_id, closed_id) for e in later["events"])
