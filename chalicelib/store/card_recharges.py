"""Online recharge orders: created before the card holder pays, PAID in the transaction that
credits the card, and the 充值成功通知 still to send listed in a sparse index until it went out.

A recharge paid for an account closed meanwhile is never credited and never kept: one transaction
marks it REFUNDING (listed in the sparse `refunds_pending` index), books the money received on the
recharge's own ledger account ("recharge#<id>", RECHARGE_UNCREDITED) and writes the platform
trade's dedupe record; when the platform confirms the refund went back (out_refund_no
"RF<recharge_id>", the same on every retry; acceptance alone is not enough) a second one marks it
REFUNDED with the negative RECHARGE_REFUND entry. Between the two, every asking that did not end it
is counted on the recharge (refund_failed), PENDING for the job or FAILED for a person."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.store.card_models import CardRechargeModel
from chalicelib.store.conditional import update_if
from chalicelib.store.connection import transaction_connection
from chalicelib.store.models import DedupeModel, LedgerEntryModel
from chalicelib.store.orders import ledger_entry
from chalicelib.store.settlement_totals import add_totals, views

CREATED, PAID, REFUNDING, REFUNDED = "CREATED", "PAID", "REFUNDING", "REFUNDED"
NOTICE_PENDING, NOTICE_FAILED = "PENDING", "FAILED"
REFUND_PENDING, REFUND_FAILED = "PENDING", "FAILED"


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
    credited_card_no: str | None = None
    out_refund_no: str | None = None
    refund: str | None = None  # PENDING, FAILED or None (refunded, or nothing to refund)
    refund_attempts: int = 0
    refund_error: str | None = None
    refund_id: str | None = None
    refunded_at: float | None = None

    def to_dict(self) -> dict:
        """What the console shows (no openid: it identifies the holder at WeChat)."""
        return {"recharge_id": self.recharge_id, "card_no": self.card_no, "holder_id": self.holder_id,
                "amount_fen": self.amount_fen, "wallet": self.wallet, "status": self.status,
                "trade_no": self.trade_no, "paid_at": self.paid_at, "credited_card_no": self.credited_card_no,
                "notice": self.notice, "notice_error": self.notice_error,
                "refund": {"out_refund_no": self.out_refund_no, "state": self.refund, "attempts": self.refund_attempts,
                           "error": self.refund_error, "refund_id": self.refund_id, "refunded_at": self.refunded_at}
                if self.out_refund_no else None}


def refund_no(recharge_id: str) -> str:
    """The out_refund_no of a recharge's refund: derived, so every retry asks for the same refund."""
    return f"RF{recharge_id}"


def recharge_account(recharge_id: str) -> str:
    return f"recharge#{recharge_id}"


def _recharge(item: CardRechargeModel) -> Recharge:
    return Recharge(item.recharge_id, item.merchant_id, item.account_id, item.holder_id, item.card_no, item.openid,
                    int(item.amount_fen), item.wallet, item.status, item.trade_no,
                    float(item.paid_at) if item.paid_at is not None else None, item.notice_pending,
                    int(item.notice_attempts or 0), item.notice_error, item.credited_card_no, item.out_refund_no,
                    item.refund_pending, int(item.refund_attempts or 0), item.refund_error, item.refund_id,
                    float(item.refunded_at) if item.refunded_at is not None else None)


class RechargeStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _transaction(self) -> TransactWrite:
        return TransactWrite(connection=transaction_connection(self._settings))

    def create(self, recharge: Recharge, now: float) -> None:
        CardRechargeModel(
            recharge.recharge_id, merchant_id=recharge.merchant_id, account_id=recharge.account_id,
            holder_id=recharge.holder_id, card_no=recharge.card_no, openid=recharge.openid,
            amount_fen=recharge.amount_fen, wallet=recharge.wallet, status=CREATED, created_at=now,
            pending=CREATED,  # listed in the sparse recharges_unpaid index until booked or closed
        ).save(condition=CardRechargeModel.recharge_id.does_not_exist())

    def get(self, recharge_id: str) -> Recharge | None:
        try:
            return _recharge(CardRechargeModel.get(recharge_id, consistent_read=True))
        except DoesNotExist:
            return None

    def paid_action(self, recharge: Recharge, trade_no: str, paid_at: float, notify: bool,  # type: ignore[no-untyped-def]
                    card_no: str | None = None):
        """CREATED -> PAID (with the notice to send), for the transaction that credits the card
        (`card_no`: the card it lands on, another than the recharge's after a replacement)."""
        def add(tx: TransactWrite) -> None:
            actions = [CardRechargeModel.status.set(PAID), CardRechargeModel.trade_no.set(trade_no),
                       CardRechargeModel.paid_at.set(paid_at), CardRechargeModel.pending.remove()]
            if card_no:
                actions.append(CardRechargeModel.credited_card_no.set(card_no))
            if notify:
                actions.append(CardRechargeModel.notice_pending.set(NOTICE_PENDING))
            tx.update(CardRechargeModel(recharge.recharge_id), actions=actions,
                      condition=(CardRechargeModel.status == CREATED)
                      & (CardRechargeModel.amount_fen == recharge.amount_fen))
        return add

    def unpaid(self, since: float, until: float, limit: int = 200) -> Iterator[str]:
        """Recharges still listed CREATED that were created in [since, until], oldest first (the
        index lags its table: read each one consistently before acting on it)."""
        for item in CardRechargeModel.recharges_unpaid.query(
                CREATED, CardRechargeModel.created_at.between(since, until), limit=limit):
            yield item.recharge_id

    def closed_unpaid(self, recharge_id: str) -> bool:
        """The platform closed the trade unpaid: stop asking about it (it stays CREATED: a recharge
        has no closed status; a payment can no longer come). False when it was booked meanwhile."""
        return update_if(CardRechargeModel(recharge_id), [CardRechargeModel.pending.remove()],
                         CardRechargeModel.status == CREATED)

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

    # --- a recharge paid for a closed account: refunded, never kept -------------------------

    def uncredited(self, recharge: Recharge, trade_no: str, paid_at: float, dedupe_key: str, now: float) -> bool:
        """CREATED -> REFUNDING in one transaction with the money received (RECHARGE_UNCREDITED on
        the recharge's own ledger account) and the platform trade's dedupe record, the same key a
        credit would write: a credit and a refund of one payment exclude each other. False when
        the recharge was booked already (a repeated or concurrent notification)."""
        account = recharge_account(recharge.recharge_id)
        tx = self._transaction()
        try:
            with tx:
                tx.update(CardRechargeModel(recharge.recharge_id), actions=[
                    CardRechargeModel.status.set(REFUNDING), CardRechargeModel.trade_no.set(trade_no),
                    CardRechargeModel.paid_at.set(paid_at), CardRechargeModel.pending.remove(),
                    CardRechargeModel.out_refund_no.set(
                        refund_no(recharge.recharge_id)), CardRechargeModel.refund_pending.set(REFUND_PENDING)],
                    condition=(CardRechargeModel.status == CREATED) & (CardRechargeModel.amount_fen == recharge.amount_fen))
                entry = ledger_entry(account, "uncredited", recharge.merchant_id, now, amount_fen=recharge.amount_fen,
                                     kind="RECHARGE_UNCREDITED", wallet=recharge.wallet, channel=recharge.wallet,
                                     channel_trade_no=trade_no, created_at=now)
                tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
                _add_totals(tx, entry)
                tx.save(DedupeModel(dedupe_key, kind="card_recharge_uncredited", ref=recharge.recharge_id,
                                    answer={"recharge_id": recharge.recharge_id, "status": REFUNDING}, created_at=now),
                        condition=DedupeModel.dedupe_key.does_not_exist())
        except TransactWriteError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def refunded(self, recharge: Recharge, refund_id: str | None, now: float) -> bool:
        """REFUNDING -> REFUNDED with the negative RECHARGE_REFUND entry (keeping the out_refund_no
        as its channel_trade_no, as QR late refunds do). False when another run recorded it."""
        tx = self._transaction()
        actions = [CardRechargeModel.status.set(REFUNDED), CardRechargeModel.refund_pending.remove(),
                   CardRechargeModel.refunded_at.set(now), CardRechargeModel.refund_attempts.add(1),
                   CardRechargeModel.refund_error.remove()]
        if refund_id:
            actions.append(CardRechargeModel.refund_id.set(refund_id))
        try:
            with tx:
                tx.update(CardRechargeModel(recharge.recharge_id), actions=actions,
                          condition=CardRechargeModel.status == REFUNDING)
                entry = ledger_entry(recharge_account(recharge.recharge_id), "refund", recharge.merchant_id, now,
                                     amount_fen=-recharge.amount_fen, kind="RECHARGE_REFUND", wallet=recharge.wallet,
                                     channel=recharge.wallet, channel_trade_no=refund_no(recharge.recharge_id),
                                     created_at=now)
                tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
                _add_totals(tx, entry)
        except TransactWriteError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def refund_failed(self, recharge_id: str, error: str, give_up: bool) -> bool:
        """An asking that did not end the refund (refused, processing, unanswered, failed), kept
        visible: PENDING is asked again by the job, FAILED waits for a person. False, and nothing
        written, when another run has booked the refund meanwhile."""
        return update_if(CardRechargeModel(recharge_id), [
            CardRechargeModel.refund_attempts.add(1), CardRechargeModel.refund_error.set(error[:500]),
            CardRechargeModel.refund_pending.set(REFUND_FAILED if give_up else REFUND_PENDING)],
            CardRechargeModel.status == REFUNDING)

    def refunds(self, state: str = REFUND_PENDING, limit: int = 200) -> Iterator[str]:
        for item in CardRechargeModel.refunds_pending.query(state, limit=limit):
            yield item.recharge_id

    def entries(self, recharge_id: str) -> list[LedgerEntryModel]:
        return list(LedgerEntryModel.query(recharge_account(recharge_id), consistent_read=True))


def _add_totals(tx: TransactWrite, entry: LedgerEntryModel) -> None:
    """The merchant-day's running totals move with every ledger entry (store/settlement_totals.py);
    these kinds are reported there, never settled."""
    add_totals(tx, entry.merchant_id, entry.business_date, entry.account_id, views([entry]), None)


def _condition_failed(error: TransactWriteError) -> bool:
    reasons = getattr(error, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)
