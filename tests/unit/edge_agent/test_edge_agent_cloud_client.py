"""The cloud client against the stub cloud over real HTTP: signatures the cloud accepts, connection
reuse, bounded retries with jittered backoff, deadlines, and what counts as a definite answer."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from edge_agent.cloud import PATH_CARD_PAY, PATH_TERMINALS, CloudClient, CloudUnavailable
from edge_agent.simulator.stub_cloud import StubCloud

from edge_agent_support import AGENT_ID, SECRET, TERMINALS, config_for, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)


def _client(url: str, tmp_path: Path, waits: list[float] | None = None, **changes: object) -> CloudClient:
    async def record_sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    return CloudClient(config_for(url, tmp_path, **changes), rng=lambda: 1.0, sleep=record_sleep)


def test_signed_calls_reuse_one_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
        client = _client(cloud.url, tmp_path)
        try:
            for _ in range(5):
                reply = await client.post(PATH_TERMINALS, {})
                assert reply.success and len(reply.body["terminals"]) == 3
            assert cloud.connections == 1 and client.calls == 5
            assert len(cloud.state.nonces) == 5  # a fresh nonce for every call
        finally:
            await client.aclose()
            await cloud.stop()

    run(scenario)


def test_wrong_secret_is_a_definite_401_and_not_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        cloud = await StubCloud(AGENT_ID, "the-real-secret", TERMINALS).start()
        client = _client(cloud.url, tmp_path)
        try:
            reply = await client.post(PATH_TERMINALS, {})
            assert reply.status == 401 and reply.code == "UNAUTHORIZED" and client.calls == 1
        finally:
            await client.aclose()
            await cloud.stop()

    run(scenario)


def test_unavailable_cloud_is_retried_with_growing_jittered_waits(tmp_path: Path) -> None:
    async def scenario() -> None:
        cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
        cloud.down = True
        waits: list[float] = []
        client = _client(cloud.url, tmp_path, waits, cloud_attempts=4, cloud_backoff_s=0.1, cloud_backoff_max_s=0.3)
        try:
            with pytest.raises(CloudUnavailable, match="HTTP 503"):
                await client.post(PATH_TERMINALS, {})
            assert cloud.state.calls[PATH_TERMINALS] == 4
            assert waits == [0.1, 0.2, 0.3]  # rng()=1.0 gives each cap: 0.1 doubling, capped at 0.3
            cloud.down = False
            assert (await client.post(PATH_TERMINALS, {})).success
        finally:
            await client.aclose()
            await cloud.stop()

    run(scenario)


def test_jitter_scales_the_wait(tmp_path: Path) -> None:
    async def scenario() -> None:
        cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
        cloud.down = True
        waits: list[float] = []

        async def record(seconds: float) -> None:
            waits.append(seconds)

        client = CloudClient(config_for(cloud.url, tmp_path, cloud_attempts=3, cloud_backoff_s=0.4,
                                               cloud_backoff_max_s=5.0),
                             rng=lambda: 0.25, sleep=record)
        try:
            with pytest.raises(CloudUnavailable):
                await client.post(PATH_TERMINALS, {})
            assert waits == [0.1, 0.2]
        finally:
            await client.aclose()
            await cloud.stop()

    run(scenario)


def test_deadline_bounds_a_hanging_cloud(tmp_path: Path) -> None:
    async def scenario() -> None:
        cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
        cloud.hang_s = 5.0
        client = CloudClient(config_for(cloud.url, tmp_path, cloud_attempts=3))
        loop = asyncio.get_running_loop()
        try:
            started = loop.time()
            with pytest.raises(CloudUnavailable, match="TimeoutError"):
                await client.post(PATH_CARD_PAY, {"terminal_id": "T0001"}, deadline_s=0.2)
            assert loop.time() - started < 2.0  # far below one attempt's own 2 s timeout
            assert client.calls == 1
        finally:
            await client.aclose()
            await cloud.stop()

    run(scenario)


def test_nobody_listening_is_unavailable(tmp_path: Path) -> None:
    async def scenario() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        client = _client(f"http://127.0.0.1:{port}", tmp_path, cloud_attempts=2)
        try:
            with pytest.raises(CloudUnavailable, match="ConnectError"):
                await client.post(PATH_TERMINALS, {})
            assert client.calls == 2
        finally:
            await client.aclose()

    run(scenario)
