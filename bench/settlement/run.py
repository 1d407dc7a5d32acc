"""Settling one business day of 10,000 and of 100,000 payments over 100 merchants, against the emulator.

    .venv/bin/python -m bench.settlement.run            # 10,000 and 100,000 payments, 100 merchants
    .venv/bin/python -m bench.settlement.run --quick    # 1,000 and 10,000: a smoke run
    .venv/bin/python -m bench.settlement.run --sizes 5000 50000 --merchants 50
    .venv/bin/python -m bench.settlement.run --source entries   # the old way: every entry by the index

For each size, on fresh tables (prefix bench<N>-) of one emulator child process (`python -m
devstack.dynamodb`, so its CPU is its own): 100 merchants (half scheme 1, half scheme 2) and N ledger
entries of one Beijing day, seeded in bulk with BatchWriteItem (payments of 0.01 to 50.00 yuan over both
wallets, every 20th entry a refund) together with the day's running totals, added by the same function the
money transactions use (store/settlement_totals.totals_updates, one UpdateItem per totals item), then one
SettlementService.run of that day, exactly as the scheduled job runs it (from the totals; `--source
entries` reads every entry by the ledger index instead). Reported per size:

- DynamoDB calls of the run, by operation (botocore before-call hooks on every client the store uses);
- wall time of the run (includes the emulator answering: moto's index query walks the whole table, so
  this grows with the table, not with what we read), and our own CPU: time.thread_time() of the thread
  running the job (all of our work: botocore blocks in the caller's thread);
- the 100k/10k ratio of each. The aim of issue 5: the 10x day costs under 2x. The bench exits 1 when
  the calls ratio is 2 or more (calls are exact; times are the machine's).

Correctness is checked too: the records' gross, refunds and net add up to what the domain settles from the
same generated entries, one record and one payout per merchant.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

for _name, _value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
                      "AWS_DEFAULT_REGION": "ap-east-1"}.items():
    os.environ.setdefault(_name, _value)

DAY = date(2026, 11, 18)


@dataclass
class Figures:
    payments: int
    merchants: int
    seed_s: float
    wall_s: float
    cpu_s: float
    calls: dict[str, int]

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def generated_entries(n: int, merchants: int):  # type: ignore[no-untyped-def]
    """(merchant index, EntryView-like fields) of a deterministic day."""
    for i in range(n):
        amount = 1 + (i * 7919) % 5000
        refund = i % 20 == 19
        wallet = "wechat" if i % 3 else "alipay"
        yield (i % merchants, f"order#B{i:08d}", f"refund#RB{i:08d}" if refund else "payment",
               "REFUND" if refund else "QR_PAYMENT", -amount if refund else amount, wallet,
               "wechat_v2" if wallet == "wechat" else "alipay")


def seed(n: int, merchants: int) -> None:
    from chalicelib.domain.settlement import EntryView
    from chalicelib.domain.settlement_totals import shard_of
    from chalicelib.store.models import LedgerEntryModel, MerchantModel
    from chalicelib.store.orders import ledger_entry
    from chalicelib.store.settlement_totals import entry_view, totals_updates

    with MerchantModel.batch_write() as batch:
        for m in range(merchants):
            batch.save(MerchantModel(f"BM{m:04d}", dealer_id=f"BD{m % 10:02d}", name=f"bench {m}", scheme=1 + m % 2,
                                     fee_rate_ppm=6_000, dealer_share_ppm=1_000, created_at=0))
    noon = datetime.combine(DAY, clock_time(12), tzinfo=_beijing()).timestamp()
    # The day's totals, as the payment transactions would have added them: grouped per totals item
    # (merchant, shard of the order id), then added with the same function the transactions use.
    groups: dict[tuple[int, int], tuple[str, list[EntryView]]] = {}
    with LedgerEntryModel.batch_write() as batch:
        for m, account, entry_id, kind, amount, wallet, channel in generated_entries(n, merchants):
            entry = ledger_entry(account, entry_id, f"BM{m:04d}", noon, amount_fen=amount, kind=kind,
                                 order_id=account[6:], wallet=wallet, channel=channel, channel_trade_no=f"T{account}",
                                 created_at=noon)
            batch.save(entry)
            order_id = account[6:]
            groups.setdefault((m, shard_of(order_id)), (order_id, []))[1].append(entry_view(entry))
    for (m, _), (shard_key, entries) in sorted(groups.items()):
        for update in totals_updates(f"BM{m:04d}", DAY.isoformat(), shard_key, entries, _terms(m)):
            update.item.update(actions=update.actions)


def _terms(m: int):  # type: ignore[no-untyped-def]
    from chalicelib.domain.settlement import Terms

    return Terms(1 + m % 2, 6_000, 1_000)


def _beijing():  # type: ignore[no-untyped-def]
    from chalicelib.domain.clock import BEIJING

    return BEIJING


def expected_totals(n: int, merchants: int) -> tuple[int, int, int]:
    """gross, refunds and net of the whole day, settled by the domain from the same entries."""
    from chalicelib.domain.settlement import EntryView, settle

    by_merchant: dict[int, list[EntryView]] = {}
    for m, account, entry_id, kind, amount, wallet, channel in generated_entries(n, merchants):
        by_merchant.setdefault(m, []).append(EntryView(account, entry_id, kind, amount, wallet, channel))
    gross = refunds = net = 0
    for m, entries in by_merchant.items():
        total = settle(_terms(m), entries).total()
        gross, refunds, net = gross + total.gross_fen, refunds + total.refunds_fen, net + total.net_fen
    return gross, refunds, net


def measure(endpoint: str, n: int, merchants: int, source: str = "totals") -> Figures:
    from chalicelib.config import Settings
    from chalicelib.domain.clock import FixedClock
    from chalicelib.services.settlement import SettlementService
    from chalicelib.store.connection import bind_models, create_tables, dynamodb_clients
    from chalicelib.store.settlement import JobRunStore, SettlementStore
    from chalicelib.store.settlement_models import (
        SETTLEMENT_MODELS,
        SettlementModel,
    )
    from devstack.call_counter import DynamoDBCallCounter

    settings = Settings.from_env({"STAGE": "bench", "DYNAMODB_ENDPOINT": endpoint, "TABLE_PREFIX": f"bench{n}-",
                                  "AWS_DEFAULT_REGION": "ap-east-1"})
    bind_models(settings)
    create_tables()
    started = time.perf_counter()
    seed(n, merchants)
    seed_s = time.perf_counter() - started
    clients = dynamodb_clients(settings) + [model._get_connection().connection.client for model in SETTLEMENT_MODELS]
    counter = DynamoDBCallCounter({id(client): client for client in clients}.values())  # each client counted once
    service = SettlementService(SettlementStore(settings, source=source), JobRunStore(), FixedClock(time.time()),
                                log_line=lambda line: None, progress_every=25)
    wall, cpu = time.perf_counter(), time.thread_time()
    report = service.run(DAY)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    calls = counter.snapshot()

    records = [record for m in range(merchants) for record in SettlementModel.query(f"BM{m:04d}")]
    gross, refunds, net = expected_totals(n, merchants)
    assert report.entries == n and len(report.written) == merchants == len(records), report
    assert sum(int(r.gross_fen) for r in records) == gross and sum(int(r.refunds_fen) for r in records) == refunds
    assert sum(int(r.net_fen) for r in records) == net
    assert len({r.payout_id for r in records if r.payout_id}) == merchants // 2
    return Figures(n, merchants, seed_s, wall, cpu, calls)


def report(rows: list[Figures]) -> str:
    lines = ["| payments | merchants | seed s | run wall s | run CPU s (ours) | DynamoDB calls | by operation |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        ops = ", ".join(f"{name} {count}" for name, count in sorted(row.calls.items()))
        lines.append(f"| {row.payments:,} | {row.merchants} | {row.seed_s:.1f} | {row.wall_s:.2f} | {row.cpu_s:.2f} | "
                     f"{row.total_calls} | {ops} |")
    if len(rows) == 2:
        small, big = rows
        lines.append("")
        lines.append(f"ratio {big.payments // small.payments}x day: calls {big.total_calls / small.total_calls:.2f}x, "
                     f"our CPU {big.cpu_s / small.cpu_s:.2f}x, wall {big.wall_s / small.wall_s:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.settlement.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 payments")
    parser.add_argument("--sizes", type=int, nargs="+", help="payments per day to settle (default 10000 100000)")
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--source", choices=("totals", "entries"), default="totals",
                        help="read each merchant-day from its running totals (the job's way) or its entries")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [10_000, 100_000])
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.core.stack import start_emulator

    emulator = start_emulator(Path(tempfile.mkdtemp(prefix="bench-settlement-")))
    try:
        rows = []
        for n in sizes:
            rows.append(measure(emulator.url, n, args.merchants, args.source))
            print(f"settled {n:,} payments over {args.merchants} merchants from {args.source}", flush=True)
    finally:
        emulator.stop()
    print(report(rows), flush=True)
    if len(rows) == 2 and rows[1].total_calls >= 2 * rows[0].total_calls:
        print("FAIL: the larger day costs 2x the DynamoDB calls or more", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
