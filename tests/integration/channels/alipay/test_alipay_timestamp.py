"""Every request carries Beijing time, whatever the process's time zone (Lambda runs in UTC).

python-alipay-sdk stamps `timestamp` with datetime.now(), the local time. The channel restamps it;
these tests run a child process with TZ=UTC and compare what the sandbox received with Beijing now.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from chalicelib.channels.alipay import AlipayChannel
from chalicelib.channels.base import ChannelState

BEIJING = timezone(timedelta(hours=8))
REPO = Path(__file__).resolve().parents[4]

CHILD = """
import json, sys
from alipay import AliPay
from chalicelib.channels.alipay import build

settings, gateway = json.loads(sys.stdin.read())
channel = build(settings, gateway=gateway, timeout_s=5)
ours = channel.query("TZ-CHECK-OURS")
stock = AliPay(appid=settings["app_id"], app_private_key_string=settings["app_private_key"],
               alipay_public_key_string=settings["alipay_public_key"], sign_type="RSA2")
stock._gateway = gateway + "/alipay/gateway.do"
print(json.dumps({"ours": [ours.state.value, ours.code],
                  "stock": stock.api_alipay_trade_query(out_trade_no="TZ-CHECK-STOCK").get("sub_code")}))
"""


def _beijing(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()


def test_timestamp_is_beijing_time_in_a_utc_process(sandbox, direct_settings, gateway):
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps([direct_settings, gateway]),
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert child.returncode == 0, child.stderr
    answer = json.loads(child.stdout.strip().splitlines()[-1])
    assert answer["ours"] == ["SUCCESS", "ACQ.TRADE_NOT_EXIST"]
    assert answer["stock"] == "isv.invalid-timestamp"  # the SDK alone stamps UTC: 8 hours off

    received = sandbox.ctx.platforms["alipay"].received
    ours = [r for r in received if r["method"] == "alipay.trade.query" and r["app_id"] == direct_settings["app_id"]]
    assert any(abs(_beijing(r["timestamp"]) - time.time()) < 60 for r in ours)
    assert any(abs(_beijing(r["timestamp"]) + 8 * 3600 - time.time()) < 60 for r in ours)  # the stock one


def test_timestamp_comes_from_the_injected_clock(sandbox, direct_settings, gateway):
    """1_700_000_000 is 2023-11-15 06:13:20 in Beijing; the sandbox refuses a stamp that old."""
    stale = AlipayChannel(direct_settings, gateway=gateway, timeout_s=2, clock=lambda: 1_700_000_000)
    result = stale.query("STALE-CLOCK")
    assert (result.state, result.code) == (ChannelState.FAIL, "isv.invalid-timestamp")
    assert sandbox.ctx.platforms["alipay"].received[-1]["timestamp"] == "2023-11-15 06:13:20"
