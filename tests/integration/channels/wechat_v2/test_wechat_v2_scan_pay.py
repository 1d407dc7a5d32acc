"""Payment codes (micropay): each consumer behaviour of the sandbox, and cancel (reverse)."""
from __future__ import annotations

import pytest

from chalicelib.channels.base import ChannelState, ScanPayRequest, TradeStatus

INSTANT, PASSWORD, NO_MONEY, ABANDON = "134567890123451234", "134567890123450000", "134567890123459999", \
    "134567890123458888"


@pytest.fixture
def pay_with(channel, new_order_id):
    def pay(auth_code: str, amount_fen: int = 800, target=None):  # type: ignore[no-untyped-def]
        request = ScanPayRequest(out_trade_no=new_order_id(), amount_fen=amount_fen, description="早餐",
                                 auth_code=auth_code)
        return request, (target or channel).scan_pay(request)

    return pay


def test_instant_payment_is_paid(pay_with):
    request, result = pay_with(INSTANT, 800)

    assert (result.state, result.trade_status, result.amount_fen) == (ChannelState.SUCCESS, TradeStatus.PAID, 800)
    assert result.trade_no and result.paid_at


def test_password_payment_is_unknown_then_paid_by_query(channel, pay_with):
    request, result = pay_with(PASSWORD)

    assert (result.state, result.trade_status, result.code) == (
        ChannelState.UNKNOWN, TradeStatus.USER_PAYING, "USERPAYING")
    statuses = [channel.query(request.out_trade_no).trade_status for _ in range(3)]
    assert statuses == [TradeStatus.USER_PAYING, TradeStatus.USER_PAYING, TradeStatus.PAID]


def test_no_money_fails(channel, pay_with):
    request, result = pay_with(NO_MONEY)

    assert (result.state, result.code) == (ChannelState.FAIL, "NOTENOUGH")
    assert channel.query(request.out_trade_no).trade_status is TradeStatus.CLOSED  # PAYERROR


def test_abandoned_password_stays_paying_until_cancelled(channel, pay_with):
    request, result = pay_with(ABANDON)
    assert (result.state, result.trade_status) == (ChannelState.UNKNOWN, TradeStatus.USER_PAYING)
    assert {channel.query(request.out_trade_no).trade_status for _ in range(4)} == {TradeStatus.USER_PAYING}

    cancelled = channel.cancel(request.out_trade_no)

    assert cancelled.state is ChannelState.SUCCESS
    assert channel.query(request.out_trade_no).trade_status is TradeStatus.CLOSED  # REVOKED
    assert channel.cancel(request.out_trade_no).state is ChannelState.SUCCESS  # cancel again is harmless


def test_cancel_of_paid_payment_gives_money_back(channel, pay_with, sandbox):
    request, result = pay_with(INSTANT, 300)

    assert channel.cancel(request.out_trade_no).state is ChannelState.SUCCESS

    trade = sandbox.ctx.book.get("wechat_v2", "1900000109", request.out_trade_no)
    assert (trade.status, trade.refunded_fen) == ("REVOKED", 300)


def test_retried_payment_learns_the_first_outcome(channel, pay_with):
    request, first = pay_with(INSTANT, 500)

    again = channel.scan_pay(request)  # the same out_trade_no and code, e.g. after a lost answer

    assert (again.state, again.trade_no) == (ChannelState.SUCCESS, first.trade_no)


def test_same_order_with_another_code_is_unknown_so_the_caller_queries(channel, pay_with):
    request, _ = pay_with(INSTANT)

    other = channel.scan_pay(ScanPayRequest(request.out_trade_no, request.amount_fen, "早餐", "104567890123451234"))

    assert (other.state, other.code) == (ChannelState.UNKNOWN, "ORDERPAID")


@pytest.mark.parametrize("auth_code", ["284567890123451234", "1345678901234", "abcdefghijklmnopqr"])
def test_codes_that_are_not_wechat_fail(pay_with, auth_code):
    _, result = pay_with(auth_code)

    assert (result.state, result.code) == (ChannelState.FAIL, "AUTH_CODE_INVALID")


def test_cancel_unknown_order_fails(channel, new_order_id):
    result = channel.cancel(new_order_id())

    assert (result.state, result.code) == (ChannelState.FAIL, "ORDERNOTEXIST")


def test_service_provider_scan_pay(bank_channel, pay_with):
    request, result = pay_with(INSTANT, 650, target=bank_channel)

    assert (result.state, result.trade_status) == (ChannelState.SUCCESS, TradeStatus.PAID)
    assert bank_channel.query(request.out_trade_no).amount_fen == 650
