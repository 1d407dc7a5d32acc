"""Response bodies the agent sends terminals, and the screen text of each result code.

Every builder returns a body that satisfies protocol.md's schema for its command (the session
checks it again before sending), so a refusal can be built for any command in one place.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .protocol import Command

__all__ = ["MESSAGES", "card_answer", "digest", "message", "refusal", "terminal_code"]

MESSAGES: dict[str, str] = {
    "OK": "成功",
    "ERR001": "非法卡",
    "ERR002": "注销卡",
    "ERR003": "机号限制",
    "ERR004": "限次",
    "ERR005": "限额",
    "ERR006": "不在消费时段",
    "ERR007": "余额不足",
    "ERR008": "挂失卡",
    "ERR009": "金额错误",
    "ERR010": "单笔限额",
    "ERR011": "设置错误",
    "ERR012": "网络故障",
}
DUPLICATE_TXN_MSG = "交易号重复"


def message(code: str) -> str:
    return MESSAGES.get(code, MESSAGES["ERR011"])


def terminal_code(cloud_code: str) -> str:
    """The protocol.md result code for a code of the cloud's edge API (its ERRnnn pass through;
    the API's own words, e.g. NOT_FOUND for a terminal it does not know, are setup errors)."""
    if cloud_code == "OK" or cloud_code in MESSAGES:
        return cloud_code
    return "ERR011"


def digest(*parts: object) -> str:
    """What makes two requests with one (tid, txn) the same request.

    Stored with every answer and compared after restarts: its value for given parts must never
    change (``str`` of a Command is its number, e.g. "16")."""
    return hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).hexdigest()[:32]


def card_answer(txn: int, ok: bool, code: str, msg: str, voice: str, balance_fen: int | None,
                offline: bool) -> dict[str, Any]:
    return {"txn": txn, "ok": ok, "code": code, "msg": msg, "voice": voice,
            "balance_fen": balance_fen, "offline": offline}


def refusal(cmd: int, txn: int, code: str, msg: str | None = None) -> dict[str, Any]:
    """A schema-valid "no" for ``cmd`` (CARD_PAY, QR_CREATE, SCAN_PAY, QR_CANCEL, QUERY)."""
    text = msg if msg is not None else message(code)
    if cmd == Command.CARD_PAY:
        return card_answer(txn, False, code, text, text, None, False)
    if cmd == Command.SCAN_PAY:
        return {"txn": txn, "ok": False, "status": "FAILED", "code": code, "msg": text, "voice": ""}
    if cmd == Command.QR_CANCEL:
        return {"txn": txn, "ok": False, "status": "UNKNOWN"}
    if cmd == Command.QUERY:
        return {"txn": txn, "status": "UNKNOWN", "amount_fen": None}
    return {"txn": txn, "ok": False, "code": code, "msg": text}
