"""Yuan strings <-> int fen at the Alipay edge: exact, ASCII digits, at most two decimals, no float."""
from __future__ import annotations

import pytest

from chalicelib.channels.alipay import beijing_text, beijing_unix, fen_to_yuan, yuan_to_fen


@pytest.mark.parametrize("text, fen", [
    ("0.01", 1), ("12.5", 1250), ("12.50", 1250), ("100", 10000), ("0.10", 10), ("100000000.00", 10_000_000_000),
    ("0.29", 29), ("1.15", 115),  # values where float * 100 is not exact
])
def test_yuan_to_fen(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", [
    "1e2", "12.345", "-1.00", " 1.00", "1.00 ", "1.", ".5", "1,00", "١٢", "1_000", "nan", "inf", "", "+1",
    "1.00\n", "0x10", 12.5, 1250, None,
])
def test_yuan_to_fen_rejects(text):
    with pytest.raises(ValueError):
        yuan_to_fen(text)


@pytest.mark.parametrize("fen, text", [(1, "0.01"), (1250, "12.50"), (10000, "100.00"), (0, "0.00")])
def test_fen_to_yuan(fen, text):
    assert fen_to_yuan(fen) == text


@pytest.mark.parametrize("fen", [-1, 1.5, True, "100"])
def test_fen_to_yuan_rejects(fen):
    with pytest.raises(ValueError):
        fen_to_yuan(fen)


def test_beijing_time_round_trip():
    assert beijing_text(1_700_000_000) == "2023-11-15 06:13:20"
    assert beijing_unix("2023-11-15 06:13:20") == 1_700_000_000
    with pytest.raises(ValueError):
        beijing_unix("2023-11-15T06:13:20")
