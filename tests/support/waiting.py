"""Waiting for a condition in async tests: poll, return the first truthy value, fail at a timeout.

The timeout only bounds a broken run; a passing run returns as soon as the condition holds, so no
test depends on how fast this machine is."""
from __future__ import annotations

import asyncio
from typing import Any, Callable


async def until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    async with asyncio.timeout(timeout):
        while not (value := check()):
            await asyncio.sleep(interval)
        return value
