"""Which wallet a consumer's payment code (付款码) belongs to, by the platforms' published ranges."""
from __future__ import annotations

from chalicelib.domain.orders import Wallet


def wallet_of_payment_code(auth_code: str) -> Wallet | None:
    """WeChat: 18 digits starting 10..15. Alipay: 16..24 digits starting 25..30 (18 in practice)."""
    if not auth_code.isdigit() or not auth_code.isascii():
        return None
    prefix = int(auth_code[:2]) if len(auth_code) >= 2 else -1
    if len(auth_code) == 18 and 10 <= prefix <= 15:
        return Wallet.WECHAT
    if 16 <= len(auth_code) <= 24 and 25 <= prefix <= 30:
        return Wallet.ALIPAY
    return None


def wallet_of_user_agent(user_agent: str) -> Wallet | None:
    """The wallet an aggregated QR was opened in, from the in-app browser's User-Agent."""
    if "MicroMessenger" in user_agent:
        return Wallet.WECHAT
    if "AlipayClient" in user_agent:
        return Wallet.ALIPAY
    return None
