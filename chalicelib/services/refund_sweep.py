"""The refund sweep: every refund request the platform has not confirmed yet is asked about again.

Open requests come from the sparse `refunds_open` index (store/refunds.py), never from a Scan: merchant
refunds (services/refunds.py) are booked when the platform confirms them, released when it failed them,
left pending while it is still processing; late payments' automatic refunds (services/payments.py) are
booked, counted as refused, or handed to a person. Each step is the services' own idempotent step, so
a re-run, a crash half-way or a concurrent operator asking about the same refund books nothing twice.

One JSON line per refund that is not still quietly pending, one for each refund pending longer than
`stale_after_s` (a person should look), and a summary line.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import DomainError
from chalicelib.services.payments import LATE_REFUND_FAILED, LATE_REFUNDED, PaymentBooker
from chalicelib.services.ports import Channels
from chalicelib.services.refunds import RefundService
from chalicelib.services.settlement import JsonLog
from chalicelib.store.orders import OrderStore
from chalicelib.store.refunds import PENDING, RefundRequestRecord, RefundStore

log = logging.getLogger(__name__)

JOB = "sweep_refunds"
STALE_AFTER_S = 3 * 86400  # WeChat finishes most refunds within hours, bank cards within a few days
MAX_PER_RUN = 500  # about two platform calls each: well inside the function's 300 s; the rest next run
OUTCOME_OF_STATUS = {"REFUNDED": "booked", "FAILED": "released", "PENDING": "pending"}
OUTCOME_OF_LATE = {LATE_REFUNDED: "booked", LATE_REFUND_FAILED: "flagged"}


@dataclass
class SweepReport:
    examined: int = 0
    booked: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # merchant refunds the platform failed: amount free again
    flagged: list[str] = field(default_factory=list)  # late refunds the platform failed: a person takes over
    pending: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # pending for longer than stale_after_s
    errors: list[str] = field(default_factory=list)  # could not be worked on this run (logged): next run
    left: int = 0  # open requests beyond this run's limit: the next run starts with them

    def summary(self) -> dict:
        return {"examined": self.examined, "booked": len(self.booked), "released": len(self.released),
                "flagged": len(self.flagged), "pending": len(self.pending), "stale": len(self.stale),
                "errors": len(self.errors), "left": self.left}


class RefundSweep:
    def __init__(self, store: RefundStore, orders: OrderStore, refunds: RefundService, booker: PaymentBooker,
                 channels: Channels, clock: Clock, log_line: JsonLog, stale_after_s: float = STALE_AFTER_S,
                 max_per_run: int = MAX_PER_RUN) -> None:
        self._store = store
        self._orders = orders
        self._refunds = refunds
        self._booker = booker
        self._channels = channels
        self._clock = clock
        self._log = log_line
        self._stale_after_s = stale_after_s
        self._max_per_run = max_per_run

    def run(self) -> SweepReport:
        report = SweepReport()
        open_now = list(self._store.open_requests("pending"))
        report.left = max(0, len(open_now) - self._max_per_run)
        for refund_no in open_now[:self._max_per_run]:
            request = self._store.request(refund_no)  # consistent read: the index may lag behind
            if request is None or request.state != PENDING:
                continue
            report.examined += 1
            outcome = self._step(request)
            getattr(report, outcome).append(refund_no)
            event = {"job": JOB, "event": "refund", "out_refund_no": refund_no, "order_id": request.order_id,
                     "kind": "late" if request.is_late else "merchant", "refund_fen": request.refund_fen,
                     "outcome": outcome}
            if outcome not in ("pending", "errors"):
                self._log(event)
            elif self._clock.now() - request.created_at > self._stale_after_s:
                report.stale.append(refund_no)
                self._log(event | {"event": "stale", "pending_s": int(self._clock.now() - request.created_at)})
        self._log({"job": JOB, "event": "done", **report.summary()})
        return report

    def attention(self) -> list[dict]:
        """Late refunds the platform failed, waiting for a person (the console and the command line)."""
        found = []
        for refund_no in self._store.open_requests("attention"):
            request = self._store.request(refund_no)
            if request is not None:
                found.append({"out_refund_no": refund_no, "order_id": request.order_id,
                              "refund_fen": request.refund_fen, "wallet": request.late_wallet,
                              "trade_no": request.late_trade_no, "code": request.code})
        return found

    def _step(self, request: RefundRequestRecord) -> str:
        try:
            if request.is_late:
                return self._late_step(request)
            return OUTCOME_OF_STATUS[self._refunds.resolve(request)["status"]]
        except (DomainError, ConnectionError, TimeoutError) as error:
            # One refund that cannot be worked on (its order or channel went missing, a race lost five
            # times) must not stop the others: logged, retried by the next run.
            self._log({"job": JOB, "event": "error", "out_refund_no": request.out_refund_no,
                       "order_id": request.order_id, "error": f"{type(error).__name__}: {error}"})
            return "errors"

    def _late_step(self, request: RefundRequestRecord) -> str:
        stored = self._orders.get(request.order_id)
        found = self._channels.for_merchant(stored.order.merchant_id, request.late_wallet) if stored else None
        if found is None:
            self._log({"job": JOB, "event": "error", "out_refund_no": request.out_refund_no,
                       "order_id": request.order_id, "error": "no channel for the late payment's wallet"})
            return "errors"
        return OUTCOME_OF_LATE.get(self._booker.resolve_late(request, found[0]), "pending")
