"""The 充值成功通知 fields: the classic layout by default, newer typed keys by setting."""
from __future__ import annotations

import pytest

from chalicelib.domain.canteen_notice import CLASSIC_FIELDS, RechargeFacts, check_template, template_data
from chalicelib.domain.errors import InvalidRequest

FACTS = RechargeFacts(amount_fen=5_000, at=1_795_000_000.0, balance_fen=12_345, card_no="10000001", holder_name="王五")


def test_classic_layout() -> None:
    assert template_data(CLASSIC_FIELDS, FACTS) == {
        "first": {"value": "您好，您的饭卡充值成功"}, "keyword1": {"value": "50.00元"},
        "keyword2": {"value": "2026-11-18 19:06"}, "remark": {"value": "卡号10000001，当前余额123.45元"},
    }


def test_typed_keys_by_setting() -> None:
    config = check_template({"template_id": "T1", "fields": {"amount2": "{amount}", "time3": "{time}",
                                                             "thing4": "{name}"}})
    assert template_data(config["fields"], FACTS) == {
        "amount2": {"value": "50.00"}, "time3": {"value": "2026-11-18 19:06"}, "thing4": {"value": "王五"}}


@pytest.mark.parametrize("bad", [{}, {"template_id": ""}, {"template_id": "T", "fields": {"a": "{secret}"}},
                                 {"template_id": "T", "fields": {"a": "{amount.__class__}"}},
                                 {"template_id": "T", "fields": {"a": 1}}, {"template_id": "T", "fields": []}])
def test_bad_settings_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest):
        check_template(bad)
