"""The monthly subsidy grant: each live card's class gets its monthly amount in the subsidy wallet.

By the merchant's setting the unspent subsidy of last month lapses first ("reset": a
SUBSIDY_EXPIRED entry, then the grant) or stays ("carry"). Each card is one transaction with its
entries, conditioned on the card not having had this month's grant (`subsidy_month`), and the
entries' ids are per month, so a re-run or an overlapping run grants nothing twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib.domain.canteen_wallets import Grant, monthly_grant
from chalicelib.domain.cards import CardState, CardStatus, Wallet
from chalicelib.domain.clock import Clock, business_date
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.card_models import CardModel
from chalicelib.services.cards import settle
from chalicelib.store.cards import Booked, CardStore, EntryExists, EntrySpec, Movement

log = logging.getLogger(__name__)
ATTEMPTS = 8
GRANT_DAYS = 3  # the daily job grants on the first days of a month only (catching up a missed run)


@dataclass
class SubsidyReport:
    month: str
    cards_granted: int = 0
    granted_fen: int = 0
    expired_fen: int = 0
    cards_skipped: int = 0  # already granted this month, no subsidy for the class, or not live


def month_of(now: float) -> str:
    return business_date(now).strftime("%Y-%m")


class SubsidyService:
    def __init__(self, cards: CardStore, rules: CanteenRulesStore, clock: Clock) -> None:
        self._cards = cards
        self._rules = rules
        self._clock = clock

    def run(self) -> list[SubsidyReport]:
        """The scheduled entry: every merchant whose rules grant a monthly subsidy (an index
        query, no Scan), on the first days of a month."""
        now = self._clock.now()
        if business_date(now).day > GRANT_DAYS:
            return []
        return [self.grant_month(m, month_of(now)) for m in self._rules.subsidised_merchants()]

    def grant_month(self, merchant_id: str, month: str) -> SubsidyReport:
        rules = self._rules.rules(merchant_id)
        report = SubsidyReport(month)
        for key in self._cards.card_keys_of_merchant(merchant_id):
            card = self._cards.get_by_key(key)
            monthly = rules.class_rules(card.class_code).monthly_subsidy_fen if card else 0
            if card is None or not monthly or card.status not in (CardStatus.ACTIVE, CardStatus.LOST):
                report.cards_skipped += 1
                continue
            self._grant(card, month, monthly, rules.subsidy_policy, report)
        log.info("subsidy %s %s: %s", merchant_id, month, report)
        return report

    def _grant(self, card: CardState, month: str, monthly: int, policy: str, report: SubsidyReport) -> None:
        granted: list[Grant] = []

        def attempt(card: CardState | None) -> object:
            if card is None or card.subsidy_month == month:
                return EntryExists()  # granted already (or the card went away)
            grant = monthly_grant(monthly, card.subsidy_fen, policy)
            granted.append(grant)
            entries = [EntrySpec(f"subsidy#{month}", Wallet.SUBSIDY, grant.grant_fen, "SUBSIDY_GRANT", month)]
            if grant.expire_fen:
                entries.insert(0, EntrySpec(f"subsidy_expire#{month}", Wallet.SUBSIDY, -grant.expire_fen,
                                            "SUBSIDY_EXPIRED", month))
            return self._cards.credit(
                card, {Wallet.SUBSIDY: grant.grant_fen - grant.expire_fen},
                Movement(card.merchant_id, card.account_id, self._clock.now(), tuple(entries)),
                extra_actions=[CardModel.subsidy_month.set(month)],
                extra_condition=CardModel.subsidy_month.does_not_exist() | (CardModel.subsidy_month != month))

        outcome, _ = settle(card, attempt, ATTEMPTS)
        if isinstance(outcome, Booked):
            report.cards_granted += 1
            report.granted_fen += granted[-1].grant_fen
            report.expired_fen += granted[-1].expire_fen
        elif isinstance(outcome, EntryExists):
            report.cards_skipped += 1  # this month's grant is there (an earlier or overlapping run)
        elif outcome is None:
            log.warning("subsidy %s %s: card busy, left for the next run", card.card_no, month)
        else:
            raise RuntimeError(f"subsidy {card.card_no} {month}: {outcome}")
