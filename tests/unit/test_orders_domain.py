import pytest

from chalicelib.domain.errors import IllegalTransition, InvalidAmount
from chalicelib.domain.orders import (
    CLOSE,
    MARK_PAID,
    Order,
    OrderKind,
    OrderStatus,
    apply,
    check_amount,
    refund_transition,
)
from chalicelib.domain.payment_codes import wallet_of_payment_code, wallet_of_user_agent


def order(status: OrderStatus = OrderStatus.CREATED, refunded: int = 0) -> Order:
    return Order("P1", "M1", "T1", "A1", 1, 1000, OrderKind.QR, status, 0.0, 300.0, refunded_fen=refunded)


def test_created_order_can_be_paid_or_closed() -> None:
    assert apply(order(), MARK_PAID).status is OrderStatus.PAID
    assert apply(order(), CLOSE).status is OrderStatus.CLOSED


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.CLOSED, OrderStatus.REFUNDED])
def test_only_created_orders_are_paid(status: OrderStatus) -> None:
    with pytest.raises(IllegalTransition):
        apply(order(status), MARK_PAID)


def test_closed_order_cannot_be_closed_again() -> None:
    with pytest.raises(IllegalTransition):
        apply(order(OrderStatus.CLOSED), CLOSE)


def test_refund_whole_or_part() -> None:
    paid = order(OrderStatus.PAID)
    assert refund_transition(paid, 1000).to_state is OrderStatus.REFUNDED
    assert refund_transition(paid, 400).to_state is OrderStatus.PARTIALLY_REFUNDED
    partly = order(OrderStatus.PARTIALLY_REFUNDED, refunded=400)
    assert refund_transition(partly, 600).to_state is OrderStatus.REFUNDED
    with pytest.raises(InvalidAmount):
        refund_transition(partly, 601)
    with pytest.raises(InvalidAmount):
        refund_transition(order(OrderStatus.CLOSED), 1)


@pytest.mark.parametrize("amount", [0, -5, True, 2.5, "10"])
def test_bad_amounts_are_refused(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        check_amount(amount)


@pytest.mark.parametrize(
    ("code", "wallet"),
    [("134567890123456789", "wechat"), ("101234567890123456", "wechat"), ("281234567890123456", "alipay"),
     ("25123456789012345", "alipay"), ("161234567890123456", None), ("13456789012345678", None),
     ("13456789012345678a", None), ("", None)],
)
def test_payment_code_wallets(code: str, wallet: str | None) -> None:
    found = wallet_of_payment_code(code)
    assert (found.value if found else None) == wallet


def test_user_agents() -> None:
    assert wallet_of_user_agent("Mozilla/5.0 MicroMessenger/8.0").value == "wechat"
    assert wallet_of_user_agent("Mozilla/5.0 AlipayClient/10.5").value == "alipay"
    assert wallet_of_user_agent("Mozilla/5.0 Safari") is None
