"""The deployed tables, read from the PynamoDB models (chalicelib/store/models.py is the one list).

Naming: a stage's table is "scanpay-<stage>-<base name>", the base name being the model's
Meta.table_name as declared. bind_models() rewrites Meta.table_name at run time, so the base names
come from store.connection._BASE_NAMES, captured when that module was first imported, before any
binding; `_checked_base_name` refuses a name that already carries a stage prefix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.models import Model

from chalicelib.store.connection import _BASE_NAMES
from chalicelib.store.models import ALL_MODELS

APP_NAME = "scanpay"

# Tables holding money facts: orders, ledger entries and the permanent dedupe records. They get
# deletion protection and a Retain policy, and the functions may never delete their items.
MONEY_TABLES = frozenset({"orders", "ledger", "dedupe"})
# Ledger entries are immutable: a correction is a new entry, so the functions may not update them.
APPEND_ONLY_TABLES = frozenset({"ledger"})


@dataclass(frozen=True)
class TableSpec:
    base_name: str  # "edge_agents"
    model: type[Model]

    @property
    def logical_id(self) -> str:
        """CloudFormation logical id: "EdgeAgentsTable"."""
        return "".join(part.capitalize() for part in self.base_name.split("_")) + "Table"

    @property
    def is_money(self) -> bool:
        return self.base_name in MONEY_TABLES

    def schema(self) -> dict[str, Any]:
        # The same schema PynamoDB's create_table sends, so the local stack and AWS agree.
        return self.model._get_schema()

    def gsi_names(self) -> list[str]:
        return sorted(index["index_name"] for index in self.schema()["global_secondary_indexes"])


def table_name(stage: str, base_name: str) -> str:
    return f"{APP_NAME}-{stage}-{base_name}"


def table_prefix(stage: str) -> str:
    return f"{APP_NAME}-{stage}-"


def kms_alias(stage: str) -> str:
    return f"alias/{APP_NAME}-{stage}"


def _checked_base_name(model: type[Model]) -> str:
    base_name = _BASE_NAMES[model]
    if base_name.startswith(f"{APP_NAME}-"):
        raise RuntimeError(f"{model.__name__}: base table name {base_name!r} already carries a stage prefix")
    return base_name


def table_specs() -> list[TableSpec]:
    specs = [TableSpec(_checked_base_name(model), model) for model in ALL_MODELS]
    unknown = (MONEY_TABLES | APPEND_ONLY_TABLES) - {spec.base_name for spec in specs}
    if unknown:
        raise RuntimeError(f"infra/tables.py names tables the models do not declare: {sorted(unknown)}")
    return specs
