"""Online recharge paid with Alipay: the holder proves the card (card number plus their own number),
gets an alipay.trade.precreate QR whose out_trade_no is the recharge id, and scans it with Alipay.

The credit is booked by OnlineRechargeService.apply when Alipay's notification arrives at
/cards/notify/{merchant_id}/alipay: the same single transaction as a WeChat recharge, so it lands
exactly once. The 充值成功通知 goes out only when the holder has bound a WeChat openid.
"""
from __future__ import annotations

from chalicelib.channels.base import NativeOrderRequest
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ChannelUnavailable, NotConfigured
from chalicelib.services.card_admin import check_amount
from chalicelib.services.card_recharge import OnlineRechargeService
from chalicelib.services.ports import Channels

QR_LIFETIME_S = 2 * 3600  # Alipay closes the unpaid trade after this; the order simply stays CREATED


def alipay_notify_url(base_url: str, merchant_id: str) -> str:
    return f"{base_url}/cards/notify/{merchant_id}/alipay"


class AlipayRecharge:
    def __init__(self, online: OnlineRechargeService, channels: Channels, clock: Clock, public_base_url: str) -> None:
        self._online = online
        self._channels = channels
        self._clock = clock
        self._base_url = public_base_url

    def start(self, merchant_id: str, card_no: str, number: str, amount_fen: object) -> dict:
        amount = check_amount(amount_fen)
        holder = self._online.holder_of_card(merchant_id, card_no, number)
        found = self._channels.for_merchant(merchant_id, "alipay")
        if found is None:
            raise NotConfigured("online recharge with Alipay needs the merchant's Alipay account")
        channel, _ = found
        recharge = self._online.open_recharge(merchant_id, holder, amount, "alipay", holder.wechat_openid or None)
        result = channel.create_native_qr(NativeOrderRequest(
            recharge.recharge_id, amount, "饭卡充值", alipay_notify_url(self._base_url, merchant_id),
            self._clock.now() + QR_LIFETIME_S))
        if not result.ok or not result.qr:
            # No QR: nothing can be paid, the CREATED order books nothing; the holder starts again.
            raise ChannelUnavailable("Alipay did not give a payment QR; try again")
        return {"recharge_id": recharge.recharge_id, "amount_fen": amount, "qr": result.qr}
