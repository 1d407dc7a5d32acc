"""Pay one QR order on the running local stack, as a terminal and a consumer would.

    python -m devstack.pay_demo --wallet wechat --amount 1250

1. creates a QR order for terminal T0001 through the signed edge API (as the demo edge agent),
2. draws the QR in the terminal,
3. plays the consumer: POST /sandbox/scan with the QR text and the wallet,
4. waits until the order is PAID (the sandbox's signed notification reaches the webhook).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import httpx

from chalicelib.domain import edge_auth
from devstack import demo


def signed_post(client: httpx.Client, path: str, payload: dict) -> dict:
    body = json.dumps(payload).encode()
    now, nonce = int(time.time()), os.urandom(12).hex()
    headers = {
        "Content-Type": "application/json", "X-ScanPay-Agent": demo.AGENT_ID, "X-ScanPay-Timestamp": str(now),
        "X-ScanPay-Nonce": nonce, "X-ScanPay-Signature": edge_auth.sign(demo.AGENT_SECRET, "POST", path, now, nonce, body),
    }
    answer = client.post(path, content=body, headers=headers)
    return answer.json()


def draw_qr(text: str) -> str:
    import qrcode

    code = qrcode.QRCode(border=1)
    code.add_data(text)
    lines = []
    matrix = code.get_matrix()
    for top, bottom in zip(matrix[0::2], matrix[1::2] + [[False] * len(matrix[0])]):
        lines.append("".join("█" if t and b else "▀" if t else "▄" if b else " " for t, b in zip(top, bottom)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wallet", choices=["wechat", "alipay"], default="wechat")
    parser.add_argument("--amount", type=int, default=1250, help="fen")
    parser.add_argument("--api", default=f"http://127.0.0.1:{os.environ.get('SCANPAY_API_PORT', 8000)}")
    parser.add_argument("--sandbox", default=f"http://127.0.0.1:{os.environ.get('SCANPAY_SANDBOX_PORT', 8002)}")
    args = parser.parse_args()
    txn = int(time.time() * 1000) % 2_000_000_000
    with httpx.Client(base_url=args.api, timeout=10) as api:
        order = signed_post(api, "/edge/v1/orders/qr", {"terminal_id": "T0001", "txn": txn, "amount_fen": args.amount})
        if not order.get("ok"):
            raise SystemExit(f"could not create the order: {order}")
        print(f"order {order['order_id']}  {args.amount / 100:.2f} yuan  QR: {order['qr']}\n{draw_qr(order['qr'])}")
        paid = httpx.post(f"{args.sandbox}/sandbox/scan", json={"qr": order["qr"], "wallet": args.wallet}, timeout=15).json()
        print(f"consumer paid with {args.wallet}: {paid}")
        for _ in range(50):
            status = signed_post(api, "/edge/v1/orders/query", {"terminal_id": "T0001", "txn": txn})
            if status.get("status") == "PAID":
                print(f"order {order['order_id']} is PAID: 支付成功")
                return
            time.sleep(0.2)
    raise SystemExit(f"order not paid yet: {status}")


if __name__ == "__main__":
    main()
