"""The inline fast path of the schema check (validation.Obj) accepts exactly what the field specs
accept: checked against an oracle written here from protocol.md's words, on bodies whose values
are drawn from every JSON type and a few Python look-alikes (bool for int, a str subclass)."""

from __future__ import annotations

import enum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.protocol.frames import Command, response_of
from edge_agent.protocol.validation import INT_MAX, INT_MIN, body_problem


class Code(enum.StrEnum):  # a str subclass: not an exact str, still a str for the specs
    OK = "OK"


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX


def is_str(value: object) -> bool:
    return isinstance(value, str)


def is_bool(value: object) -> bool:
    return isinstance(value, bool)


def nullable(check: Any) -> Any:
    return lambda value: value is None or check(value)


def one_of(*values: str) -> Any:
    return lambda value: isinstance(value, str) and value in values


# wire CMD -> {field: check}; protocol.md's tables (validation.py's choices: int is 64-bit, not bool).
ORACLE: dict[int, dict[str, Any]] = {
    Command.CARD_PAY: {"txn": is_int, "card": is_str, "amount_fen": is_int, "ts": is_int},
    Command.HEARTBEAT: {"ts": is_int, "offline_pending": is_int},
    response_of(Command.CARD_PAY): {
        "txn": is_int, "ok": is_bool, "code": is_str, "msg": is_str, "voice": is_str,
        "balance_fen": nullable(is_int), "offline": is_bool,
    },
    response_of(Command.QUERY): {
        "txn": is_int, "status": one_of("PAYING", "PAID", "CLOSED", "FAILED", "UNKNOWN"),
        "amount_fen": nullable(is_int),
    },
    response_of(Command.PAY_RESULT): {"txn": is_int},
}

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT_MIN - 2, max_value=INT_MAX + 2),
    st.sampled_from([INT_MIN, INT_MAX, INT_MIN - 1, INT_MAX + 1, 0, -1]),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.sampled_from(["PAID", "PAYING", "UNKNOWN", "paid", Code.OK]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[int, dict[str, Any]]:
    cmd = draw(st.sampled_from(sorted(ORACLE)))
    body: dict[str, Any] = {}
    for name in ORACLE[cmd]:
        if draw(st.integers(0, 9)):  # now and then a field is missing
            body[name] = draw(VALUES)
    if draw(st.booleans()):
        body["extra"] = draw(VALUES)  # extra fields are allowed
    return cmd, body


def oracle_accepts(cmd: int, body: dict[str, Any]) -> bool:
    return all(name in body and check(body[name]) for name, check in ORACLE[cmd].items())


@settings(max_examples=500, deadline=None)
@given(bodies())
def test_accepts_exactly_what_the_oracle_accepts(case: tuple[int, dict[str, Any]]) -> None:
    cmd, body = case
    problem = body_problem(cmd, body)
    assert (problem is None) == oracle_accepts(cmd, body), problem


def test_a_valid_answer_with_a_str_subclass_is_accepted_by_the_slow_path() -> None:
    body = {"txn": 1, "ok": True, "code": Code.OK, "msg": "m", "voice": "v", "balance_fen": None,
            "offline": False}
    assert body_problem(response_of(Command.CARD_PAY), body) is None


def test_refusals_keep_their_words() -> None:
    good = {"txn": 1, "card": "10000001", "amount_fen": 1, "ts": 2}
    assert body_problem(Command.CARD_PAY, {**good, "txn": True}) == "field 'txn' must be int, got bool"
    assert body_problem(Command.CARD_PAY, {**good, "ts": INT_MAX + 1}) == (
        "field 'ts' is out of the 64-bit integer range")
    assert body_problem(Command.CARD_PAY, {k: v for k, v in good.items() if k != "card"}) == (
        "missing field 'card'")
    assert body_problem(Command.CARD_PAY, []) == "field 'BODY' must be object, got list"
