"""Starts the embedded local stack in one process: emulator, sandbox, API, scheduled jobs.

The scheduled jobs run in loops of their own, the local stand-in for EventBridge: the expiry every
minute, and the refund jobs (the refund sweep, the refunds of online recharges paid for a closed card
account) every `refund_interval_s`: on AWS they run every 10 minutes; locally a minute, so a refund
finished in the sandbox (`POST /sandbox/refunds/finish`) is booked while one watches.

Used by `make run` (devstack/__main__.py) and by the end-to-end tests, which start it on free
ports. Each part listens on 127.0.0.1 only.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from chalicelib import container as container_module
from chalicelib.config import Settings
from chalicelib.container import Container
from chalicelib.domain.clock import Clock, SystemClock
from chalicelib.jobs.refunds import refund_sweep
from chalicelib.services.card_container import card_services
from chalicelib.store.connection import bind_models, create_tables
from chalicelib.store.secrets import ensure_local_key
from devstack import demo
from devstack.dynamodb import LocalDynamoDB
from sandbox.server import Sandbox

log = logging.getLogger("devstack")


@dataclass
class Ports:
    api: int = 8000
    dynamodb: int = 8001
    sandbox: int = 8002
    edge: int = 9100

    @classmethod
    def from_env(cls) -> "Ports":
        return cls(int(os.environ.get("SCANPAY_API_PORT", 8000)), int(os.environ.get("SCANPAY_DYNAMODB_PORT", 8001)),
                   int(os.environ.get("SCANPAY_SANDBOX_PORT", 8002)), int(os.environ.get("SCANPAY_EDGE_PORT", 9100)))


@dataclass(frozen=True)
class LocalSchedule:
    """One scheduled job as the local stack runs it: what an EventBridge rule does on AWS."""

    name: str  # the job's schedule name on AWS
    interval_s: float
    run: Callable[[], object]


def run_schedule(schedule: LocalSchedule, stop: threading.Event) -> int:
    """Runs the job every interval until `stop` is set (bounded by it); returns how many runs were
    made. A failed run is logged and the next interval runs it again, as on AWS."""
    runs = 0
    while not stop.wait(schedule.interval_s):
        runs += 1
        try:
            schedule.run()
        except Exception:  # noqa: BLE001 - one failed run must not end the schedule
            log.exception("%s run failed", schedule.name)
    return runs


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    state_dir: Path = Path(".local")
    clock: Clock = field(default_factory=SystemClock)
    schedule_scale: float = 0.1  # notification retries 10x faster than the platforms'
    expiry_interval_s: float = 60.0
    refund_interval_s: float = 60.0  # the refund sweep and the recharge refunds (10 minutes on AWS)
    dynamodb_endpoint: str | None = None  # use a running emulator instead of starting one (tests)
    start_edge_agent: bool = True
    dynamodb: LocalDynamoDB | None = None
    sandbox: Sandbox | None = None
    container: Container | None = None
    _api_server: object = None
    _edge_agent: object = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _schedule_threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> "LocalStack":
        for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                            "AWS_DEFAULT_REGION": "ap-east-1",
                            "STATEMENTS_TOKEN_SECRET": "local-statements-secret"}.items():
            os.environ.setdefault(name, value)
        if self.dynamodb_endpoint is None:
            self.dynamodb = LocalDynamoDB("127.0.0.1", self.ports.dynamodb).start()
            self.dynamodb_endpoint = self.dynamodb.endpoint
        accounts = demo.load_or_make_accounts(self.state_dir / "sandbox-accounts.json")
        self.sandbox = Sandbox(accounts, schedule_scale=self.schedule_scale).start("127.0.0.1", self.ports.sandbox)
        api_port = self.ports.api or _free_port()
        settings = Settings.from_env({
            "STAGE": "local", "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "AWS_DEFAULT_REGION": os.environ["AWS_DEFAULT_REGION"],
            "CHANNEL_GATEWAY": self.sandbox.ctx.base_url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        })
        bind_models(settings)
        create_tables()
        ensure_local_key(settings)
        self.container = Container(settings, self.clock)
        container_module.install(self.container)
        demo.seed(self.container, accounts)
        self._api_server = _serve_api(api_port)
        self.ports.api = api_port
        self.start_schedules()
        if self.start_edge_agent:
            self._edge_agent = _start_edge_agent(self.api_url, self.ports.edge, self.state_dir / "edge")
            self.ports.edge = self._edge_agent.port  # type: ignore[attr-defined]
        return self

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    def schedules(self) -> list[LocalSchedule]:
        """The jobs the local stack runs on a schedule, against its own container (the same service
        calls the Lambda entry points make)."""
        container = self.container
        assert container is not None, "start the stack (or give it a container) first"
        recharges = card_services(container).online  # resolved once: the loop never swaps the shared one
        return [
            LocalSchedule("expire_orders", self.expiry_interval_s, container.expiry.run),
            LocalSchedule("sweep_refunds", self.refund_interval_s, lambda: refund_sweep(container).run()),
            LocalSchedule("refund_uncredited_recharges", self.refund_interval_s, recharges.run_job),
        ]

    def start_schedules(self) -> None:
        for schedule in self.schedules():
            thread = threading.Thread(target=run_schedule, args=(schedule, self._stop),
                                      name=f"{schedule.name}-schedule", daemon=True)
            thread.start()
            self._schedule_threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._schedule_threads:
            thread.join(timeout=30)  # a run in progress finishes; no new one starts
        if self._edge_agent is not None:
            self._edge_agent.stop()  # type: ignore[attr-defined]
        if self._api_server is not None:
            self._api_server.shutdown()  # type: ignore[attr-defined]
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.dynamodb is not None:
            self.dynamodb.stop()


def _start_edge_agent(api_url: str, port: int, data_dir: Path):  # type: ignore[no-untyped-def]
    """The demo site's edge agent, as a terminal on the shop network would reach it (TCP)."""
    from edge_agent.config import AgentConfig
    from edge_agent.thread import AgentThread

    data_dir.mkdir(parents=True, exist_ok=True)
    agent = AgentThread(AgentConfig(agent_id=demo.AGENT_ID, agent_secret=demo.AGENT_SECRET, cloud_url=api_url,
                                    listen_host="127.0.0.1", listen_port=port, data_dir=str(data_dir)))
    agent.start()
    return agent


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve_api(port: int):  # type: ignore[no-untyped-def]
    """The Chalice app served in-process (what `chalice local` does), with our container installed."""
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, LocalDevServer

    from app import app

    class QuietHandler(ChaliceRequestHandler):
        def log_message(self, *args: object) -> None:
            pass  # the edge agent polls its event feed every second: one line each drowns the rest

    server = LocalDevServer(app, Config(chalice_stage="local"), "127.0.0.1", port, handler_cls=QuietHandler)
    threading.Thread(target=server.server.serve_forever, name="api", daemon=True).start()
    return server.server
