"""Card holders: who a card account belongs to (name, number, class, phone, WeChat openid)."""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.domain.errors import Conflict
from chalicelib.store.card_models import CardHolderModel

EDITABLE = ("name", "number", "class_code", "phone")


@dataclass(frozen=True)
class Holder:
    holder_id: str
    merchant_id: str
    name: str
    number: str
    class_code: str
    phone: str
    wechat_openid: str | None
    account_id: str
    card_no: str | None
    status: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "holder_id", "name", "number", "class_code", "phone", "account_id", "card_no", "status")} | {
            "wechat_bound": bool(self.wechat_openid)}


def to_holder(item: CardHolderModel) -> Holder:
    return Holder(item.holder_id, item.merchant_id, item.name, item.number or "", item.class_code,
                  item.phone or "", item.wechat_openid, item.account_id, item.card_no, item.status)


class HolderStore:
    def create(self, holder: Holder, now: float) -> None:
        item = CardHolderModel(holder.holder_id, merchant_id=holder.merchant_id, name=holder.name,
                               number=holder.number, class_code=holder.class_code, phone=holder.phone,
                               account_id=holder.account_id, status="active", created_at=now)
        try:
            item.save(condition=CardHolderModel.holder_id.does_not_exist())
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("holder id taken") from error
            raise

    def get(self, holder_id: str) -> Holder | None:
        try:
            return to_holder(CardHolderModel.get(holder_id, consistent_read=True))
        except DoesNotExist:
            return None

    def of_merchant(self, merchant_id: str, limit: int = 500) -> list[Holder]:
        return [to_holder(i) for i in CardHolderModel.by_merchant.query(merchant_id, limit=limit)]

    def by_openid(self, openid: str, merchant_id: str) -> Holder | None:
        """An openid is per 服务号, which several merchants (one school's canteens) may share."""
        for item in CardHolderModel.by_openid.query(openid, CardHolderModel.merchant_id == merchant_id):
            if item.status == "active":
                return to_holder(item)
        return None

    def update_fields(self, holder_id: str, fields: dict[str, str]) -> None:
        """Name, number, phone (a class change goes with the card: lifecycle.change_class)."""
        actions = [getattr(CardHolderModel, k).set(v) for k, v in fields.items() if k in EDITABLE and k != "class_code"]
        if actions:
            self._update(holder_id, actions)

    def bind_openid(self, holder_id: str, openid: str) -> None:
        self._update(holder_id, [CardHolderModel.wechat_openid.set(openid)])

    def delete(self, holder_id: str) -> None:
        """Only a holder without a card (none issued, or cancelled) goes."""
        try:
            CardHolderModel(holder_id).update(
                actions=[CardHolderModel.status.set("deleted")],
                condition=CardHolderModel.holder_id.exists() & CardHolderModel.card_no.does_not_exist())
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("cancel the holder's card first") from error
            raise

    def _update(self, holder_id: str, actions: list) -> None:
        try:
            CardHolderModel(holder_id).update(actions=actions, condition=CardHolderModel.status == "active")
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("no such active holder") from error
            raise
