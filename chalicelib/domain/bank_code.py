"""The binding code the bank issues when it takes a merchant on as its sub-merchant (scheme 2).

The console operator types it in, so it carries a check value that catches typos:

    BK1-<WeChat sub_mch_id>-<Alipay seller PID>-<Alipay app_auth_token>-<CRC32 of the rest, 8 hex>

Either wallet may be missing (an empty field) when the bank bound only the other one. The
fields become the merchant's `bank_binding`: WeChat `sub_mch_id` and Alipay `app_auth_token`
(sealed) with the seller id the notifications must name.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from chalicelib.domain.errors import InvalidRequest

_PATTERN = re.compile(r"^BK1-(\d{8,12})?-(2088\d{12})?-([A-Za-z0-9]{16,64})?-([0-9A-F]{8})$")


@dataclass(frozen=True)
class BankBinding:
    wechat_sub_mch_id: str | None
    alipay_seller_id: str | None
    alipay_app_auth_token: str | None

    def as_binding(self) -> dict:
        binding: dict = {}
        if self.wechat_sub_mch_id:
            binding["wechat_sub_mch_id"] = self.wechat_sub_mch_id
        if self.alipay_seller_id and self.alipay_app_auth_token:
            binding["alipay_seller_id"] = self.alipay_seller_id
            binding["alipay_app_auth_token"] = self.alipay_app_auth_token
        return binding


def _check(body: str) -> str:
    return f"{zlib.crc32(body.encode('ascii')):08X}"


def make_bank_code(sub_mch_id: str = "", seller_id: str = "", app_auth_token: str = "") -> str:
    body = f"BK1-{sub_mch_id}-{seller_id}-{app_auth_token}"
    return f"{body}-{_check(body)}"


def parse_bank_code(code: str) -> BankBinding:
    code = code.strip()
    match = _PATTERN.match(code)
    if match is None:
        raise InvalidRequest("not a bank binding code (BK1-...)")
    sub_mch_id, seller_id, token, check = match.groups()
    if _check(code.rsplit("-", 1)[0]) != check:
        raise InvalidRequest("bank binding code has a typo (check value does not match)")
    if bool(seller_id) != bool(token):
        raise InvalidRequest("Alipay binding needs both the seller id and the app_auth_token")
    if not sub_mch_id and not seller_id:
        raise InvalidRequest("bank binding code binds no wallet")
    return BankBinding(sub_mch_id or None, seller_id or None, token or None)
