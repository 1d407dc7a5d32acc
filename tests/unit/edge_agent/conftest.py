"""Tests marked ``both_loops`` run twice: on asyncio's own event loop and on uvloop, the loop the
agent picks when it is installed (edge_agent/event_loop.py). uvloop is a dev requirement: without
it the uvloop run fails rather than skips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge_agent_support import LOOP


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_loops") is not None:
        metafunc.parametrize("scenario_loop", ["asyncio", "uvloop"], indirect=True)


@pytest.fixture(autouse=True)
def scenario_loop(request: pytest.FixtureRequest) -> Iterator[str]:
    choice = getattr(request, "param", "asyncio")
    LOOP["choice"] = choice
    yield choice
    LOOP["choice"] = "asyncio"
