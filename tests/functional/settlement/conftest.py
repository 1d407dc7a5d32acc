"""Settlement's own tables (until they join ALL_MODELS) and the services under test, built per test."""
from __future__ import annotations

from typing import Callable

import pytest

from chalicelib.container import Container
from chalicelib.services.refunds import RefundService
from chalicelib.services.settlement import SettlementService, no_checkpoint
from chalicelib.store.settlement import JobRunStore, SettlementStore


@pytest.fixture
def log_lines() -> list[dict]:
    return []


@pytest.fixture
def make_settlement(container: Container, log_lines: list[dict]) -> Callable[..., SettlementService]:
    def make(checkpoint=no_checkpoint, progress_every: int = 1) -> SettlementService:  # type: ignore[no-untyped-def]
        return SettlementService(SettlementStore(container.settings), JobRunStore(), container.clock,
                                 log_lines.append, checkpoint, progress_every)

    return make


@pytest.fixture
def refunds(container: Container) -> RefundService:
    return container.refunds  # as the API uses it: fees priced into the day's totals
