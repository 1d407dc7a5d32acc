"""Online recharge orders: created before the card holder pays, PAID in the transaction that
credits the card, and the 充值成功通知 still to send listed in a sparse index until it went out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.store.card_models import CardRechargeModel

CREATED, PAID = "CREATED", "PAID"
NOTICE_PENDING, NOTICE_FAILED = "PENDING", "FAILED"


@dataclass(frozen=True)
class Recharge:
    recharge_id: str
    merchant_id: str
    account_id: str
    holder_id: str
    card_no: str
    openid: str | None
    amount_fen: int
    wallet: str
    status: str
    trade_no: str | None
    paid_at: float | None
    notice: str | None  # PENDING, FAILED or None (sent, or none to send)
    notice_attempts: int
    notice_error: str | None


def _recharge(item: CardRechargeModel) -> Recharge:
    return Recharge(item.recharge_id, item.merchant_id, item.account_id, item.holder_id, item.card_no, item.openid,
                    int(item.amount_fen), item.wallet, item.status, item.trade_no,
                    float(item.paid_at) if item.paid_at is not None else None, item.notice_pending,
                    int(item.notice_attempts or 0), item.notice_error)


class RechargeStore:
    def create(self, recharge: Recharge, now: float) -> None:
        CardRechargeModel(
            recharge.recharge_id, merchant_id=recharge.merchant_id, account_id=recharge.account_id,
            holder_id=recharge.holder_id, card_no=recharge.card_no, openid=recharge.openid,
            amount_fen=recharge.amount_fen, wallet=recharge.wallet, status=CREATED, created_at=now,
        ).save(condition=CardRechargeModel.recharge_id.does_not_exist())

    def get(self, recharge_id: str) -> Recharge | None:
        try:
            return _recharge(CardRechargeModel.get(recharge_id, consistent_read=True))
        except DoesNotExist:
            return None

    def paid_action(self, recharge: Recharge, trade_no: str, paid_at: float, notify: bool):  # type: ignore[no-untyped-def]
        """CREATED -> PAID (with the notice to send), for the transaction that credits the card."""
        def add(tx: TransactWrite) -> None:
            actions = [CardRechargeModel.status.set(PAID), CardRechargeModel.trade_no.set(trade_no),
                       CardRechargeModel.paid_at.set(paid_at)]
            if notify:
                actions.append(CardRechargeModel.notice_pending.set(NOTICE_PENDING))
            tx.update(CardRechargeModel(recharge.recharge_id), actions=actions,
                      condition=(CardRechargeModel.status == CREATED)
                      & (CardRechargeModel.amount_fen == recharge.amount_fen))
        return add

    def notice_sent(self, recharge_id: str, now: float) -> None:
        CardRechargeModel(recharge_id).update(actions=[
            CardRechargeModel.notice_pending.remove(), CardRechargeModel.notice_sent_at.set(now),
            CardRechargeModel.notice_attempts.add(1), CardRechargeModel.notice_error.remove()])

    def notice_failed(self, recharge_id: str, error: str, give_up: bool) -> None:
        """Kept visible: PENDING is retried by the job, FAILED waits for a person."""
        CardRechargeModel(recharge_id).update(actions=[
            CardRechargeModel.notice_attempts.add(1), CardRechargeModel.notice_error.set(error[:500]),
            CardRechargeModel.notice_pending.set(NOTICE_FAILED if give_up else NOTICE_PENDING)])

    def notices(self, state: str = NOTICE_PENDING, limit: int = 200) -> Iterator[str]:
        for item in CardRechargeModel.notices_pending.query(state, limit=limit):
            yield item.recharge_id
