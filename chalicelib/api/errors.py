"""The one place that maps domain errors to HTTP answers."""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from chalice import Response

from chalicelib.domain.errors import DomainError

log = logging.getLogger(__name__)


def json_error(status: int, code: str, message: str) -> Response:
    return Response(body={"ok": False, "code": code, "message": message}, status_code=status,
                    headers={"Content-Type": "application/json"})


def domain_errors_to_http(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except DomainError as error:
            return json_error(error.http_status, error.code, error.message)

    return wrapper
