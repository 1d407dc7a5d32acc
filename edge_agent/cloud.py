"""The agent's HTTPS client of the cloud's edge API: signed, pooled, with deadlines and retries.

Every call is a POST of a JSON object, signed per :mod:`edge_agent.signing` with a fresh nonce and
timestamp for each attempt. Every endpoint the agent calls is idempotent by an id that is durable
before the first attempt (the terminal's ``(terminal_id, txn)``, which the terminal itself keeps;
an offline record's ``offline_id``, written to SQLite with the record; the event cursor), so a
retry after an attempt whose answer was lost is always safe.

What comes back is either a :class:`CloudReply` (the cloud gave a definite answer: any 2xx or a 4xx
other than 429, with a JSON object body) or :class:`CloudUnavailable` (no definite answer: the
connection failed, the deadline passed, or 429/5xx persisted through the bounded retries). Callers
never treat an unavailable cloud as a refusal: a card payment goes offline, a QR order is answered
ERR012 *without* caching that answer, so the terminal's retry asks again.

Retries: at most ``cloud_attempts`` attempts, waiting between them a random time in
``[0, min(backoff_max, backoff * 2**n)]`` ("full jitter", so that a hundred agents that lost the
cloud together do not come back in lockstep), and never past the call's deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .config import AgentConfig
from .signing import signed_headers

from .http1 import Http1Pool, HttpError

__all__ = [
    "PATH_BLACKLIST",
    "PATH_BLACKLIST_ACK",
    "PATH_CARD_OFFLINE",
    "PATH_CARD_PAY",
    "PATH_CARD_PAY_BATCH",
    "PATH_EVENTS",
    "PATH_HEARTBEAT",
    "PATH_ORDER_CANCEL",
    "PATH_ORDER_QR",
    "PATH_ORDER_QUERY",
    "PATH_ORDER_SCAN",
    "PATH_PARAMS",
    "PATH_TERMINALS",
    "CloudClient",
    "CloudReply",
    "CloudUnavailable",
]

log = logging.getLogger(__name__)

PATH_ORDER_QR = "/edge/v1/orders/qr"
PATH_ORDER_SCAN = "/edge/v1/orders/scan"
PATH_ORDER_QUERY = "/edge/v1/orders/query"
PATH_ORDER_CANCEL = "/edge/v1/orders/cancel"
PATH_EVENTS = "/edge/v1/events"
PATH_TERMINALS = "/edge/v1/terminals"
PATH_HEARTBEAT = "/edge/v1/terminals/heartbeat"
PATH_CARD_PAY = "/edge/v1/cards/pay"
PATH_CARD_PAY_BATCH = "/edge/v1/cards/pay-batch"
PATH_CARD_OFFLINE = "/edge/v1/cards/offline"
PATH_BLACKLIST = "/edge/v1/cards/blacklist"
PATH_BLACKLIST_ACK = "/edge/v1/cards/blacklist/ack"
PATH_PARAMS = "/edge/v1/cards/params"

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class CloudReply:
    """A definite answer of the cloud."""

    status: int
    body: dict[str, Any]

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        code = self.body.get("code")
        return code if isinstance(code, str) else ("OK" if self.success else f"HTTP_{self.status}")


class CloudUnavailable(Exception):
    """No definite answer from the cloud (not a refusal: the request may or may not have landed)."""


class CloudClient:
    """Keep-alive connections for the life of the agent (connection reuse), through
    :class:`~edge_agent.http1.Http1Pool` (why not httpx's transport: see there). At most
    ``cloud_max_connections`` calls are in flight; the others wait on a semaphore."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng
        self._sleep = sleep
        self._pool = Http1Pool(config.cloud_url, connect_timeout_s=config.cloud_connect_timeout_s, keepalive_s=30.0)
        self._slots = asyncio.Semaphore(config.cloud_max_connections)
        self.calls = 0  # attempts sent, for tests and the bench
        self.last_success_at: float | None = None

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def post(
        self,
        path: str,
        payload: dict[str, Any],
        *,
        deadline_s: float | None = None,
        attempts: int | None = None,
    ) -> CloudReply:
        """POST ``payload`` to ``path``; retried within ``deadline_s`` (None: the attempts'
        own timeouts bound it). Raises :class:`CloudUnavailable` without a definite answer."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        loop = asyncio.get_running_loop()
        ends_at = None if deadline_s is None else loop.time() + deadline_s
        budget = attempts or self._config.cloud_attempts
        reason = "no attempt made"
        for attempt in range(budget):
            remaining = None if ends_at is None else ends_at - loop.time()
            if remaining is not None and remaining <= 0:
                break
            limit = self._config.cloud_timeout_s if remaining is None else min(remaining, self._config.cloud_timeout_s)
            try:
                async with asyncio.timeout(limit):
                    reply = await self._attempt(path, body)
            except (TimeoutError, HttpError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if reply.status not in _RETRYABLE_STATUS:
                    if reply.success:
                        self.last_success_at = self._clock()
                    return reply
                reason = f"HTTP {reply.status} {reply.code}"
            if attempt + 1 < budget:
                await self._backoff(attempt, ends_at, loop)
        raise CloudUnavailable(f"{path}: {reason}")

    async def _attempt(self, path: str, body: bytes) -> CloudReply:
        async with self._slots:
            # Signed inside the slot: a call that waited for a connection still has a fresh timestamp.
            headers = signed_headers(
                self._config.agent_id, self._config.agent_secret, "POST", path, body, self._clock()
            )
            self.calls += 1
            response = await self._pool.post(path, list(headers.items()), body)
        try:
            parsed = json.loads(response.body or b"{}")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            # A proxy's HTML error page, say: not an answer of the edge API.
            if response.status in _RETRYABLE_STATUS:
                return CloudReply(response.status, {})
            raise HttpError(f"HTTP {response.status} without a JSON object")
        return CloudReply(response.status, parsed)

    async def _backoff(self, attempt: int, ends_at: float | None, loop: asyncio.AbstractEventLoop) -> None:
        cap = min(self._config.cloud_backoff_max_s, self._config.cloud_backoff_s * (2**attempt))
        wait = self._rng() * cap
        if ends_at is not None:
            wait = min(wait, max(0.0, ends_at - loop.time()))
        if wait > 0:
            await self._sleep(wait)

