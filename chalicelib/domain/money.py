"""Money is integer fen; rates are integer parts per million (ppm).

0.6 % is 6_000 ppm, 0.1 % is 1_000 ppm. `apply_rate` is the one place that rounds, so every fee
and share in the product rounds the same way.
"""
from __future__ import annotations

PPM = 1_000_000
MAX_ORDER_FEN = 10_000_000  # 100,000.00 yuan: above any canteen or shop payment; guards typos.


def apply_rate(amount_fen: int, rate_ppm: int) -> int:
    """amount * rate, rounded half up to the fen (ROUND_HALF_UP on the exact rational value).

    Integers only: (a * r * 2 + PPM) // (2 * PPM) is round-half-up for non-negative values.
    Negative amounts (refunds) round symmetrically so that a refund's fee mirrors its payment's.
    """
    if not isinstance(amount_fen, int) or not isinstance(rate_ppm, int):
        raise TypeError("money and rates are ints")
    if amount_fen < 0:
        return -apply_rate(-amount_fen, rate_ppm)
    return (amount_fen * rate_ppm * 2 + PPM) // (2 * PPM)


def is_valid_amount(amount_fen: object) -> bool:
    """A payable amount: a positive int (bool is not money) within the order ceiling."""
    return (
        isinstance(amount_fen, int)
        and not isinstance(amount_fen, bool)
        and 0 < amount_fen <= MAX_ORDER_FEN
    )


def format_yuan(amount_fen: int) -> str:
    """12.50 for 1250: the text terminals show and speak."""
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{fen:02d}"
