"""Running totals (domain/settlement_totals.py) add up to exactly what settle() computes entry by entry."""
from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.settlement import EntryView, Settlement, Terms, settle
from chalicelib.domain.settlement_totals import (
    SHARDS,
    counters,
    item_channel,
    settlement_from_totals,
    shard_of,
    terms_tag,
)

BANK = Terms(2, 6_000, 1_000)
DIRECT = Terms(1, 6_000, 1_000)

KINDS = st.sampled_from([
    ("order#O1", "QR_PAYMENT", 1), ("order#O2", "ACCEPTED_LATE_PAYMENT", 1), ("order#O3", "REFUND", -1),
    ("order#O4", "LATE_PAYMENT", 1), ("order#O5", "LATE_REFUND", -1), ("order#O6", "SOMETHING_NEW", 1),
    ("card#A1", "CARD_PAYMENT", -1), ("card#A2", "CASH_RECHARGE", 1),
])
CHANNELS = st.sampled_from([("wechat", "wechat_v2"), ("wechat", "wechat_v3"), ("alipay", "alipay"), (None, None),
                            ("alipay", None), ("cash", "card")])


@st.composite
def entries(draw) -> list[EntryView]:  # type: ignore[no-untyped-def]
    found = []
    for i in range(draw(st.integers(0, 40))):
        account, kind, sign = draw(KINDS)
        wallet, channel = draw(CHANNELS)
        found.append(EntryView(account, f"e{i}", kind, sign * draw(st.integers(0, 10_000_000)), wallet, channel))
    return found


def as_items(batches: list[list[EntryView]], terms: Terms | None) -> list[tuple[str, dict[str, int]]]:
    """What the totals items hold after each batch (one transaction) added its counters to its item."""
    items: dict[tuple[str, int], Counter[str]] = {}
    for n, batch in enumerate(batches):
        for entry in batch:
            key = (item_channel(entry), shard_of(f"order-{n}"))
            items.setdefault(key, Counter()).update(counters([entry], terms))
    return [(channel, dict(values)) for (channel, _), values in items.items()]


@settings(max_examples=300, deadline=None)
@given(entries(), st.sampled_from([BANK, DIRECT, Terms(2, 3_817, 2_999), Terms(2, 1_000, 5_000)]),
       st.integers(1, 5))
def test_totals_settle_exactly_like_the_entries(day: list[EntryView], terms: Terms, batch: int) -> None:
    batches = [day[i:i + batch] for i in range(0, len(day), batch)]
    found = settlement_from_totals(terms, as_items(batches, terms))
    assert found is not None
    assert found == (settle(terms, day), len(day))


def test_a_hand_computed_day() -> None:
    day = [EntryView("order#A", "payment", "QR_PAYMENT", 1250, "wechat", "wechat_v2"),   # fee 7.5 -> 8, share 1
           EntryView("order#B", "payment", "QR_PAYMENT", 333, "wechat", "wechat_v2"),    # fee 2, share 0
           EntryView("order#B", "refund#R1", "REFUND", -333, "wechat", "wechat_v2"),     # fee -2, share 0
           EntryView("order#C", "payment", "QR_PAYMENT", 2500, "alipay", "alipay"),      # fee 15, share 2.5 -> 3
           EntryView("card#K", "pay#T1#1#cash", "CARD_PAYMENT", -1500, "cash", "card")]
    items = as_items([[e] for e in day], BANK)
    settlement, count = settlement_from_totals(BANK, items)  # type: ignore[misc]
    assert count == 5
    assert [(l.channel, l.payments, l.gross_fen, l.refunds, l.refunds_fen, l.fee_fen, l.dealer_share_fen)
            for l in settlement.lines] == [("alipay", 1, 2500, 0, 0, 15, 3), ("wechat_v2", 2, 1583, 1, 333, 8, 1)]
    assert [(r.section, r.kind, r.count, r.amount_fen) for r in settlement.reported] == [
        ("card", "CARD_PAYMENT", 1, -1500)]


def test_totals_priced_with_other_terms_or_none_cannot_settle() -> None:
    day = [EntryView("order#A", "payment", "QR_PAYMENT", 1250, "wechat", "wechat_v2")]
    assert settlement_from_totals(BANK, as_items([day], Terms(2, 20_000, 1_000))) is None  # a rate changed
    assert settlement_from_totals(BANK, as_items([day], None)) is None  # the booking could not tell the terms
    mixed = as_items([day], BANK) + as_items([day], DIRECT)
    assert settlement_from_totals(BANK, mixed) is None


def test_a_day_with_no_totals_is_empty_and_reported_money_needs_no_terms() -> None:
    assert settlement_from_totals(BANK, []) == (Settlement(), 0)
    card = [EntryView("card#K", "pay#T1#1#cash", "CARD_PAYMENT", -700, "cash", "card")]
    assert settlement_from_totals(BANK, as_items([card], None)) == (settle(BANK, card), 1)


def test_shards_are_stable_and_spread() -> None:
    shards = Counter(shard_of(f"O{i:06d}") for i in range(4_000))
    assert set(shards) == set(range(SHARDS)) and min(shards.values()) > 800
    assert shard_of("O000001") == shard_of("O000001")
    assert terms_tag(BANK) == "s2f6000d1000"
