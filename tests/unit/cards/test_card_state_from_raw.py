"""The payment read's raw parse of a card item (store/cards.state_from_raw) says exactly what
CardModel + to_state say, for full items, items with optional attributes missing and odd numbers."""
from __future__ import annotations

import pytest

from chalicelib.domain.cards import CardStatus
from chalicelib.store.card_models import CardModel
from chalicelib.store.cards import card_key, state_from_raw, to_state

FULL = dict(merchant_id="M1", card_no="1001", account_id="A1", holder_id="H1", class_code="staff", status="lost",
            cash_fen=-200, subsidy_fen=300, day="2026-11-26", day_fen=700, day_count=2, meal="2026-11-26#dinner",
            meal_fen=500, meal_count=1, subsidy_month="2026-11", created_at=1.5, updated_at=2.5)
BARE = dict(merchant_id="M2", card_no="2002", account_id="A2", holder_id="H2", status="active",
            created_at=1.0, updated_at=1.0)


@pytest.mark.parametrize("fields", [FULL, BARE], ids=["full", "bare"])
def test_the_raw_parse_equals_the_model_read(fields: dict) -> None:
    model = CardModel(card_key(fields["merchant_id"], fields["card_no"]), **fields)
    raw = model.serialize()
    assert state_from_raw(raw) == to_state(CardModel.from_raw_data(raw))


def test_missing_attributes_take_the_models_defaults() -> None:
    raw = CardModel(card_key("M2", "2002"), **BARE).serialize()
    for optional in ("class_code", "cash_fen", "subsidy_fen", "day_fen", "day_count", "meal_fen", "meal_count"):
        raw.pop(optional, None)  # an item written before the attribute existed
    state = state_from_raw(raw)
    assert (state.class_code, state.status, state.cash_fen, state.subsidy_fen, state.day, state.meal) == (
        "default", CardStatus.ACTIVE, 0, 0, None, None)
    assert state == to_state(CardModel.from_raw_data(raw))


def test_a_number_in_another_notation_reads_as_the_model_reads_it() -> None:
    raw = CardModel(card_key("M1", "1001"), **FULL).serialize()
    raw["cash_fen"] = {"N": "1E+3"}
    raw["day_fen"] = {"N": "700.0"}
    assert state_from_raw(raw) == to_state(CardModel.from_raw_data(raw))
    assert (state_from_raw(raw).cash_fen, state_from_raw(raw).day_fen) == (1_000, 700)
