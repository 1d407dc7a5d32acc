"""Simulated WeChat Pay APIv3, served under /wxpay so that wechatpayv3 with `_gate_way` set to
`{sandbox}/wxpay` reaches it. Paths below are as the SDK signs them (without the /wxpay prefix):

    POST /v3/pay/transactions/native                     200 {"code_url"}
    POST /v3/pay/transactions/codepay                    200 transaction | 202 {"trade_state": "USERPAYING"} | 4xx
    GET  /v3/pay/transactions/out-trade-no/{no}?mchid=   200 transaction | 404 ORDER_NOT_EXIST
    GET  /v3/pay/transactions/id/{transaction_id}?mchid= 200 transaction | 404 ORDER_NOT_EXIST
    POST /v3/pay/transactions/out-trade-no/{no}/close    204 | 400 ORDER_PAID | 400 USERPAYING | 404
    POST /v3/pay/transactions/out-trade-no/{no}/reverse  200 (code pay only; a paid trade is refunded) | 4xx
    POST /v3/refund/domestic/refunds                     200 refund (status PROCESSING) | 4xx
    GET  /v3/refund/domestic/refunds/{out_refund_no}     200 refund (status SUCCESS, or PROCESSING / ABNORMAL
                                                         as TradeBook.plan_refunds made it) | 404
    GET  /v3/certificates                                200 platform certificate, AEAD-encrypted with the APIv3 key
    GET  /v3/bill/tradebill?bill_date=&bill_type=&tar_type=   200 {"hash_type", "hash_value", "download_url"}
    GET  /v3/billdownload/file?token=                    the bill itself (gzip when tar_type=GZIP), unsigned

Every request must carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,signature=..,
timestamp=..,serial_no=..`, signed with the merchant's private key over
`METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` (401 SIGN_ERROR otherwise; the timestamp may be 300 s off).
Every answer except the bill file is signed over `TIMESTAMP\\nNONCE\\nBODY\\n` (Wechatpay-Timestamp, -Nonce,
-Signature, -Serial, -Signature-Type headers) with the key the merchant verifies with: the platform
certificate's key (Wechatpay-Serial = the certificate serial, hex) for `verify_mode` "certificate", or the
WeChat Pay public key (Wechatpay-Serial = `PUB_KEY_ID_...`) for "public_key". Only certificate-mode
merchants can download the certificate (404 for the others, who have no use for it).

Payment codes behave as sandbox/trades.py says: instant pays; password answers 202 USERPAYING and the
trade stays USERPAYING for two queries, then pays; no_money answers 403 NOTENOUGH (trade PAYERROR);
abandon stays USERPAYING until reversed. Code pay sends no notification (as at WeChat); native trades
paid through /sandbox/scan get a TRANSACTION.SUCCESS notification: JSON whose `resource` is the
transaction encrypted with AEAD_AES_256_GCM (APIv3 key, associated_data "transaction"), signed like
an answer, retried on WeChat's schedule until the merchant answers 200 or 204. Refunds complete at
once (the create answer says PROCESSING, a query says SUCCESS); refund notifications are not simulated.

Trade bill (bill_type ALL / SUCCESS / REFUND) of one Asia/Shanghai day, WeChat's text format (UTF-8,
no BOM, every field prefixed with a backtick, amounts in yuan with two decimals):

    交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,
    货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,
    商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注
    (one row per payment made that day: 交易状态 SUCCESS, 应结订单金额 = 订单金额 = the amount, fee positive;
     one row per refund made that day: 交易状态 REFUND (REVOKED for a reversed code payment), 应结订单金额 and
     订单金额 0.00, 退款金额 = 申请退款金额 = the refund, 退款类型 ORIGINAL, 退款状态 SUCCESS, fee negative)
    总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
    (one summary row: the sums of the rows above)

Fees are amount x the merchant's `fee_rate_ppm` (default 6000 = 0.60 %), rounded half up to the fen per
row. `hash_value` is the SHA1 of the uncompressed bill. A day without rows answers 400 NO_STATEMENT_EXIST;
unlike WeChat, today's bill is served at once (so tests need not wait for tomorrow).

Accounts section, ctx.accounts["wechat_v3"] (make_accounts_section builds one):

    {"platform": {"certificate_private_key": PEM, "certificate": X.509 PEM, "certificate_serial": "HEX",
                  "public_key_private": PEM, "public_key": PEM, "public_key_id": "PUB_KEY_ID_..."},
     "merchants": {"<mchid>": {"appid", "merchant_cert_serial", "merchant_public_key": PEM,
                               "merchant_private_key": PEM (the merchant's; the sandbox never uses it, it is
                               here so devstack and tests can build channel settings: channel_settings()),
                               "apiv3_key", "verify_mode": "certificate" | "public_key", "fee_rate_ppm"}}}
"""
from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable
from urllib.parse import urlencode

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from sandbox.http import Request, Response, Router
from sandbox.keys import api_key, rsa_keypair_pem
from sandbox.notifier import WECHAT_SCHEDULE, Delivery
from sandbox.platform import SandboxContext, settle_payment
from sandbox.trades import SimRefund, SimTrade, payment_code_behaviour, payment_code_wallet

NAME = "wechat_v3"
PREFIX = "/wxpay"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CLOCK_SKEW_S = 300  # WeChat rejects requests whose timestamp is more than 5 minutes off
BEIJING = timezone(timedelta(hours=8))
REVERSE_WINDOW_S = 7 * 24 * 3600  # a code payment can be reversed for seven days
DEFAULT_FEE_RATE_PPM = 6_000

TRADE_STATE_DESC = {
    "NOTPAY": "未支付", "USERPAYING": "用户支付中", "SUCCESS": "支付成功", "CLOSED": "已关闭",
    "REVOKED": "已撤销", "PAYERROR": "支付失败", "REFUND": "转入退款",
}


# ----------------------------------------------------------------------------- keys and crypto

@functools.lru_cache(maxsize=64)
def _private_key(pem: str) -> RSAPrivateKey:
    """Cached: loading validates the RSA key, which costs tens of milliseconds."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


@functools.lru_cache(maxsize=64)
def _public_key(pem: str) -> RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, RSAPublicKey)
    return key


def rsa_sign(private_pem: str, message: str) -> str:
    raw = _private_key(private_pem).sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def rsa_verify(public_pem: str, message: str, signature_b64: str) -> bool:
    try:
        raw = base64.b64decode(signature_b64, validate=True)
        _public_key(public_pem).verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True


def random_nonce(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def aead_encrypt(apiv3_key: str, plaintext: str, associated_data: str, nonce: str | None = None) -> dict:
    """WeChat's AEAD_AES_256_GCM block: the 32-byte APIv3 key, a 12-character nonce, base64 ciphertext+tag."""
    nonce = nonce or random_nonce(12)
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext.encode("utf-8"), associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": associated_data,
            "ciphertext": base64.b64encode(sealed).decode()}


def rfc3339(unix_seconds: float) -> str:
    """WeChat's time format: 2026-01-05T12:00:00+08:00."""
    return datetime.fromtimestamp(int(unix_seconds), BEIJING).isoformat()


def make_platform_certificate(private_pem: str, not_before: datetime, not_after: datetime) -> tuple[str, str]:
    """A self-signed stand-in for the WeChat Pay platform certificate: (PEM, serial as upper-case hex)."""
    key = _private_key(private_pem)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com (ScanPay sandbox)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sandbox platform certificate"),
    ])
    serial = x509.random_serial_number()
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), format(serial, "X")


def make_platform_keys(now: datetime | None = None) -> dict:
    """The platform's own keys: a certificate (valid from a day ago for five years) and a public key."""
    now = now or datetime.now(timezone.utc)
    cert_private, _ = rsa_keypair_pem()
    certificate, serial = make_platform_certificate(
        cert_private, now - timedelta(days=1), now + timedelta(days=5 * 365))
    public_private, public = rsa_keypair_pem()
    return {
        "certificate_private_key": cert_private, "certificate": certificate, "certificate_serial": serial,
        "public_key_private": public_private, "public_key": public,
        "public_key_id": "PUB_KEY_ID_01" + "".join(secrets.choice(string.digits) for _ in range(30)),
    }


def make_merchant(appid: str, verify_mode: str = "certificate", fee_rate_ppm: int = DEFAULT_FEE_RATE_PPM) -> dict:
    if verify_mode not in ("certificate", "public_key"):
        raise ValueError("verify_mode is 'certificate' or 'public_key'")
    private, public = rsa_keypair_pem()
    return {
        "appid": appid, "merchant_cert_serial": secrets.token_hex(20).upper(),
        "merchant_public_key": public, "merchant_private_key": private,
        "apiv3_key": api_key(32), "verify_mode": verify_mode, "fee_rate_ppm": fee_rate_ppm,
    }


def make_accounts_section(
    merchants: Iterable[tuple[str, str, str]] = (("1900000109", "wxd678efh567hg6787", "certificate"),),
) -> dict:
    """A fresh ctx.accounts["wechat_v3"]: platform keys plus one merchant per (mchid, appid, verify_mode)."""
    return {
        "platform": make_platform_keys(),
        "merchants": {mchid: make_merchant(appid, mode) for mchid, appid, mode in merchants},
    }


def channel_settings(section: dict, mchid: str, verify_mode: str | None = None) -> dict:
    """The settings dict chalicelib.channels.wechat_v3.build() takes, for one merchant of the section
    (in the merchant's verify_mode unless told otherwise)."""
    merchant = section["merchants"][mchid]
    settings = {
        "appid": merchant["appid"], "mchid": mchid,
        "merchant_private_key": merchant["merchant_private_key"],
        "merchant_cert_serial": merchant["merchant_cert_serial"], "apiv3_key": merchant["apiv3_key"],
    }
    if (verify_mode or merchant["verify_mode"]) == "public_key":
        settings["public_key"] = section["platform"]["public_key"]
        settings["public_key_id"] = section["platform"]["public_key_id"]
    return settings


def signer_for(platform_keys: dict, verify_mode: str) -> tuple[str, str]:
    """(private key PEM, Wechatpay-Serial) the platform signs with for a merchant in `verify_mode`."""
    if verify_mode == "public_key":
        return platform_keys["public_key_private"], platform_keys["public_key_id"]
    return platform_keys["certificate_private_key"], platform_keys["certificate_serial"]


def signature_headers(private_pem: str, serial: str, body: bytes, timestamp: int, nonce: str) -> dict[str, str]:
    message = f"{timestamp}\n{nonce}\n{body.decode('utf-8')}\n"
    return {
        "Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(private_pem, message), "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


def notification_body(apiv3_key: str, transaction: dict, event_id: str, create_time: str,
                      resource_nonce: str | None = None, event_type: str = "TRANSACTION.SUCCESS") -> bytes:
    resource = aead_encrypt(apiv3_key, json.dumps(transaction, ensure_ascii=False), "transaction", resource_nonce)
    envelope = {
        "id": event_id, "create_time": create_time, "resource_type": "encrypt-resource",
        "event_type": event_type, "summary": "支付成功", "resource": {"original_type": "transaction", **resource},
    }
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


# ----------------------------------------------------------------------------- trade bill

BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
BILL_SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def _fee_fen(amount_fen: int, rate_ppm: int) -> int:
    """Half up to the fen, symmetric for refunds (integer arithmetic only)."""
    magnitude = (abs(amount_fen) * rate_ppm * 2 + 1_000_000) // 2_000_000
    return -magnitude if amount_fen < 0 else magnitude


def _rate_text(rate_ppm: int) -> str:
    return f"{rate_ppm // 10_000}.{(rate_ppm % 10_000) // 100:02d}%"


def _bill_time(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class _BillRow:
    at: float
    fields: list[str]
    settled_fen: int
    refund_fen: int
    fee_fen: int
    order_fen: int


def _payment_row(trade: SimTrade, rate_ppm: int) -> _BillRow:
    fee = _fee_fen(trade.amount_fen, rate_ppm)
    amount = _yuan(trade.amount_fen)
    fields = [
        _bill_time(trade.paid_at or 0), trade.extra.get("appid", ""), trade.merchant_key, "0", "",
        trade.trade_no, trade.out_trade_no, trade.payer, trade.trade_type, "SUCCESS", "OTHERS", "CNY",
        amount, "0.00", "0", "0", "0.00", "0.00", "", "", trade.description, "", _yuan(fee), _rate_text(rate_ppm),
        amount, "0.00", "",
    ]
    return _BillRow(trade.paid_at or 0, fields, trade.amount_fen, 0, fee, trade.amount_fen)


def _refund_row(trade: SimTrade, refund: SimRefund, rate_ppm: int) -> _BillRow:
    fee = _fee_fen(-refund.amount_fen, rate_ppm)
    status = "REVOKED" if trade.status == "REVOKED" else "REFUND"
    amount = _yuan(refund.amount_fen)
    fields = [
        _bill_time(refund.created_at), trade.extra.get("appid", ""), trade.merchant_key, "0", "",
        trade.trade_no, trade.out_trade_no, trade.payer, trade.trade_type, status, "OTHERS", "CNY",
        "0.00", "0.00", refund.refund_id, refund.out_refund_no, amount, "0.00", "ORIGINAL", "SUCCESS",
        trade.description, "", _yuan(fee), _rate_text(rate_ppm), "0.00", amount, "",
    ]
    return _BillRow(refund.created_at, fields, 0, refund.amount_fen, fee, 0)


def _on_day(unix_seconds: float | None, day: date) -> bool:
    return unix_seconds is not None and datetime.fromtimestamp(unix_seconds, BEIJING).date() == day


def bill_rows(trades: Iterable[SimTrade], day: date, bill_type: str, rate_ppm: int) -> list[_BillRow]:
    rows: list[_BillRow] = []
    for trade in trades:
        if bill_type in ("ALL", "SUCCESS") and _on_day(trade.paid_at, day):
            rows.append(_payment_row(trade, rate_ppm))
        if bill_type in ("ALL", "REFUND"):
            rows.extend(_refund_row(trade, r, rate_ppm) for r in trade.refunds_done if _on_day(r.created_at, day))
    return sorted(rows, key=lambda row: row.at)


def render_bill(rows: list[_BillRow]) -> str:
    lines = [BILL_HEADER]
    lines += [",".join("`" + field for field in row.fields) for row in rows]
    totals = [
        str(len(rows)), _yuan(sum(r.settled_fen for r in rows)), _yuan(sum(r.refund_fen for r in rows)), "0.00",
        _yuan(sum(r.fee_fen for r in rows)), _yuan(sum(r.order_fen for r in rows)),
        _yuan(sum(r.refund_fen for r in rows)),
    ]
    lines += [BILL_SUMMARY_HEADER, ",".join("`" + t for t in totals)]
    return "\r\n".join(lines) + "\r\n"


# ----------------------------------------------------------------------------- the platform

class ApiError(Exception):
    """Ends a request with WeChat's error body {"code", "message"}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')
AuthedHandler = Callable[[Request, str, dict], Response]


class WeChatPayV3:
    name = NAME
    wallet = "wechat"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        section = ctx.accounts.get(NAME) or {"platform": {}, "merchants": {}}
        self.keys: dict = section["platform"]
        self.merchants: dict[str, dict] = section["merchants"]
        self.calls: list[tuple[str, str]] = []  # (mchid, "METHOD /v3/path") per authenticated call: tests count them
        self._bills: dict[str, tuple[str, bytes, str]] = {}  # token -> (mchid, payload, content type)

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, AuthedHandler]] = [
            ("POST", "/v3/pay/transactions/native", self._native),
            ("POST", "/v3/pay/transactions/codepay", self._codepay),
            ("GET", "/v3/pay/transactions/out-trade-no/*", self._query_by_out_trade_no),
            ("GET", "/v3/pay/transactions/id/*", self._query_by_transaction_id),
            ("POST", "/v3/pay/transactions/out-trade-no/*", self._close_or_reverse),
            ("POST", "/v3/refund/domestic/refunds", self._refund),
            ("GET", "/v3/refund/domestic/refunds/*", self._query_refund),
            ("GET", "/v3/certificates", self._certificates),
            ("GET", "/v3/bill/tradebill", self._trade_bill),
            ("GET", "/v3/billdownload/file", self._download_bill),
        ]
        for method, path, handler in routes:
            router.add(method, PREFIX + path, self._authenticated(handler))

    # -- plumbing: authentication, signed answers

    def _authenticated(self, handler: AuthedHandler) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            mchid = ""
            try:
                mchid = self._authenticate(request)
                self.calls.append((mchid, f"{request.method} {request.path[len(PREFIX):]}"))
                data = json.loads(request.body) if request.body else {}
                if not isinstance(data, dict):
                    raise ApiError(400, "PARAM_ERROR", "body must be a JSON object")
                return handler(request, mchid, data)
            except ApiError as error:
                return self._reply(mchid, error.status, {"code": error.code, "message": error.message})
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                return self._reply(mchid, 400, {"code": "PARAM_ERROR", "message": f"bad request: {error}"})
        return run

    @staticmethod
    def _canonical_path(request: Request) -> str:
        """The URL the merchant signed: the path without our /wxpay prefix, plus the query string.
        sandbox.http keeps only the parsed query, so it is re-encoded; fine for the SDK's simple queries."""
        path = request.path[len(PREFIX):]
        if request.query:
            path += "?" + urlencode([(k, v) for k, values in request.query.items() for v in values])
        return path

    def _authenticate(self, request: Request) -> str:
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        if scheme != SIGNATURE_TYPE:
            raise ApiError(401, "SIGN_ERROR", "Authorization must use WECHATPAY2-SHA256-RSA2048")
        fields = dict(_AUTH_FIELD.findall(params))
        merchant = self.merchants.get(fields.get("mchid", ""))
        if merchant is None:
            raise ApiError(400, "MCH_NOT_EXISTS", "商户号不存在")
        if fields.get("serial_no") != merchant["merchant_cert_serial"]:
            raise ApiError(401, "SIGN_ERROR", "商户证书序列号有误")
        try:
            timestamp = int(fields.get("timestamp", ""))
        except ValueError:
            raise ApiError(401, "SIGN_ERROR", "timestamp missing") from None
        if abs(self.ctx.clock() - timestamp) > CLOCK_SKEW_S:
            raise ApiError(401, "SIGN_ERROR", "timestamp too far from now")
        message = (f"{request.method}\n{self._canonical_path(request)}\n{timestamp}\n"
                   f"{fields.get('nonce_str', '')}\n{request.body.decode('utf-8')}\n")
        if not rsa_verify(merchant["merchant_public_key"], message, fields.get("signature", "")):
            raise ApiError(401, "SIGN_ERROR", "签名错误")
        return fields["mchid"]

    def _reply(self, mchid: str, status: int, data: dict | None = None, verify_mode: str | None = None) -> Response:
        """A signed answer; `data` None is an empty body (204)."""
        body = b"" if data is None else json.dumps(data, ensure_ascii=False).encode("utf-8")
        merchant = self.merchants.get(mchid)
        mode = verify_mode or (merchant["verify_mode"] if merchant else "certificate")
        private_pem, serial = signer_for(self.keys, mode)
        headers = {"Request-ID": "sandbox-" + secrets.token_hex(8)}
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        headers.update(signature_headers(private_pem, serial, body, int(self.ctx.clock()), random_nonce()))
        return Response(status, body, headers)

    # -- orders

    def _merchant(self, mchid: str) -> dict:
        return self.merchants[mchid]

    def _check_order(self, mchid: str, data: dict) -> int:
        """Common fields of native and code pay; answers the amount in fen."""
        if data.get("mchid") != mchid:
            raise ApiError(400, "PARAM_ERROR", "mchid 与请求方不符")
        if data.get("appid") != self._merchant(mchid)["appid"]:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if not data.get("out_trade_no") or not data.get("description"):
            raise ApiError(400, "PARAM_ERROR", "out_trade_no 和 description 必填")
        amount = data.get("amount") or {}
        total = amount.get("total")
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            raise ApiError(400, "PARAM_ERROR", "amount.total 须为正整数（分）")
        if amount.get("currency", "CNY") != "CNY":
            raise ApiError(400, "PARAM_ERROR", "currency 仅支持 CNY")
        return total

    def _new_code_url(self) -> str:
        while True:  # v2 draws its own random; both register in the same book, so avoid any collision
            url = "weixin://wxpay/bizpayurl?pr=" + random_nonce(11)
            if self.ctx.book.by_code_url(url) is None:
                return url

    def _native(self, request: Request, mchid: str, data: dict) -> Response:
        total = self._check_order(mchid, data)
        if not data.get("notify_url"):
            raise ApiError(400, "PARAM_ERROR", "notify_url 必填")
        expires_at = datetime.fromisoformat(data["time_expire"]).timestamp() if data.get("time_expire") else None
        with self.ctx.book.lock:
            existing = self.ctx.book.get(NAME, mchid, data["out_trade_no"])
            if existing is not None:
                return self._native_again(existing, total, data)
            trade = SimTrade(
                platform=NAME, merchant_key=mchid, out_trade_no=data["out_trade_no"], amount_fen=total,
                description=data["description"], notify_url=data["notify_url"], trade_type="NATIVE",
                created_at=self.ctx.clock(), expires_at=expires_at, code_url=self._new_code_url(),
                extra={"appid": data["appid"], "time_expire": data.get("time_expire", "")},
            )
            self.ctx.book.add(trade)
        return self._reply(mchid, 200, {"code_url": trade.code_url})

    def _native_again(self, trade: SimTrade, total: int, data: dict) -> Response:
        """The same order placed twice: WeChat answers the same code_url while it can still be paid."""
        if trade.trade_type == "NATIVE" and trade.status == "NOTPAY" and trade.amount_fen == total \
                and trade.description == data["description"]:
            return self._reply(trade.merchant_key, 200, {"code_url": trade.code_url})
        if trade.status in ("SUCCESS", "REFUND"):
            raise ApiError(400, "ORDER_PAID", "该订单已支付")
        raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复")

    def _codepay(self, request: Request, mchid: str, data: dict) -> Response:
        total = self._check_order(mchid, data)
        auth_code = str((data.get("payer") or {}).get("auth_code", ""))
        if payment_code_wallet(auth_code) != "wechat":
            raise ApiError(400, "AUTH_CODE_INVALID", "付款码无效，请重新扫码")
        with self.ctx.book.lock:
            existing = self.ctx.book.get(NAME, mchid, data["out_trade_no"])
            if existing is not None:
                if existing.trade_type != "MICROPAY" or existing.amount_fen != total:
                    raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
                return self._codepay_answer(existing)  # a retry: the same trade's current outcome
            trade = SimTrade(
                platform=NAME, merchant_key=mchid, out_trade_no=data["out_trade_no"], amount_fen=total,
                description=data["description"], notify_url="", trade_type="MICROPAY", created_at=self.ctx.clock(),
                extra={"appid": data["appid"], "behaviour": payment_code_behaviour(auth_code)},
            )
            self.ctx.book.add(trade)
            self._start_code_payment(trade)
            return self._codepay_answer(trade)

    def _start_code_payment(self, trade: SimTrade) -> None:
        behaviour = trade.extra["behaviour"]
        if behaviour == "instant":
            settle_payment(self.ctx, trade, payer="sandbox-wechat-user", notify=False)
        elif behaviour == "no_money":
            trade.status = "PAYERROR"
        else:  # password or abandon: the consumer is asked for the password
            trade.status = "USERPAYING"
            trade.userpaying_polls_left = 2

    def _codepay_answer(self, trade: SimTrade) -> Response:
        if trade.status in ("SUCCESS", "REFUND"):
            return self._reply(trade.merchant_key, 200, self._transaction(trade))
        if trade.status == "USERPAYING":
            return self._reply(trade.merchant_key, 202, {"trade_state": "USERPAYING"})
        if trade.status == "PAYERROR":
            raise ApiError(403, "NOTENOUGH", "用户余额不足，请用户更换支付卡或充值")
        raise ApiError(400, "ORDER_CLOSED", "订单已关闭或撤销")

    def _advance(self, trade: SimTrade) -> None:
        """A query moves a password-typing consumer along (caller holds the book lock)."""
        if trade.status != "USERPAYING" or trade.extra.get("behaviour") == "abandon":
            return
        if trade.userpaying_polls_left > 0:
            trade.userpaying_polls_left -= 1
        else:
            settle_payment(self.ctx, trade, payer="sandbox-wechat-user", notify=False)

    def _transaction(self, trade: SimTrade) -> dict:
        data: dict = {
            "appid": trade.extra.get("appid", ""), "mchid": trade.merchant_key, "out_trade_no": trade.out_trade_no,
            "trade_type": trade.trade_type, "trade_state": trade.status,
            "trade_state_desc": TRADE_STATE_DESC.get(trade.status, trade.status), "attach": "",
            "amount": {"total": trade.amount_fen, "currency": "CNY"},
        }
        if trade.trade_no:
            data["transaction_id"] = trade.trade_no
        if trade.paid_at is not None:
            data.update(bank_type="OTHERS", success_time=rfc3339(trade.paid_at), payer={"openid": trade.payer})
            data["amount"].update(payer_total=trade.amount_fen, payer_currency="CNY")
        return data

    def _find(self, mchid: str, out_trade_no: str) -> SimTrade:
        self.ctx.book.expire_due(self.ctx.clock())
        trade = self.ctx.book.get(NAME, mchid, out_trade_no)
        if trade is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        return trade

    def _query_by_out_trade_no(self, request: Request, mchid: str, data: dict) -> Response:
        out_trade_no = request.path.rsplit("/", 1)[-1]
        return self._query(mchid, self._find(mchid, out_trade_no), request)

    def _query_by_transaction_id(self, request: Request, mchid: str, data: dict) -> Response:
        transaction_id = request.path.rsplit("/", 1)[-1]
        self.ctx.book.expire_due(self.ctx.clock())
        found = [t for t in self.ctx.book.all()
                 if t.platform == NAME and t.merchant_key == mchid and t.trade_no == transaction_id]
        if not found:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        return self._query(mchid, found[0], request)

    def _query(self, mchid: str, trade: SimTrade, request: Request) -> Response:
        if request.query.get("mchid", [""])[-1] != mchid:
            raise ApiError(400, "PARAM_ERROR", "mchid 与请求方不符")
        with self.ctx.book.lock:
            self._advance(trade)
            return self._reply(mchid, 200, self._transaction(trade))

    def _close_or_reverse(self, request: Request, mchid: str, data: dict) -> Response:
        rest = request.path[len(PREFIX + "/v3/pay/transactions/out-trade-no/"):]
        out_trade_no, _, action = rest.partition("/")
        if action not in ("close", "reverse"):
            raise ApiError(404, "NOT_FOUND", request.path)
        if data.get("mchid") != mchid:
            raise ApiError(400, "PARAM_ERROR", "mchid 与请求方不符")
        trade = self._find(mchid, out_trade_no)
        with self.ctx.book.lock:
            return self._close(trade) if action == "close" else self._reverse(trade)

    def _close(self, trade: SimTrade) -> Response:
        if trade.status in ("SUCCESS", "REFUND"):
            raise ApiError(400, "ORDER_PAID", "订单已支付，不能关闭")
        if trade.status == "USERPAYING":
            raise ApiError(400, "USERPAYING", "用户支付中，请撤销订单")
        if trade.status == "NOTPAY":
            trade.status = "CLOSED"
        return self._reply(trade.merchant_key, 204)  # closing a closed trade again is fine

    def _reverse(self, trade: SimTrade) -> Response:
        if trade.trade_type != "MICROPAY":
            raise ApiError(400, "INVALID_REQUEST", "仅付款码支付订单可撤销")
        if trade.status == "REFUND":
            raise ApiError(403, "TRADE_ERROR", "订单已发生退款，不能撤销")
        if trade.status == "SUCCESS":
            if trade.paid_at is not None and self.ctx.clock() - trade.paid_at > REVERSE_WINDOW_S:
                raise ApiError(400, "REVERSE_EXPIRE", "订单已超过撤销期限")
            refund_id = self.ctx.new_trade_no("50")
            trade.refunds.append(SimRefund("", refund_id, trade.amount_fen, self.ctx.clock()))
        if trade.status != "CLOSED":  # USERPAYING, PAYERROR, SUCCESS (now refunded) or already REVOKED
            trade.status = "REVOKED"
        appid = trade.extra.get("appid", "")
        return self._reply(trade.merchant_key, 200,
                           {"appid": appid, "mchid": trade.merchant_key, "out_trade_no": trade.out_trade_no})

    # -- refunds

    def _refund(self, request: Request, mchid: str, data: dict) -> Response:
        out_refund_no = data.get("out_refund_no")
        amount = data.get("amount") or {}
        refund, total = amount.get("refund"), amount.get("total")
        amounts_ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (refund, total))
        if not out_refund_no or not amounts_ok:
            raise ApiError(400, "PARAM_ERROR", "out_refund_no 必填，amount.refund/total 须为正整数（分）")
        trade = self._refund_target(mchid, data)
        with self.ctx.book.lock:
            previous = next((r for r in trade.refunds if r.out_refund_no == out_refund_no), None)
            if previous is not None:  # the same refund asked again: one refund only
                if previous.amount_fen != refund:
                    raise ApiError(400, "INVALID_REQUEST", "同一退款单号金额不一致")
                return self._reply(mchid, 200, self._refund_json(trade, previous, "PROCESSING"))
            self._check_refundable(trade, refund, total)
            record = SimRefund(out_refund_no, self.ctx.new_trade_no("50"), refund, self.ctx.clock(),
                               status=self.ctx.book.next_refund_status())
            trade.refunds.append(record)
            trade.status = "REFUND"
            return self._reply(mchid, 200, self._refund_json(trade, record, "PROCESSING"))

    def _refund_target(self, mchid: str, data: dict) -> SimTrade:
        if data.get("out_trade_no"):
            trade = self.ctx.book.get(NAME, mchid, data["out_trade_no"])
        else:
            trade = next((t for t in self.ctx.book.all() if t.platform == NAME and t.merchant_key == mchid
                          and t.trade_no and t.trade_no == data.get("transaction_id")), None)
        if trade is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        return trade

    @staticmethod
    def _check_refundable(trade: SimTrade, refund: int, total: int) -> None:
        if trade.status not in ("SUCCESS", "REFUND"):
            raise ApiError(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total != trade.amount_fen:
            raise ApiError(400, "PARAM_ERROR", "订单金额与实际不符")
        if refund > trade.amount_fen - trade.refunded_fen:
            raise ApiError(400, "INVALID_REQUEST", "退款金额超过订单可退金额")

    def _refund_json(self, trade: SimTrade, refund: SimRefund, status: str) -> dict:
        data = {
            "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
            "transaction_id": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "channel": "ORIGINAL", "user_received_account": "支付用户零钱", "create_time": rfc3339(refund.created_at),
            "status": status, "funds_account": "AVAILABLE",
            "amount": {"total": trade.amount_fen, "refund": refund.amount_fen, "payer_total": trade.amount_fen,
                       "payer_refund": refund.amount_fen, "settlement_total": trade.amount_fen,
                       "settlement_refund": refund.amount_fen, "discount_refund": 0, "currency": "CNY"},
        }
        if status == "SUCCESS":
            data["success_time"] = rfc3339(refund.created_at)
        return data

    def _query_refund(self, request: Request, mchid: str, data: dict) -> Response:
        out_refund_no = request.path.rsplit("/", 1)[-1]
        for trade in self.ctx.book.all():
            if trade.platform != NAME or trade.merchant_key != mchid:
                continue
            for refund in trade.refunds:
                if refund.out_refund_no == out_refund_no:
                    status = {"SUCCESS": "SUCCESS", "PROCESSING": "PROCESSING", "FAILED": "ABNORMAL"}[refund.status]
                    return self._reply(mchid, 200, self._refund_json(trade, refund, status))
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")

    # -- certificates and bills

    def _certificates(self, request: Request, mchid: str, data: dict) -> Response:
        merchant = self._merchant(mchid)
        if merchant["verify_mode"] != "certificate":
            raise ApiError(404, "NOT_FOUND", "该商户使用微信支付公钥验签，无平台证书")
        certificate = x509.load_pem_x509_certificate(self.keys["certificate"].encode())
        entry = {
            "serial_no": self.keys["certificate_serial"],
            "effective_time": rfc3339(certificate.not_valid_before_utc.timestamp()),
            "expire_time": rfc3339(certificate.not_valid_after_utc.timestamp()),
            "encrypt_certificate": aead_encrypt(merchant["apiv3_key"], self.keys["certificate"], "certificate"),
        }
        return self._reply(mchid, 200, {"data": [entry]}, verify_mode="certificate")

    def _trade_bill(self, request: Request, mchid: str, data: dict) -> Response:
        day = date.fromisoformat(request.query["bill_date"][-1])
        bill_type = request.query.get("bill_type", ["ALL"])[-1]
        tar_type = request.query.get("tar_type", [""])[-1]
        if bill_type not in ("ALL", "SUCCESS", "REFUND") or tar_type not in ("", "GZIP"):
            raise ApiError(400, "PARAM_ERROR", "bill_type 或 tar_type 有误")
        if day > datetime.fromtimestamp(self.ctx.clock(), BEIJING).date():
            raise ApiError(400, "INVALID_REQUEST", "账单日期不能晚于今天")
        trades = [t for t in self.ctx.book.all() if t.platform == NAME and t.merchant_key == mchid]
        rows = bill_rows(trades, day, bill_type, self._merchant(mchid).get("fee_rate_ppm", DEFAULT_FEE_RATE_PPM))
        if not rows:
            raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        text = render_bill(rows).encode("utf-8")
        payload, content_type = (gzip.compress(text, mtime=0), "application/octet-stream") if tar_type \
            else (text, "text/plain; charset=utf-8")
        token = secrets.token_hex(16)
        self._bills[token] = (mchid, payload, content_type)
        return self._reply(mchid, 200, {
            "hash_type": "SHA1", "hash_value": hashlib.sha1(text).hexdigest(),
            "download_url": f"{self.ctx.base_url}{PREFIX}/v3/billdownload/file?token={token}",
        })

    def _download_bill(self, request: Request, mchid: str, data: dict) -> Response:
        bill = self._bills.get(request.query.get("token", [""])[-1])
        if bill is None or bill[0] != mchid:
            raise ApiError(400, "INVALID_REQUEST", "下载链接无效或已过期")
        return Response(200, bill[1], {"Content-Type": bill[2]})  # the file itself is not signed

    # -- notifications

    def notification(self, trade: SimTrade) -> Delivery | None:
        if not trade.notify_url:
            return None
        merchant = self._merchant(trade.merchant_key)
        now = self.ctx.clock()
        body = notification_body(merchant["apiv3_key"], self._transaction(trade),
                                 event_id="EV-" + secrets.token_hex(12), create_time=rfc3339(now))
        private_pem, serial = signer_for(self.keys, merchant["verify_mode"])
        headers = {"Content-Type": "application/json",
                   **signature_headers(private_pem, serial, body, int(now), random_nonce())}
        return Delivery(
            url=trade.notify_url, body=body, headers=headers, is_ack=lambda status, _body: status in (200, 204),
            schedule=WECHAT_SCHEDULE, label=f"{NAME} {trade.out_trade_no}",
        )


def build(ctx: SandboxContext) -> WeChatPayV3:
    return WeChatPayV3(ctx)
