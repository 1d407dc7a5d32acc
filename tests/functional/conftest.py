from __future__ import annotations

import pytest
from chalice.test import Client

from app import app
from chalicelib.config import Settings
from chalicelib.container import Container, install
from chalicelib.domain.clock import FixedClock
from tests.support.edge_client import EdgeTestClient
from tests.support.fake_channel import FakeChannels
from tests.support.world import World, seed_world


@pytest.fixture
def fake_channels() -> FakeChannels:
    return FakeChannels()


@pytest.fixture
def container(settings: Settings, clock: FixedClock, fake_channels: FakeChannels) -> Container:
    built = Container(settings, clock, sleep=clock.advance, channels_override=fake_channels)
    install(built)
    yield built
    install(None)  # type: ignore[arg-type]


@pytest.fixture
def world(container: Container) -> World:
    return seed_world(container)


@pytest.fixture
def http(container: Container) -> Client:
    with Client(app) as client:
        yield client.http


@pytest.fixture
def edge(http, world: World, clock: FixedClock) -> EdgeTestClient:  # type: ignore[no-untyped-def]
    return EdgeTestClient(http, world.agent_id, world.agent_secret, clock)
