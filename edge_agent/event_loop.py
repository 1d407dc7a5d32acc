"""Which asyncio event loop runs the agent: uvloop when it is installed, else the standard one.

uvloop (libuv under the asyncio API) runs the same code with less CPU per loop step and per socket
read and write. On the bench (bench/README.md, "Edge agent") it took the agent's CPU per swipe at
100 busy terminals down by about 6 %. It is optional, like the compiled CRC: a machine without
a wheel for it runs the agent on the standard loop, with the same behaviour (the unit tests run on
the standard loop and, for the tests marked ``both_loops``, on uvloop too; the agent started as a
process by the tests runs on whichever ``auto`` finds).

The ``event_loop`` setting: ``auto`` (uvloop if importable), ``uvloop`` (refuse to start without
it), ``asyncio`` (the standard loop, whatever is installed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["CHOICES", "LoopUnavailable", "loop_name", "new_event_loop", "run"]

T = TypeVar("T")
CHOICES = ("auto", "uvloop", "asyncio")


class LoopUnavailable(RuntimeError):
    """``event_loop = "uvloop"`` on a machine without uvloop installed."""


def loop_name(choice: str) -> str:
    """The loop that ``choice`` means on this machine: "uvloop" or "asyncio"."""
    if choice not in CHOICES:
        raise ValueError(f"event_loop must be one of {', '.join(CHOICES)}: {choice!r}")
    if choice == "asyncio":
        return "asyncio"
    if _uvloop_installed():
        return "uvloop"
    if choice == "uvloop":
        raise LoopUnavailable("event_loop is 'uvloop' but uvloop is not installed (pip install uvloop)")
    return "asyncio"


def _uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the loop that ``choice`` means."""
    try:
        name = loop_name(choice)
    except Exception:
        main.close()  # never awaited: closed, so Python does not warn about it
        raise
    if name == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def new_event_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    """A new loop of the kind ``choice`` means, for a host that runs the agent in a thread of its own
    (:mod:`edge_agent.thread`)."""
    if loop_name(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
