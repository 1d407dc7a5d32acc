"""CARD_PAY: online through the cloud within 800 ms, else decided offline; exactly once.

Online: ``POST /edge/v1/cards/pay`` ``{terminal_id, txn, card, amount_fen, ts}``, which the cloud
makes idempotent per (terminal_id, txn), or several of these at once in ``/edge/v1/cards/pay-batch``
(see :mod:`edge_agent.card_batch`: swipes that arrive while card-pay calls are in flight go
together, and their answers are stored in one commit). The answer ``{ok, code, msg, voice,
balance_fen}`` is stored and then sent.

Offline, when the cloud gives no definite answer by ``card_pay_deadline_s``: the decision of
:func:`edge_agent.offline.decide_offline` is taken inside one SQLite transaction together with
everything it reads (the card's offline usage of the day, the terminal's pending count, the
blacklist) and everything it writes (the offline record with its ``offline_id``, and the answer),
so two terminals swiping one card at once cannot both slip under a limit, and the record is on
disk before the terminal hears OK. The record's txn is the same as the online attempt's: if that
attempt did land in the cloud after all, the upload is a repeat that the cloud answers from its
dedupe, and the card is charged once.

An offline *refusal* after an attempt that may have reached the cloud is written to
``uncertain`` (and listed by ``python -m edge_agent --status``): the cloud may have charged a
payment the terminal was told failed, and the cards API has no query or void for a (terminal, txn)
that the agent could use to settle it by itself. A swipe that never left the batch queue
(:class:`~edge_agent.card_batch.NotSent`) cannot be in the cloud and is not written there.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from .answers import card_answer, digest, message, refusal, terminal_code
from .card_batch import AgentRefused, CardPayBatcher, NotSent
from .cloud import CloudClient, CloudReply, CloudUnavailable
from .config import AgentConfig
from .offline import beijing_day, decide_offline, yuan
from .once import ExactlyOnce, Outcome
from .protocol import CardPay, Command
from .store import (
    Store,
    blacklisted,
    card_day_usage,
    insert_offline,
    put_answer,
    put_uncertain,
    terminal_pending,
)
from .terminals import TerminalDirectory

__all__ = ["CardPayments", "online_answer"]

log = logging.getLogger(__name__)

OFFLINE_OK_MSG = "脱机消费成功"


class CardPayments:
    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient, once: ExactlyOnce,
                 terminals: TerminalDirectory, on_offline_record: Callable[[], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._store = store
        self._cloud = cloud
        self._once = once
        self._terminals = terminals
        self._on_offline_record = on_offline_record
        self._clock = clock
        self._batcher = CardPayBatcher(cloud, store, online_answer, clock=clock,
                                       max_items=config.card_pay_batch_items,
                                       max_in_flight=config.card_pay_calls_in_flight,
                                       overlap_after_s=config.card_pay_overlap_after_s)
        self.offline_decisions = 0

    @property
    def batches(self) -> CardPayBatcher:
        return self._batcher

    async def pay(self, tid: str, request: CardPay) -> dict[str, Any]:
        key = digest(Command.CARD_PAY, request.card, request.amount_fen)
        return await self._once.run(tid, request.txn, Command.CARD_PAY, key,
                                    lambda: self._pay(tid, request, key))

    async def _pay(self, tid: str, request: CardPay, key: str) -> Outcome:
        if request.amount_fen <= 0:
            return Outcome(refusal(Command.CARD_PAY, request.txn, "ERR009"), store=True)
        payload = {"terminal_id": tid, "txn": request.txn, "card": request.card,
                   "amount_fen": request.amount_fen, "ts": request.ts}
        try:
            body = await self._batcher.pay(tid, request.txn, key, payload, self._config.card_pay_deadline_s)
        except CloudUnavailable as exc:
            landed = not isinstance(exc, NotSent)  # a swipe that never left the queue cannot be in the cloud
            return Outcome(await self._offline(tid, request, key, str(exc), may_have_landed=landed), store=False)
        except AgentRefused as exc:
            # The cloud is there but refuses this agent (clock or secret): serve the consumer
            # offline; the records wait on disk until the setup is fixed.
            log.error("cloud refused the agent's signature on card pay: %s", exc.reply.body)
            return Outcome(await self._offline(tid, request, key, "HTTP 401"), store=False)
        return Outcome(body, store=False)  # stored with its batch's answers, before it returns

    async def _offline(self, tid: str, request: CardPay, key: str, reason: str,
                       may_have_landed: bool = True) -> dict[str, Any]:
        now = self._clock()
        day = beijing_day(now)
        limits = self._terminals.limits_for(tid)
        offline_id = uuid.uuid4().hex

        def decide(c: Any) -> dict[str, Any]:
            count, total = card_day_usage(c, request.card, day)
            decision = decide_offline(request.amount_fen, blacklisted(c, request.card), limits, count, total,
                                      terminal_pending(c, tid))
            if decision.accepted:
                insert_offline(c, offline_id, tid, request.txn, request.card, request.amount_fen, request.ts,
                               day, "agent", now)
                body = card_answer(request.txn, True, "OK", OFFLINE_OK_MSG,
                                   f"消费{yuan(request.amount_fen)}元", None, True)
            else:
                text = message(decision.code)
                body = card_answer(request.txn, False, decision.code, text, text, None, True)
                if may_have_landed:
                    put_uncertain(c, tid, request.txn, body, reason, now)
            return put_answer(c, tid, request.txn, Command.CARD_PAY, key, body, now).body

        body = await self._store.write(decide)
        self.offline_decisions += 1
        log.info("card pay %s/%s decided offline (%s): %s", tid, request.txn, reason, body["code"])
        if body["ok"]:
            self._on_offline_record()
        return body


def online_answer(txn: int, reply: CloudReply) -> dict[str, Any]:
    body = reply.body
    ok = reply.success and body.get("ok") is True
    code = "OK" if ok else terminal_code(reply.code)
    if not ok and code == "OK":
        code = "ERR011"  # a "no" without a reason: not something to show as success
    msg = body.get("msg") if isinstance(body.get("msg"), str) else message(code)
    voice = body.get("voice") if isinstance(body.get("voice"), str) else msg
    balance = body.get("balance_fen")
    if isinstance(balance, bool) or not isinstance(balance, int):
        balance = None
    return card_answer(txn, ok, code, msg, voice, balance, False)
