"""Counts DynamoDB calls per operation with botocore's event hooks (tests and benches)."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable


class DynamoDBCallCounter:
    def __init__(self, clients: Iterable[Any]) -> None:
        self.calls: Counter[str] = Counter()
        self.queries: list[tuple[str, str | None]] = []  # (table, index) of each Query, to tell them apart
        for client in clients:
            client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any = None, params: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "Query" and params:
            request = json.loads(params.get("body") or b"{}")  # the serialised DynamoDB request
            self.queries.append((request.get("TableName"), request.get("IndexName")))

    def reset(self) -> None:
        self.calls.clear()
        self.queries.clear()

    def snapshot(self) -> dict[str, int]:
        return dict(self.calls)
