"""Canteen rules per merchant (the PARAMS terminals get), the interim operator token, the
template-message settings. Read on every card payment, changed rarely: cached per container."""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Callable

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.domain.canteen_rules import DEFAULT_RULES, CanteenRules, rules_from_dict
from chalicelib.domain.errors import Conflict
from chalicelib.store.card_models import CanteenRulesModel


SUBSIDY_MONTHLY = "monthly"


def has_monthly_subsidy(rules: CanteenRules) -> bool:
    return any(c.monthly_subsidy_fen for c in rules.classes.values())


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CanteenRulesStore:
    def __init__(self, ttl_s: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, CanteenRulesModel | None]] = {}

    def _item(self, merchant_id: str) -> CanteenRulesModel | None:
        now = self._clock()
        hit = self._cache.get(merchant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            item: CanteenRulesModel | None = CanteenRulesModel.get(merchant_id)
        except DoesNotExist:
            item = None
        self._cache[merchant_id] = (now + self._ttl, item)
        return item

    def clear_cache(self) -> None:
        self._cache.clear()

    def rules(self, merchant_id: str) -> CanteenRules:
        item = self._item(merchant_id)
        if item is None or not item.rules:
            return DEFAULT_RULES
        return rules_from_dict(item.rules, int(item.version or 0))

    def raw_rules(self, merchant_id: str) -> dict:
        item = self._item(merchant_id)
        return dict(item.rules or {}) if item else {}

    def template(self, merchant_id: str) -> dict:
        item = self._item(merchant_id)
        return dict(item.template or {}) if item else {}

    def put_rules(self, merchant_id: str, raw: dict, expected_version: int | None, now: float) -> CanteenRules:
        """Validate and store; the version goes up by one so terminals fetch new PARAMS.
        `expected_version` (what the editor saw) refuses a concurrent edit with Conflict."""
        current = self._item_fresh(merchant_id)
        version = int(current.version or 0) if current else 0
        if expected_version is not None and expected_version != version:
            raise Conflict(f"rules are at version {version}")
        rules = rules_from_dict(raw, version + 1)
        # Kept with the rules in the same write, so the subsidy job's index never disagrees with them.
        subsidy = (CanteenRulesModel.subsidy_grants.set(SUBSIDY_MONTHLY) if has_monthly_subsidy(rules)
                   else CanteenRulesModel.subsidy_grants.remove())
        condition = CanteenRulesModel.version == version
        if version == 0:  # no rules yet: the item may be missing or hold only the operator token
            condition = condition | CanteenRulesModel.version.does_not_exist()
        try:
            CanteenRulesModel(merchant_id).update(
                actions=[CanteenRulesModel.rules.set(raw), CanteenRulesModel.version.set(version + 1),
                         CanteenRulesModel.updated_at.set(now), subsidy], condition=condition)
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("rules changed meanwhile") from error
            raise
        self._cache.pop(merchant_id, None)
        return rules

    def put_template(self, merchant_id: str, template: dict, now: float) -> None:
        CanteenRulesModel(merchant_id).update(actions=[CanteenRulesModel.template.set(template),
                                                       CanteenRulesModel.updated_at.set(now)])
        self._cache.pop(merchant_id, None)

    def set_operator_token(self, merchant_id: str, token: str, now: float) -> None:
        CanteenRulesModel(merchant_id).update(actions=[
            CanteenRulesModel.operator_token_sha256.set(token_digest(token)), CanteenRulesModel.updated_at.set(now)])
        self._cache.pop(merchant_id, None)

    def operator_token_ok(self, merchant_id: str, token: str) -> bool:
        item = self._item(merchant_id)
        expected = item.operator_token_sha256 if item else None
        return bool(expected) and hmac.compare_digest(expected, token_digest(token))

    def subsidised_merchants(self) -> list[str]:
        """Merchants whose rules grant a monthly subsidy: a Query of the sparse `with_subsidy` index
        (keys only, one item per such merchant), for the monthly subsidy job."""
        return [item.merchant_id for item in CanteenRulesModel.with_subsidy.query(SUBSIDY_MONTHLY)]

    def _item_fresh(self, merchant_id: str) -> CanteenRulesModel | None:
        try:
            return CanteenRulesModel.get(merchant_id, consistent_read=True)
        except DoesNotExist:
            return None
