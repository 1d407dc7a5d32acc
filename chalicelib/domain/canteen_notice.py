"""The 充值成功通知 template message: which template fields carry what, per merchant.

The classic layout (first / keyword1 amount / keyword2 time / remark) is the default; a merchant
whose template uses the newer typed keys (amount1, time2, character_string3 ...) maps them in its
settings. Values are text with placeholders: {amount} (yuan), {time} (Beijing), {balance} (yuan),
{card}, {name}. Only these placeholders exist, so a setting cannot reach anything else.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

from chalicelib.domain.clock import beijing_datetime
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import format_yuan

PLACEHOLDERS = ("amount", "time", "balance", "card", "name")
CLASSIC_FIELDS = {
    "first": "您好，您的饭卡充值成功",
    "keyword1": "{amount}元",
    "keyword2": "{time}",
    "remark": "卡号{card}，当前余额{balance}元",
}


@dataclass(frozen=True)
class RechargeFacts:
    amount_fen: int
    at: float
    balance_fen: int
    card_no: str
    holder_name: str


def check_template(config: dict) -> dict:
    """Validate a merchant's setting {"template_id", "fields": {key: text}}; returns it."""
    if not isinstance(config.get("template_id"), str) or not config["template_id"]:
        raise InvalidRequest("template_id is required")
    fields = config.get("fields", CLASSIC_FIELDS)
    if not isinstance(fields, dict) or not fields:
        raise InvalidRequest("fields maps template keys to text")
    for key, text in fields.items():
        if not isinstance(key, str) or not isinstance(text, str):
            raise InvalidRequest("fields maps template keys to text")
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        if not used <= set(PLACEHOLDERS):
            raise InvalidRequest(f"field {key}: placeholders are {', '.join(PLACEHOLDERS)}")
    return {"template_id": config["template_id"], "fields": dict(fields), "url": str(config.get("url", ""))}


def template_data(fields: dict[str, str], facts: RechargeFacts) -> dict[str, dict[str, str]]:
    """wechatpy's `data` argument: {key: {"value": text}}."""
    values = {
        "amount": format_yuan(facts.amount_fen),
        "time": beijing_datetime(facts.at).strftime("%Y-%m-%d %H:%M"),
        "balance": format_yuan(facts.balance_fen),
        "card": facts.card_no,
        "name": facts.holder_name,
    }
    return {key: {"value": text.format_map(values)} for key, text in fields.items()}
