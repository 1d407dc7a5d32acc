"""Domain errors: each carries a stable code; api/errors.py maps them to HTTP answers."""
from __future__ import annotations


class DomainError(Exception):
    code = "ERROR"
    http_status = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class InvalidRequest(DomainError):
    code = "INVALID_REQUEST"


class InvalidAmount(DomainError):
    code = "ERR009"  # protocol.md: 金额错误


class NotConfigured(DomainError):
    code = "ERR011"  # protocol.md: 设置错误 (terminal or merchant not configured)
    http_status = 409


class NotFound(DomainError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(DomainError):
    """The same idempotency key was used with a different request."""

    code = "CONFLICT"
    http_status = 409


class IllegalTransition(DomainError):
    code = "ILLEGAL_TRANSITION"
    http_status = 409


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"
    http_status = 401


class ChannelUnavailable(DomainError):
    """The channel did not give a definite answer; the caller may query later."""

    code = "ERR012"
    http_status = 503
