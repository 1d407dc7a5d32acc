"""Per-merchant-day running totals: what one money transaction adds, and the day they add up to. Pure.

Every transaction that books a ledger entry also ADDs the entry's sums into one totals item of its
merchant-day (store/settlement_totals.py), so that settlement reads a handful of items per merchant
instead of every entry. The counters are flat attributes whose names say what they count:

    S|<wallet>|payments            settled payments (QR_PAYMENT, ACCEPTED_LATE_PAYMENT) of the channel
    S|<wallet>|gross_fen           their sum
    S|<wallet>|refunds             settled refunds (REFUND)
    S|<wallet>|refunds_fen         their sum, positive
    S|<wallet>|fee_fen|<terms>     the fee, rounded PER ENTRY exactly as domain/settlement.entry_fee does
    S|<wallet>|share_fen|<terms>   the dealer's share, likewise
    S|<wallet>|priced|<terms>      how many entries were priced with those terms
    R|<section>|<kind>|<wallet>|count, R|...|amount_fen   reported money (late, card, other), signed

Why the terms are in the names: a fee rounded per entry cannot be recomputed from a sum, so it is
computed when the entry is booked, with the merchant's terms of that moment. Settlement uses the totals
only when every settled entry of the day was priced with exactly the terms it settles with (`<terms>`
= s<scheme>f<fee ppm>d<share ppm>); otherwise (a rate changed during the day, a day first settled with
older terms, a booking that could not tell the terms) `settlement_from_totals` answers None and the
caller settles that merchant-day from its entries. Either way the records are what `settle()` gives.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Iterable

from chalicelib.domain.settlement import (
    PAYMENT_KINDS,
    ChannelLine,
    EntryView,
    ReportedLine,
    Settlement,
    Terms,
    entry_fee,
    section_of,
)

SHARDS = 4  # items per merchant-day-channel: a busy canteen's payments spread over 4 items, none hot
SETTLED, REPORTED = "S", "R"


def terms_tag(terms: Terms) -> str:
    return f"s{terms.scheme}f{terms.fee_rate_ppm}d{terms.dealer_share_ppm}"


def shard_of(key: str) -> int:
    """Stable over processes (unlike hash()): the same order always adds to the same shard."""
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % SHARDS


def item_channel(entry: EntryView) -> str:
    """The channel part of the totals item's key: the settled line's channel (as settle() keys it)."""
    return entry.channel or entry.wallet or ""


def counters(entries: Iterable[EntryView], terms: Terms | None) -> dict[str, int]:
    """What these entries add to their totals item. `terms` None: the booking could not tell the
    merchant's terms, so the entries are counted but not priced (settlement then reads entries)."""
    sums: Counter[str] = Counter()
    for entry in entries:
        wallet = entry.wallet or ""
        section = section_of(entry)
        if section != "settled":
            prefix = f"{REPORTED}|{section}|{entry.kind}|{wallet}"
            sums[f"{prefix}|count"] += 1
            sums[f"{prefix}|amount_fen"] += entry.amount_fen
            continue
        prefix = f"{SETTLED}|{wallet}"
        if entry.kind in PAYMENT_KINDS:
            sums[f"{prefix}|payments"] += 1
            sums[f"{prefix}|gross_fen"] += entry.amount_fen
        else:
            sums[f"{prefix}|refunds"] += 1
            sums[f"{prefix}|refunds_fen"] -= entry.amount_fen
        if terms is not None:
            tag = terms_tag(terms)
            fee, share = entry_fee(entry.amount_fen, terms)
            sums[f"{prefix}|priced|{tag}"] += 1
            sums[f"{prefix}|fee_fen|{tag}"] += fee
            sums[f"{prefix}|share_fen|{tag}"] += share
    return {name: value for name, value in sums.items() if value}  # a zero ADD changes nothing


_LINE_FIELDS = ("payments", "gross_fen", "refunds", "refunds_fen", "fee_fen", "share_fen", "priced")


def settlement_from_totals(terms: Terms, items: Iterable[tuple[str, dict[str, int]]]) -> tuple[Settlement, int] | None:
    """The day's Settlement (equal to settle(terms, the day's entries)) and how many entries it covers,
    from (channel, counters) of each totals item; None when some settled entry was priced with other
    terms or not at all."""
    tag = terms_tag(terms)
    lines: dict[tuple[str, str], list[int]] = {}
    reported: dict[tuple[str, str, str], list[int]] = {}
    for channel, values in items:
        for name, value in values.items():
            parts = name.split("|")
            if parts[0] == SETTLED and len(parts) in (3, 4) and parts[2] in _LINE_FIELDS:
                if len(parts) == 4 and parts[3] != tag:
                    if value:
                        return None  # priced with other terms: only the entries can tell
                    continue
                sums = lines.setdefault((channel, parts[1]), [0] * len(_LINE_FIELDS))
                sums[_LINE_FIELDS.index(parts[2])] += value
            elif parts[0] == REPORTED and len(parts) == 5 and parts[4] in ("count", "amount_fen"):
                sums = reported.setdefault((parts[1], parts[2], parts[3]), [0, 0])
                sums[0 if parts[4] == "count" else 1] += value
    if any(sums[6] != sums[0] + sums[2] for sums in lines.values()):
        return None  # some settled entry was not priced with these terms
    settlement = Settlement(
        tuple(ChannelLine(*key, *lines[key][:6]) for key in sorted(lines) if lines[key][0] or lines[key][2]),
        tuple(ReportedLine(*key, *reported[key]) for key in sorted(reported) if reported[key][0]))
    count = sum(s[0] + s[2] for s in lines.values()) + sum(s[0] for s in reported.values())
    return settlement, count
