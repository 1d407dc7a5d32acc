"""The Chalice app class, with the request being handled kept per thread.

Chalice keeps `current_request` in one attribute of the app. On Lambda a container handles one
request at a time, but the local stack (`chalice local`'s threaded server) and tests serve the app
from several threads, where two requests would read each other's body and headers: a spurious 401,
or one terminal answered with another's order. One slot per thread makes that impossible.
"""
from __future__ import annotations

import threading
from typing import Any

from chalice import Chalice


class ScanPayChalice(Chalice):
    _requests = threading.local()

    @property  # type: ignore[override]
    def current_request(self) -> Any:
        return getattr(self._requests, "request", None)

    @current_request.setter
    def current_request(self, request: Any) -> None:
        self._requests.request = request
