"""QR_CREATE, QR_CANCEL, SCAN_PAY and QUERY, forwarded to the cloud's order endpoints.

The cloud makes each idempotent per (terminal_id, txn). Here, final answers of QR_CREATE and
SCAN_PAY are stored (exactly once for the terminal, across restarts); answers that depend on
a cloud that did not answer are not: ERR012 for a QR order that may or may not exist, PAYING for
a payment code the consumer is still confirming. The terminal's repeat then asks the cloud again.
QUERY and QR_CANCEL change nothing twice by themselves and are always forwarded.
"""

from __future__ import annotations

import logging
from typing import Any

from .answers import digest, message, refusal, terminal_code
from .cloud import (
    PATH_ORDER_CANCEL,
    PATH_ORDER_QR,
    PATH_ORDER_QUERY,
    PATH_ORDER_SCAN,
    CloudClient,
    CloudReply,
    CloudUnavailable,
)
from .config import AgentConfig
from .once import ExactlyOnce, Outcome
from .protocol import Command, QrCancel, QrCreate, Query, ScanPay

__all__ = ["OrderForwarder"]

log = logging.getLogger(__name__)

QR_SHOWN_MSG = "请扫码支付"
PAYING_MSG = "等待用户确认支付"
_TERMINAL_STATUSES = ("PAYING", "PAID", "CLOSED", "FAILED")


class OrderForwarder:
    def __init__(self, config: AgentConfig, cloud: CloudClient, once: ExactlyOnce) -> None:
        self._config = config
        self._cloud = cloud
        self._once = once

    async def _post(self, path: str, payload: dict[str, Any], deadline_s: float | None = None) -> CloudReply | None:
        """The cloud's definite answer, or None when it gave none (401 included: setup, not a "no")."""
        try:
            reply = await self._cloud.post(path, payload, deadline_s=deadline_s)
        except CloudUnavailable as exc:
            log.warning("%s", exc)
            return None
        if reply.status == 401:
            log.error("cloud refused the agent's signature on %s: %s", path, reply.body)
            return None
        return reply

    # -- QR_CREATE ---------------------------------------------------------------------------

    async def create_qr(self, tid: str, request: QrCreate) -> dict[str, Any]:
        key = digest(Command.QR_CREATE, request.amount_fen)
        return await self._once.run(tid, request.txn, Command.QR_CREATE, key, lambda: self._create_qr(tid, request))

    async def _create_qr(self, tid: str, request: QrCreate) -> Outcome:
        txn = request.txn
        if request.amount_fen <= 0:
            return Outcome(refusal(Command.QR_CREATE, txn, "ERR009"), store=True)
        reply = await self._post(PATH_ORDER_QR, {"terminal_id": tid, "txn": txn, "amount_fen": request.amount_fen})
        if reply is None or reply.status >= 500:
            return Outcome(refusal(Command.QR_CREATE, txn, "ERR012"), store=False)
        body = reply.body
        if reply.success and isinstance(body.get("order_id"), str) and isinstance(body.get("qr"), str):
            expires_in = body.get("expires_in")
            return Outcome({"txn": txn, "ok": True, "code": "OK", "msg": QR_SHOWN_MSG,
                            "order_id": body["order_id"], "qr": body["qr"],
                            "expires_in": expires_in if isinstance(expires_in, int) else 0}, store=True)
        return Outcome(refusal(Command.QR_CREATE, txn, _refusal_code(reply)), store=True)

    # -- SCAN_PAY ----------------------------------------------------------------------------

    async def scan_pay(self, tid: str, request: ScanPay) -> dict[str, Any]:
        key = digest(Command.SCAN_PAY, request.amount_fen, request.auth_code)
        return await self._once.run(tid, request.txn, Command.SCAN_PAY, key, lambda: self._scan_pay(tid, request))

    async def _scan_pay(self, tid: str, request: ScanPay) -> Outcome:
        txn = request.txn
        if request.amount_fen <= 0:
            return Outcome(refusal(Command.SCAN_PAY, txn, "ERR009"), store=True)
        payload = {"terminal_id": tid, "txn": txn, "amount_fen": request.amount_fen, "auth_code": request.auth_code}
        reply = await self._post(PATH_ORDER_SCAN, payload)
        if reply is None or reply.status >= 500:
            # Unknown whether the consumer was charged: PAYING, and the terminal queries or repeats.
            text = message("ERR012")
            return Outcome({"txn": txn, "ok": False, "status": "PAYING", "code": "ERR012", "msg": text,
                            "voice": ""}, store=False)
        body = reply.body
        status = body.get("status")
        if reply.success and status == "PAID":
            return Outcome({"txn": txn, "ok": True, "status": "PAID", "code": "OK",
                            "msg": _text(body, "msg", "支付成功"), "voice": _text(body, "voice", "")}, store=True)
        if reply.success and status == "PAYING":
            return Outcome({"txn": txn, "ok": True, "status": "PAYING", "code": "OK", "msg": PAYING_MSG,
                            "voice": ""}, store=False)
        code = _refusal_code(reply)
        return Outcome({"txn": txn, "ok": False, "status": "FAILED", "code": code,
                        "msg": _text(body, "msg", message(code)), "voice": ""}, store=True)

    # -- QUERY and QR_CANCEL -----------------------------------------------------------------

    async def query(self, tid: str, request: Query) -> dict[str, Any]:
        reply = await self._post(PATH_ORDER_QUERY, {"terminal_id": tid, "txn": request.txn})
        if reply is None or not reply.success or reply.body.get("status") not in _TERMINAL_STATUSES:
            return refusal(Command.QUERY, request.txn, "ERR012")  # status UNKNOWN
        amount = reply.body.get("amount_fen")
        return {"txn": request.txn, "status": reply.body["status"],
                "amount_fen": amount if isinstance(amount, int) and not isinstance(amount, bool) else None}

    async def cancel(self, tid: str, request: QrCancel) -> dict[str, Any]:
        reply = await self._post(PATH_ORDER_CANCEL, {"terminal_id": tid, "txn": request.txn})
        if reply is None or not reply.success or reply.body.get("status") not in _TERMINAL_STATUSES:
            return refusal(Command.QR_CANCEL, request.txn, "ERR012")  # ok false, status UNKNOWN
        return {"txn": request.txn, "ok": reply.body.get("ok") is True, "status": reply.body["status"]}


def _refusal_code(reply: CloudReply) -> str:
    code = terminal_code(reply.code)
    return "ERR011" if code == "OK" else code


def _text(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) and value else default
