"""The aggregated QR: one URL per order. Opened in WeChat or Alipay (recognised by User-Agent), it
continues in that wallet with the channel's own payment; in any other browser it says what to do."""
from __future__ import annotations

import html

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.domain.errors import DomainError
from chalicelib.domain.payment_codes import wallet_of_user_agent

pay_page = Blueprint(__name__)


def _page(title: str, text: str, status: int = 200) -> Response:
    body = (
        "<!doctype html><html lang=zh><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><body style='font-family:sans-serif;text-align:center;padding:3em'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return Response(body=body, status_code=status, headers={"Content-Type": "text/html; charset=utf-8"})


@pay_page.route("/pay/{order_id}", methods=["GET"])
def open_order(order_id: str) -> Response:
    request = pay_page.current_request
    wallet = wallet_of_user_agent(request.headers.get("user-agent", ""))
    if wallet is None:
        return _page("请使用微信或支付宝扫码", "Please scan this code with WeChat or Alipay.")
    try:
        code_url = container.current().order_service.open_in_wallet(order_id, wallet)
    except DomainError as error:
        return _page("无法支付", error.message, error.http_status)
    return Response(body="", status_code=302, headers={"Location": code_url})
