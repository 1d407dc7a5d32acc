"""WeChat Pay API v2 (XML bodies, MD5 or HMAC-SHA256 signatures) as the sandbox plays it.

Endpoints, all POST under PREFIX, so the SDK base URL (wechatpy `API_BASE_URL`) is `{sandbox}/wxpay/`:

    /pay/unifiedorder    NATIVE: answers code_url weixin://wxpay/bizpayurl?pr=<random>;
                         JSAPI: needs openid (or sub_openid with sub_appid in service-provider mode),
                         answers prepay_id only; the payment is made by /sandbox/jsapi/pay
    /pay/micropay        payment codes; the consumer's behaviour comes from the code (trades.py)
    /pay/orderquery      trade_state; a password payment turns SUCCESS on the third query
    /pay/closeorder
    /secapi/pay/reverse  cancels a payment-code trade, giving the money back if it was paid
    /secapi/pay/refund   idempotent by out_refund_no; refunds complete at once
    /pay/refundquery     refund_status_n SUCCESS, PROCESSING or CHANGE (TradeBook.plan_refunds)
    /pay/downloadbill    the ALL bill of one Beijing date, in WeChat's text format (see _bill_text)

Control (JSON, not part of WeChat):

    POST /sandbox/jsapi/pay {"prepay_id"}   the card holder confirms a JSAPI payment inside WeChat:
                                            pays the trade and posts its signed notification.
                                            404 UNKNOWN_PREPAY_ID, 409 NOT_PAYABLE (paid, closed, expired)

Every request is checked as the platform does: XML, known mch_id, signature with that merchant's
api_key (MD5, or HMAC-SHA256 when the request says sign_type=HMAC-SHA256), app id bound to the
mch_id, and in service-provider mode a sub_mch_id the service provider registered. Failures of the
first three answer return_code FAIL (unsigned); business errors answer result_code FAIL with
err_code, signed. Every return_code SUCCESS answer is signed with the request's sign type.

accounts["wechat_v2"] (make_accounts_section / make_merchant build one):

    {"merchants": {
        "<mch_id>": {
            "api_key": "<32 letters and digits>",   # API v2 key: signs both directions (secret)
            "appids": ["wx..."],                      # app ids bound to this mch_id
            "fee_rate_ppm": 6000,                     # the fee the bill shows (0.60 %)
            "sub_merchants": {                        # service providers (the bank) only
                "<sub_mch_id>": {"sub_appids": ["wx..."], "fee_rate_ppm": 6000}
            }
        }
    }}

WeChat Pay v2 has no platform key of its own: the merchant's api_key signs requests, answers and
notifications. A merchant with sub_merchants is a service provider and must name sub_mch_id.

Client certificate: the real /secapi/ endpoints require the merchant's TLS client certificate.
The sandbox is plain HTTP on loopback, so there is no handshake in which to check one; /secapi/
calls are authenticated by their signature only, like every other endpoint here.

Signing and XML are written here from the platform's rules, not taken from wechatpy, so that the
sandbox checks the SDK instead of agreeing with it by construction.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from sandbox.http import Request, Response, Router
from sandbox.keys import api_key as new_api_key
from sandbox.notifier import WECHAT_SCHEDULE, Delivery
from sandbox.platform import SandboxContext, settle_payment
from sandbox.trades import SimRefund, SimTrade, payment_code_behaviour, payment_code_wallet

PREFIX = "/wxpay"
REFUND_STATUS = {"SUCCESS": "SUCCESS", "PROCESSING": "PROCESSING", "FAILED": "CHANGE"}  # SimRefund -> v2
NAME = "wechat_v2"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
MD5, HMAC_SHA256 = "MD5", "HMAC-SHA256"
PAID_STATES = ("SUCCESS", "REFUND")
PASSWORD_QUERIES = 2  # a password payment answers USERPAYING to this many queries, then SUCCESS
DEFAULT_EXPIRY_S = 2 * 3600  # unifiedorder without time_expire: WeChat's two hours
TEXT_XML = "text/xml; charset=utf-8"

TRADE_STATE_DESC = {
    "SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "未支付", "CLOSED": "已关闭",
    "REVOKED": "已撤销", "USERPAYING": "用户支付中", "PAYERROR": "支付失败",
}


# --- accounts -----------------------------------------------------------------------------

def make_merchant(appid: str, *, sub_merchants: Mapping[str, Iterable[str]] | None = None,
                  fee_rate_ppm: int = 6000, api_key: str | None = None) -> dict:
    """One merchant account; `sub_merchants` ({sub_mch_id: sub_appids}) makes it a service provider."""
    return {
        "api_key": api_key or new_api_key(),
        "appids": [appid],
        "fee_rate_ppm": fee_rate_ppm,
        "sub_merchants": {
            sub_mch_id: {"sub_appids": list(sub_appids), "fee_rate_ppm": fee_rate_ppm}
            for sub_mch_id, sub_appids in (sub_merchants or {}).items()
        },
    }


def make_accounts_section(merchants: Mapping[str, dict]) -> dict:
    """accounts["wechat_v2"] from {mch_id: make_merchant(...)}."""
    return {"merchants": dict(merchants)}


# --- signatures and XML -------------------------------------------------------------------

def sign(fields: Mapping[str, str], key: str, sign_type: str = MD5) -> str:
    """WeChat v2: non-empty fields but sign, sorted by name, k=v joined by &, then &key=<api_key>."""
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign" and fields[k] != "")
    message = f"{text}&key={key}".encode("utf-8")
    if sign_type == HMAC_SHA256:
        return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest().upper()
    return hashlib.md5(message).hexdigest().upper()


def to_xml(fields: Mapping[str, str]) -> bytes:
    """Digits bare, everything else in CDATA, as the platform writes it."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if value.isdigit():
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts).encode("utf-8")


def from_xml(body: bytes) -> dict[str, str]:
    """A flat <xml> document as a dict; no DTD, no entities, no nesting, no repeated fields."""
    root = safe_fromstring(body, forbid_dtd=True)
    fields: dict[str, str] = {}
    for child in root:
        if len(child) or child.tag in fields:
            raise ValueError(f"unexpected structure at {child.tag}")
        fields[child.tag] = child.text or ""
    if root.tag != "xml":
        raise ValueError("root is not <xml>")
    return fields


def nonce() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def beijing(unix_seconds: float, fmt: str = "%Y%m%d%H%M%S") -> str:
    return datetime.fromtimestamp(unix_seconds, BEIJING).strftime(fmt)


def openid(appid: str, payer: str) -> str:
    """An openid-like id: stable per consumer and app id, like the real ones."""
    digest = hashlib.sha256(f"{appid}/{payer}".encode()).hexdigest()
    return f"o{digest[:27]}"


def is_openid(value: str) -> bool:
    """The shape real openids have (28 characters from o, letters, digits, - and _)."""
    allowed = set(string.ascii_letters + string.digits + "-_")
    return len(value) == 28 and value.startswith("o") and set(value) <= allowed


# --- request handling ---------------------------------------------------------------------

class Refusal(Exception):
    """A business error: answered result_code FAIL with err_code, signed."""

    def __init__(self, code: str, description: str, **extra: str) -> None:
        super().__init__(code)
        self.code, self.description, self.extra = code, description, extra


@dataclass(frozen=True)
class Call:
    """A request that passed the platform's checks."""

    fields: dict[str, str]
    account: dict
    sign_type: str

    @property
    def mch_id(self) -> str:
        return self.fields["mch_id"]

    @property
    def sub_mch_id(self) -> str:
        return self.fields.get("sub_mch_id", "")

    @property
    def merchant_key(self) -> str:
        return f"{self.mch_id}/{self.sub_mch_id}" if self.sub_mch_id else self.mch_id

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    def need(self, *names: str) -> None:
        missing = [n for n in names if not self.fields.get(n)]
        if missing:
            raise Refusal("LACK_PARAMS", f"缺少参数 {','.join(missing)}")

    def fee_rate_ppm(self) -> int:
        sub = self.account.get("sub_merchants", {}).get(self.sub_mch_id, {})
        return int(sub.get("fee_rate_ppm", self.account.get("fee_rate_ppm", 6000)))


def return_fail(message: str) -> Response:
    """Communication-level failure: unsigned, like the platform's."""
    body = to_xml({"return_code": "FAIL", "return_msg": message})
    return Response(200, body, {"Content-Type": TEXT_XML})


Handler = Callable[[Call], "dict[str, str] | Response"]


class WeChatV2Platform:
    name = NAME
    wallet = "wechat"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    @property
    def merchants(self) -> dict:
        return self.ctx.accounts.get(NAME, {}).get("merchants", {})

    def register(self, router: Router) -> None:
        routes: dict[str, Handler] = {
            "/pay/unifiedorder": self._unifiedorder,
            "/pay/micropay": self._micropay,
            "/pay/orderquery": self._orderquery,
            "/pay/closeorder": self._closeorder,
            "/secapi/pay/reverse": self._reverse,
            "/secapi/pay/refund": self._refund,
            "/pay/refundquery": self._refundquery,
            "/pay/downloadbill": self._downloadbill,
        }
        for path, handler in routes.items():
            router.add("POST", PREFIX + path, self._endpoint(handler, needs_sub_mch=path != "/pay/downloadbill"))
        router.add("POST", "/sandbox/jsapi/pay", self._jsapi_pay)

    def _endpoint(self, handler: Handler, needs_sub_mch: bool) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            call = self._authenticate(request.body)
            if isinstance(call, Response):
                return call
            try:
                self._check_merchant(call, needs_sub_mch)
                with self.ctx.book.lock:
                    self.ctx.book.expire_due(self.ctx.clock())
                    answer = handler(call)
            except Refusal as refusal:
                return self._answer(call, {
                    "result_code": "FAIL", "err_code": refusal.code, "err_code_des": refusal.description,
                    **refusal.extra,
                })
            if isinstance(answer, Response):
                return answer
            return self._answer(call, {"result_code": "SUCCESS", **answer})

        return endpoint

    def _authenticate(self, body: bytes) -> Call | Response:
        try:
            fields = from_xml(body)
        except (DefusedXmlException, ParseError, ValueError):
            return return_fail("XML格式错误")
        account = self.merchants.get(fields.get("mch_id", ""))
        if account is None:
            return return_fail("mch_id参数格式错误或商户号不存在")
        sign_type = fields.get("sign_type") or MD5
        if sign_type not in (MD5, HMAC_SHA256):
            return return_fail("sign_type参数格式错误")
        if not fields.get("nonce_str"):
            return return_fail("缺少参数 nonce_str")
        expected = sign(fields, account["api_key"], sign_type)
        if not hmac.compare_digest(expected.encode(), fields.get("sign", "").encode()):
            return return_fail("签名错误")
        return Call(fields, account, sign_type)

    @staticmethod
    def _check_merchant(call: Call, needs_sub_mch: bool) -> None:
        if call.get("appid") not in call.account.get("appids", []):
            raise Refusal("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        sub_merchants = call.account.get("sub_merchants", {})
        if not call.sub_mch_id:
            if sub_merchants and needs_sub_mch:
                raise Refusal("PARAM_ERROR", "服务商模式下sub_mch_id为必填参数")
            return
        sub = sub_merchants.get(call.sub_mch_id)
        if sub is None:
            raise Refusal("INVALID_REQUEST", "子商户号信息有误,请检查修改后重试")
        if call.get("sub_appid") and call.get("sub_appid") not in sub.get("sub_appids", []):
            raise Refusal("INVALID_REQUEST", "sub_appid与sub_mch_id不匹配")

    def _answer(self, call: Call, fields: Mapping[str, str]) -> Response:
        answer = {"return_code": "SUCCESS", "return_msg": "OK", "appid": call.get("appid"), "mch_id": call.mch_id}
        for name in ("sub_appid", "sub_mch_id", "device_info"):
            if call.get(name):
                answer[name] = call.get(name)
        answer["nonce_str"] = nonce()
        answer.update({k: v for k, v in fields.items() if v is not None})
        answer["sign"] = sign(answer, call.account["api_key"], call.sign_type)
        return Response(200, to_xml(answer), {"Content-Type": TEXT_XML})

    # --- trades ---------------------------------------------------------------------------

    def _find(self, call: Call) -> SimTrade | None:
        out_trade_no, transaction_id = call.get("out_trade_no"), call.get("transaction_id")
        if transaction_id:  # the platform prefers its own id when both are given
            return next((t for t in self.ctx.book.all() if t.platform == NAME
                         and t.merchant_key == call.merchant_key and t.trade_no == transaction_id), None)
        return self.ctx.book.get(NAME, call.merchant_key, out_trade_no) if out_trade_no else None

    def _existing(self, call: Call) -> SimTrade:
        if not call.get("out_trade_no") and not call.get("transaction_id"):
            raise Refusal("LACK_PARAMS", "缺少参数 out_trade_no或transaction_id")
        trade = self._find(call)
        if trade is None:
            raise Refusal("ORDERNOTEXIST", "订单不存在")
        return trade

    def _new_trade(self, call: Call, trade_type: str, notify_url: str, expires_at: float | None) -> SimTrade:
        names = ("appid", "mch_id", "sub_mch_id", "sub_appid", "attach", "device_info")
        extra = {name: call.get(name) for name in names}
        extra.update(sign_type=call.sign_type, bank_type="OTHERS", fee_rate_ppm=call.fee_rate_ppm())
        return SimTrade(
            platform=NAME, merchant_key=call.merchant_key, out_trade_no=call.get("out_trade_no"),
            amount_fen=fen(call.get("total_fee")), description=call.get("body"), notify_url=notify_url,
            trade_type=trade_type, created_at=self.ctx.clock(), expires_at=expires_at, extra=extra,
        )

    def _paid_fields(self, trade: SimTrade) -> dict[str, str]:
        extra = trade.extra
        payer_openid = openid(extra["appid"], trade.payer)
        if extra.get("payer_openid") and extra.get("openid_field") == "openid":
            payer_openid = extra["payer_openid"]  # JSAPI: the openid the order named
        fields = {
            "openid": payer_openid, "is_subscribe": "N", "trade_type": trade.trade_type,
            "bank_type": extra["bank_type"], "total_fee": str(trade.amount_fen), "fee_type": "CNY",
            "cash_fee": str(trade.amount_fen), "transaction_id": trade.trade_no,
            "out_trade_no": trade.out_trade_no, "time_end": beijing(trade.paid_at or 0),
            "attach": extra.get("attach", ""),
        }
        if extra.get("sub_appid"):
            sub_openid = openid(extra["sub_appid"], trade.payer)
            if extra.get("openid_field") == "sub_openid":
                sub_openid = extra["payer_openid"]
            fields.update(sub_openid=sub_openid, sub_is_subscribe="N")
        return fields

    def _unifiedorder(self, call: Call) -> dict[str, str]:
        call.need("body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type")
        trade_type = call.get("trade_type")
        if trade_type not in ("NATIVE", "JSAPI"):
            raise Refusal("PARAM_ERROR", "sandbox: only trade_type NATIVE or JSAPI")
        payer_openid = self._jsapi_openid(call) if trade_type == "JSAPI" else ""
        amount, now = fen(call.get("total_fee")), self.ctx.clock()
        expires_at = parse_beijing(call.get("time_expire")) if call.get("time_expire") else now + DEFAULT_EXPIRY_S
        if expires_at <= now:
            raise Refusal("PARAM_ERROR", "time_expire时间过短")
        existing = self.ctx.book.get(NAME, call.merchant_key, call.get("out_trade_no"))
        if existing is not None:
            return self._unifiedorder_again(existing, trade_type, amount, payer_openid)
        trade = self._new_trade(call, trade_type, call.get("notify_url"), expires_at)
        trade.extra["prepay_id"] = f"wx{beijing(now)}{secrets.token_hex(9)}"
        if trade_type == "NATIVE":
            trade.code_url = f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(8)}"
        else:  # who pays is known up front: the openid the Official Account's OAuth gave
            trade.extra["payer_openid"] = payer_openid
            trade.extra["openid_field"] = "sub_openid" if call.get("sub_openid") else "openid"
        self.ctx.book.add(trade)
        return self._prepay_fields(trade)

    @staticmethod
    def _jsapi_openid(call: Call) -> str:
        """JSAPI names its payer: openid (of appid), or sub_openid (of sub_appid) for a service provider."""
        if call.get("sub_openid"):
            if not call.get("sub_appid"):
                raise Refusal("PARAM_ERROR", "sub_openid需要与sub_appid一起传")
            value = call.get("sub_openid")
        else:
            call.need("openid")
            value = call.get("openid")
        if not is_openid(value):
            raise Refusal("PARAM_ERROR", "openid参数格式错误")
        return value

    @staticmethod
    def _prepay_fields(trade: SimTrade) -> dict[str, str]:
        fields = {"trade_type": trade.trade_type, "prepay_id": trade.extra["prepay_id"]}
        if trade.code_url:
            fields["code_url"] = trade.code_url
        return fields

    @classmethod
    def _unifiedorder_again(cls, trade: SimTrade, trade_type: str, amount_fen: int,
                            payer_openid: str) -> dict[str, str]:
        """The same order again: the same code_url / prepay_id while it is payable, as the platform does."""
        if trade.status in PAID_STATES:
            raise Refusal("ORDERPAID", "该订单已支付")
        if trade.status in ("CLOSED", "REVOKED"):
            raise Refusal("ORDERCLOSED", "该订单已关")
        if (trade.trade_type != trade_type or trade.amount_fen != amount_fen
                or trade.extra.get("payer_openid", "") != payer_openid):
            raise Refusal("INVALID_REQUEST", "201 商户订单号重复")
        return cls._prepay_fields(trade)

    def _jsapi_pay(self, request: Request) -> Response:
        """Control: the holder confirms the JSAPI payment in WeChat (not a WeChat endpoint)."""
        try:
            prepay_id = str(request.json()["prepay_id"])
        except (ValueError, KeyError, TypeError):
            return Response.json({"ok": False, "error": "BAD_REQUEST", "message": "need prepay_id"}, 400)
        with self.ctx.book.lock:
            self.ctx.book.expire_due(self.ctx.clock())
            trade = next((t for t in self.ctx.book.all() if t.platform == NAME and t.trade_type == "JSAPI"
                          and t.extra.get("prepay_id") == prepay_id), None)
            if trade is None:
                return Response.json({"ok": False, "error": "UNKNOWN_PREPAY_ID"}, 404)
            if trade.status != "NOTPAY":
                return Response.json({"ok": False, "error": "NOT_PAYABLE", "status": trade.status}, 409)
            settle_payment(self.ctx, trade, payer=trade.extra["payer_openid"])
        return Response.json({"ok": True, "platform": NAME, "out_trade_no": trade.out_trade_no,
                              "trade_no": trade.trade_no, "amount_fen": trade.amount_fen})

    def _micropay(self, call: Call) -> dict[str, str]:
        call.need("body", "out_trade_no", "total_fee", "spbill_create_ip", "auth_code")
        fen(call.get("total_fee"))
        auth_code = call.get("auth_code")
        if payment_code_wallet(auth_code) != "wechat":
            raise Refusal("AUTH_CODE_INVALID", "请扫描微信支付授权码(以10/11/12/13/14/15为前缀的18位数字)")
        trade = self.ctx.book.get(NAME, call.merchant_key, call.get("out_trade_no"))
        if trade is not None:
            if trade.extra.get("auth_code") != auth_code:
                raise Refusal("ORDERPAID" if trade.status in PAID_STATES else "OUT_TRADE_NO_USED", "商户订单号重复")
            return self._micropay_outcome(trade)  # a retry of the same payment learns how it went
        trade = self._new_trade(call, "MICROPAY", "", None)
        behaviour = payment_code_behaviour(auth_code)
        trade.extra.update(auth_code=auth_code, behaviour=behaviour)
        self.ctx.book.add(trade)
        if behaviour == "instant":
            settle_payment(self.ctx, trade, payer=f"sandbox-wechat-{auth_code[:6]}")
        elif behaviour == "no_money":
            trade.status = "PAYERROR"
        else:  # password, abandon: the consumer is typing a password
            trade.status = "USERPAYING"
            trade.userpaying_polls_left = PASSWORD_QUERIES
        return self._micropay_outcome(trade)

    def _micropay_outcome(self, trade: SimTrade) -> dict[str, str]:
        if trade.status in PAID_STATES:
            return self._paid_fields(trade)
        refusals = {
            "USERPAYING": ("USERPAYING", "需要用户输入支付密码"),
            "PAYERROR": ("NOTENOUGH", "余额不足"),
            "REVOKED": ("ORDERREVERSED", "订单已撤销"),
            "CLOSED": ("ORDERCLOSED", "订单已关闭"),
        }
        code, description = refusals.get(trade.status, ("SYSTEMERROR", "系统超时"))
        raise Refusal(code, description)

    def _advance_password(self, trade: SimTrade) -> None:
        """A consumer typing a password: USERPAYING for PASSWORD_QUERIES queries, then paid."""
        if trade.status != "USERPAYING" or trade.extra.get("behaviour") != "password":
            return
        if trade.userpaying_polls_left > 0:
            trade.userpaying_polls_left -= 1
        else:
            settle_payment(self.ctx, trade, payer=f"sandbox-wechat-{trade.extra['auth_code'][:6]}")

    def _orderquery(self, call: Call) -> dict[str, str]:
        trade = self._existing(call)
        self._advance_password(trade)
        fields = {"out_trade_no": trade.out_trade_no, "trade_state": trade.status,
                  "trade_state_desc": TRADE_STATE_DESC.get(trade.status, trade.status),
                  "total_fee": str(trade.amount_fen), "trade_type": trade.trade_type}
        if trade.paid_at is not None:
            fields.update(self._paid_fields(trade))
        return fields

    def _closeorder(self, call: Call) -> dict[str, str]:
        call.need("out_trade_no")
        trade = self._existing(call)
        if trade.status in PAID_STATES:
            raise Refusal("ORDERPAID", "订单已支付，不能发起关单")
        if trade.status in ("CLOSED", "REVOKED"):
            raise Refusal("ORDERCLOSED", "订单已关闭，无法重复关闭")
        if trade.status == "USERPAYING":
            raise Refusal("USERPAYING", "用户支付中，不能关单")
        trade.status = "CLOSED"
        return {"result_msg": "OK"}

    def _reverse(self, call: Call) -> dict[str, str]:
        try:
            trade = self._existing(call)
        except Refusal as refusal:
            raise Refusal(refusal.code, refusal.description, recall="N") from None
        if trade.status == "REFUND":
            raise Refusal("TRADE_STATE_ERROR", "订单已发生退款，请使用申请退款API", recall="N")
        if trade.status == "SUCCESS":  # paid: the money goes back, and the bill shows a REVOKED row
            refund = SimRefund(trade.out_trade_no, self.ctx.new_trade_no("50"), trade.amount_fen, self.ctx.clock())
            trade.refunds.append(refund)
            trade.extra["revoke_refund_id"] = refund.refund_id
        trade.status = "REVOKED"
        return {"recall": "N"}

    def _refund(self, call: Call) -> dict[str, str]:
        call.need("out_refund_no", "total_fee", "refund_fee")
        if not call.get("out_trade_no") and not call.get("transaction_id"):
            raise Refusal("LACK_PARAMS", "缺少参数 out_trade_no或transaction_id")
        trade = self._find(call)
        if trade is None:
            raise Refusal("INVALID_TRANSACTIONID" if call.get("transaction_id") else "ORDERNOTEXIST", "订单不存在")
        total, amount = fen(call.get("total_fee")), fen(call.get("refund_fee"))
        refund = next((r for r in trade.refunds if r.out_refund_no == call.get("out_refund_no")), None)
        if refund is None:
            refund = self._new_refund(trade, call.get("out_refund_no"), total, amount)
        elif refund.amount_fen != amount:
            raise Refusal("PARAM_ERROR", "订单金额或退款金额与之前请求不一致，请核实后再试")
        return {
            "transaction_id": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
            "refund_fee": str(refund.amount_fen), "total_fee": str(trade.amount_fen),
            "cash_fee": str(trade.amount_fen), "cash_refund_fee": str(refund.amount_fen), "refund_channel": "",
        }

    def _new_refund(self, trade: SimTrade, out_refund_no: str, total_fen: int, amount_fen: int) -> SimRefund:
        if trade.status not in PAID_STATES:
            raise Refusal("TRADE_STATE_ERROR", "订单状态错误")
        if total_fen != trade.amount_fen:
            raise Refusal("PARAM_ERROR", "订单金额或退款金额与之前请求不一致，请核实后再试")
        if trade.refunded_fen + amount_fen > trade.amount_fen:
            raise Refusal("ERROR", "累计退款金额大于支付金额")
        refund = SimRefund(out_refund_no, self.ctx.new_trade_no("50"), amount_fen, self.ctx.clock(),
                           status=self.ctx.book.next_refund_status())
        trade.refunds.append(refund)
        trade.status = "REFUND"
        return refund

    def _refundquery(self, call: Call) -> dict[str, str]:
        wanted = {name: call.get(name) for name in ("refund_id", "out_refund_no") if call.get(name)}
        trades = [t for t in self.ctx.book.all() if t.platform == NAME and t.merchant_key == call.merchant_key]
        if call.get("transaction_id") or call.get("out_trade_no"):
            trades = [t for t in [self._find(call)] if t is not None]
        for trade in trades:
            refunds = [r for r in trade.refunds if all(getattr(r, k) == v for k, v in wanted.items())]
            if refunds:
                return self._refund_list(trade, refunds)
        raise Refusal("REFUNDNOTEXIST", "退款订单查询失败")

    @staticmethod
    def _refund_list(trade: SimTrade, refunds: list[SimRefund]) -> dict[str, str]:
        fields = {"transaction_id": trade.trade_no, "out_trade_no": trade.out_trade_no,
                  "total_fee": str(trade.amount_fen), "cash_fee": str(trade.amount_fen),
                  "refund_count": str(len(refunds)), "refund_fee": str(sum(r.amount_fen for r in refunds))}
        for n, refund in enumerate(refunds):
            fields.update({
                f"out_refund_no_{n}": refund.out_refund_no, f"refund_id_{n}": refund.refund_id,
                f"refund_fee_{n}": str(refund.amount_fen), f"refund_status_{n}": REFUND_STATUS[refund.status],
                f"refund_recv_accout_{n}": "支付用户的零钱",
            })
            if refund.status == "SUCCESS":
                fields[f"refund_success_time_{n}"] = beijing(refund.created_at, "%Y-%m-%d %H:%M:%S")
        return fields

    # --- bills ----------------------------------------------------------------------------

    def _downloadbill(self, call: Call) -> Response:
        bill_date = call.get("bill_date")
        if len(bill_date) != 8 or not bill_date.isdigit():
            return bill_fail("invalid bill_date", "20001")
        if (call.get("bill_type") or "ALL") != "ALL":
            return bill_fail("sandbox: only bill_type ALL", "20001")
        trades = [t for t in self.ctx.book.all() if t.platform == NAME and t.extra.get("mch_id") == call.mch_id
                  and (not call.sub_mch_id or t.extra.get("sub_mch_id") == call.sub_mch_id)]
        rows = bill_rows(trades, bill_date)
        if not rows:
            return bill_fail("No Bill Exist", "20002")
        return Response.text(bill_text(rows))

    # --- notifications --------------------------------------------------------------------

    def notification(self, trade: SimTrade) -> Delivery | None:
        if not trade.notify_url:
            return None
        extra = trade.extra
        account = self.merchants[extra["mch_id"]]
        fields = {"return_code": "SUCCESS", "appid": extra["appid"], "mch_id": extra["mch_id"]}
        for name in ("sub_appid", "sub_mch_id", "device_info"):
            if extra.get(name):
                fields[name] = extra[name]
        fields.update(nonce_str=nonce(), result_code="SUCCESS", **self._paid_fields(trade))
        if extra["sign_type"] == HMAC_SHA256:  # the sign type the order was created with
            fields["sign_type"] = HMAC_SHA256
        fields = {k: v for k, v in fields.items() if v != ""}
        fields["sign"] = sign(fields, account["api_key"], extra["sign_type"])
        return Delivery(
            url=trade.notify_url, body=to_xml(fields), headers={"Content-Type": TEXT_XML},
            is_ack=is_ack, schedule=WECHAT_SCHEDULE, label=f"{NAME} {trade.out_trade_no}",
        )


def is_ack(status: int, body: bytes) -> bool:
    """WeChat stops retrying on an HTTP 200 whose XML says return_code SUCCESS."""
    if status != 200:
        return False
    try:
        return from_xml(body).get("return_code") == "SUCCESS"
    except (DefusedXmlException, ParseError, ValueError):
        return False


# --- money and time -----------------------------------------------------------------------

def fen(text: str) -> int:
    """WeChat amounts are positive integer fen."""
    if not text.isdigit() or int(text) <= 0:
        raise Refusal("PARAM_ERROR", "金额参数格式错误")
    return int(text)


def parse_beijing(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        raise Refusal("PARAM_ERROR", "time_expire参数格式错误") from None


def yuan(fen_amount: int) -> str:
    sign_text = "-" if fen_amount < 0 else ""
    whole, rest = divmod(abs(fen_amount), 100)
    return f"{sign_text}{whole}.{rest:02d}"


def fee_text(milli_fen: int) -> str:
    """Bills show fees unrounded, to 0.00001 yuan (a thousandth of a fen)."""
    sign_text = "-" if milli_fen < 0 else ""
    whole, rest = divmod(abs(milli_fen), 100_000)
    return f"{sign_text}{whole}.{rest:05d}"


def fee_milli_fen(amount_fen: int, rate_ppm: int) -> int:
    """amount * rate in thousandths of a fen, rounded half up (exact for rates in 0.001 % steps)."""
    return (amount_fen * rate_ppm * 2 + 1000) // 2000


def rate_text(rate_ppm: int) -> str:
    return f"{rate_ppm // 10_000}.{(rate_ppm % 10_000) // 100:02d}%"


# --- the bill -----------------------------------------------------------------------------

BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
               "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
               "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
BILL_SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


@dataclass(frozen=True)
class BillRow:
    at: float
    columns: tuple[str, ...]  # the 27 columns of BILL_HEADER, without the backquotes
    settled_fen: int  # 应结订单金额
    refund_fen: int  # 退款金额 (and 申请退款金额)
    fee_milli_fen: int
    order_fen: int  # 订单金额


def bill_rows(trades: Iterable[SimTrade], bill_date: str) -> list[BillRow]:
    """Payments paid on that Beijing date, and refunds (REFUND) or reversals (REVOKED) made on it."""
    rows = []
    for trade in trades:
        if trade.paid_at is not None and beijing(trade.paid_at, "%Y%m%d") == bill_date:
            rows.append(_payment_row(trade))
        for refund in trade.refunds_done:
            if beijing(refund.created_at, "%Y%m%d") == bill_date:
                rows.append(_refund_row(trade, refund))
    return sorted(rows, key=lambda row: row.at)


def _row_start(trade: SimTrade, at: float, status: str) -> list[str]:
    extra = trade.extra
    return [beijing(at, "%Y-%m-%d %H:%M:%S"), extra["appid"], extra["mch_id"], extra.get("sub_mch_id") or "0",
            extra.get("device_info", ""), trade.trade_no, trade.out_trade_no,
            extra.get("payer_openid") or openid(extra["appid"], trade.payer),
            trade.trade_type, status, extra["bank_type"], "CNY"]


def _payment_row(trade: SimTrade) -> BillRow:
    assert trade.paid_at is not None
    rate = int(trade.extra["fee_rate_ppm"])
    fee = fee_milli_fen(trade.amount_fen, rate)
    columns = _row_start(trade, trade.paid_at, "SUCCESS") + [
        yuan(trade.amount_fen), "0.00", "0", "0", "0.00", "0.00", "", "", trade.description,
        trade.extra.get("attach", ""), fee_text(fee), rate_text(rate), yuan(trade.amount_fen), "0.00", ""]
    return BillRow(trade.paid_at, tuple(columns), trade.amount_fen, 0, fee, trade.amount_fen)


def _refund_row(trade: SimTrade, refund: SimRefund) -> BillRow:
    rate = int(trade.extra["fee_rate_ppm"])
    fee = -fee_milli_fen(refund.amount_fen, rate)  # the fee of the refunded part comes back
    status = "REVOKED" if trade.extra.get("revoke_refund_id") == refund.refund_id else "REFUND"
    columns = _row_start(trade, refund.created_at, status) + [
        "0.00", "0.00", refund.refund_id, refund.out_refund_no, yuan(refund.amount_fen), "0.00", "ORIGINAL",
        "SUCCESS", trade.description, trade.extra.get("attach", ""), fee_text(fee), rate_text(rate), "0.00",
        yuan(refund.amount_fen), ""]
    return BillRow(refund.created_at, tuple(columns), 0, refund.amount_fen, fee, 0)


def bill_text(rows: list[BillRow]) -> str:
    """Header line, one backquote-prefixed line per row, the summary header and its line."""
    lines = [BILL_HEADER]
    lines += [",".join(f"`{value}" for value in row.columns) for row in rows]
    refunds = sum(row.refund_fen for row in rows)
    fees = sum(row.fee_milli_fen for row in rows)
    summary = [str(len(rows)), yuan(sum(row.settled_fen for row in rows)), yuan(refunds), "0.00", fee_text(fees),
               yuan(sum(row.order_fen for row in rows)), yuan(refunds)]
    lines += [BILL_SUMMARY_HEADER, ",".join(f"`{value}" for value in summary)]
    return "\r\n".join(lines) + "\r\n"


def bill_fail(message: str, error_code: str) -> Response:
    body = to_xml({"return_code": "FAIL", "return_msg": message, "error_code": error_code})
    return Response(200, body, {"Content-Type": TEXT_XML})


def build(ctx: SandboxContext) -> WeChatV2Platform:
    return WeChatV2Platform(ctx)
