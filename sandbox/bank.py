"""The bank of scheme 2, as far as settlement and reconciliation meet it: payouts and the daily file.

    GET  /bank/settlement?date=YYYYMMDD    the file of one Asia/Shanghai day (docs/bank-settlement-file.md)
                                           404 before that day has ended (by ctx.clock)
    POST /bank/payouts                     {"payout_id", "merchant_id", "business_date", "amount_fen"}: pay a
                                           merchant's net (negative: collect it). Idempotent by payout_id:
                                           the same instruction again answers the first acceptance with
                                           "duplicate": true and moves no money; the same id with other
                                           fields is 409 PAYOUT_ID_REUSED. 400 for a malformed instruction.
    GET  /bank/payouts                     every accepted instruction, for people and tests

The bank is a WeChat Pay service provider and an Alipay ISV app. Its file has one line per
(wallet, sub-merchant) with a payment or refund that day: the WeChat trades of its service-provider
mch_id grouped by sub_mch_id, and the Alipay trades made with its app under an app_auth_token grouped
by the seller. It charges each payment fee_rate_ppm (0.6 % by default; per sub-merchant in
`fee_rate_overrides`), rounded half up to the fen per payment and given back the same way per refund.

Written here from the documented format, not with chalicelib's parser, so the parser is checked
against an independent writer. Tests change a line through `BankPlatform.tamper` to inject differences.

accounts["bank"]:
    {"provider_id": "bank", "wechat_mch_id": "<the bank's service-provider mch_id>",
     "alipay_app_id": "<the bank's ISV app id>", "fee_rate_ppm": 6000, "fee_rate_overrides": {"<sub id>": 5000}}
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

from sandbox.http import Request, Response, Router
from sandbox.notifier import Delivery
from sandbox.platform import SandboxContext
from sandbox.trades import SimTrade

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
FIELDS = ("payments", "gross_fen", "refunds", "refunds_fen", "fee_fen", "net_fen")


def _fee(amount_fen: int, ppm: int) -> int:
    magnitude = (abs(amount_fen) * ppm * 2 + 1_000_000) // 2_000_000
    return -magnitude if amount_fen < 0 else magnitude


def _day(ts: float | None) -> date | None:
    return datetime.fromtimestamp(ts, BEIJING).date() if ts is not None else None


class BankPlatform:
    name = "bank"
    wallet = ""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.tamper: dict[tuple[str, str], dict[str, int]] = {}  # (wallet, sub id) -> fields to replace
        self.payouts: dict[str, dict] = {}  # payout_id -> the accepted instruction (money moved once)

    @property
    def section(self) -> dict:
        return self.ctx.accounts.get("bank", {})

    def register(self, router: Router) -> None:
        router.add("GET", "/bank/settlement", self._settlement)
        router.add("POST", "/bank/payouts", self._payout)
        router.add("GET", "/bank/payouts", lambda request: Response.json(list(self.payouts.values())))

    def notification(self, trade: SimTrade) -> Delivery | None:
        return None  # the bank's trades are notified by the wallets' platforms

    def _owner(self, trade: SimTrade) -> tuple[str, str] | None:
        """(wallet, sub-merchant) of a trade the bank acquired, else None."""
        section = self.section
        if trade.platform in ("wechat_v2", "wechat_v3") and trade.extra.get("mch_id") == section.get("wechat_mch_id"):
            sub = trade.extra.get("sub_mch_id")
            return ("wechat", sub) if sub else None
        auth_app = trade.extra.get("auth_app_id")
        if trade.platform == "alipay" and trade.extra.get("app_id") == section.get("alipay_app_id") \
                and auth_app and auth_app != trade.extra.get("app_id"):
            return ("alipay", trade.extra["seller_id"])
        return None

    def lines(self, day: date) -> list[list]:
        totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(FIELDS))
        overrides = self.section.get("fee_rate_overrides", {})
        for trade in self.ctx.book.all():
            owner = self._owner(trade)
            if owner is None:
                continue
            ppm = int(overrides.get(owner[1], self.section.get("fee_rate_ppm", 6000)))
            line = totals[owner]
            if trade.paid_at is not None and _day(trade.paid_at) == day:
                line[0] += 1
                line[1] += trade.amount_fen
                line[4] += _fee(trade.amount_fen, ppm)
            for refund in trade.refunds_done:
                if _day(refund.created_at) == day:
                    line[2] += 1
                    line[3] += refund.amount_fen
                    line[4] += _fee(-refund.amount_fen, ppm)
        rows = []
        for (wallet, sub), line in sorted(totals.items()):
            line[5] = line[1] - line[3] - line[4]
            values = dict(zip(FIELDS, line)) | self.tamper.get((wallet, sub), {})
            rows.append([wallet, sub, *(values[name] for name in FIELDS)])
        return rows

    def _settlement(self, request: Request) -> Response:
        text = (request.query.get("date") or [""])[-1]
        try:
            day = datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            return Response.text("date is YYYYMMDD", 400)
        now = self.ctx.clock()
        if day >= datetime.fromtimestamp(now, BEIJING).date():
            return Response.text("not published yet", 404)
        rows = self.lines(day)
        stamp = datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d%H%M%S")
        out = [f"BANKSETTLE|1|{self.section.get('provider_id', 'bank')}|{day:%Y%m%d}|{stamp}"]
        out += ["|".join(["M", *map(str, row)]) for row in rows]
        body = "".join(line + "\r\n" for line in out)
        trailer = f"END|{len(rows)}|{sum(row[-1] for row in rows)}|{hashlib.sha256(body.encode()).hexdigest()}\r\n"
        return Response(200, (body + trailer).encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})


    def _payout(self, request: Request) -> Response:
        try:
            data = request.json()
        except ValueError:
            return Response.json({"code": "BAD_REQUEST", "message": "body is not JSON"}, 400)
        fields = ("payout_id", "merchant_id", "business_date", "amount_fen")
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in fields[:3]) \
                or isinstance(data.get("amount_fen"), bool) or not isinstance(data.get("amount_fen"), int) \
                or data["amount_fen"] == 0:
            return Response.json({"code": "BAD_REQUEST", "message": f"{', '.join(fields)} required"}, 400)
        instruction = {k: data[k] for k in fields}
        with self.ctx.book.lock:
            earlier = self.payouts.get(instruction["payout_id"])
            if earlier is not None:
                if {k: earlier[k] for k in fields} != instruction:
                    return Response.json({"code": "PAYOUT_ID_REUSED", "message": "payout_id used for another payout"}, 409)
                return Response.json({**earlier, "duplicate": True})
            accepted = {**instruction, "status": "ACCEPTED", "bank_ref": f"BK{len(self.payouts) + 1:010d}",
                        "accepted_at": self.ctx.clock()}
            self.payouts[instruction["payout_id"]] = accepted
        return Response.json({**accepted, "duplicate": False})


def build(ctx: SandboxContext) -> BankPlatform:
    return BankPlatform(ctx)
