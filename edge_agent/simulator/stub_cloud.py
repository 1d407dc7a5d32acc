"""A stand-in of the cloud's edge API over real HTTP on loopback, with in-memory state.

For the agent's tests, the crash test and the benchmarks, where the real API cannot run (the card
endpoints are another engineer's work in progress) or would measure the emulator instead of the
agent. It implements the same contract the agent is written against, checks every signature
like the cloud does (timestamp window, nonce used once), and keeps a ledger to assert on:

- ``/edge/v1/terminals``, ``/edge/v1/terminals/heartbeat``: keys in boxes, online status;
- ``/edge/v1/orders/qr|scan|query|cancel`` and ``/edge/v1/events``: orders per (terminal, txn),
  :meth:`StubCloud.pay_order` plays the consumer who pays, and the feed pages by cursor;
- ``/edge/v1/cards/params``: per terminal settings under one version (:meth:`StubCloud.set_params`
  changes them and moves the version; 0, the default, is "no rules yet", with no offline limits);
- ``/edge/v1/cards/blacklist/ack``: recorded in ``state.blacklist_acks``;
- ``/edge/v1/cards/pay|pay-batch|offline|blacklist``: balances, one dedupe per (terminal, txn) shared by
  online and offline payments (so an offline record of a payment that landed online is a repeat),
  offline records rejected for a lost card or an overdraft;
- ``/edge/v1/cards/void``: the cloud's void of an uncertain refusal (chalicelib/services/card_voids.py):
  a booked payment is given back (``reversed``, the money back on the card's balance, and the
  payment no longer counts in :meth:`StubCloud.booked`); a txn with nothing booked is claimed as
  voided (``never_booked``: a later payment of it is answered ERR012 and books nothing); a repeat
  gets the first answer; a txn of a QR order is a 409 CONFLICT, an unknown terminal a 404.

Faults, for outage tests: ``down`` (every request answered 503), ``hang_s`` (each request waits
this long before it is handled, as a cloud that is slow or unreachable would), ``drop_after``
(the request is applied, then the connection is cut before the answer: an answer lost in flight),
``void_busy`` (every void answered 503 ERR012 "card busy", as the cloud does when the card's
write keeps conflicting; nothing changes).
The server is a bare asyncio HTTP/1.1 loop with keep-alive: fast enough not to be what a
benchmark measures. Run alone with ``python -m edge_agent.simulator.stub_cloud``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .. import event_loop
from ..keybox import box_key, seal_box
from ..signing import sign

__all__ = ["StubCloud", "StubCloudThread"]

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20
MAX_TXN = 2**63 - 1  # the terminal's txn: a non-negative integer (protocol.md)
# What a payment of a voided txn is answered, as the cloud answers it (services/card_voids.py voided_answer).
VOIDED_ANSWER = {"ok": False, "code": "ERR012", "msg": "网络故障", "voice": "网络故障", "balance_fen": None,
                 "voided": True}


@dataclass
class CardPayment:
    terminal_id: str
    txn: int
    card: str
    amount_fen: int
    source: str  # online / offline
    answer: dict[str, Any]  # the first answer, which every repeat gets (also after a void)
    reversed_by_void: bool = False

    @property
    def booked(self) -> bool:
        """The money is taken: booked and not given back by a void."""
        return self.answer.get("ok") is True and not self.reversed_by_void


@dataclass
class StubState:
    agent_id: str
    secret: str
    terminals: dict[str, str]  # terminal id -> LOGIN key
    merchant_name: str = "Stub Canteen"
    cards: dict[str, int] = field(default_factory=dict)  # card -> balance fen
    lost_cards: set[str] = field(default_factory=set)
    blacklist_version: int = 0
    offline_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    params_version: int = 0
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # terminal id -> settings
    blacklist_acks: list[tuple[str, int]] = field(default_factory=list)  # (terminal id, version)
    payments: dict[tuple[str, int], CardPayment] = field(default_factory=dict)
    voids: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (terminal, txn) -> first answer
    orders: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (cursor key, event)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    calls: Counter[str] = field(default_factory=Counter)


class StubCloud:
    def __init__(self, agent_id: str = "E-STUB", secret: str = "stub-agent-secret",
                 terminals: dict[str, str] | None = None, *, check_signatures: bool = True) -> None:
        self.state = StubState(agent_id, secret, dict(terminals or {}))
        self.check_signatures = check_signatures
        self.down = False
        self.hang_s = 0.0
        self.drop_after: set[str] = set()  # paths whose answer is lost after the work is done
        self.card_batches = True  # False: no /edge/v1/cards/pay-batch (404), as an older cloud
        self.void_busy = False  # True: every void answered 503 "card busy", nothing changed
        self.connections = 0  # TCP connections accepted (the agent reuses them)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._event_seq = 0
        self._routes = {
            "/edge/v1/terminals": self._terminals,
            "/edge/v1/terminals/heartbeat": self._heartbeat,
            "/edge/v1/orders/qr": self._order_qr,
            "/edge/v1/orders/scan": self._order_scan,
            "/edge/v1/orders/query": self._order_query,
            "/edge/v1/orders/cancel": self._order_cancel,
            "/edge/v1/events": self._events,
            "/edge/v1/cards/pay": self._card_pay,
            "/edge/v1/cards/pay-batch": self._card_pay_batch,
            "/edge/v1/cards/offline": self._card_offline,
            "/edge/v1/cards/void": self._card_void,
            "/edge/v1/cards/blacklist": self._blacklist,
            "/edge/v1/cards/blacklist/ack": self._blacklist_ack,
            "/edge/v1/cards/params": self._params,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "StubCloud":
        self._server = await asyncio.start_server(self._connection, host, port)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    # -- the consumer and the operator -------------------------------------------------------

    def pay_order(self, terminal_id: str, txn: int, wallet: str = "wechat") -> dict[str, Any]:
        order = self.state.orders[(terminal_id, txn)]
        if order["status"] == "PAYING":
            order.update(status="PAID", wallet=wallet)
            self._event(order)
        return order

    def close_order(self, terminal_id: str, txn: int) -> None:
        order = self.state.orders[(terminal_id, txn)]
        if order["status"] == "PAYING":
            order["status"] = "CLOSED"
            self._event(order)

    def report_lost(self, card: str) -> None:
        self.state.lost_cards.add(card)
        self.state.blacklist_version += 1

    def set_params(self, terminal_id: str, **settings: Any) -> int:
        """The operator changes a terminal's settings (e.g. ``offline={...}``): a new version."""
        self.state.params.setdefault(terminal_id, {"mode": "free"}).update(settings)
        self.state.params_version += 1
        return self.state.params_version

    def booked(self) -> list[CardPayment]:
        return [p for p in self.state.payments.values() if p.booked]

    # -- HTTP --------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if length > MAX_BODY:
                    break
                body = await reader.readexactly(length)
                if self.hang_s:
                    await asyncio.sleep(self.hang_s)
                status, answer = self._handle(method, path, headers, body)
                if path in self.drop_after:
                    break  # the work is done; the answer never arrives
                payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % (status, len(payload)) + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # stopping: end quietly (Python 3.11 logs a handler task that ends cancelled)
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        self.state.calls[path] += 1
        if self.down:
            return 503, {"ok": False, "code": "UNAVAILABLE", "message": "stub cloud is down"}
        problem = self._check_signature(method, path, headers, body)
        if problem:
            return 401, {"ok": False, "code": "UNAUTHORIZED", "message": problem}
        route = self._routes.get(path)
        if path == "/edge/v1/cards/pay-batch" and not self.card_batches:
            route = None
        if route is None or method != "POST":
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "no such endpoint"}
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"ok": False, "code": "INVALID_REQUEST", "message": "body is not JSON"}
        if not isinstance(request, dict):
            return 400, {"ok": False, "code": "INVALID_REQUEST", "message": "body must be an object"}
        return route(request)

    def _check_signature(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        if not self.check_signatures:
            return None
        try:
            agent, ts = headers["x-scanpay-agent"], int(headers["x-scanpay-timestamp"])
            nonce, signature = headers["x-scanpay-nonce"], headers["x-scanpay-signature"]
        except (KeyError, ValueError):
            return "missing signature headers"
        if agent != self.state.agent_id or len(nonce) < 16:
            return "bad signature"
        if abs(time.time() - ts) > 300:
            return "timestamp outside the allowed window"
        if sign(self.state.secret, method, path, ts, nonce, body) != signature:
            return "bad signature"
        if nonce in self.state.nonces:
            return "nonce already used"
        self.state.nonces.add(nonce)
        return None

    # -- routes ------------------------------------------------------------------------------

    def _terminals(self, _request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = box_key(self.state.secret, self.state.agent_id)
        items = []
        for tid, login_key in sorted(self.state.terminals.items()):
            item: dict[str, Any] = {"terminal_id": tid,
                                    "key_box": seal_box(key, self.state.agent_id, tid, login_key, os.urandom(12))}
            if tid in self.state.offline_limits:
                item["offline_limits"] = self.state.offline_limits[tid]
            items.append(item)
        return 200, {"ok": True, "merchant_name": self.state.merchant_name, "params_ver": self.state.params_version,
                     "terminals": items}

    def _heartbeat(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.state.heartbeats.append(request)
        return 200, {"ok": True, "server_time": int(time.time())}

    def _known(self, request: dict[str, Any]) -> str | None:
        tid = request.get("terminal_id")
        return tid if isinstance(tid, str) and tid in self.state.terminals else None

    def _order_qr(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tid = self._known(request)
        if tid is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"}
        txn, amount = request["txn"], request["amount_fen"]
        order = self.state.orders.get((tid, txn))
        if order is None:
            order_id = f"P{secrets.token_hex(8)}"
            order = {"order_id": order_id, "terminal_id": tid, "txn": txn, "amount_fen": amount,
                     "status": "PAYING", "wallet": None, "qr": f"https://stub.invalid/pay/{order_id}", "kind": "qr"}
            self.state.orders[(tid, txn)] = order
        elif order["amount_fen"] != amount:
            return 409, {"ok": False, "code": "CONFLICT", "message": "txn reused"}
        return 200, {"ok": True, "order_id": order["order_id"], "qr": order["qr"], "expires_in": 300,
                     "amount_fen": amount}

    def _order_scan(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tid = self._known(request)
        if tid is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"}
        txn, amount, code = request["txn"], request["amount_fen"], str(request["auth_code"])
        order = self.state.orders.get((tid, txn))
        if order is None:
            wallet = "wechat" if code[:2] in ("10", "11", "12", "13", "14", "15") else "alipay"
            status = "FAILED" if code.endswith("0000") else "PAID"
            order = {"order_id": f"P{secrets.token_hex(8)}", "terminal_id": tid, "txn": txn,
                     "amount_fen": amount, "status": status, "wallet": wallet, "qr": None, "kind": "scan"}
            self.state.orders[(tid, txn)] = order
        answer = {"ok": True, "order_id": order["order_id"], "txn": txn, "amount_fen": order["amount_fen"],
                  "status": order["status"]}
        if order["status"] == "PAID":
            answer |= {"msg": "支付成功", "voice": "微信收款" if order["wallet"] == "wechat" else "支付宝收款"}
        return 200, answer

    def _order_query(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order = self.state.orders.get((request.get("terminal_id"), request.get("txn")))  # type: ignore[arg-type]
        if order is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "no order for this txn"}
        return 200, {"ok": True, "order_id": order["order_id"], "txn": order["txn"],
                     "amount_fen": order["amount_fen"], "status": order["status"]}

    def _order_cancel(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order = self.state.orders.get((request.get("terminal_id"), request.get("txn")))  # type: ignore[arg-type]
        if order is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "no order for this txn"}
        if order["status"] == "PAYING":
            order["status"] = "CLOSED"
            self._event(order)
        return 200, {"ok": order["status"] == "CLOSED", "order_id": order["order_id"], "txn": order["txn"],
                     "amount_fen": order["amount_fen"], "status": order["status"]}

    def _event(self, order: dict[str, Any]) -> None:
        self._event_seq += 1
        status = order["status"]
        self.state.events.append((f"{self._event_seq:015d}", {
            "event_id": f"{order['order_id']}:{status}", "order_id": order["order_id"],
            "terminal_id": order["terminal_id"], "txn": order["txn"], "status": status,
            "amount_fen": order["amount_fen"], "channel": order["wallet"],
            "msg": "支付成功" if status == "PAID" else "订单已关闭", "voice": "微信收款" if status == "PAID" else ""}))

    def _events(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        after = request.get("after") or ""
        limit = min(int(request.get("limit") or 100), 100)
        found = [(key, event) for key, event in self.state.events if key > after][:limit]
        cursor = found[-1][0] if found else after
        return 200, {"ok": True, "events": [event for _key, event in found], "cursor": cursor,
                     "more": len(found) == limit}

    def _charge(self, tid: str, txn: int, card: str, amount: int, source: str) -> CardPayment:
        """One dedupe for (terminal, txn), whatever the path: the first answer stands."""
        voided = self.state.voids.get((tid, txn), {}).get("outcome") == "never_booked"
        if voided:  # voided with nothing booked: refused for good (ERR012), whenever it arrives
            return CardPayment(tid, txn, card, amount, source, dict(VOIDED_ANSWER))
        first = self.state.payments.get((tid, txn))
        if first is not None:
            return first
        balance = self.state.cards.get(card)
        if balance is None:
            answer = {"ok": False, "code": "ERR001", "msg": "非法卡"}
        elif card in self.state.lost_cards:
            answer = {"ok": False, "code": "ERR008", "msg": "挂失卡"}
        elif amount <= 0:
            answer = {"ok": False, "code": "ERR009", "msg": "金额错误"}
        elif balance < amount:
            answer = {"ok": False, "code": "ERR007", "msg": "余额不足", "balance_fen": balance}
        else:
            self.state.cards[card] = balance - amount
            answer = {"ok": True, "code": "OK", "msg": "消费成功", "voice": f"消费{amount}分",
                      "balance_fen": balance - amount}
        payment = CardPayment(tid, txn, card, amount, source, answer)
        self.state.payments[(tid, txn)] = payment
        return payment

    def _card_pay(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tid = self._known(request)
        if tid is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"}
        payment = self._charge(tid, request["txn"], request["card"], request["amount_fen"], "online")
        return 200, {"voice": payment.answer.get("msg", ""), "balance_fen": None, **payment.answer}

    def _card_pay_batch(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Each item answered as ``/edge/v1/cards/pay`` answers it alone (the cloud's contract)."""
        items = request.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 100:
            return 400, {"ok": False, "code": "INVALID_REQUEST", "message": "items: 1 to 100 payments"}
        results = []
        for item in items:
            status, body = self._card_pay(item) if isinstance(item, dict) else (
                400, {"ok": False, "code": "INVALID_REQUEST", "message": "body must be a JSON object"})
            results.append({"status": status, "body": body})
        return 200, {"ok": True, "results": results}

    def _card_offline(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tid = self._known(request)
        if tid is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"}
        accepted, rejected = [], []
        for record in request.get("records") or []:
            payment = self._charge(tid, record["txn"], record["card"], record["amount_fen"], "offline")
            if payment.answer.get("ok") is True:  # booked, then maybe voided: still the first answer
                accepted.append(record["txn"])
            else:
                rejected.append({"txn": record["txn"], "code": payment.answer["code"]})
        return 200, {"ok": True, "accepted": accepted, "rejected": rejected}

    def _card_void(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """As the cloud answers POST /edge/v1/cards/void (api/card_voids.py, services/card_voids.py)."""
        txn = request.get("txn")
        if isinstance(txn, bool) or not isinstance(txn, int) or not 0 <= txn <= MAX_TXN:
            return 400, {"ok": False, "code": "INVALID_REQUEST", "message": "txn must be a non-negative integer"}
        if not isinstance(request.get("terminal_id"), str):
            return 400, {"ok": False, "code": "INVALID_REQUEST", "message": "terminal_id must be a string"}
        tid = self._known(request)
        if tid is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"}
        if self.void_busy:
            return 503, {"ok": False, "code": "ERR012", "message": "the card is busy; try again"}
        key = (tid, txn)
        if key not in self.state.voids:
            if key in self.state.orders:
                return 409, {"ok": False, "code": "CONFLICT",
                             "message": f"txn {txn} of terminal {tid} is not a card payment"}
            self.state.voids[key] = self._void_first_answer(tid, txn)
        return 200, {"ok": True, **self.state.voids[key]}

    def _void_first_answer(self, tid: str, txn: int) -> dict[str, Any]:
        payment = self.state.payments.get((tid, txn))
        if payment is None or not payment.booked:
            # The cloud keeps no record of a refusal: a refused txn has nothing booked, like an absent one.
            return {"terminal_id": tid, "txn": txn, "outcome": "never_booked"}
        payment.reversed_by_void = True
        self.state.cards[payment.card] += payment.amount_fen
        return {"terminal_id": tid, "txn": txn, "outcome": "reversed", "card": payment.card,
                "reversed_fen": payment.amount_fen, "balance_fen": self.state.cards[payment.card], "voided": True}

    def _blacklist(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"ok": True, "version": self.state.blacklist_version, "full": True,
                     "add": sorted(self.state.lost_cards), "remove": []}


    def _params(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tid = self._known(request)
        if tid is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"}
        return 200, {"ok": True, "ver": self.state.params_version, **self.state.params.get(tid, {"mode": "free"})}

    def _blacklist_ack(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tid, version = self._known(request), request.get("version")
        if tid is None:
            return 404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"}
        if not isinstance(version, int) or not 0 <= version <= self.state.blacklist_version:
            return 400, {"ok": False, "code": "INVALID_REQUEST", "message": "no such blacklist version"}
        self.state.blacklist_acks.append((tid, version))
        return 200, {"ok": True, "version": version}


class StubCloudThread:
    """The stub cloud on its own event loop in a thread (for an agent in another process or loop)."""

    def __init__(self, cloud: StubCloud, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cloud = cloud
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stub-cloud", daemon=True)

    def start(self) -> "StubCloudThread":
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.cloud.start(self._host, self._port))
        self._ready.set()
        self._loop.run_forever()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the stub's loop (its state is not thread-safe) and return the result."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.cloud.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser(description="stub cloud for the edge agent")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--agent-id", default="E-DEMO")
    parser.add_argument("--secret", default="demo-edge-secret")
    parser.add_argument("--terminals", type=int, default=2, help="T0001.. with keys demo-key-<id>")
    parser.add_argument("--cards", type=int, default=5, help="cards 10000001.. (balance --balance fen)")
    parser.add_argument("--balance", type=int, default=10_000)
    parser.add_argument("--loop", choices=event_loop.CHOICES, default="auto", help="event loop (auto: uvloop if installed)")
    args = parser.parse_args()
    terminals = {f"T{n:04d}": f"demo-key-T{n:04d}" for n in range(1, args.terminals + 1)}
    cloud = StubCloud(args.agent_id, args.secret, terminals)
    cloud.state.cards = {str(10000000 + n): args.balance for n in range(1, args.cards + 1)}

    async def serve() -> None:
        await cloud.start("127.0.0.1", args.port)
        print(f"stub cloud on {cloud.url} for agent {args.agent_id}", flush=True)
        await asyncio.Event().wait()

    event_loop.run(serve(), args.loop)


if __name__ == "__main__":  # pragma: no cover
    main()
