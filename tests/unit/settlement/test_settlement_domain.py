"""Settlement of a merchant-day with hand-computed numbers (every fee and share worked out below)."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.settlement import (
    ChannelLine,
    EntryView,
    ReportedLine,
    Settlement,
    Terms,
    delta,
    entry_fee,
    next_record,
    settle,
)

DAY = date(2026, 11, 18)
BANK = Terms(scheme=2, fee_rate_ppm=6_000, dealer_share_ppm=1_000)
DIRECT = Terms(scheme=1, fee_rate_ppm=3_800, dealer_share_ppm=1_000)


def qr(channel: str, amount: int, kind: str = "QR_PAYMENT", n: int = 0) -> EntryView:
    wallet = "alipay" if channel == "alipay" else "wechat"
    entry_id = {"QR_PAYMENT": "payment", "REFUND": f"refund#R{n}"}.get(kind, f"{kind.lower()}#{n}")
    return EntryView(f"order#P{channel}{amount}{n}", entry_id, kind, amount, wallet, channel)


# Merchant A, scheme 2 (0.6 % fee, 0.1 % dealer share). fee / share of each entry, half up per entry:
A_ENTRIES = [
    qr("wechat_v2", 1250),                 # fee 7.5 -> 8      share 1.25 -> 1
    qr("wechat_v2", 333),                  # fee 1.998 -> 2    share 0.333 -> 0
    qr("wechat_v2", 1),                    # fee 0.006 -> 0    share 0
    qr("wechat_v2", -1250, "REFUND", 1),   # yesterday's 12.50 refunded: fee -8, share -1 (mirrors it)
    qr("alipay", 84),                      # fee 0.504 -> 1    share 0.084 -> 0
    qr("alipay", 2500),                    # fee 15            share 2.5 -> 3
    qr("alipay", 999, "ACCEPTED_LATE_PAYMENT", 2),  # fee 5.994 -> 6   share 0.999 -> 1
    qr("alipay", -500, "REFUND", 3),       # part of the 25.00: fee -3, share -0.5 -> -1
    EntryView("order#PL", "late#wechat#42", "LATE_PAYMENT", 700, "wechat", "wechat_v2"),
    EntryView("order#PL", "lateref#wechat#42", "LATE_REFUND", -700, "wechat", None),
    EntryView("card#A1", "pay#T1#7#cash", "CARD_PAYMENT", -1500, "cash", "card"),
    EntryView("card#A2", "pay#T1#8#subsidy", "CARD_PAYMENT", -800, "subsidy", "card"),
    EntryView("card#A2", "recharge#9", "CARD_RECHARGE", 5000, "cash", "card"),
    EntryView("order#PX", "chargeback#1", "CHARGEBACK", -300, "wechat", "wechat_v2"),
]


def test_scheme_two_day_with_refunds_late_payments_and_cards():
    result = settle(BANK, A_ENTRIES)

    assert result.lines == (
        ChannelLine("alipay", "alipay", payments=3, gross_fen=3583, refunds=1, refunds_fen=500, fee_fen=19,
                    dealer_share_fen=3),
        ChannelLine("wechat_v2", "wechat", payments=3, gross_fen=1584, refunds=1, refunds_fen=1250, fee_fen=2,
                    dealer_share_fen=0),
    )
    assert [line.net_fen for line in result.lines] == [3064, 332]
    total = result.total()
    assert (total.gross_fen, total.refunds_fen, total.fee_fen, total.dealer_share_fen, total.net_fen) == \
        (5167, 1750, 21, 3, 3396)
    assert total.net_fen + total.fee_fen == total.gross_fen - total.refunds_fen
    assert total.platform_fee_fen == 18  # the operator keeps the fee less the dealer's share
    assert result.payout_fen(BANK) == 3396
    assert result.reported == (
        ReportedLine("card", "CARD_PAYMENT", "cash", 1, -1500),
        ReportedLine("card", "CARD_PAYMENT", "subsidy", 1, -800),
        ReportedLine("card", "CARD_RECHARGE", "cash", 1, 5000),
        ReportedLine("late", "LATE_PAYMENT", "wechat", 1, 700),
        ReportedLine("late", "LATE_REFUND", "wechat", 1, -700),
        ReportedLine("other", "CHARGEBACK", "wechat", 1, -300),
    )


def test_scheme_one_has_no_dealer_share_and_no_payout():
    entries = [
        qr("wechat_v3", 1999),           # 0.38 %: 7.5962 -> 8
        qr("wechat_v3", 131),            # 0.4978 -> 0
        qr("alipay", 132),               # 0.5016 -> 1
        qr("alipay", -132, "REFUND", 1),  # -1: the whole fee comes back
    ]
    result = settle(DIRECT, entries)

    assert [(l.channel, l.gross_fen, l.refunds_fen, l.fee_fen, l.dealer_share_fen, l.net_fen)
            for l in result.lines] == [("alipay", 132, 132, 0, 0, 0), ("wechat_v3", 2130, 0, 8, 0, 2122)]
    assert result.payout_fen(DIRECT) == 0  # the platform paid the merchant directly


def test_a_day_of_only_refunds_pays_out_a_negative_amount():
    result = settle(BANK, [qr("wechat_v2", -2500, "REFUND", 1)])  # fee -15, share -2.5 -> -3

    total = result.total()
    assert (total.gross_fen, total.refunds_fen, total.fee_fen, total.dealer_share_fen, total.net_fen) == \
        (0, 2500, -15, -3, -2485)
    assert result.payout_fen(BANK) == -2485  # the bank recovers it from the merchant


def test_a_dealer_share_above_the_fee_is_capped_at_the_fee():
    greedy = Terms(scheme=2, fee_rate_ppm=6_000, dealer_share_ppm=7_000)

    assert entry_fee(1000, greedy) == (6, 6)
    assert entry_fee(-1000, greedy) == (-6, -6)


@pytest.mark.parametrize("scheme, fee, share", [(3, 6000, 1000), (2, -1, 1000), (2, 6000, 1_000_001),
                                                (2, 6000.0, 1000), (2, True, 1000)])
def test_terms_refuse_nonsense(scheme, fee, share):
    with pytest.raises(InvalidRequest):
        Terms(scheme, fee, share)


def test_unchanged_day_needs_no_record_and_a_late_entry_makes_an_adjustment():
    first = next_record("MA", "DA", DAY, BANK, settle(BANK, A_ENTRIES), [])
    assert first is not None and first.seq == 0 and first.payout_fen == 3396 and first.commission_fen == 3
    assert first.payout_id == "PO2026111800-MA"

    assert next_record("MA", "DA", DAY, BANK, settle(BANK, A_ENTRIES), [first.settlement]) is None

    late = A_ENTRIES + [qr("wechat_v2", 1001, n=9)]  # fee 6.006 -> 6, share 1.001 -> 1
    adjustment = next_record("MA", "DA", DAY, BANK, settle(BANK, late), [first.settlement])
    assert adjustment is not None and adjustment.seq == 1
    assert adjustment.settlement == Settlement((ChannelLine("wechat_v2", "wechat", payments=1, gross_fen=1001,
                                                            fee_fen=6, dealer_share_fen=1),), ())
    assert adjustment.payout_fen == 995 and adjustment.commission_fen == 1
    assert adjustment.payout_id == "PO2026111801-MA"


def test_direct_merchant_records_have_no_payout_and_no_commission():
    record = next_record("MB", "DB", DAY, DIRECT, settle(DIRECT, [qr("alipay", 1000)]), [])
    assert record is not None and record.payout_id is None and record.payout_fen == 0 and record.commission_fen == 0


entries = st.lists(st.builds(
    lambda channel, amount, refund: qr(channel, -amount if refund else amount, "REFUND" if refund else "QR_PAYMENT"),
    st.sampled_from(["wechat_v2", "alipay"]), st.integers(1, 10_000_000), st.booleans()), max_size=30)
rates = st.integers(0, 60_000)


@given(entries, rates, rates, st.integers(0, 30))
def test_money_adds_up_to_the_fen_and_records_sum_to_the_day(day_entries, fee_ppm, share_ppm, split):
    terms = Terms(2, fee_ppm, share_ppm)
    result = settle(terms, day_entries)
    for line in result.lines + (result.total(),):
        assert line.net_fen + line.fee_fen == line.gross_fen - line.refunds_fen
    for entry in day_entries:
        fee, share = entry_fee(entry.amount_fen, terms)
        assert abs(share) <= abs(fee) and share * fee >= 0  # the share is part of the fee, same sign
    base = settle(terms, day_entries[:split])
    rest = delta(result, [base])
    assert base.plus(rest) == result  # the day's records always add up to the day
    assert delta(result, [base, rest]).is_empty
