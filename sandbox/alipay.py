"""Alipay's open platform gateway, as the sandbox plays it.

    GET|POST /alipay/gateway.do       every API, chosen by the `method` parameter
    GET      /alipay/bill/download    the bill file behind a bill_download_url (valid 30 s)

Methods: alipay.trade.precreate, .pay, .query, .close, .cancel, .refund, .fastpay.refund.query and
alipay.data.dataservice.bill.downloadurl.query (bill_type "trade").

Refunds complete at once (fund_change Y) unless planned otherwise (TradeBook.plan_refunds, wallet
"alipay"): "processing" answers fund_change N and the refund query lists it without refund_status until
`POST /sandbox/refunds/finish`; "fail" refuses the refund with ACQ.SELLER_BALANCE_NOT_ENOUGH. A refund
finished FAILED is no longer listed, and the same out_request_no sent again is a new attempt, as Alipay
asks merchants to retry a refund that did not go through.

What it checks and how it answers, as Alipay does:
- every request is signed by the app (RSA2 over the sorted non-empty parameters except `sign`);
  a bad signature answers 40002 isv.invalid-signature, an unknown app 40002 isv.invalid-app-id
  (unsigned: there is no key to sign with). A `timestamp` more than 15 minutes from the sandbox's
  clock (ctx.clock: wall time, or the tests' fixed clock) answers 40002 isv.invalid-timestamp: that
  is how a client stamping UTC shows up.
- answers are `{"<method>_response": {...}, "sign": "..."}`, signed with the sandbox's platform key
  over the exact JSON text of the response node (with "/" escaped as "\\/", as Alipay writes it).
- `app_auth_token` (ISV mode) must have been granted to the calling app; the trade then belongs to
  the token's merchant (seller). Otherwise 20001 aop.invalid-app-auth-token.
- a precreated trade exists for query/close only once scanned (before that: ACQ.TRADE_NOT_EXIST,
  and close leaves the QR payable until it expires); cancel voids it.
- payment codes behave by their last digits (sandbox/trades.py): instant 10000, password 10003 then
  WAIT_BUYER_PAY for two queries then paid, no_money 40004 ACQ.BUYER_BALANCE_NOT_ENOUGH, abandon
  10003 and WAIT_BUYER_PAY for ever.
- notifications: urlencoded trade_status_sync posts, RSA2-signed over the sorted non-empty fields
  except sign and sign_type, retried on ALIPAY_SCHEDULE until the answer body is exactly `success`.
- bills: for a Beijing date before today (by ctx.clock; tests move the clock to fetch "yesterday"),
  a ZIP `<pid>_<yyyymmdd>.csv.zip` with GBK-named, GBK-encoded `<pid>_<yyyymmdd>_业务明细.csv` and
  `..._业务明细(汇总).csv` in Alipay's trade bill layout. Refund rows carry negative amounts;
  服务费 is the seller's fee (fee_ppm, default 0.6 %, half up), negative on payments.

Accounts section, `accounts["alipay"]` (make_accounts_section builds one):
    {
      "platform_private_key": PEM,  # the sandbox's Alipay key: signs answers and notifications
      "platform_public_key": PEM,   # what merchants configure as alipay_public_key
      "fee_ppm": 6000,              # optional, for the bill's 服务费
      "apps": {"<app_id>": {"seller_id": "2088...",          # the PID owning the app
                            "app_public_key": PEM,            # verifies the app's requests
                            "app_private_key": PEM}},         # for devstack/tests to configure the
                                                              # channel; the sandbox never reads it
      "app_auth_tokens": {"<token>": {"app_id": "<ISV app>", "seller_id": "2088...",
                                      "auth_app_id": "<the merchant's own app id>"}}
    }
"""
from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import re
import secrets
import threading
import zipfile
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.http import Request, Response, Router
from sandbox.keys import rsa_keypair_pem
from sandbox.notifier import ALIPAY_SCHEDULE, Delivery
from sandbox.platform import SandboxContext, settle_payment
from sandbox.trades import SimRefund, SimTrade, payment_code_behaviour, payment_code_wallet

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIMESTAMP_TOLERANCE_S = 15 * 60
BILL_URL_TTL_S = 30
DEFAULT_QR_MINUTES = 120
MAX_TOTAL_FEN = 100_000_000_00  # Alipay's Price range ends at 100,000,000.00 yuan

DEMO_APP_ID = "2021000000000001"
DEMO_SELLER_ID = "2088000000000001"
BANK_APP_ID = "2021000000000009"
BANK_SELLER_ID = "2088000000000009"
ISV_SELLER_ID = "2088000000000002"
ISV_MERCHANT_APP_ID = "2021000000000002"
DEMO_AUTH_TOKEN = "202601BBsandboxdemo0000000000000000X02"

_YUAN = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")


# ---------------------------------------------------------------------------- accounts


def make_accounts_section(
    apps: Mapping[str, str] | None = None,
    auth_tokens: Mapping[str, tuple[str, str]] | None = None,
    fee_ppm: int = 6000,
) -> dict:
    """A fresh accounts["alipay"]: apps {app_id: seller PID}, tokens {token: (ISV app_id, seller PID)}.

    Defaults: the demo merchant's own app, the bank's app, and one token the merchant granted the bank.
    """
    apps = dict(apps if apps is not None else {DEMO_APP_ID: DEMO_SELLER_ID, BANK_APP_ID: BANK_SELLER_ID})
    tokens = dict(auth_tokens if auth_tokens is not None else {DEMO_AUTH_TOKEN: (BANK_APP_ID, ISV_SELLER_ID)})
    platform_private, platform_public = rsa_keypair_pem()
    section: dict = {"platform_private_key": platform_private, "platform_public_key": platform_public,
                     "fee_ppm": fee_ppm, "apps": {}, "app_auth_tokens": {}}
    for app_id, seller_id in apps.items():
        private, public = rsa_keypair_pem()
        section["apps"][app_id] = {"seller_id": seller_id, "app_public_key": public, "app_private_key": private}
    for token, (app_id, seller_id) in tokens.items():
        section["app_auth_tokens"][token] = {"app_id": app_id, "seller_id": seller_id,
                                             "auth_app_id": ISV_MERCHANT_APP_ID}
    return section


def channel_settings(section: dict, app_id: str, app_auth_token: str | None = None) -> dict:
    """The settings chalicelib's alipay channel takes, for an app of this section (ISV: with a token)."""
    settings = {
        "app_id": app_id,
        "app_private_key": section["apps"][app_id]["app_private_key"],
        "alipay_public_key": section["platform_public_key"],
        "seller_id": section["apps"][app_id]["seller_id"],
    }
    if app_auth_token:
        settings["seller_id"] = section["app_auth_tokens"][app_auth_token]["seller_id"]
        settings["app_auth_token"] = app_auth_token
    return settings


# ---------------------------------------------------------------------------- signing


def signing_text(params: Mapping[str, str], exclude: Iterable[str]) -> str:
    """Alipay's string to sign: sorted name=value of the non-empty fields, raw values, joined by &."""
    skip = set(exclude)
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in skip and v != "")


@functools.lru_cache(maxsize=32)
def _private_key(private_pem: str) -> rsa.RSAPrivateKey:
    """Loading checks the key (about 0.1 s for RSA 2048): once per key, not once per answer."""
    return serialization.load_pem_private_key(private_pem.encode(), password=None)  # type: ignore[return-value]


def rsa2_sign(private_pem: str, text: str) -> str:
    key = _private_key(private_pem)
    return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_verify(public_pem: str, text: str, signature: str) -> bool:
    try:
        key = serialization.load_pem_public_key(public_pem.encode())
        key.verify(base64.b64decode(signature, validate=True), text.encode("utf-8"),
                   padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


# ---------------------------------------------------------------------------- small helpers


def _beijing(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, BEIJING).strftime(TIME_FORMAT)


def _yuan(amount_fen: int) -> str:
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{fen:02d}"


def _fen(value: object) -> int | None:
    """A biz_content amount (string, or JSON number without a fraction) in fen, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _YUAN.fullmatch(value):
        return None
    whole, _, fraction = value.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or "0")


def _buyer_id(seed: str) -> str:
    """A stable 2088... user id for a payer (scan.py names payers freely)."""
    if re.fullmatch(r"2088[0-9]{12}", seed):
        return seed
    return "2088" + str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:12]


def _logon_id(buyer_id: str) -> str:
    return f"1{buyer_id[4:6]}****{buyer_id[-4:]}"  # Alipay shows a masked phone number


def _fee(amount_fen: int, ppm: int) -> int:
    """Alipay's service fee, rounded half up to the fen (integers only)."""
    return (abs(amount_fen) * ppm * 2 + 1_000_000) // 2_000_000 * (1 if amount_fen >= 0 else -1)


def _error(code: str, sub_code: str, sub_msg: str) -> dict:
    msgs = {"20000": "Service Currently Unavailable", "20001": "Insufficient Token Permissions",
            "40001": "Missing Required Arguments", "40002": "Invalid Arguments", "40004": "Business Failed"}
    return {"code": code, "msg": msgs[code], "sub_code": sub_code, "sub_msg": sub_msg}


def _business(sub_code: str, sub_msg: str) -> dict:
    return _error("40004", sub_code, sub_msg)


OK = {"code": "10000", "msg": "Success"}
TRADE_NOT_EXIST = ("ACQ.TRADE_NOT_EXIST", "交易不存在")


@dataclass(frozen=True)
class Merchant:
    """Who a request acts for: the calling app, and the seller whose account the trade is in."""

    app_id: str
    seller_id: str
    auth_app_id: str

    @property
    def key(self) -> str:
        return f"{self.app_id}:{self.seller_id}"


# ---------------------------------------------------------------------------- the platform


class AlipayPlatform:
    name = "alipay"
    wallet = "alipay"

    def __init__(self, ctx: SandboxContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._bill_tokens: dict[str, tuple[str, date, float]] = {}
        # method, app_id, timestamp of recent signed requests: shows what a client really sent
        self.received: deque[dict[str, str]] = deque(maxlen=1000)
        self._methods: dict[str, Callable[[Merchant, dict, dict], dict]] = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.pay": self._pay,
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
            "alipay.trade.cancel": self._cancel,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }

    @property
    def _section(self) -> dict:
        return self._ctx.accounts["alipay"]

    def register(self, router: Router) -> None:
        router.add("GET", "/alipay/gateway.do", self.gateway)
        router.add("POST", "/alipay/gateway.do", self.gateway)
        router.add("GET", "/alipay/bill/download", self.download_bill)

    # -- the gateway

    def gateway(self, request: Request) -> Response:
        params = request.form()
        method = params.get("method", "")
        node_name = method.replace(".", "_") + "_response" if method else "error_response"
        app = self._section["apps"].get(params.get("app_id", ""))
        if app is None:  # no key pair for this app: Alipay cannot sign its answer either
            return Response.json({node_name: _error("40002", "isv.invalid-app-id", "无效的AppID参数")})
        refusal = self._check_request(params, app)
        if refusal is not None:
            return self._answer(node_name, refusal)
        merchant = self._merchant(params, app)
        if merchant is None:
            return self._answer(node_name, _error("20001", "aop.invalid-app-auth-token", "无效的应用授权令牌"))
        handler = self._methods.get(method)
        if handler is None:
            return self._answer(node_name, _error("40002", "isv.invalid-method", "不存在的方法名"))
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            biz = None
        if not isinstance(biz, dict):
            return self._answer(node_name, _error("40002", "isv.invalid-biz-content", "biz_content不是JSON对象"))
        self._ctx.book.expire_due(self._ctx.clock())
        return self._answer(node_name, handler(merchant, biz, params))

    def _check_request(self, params: dict[str, str], app: dict) -> dict | None:
        if params.get("sign_type") != "RSA2":
            return _error("40002", "isv.invalid-signature-type", "无效的签名类型")
        text = signing_text(params, exclude=("sign",))
        if not rsa2_verify(app["app_public_key"], text, params.get("sign", "")):
            # Alipay shows the string it verified, HTML-escaped, to help find the mismatch.
            shown = text.replace("&", "&amp;").replace('"', "&quot;")
            return _error("40002", "isv.invalid-signature",
                          f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{shown}")
        stamp = params.get("timestamp", "")
        with self._lock:
            self.received.append({"method": params.get("method", ""), "app_id": params.get("app_id", ""),
                                  "timestamp": stamp})
        try:
            sent = datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=BEIJING).timestamp()
        except ValueError:
            sent = None
        if sent is None or abs(sent - self._ctx.clock()) > TIMESTAMP_TOLERANCE_S:
            return _error("40002", "isv.invalid-timestamp", "非法的时间戳参数")
        return None

    def _merchant(self, params: dict[str, str], app: dict) -> Merchant | None:
        app_id = params["app_id"]
        token = params.get("app_auth_token")
        if not token:
            return Merchant(app_id, app["seller_id"], app_id)
        grant = self._section.get("app_auth_tokens", {}).get(token)
        if grant is None or grant["app_id"] != app_id:
            return None
        return Merchant(app_id, grant["seller_id"], grant.get("auth_app_id") or app_id)

    def _answer(self, node_name: str, node: dict) -> Response:
        node_text = json.dumps(node, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
        sign = rsa2_sign(self._section["platform_private_key"], node_text)
        body = f'{{"{node_name}":{node_text},"sign":"{sign}"}}'
        return Response(200, body.encode("utf-8"), {"Content-Type": "text/html;charset=utf-8"})

    # -- trades

    def _find(self, merchant: Merchant, biz: dict) -> SimTrade | None:
        """The trade named by out_trade_no or trade_no, if Alipay would know it (scanned precreates only)."""
        out_trade_no, trade_no = biz.get("out_trade_no"), biz.get("trade_no")
        trade = self._ctx.book.get("alipay", merchant.key, str(out_trade_no)) if out_trade_no else None
        if trade is None and trade_no:
            trade = next((t for t in self._ctx.book.all()
                          if t.platform == "alipay" and t.merchant_key == merchant.key and t.trade_no == trade_no), None)
        return trade if trade is not None and _exists(trade) else None

    def _new_trade(self, merchant: Merchant, biz: dict, params: dict, trade_type: str, amount_fen: int) -> SimTrade:
        now = self._ctx.clock()
        return SimTrade(
            platform="alipay", merchant_key=merchant.key, out_trade_no=str(biz["out_trade_no"]),
            amount_fen=amount_fen, description=str(biz.get("subject", "")), notify_url=params.get("notify_url", ""),
            trade_type=trade_type, created_at=now,
            extra={"app_id": merchant.app_id, "seller_id": merchant.seller_id, "auth_app_id": merchant.auth_app_id},
        )

    def _precreate(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        amount_fen = _fen(biz.get("total_amount"))
        if not biz.get("out_trade_no") or not biz.get("subject") or not amount_fen or amount_fen > MAX_TOTAL_FEN:
            return _business("ACQ.INVALID_PARAMETER", "参数无效")
        expires_at = _expiry(biz, self._ctx.clock())
        if expires_at is None:
            return _business("ACQ.INVALID_PARAMETER", "time_expire或timeout_express无效")
        with self._ctx.book.lock:
            existing = self._ctx.book.get("alipay", merchant.key, str(biz["out_trade_no"]))
            if existing is not None:
                return _repeat_precreate(existing, amount_fen)
            trade = self._new_trade(merchant, biz, params, "PRECREATE", amount_fen)
            trade.expires_at = expires_at
            trade.code_url = f"https://qr.alipay.com/bax{secrets.token_hex(10)}"
            self._ctx.book.add(trade)
        return {**OK, "out_trade_no": trade.out_trade_no, "qr_code": trade.code_url}

    def _pay(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        amount_fen = _fen(biz.get("total_amount"))
        auth_code = str(biz.get("auth_code", ""))
        if (not biz.get("out_trade_no") or not biz.get("subject") or not amount_fen or amount_fen > MAX_TOTAL_FEN
                or biz.get("scene") not in ("bar_code", "wave_code")):
            return _business("ACQ.INVALID_PARAMETER", "参数无效")
        if payment_code_wallet(auth_code) != "alipay":
            return _business("ACQ.PAYMENT_AUTH_CODE_INVALID", "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款")
        with self._ctx.book.lock:
            existing = self._ctx.book.get("alipay", merchant.key, str(biz["out_trade_no"]))
            if existing is not None:
                return self._repeat_pay(existing)
            trade = self._new_trade(merchant, biz, params, "PAY", amount_fen)
            trade.payer = _buyer_id(auth_code)
            trade.trade_no = self._ctx.new_trade_no("2026")
            behaviour = payment_code_behaviour(auth_code)
            self._ctx.book.add(trade)
            if behaviour == "no_money":
                trade.status = "PAYERROR"
                return _business("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")
            if behaviour in ("password", "abandon"):
                trade.status = "USERPAYING"
                trade.userpaying_polls_left = 2 if behaviour == "password" else -1
                return {"code": "10003", "msg": "Waiting Payment", **self._trade_fields(trade)}
            settle_payment(self._ctx, trade, trade.payer)
        return {**OK, **self._trade_fields(trade), "gmt_payment": _beijing(trade.paid_at or 0)}

    def _repeat_pay(self, trade: SimTrade) -> dict:
        if trade.status == "USERPAYING":
            return {"code": "10003", "msg": "Waiting Payment", **self._trade_fields(trade)}
        if trade.status in ("SUCCESS", "REFUND"):
            return _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        return _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")

    def _query(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        with self._ctx.book.lock:
            trade = self._find(merchant, biz)
            if trade is None:
                return _business(*TRADE_NOT_EXIST)
            self._advance_password(trade)
            answer = {**OK, **self._trade_fields(trade), "trade_status": _trade_status(trade)}
            if trade.paid_at:
                answer["send_pay_date"] = _beijing(trade.paid_at)
            return answer

    def _advance_password(self, trade: SimTrade) -> None:
        """A consumer typing the password: WAIT_BUYER_PAY for two queries, paid at the third."""
        if trade.status != "USERPAYING" or trade.userpaying_polls_left < 0:
            return
        if trade.userpaying_polls_left > 0:
            trade.userpaying_polls_left -= 1
            return
        settle_payment(self._ctx, trade, trade.payer)

    def _close(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        with self._ctx.book.lock:
            trade = self._find(merchant, biz)
            if trade is None:
                return _business(*TRADE_NOT_EXIST)
            if trade.status in ("NOTPAY", "USERPAYING"):
                trade.status = "CLOSED"
            elif trade.status in ("SUCCESS", "REFUND"):
                return _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            return {**OK, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def _cancel(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        out_trade_no = str(biz.get("out_trade_no") or "")
        with self._ctx.book.lock:
            trade = self._ctx.book.get("alipay", merchant.key, out_trade_no) if out_trade_no else self._find(merchant, biz)
            if trade is None:  # nothing arrived: Alipay answers closed, so a late pay cannot succeed
                return {**OK, "out_trade_no": out_trade_no, "retry_flag": "N", "action": "close"}
            if trade.refunds and trade.status != "REVOKED":
                return _business("ACQ.TRADE_STATUS_ERROR", "交易已退款，不能撤销")
            action = "refund" if trade.status in ("SUCCESS", "REVOKED") and trade.paid_at else "close"
            if trade.status == "SUCCESS":
                trade.refunds.append(SimRefund("", self._ctx.new_trade_no("2026"), trade.amount_fen, self._ctx.clock()))
            trade.status = "REVOKED"
            return {**OK, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                    "retry_flag": "N", "action": action}

    def _refund(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        amount_fen = _fen(biz.get("refund_amount"))
        if not amount_fen:
            return _business("ACQ.INVALID_PARAMETER", "参数无效")
        with self._ctx.book.lock:
            trade = self._find(merchant, biz)
            if trade is None:
                return _business(*TRADE_NOT_EXIST)
            if trade.status not in ("SUCCESS", "REFUND"):
                return _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            request_no = str(biz.get("out_request_no") or trade.trade_no)
            earlier = next((r for r in trade.refunds if r.out_refund_no == request_no), None)
            if earlier is not None and earlier.amount_fen != amount_fen:
                return _business("ACQ.INVALID_PARAMETER", "同一退款请求号的退款金额不一致")
            fund_change = "N"  # a repeat of a refund made (or being made) before
            if earlier is None or earlier.status == "FAILED":  # new, or Alipay's retry of a failed one
                if trade.refunded_fen + amount_fen > trade.amount_fen:
                    return _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
                status = self._ctx.book.next_refund_status("alipay")  # TradeBook.plan_refunds
                if status == "FAILED":
                    return _business("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
                if earlier is None:
                    trade.refunds.append(SimRefund(request_no, self._ctx.new_trade_no("2026"), amount_fen,
                                                   self._ctx.clock(), status=status))
                else:
                    earlier.status, earlier.created_at = status, self._ctx.clock()
                trade.status = "REFUND"
                fund_change = "Y" if status == "SUCCESS" else "N"  # processing: no money moved yet
            done_fen = sum(r.amount_fen for r in trade.refunds_done)
            return {**OK, **self._trade_fields(trade), "fund_change": fund_change,
                    "refund_fee": _yuan(done_fen), "gmt_refund_pay": _beijing(self._ctx.clock())}

    def _refund_query(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        """As Alipay: a refund it does not know (or one that failed) is a 10000 answer without refund
        fields; one still processing is listed without refund_status; a done one has REFUND_SUCCESS."""
        with self._ctx.book.lock:
            trade = self._find(merchant, biz)
            if trade is None:
                return _business(*TRADE_NOT_EXIST)
            request_no = str(biz.get("out_request_no") or "")
            refund = next((r for r in trade.refunds if r.out_refund_no == request_no), None)
            if refund is None or refund.status == "FAILED":
                return {**OK, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
            listed = {**OK, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                      "out_request_no": request_no, "total_amount": _yuan(trade.amount_fen),
                      "refund_amount": _yuan(refund.amount_fen)}
            if refund.status != "SUCCESS":
                return listed
            return {**listed, "refund_status": "REFUND_SUCCESS", "gmt_refund_pay": _beijing(refund.created_at)}

    def _trade_fields(self, trade: SimTrade) -> dict:
        buyer = _buyer_id(trade.payer or trade.out_trade_no)
        fields = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                  "buyer_logon_id": _logon_id(buyer), "buyer_user_id": buyer,
                  "total_amount": _yuan(trade.amount_fen)}
        if trade.paid_at:
            paid = _yuan(trade.amount_fen)
            fields.update(receipt_amount=paid, buyer_pay_amount=paid, invoice_amount=paid, point_amount="0.00",
                          fund_bill_list=[{"fund_channel": "ALIPAYACCOUNT", "amount": paid}])
        return fields

    # -- notifications

    def notification(self, trade: SimTrade) -> Delivery | None:
        if not trade.notify_url:
            return None
        fields = notification_fields(trade, self._ctx.clock())
        fields["sign"] = rsa2_sign(self._section["platform_private_key"],
                                   signing_text(fields, exclude=("sign", "sign_type")))
        return Delivery(
            url=trade.notify_url, body=urlencode(fields).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            is_ack=lambda status, body: body == b"success", schedule=ALIPAY_SCHEDULE,
            label=f"alipay {trade.out_trade_no}",
        )

    # -- bills

    def _bill_url(self, merchant: Merchant, biz: dict, params: dict) -> dict:
        if biz.get("bill_type") != "trade":
            return _business("isv.invalid-bill-type", "sandbox serves bill_type trade only")
        try:
            day = datetime.strptime(str(biz.get("bill_date", "")), "%Y-%m-%d").date()
        except ValueError:
            return _business("isv.invalid-bill-date", "账单日期格式不正确")
        if day >= datetime.fromtimestamp(self._ctx.clock(), BEIJING).date():
            return _business("isp.bill_not_exist", "账单不存在")
        token = secrets.token_urlsafe(16)
        with self._lock:
            now = self._ctx.clock()
            self._bill_tokens = {k: v for k, v in self._bill_tokens.items() if now - v[2] <= BILL_URL_TTL_S}
            self._bill_tokens[token] = (merchant.seller_id, day, now)
        return {**OK, "bill_download_url": f"{self._ctx.base_url}/alipay/bill/download?token={token}"}

    def download_bill(self, request: Request) -> Response:
        token = (request.query.get("token") or [""])[-1]
        with self._lock:
            entry = self._bill_tokens.get(token)
        if entry is None or self._ctx.clock() - entry[2] > BILL_URL_TTL_S:
            return Response.text("token expired", 403)
        seller_id, day = entry[0], entry[1]
        trades = [t for t in self._ctx.book.all() if t.platform == "alipay" and t.extra.get("seller_id") == seller_id]
        archive = trade_bill_zip(seller_id, day, trades, int(self._section.get("fee_ppm", 6000)), self._ctx.clock())
        name = f"{seller_id}_{day:%Y%m%d}.csv.zip"
        return Response(200, archive, {"Content-Type": "application/oct-stream",
                                       "Content-Disposition": f'attachment; filename="{name}"'})


def _exists(trade: SimTrade) -> bool:
    """Alipay creates a precreated trade when it is scanned (settle_payment gives it a trade_no)."""
    return trade.trade_type != "PRECREATE" or bool(trade.trade_no)


def _trade_status(trade: SimTrade) -> str:
    if trade.status in ("NOTPAY", "USERPAYING"):
        return "WAIT_BUYER_PAY"
    if trade.status in ("SUCCESS", "REFUND") and trade.refunded_fen < trade.amount_fen:
        return "TRADE_SUCCESS"
    return "TRADE_CLOSED"  # closed unpaid, cancelled, failed, or refunded in full


def _repeat_precreate(trade: SimTrade, amount_fen: int) -> dict:
    """Precreate is repeatable: the same order gets the same QR while it can be paid."""
    if trade.status in ("SUCCESS", "REFUND"):
        return _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
    if trade.status != "NOTPAY":
        return _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
    if trade.amount_fen != amount_fen:
        return _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
    return {**OK, "out_trade_no": trade.out_trade_no, "qr_code": trade.code_url}


def _expiry(biz: dict, now: float) -> float | None:
    """time_expire (Beijing "yyyy-MM-dd HH:mm:ss") or timeout_express ("90m", "2h", "1d")."""
    if biz.get("time_expire"):
        try:
            at = datetime.strptime(str(biz["time_expire"]), TIME_FORMAT).replace(tzinfo=BEIJING).timestamp()
        except ValueError:
            return None
        return at if at > now else None
    express = str(biz.get("timeout_express") or f"{DEFAULT_QR_MINUTES}m")
    match = re.fullmatch(r"([0-9]{1,4})([mhd])", express)
    if not match:
        return None
    return now + int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]


def notification_fields(trade: SimTrade, now: float) -> dict[str, str]:
    """The trade_status_sync fields Alipay posts for a paid trade (unsigned)."""
    buyer = _buyer_id(trade.payer or trade.out_trade_no)
    paid = _yuan(trade.amount_fen)
    return {
        "notify_time": _beijing(now), "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(16),
        "app_id": trade.extra["app_id"], "auth_app_id": trade.extra.get("auth_app_id") or trade.extra["app_id"],
        "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
        "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
        "buyer_id": buyer, "buyer_logon_id": _logon_id(buyer), "seller_id": trade.extra["seller_id"],
        "trade_status": "TRADE_SUCCESS", "total_amount": paid, "receipt_amount": paid,
        "invoice_amount": paid, "buyer_pay_amount": paid, "point_amount": "0.00",
        "subject": trade.description, "gmt_create": _beijing(trade.created_at),
        "gmt_payment": _beijing(trade.paid_at or now),
        "fund_bill_list": json.dumps([{"amount": paid, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")),
    }


# ---------------------------------------------------------------------------- the trade bill

DETAIL_COLUMNS = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
    "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
    "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
    "服务费（元）", "分润（元）", "备注",
)
SUMMARY_COLUMNS = (
    "门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）", "支付宝优惠（元）",
    "商家优惠（元）", "卡消费金额（元）", "服务费（元）", "分润（元）", "实收净额（元）",
)
DETAIL_START = "#-----------------------------------------业务明细列表----------------------------------------"
DETAIL_END = "#-----------------------------------------业务明细列表结束------------------------------------"
SUMMARY_START = "#-----------------------------------------业务汇总列表----------------------------------------"
SUMMARY_END = "#----------------------------------------业务汇总列表结束-------------------------------------"


@dataclass(frozen=True)
class _BillLine:
    trade: SimTrade
    kind: str  # 交易 / 退款
    amount_fen: int  # negative for refunds
    finished_at: float
    request_no: str


def _bill_lines(day: date, trades: Iterable[SimTrade]) -> list[_BillLine]:
    """Payments completed and refunds made on that Beijing day, in time order."""
    def on_day(ts: float | None) -> bool:
        return ts is not None and datetime.fromtimestamp(ts, BEIJING).date() == day

    lines = []
    for trade in trades:
        if trade.paid_at and on_day(trade.paid_at):
            lines.append(_BillLine(trade, "交易", trade.amount_fen, trade.paid_at, ""))
        for refund in trade.refunds_done:
            if on_day(refund.created_at):
                lines.append(_BillLine(trade, "退款", -refund.amount_fen, refund.created_at, refund.out_refund_no))
    return sorted(lines, key=lambda line: line.finished_at)


def _detail_row(line: _BillLine, fee_ppm: int) -> list[str]:
    trade, amount = line.trade, _yuan(line.amount_fen)
    # Alipay ends id cells with a tab so spreadsheets keep them as text.
    return [
        f"{trade.trade_no}\t", f"{trade.out_trade_no}\t", line.kind, trade.description,
        _beijing(trade.created_at), _beijing(line.finished_at), "", "", "", "",
        _logon_id(_buyer_id(trade.payer or trade.out_trade_no)), amount, amount, "0.00", "0.00", "0.00", "0.00",
        "0.00", "", "0.00", "0.00", f"{line.request_no}\t" if line.request_no else "",
        _yuan(-_fee(line.amount_fen, fee_ppm)), "0.00", "",
    ]


def _csv_lines(rows: Iterable[Iterable[str]]) -> list[str]:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().splitlines()


def _header(title: str, seller_id: str, day: date) -> list[str]:
    start = f"{day:%Y年%m月%d日} 00:00:00"
    end = f"{day + timedelta(days=1):%Y年%m月%d日} 00:00:00"
    return [f"#{title}", f"#账号：[{seller_id}0156]", f"#起始日期：[{start}]   终止日期：[{end}]"]


def _exported(now: float) -> str:
    return f"#导出时间：[{datetime.fromtimestamp(now, BEIJING):%Y年%m月%d日 %H:%M:%S}]"


def detail_csv(seller_id: str, day: date, lines: list[_BillLine], fee_ppm: int, now: float) -> str:
    paid = [line for line in lines if line.kind == "交易"]
    refunded = [line for line in lines if line.kind == "退款"]
    return "\r\n".join([
        *_header("支付宝业务明细查询", seller_id, day), DETAIL_START,
        *_csv_lines([DETAIL_COLUMNS, *(_detail_row(line, fee_ppm) for line in lines)]), DETAIL_END,
        f"#交易合计：{len(paid)}笔，商家实收共{_yuan(sum(l.amount_fen for l in paid))}元，商家优惠共0.00元",
        f"#退款合计：{len(refunded)}笔，商家实收退款共{_yuan(sum(l.amount_fen for l in refunded))}元，商家优惠退款共0.00元",
        _exported(now),
    ]) + "\r\n"


def summary_csv(seller_id: str, day: date, lines: list[_BillLine], fee_ppm: int, now: float) -> str:
    total = sum(line.amount_fen for line in lines)
    fees = sum(-_fee(line.amount_fen, fee_ppm) for line in lines)
    row = ["合计", "", str(sum(l.kind == "交易" for l in lines)), str(sum(l.kind == "退款" for l in lines)),
           _yuan(total), _yuan(total), "0.00", "0.00", "0.00", _yuan(fees), "0.00", _yuan(total + fees)]
    return "\r\n".join([
        *_header("支付宝业务汇总查询", seller_id, day), SUMMARY_START,
        *_csv_lines([SUMMARY_COLUMNS, row]), SUMMARY_END, _exported(now),
    ]) + "\r\n"


class _GbkName(zipfile.ZipInfo):
    """Alipay's archives name their entries in GBK, without the UTF-8 flag (readers pass "GBK")."""

    def _encodeFilenameFlags(self):  # type: ignore[no-untyped-def]
        return self.filename.encode("gbk"), self.flag_bits


def trade_bill_zip(seller_id: str, day: date, trades: Iterable[SimTrade], fee_ppm: int, now: float) -> bytes:
    lines = _bill_lines(day, trades)
    stem = f"{seller_id}_{day:%Y%m%d}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in ((f"{stem}_业务明细.csv", detail_csv(seller_id, day, lines, fee_ppm, now)),
                           (f"{stem}_业务明细(汇总).csv", summary_csv(seller_id, day, lines, fee_ppm, now))):
            info = _GbkName(name, date_time=datetime.fromtimestamp(now, BEIJING).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("gbk", errors="replace"))
    return buffer.getvalue()


def build(ctx: SandboxContext) -> AlipayPlatform:
    return AlipayPlatform(ctx)
