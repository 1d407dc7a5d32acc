"""The payout job against the sandbox's bank: each payout instruction is paid once, whatever happens to a run
(no answer, a crash between the bank's acceptance and our mark, re-runs)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from chalicelib.channels.bank_payouts import PayoutInstruction, send_payout
from chalicelib.channels.base import ChannelState
from chalicelib.domain.clock import BEIJING, business_date
from chalicelib.jobs.settlement import main, payout_service, settlement_service
from chalicelib.store.settlement_models import SettlementModel
from tests.integration.settlement.recon_support import DAY, Stack

WECHAT_CODE, ALIPAY_CODE = "134567890123451234", "281234567890121234"
_txn = itertools.count(500_000)


class Crash(Exception):
    pass


def scan_pay(stack: Stack, world, amount: int, code: str) -> str:  # type: ignore[no-untyped-def]
    terminal = stack.container.directory.terminal(world.terminal_id)
    answer = stack.container.order_service.scan_pay(terminal, next(_txn), amount, code)
    assert answer["status"] == "PAID", answer
    return answer["order_id"]


def move_to(stack: Stack, when: datetime) -> None:
    stack.clock.advance(when.timestamp() - stack.clock.now())


def record(merchant_id: str) -> dict:
    return [item.attribute_values for item in SettlementModel.query(merchant_id)][0]


def test_each_payout_is_sent_once_through_no_answer_a_crash_and_re_runs(stack, capsys):
    day = DAY + timedelta(days=5)  # a day of its own: the module's other tests settle DAY
    move_to(stack, datetime.combine(day, datetime.min.time().replace(hour=11), BEIJING))
    assert business_date(stack.clock.now()) == day
    bank_world, container = stack.bank, stack.container
    scan_pay(stack, bank_world, 1584, WECHAT_CODE)  # fee 9.504 -> 10
    scan_pay(stack, bank_world, 84, ALIPAY_CODE)    # fee 0.504 -> 1
    move_to(stack, datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=1), BEIJING))
    assert settlement_service(container, log_line=lambda line: None).run(day, [bank_world.merchant_id]).written
    payout_id = record(bank_world.merchant_id)["payout_id"]
    bank = stack.sandbox.ctx.platforms["bank"]

    stack.sandbox.faults.add("/bank/payouts", "error", 1)  # the bank's gateway answers 502
    lost = payout_service(container, log_line=lambda line: None).run(day)
    assert (lost.pending, lost.sent, bank.payouts) == ([payout_id], [], {})
    assert record(bank_world.merchant_id).get("payout_sent_at") is None

    def crash_after_sending(step: str) -> None:
        raise Crash(step)

    with pytest.raises(Crash):  # the bank accepted it, the run died before marking the record
        payout_service(container, log_line=lambda line: None, checkpoint=crash_after_sending).run(day)
    assert list(bank.payouts) == [payout_id] and record(bank_world.merchant_id).get("payout_sent_at") is None

    resumed = payout_service(container, log_line=lambda line: None).run(day)
    again = payout_service(container, log_line=lambda line: None).run(day)

    assert (resumed.sent, resumed.sent_fen) == ([payout_id], 1668 - 11)
    assert (again.sent, again.already_sent, again.pending, again.failed) == ([], 1, [], {})
    assert list(bank.payouts) == [payout_id]  # paid once
    assert bank.payouts[payout_id]["amount_fen"] == 1657 and bank.payouts[payout_id]["merchant_id"] == \
        bank_world.merchant_id
    marked = record(bank_world.merchant_id)
    assert marked["payout_sent_at"] == stack.clock.now() and marked["payout_ref"] == bank.payouts[payout_id]["bank_ref"]
    assert marked["net_fen"] == marked["payout_fen"] == 1657  # the money fields are untouched

    assert main(["payouts", "--day", day.isoformat()], container=container, log_to_stdout=False) == 0
    assert '"already_sent": 1' in capsys.readouterr().out
    assert list(bank.payouts) == [payout_id]


def test_the_bank_refuses_a_reused_payout_id_and_the_job_reports_it_unsent(stack):
    day = DAY + timedelta(days=8)
    move_to(stack, datetime.combine(day, datetime.min.time().replace(hour=11), BEIJING))
    scan_pay(stack, stack.bank, 500, WECHAT_CODE)  # fee 3, net 497
    move_to(stack, datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=1), BEIJING))
    settlement_service(stack.container, log_line=lambda line: None).run(day, [stack.bank.merchant_id])
    payout_id = next(item.payout_id for item in SettlementModel.query(stack.bank.merchant_id)
                     if item.business_date == day.isoformat())
    bank = stack.sandbox.ctx.platforms["bank"]
    url = f"{stack.sandbox.ctx.base_url}/bank/payouts"
    other = PayoutInstruction(payout_id, stack.bank.merchant_id, day.isoformat(), 1)
    assert send_payout(url, other, 5).state is ChannelState.SUCCESS  # someone used the id for 0.01 yuan
    bad = send_payout(url, PayoutInstruction("", stack.bank.merchant_id, day.isoformat(), 5), 5)

    report = payout_service(stack.container, log_line=lambda line: None).run(day)

    assert (bad.state, bad.code) == (ChannelState.FAIL, "BAD_REQUEST")
    assert list(report.failed) == [payout_id] and "PAYOUT_ID_REUSED" in report.failed[payout_id]
    assert report.sent == [] and bank.payouts[payout_id]["amount_fen"] == 1  # nothing paid on our behalf
    row = next(item for item in SettlementModel.query(stack.bank.merchant_id) if item.business_date == day.isoformat())
    assert row.payout_sent_at is None  # left for an operator
