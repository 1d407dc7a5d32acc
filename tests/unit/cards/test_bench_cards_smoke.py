"""The card bench still runs: `python -m bench.cards.run --quick` (its own emulator process)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.long
def test_quick_card_bench_prints_rows_calls_and_ratios() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.cards.run", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    api_row = next(line for line in out.splitlines() if "card payment, API (proxy event to app())" in line)
    # The request's nonce is claimed inside the payment's transaction: no PutItem of its own.
    assert "BatchGetItem 1.00, TransactWriteItems 1.00" in api_row and "PutItem" not in api_row
    assert "raw boto3 TransactWriteItems, same items" in out
    # A pay-batch of 3: one nonce PutItem and one BatchGetItem for the batch, a transaction per payment.
    batch_row = next(line for line in out.splitlines() if "card payments, API pay-batch of 3" in line)
    assert "BatchGetItem 0.33, PutItem 0.33, TransactWriteItems 1.00" in batch_row
    assert "ratio pay-batch of 3" in out
    assert "ratio API / raw TransactWriteItems:" in out
