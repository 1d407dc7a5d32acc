"""Orders and their state machine. Pure: no I/O, no framework.

    CREATED --pay--> PAID --refund--> PARTIALLY_REFUNDED --refund--> REFUNDED
       |              ^   \\------------------refund (whole)---------> REFUNDED
       +--close--> CLOSED (--accept_late--> PAID, only by merchant policy)

Each transition has a name; the store turns it into a conditional write whose condition is the
transition's `from_states`, so two Lambdas racing on one order cannot both win
(compare-and-set, like Jeepay's updateIng2Success ... WHERE state = ING).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from chalicelib.domain.errors import IllegalTransition, InvalidAmount
from chalicelib.domain.money import is_valid_amount


class OrderStatus(str, Enum):
    CREATED = "CREATED"
    PAID = "PAID"
    CLOSED = "CLOSED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class OrderKind(str, Enum):
    QR = "QR"  # the terminal shows a QR, the consumer scans it
    SCAN_PAY = "SCAN_PAY"  # the terminal scans the consumer's payment code


class Wallet(str, Enum):
    WECHAT = "wechat"
    ALIPAY = "alipay"


FINAL_STATUSES = frozenset({OrderStatus.CLOSED, OrderStatus.REFUNDED})
PAID_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED})


@dataclass(frozen=True)
class Transition:
    name: str
    from_states: frozenset[OrderStatus]
    to_state: OrderStatus


MARK_PAID = Transition("mark_paid", frozenset({OrderStatus.CREATED}), OrderStatus.PAID)
CLOSE = Transition("close", frozenset({OrderStatus.CREATED}), OrderStatus.CLOSED)
# A payment that arrived after the close, kept because the merchant's policy accepts late payments.
ACCEPT_LATE = Transition("accept_late", frozenset({OrderStatus.CLOSED}), OrderStatus.PAID)
REFUND_PART = Transition(
    "refund_part",
    frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED,
)
REFUND_ALL = Transition(
    "refund_all",
    frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED}),
    OrderStatus.REFUNDED,
)


@dataclass(frozen=True)
class Order:
    order_id: str
    merchant_id: str
    terminal_id: str
    agent_id: str
    txn: int
    amount_fen: int
    kind: OrderKind
    status: OrderStatus
    created_at: float
    expires_at: float
    wallet: Wallet | None = None  # None until the consumer's wallet is known (aggregated QR)
    channel: str | None = None  # e.g. wechat_v2, alipay, bank
    channel_trade_no: str | None = None
    paid_at: float | None = None
    closed_at: float | None = None
    refunded_fen: int = 0
    # Wallets at which a channel order exists for this order; expiry closes each of them.
    opened_wallets: tuple[str, ...] = ()

    @property
    def refundable_fen(self) -> int:
        return self.amount_fen - self.refunded_fen if self.status in PAID_STATUSES else 0

    def same_request(self, amount_fen: int, kind: OrderKind) -> bool:
        """A retried create is the same request only with the same amount and kind."""
        return self.amount_fen == amount_fen and self.kind == kind


def check_amount(amount_fen: object) -> int:
    if not is_valid_amount(amount_fen):
        raise InvalidAmount("amount must be a positive whole number of fen")
    return amount_fen  # type: ignore[return-value]


def apply(order: Order, transition: Transition, **changes: object) -> Order:
    """The order after `transition`, or IllegalTransition. The store repeats the check as a condition."""
    if order.status not in transition.from_states:
        raise IllegalTransition(f"{transition.name} not allowed from {order.status.value}")
    return replace(order, status=transition.to_state, **changes)  # type: ignore[arg-type]


def refund_transition(order: Order, refund_fen: int) -> Transition:
    if not is_valid_amount(refund_fen) or refund_fen > order.refundable_fen:
        raise InvalidAmount("refund exceeds what is left of the payment")
    return REFUND_ALL if refund_fen == order.refundable_fen else REFUND_PART
