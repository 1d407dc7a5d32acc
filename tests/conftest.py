"""Shared fixtures: one serialised moto server (DynamoDB + KMS) per test session, tables and a KMS
key in it, and a fresh service Container per test with a fixed clock."""
from __future__ import annotations

import os

import pytest

# Dummy credentials before any boto3 import: nothing here may reach AWS.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-east-1",
}.items():
    os.environ[_name] = _value

from chalicelib import container as container_module  # noqa: E402
from chalicelib.config import Settings  # noqa: E402
from chalicelib.container import Container  # noqa: E402
from chalicelib.domain.clock import FixedClock  # noqa: E402
from chalicelib.store.connection import bind_models, create_tables  # noqa: E402
from chalicelib.store.secrets import ensure_local_key  # noqa: E402
from devstack.dynamodb import LocalDynamoDB  # noqa: E402

T0 = 1_795_000_000.0  # 2026-11-18 15:46:40 Beijing: a fixed 'now' for tests


@pytest.fixture(scope="session")
def local_dynamodb() -> LocalDynamoDB:
    server = LocalDynamoDB().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(local_dynamodb: LocalDynamoDB) -> Settings:
    settings = Settings.from_env({
        "STAGE": "test",
        "DYNAMODB_ENDPOINT": local_dynamodb.endpoint,
        "AWS_DEFAULT_REGION": "ap-east-1",
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    })
    bind_models(settings)
    create_tables()
    ensure_local_key(settings)
    return settings


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Container:
    built = Container(settings, clock, sleep=clock.advance)
    container_module.install(built)
    yield built
    container_module.install(None)  # type: ignore[arg-type]
