"""Setting the counter's interim operator token: the platform operator or the merchant's own dealer
(console statement tokens), never anyone else; a refusal changes nothing."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib.api.statements import mint_token
from chalicelib.container import install
from chalicelib.store.card_models import CanteenRulesModel
from tests.support.card_world import OperatorClient, issue_card, operator_for

SECRET = "test-statement-secret"
TOKEN = "counter-token-0123456789abcdef"


@pytest.fixture
def secret(container):  # type: ignore[no-untyped-def]
    """The deployment's setting: a container whose Settings carry the statements token secret."""
    install(replace(container, settings=replace(container.settings, statements_token_secret=SECRET)))


def _put(http, merchant_id: str, credential: str | None, body: object) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    answer = http.put(f"/cards/v1/merchants/{merchant_id}/operator-token", headers=headers, body=json.dumps(body))
    return answer.status_code, json.loads(answer.body or b"{}")


def _stored(merchant_id: str) -> dict | None:
    try:
        return CanteenRulesModel.get(merchant_id, consistent_read=True).attribute_values
    except CanteenRulesModel.DoesNotExist:
        return None


def test_the_dealer_sets_the_token_and_the_counter_uses_it(http, secret, world, cs) -> None:
    issue_card(cs, world.merchant_id, "52000001")
    status, body = _put(http, world.merchant_id, mint_token(SECRET, world.dealer_id), {"token": TOKEN})
    assert (status, body) == (200, {"merchant_id": world.merchant_id, "operator_token_set": True})
    assert TOKEN not in json.dumps(_stored(world.merchant_id))  # only its digest is kept
    op = OperatorClient(http, world.merchant_id, TOKEN)
    assert op.call("GET", "/cards/v1/cards/52000001")[0] == 200
    assert _put(http, world.merchant_id, mint_token(SECRET, world.dealer_id), {"token": TOKEN})[0] == 200  # repeat
    assert op.call("GET", "/cards/v1/cards/52000001")[0] == 200


def test_the_platform_operator_rotates_it_and_the_old_token_stops(http, secret, world, cs) -> None:
    old = operator_for(http, cs, world.merchant_id)
    assert old.call("GET", "/cards/v1/holders")[0] == 200
    assert _put(http, world.merchant_id, mint_token(SECRET), {"token": TOKEN})[0] == 200
    assert old.call("GET", "/cards/v1/holders")[0] == 401
    assert OperatorClient(http, world.merchant_id, TOKEN).call("GET", "/cards/v1/holders")[0] == 200


@pytest.mark.parametrize("who,status,code", [
    (None, 401, None), ("garbage", 401, None), ("wrong-secret", 401, None),
    ("counter-token", 401, None),  # the merchant's own operator token cannot set a new one
    ("other-dealer", 403, "FORBIDDEN")])
def test_refusals_change_nothing(http, secret, world, cs, who, status, code) -> None:  # type: ignore[no-untyped-def]
    current = operator_for(http, cs, world.merchant_id)
    credential = {None: None, "garbage": "operator.00", "wrong-secret": mint_token("other-secret"),
                  "counter-token": current.token, "other-dealer": mint_token(SECRET, "D-OTHER")}[who]
    before = _stored(world.merchant_id)
    answer = _put(http, world.merchant_id, credential, {"token": TOKEN})
    assert answer[0] == status and (code is None or answer[1]["code"] == code)
    assert _stored(world.merchant_id) == before
    assert current.call("GET", "/cards/v1/holders")[0] == 200 and \
        OperatorClient(http, world.merchant_id, TOKEN).call("GET", "/cards/v1/holders")[0] == 401


@pytest.mark.parametrize("body", [{"token": "short"}, {"token": "has space " * 4}, {"token": 12345678901234567890123456},
                                  {}, ["token"]])
def test_a_bad_token_is_refused_and_changes_nothing(http, secret, world, cs, body) -> None:  # type: ignore[no-untyped-def]
    before = _stored(world.merchant_id)
    assert _put(http, world.merchant_id, mint_token(SECRET, world.dealer_id), body)[0] == 400
    assert _stored(world.merchant_id) == before


def test_an_unknown_merchant_is_404_and_nothing_is_written(http, secret, world) -> None:
    status, body = _put(http, "M-NOBODY", mint_token(SECRET), {"token": TOKEN})
    assert (status, body["code"]) == (404, "NOT_FOUND")
    assert _stored("M-NOBODY") is None


def test_without_a_configured_secret_nobody_sets_it(http, container, world) -> None:  # type: ignore[no-untyped-def]
    assert container.settings.statements_token_secret is None
    assert _put(http, world.merchant_id, mint_token(""), {"token": TOKEN})[0] == 401
    assert _stored(world.merchant_id) is None
