"""Canteen rules of one merchant: meal periods, terminal modes, card classes, wallets, offline limits.

Stored as one JSON document per merchant (store/canteen_rules.py) and validated here on the way in,
so every later use can trust it. A merchant without rules gets DEFAULT_RULES: any time, any amount,
no limits, subsidy spent first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import MAX_ORDER_FEN, PPM

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
WALLET_ORDERS = ("subsidy_first", "cash_first")
SUBSIDY_POLICIES = ("reset", "carry")  # monthly grant: unspent subsidy expires, or carries over
OFFLINE_POLICIES = ("exception", "book")  # an offline record that now breaks a rule


@dataclass(frozen=True)
class MealPeriod:
    code: str  # "breakfast"
    name: str  # "早餐"
    start_min: int  # minutes after Beijing midnight, inclusive
    end_min: int  # exclusive

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "start": _hhmm(self.start_min), "end": _hhmm(self.end_min)}


@dataclass(frozen=True)
class ClassRules:
    """Per card class (员工, 学生 ...). None means no limit."""

    code: str
    name: str = ""
    discount_ppm: dict[str, int] = field(default_factory=dict)  # meal code or "*" -> share paid (900_000 = 9折)
    per_payment_max_fen: int | None = None
    per_meal_max_fen: int | None = None
    per_meal_max_count: int | None = None
    per_day_max_fen: int | None = None
    per_day_max_count: int | None = None
    terminals: tuple[str, ...] | None = None  # terminals this class may use; None: all
    monthly_subsidy_fen: int = 0

    def rate_for(self, meal_code: str | None) -> int:
        if meal_code is not None and meal_code in self.discount_ppm:
            return self.discount_ppm[meal_code]
        return self.discount_ppm.get("*", PPM)


@dataclass(frozen=True)
class TerminalMode:
    mode: str = "free"  # "free": the terminal keys in the amount; "fixed": one price per meal
    fixed_amount_fen: int | None = None
    meal_amounts: dict[str, int] = field(default_factory=dict)  # fixed mode: price per meal code

    def fixed_price(self, meal_code: str | None) -> int | None:
        if self.mode != "fixed":
            return None
        if meal_code is not None and meal_code in self.meal_amounts:
            return self.meal_amounts[meal_code]
        return self.fixed_amount_fen


@dataclass(frozen=True)
class OfflineLimits:
    per_payment_max_fen: int = 2_000
    per_card_day_max_fen: int = 5_000
    max_count: int = 200  # records an agent may hold for one terminal before it refuses offline
    # Offline payments of one card per Beijing day; None: not set here, the agent keeps its own default.
    per_card_day_max_count: int | None = None


@dataclass(frozen=True)
class CanteenRules:
    version: int = 0
    meal_periods: tuple[MealPeriod, ...] = ()
    restrict_to_meals: bool = False  # True: no payment outside the meal periods (ERR006)
    classes: dict[str, ClassRules] = field(default_factory=dict)
    terminals: dict[str, TerminalMode] = field(default_factory=dict)
    wallet_order: str = "subsidy_first"
    subsidy_policy: str = "reset"
    offline: OfflineLimits = OfflineLimits()
    offline_policy: str = "exception"
    reversal_window_s: int = 86_400

    def class_rules(self, class_code: str) -> ClassRules:
        """A class the rules do not name pays full price without limits."""
        return self.classes.get(class_code) or ClassRules(class_code)

    def terminal_mode(self, terminal_id: str) -> TerminalMode:
        return self.terminals.get(terminal_id) or TerminalMode()

    def meal_at(self, when: datetime) -> MealPeriod | None:
        minute = when.hour * 60 + when.minute
        return next((m for m in self.meal_periods if m.start_min <= minute < m.end_min), None)


DEFAULT_RULES = CanteenRules()


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: object, what: str) -> int:
    if not isinstance(text, str) or not _HHMM.match(text):
        raise InvalidRequest(f"{what} must be HH:MM")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _fen(value: object, what: str, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ORDER_FEN:
        raise InvalidRequest(f"{what} must be an amount in fen")
    return value


def _count(value: object, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidRequest(f"{what} must be a count")
    return value


def _choice(value: object, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise InvalidRequest(f"{what} must be one of {', '.join(choices)}")
    return str(value)


def _meal(raw: dict) -> MealPeriod:
    start, end = _minutes(raw.get("start"), "meal start"), _minutes(raw.get("end"), "meal end")
    if start >= end:
        raise InvalidRequest("a meal period ends after it starts (no period across midnight)")
    code, name = raw.get("code"), raw.get("name", "")
    if not isinstance(code, str) or not code or not isinstance(name, str):
        raise InvalidRequest("a meal period needs a code")
    return MealPeriod(code, name, start, end)


def _class(code: str, raw: dict) -> ClassRules:
    rates = raw.get("discount_ppm") or {}
    if not isinstance(rates, dict) or any(
            not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= PPM for v in rates.values()):
        raise InvalidRequest("discount_ppm maps a meal code (or *) to the share paid, 0..1000000")
    terminals = raw.get("terminals")
    if terminals is not None and (not isinstance(terminals, list) or not all(isinstance(t, str) for t in terminals)):
        raise InvalidRequest("terminals is a list of terminal ids or null")
    return ClassRules(
        code, str(raw.get("name", "")), dict(rates),
        _fen(raw.get("per_payment_max_fen"), "per_payment_max_fen"),
        _fen(raw.get("per_meal_max_fen"), "per_meal_max_fen"),
        _count(raw.get("per_meal_max_count"), "per_meal_max_count"),
        _fen(raw.get("per_day_max_fen"), "per_day_max_fen"),
        _count(raw.get("per_day_max_count"), "per_day_max_count"),
        tuple(terminals) if terminals is not None else None,
        _fen(raw.get("monthly_subsidy_fen", 0), "monthly_subsidy_fen", allow_none=False) or 0,
    )


def _terminal(raw: dict) -> TerminalMode:
    mode = _choice(raw.get("mode", "free"), ("free", "fixed"), "mode")
    amounts = raw.get("meal_amounts") or {}
    if not isinstance(amounts, dict):
        raise InvalidRequest("meal_amounts maps a meal code to an amount")
    checked = {str(k): _fen(v, "meal amount", allow_none=False) for k, v in amounts.items()}
    fixed = _fen(raw.get("fixed_amount_fen"), "fixed_amount_fen")
    if mode == "fixed" and not fixed and not checked:
        raise InvalidRequest("fixed mode needs fixed_amount_fen or meal_amounts")
    return TerminalMode(mode, fixed, checked)  # type: ignore[arg-type]


def rules_from_dict(raw: object, version: int) -> CanteenRules:
    """Validate a rules document (console input or the stored JSON). Raises InvalidRequest."""
    if not isinstance(raw, dict):
        raise InvalidRequest("rules must be a JSON object")
    raw_meals = raw.get("meal_periods") or []
    if not isinstance(raw_meals, list) or not all(isinstance(m, dict) for m in raw_meals):
        raise InvalidRequest("meal_periods is a list of {code, name, start, end}")
    meals = tuple(_meal(m) for m in raw_meals)
    spans = sorted((m.start_min, m.end_min) for m in meals)
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise InvalidRequest("meal periods overlap")
    classes = raw.get("classes") or {}
    terminals = raw.get("terminals") or {}
    offline = raw.get("offline") or {}
    if not all(isinstance(x, dict) for x in (classes, terminals, offline)):
        raise InvalidRequest("classes, terminals and offline are objects")
    window = raw.get("reversal_window_s", 86_400)
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise InvalidRequest("reversal_window_s must be seconds")
    return CanteenRules(
        version=version,
        meal_periods=meals,
        restrict_to_meals=bool(raw.get("restrict_to_meals", False)),
        classes={str(code): _class(str(code), c if isinstance(c, dict) else {}) for code, c in classes.items()},
        terminals={str(t): _terminal(m if isinstance(m, dict) else {}) for t, m in terminals.items()},
        wallet_order=_choice(raw.get("wallet_order", "subsidy_first"), WALLET_ORDERS, "wallet_order"),
        subsidy_policy=_choice(raw.get("subsidy_policy", "reset"), SUBSIDY_POLICIES, "subsidy_policy"),
        offline=OfflineLimits(
            _fen(offline.get("per_payment_max_fen", 2_000), "offline per_payment_max_fen", False),  # type: ignore[arg-type]
            _fen(offline.get("per_card_day_max_fen", 5_000), "offline per_card_day_max_fen", False),  # type: ignore[arg-type]
            _count(offline.get("max_count", 200), "offline max_count") or 0,
            _count(offline.get("per_card_day_max_count"), "offline per_card_day_max_count"),
        ),
        offline_policy=_choice(raw.get("offline_policy", "exception"), OFFLINE_POLICIES, "offline_policy"),
        reversal_window_s=window,
    )


def terminal_params(rules: CanteenRules, terminal_id: str) -> dict:
    """The PARAMS push of protocol.md for one terminal: what it needs to work, online or offline."""
    mode = rules.terminal_mode(terminal_id)
    return {
        "ver": rules.version,
        "mode": mode.mode,
        "fixed_amount_fen": mode.fixed_amount_fen,
        "meal_amounts": dict(mode.meal_amounts),
        "meal_periods": [m.to_dict() for m in rules.meal_periods],
        "restrict_to_meals": rules.restrict_to_meals,
        "limits": {"per_payment_max_fen": _loosest_payment_limit(rules)},
        "offline": _offline_params(rules.offline),
    }


def _offline_params(limits: OfflineLimits) -> dict:
    """The offline limits the edge agent applies. A limit the merchant did not set is left out, so
    the agent keeps its own configured default for it (the agent's edge_agent/params.py)."""
    params = {
        "per_payment_max_fen": limits.per_payment_max_fen,
        "per_card_day_max_fen": limits.per_card_day_max_fen,
        "max_count": limits.max_count,
    }
    if limits.per_card_day_max_count is not None:
        params["per_card_day_max_count"] = limits.per_card_day_max_count
    return params


def _loosest_payment_limit(rules: CanteenRules) -> int | None:
    """The terminal cannot know a card's class before asking: it may refuse above the loosest limit."""
    limits = [c.per_payment_max_fen for c in rules.classes.values()]
    if not limits or any(x is None for x in limits):
        return None
    return max(x for x in limits if x is not None)
