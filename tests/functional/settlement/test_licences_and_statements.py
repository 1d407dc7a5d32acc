"""Licences (renewals, the dealer's licence ledger, the ERR011 check) and the CSV statements over HTTP."""
from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date, timedelta

import pytest
from chalice import Chalice
from chalice.test import Client

from chalicelib.api.statements import mint_token, statements
from chalicelib.container import install
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.domain.licences import renew
from chalicelib.jobs.settlement import licence_service
from chalicelib.store.licences import LicenceStore
from chalicelib.store.orders import ConditionFailed
from tests.functional.settlement.ledger_support import at, dealer_rows, move_clock, paid_order
from tests.support.world import seed_world

START = date(2026, 5, 4)
SECRET = "test-statements-secret"


@pytest.fixture
def world(container):  # type: ignore[no-untyped-def]
    return seed_world(container, scheme=2)


def licence_rows(dealer_id: str) -> list[tuple]:
    return [(r["entry_id"], r["amount_fen"], r["kind"]) for r in dealer_rows(dealer_id)]


def test_renewals_charge_the_dealer_once_per_term(container, clock, world):
    service = licence_service(container)
    move_clock(clock, at(START, 10))
    first = service.renew(world.merchant_id, 1)
    assert service.renew(world.merchant_id, 1)["recorded"] is False  # the operator's retry
    with pytest.raises(InvalidRequest):
        service.renew(world.merchant_id, 3)
    move_clock(clock, at(date(2027, 4, 20), 10))  # 14 days before the end: expiring
    assert service.view(world.merchant_id)["status"] == "EXPIRING"
    second = service.renew(world.merchant_id, 2)

    assert (first["recorded"], first["fee_fen"], first["expires_on"]) == (True, 250_000, "2027-05-04")
    assert (second["fee_fen"], second["term_starts_on"], second["expires_on"]) == (200_000, "2027-05-04", "2028-05-04")
    assert licence_rows(world.dealer_id) == [
        (f"2026-05-04#licence#{world.merchant_id}#01", -250_000, "LICENCE_FEE"),
        (f"2027-04-20#licence#{world.merchant_id}#02", -200_000, "LICENCE_FEE")]
    with pytest.raises(NotFound):
        service.renew("M-NOBODY", 1)


def test_a_renewal_that_lost_a_race_changes_nothing(container, clock, world):
    store = LicenceStore(container.settings)
    move_clock(clock, at(START, 10))
    licence_service(container).renew(world.merchant_id, 1)
    stale = renew(None, world.merchant_id, world.dealer_id, 1, START)  # computed before the first was recorded
    before = licence_rows(world.dealer_id), store.get(world.merchant_id)

    with pytest.raises(ConditionFailed):
        store.record(stale, 0, START + timedelta(days=1), clock.now())

    assert (licence_rows(world.dealer_id), store.get(world.merchant_id)) == before


def test_new_qr_orders_stop_after_the_grace_period_only(container, clock, world):
    service = licence_service(container)
    assert service.licence_allows_new_qr_orders(world.merchant_id, clock.now())  # no licence yet: allowed
    move_clock(clock, at(START, 10))
    service = licence_service(container)
    service.renew(world.merchant_id, 1)
    end = date(2027, 5, 4)

    assert service.licence_allows_new_qr_orders(world.merchant_id, at(end + timedelta(days=14), 23, 59))
    assert not service.licence_allows_new_qr_orders(world.merchant_id, at(end + timedelta(days=15), 0, 0))
    move_clock(clock, at(end + timedelta(days=20), 9))
    assert [w["merchant_id"] for w in service.warnings(LicenceStore(container.settings).for_dealer(world.dealer_id))] \
        == [world.merchant_id]


@pytest.fixture
def api(container):  # type: ignore[no-untyped-def]
    # The deployment's setting: the container's Settings carry the secret (config.py reads it once).
    install(replace(container, settings=replace(container.settings, statements_token_secret=SECRET)))
    app = Chalice("statements-test")
    app.register_blueprint(statements)
    with Client(app) as client:
        yield client.http


def get(api, path: str, token: str | None) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = api.get(path, headers=headers)
    return answer.status_code, answer.body.decode()


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_statements_as_csv_for_the_operator_and_the_merchants_dealer(container, clock, world, make_settlement, api):
    day = date(2026, 5, 6)
    paid_order(container, world, 1250, at(day, 9))
    paid_order(container, world, 84, at(day, 10), "alipay")
    make_settlement().run(day, [world.merchant_id])
    move_clock(clock, at(START, 10))
    licence_service(container).renew(world.merchant_id, 1)
    operator, dealer = mint_token(SECRET), mint_token(SECRET, world.dealer_id)
    stranger = mint_token(SECRET, "D-OTHER")
    daily = f"/statements/merchants/{world.merchant_id}/daily?from=2026-05-06"
    monthly = f"/statements/dealers/{world.dealer_id}/monthly?month=2026-05"

    status, text = get(api, daily, dealer)
    assert status == 200 and get(api, daily, operator) == (200, text)
    table = rows(text)
    assert [(r["section"], r["channel"], r["count"], r["gross_yuan"], r["fee_yuan"], r["net_yuan"]) for r in table] == [
        ("settled", "alipay", "1", "0.84", "0.01", "0.83"),      # 0.504 -> 1 fen
        ("settled", "wechat_v2", "1", "12.50", "0.08", "12.42"),  # 7.5 -> 8 fen
        ("total", "", "2", "13.34", "0.09", "13.25")]
    assert table[-1]["payout_id"] == f"PO2026050600-{world.merchant_id}" and table[-1]["payout_yuan"] == "13.25"

    status, text = get(api, monthly, dealer)
    assert status == 200
    assert [(r["line"], r["kind"], r["amount_yuan"]) for r in rows(text)] == [
        ("entry", "LICENCE_FEE", "-2500.00"), ("entry", "COMMISSION", "0.01"),  # 0.1 % of 12.50 -> 1 fen
        ("total", "commission_earned", "0.01"), ("total", "licence_fees_owed", "2500.00"),
        ("total", "balance", "-2499.99"), ("licence", "ACTIVE", "2000.00")]

    assert get(api, daily, None)[0] == 401
    assert get(api, daily, operator[:-1] + "0")[0] == 401
    assert get(api, daily, stranger)[0] == 403 and get(api, monthly, stranger)[0] == 403
    assert get(api, f"/statements/merchants/{world.merchant_id}/daily?from=2026-05-01&to=2026-07-01", operator)[0] == 400
    assert get(api, f"/statements/dealers/{world.dealer_id}/monthly?month=May", operator)[0] == 400
    assert get(api, "/statements/merchants/M-NOBODY/daily?from=2026-05-06", operator)[0] == 404


def test_no_secret_configured_refuses_everything(container, world, api):
    install(container)  # the test's own container: Settings without a secret
    assert container.settings.statements_token_secret is None
    assert get(api, f"/statements/dealers/{world.dealer_id}/monthly?month=2026-05", mint_token(""))[0] == 401
