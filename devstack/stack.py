"""Starts the embedded local stack in one process: emulator, sandbox, API, expiry schedule.

Used by `make run` (devstack/__main__.py) and by the end-to-end tests, which start it on free
ports. Each part listens on 127.0.0.1 only.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib import container as container_module
from chalicelib.config import Settings
from chalicelib.container import Container
from chalicelib.domain.clock import Clock, SystemClock
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


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    state_dir: Path = Path(".local")
    clock: Clock = field(default_factory=SystemClock)
    schedule_scale: float = 0.1  # notification retries 10x faster than the platforms'
    expiry_interval_s: float = 60.0
    dynamodb_endpoint: str | None = None  # use a running emulator instead of starting one (tests)
    start_edge_agent: bool = True
    dynamodb: LocalDynamoDB | None = None
    sandbox: Sandbox | None = None
    container: Container | None = None
    _api_server: object = None
    _edge_agent: object = None
    _stop: threading.Event = field(default_factory=threading.Event)

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
        threading.Thread(target=self._expiry_loop, name="expiry-schedule", daemon=True).start()
        if self.start_edge_agent:
            self._edge_agent = _start_edge_agent(self.api_url, self.ports.edge, self.state_dir / "edge")
            self.ports.edge = self._edge_agent.port  # type: ignore[attr-defined]
        return self

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    def _expiry_loop(self) -> None:
        """The local stand-in for the EventBridge rate(1 minute) schedule."""
        while not self._stop.wait(self.expiry_interval_s):
            try:
                assert self.container is not None
                self.container.expiry.run()
            except Exception:  # noqa: BLE001 - a failed run is retried next minute, as on AWS
                log.exception("expiry run failed")

    def stop(self) -> None:
        self._stop.set()
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
