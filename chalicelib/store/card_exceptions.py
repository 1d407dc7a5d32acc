"""Offline records that could not be booked, kept for the merchant: never dropped.

An exception is written with the (terminal, txn) dedupe record holding the refusal, so the same
record uploaded again gets the same answer instead of being booked behind the merchant's back.
Resolving one ("book" or "dismiss") is a conditional change of its status from "open".
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.domain.errors import Conflict
from chalicelib.store.card_models import CardExceptionModel
from chalicelib.store.cards import StoredAnswer, failed_conditions, stored_answer
from chalicelib.store.connection import transaction_connection
from chalicelib.store.models import DedupeModel

OPEN = "open"


@dataclass(frozen=True)
class OfflineRecord:
    terminal_id: str
    txn: int
    card_no: str
    amount_fen: int
    ts: int
    offline_id: str = ""


@dataclass(frozen=True)
class CardException:
    merchant_id: str
    record: OfflineRecord
    code: str
    status: str

    def to_dict(self) -> dict:
        r = self.record
        return {"terminal_id": r.terminal_id, "txn": r.txn, "card": r.card_no, "amount_fen": r.amount_fen,
                "ts": r.ts, "offline_id": r.offline_id, "code": self.code, "status": self.status}


def exception_id(terminal_id: str, txn: int) -> str:
    return f"{terminal_id}#{txn}"


def _exception(item: CardExceptionModel) -> CardException:
    record = OfflineRecord(item.terminal_id, int(item.txn), item.card_no, int(item.amount_fen), int(item.ts),
                           item.offline_id or "")
    return CardException(item.merchant_id, record, item.code, item.status)


class CardExceptionStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def keep(self, merchant_id: str, record: OfflineRecord, code: str, dedupe_key: str | None, answer: dict,
             request_hash: str, now: float) -> StoredAnswer | None:
        """Keep the record with its refusal. Returns the stored answer instead when the txn's dedupe
        record exists already (the record was booked or kept before). Without `dedupe_key` (the txn
        belongs to another request) only the exception is kept."""
        item = CardExceptionModel(merchant_id, exception_id(record.terminal_id, record.txn),
                                  terminal_id=record.terminal_id, txn=record.txn, card_no=record.card_no,
                                  amount_fen=record.amount_fen, ts=record.ts, offline_id=record.offline_id,
                                  code=code, status=OPEN, created_at=now)
        if dedupe_key is None:
            try:
                item.save(condition=CardExceptionModel.exception_id.does_not_exist())
            except PutError as error:
                if error.cause_response_code != "ConditionalCheckFailedException":
                    raise
            return None
        record_item = DedupeModel(dedupe_key, kind="card_offline_exception", ref="", answer=answer,
                                  request_hash=request_hash, created_at=now)
        tx = TransactWrite(connection=transaction_connection(self._settings))
        try:
            with tx:
                tx.save(record_item, condition=DedupeModel.dedupe_key.does_not_exist(), return_values="ALL_OLD")
                tx.save(item)
        except TransactWriteError as error:
            failed = failed_conditions(error, tx).get(DedupeModel.Meta.table_name)
            if failed is None or not failed.raw_item:
                raise
            return stored_answer(DedupeModel.from_raw_data(failed.raw_item))
        return None

    def get(self, merchant_id: str, terminal_id: str, txn: int) -> CardException | None:
        try:
            return _exception(CardExceptionModel.get(merchant_id, exception_id(terminal_id, txn), consistent_read=True))
        except DoesNotExist:
            return None

    def of_merchant(self, merchant_id: str, open_only: bool = True, limit: int = 500) -> list[CardException]:
        found = (_exception(i) for i in CardExceptionModel.query(merchant_id, limit=limit))
        return [e for e in found if e.status == OPEN or not open_only]

    def close_action(self, merchant_id: str, terminal_id: str, txn: int, status: str):  # type: ignore[no-untyped-def]
        """The exception's open -> status change, to add to the transaction that books it."""
        def add(tx: TransactWrite) -> None:
            tx.update(CardExceptionModel(merchant_id, exception_id(terminal_id, txn)),
                      actions=[CardExceptionModel.status.set(status)], condition=CardExceptionModel.status == OPEN)
        return add

    def dismiss(self, merchant_id: str, terminal_id: str, txn: int) -> None:
        try:
            CardExceptionModel(merchant_id, exception_id(terminal_id, txn)).update(
                actions=[CardExceptionModel.status.set("dismissed")], condition=CardExceptionModel.status == OPEN)
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("the exception is not open") from error
            raise
