"""The real Chalice app for the edge agent's integration tests: the session's moto DynamoDB and KMS,
a Container with the system clock (the agent signs with real time, and the API checks it against its
own clock) and in-memory payment channels, one seeded world per test."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from chalice.config import Config
from chalice.local import LocalDevServer
from chalice.test import Client

from app import app
from chalicelib.config import Settings
from chalicelib.container import Container, install
from chalicelib.domain.clock import SystemClock
from tests.support.fake_channel import FakeChannels
from tests.support.world import World, seed_world


@pytest.fixture
def fake_channels() -> FakeChannels:
    return FakeChannels()


@pytest.fixture
def live_container(settings: Settings, fake_channels: FakeChannels) -> Iterator[Container]:
    built = Container(settings, SystemClock(), sleep=lambda _s: None, channels_override=fake_channels)
    install(built)
    yield built
    install(None)  # type: ignore[arg-type]


@pytest.fixture
def world(live_container: Container) -> World:
    return seed_world(live_container)


@pytest.fixture
def http(live_container: Container) -> Iterator[object]:
    with Client(app) as client:
        yield client.http


@pytest.fixture
def api_url(live_container: Container) -> Iterator[str]:
    """The app served over real HTTP on loopback, as `chalice local` does."""
    server = LocalDevServer(app, Config(chalice_stage="local"), "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, name="api", daemon=True)
    thread.start()
    host, port = server.server.server_address[:2]
    yield f"http://{host}:{port}"
    server.server.shutdown()
    server.server.server_close()
    thread.join(5)
