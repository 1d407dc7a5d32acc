"""Webhook tests through the real stack: Chalice test client -> /notify/{kind}/{merchant_id} ->
NotificationService -> the real channel that DirectoryChannels builds from the merchant's KMS-sealed
settings -> DynamoDB (the session's moto server).

The golden payloads carry fixed order ids (tests/fixtures/*/README.md), so every test here creates the
same order ids again. These tests therefore run on their own set of tables (prefix NOTIFY_PREFIX, created
once per session) and start each test with the money tables emptied: no other test can own one of
those ids, and "nothing changed" can be checked over whole tables, not one terminal's rows.
"""
from __future__ import annotations

import dataclasses
import logging
import socket
from typing import Iterator

import pytest
from chalice.test import Client

from app import app
from chalicelib.config import Settings
from chalicelib.container import Container, install
from chalicelib.domain.clock import FixedClock
from chalicelib.store.connection import bind_models, create_tables
from chalicelib.store.models import OrderModel

from tests.conftest import T0

from notify_support import NOTIFY_PREFIX, LogRecords, wipe_money_tables

@pytest.fixture(scope="session")
def notify_settings(settings: Settings) -> Iterator[Settings]:
    """The session's emulator and KMS key, with private tables."""
    own = dataclasses.replace(settings, table_prefix=NOTIFY_PREFIX)
    bind_models(own)
    create_tables()
    bind_models(settings)
    yield own


@pytest.fixture(scope="module")
def service_clock() -> FixedClock:
    """The services' clock; the v3 module sets it next to its fixtures' signing time."""
    return FixedClock(T0)


@pytest.fixture(scope="module")
def channel_gateway() -> str:
    """Platform base URL for the channels: a loopback port where nothing listens, so a channel that
    unexpectedly calls its platform gets UNKNOWN at once and never reaches the real WeChat Pay or
    Alipay. The v3 module points it at a sandbox for certificate downloads."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture(scope="module")
def stack(notify_settings: Settings, settings: Settings, service_clock: FixedClock,
          channel_gateway: str) -> Iterator[Container]:
    """A production Container (no channels_override: channels come from DirectoryChannels), one per
    module like one warm Lambda container serving many requests. Binding the models makes a botocore
    client per table (seconds on a busy machine), so it is done once per module, not per test; every
    test seeds its own merchant, so the directory's cache cannot carry anything between tests."""
    built = Container(dataclasses.replace(notify_settings, channel_gateway=channel_gateway), service_clock,
                      sleep=service_clock.advance)
    yield built
    bind_models(settings)  # give the other tests their tables back


@pytest.fixture
def container(stack: Container) -> Iterator[Container]:
    """The module's Container, installed for the webhook, with empty money tables."""
    assert OrderModel.Meta.table_name.startswith(NOTIFY_PREFIX)  # never empty the shared tables
    wipe_money_tables()
    install(stack)
    yield stack
    install(None)  # type: ignore[arg-type]


@pytest.fixture
def http(container: Container) -> Iterator[object]:
    with Client(app) as client:
        yield client.http


@pytest.fixture
def log_records() -> Iterator[LogRecords]:
    """Every log record emitted during the test (pytest's logging plugin is off in this project)."""
    handler = LogRecords()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)
