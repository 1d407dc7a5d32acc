"""Statement downloads (CSV) for the console, behind a simple bearer token.

    GET /statements/merchants/{merchant_id}/daily?from=YYYY-MM-DD[&to=YYYY-MM-DD]   (up to 31 days)
    GET /statements/dealers/{dealer_id}/monthly?month=YYYY-MM

Tokens (`Authorization: Bearer <token>`) are minted by the operator from the statements token secret
(Settings.statements_token_secret, from STATEMENTS_TOKEN_SECRET; infra/README.md says how stages set it):

    operator.<hex HMAC-SHA256(secret, "operator")>             every statement
    dealer.<dealer_id>.<hex HMAC-SHA256(secret, "dealer:<id>")>  its own monthly statement and the
                                                                 daily statements of its own merchants

With no secret configured every request is refused: a deployment that forgot it exposes nothing.
This stands in until the console's login sessions exist; it checks in constant time and logs no token.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from chalice import Blueprint, Response

from chalicelib import container as container_module
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.domain.errors import DomainError, NotFound, Unauthorized
from chalicelib.services.statements import StatementService, day_range
from chalicelib.store.licences import LicenceStore
from chalicelib.store.settlement import SettlementStore

statements = Blueprint(__name__)
SECRET_ENV = "STATEMENTS_TOKEN_SECRET"  # read by Settings.from_env (config.py)


class Forbidden(DomainError):
    code = "FORBIDDEN"
    http_status = 403


@dataclass(frozen=True)
class Caller:
    role: str  # operator | dealer
    dealer_id: str = ""


def mint_token(secret: str, dealer_id: str | None = None) -> str:
    subject = f"dealer:{dealer_id}" if dealer_id else "operator"
    mac = hmac.new(secret.encode(), subject.encode(), hashlib.sha256).hexdigest()
    return f"dealer.{dealer_id}.{mac}" if dealer_id else f"operator.{mac}"


def caller_of(authorization: str | None, secret: str | None) -> Caller:
    if not secret or not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("a statement token is required")
    token = authorization[len("Bearer "):].strip()
    role, _, rest = token.partition(".")
    dealer_id = rest.rpartition(".")[0] if role == "dealer" else None
    if role not in ("operator", "dealer") or (role == "dealer" and not dealer_id):
        raise Unauthorized("not a statement token")
    if not hmac.compare_digest(mint_token(secret, dealer_id).encode(), token.encode()):
        raise Unauthorized("not a statement token")
    return Caller(role, dealer_id or "")


def _caller() -> Caller:
    headers = statements.current_request.headers
    return caller_of(headers.get("authorization"), container_module.current().settings.statements_token_secret)


def _service() -> StatementService:
    current = container_module.current()
    return StatementService(SettlementStore(current.settings), LicenceStore(current.settings), current.clock)


def _csv(text: str, filename: str) -> Response:
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return Response(body=text, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{safe_name}"',
        "Cache-Control": "no-store"})


def _query(name: str) -> str | None:
    return (statements.current_request.query_params or {}).get(name)


@statements.route("/statements/merchants/{merchant_id}/daily", methods=["GET"])
@domain_errors_to_http
def merchant_daily(merchant_id: str) -> Response:
    caller = _caller()
    merchant = container_module.current().directory.merchant(merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    if caller.role == "dealer" and merchant.dealer_id != caller.dealer_id:
        raise Forbidden("not one of your merchants")
    first, last = day_range(_query("from") or "", _query("to"))
    text = _service().merchant_daily(merchant_id, first, last)
    return _csv(text, f"settlement-{merchant_id}-{first:%Y%m%d}-{last:%Y%m%d}.csv")


@statements.route("/statements/dealers/{dealer_id}/monthly", methods=["GET"])
@domain_errors_to_http
def dealer_monthly(dealer_id: str) -> Response:
    caller = _caller()
    if caller.role == "dealer" and caller.dealer_id != dealer_id:
        raise Forbidden("not your statement")
    month = _query("month") or ""
    return _csv(_service().dealer_monthly(dealer_id, month), f"dealer-{dealer_id}-{month}.csv")
