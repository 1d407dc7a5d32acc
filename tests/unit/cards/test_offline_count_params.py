"""The per-card daily offline count: set in the rules' offline limits, sent in PARAMS, left out when unset
(the edge agent then keeps its own default), refused when it is not a count."""
from __future__ import annotations

import pytest

from chalicelib.domain.canteen_rules import DEFAULT_RULES, rules_from_dict, terminal_params
from chalicelib.domain.errors import InvalidRequest


def test_the_count_goes_out_in_params_when_set() -> None:
    rules = rules_from_dict({"offline": {"per_payment_max_fen": 800, "per_card_day_max_count": 2}}, 3)
    assert rules.offline.per_card_day_max_count == 2
    assert terminal_params(rules, "T1")["offline"] == {
        "per_payment_max_fen": 800, "per_card_day_max_fen": 5_000, "max_count": 200, "per_card_day_max_count": 2}
    assert terminal_params(rules_from_dict({"offline": {"per_card_day_max_count": 0}}, 1), "T1")[
        "offline"]["per_card_day_max_count"] == 0  # 0: no offline payment of a card at all


def test_unset_the_count_is_left_out() -> None:
    assert "per_card_day_max_count" not in terminal_params(DEFAULT_RULES, "T1")["offline"]
    assert "per_card_day_max_count" not in terminal_params(rules_from_dict({"offline": {}}, 1), "T1")["offline"]


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True, [2]])
def test_a_count_that_is_not_a_count_is_refused(bad: object) -> None:
    with pytest.raises(InvalidRequest, match="per_card_day_max_count"):
        rules_from_dict({"offline": {"per_card_day_max_count": bad}}, 1)
