"""`make run`: start the local stack and say where everything is."""
from __future__ import annotations

import logging
import signal
import threading

from devstack import demo
from devstack.stack import LocalStack, Ports


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore.credentials"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = LocalStack(Ports.from_env()).start()
    assert stack.sandbox is not None
    print(f"""
ScanPay Cloud local stack is up (Ctrl-C stops it)
  API (edge, notify, counter)   {stack.api_url}
  DynamoDB + KMS (moto)         {stack.dynamodb_endpoint}
  sandbox payment platform      {stack.sandbox.ctx.base_url}   (POST /sandbox/scan, GET /sandbox/trades)
  edge agent (terminal TCP)     127.0.0.1:{stack.ports.edge}   (python -m edge_agent.simulator --help)
  demo dealer {demo.DEALER_ID} (console login {demo.DEALER_LOGIN} / {demo.DEALER_PASSWORD})
  demo merchant {demo.MERCHANT_ID} (scheme 2, fee 0.6 %, dealer share 0.1 %)
  edge agent {demo.AGENT_ID} secret {demo.AGENT_SECRET}; terminals {', '.join(demo.TERMINALS)} (keys demo-key-<id>)
  cards {demo.CARDS[0]}..{demo.CARDS[-1]} with {demo.CARD_BALANCE_FEN // 100}.00 yuan each, {demo.LOST_CARD} reported lost
  counter routes (/cards/v1, /refunds/v1): headers X-ScanPay-Merchant: {demo.MERCHANT_ID},
                  Authorization: Bearer {demo.OPERATOR_TOKEN}
  pay a QR order:  python -m devstack.pay_demo --wallet wechat   (or alipay)
""", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    stack.stop()


if __name__ == "__main__":
    main()
