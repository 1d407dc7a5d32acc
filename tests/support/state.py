"""Snapshots of what tests assert on: orders, dedupe records and ledger entries, read raw."""
from __future__ import annotations

from chalicelib.store.models import DedupeModel, LedgerEntryModel, OrderModel


def orders_of_terminal(terminal_id: str) -> list[dict]:
    # Tests only: a Scan is fine here (never on a request path).
    return sorted((item.attribute_values for item in OrderModel.scan(OrderModel.terminal_id == terminal_id)),
                  key=lambda v: v["order_id"])


def ledger_of_order(order_id: str) -> list[dict]:
    return [item.attribute_values for item in LedgerEntryModel.query(f"order#{order_id}")]


def dedupe_keys(prefix: str) -> list[str]:
    return sorted(item.dedupe_key for item in DedupeModel.scan(DedupeModel.dedupe_key.startswith(prefix)))


def snapshot(terminal_id: str) -> dict:
    orders = orders_of_terminal(terminal_id)
    return {
        "orders": orders,
        "ledger": {o["order_id"]: ledger_of_order(o["order_id"]) for o in orders},
        "txn_dedupe": dedupe_keys(f"txn#{terminal_id}#"),
    }
