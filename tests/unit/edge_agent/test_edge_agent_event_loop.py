"""The agent's event loop: uvloop when installed (``auto``), the standard loop on request, and a
clear refusal when uvloop is asked for on a machine without it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent import event_loop
from edge_agent.config import AgentConfig

ROOT = Path(__file__).resolve().parents[3]


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_means_uvloop_when_it_is_installed() -> None:
    # uvloop is a dev requirement: if it is missing this fails rather than skips.
    assert event_loop.loop_name("auto") == "uvloop"
    assert event_loop.run(loop_module(), "auto").startswith("uvloop")
    assert event_loop.run(loop_module(), "uvloop").startswith("uvloop")


def test_asyncio_means_the_standard_loop_whatever_is_installed() -> None:
    assert event_loop.loop_name("asyncio") == "asyncio"
    assert event_loop.run(loop_module(), "asyncio").startswith("asyncio")


def test_a_thread_of_its_own_gets_the_same_kind_of_loop() -> None:
    for choice, module in (("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")):
        loop = event_loop.new_event_loop(choice)
        try:
            assert type(loop).__module__.startswith(module)
        finally:
            loop.close()


def test_an_unknown_choice_is_refused_by_the_module_and_the_config() -> None:
    coroutine = loop_module()
    with pytest.raises(ValueError, match="event_loop must be one of auto, uvloop, asyncio"):
        event_loop.run(coroutine, "trio")
    assert coroutine.cr_frame is None  # closed, never left dangling
    with pytest.raises(ValueError, match="event_loop must be one of"):
        AgentConfig(agent_id="E", agent_secret="s", cloud_url="http://127.0.0.1:1", event_loop="trio")


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused() -> None:
    # A fresh interpreter where "import uvloop" fails, as on a machine without the wheel.
    script = (
        "import sys; sys.modules['uvloop'] = None\n"
        "import asyncio\n"
        "from edge_agent import event_loop\n"
        "async def kind(): return type(asyncio.get_running_loop()).__module__\n"
        "print(event_loop.loop_name('auto'), event_loop.run(kind(), 'auto'))\n"
        "try:\n"
        "    event_loop.run(kind(), 'uvloop')\n"
        "except event_loop.LoopUnavailable as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    first, second = out.splitlines()
    assert first.split() == ["asyncio", "asyncio.unix_events"]
    assert second == "refused: event_loop is 'uvloop' but uvloop is not installed (pip install uvloop)"
