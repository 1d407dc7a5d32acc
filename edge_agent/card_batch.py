"""Card payments to the cloud in batches, their answers stored in one SQLite commit per batch.

Natural batching: a swipe goes to the cloud at once when no card-pay call is in flight (or, while
the agent is not busy, fewer than ``max_in_flight``: see below); otherwise it queues, and the queue
goes as ONE signed request (at most ``max_items`` payments) as soon as a call returns. A lone swipe
thus waits for nothing, and under load each call carries many swipes: the cost of a signed HTTP
request (and of the SQLite commit of its answers) is shared by all of them. A call of one payment goes to ``/edge/v1/cards/pay``, of more to
``/edge/v1/cards/pay-batch`` (which answers each item exactly as the single endpoint would).

Calls overlap (up to ``max_in_flight``) at once while the agent is not busy: a swipe that finds
a call in flight starts its own when the last call carried one payment, so at a few swipes a
second no swipe waits for another's round trip. Once calls carry several payments (swipes come
faster than single calls return), a queued swipe waits for the call in flight instead, unless the
queue already holds a full batch or its oldest swipe has waited ``overlap_after_s`` (one loop
timer, armed per queue, not per swipe). Starting a call for every swipe that found one in flight
made calls of ~6 payments at 100 busy terminals on the bench; waiting makes them about three times
larger, for fewer calls and commits per swipe. A slow call still cannot hold the queue up for
longer than ``overlap_after_s``, and a burst (1,000 terminals' first swipes) fills batches at once
and gets all ``max_in_flight`` calls, as before.

The answers of a batch are written to the ``answers`` table in one store job (one transaction,
one fsync), and only then handed to the waiting terminals: durable before answering, as before.

Deadlines stay per swipe (``card_pay_deadline_s``, counted from the swipe's arrival; one loop
timer serves them all, see :class:`_Deadlines`): a swipe
whose cloud answer is not in hand by then gets :class:`CloudUnavailable` and is decided offline
by the caller. If it is still queued it is taken out and never sent (:class:`NotSent`: the caller
knows the cloud cannot have it); if its request is in flight
it may still land in the cloud, which is why an offline record keeps the online attempt's txn
(see :mod:`edge_agent.payments`). Once the cloud's answer is in hand the deadline no longer
applies: the swipe waits for the disk and gets the cloud's answer, never a second, offline one.

A cloud that does not know ``pay-batch`` (HTTP 403, 404 or 405 without a batch answer: an older
deployment) is asked item by item from then on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .answers import DUPLICATE_TXN_MSG, refusal
from .config import CARD_PAY_BATCH_ITEMS, CARD_PAY_CALLS_IN_FLIGHT, CARD_PAY_OVERLAP_AFTER_S
from .cloud import PATH_CARD_PAY, PATH_CARD_PAY_BATCH, CloudClient, CloudReply, CloudUnavailable
from .protocol import Command
from .store import Store, put_answers

__all__ = ["AgentRefused", "CardPayBatcher", "NotSent"]

log = logging.getLogger(__name__)

_UNSUPPORTED = frozenset({403, 404, 405})


class AgentRefused(Exception):
    """The cloud refused the agent's signature (HTTP 401): the payment is decided offline."""

    def __init__(self, reply: CloudReply) -> None:
        super().__init__(f"HTTP {reply.status}: {reply.body}")
        self.reply = reply


class NotSent(CloudUnavailable):
    """No answer by the deadline, and the payment never left the queue: the cloud cannot have it."""


@dataclass(eq=False)
class _Swipe:
    tid: str
    txn: int
    digest: str
    payload: dict[str, Any]
    ends_at: float  # loop time
    queued_at: float  # loop time
    future: asyncio.Future[dict[str, Any]]
    deadline_s: float = 0.0  # for the words of the offline reason
    sent: bool = False  # in a request: it may land in the cloud
    answered: bool = False  # the cloud's answer is in hand: the deadline no longer applies
    abandoned: bool = False  # answered offline meanwhile: not sent, its cloud answer not stored


@dataclass
class _Stats:
    """Card-pay calls made (a batch the cloud did not know, then paid one by one, counts both)."""

    calls: int = 0
    items: int = 0  # payments in those calls
    largest: int = 0
    by_size: dict[int, int] = field(default_factory=dict)  # payments in a call -> calls


class CardPayBatcher:
    def __init__(self, cloud: CloudClient, store: Store, to_answer: Callable[[int, CloudReply], dict[str, Any]],
                 *, clock: Callable[[], float] = time.time, max_items: int = CARD_PAY_BATCH_ITEMS,
                 max_in_flight: int = CARD_PAY_CALLS_IN_FLIGHT,
                 overlap_after_s: float = CARD_PAY_OVERLAP_AFTER_S) -> None:
        self._cloud = cloud
        self._store = store
        self._to_answer = to_answer  # (txn, the cloud's reply) -> the body the terminal gets
        self._clock = clock
        self._max_items = max_items
        self._max_in_flight = max_in_flight
        self._overlap_after_s = overlap_after_s
        self._overlap_timer: asyncio.TimerHandle | None = None
        self._last_call_size = 0  # payments in the call started last: more than one means busy
        self._overlap_loop: asyncio.AbstractEventLoop | None = None  # the timer's (tests run several loops)
        self._queue: deque[_Swipe] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._batch_endpoint = True
        self._deadlines = _Deadlines()
        self.stats = _Stats()

    @property
    def in_flight(self) -> int:
        """Card-pay calls to the cloud now in flight."""
        return self._in_flight

    async def pay(self, tid: str, txn: int, digest: str, payload: dict[str, Any], deadline_s: float) -> dict[str, Any]:
        """The stored answer of the cloud for this payment. Raises :class:`CloudUnavailable` when
        there is none by the deadline, :class:`AgentRefused` on a 401."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        swipe = _Swipe(tid, txn, digest, payload, now + deadline_s, now, loop.create_future(), deadline_s)
        self._deadlines.add(loop, swipe)
        self._queue.append(swipe)
        self._start_calls()
        return await swipe.future

    def _start_calls(self) -> None:
        while self._queue and self._in_flight < self._max_in_flight:
            if self._in_flight and self._last_call_size > 1 and not self._overlap_due():
                return  # busy: the queue waits for the call in flight, and goes with the next one
            batch: list[_Swipe] = []
            while self._queue and len(batch) < self._max_items:
                swipe = self._queue.popleft()
                if not swipe.abandoned:
                    swipe.sent = True
                    batch.append(swipe)
            if not batch:
                return
            self._in_flight += 1
            self._last_call_size = len(batch)
            task = asyncio.get_running_loop().create_task(self._call(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, batch: list[_Swipe]) -> None:
        try:
            replies = await self._replies(batch)
            await self._store_answers(batch, replies)
        except BaseException as exc:  # noqa: BLE001 - every waiter hears it (also a cancellation)
            for swipe in batch:
                if not swipe.future.done():
                    swipe.future.set_exception(exc if isinstance(exc, Exception) else CloudUnavailable(repr(exc)))
                    swipe.future.exception()  # retrieved: a waiter gone offline must not make it "never retrieved"
            if not isinstance(exc, Exception):
                raise
        finally:
            self._in_flight -= 1
            self._start_calls()

    async def _replies(self, batch: list[_Swipe]) -> list[CloudReply | CloudUnavailable]:
        loop = asyncio.get_running_loop()
        deadline_s = max(s.ends_at for s in batch) - loop.time()
        if len(batch) == 1:  # the lone swipe of a quiet moment: no gather around one call
            self._count(1)
            try:
                return [await self._cloud.post(PATH_CARD_PAY, batch[0].payload, deadline_s=deadline_s)]
            except Exception as exc:  # noqa: BLE001 - no definite answer: decided offline, as gather's would be
                return [exc if isinstance(exc, CloudUnavailable) else CloudUnavailable(repr(exc))]
        if not self._batch_endpoint:
            for _ in batch:
                self._count(1)
            replies = await asyncio.gather(*(self._cloud.post(PATH_CARD_PAY, s.payload, deadline_s=deadline_s)
                                             for s in batch), return_exceptions=True)
            return [r if isinstance(r, (CloudReply, CloudUnavailable)) else CloudUnavailable(repr(r)) for r in replies]
        self._count(len(batch))
        reply = await self._cloud.post(PATH_CARD_PAY_BATCH, {"items": [s.payload for s in batch]},
                                       deadline_s=deadline_s)
        results = reply.body.get("results")
        if reply.success and isinstance(results, list) and len(results) == len(batch):
            return [_item_reply(result) for result in results]
        if reply.status == 401:
            return [reply] * len(batch)
        if reply.status in _UNSUPPORTED:
            log.warning("the cloud has no card-pay batches (HTTP %s): paying one by one", reply.status)
            self._batch_endpoint = False
            return await self._replies(batch)
        raise CloudUnavailable(f"card-pay batch answered HTTP {reply.status} {reply.code}")

    async def _store_answers(self, batch: list[_Swipe], replies: list[CloudReply | CloudUnavailable]) -> None:
        now = self._clock()
        bodies: list[dict[str, Any] | Exception] = []
        for swipe, reply in zip(batch, replies):
            if isinstance(reply, CloudUnavailable):
                bodies.append(reply)
                continue
            swipe.answered = not swipe.abandoned
            bodies.append(AgentRefused(reply) if reply.status == 401 else self._to_answer(swipe.txn, reply))
        stored = [(s, b) for s, b in zip(batch, bodies) if s.answered and isinstance(b, dict)]

        def write(c: Any) -> list[dict[str, Any]]:
            answers = put_answers(c, [(s.tid, s.txn, Command.CARD_PAY, s.digest, body) for s, body in stored], now)
            return [answer.body if (answer.cmd, answer.digest) == (Command.CARD_PAY, swipe.digest)
                    else refusal(Command.CARD_PAY, swipe.txn, "ERR011", DUPLICATE_TXN_MSG)
                    for (swipe, _body), answer in zip(stored, answers)]

        kept = await self._store.write(write) if stored else []
        for (swipe, _body), body in zip(stored, kept):
            if not swipe.future.done():
                swipe.future.set_result(body)
        for swipe, body in zip(batch, bodies):
            if isinstance(body, Exception) and not swipe.future.done():
                swipe.future.set_exception(body)
                swipe.future.exception()
            elif not swipe.future.done():  # abandoned: its terminal was answered offline
                swipe.future.cancel()

    def _overlap_due(self) -> bool:
        """With a call in flight, whether the queue should go in a call of its own now rather than
        wait for that call to return; if not yet, a timer comes back when its oldest swipe is due."""
        queue = self._queue
        if len(queue) >= self._max_items:
            return True
        loop = asyncio.get_running_loop()
        due_at = queue[0].queued_at + self._overlap_after_s
        if due_at <= loop.time():
            return True
        timer = self._overlap_timer
        if timer is not None and timer.when() <= due_at and not timer.cancelled() and self._overlap_loop is loop:
            return False  # a timer comes back in time already
        if timer is not None:
            timer.cancel()
        self._overlap_timer, self._overlap_loop = loop.call_at(due_at, self._overlap_timer_fired), loop
        return False

    def _overlap_timer_fired(self) -> None:
        self._overlap_timer = None
        self._start_calls()

    def _count(self, size: int) -> None:
        self.stats.calls += 1
        self.stats.items += size
        self.stats.largest = max(self.stats.largest, size)
        self.stats.by_size[size] = self.stats.by_size.get(size, 0) + 1


class _Deadlines:
    """Every swipe's deadline with ONE loop timer, armed at the earliest deadline still pending.

    A timer per swipe (a ``TimerHandle`` pushed on the loop's heap, then cancelled) was a visible
    share of the event loop's work per swipe. Swipes arrive with the same ``deadline_s``, so their
    deadlines come in arrival order: a deque does, and the timer fires at the head's deadline, to
    the same loop-clock instant as a timer of its own would. It then gives up the swipes that are
    due and still unanswered, drops those already answered (at the head, lazily) and re-arms for
    the next one still waiting. A swipe whose deadline is earlier than the last one queued (a
    smaller ``deadline_s``) gets a timer of its own, so no deadline is ever late.
    """

    def __init__(self) -> None:
        self._swipes: deque[_Swipe] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, loop: asyncio.AbstractEventLoop, swipe: _Swipe) -> None:
        if loop is not self._loop:  # a new loop (tests run several): the old one's timer never fires
            self._loop, self._timer = loop, None
            self._swipes.clear()
        swipes = self._swipes
        if swipes and swipe.ends_at < swipes[-1].ends_at:
            loop.call_at(swipe.ends_at, _expire, swipe)  # out of order: its own timer
            return
        swipes.append(swipe)
        if self._timer is None:
            self._timer = loop.call_at(swipe.ends_at, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        swipes = self._swipes
        now = loop.time()
        while swipes:
            head = swipes[0]
            if head.future.done():
                swipes.popleft()  # answered (or given up) already
            elif head.ends_at <= now:
                swipes.popleft()
                _expire(head)
            else:
                self._timer = loop.call_at(head.ends_at, self._sweep, loop)
                return


def _expire(swipe: _Swipe) -> None:
    """The swipe's deadline: without the cloud's answer in hand it is given up (still queued:
    never sent; in flight: its answer will not be stored) and its caller decides offline."""
    if not swipe.answered and not swipe.future.done():
        swipe.abandoned = True
        problem = f"no card-pay answer within {swipe.deadline_s:g} s"
        swipe.future.set_exception(CloudUnavailable(problem) if swipe.sent else NotSent(f"{problem}, never sent"))


def _item_reply(result: Any) -> CloudReply | CloudUnavailable:
    """One item of a batch answer, as the reply of the single endpoint it stands for; an item that
    is not a definite answer (malformed, or a server error) is no answer: decided offline."""
    if isinstance(result, dict) and isinstance(result.get("body"), dict):
        status = result.get("status")
        if isinstance(status, int) and not isinstance(status, bool) and status < 500:
            return CloudReply(status, result["body"])
    return CloudUnavailable(f"card-pay batch item without a definite answer: {str(result)[:200]}")
