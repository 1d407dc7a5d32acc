"""Uncertain card refusals settled with the cloud: ``POST /edge/v1/cards/void``.

When an online CARD_PAY attempt got no answer in time, the agent decided offline; an offline
*refusal* of it is kept in ``uncertain`` (:mod:`.payments`), since the attempt may have reached the
cloud and charged a card whose holder was told "refused". Once the cloud is reachable, this loop
asks it to void each such (terminal, txn), and keeps its answer (``uncertain_outcomes``, shown by
``python -m edge_agent --status``)::

    {terminal_id, txn} -> {ok, outcome: "reversed", reversed_fen, balance_fen, ...}
                        | {ok, outcome: "never_booked"}

- ``reversed``: the payment had been booked; the cloud gave the money back (a correcting entry).
- ``never booked``: it had not; the cloud now refuses that txn for good, so the original request,
  should it still arrive, can never charge the card.
- ``refused``: a definite "no" from the cloud (say the card was cancelled since, or the terminal
  was removed): kept with the cloud's reason for a person to settle at the counter, not asked again.

The cloud answers a repeat with the first answer, so a crash between its answer and our write only
means one more (harmless) request. No answer at all (:class:`CloudUnavailable`) leaves the row for
the next round, with the same backoff as the offline uploader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .background import BackgroundSender
from .cloud import CloudClient, CloudReply, CloudUnavailable
from .config import AgentConfig
from .store import Store

__all__ = ["PATH_CARD_VOID", "UncertainResolver", "outcome_of"]

log = logging.getLogger(__name__)

PATH_CARD_VOID = "/edge/v1/cards/void"
BATCH = 50  # rows per round; uncertain refusals are rare, this only bounds one round's time
REVERSED, NEVER_BOOKED, REFUSED = "reversed", "never booked", "refused"
_CLOUD_OUTCOMES = {"reversed": REVERSED, "never_booked": NEVER_BOOKED}


def outcome_of(reply: CloudReply) -> tuple[str, str] | None:
    """(outcome, detail) of the cloud's answer to a void; None when it is not an answer to keep."""
    body = reply.body
    if reply.status == 401:
        return None  # the agent's own setup (clock, secret): not an answer about this payment
    if not reply.success:
        return REFUSED, f"HTTP {reply.status} {reply.code}: {body.get('message', '')}".rstrip(": ")
    outcome = _CLOUD_OUTCOMES.get(str(body.get("outcome")))
    if outcome is None:
        return None
    if outcome == REVERSED:
        return outcome, f"{_int(body.get('reversed_fen'))} fen given back, balance {_int(body.get('balance_fen'))} fen"
    return outcome, ""


def _int(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


class UncertainResolver(BackgroundSender):
    what = "settling uncertain refusals"

    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, store, cloud, clock)
        self.resolved = 0

    async def round(self) -> int:
        return await self.resolve_pending()

    async def resolve_pending(self) -> int:
        """Ask the cloud about every unsettled row (one round); returns how many were settled.
        Raises CloudUnavailable when the cloud gives no answer (the rest wait for the next round)."""
        settled = 0
        for tid, txn in self._store.unresolved_uncertain(BATCH):
            reply = await self._cloud.post(PATH_CARD_VOID, {"terminal_id": tid, "txn": txn})
            found = outcome_of(reply)
            if found is None:
                if reply.status == 401:
                    raise CloudUnavailable(f"{PATH_CARD_VOID}: HTTP 401 {reply.body}")
                log.warning("void of %s/%s: unexpected answer %s %s", tid, txn, reply.status, reply.body)
                continue
            outcome, detail = found
            await self._store.resolve_uncertain(tid, txn, outcome, detail, self._clock())
            settled += 1
            self.resolved += 1
            log_at = logging.WARNING if outcome == REFUSED else logging.INFO
            log.log(log_at, "uncertain refusal %s/%s settled with the cloud: %s %s", tid, txn, outcome, detail)
        return settled
