"""Counts DynamoDB calls per operation with botocore's event hooks (tests and benches)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable


class DynamoDBCallCounter:
    def __init__(self, clients: Iterable[Any]) -> None:
        self.calls: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1

    def reset(self) -> None:
        self.calls.clear()

    def snapshot(self) -> dict[str, int]:
        return dict(self.calls)
