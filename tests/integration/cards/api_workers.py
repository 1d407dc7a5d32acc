"""API worker processes for the cards concurrency tests (each serves one request at a time, as a
Lambda container does) and a signed POST to them; `api_urls` is a fixture through conftest.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.edge_client import signed_headers

ROOT = Path(__file__).resolve().parents[3]
API_WORKERS = 5  # API processes (Lambda containers), each serving one request at a time


@pytest.fixture(scope="module")
def api_urls(settings):  # type: ignore[no-untyped-def]
    """The base URLs of API_WORKERS processes serving the app against the test emulator."""
    env = {**os.environ, "STAGE": "test", "DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
           "AWS_DEFAULT_REGION": settings.region, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.cards.api_worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(API_WORKERS)]
    try:
        yield [f"http://127.0.0.1:{int(p.stdout.readline())}" for p in procs]  # type: ignore[union-attr]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def post_signed(url: str, world, path: str, body: dict, timeout: float = 120) -> dict:  # type: ignore[no-untyped-def]
    """POST ``body`` to ``url + path`` signed as the world's edge agent; the JSON answer."""
    raw = json.dumps(body).encode()
    headers = signed_headers(world.agent_id, world.agent_secret, "POST", path, raw, time.time())
    request = urllib.request.Request(url + path, data=raw, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())
