"""Payout instructions to the bank of scheme 2: pay a merchant the net of one settlement record.

    POST <BANK_PAYOUT_URL>  {"payout_id", "merchant_id", "business_date", "amount_fen"}   (JSON, fen)
      200 {"status": "ACCEPTED", "bank_ref", "duplicate": bool}   accepted now, or accepted before
      4xx {"code", "message"}                                     refused: nothing moved
      anything else, or no answer                                 UNKNOWN: send the same instruction again

The payout_id is the settlement record's deterministic id (domain/settlement.payout_id), chosen by us and
persisted with the record before anything is sent, and the bank pays an id once: a re-sent instruction
answers its first acceptance with "duplicate": true. So a retry after a timeout or a crash never pays
twice. (The sandbox's bank, sandbox/bank.py, plays this contract; a real bank's API adds its own
signature, which this client would add in one place.)
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from chalicelib.channels.base import ChannelState

MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class PayoutInstruction:
    payout_id: str
    merchant_id: str
    business_date: str  # yyyy-mm-dd, the settled Beijing day
    amount_fen: int  # the record's net: positive the bank pays, negative the bank collects


@dataclass(frozen=True)
class PayoutResult:
    state: ChannelState
    bank_ref: str = ""
    duplicate: bool = False
    code: str = ""
    message: str = ""


def send_payout(url: str, instruction: PayoutInstruction, timeout_s: float) -> PayoutResult:
    body = json.dumps({"payout_id": instruction.payout_id, "merchant_id": instruction.merchant_id,
                       "business_date": instruction.business_date, "amount_fen": instruction.amount_fen}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 - the configured bank
            status, raw = answer.status, answer.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read(MAX_ANSWER_BYTES)
    except Exception as error:  # timeout, refused connection: the bank may or may not have it
        return PayoutResult(ChannelState.UNKNOWN, message=f"{type(error).__name__}: {error}")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return PayoutResult(ChannelState.UNKNOWN, message=f"HTTP {status}: answer is not JSON")
    if status == 200 and data.get("status") == "ACCEPTED" and data.get("payout_id") == instruction.payout_id:
        return PayoutResult(ChannelState.SUCCESS, str(data.get("bank_ref", "")), bool(data.get("duplicate")))
    if 400 <= status < 500:
        return PayoutResult(ChannelState.FAIL, code=str(data.get("code", status)), message=str(data.get("message", "")))
    return PayoutResult(ChannelState.UNKNOWN, code=str(data.get("code", status)), message=f"HTTP {status}")
