"""Counts DynamoDB calls per operation with botocore's event hooks (tests and benches)."""
from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any, Iterable


class DynamoDBCallCounter:
    def __init__(self, clients: Iterable[Any]) -> None:
        # botocore fires the hook in the calling thread, and a card batch books from several threads at
        # once (services/card_batch.py): Counter's += is a read-modify-write, so it is locked.
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.queries: list[tuple[str, str | None]] = []  # (table, index) of each Query, to tell them apart
        for client in clients:
            client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any = None, params: Any = None, **_: Any) -> None:
        query = None
        if model.name == "Query" and params:
            request = json.loads(params.get("body") or b"{}")  # the serialised DynamoDB request
            query = (request.get("TableName"), request.get("IndexName"))
        with self._lock:
            self.calls[model.name] += 1
            if query is not None:
                self.queries.append(query)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.queries.clear()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)
