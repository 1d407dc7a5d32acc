"""T+1 settlement of one merchant's business day (Asia/Shanghai date). Pure: no I/O.

What is settled, per channel (wechat_v2, wechat_v3, alipay ... as booked on the ledger entry):

    gross_fen        QR_PAYMENT and ACCEPTED_LATE_PAYMENT entries of the day (the merchant's sales)
    refunds_fen      REFUND entries of the day, whatever day their payment was made (a refund of a
                     previous day's payment lowers the day the money went back)
    fee_fen          the merchant's fee (fee_rate_ppm, 0.6 % by default)
    dealer_share_fen scheme 2 only: the first-level dealer's share of the volume (dealer_share_ppm,
                     0.1 % by default), paid OUT OF the fee, never on top of it
    net_fen          gross - refunds - fee: what the merchant receives (scheme 2: the bank pays it;
                     scheme 1: the platform already paid it, this is the figure to expect)

Rounding: the fee and the dealer's share are rounded PER LEDGER ENTRY (each payment, each refund), half
up to the fen by money.apply_rate, and then summed. Per entry, because the platforms' bills charge a fee
per trade (so reconciliation compares fees row by row), and because apply_rate is symmetric: refunding a
payment in whole gives back exactly the fee it was charged, even when the refund falls on another day.
A per-day rounding would leave a one-fen residue between the two days. Per entry the share is capped at
the fee, so the dealer's share is part of the fee on every entry whatever the configured rates.

Not settled, reported beside the channel lines (section "late", "card" or "other"):
- LATE_PAYMENT / LATE_REFUND: a payment that came after its order closed and its automatic refund.
  The money passes through and goes back to the consumer; it is not the merchant's revenue and bears
  no fee. A late payment still unrefunded at the end of the day shows as a non-zero "late" sum.
- card accounts ("card#..." entries, any kind): IC-card money stays inside the platform's own ledger;
  there is no bank payout for it, so card payments are reported by kind, not settled.
- any kind this module does not know: reported, never settled, so that a new kind of entry cannot
  silently move a merchant's payout.

A day is settled once; entries that arrive later for an already settled day (a notification retried
after midnight for a payment made before it) are settled by an adjustment record: the difference
between the day now and the sum of its earlier records (`delta`). Re-running an unchanged day gives a
zero delta: nothing is written, nothing is paid twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Iterable

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import PPM, apply_rate

PAYMENT_KINDS = frozenset({"QR_PAYMENT", "ACCEPTED_LATE_PAYMENT"})
REFUND_KINDS = frozenset({"REFUND"})
LATE_KINDS = frozenset({"LATE_PAYMENT", "LATE_REFUND"})
CARD_ACCOUNT_PREFIX = "card#"
SCHEME_DIRECT, SCHEME_BANK = 1, 2


@dataclass(frozen=True)
class EntryView:
    """What settlement reads of a ledger entry."""

    account_id: str
    entry_id: str
    kind: str
    amount_fen: int  # signed, as booked: + money in for the account, - money out
    wallet: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Terms:
    scheme: int
    fee_rate_ppm: int
    dealer_share_ppm: int

    def __post_init__(self) -> None:
        if self.scheme not in (SCHEME_DIRECT, SCHEME_BANK):
            raise InvalidRequest(f"unknown scheme {self.scheme!r}")
        for rate in (self.fee_rate_ppm, self.dealer_share_ppm):
            if not isinstance(rate, int) or isinstance(rate, bool) or not 0 <= rate <= PPM:
                raise InvalidRequest("rates are whole ppm between 0 and 1,000,000")


@dataclass(frozen=True)
class ChannelLine:
    """One channel's settled money of one day (or the change an adjustment record brings)."""

    channel: str
    wallet: str
    payments: int = 0
    gross_fen: int = 0
    refunds: int = 0
    refunds_fen: int = 0  # positive: money given back to consumers
    fee_fen: int = 0  # negative when refunds gave back more fee than the payments were charged
    dealer_share_fen: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.wallet)

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.refunds_fen - self.fee_fen

    @property
    def platform_fee_fen(self) -> int:
        """What the operator keeps of the fee once the dealer's share is paid."""
        return self.fee_fen - self.dealer_share_fen


@dataclass(frozen=True)
class ReportedLine:
    """Money of the day that is shown but not settled (see the module docstring)."""

    section: str  # "late", "card" or "other"
    kind: str
    wallet: str
    count: int = 0
    amount_fen: int = 0  # signed sum, as booked

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.section, self.kind, self.wallet)


def _combine(a, b, sign: int):  # type: ignore[no-untyped-def]
    """a + sign * b over the int fields of two lines of the same key."""
    changes = {f.name: getattr(a, f.name) + sign * getattr(b, f.name)
               for f in fields(a) if f.type in ("int", int)}
    return replace(a, **changes)


def _is_zero(line: object) -> bool:
    return all(getattr(line, f.name) == 0 for f in fields(line) if f.type in ("int", int))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Settlement:
    lines: tuple[ChannelLine, ...] = ()
    reported: tuple[ReportedLine, ...] = ()

    def total(self) -> ChannelLine:
        total = ChannelLine("*", "*")
        for line in self.lines:
            total = _combine(total, replace(line, channel="*", wallet="*"), 1)
        return total

    @property
    def is_empty(self) -> bool:
        return not self.lines and not self.reported

    def payout_fen(self, terms: Terms) -> int:
        """Scheme 2: the bank pays the net (negative: the bank recovers it). Scheme 1: nothing, the
        platform paid the merchant directly."""
        return self.total().net_fen if terms.scheme == SCHEME_BANK else 0

    def plus(self, other: "Settlement", sign: int = 1) -> "Settlement":
        lines = _merge({line.key: line for line in self.lines}, other.lines, sign)
        reported = _merge({line.key: line for line in self.reported}, other.reported, sign)
        return Settlement(tuple(lines), tuple(reported))


def _merge(base: dict, others: Iterable, sign: int) -> list:  # type: ignore[type-arg]
    merged = dict(base)
    for line in others:
        start = merged.get(line.key) or _combine(line, line, -1)  # a zero line with the same key
        merged[line.key] = _combine(start, line, sign)
    return [merged[key] for key in sorted(merged) if not _is_zero(merged[key])]


def entry_fee(amount_fen: int, terms: Terms) -> tuple[int, int]:
    """(fee, dealer share) of one signed amount: a refund's are negative, mirroring its payment's."""
    fee = apply_rate(amount_fen, terms.fee_rate_ppm)
    if terms.scheme != SCHEME_BANK:
        return fee, 0
    share = apply_rate(amount_fen, terms.dealer_share_ppm)
    share = min(share, fee) if amount_fen >= 0 else max(share, fee)  # the share is part of the fee
    return fee, share


def section_of(entry: EntryView) -> str:
    """'settled' for money this module settles, else the reported section."""
    if entry.account_id.startswith(CARD_ACCOUNT_PREFIX):
        return "card"
    if entry.kind in PAYMENT_KINDS or entry.kind in REFUND_KINDS:
        return "settled"
    return "late" if entry.kind in LATE_KINDS else "other"


def settle(terms: Terms, entries: Iterable[EntryView]) -> Settlement:
    # Plain int lists while summing (a day can hold 100,000 entries), frozen lines at the end.
    lines: dict[tuple[str, str], list[int]] = {}  # payments, gross, refunds, refunds_fen, fee, share
    reported: dict[tuple[str, str, str], list[int]] = {}  # count, amount
    for entry in entries:
        wallet = entry.wallet or ""
        section = section_of(entry)
        if section != "settled":
            sums = reported.setdefault((section, entry.kind, wallet), [0, 0])
            sums[0] += 1
            sums[1] += entry.amount_fen
            continue
        sums = lines.setdefault((entry.channel or wallet, wallet), [0, 0, 0, 0, 0, 0])
        fee, share = entry_fee(entry.amount_fen, terms)
        if entry.kind in PAYMENT_KINDS:
            sums[0] += 1
            sums[1] += entry.amount_fen
        else:
            sums[2] += 1
            sums[3] -= entry.amount_fen
        sums[4] += fee
        sums[5] += share
    return Settlement(tuple(ChannelLine(*key, *lines[key]) for key in sorted(lines)),
                      tuple(ReportedLine(*key, *reported[key]) for key in sorted(reported)))


def delta(current: Settlement, recorded: Iterable[Settlement]) -> Settlement:
    """What is still to settle: the day now minus every record already written for it."""
    already = Settlement()
    for record in recorded:
        already = already.plus(record)
    return current.plus(already, sign=-1)


# --- deterministic identities ---------------------------------------------------------------

def record_key(day: date, seq: int) -> str:
    """Sort key of a merchant's settlement records: the day, then 00 (the day) and 01.. (adjustments)."""
    return f"{day.isoformat()}#{seq:02d}"


def payout_id(merchant_id: str, day: date, seq: int) -> str:
    return f"PO{day:%Y%m%d}{seq:02d}-{merchant_id}"


def commission_entry_id(day: date, merchant_id: str, seq: int) -> str:
    """A dealer-ledger entry id that sorts by day, so a month is one key range."""
    return f"{day.isoformat()}#commission#{merchant_id}#{seq:02d}"


@dataclass(frozen=True)
class SettlementRecord:
    """One immutable settlement record of a merchant-day: seq 0 the day, 1.. its adjustments."""

    merchant_id: str
    dealer_id: str
    business_date: date
    seq: int
    terms: Terms
    settlement: Settlement
    payout_fen: int = field(default=0)

    @property
    def payout_id(self) -> str | None:
        return payout_id(self.merchant_id, self.business_date, self.seq) if self.terms.scheme == SCHEME_BANK else None

    @property
    def commission_fen(self) -> int:
        return self.settlement.total().dealer_share_fen if self.terms.scheme == SCHEME_BANK else 0


def next_record(merchant_id: str, dealer_id: str, day: date, terms: Terms, current: Settlement,
                recorded: list[Settlement]) -> SettlementRecord | None:
    """The record to write now, or None when the records already cover the day exactly."""
    change = delta(current, recorded)
    if change.is_empty:
        return None
    return SettlementRecord(merchant_id, dealer_id, day, len(recorded), terms, change, change.payout_fen(terms))
