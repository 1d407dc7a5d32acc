"""Alipay golden notifications (tests/fixtures/alipay) through the real webhook and channel.

Alipay posts a form and reads the answer body: `success` stops its retries, anything else (we say
`failure`) makes it retry. Both are HTTP 200 text/plain.
"""
from __future__ import annotations

import pytest

import notify_support as support
from notify_support import ALIPAY, assert_open, assert_paid_once, assert_refused_without_change

ORDER_ID = ALIPAY.GENUINE["out_trade_no"]  # SP20260314A0001
TRADE_NO = ALIPAY.GENUINE["trade_no"]
AMOUNT_FEN = 1250  # total_amount 12.50
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
SUCCESS = (200, b"success", "text/plain")
FAILURE = (200, b"failure", "text/plain")


@pytest.fixture
def merchant(container):  # type: ignore[no-untyped-def]
    world = support.seed_merchant(container, [support.alipay_account()])
    support.open_order(container, world, ORDER_ID, AMOUNT_FEN, "alipay")
    return world


def deliver(http, world, name: str):  # type: ignore[no-untyped-def]
    body = (support.FIXTURES / "alipay" / f"{name}.form").read_bytes()
    return support.answer_of(support.post(http, "alipay", world.merchant_id, body, {"Content-Type": CONTENT_TYPE}))


def test_genuine_notification_pays_the_order_once(http, merchant):
    assert deliver(http, merchant, "genuine") == SUCCESS
    assert_paid_once(ORDER_ID, "alipay", "alipay", TRADE_NO, AMOUNT_FEN)


BAD = ["forged_signature", "tampered_amount", "wrong_app_id", "wrong_seller_id", "unknown_order",
       "amount_exponent", "amount_three_decimals"]


@pytest.mark.parametrize("name", BAD)
def test_bad_notification_is_refused_and_changes_nothing(http, merchant, name):
    assert_refused_without_change(lambda: deliver(http, merchant, name), FAILURE)
    assert_open(ORDER_ID)


def test_wait_buyer_pay_is_acknowledged_and_books_nothing(http, merchant):
    assert_refused_without_change(lambda: deliver(http, merchant, "wait_buyer_pay"), SUCCESS)
    assert_open(ORDER_ID)


def test_twenty_genuine_deliveries_shuffled_with_bad_ones_book_once(http, merchant):
    deliveries = [("genuine", SUCCESS)] * 20 + [("wait_buyer_pay", SUCCESS)] + [(name, FAILURE) for name in BAD]
    support.assert_shuffled_answers(deliveries, lambda name: deliver(http, merchant, name), seed=20260314)
    assert_paid_once(ORDER_ID, "alipay", "alipay", TRADE_NO, AMOUNT_FEN)
