"""Delivers signed payment notifications until the merchant acknowledges them.

Like the platforms: the first attempt at once, then again on a schedule (WeChat: 15s, 15s, 30s,
3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h), stopping at the first acknowledgement. The
schedule is injected so tests and `make run` can use short delays.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import urllib.request
import urllib.error

log = logging.getLogger("sandbox.notifier")

WECHAT_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
ALIPAY_SCHEDULE = (240, 600, 600, 3600, 7200, 21600, 54000)


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    is_ack: Callable[[int, bytes], bool]  # does this HTTP answer acknowledge the notification?
    schedule: Sequence[float] = WECHAT_SCHEDULE
    attempts: list[tuple[int, bytes]] = field(default_factory=list)  # (status, body) seen
    acked: bool = False
    label: str = ""
    # Signs the notification anew before each attempt (fresh timestamp and nonce), as WeChat v3
    # does: a retry hours later must not carry a stale timestamp. Returns (headers, body).
    resign: Callable[[], tuple[dict[str, str], bytes]] | None = None


class Notifier:
    def __init__(self, schedule_scale: float = 1.0, timeout_s: float = 5.0) -> None:
        self._scale = schedule_scale
        self._timeout = timeout_s
        self._queue: list[tuple[float, int, Delivery, int]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self.deliveries: list[Delivery] = []
        self._stopped = False
        threading.Thread(target=self._run, name="sandbox-notifier", daemon=True).start()

    def submit(self, delivery: Delivery) -> None:
        with self._cond:
            self.deliveries.append(delivery)
            heapq.heappush(self._queue, (time.time(), next(self._seq), delivery, 0))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.time()):
                    wait = None if not self._queue else max(0.0, self._queue[0][0] - time.time())
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, delivery, attempt = heapq.heappop(self._queue)
            self._attempt(delivery, attempt)

    def _attempt(self, delivery: Delivery, attempt: int) -> None:
        if delivery.resign is not None and attempt > 0:
            delivery.headers, delivery.body = delivery.resign()
        status, body = self._post(delivery)
        delivery.attempts.append((status, body))
        if delivery.is_ack(status, body):
            delivery.acked = True
            return
        if attempt < len(delivery.schedule):
            due = time.time() + delivery.schedule[attempt] * self._scale
            with self._cond:
                heapq.heappush(self._queue, (due, next(self._seq), delivery, attempt + 1))
                self._cond.notify()
        else:
            log.warning("notification %s never acknowledged", delivery.label)

    def _post(self, delivery: Delivery) -> tuple[int, bytes]:
        request = urllib.request.Request(delivery.url, data=delivery.body, headers=delivery.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError as error:  # refused, reset, timed out: the merchant was away; retry later
            return 0, str(error).encode()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """For tests: True once every delivery so far has been acknowledged."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if all(d.acked for d in list(self.deliveries)):
                return True
            time.sleep(0.02)
        return False
