"""DynamoDB calls and our own CPU per operation: creating a QR order, applying a notification.

What runs where:
- the DynamoDB emulator (`python -m devstack.dynamodb`) and the sandbox platform (`python -m
  sandbox`) are child processes, so their CPU is theirs (each TransactWriteItems makes moto
  deep-copy the tables it touches: that is the emulator's cost, not ours);
- the services run in this process exactly as the Lambda runs them: OrderService.create_qr_order
  and NotificationService.handle, with the real store, real channels pointed at the sandbox, or
  tests/support's FakeChannels to isolate our own code from the SDKs'.

CPU is time.thread_time() of the measuring thread (CLOCK_THREAD_CPUTIME_ID: user + system time of
this thread only). The operations run synchronously in that thread (botocore and the payment SDKs
block in the caller's thread), so it counts all of our work for them, while the thread that catches
the sandbox's notifications does not count. resource.getrusage(RUSAGE_SELF) / process_time() would
add every thread of the process; the report prints both totals, to show the difference is nil
while the operations run.

Each row: one warm-up call (its CPU is printed as "1st op": it includes the directory read, KMS
unseal, channel construction and the SDK's lazy import when it is the first of its channel), then
N calls in batches; CPU ms/op is per batch, median and p90 over the batches. DynamoDB calls are
counted with botocore's before-call hooks on the store's clients (devstack/call_counter.py) over
the N calls, and divided by N.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Callable, Iterable

from bench.core.stack import NotificationInbox, start_emulator, start_sandbox
from chalicelib.channels.base import HttpReply
from chalicelib.config import Settings
from chalicelib.container import Container
from chalicelib.domain.clock import SystemClock
from chalicelib.domain.orders import OrderStatus
from chalicelib.services.orders import OrderService
from chalicelib.store.connection import create_tables, dynamodb_clients
from chalicelib.store.directory import TerminalInfo
from chalicelib.store.registry import ChannelAccount
from chalicelib.store.secrets import ensure_local_key
from devstack.call_counter import DynamoDBCallCounter
from sandbox import alipay, wechat_v2, wechat_v3
from tests.support.fake_channel import FakeChannels
from tests.support.world import World, seed_world

AMOUNT_FEN = 1250
WECHAT_V2_MCH, WECHAT_V2_APPID = "1900000911", "wx00000000bench0v2"
WECHAT_V3_MCH, WECHAT_V3_APPID = "1900000913", "wx00000000bench0v3"


@dataclass
class Row:
    operation: str
    n: int
    calls_per_op: dict[str, float]
    batch_ms_per_op: list[float]
    first_ms: float
    thread_ms_total: float
    process_ms_total: float

    @property
    def median_ms(self) -> float:
        return median(self.batch_ms_per_op)

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.batch_ms_per_op)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank


@dataclass
class Meter:
    batch: int
    rows: list[Row] = field(default_factory=list)
    counter: DynamoDBCallCounter = field(default_factory=lambda: DynamoDBCallCounter([]))
    clients_built: list[tuple[int, float]] = field(default_factory=list)  # (new clients, CPU ms) per watch()
    _seen: set[int] = field(default_factory=set)

    def watch(self, settings: Settings) -> None:
        """Count the calls of the store's clients; call it after building a Container. Binding the
        models to other settings drops their clients: the ones built here then (as a cold Lambda
        builds them, on first use of each model) are recorded with the CPU it took."""
        started = time.thread_time()
        clients = dynamodb_clients(settings)
        cpu_ms = (time.thread_time() - started) * 1000
        new = [c for c in clients if id(c) not in self._seen]
        if new:
            self._seen.update(id(c) for c in new)
            self.clients_built.append((len(new), cpu_ms))
            self.counter = DynamoDBCallCounter(clients)

    def measure(self, operation: str, calls: list[Callable[[], object]]) -> list[object]:
        """Run calls[0] as the warm-up, then the rest in batches; returns every call's result."""
        started = time.thread_time()
        results = [calls[0]()]
        first_ms = (time.thread_time() - started) * 1000
        self.counter.reset()
        batch_ms, thread_total, process_total = [], 0.0, 0.0
        for start in range(1, len(calls), self.batch):
            chunk = calls[start:start + self.batch]
            process0, thread0 = time.process_time(), time.thread_time()
            for call in chunk:
                results.append(call())
            thread_s, process_s = time.thread_time() - thread0, time.process_time() - process0
            batch_ms.append(thread_s * 1000 / len(chunk))
            thread_total += thread_s
            process_total += process_s
        n = len(calls) - 1
        calls_per_op = {api: count / n for api, count in sorted(self.counter.snapshot().items())}
        self.rows.append(Row(operation, n, calls_per_op, batch_ms, first_ms, thread_total * 1000,
                             process_total * 1000))
        return results


def _dummy_aws_credentials() -> None:
    """Nothing here may reach AWS: boto3 reads these when its clients are built."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "ap-east-1"}.items():
        os.environ[name] = value


def sandbox_accounts() -> tuple[dict, dict[str, list[ChannelAccount]]]:
    """The sandbox's accounts file and, per bench merchant, the channel accounts that match it:
    one merchant on WeChat Pay v2 + Alipay, one on WeChat Pay v3."""
    v2 = wechat_v2.make_accounts_section({WECHAT_V2_MCH: wechat_v2.make_merchant(WECHAT_V2_APPID)})
    v3 = wechat_v3.make_accounts_section([(WECHAT_V3_MCH, WECHAT_V3_APPID, "certificate")])
    ali = alipay.make_accounts_section(apps={alipay.DEMO_APP_ID: alipay.DEMO_SELLER_ID}, auth_tokens={})
    v2_settings = {"appid": WECHAT_V2_APPID, "mch_id": WECHAT_V2_MCH,
                   "api_key": v2["merchants"][WECHAT_V2_MCH]["api_key"]}
    merchants = {
        "v2+alipay": [
            ChannelAccount.sealing_secrets("wechat", "wechat_v2", v2_settings),
            ChannelAccount.sealing_secrets("alipay", "alipay", alipay.channel_settings(ali, alipay.DEMO_APP_ID)),
        ],
        "v3": [ChannelAccount.sealing_secrets("wechat", "wechat_v3", wechat_v3.channel_settings(v3, WECHAT_V3_MCH))],
    }
    return {"wechat_v2": v2, "wechat_v3": v3, "alipay": ali}, merchants


def _scan(sandbox_url: str, qr: str, wallet: str) -> None:
    """A consumer pays the QR in the sandbox (setup, not measured)."""
    request = urllib.request.Request(f"{sandbox_url}/sandbox/scan", json.dumps({"qr": qr, "wallet": wallet}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 200:
            raise RuntimeError(f"sandbox scan answered {answer.status}")


class Terminal:
    """A seeded terminal and its txn numbers (every create is a new txn, never a retry)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.info = TerminalInfo(world.terminal_id, world.agent_id, world.merchant_id, world.site_id, True)
        self._txn = itertools.count(1)

    def creates(self, service: OrderService, wallet: str | None, count: int) -> list[Callable[[], dict]]:
        return [lambda txn=next(self._txn): service.create_qr_order(self.info, txn, AMOUNT_FEN, wallet)
                for _ in range(count)]


def _check_replies(replies: Iterable[HttpReply], label: str) -> None:
    bad = [r for r in replies if r.status not in (200, 204)]
    if bad:
        raise RuntimeError(f"{label}: {len(bad)} notification(s) not acknowledged, e.g. {bad[0]}")


def _check_paid(container: Container, answers: list[dict], label: str) -> None:
    stored = [container.orders.get(answer["order_id"]) for answer in answers]
    unpaid = [answer["order_id"] for answer, found in zip(answers, stored)
              if found is None or found.order.status is not OrderStatus.PAID]
    if unpaid:
        raise RuntimeError(f"{label}: {len(unpaid)} order(s) not PAID after their notification, e.g. {unpaid[0]}")


def bench_fake_channels(meter: Meter, container: Container, fakes: FakeChannels, n: int) -> None:
    """Our own cost, without any SDK: FakeChannels (tests/support) through the Container."""
    terminal = Terminal(seed_world(container))
    service = container.order_service
    meter.measure("create QR, aggregated (no channel call)", terminal.creates(service, None, n + 1))
    answers = meter.measure("create QR, wechat, FakeChannel", terminal.creates(service, "wechat", n + 1))
    channel = fakes.by_wallet["wechat"]
    merchant_id = terminal.world.merchant_id
    notes = []
    for answer in answers:
        channel.pay(answer["order_id"])
        notes.append(channel.notification(answer["order_id"]))
    apply = [lambda note=note: container.notifications.handle("wechat_v2", merchant_id, *note) for note in notes]
    _check_replies(meter.measure("notification, FakeChannel", apply), "fake")
    _check_paid(container, answers, "fake")
    _check_replies(meter.measure("notification repeat, FakeChannel", apply), "fake repeat")


def bench_sandbox_channels(meter: Meter, settings: Settings, n: int, log_dir: Path,
                           inbox: NotificationInbox) -> None:
    """The real channels (wechatpy, wechatpayv3, python-alipay-sdk) against the sandbox process."""
    accounts, merchants = sandbox_accounts()
    sandbox = start_sandbox(accounts, log_dir)
    try:
        container = Container(replace(settings, channel_gateway=sandbox.url), SystemClock())
        meter.watch(container.settings)
        v2_alipay = Terminal(seed_world(container, accounts=merchants["v2+alipay"]))
        v3 = Terminal(seed_world(container, accounts=merchants["v3"]))
        service = container.order_service
        for kind, wallet, terminal in (("wechat_v2", "wechat", v2_alipay), ("wechat_v3", "wechat", v3),
                                       ("alipay", "alipay", v2_alipay)):
            answers = meter.measure(f"create QR, {kind} via sandbox", terminal.creates(service, wallet, n + 1))
            for answer in answers:
                _scan(sandbox.url, answer["qr"], wallet)
            caught = inbox.take(len(answers), timeout_s=30 + 0.5 * len(answers))
            strays = [c for c in caught if c.kind != kind or c.merchant_id != terminal.world.merchant_id]
            if strays:
                raise RuntimeError(f"{kind}: a notification for {strays[0].kind}/{strays[0].merchant_id} arrived")
            apply = [lambda c=c: container.notifications.handle(c.kind, c.merchant_id, c.headers, c.body)
                     for c in caught]
            _check_replies(meter.measure(f"notification, {kind} (sandbox-signed)", apply), kind)
            _check_paid(container, answers, kind)
            if kind == "wechat_v2":
                _check_replies(meter.measure(f"notification repeat, {kind}", apply), f"{kind} repeat")
    finally:
        sandbox.stop()


def run_ops_bench(n: int, batch: int, sandbox: bool = True) -> Meter:
    _dummy_aws_credentials()
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        emulator = start_emulator(Path(tmp))
        inbox = NotificationInbox()
        try:
            settings = Settings.from_env({
                "STAGE": "bench", "AWS_DEFAULT_REGION": "ap-east-1", "DYNAMODB_ENDPOINT": emulator.url,
                "PUBLIC_BASE_URL": inbox.url, "CHANNEL_GATEWAY": "",
            })
            fakes = FakeChannels()
            container = Container(settings, SystemClock(), channels_override=fakes)  # binds the models
            meter = Meter(batch)
            meter.watch(settings)  # builds the store's clients, which the tables are then created with
            create_tables()
            ensure_local_key(settings)
            bench_fake_channels(meter, container, fakes, n)
            if sandbox:
                bench_sandbox_channels(meter, settings, n, Path(tmp), inbox)
        finally:
            inbox.stop()
            emulator.stop()
    return meter
