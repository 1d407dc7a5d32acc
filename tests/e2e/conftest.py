"""The local stack of `make run` (API, sandbox) on free ports, over the session's emulator."""
from __future__ import annotations

import json
import os
import time
from typing import Callable, TypeVar

import httpx
import pytest

from chalicelib import container as container_module
from chalicelib.domain import edge_auth
from chalicelib.store.connection import bind_models
from devstack import demo
from devstack.stack import LocalStack, Ports


@pytest.fixture(scope="package")
def stack(settings, local_dynamodb, tmp_path_factory):  # type: ignore[no-untyped-def]
    started = LocalStack(Ports(api=0, dynamodb=0, sandbox=0, edge=0), state_dir=tmp_path_factory.mktemp("local"),
                         schedule_scale=0.01, dynamodb_endpoint=local_dynamodb.endpoint).start()
    yield started
    started.stop()
    bind_models(settings)  # back to the test tables for the tests that follow
    container_module.install(None)  # type: ignore[arg-type]


def signed_post(stack: LocalStack, path: str, payload: dict, agent: tuple[str, str] = (demo.AGENT_ID, demo.AGENT_SECRET)
                ) -> httpx.Response:
    """A signed edge request, by default as the demo edge agent (which `make run` also runs)."""
    agent_id, secret = agent
    body = json.dumps(payload).encode()
    now, nonce = int(time.time()), os.urandom(12).hex()
    headers = {"Content-Type": "application/json", "X-ScanPay-Agent": agent_id, "X-ScanPay-Timestamp": str(now),
               "X-ScanPay-Nonce": nonce,
               "X-ScanPay-Signature": edge_auth.sign(secret, "POST", path, now, nonce, body)}
    return httpx.post(stack.api_url + path, content=body, headers=headers, timeout=20)


T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    """The probe's first truthy answer: notifications and uploads arrive in the background."""
    deadline = time.time() + timeout_s
    while True:
        answer = probe()
        if answer or time.time() >= deadline:
            break
        time.sleep(interval_s)
    assert answer, f"{what} did not happen within {timeout_s} s"
    return answer


def order_status(stack: LocalStack, order_id: str) -> str:
    return stack.container.orders.get(order_id).order.status.value
