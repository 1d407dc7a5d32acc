"""What every edge API endpoint shares: request authentication, field checks, terminal ownership.

A request with a bad signature, a stale timestamp or a reused nonce is answered 401 and changes
nothing. A terminal id that is not one of the calling agent's terminals is answered 404, exactly
like an unknown one, so one tenant cannot learn another's ids.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.domain import edge_auth
from chalicelib.domain.errors import DomainError, InvalidRequest, NotFound, Unauthorized
from chalicelib.store.dedupe import NonceClaim
from chalicelib.store.directory import EdgeAgentInfo, TerminalInfo


def authenticate(blueprint: Blueprint) -> tuple[EdgeAgentInfo, dict]:
    """The calling agent and the JSON body, or Unauthorized / InvalidRequest. The nonce is claimed."""
    agent, raw, nonce = _verified(blueprint)
    claim(nonce)
    return agent, _json_body(raw)


def authenticate_deferred(blueprint: Blueprint) -> tuple[EdgeAgentInfo, dict, NonceClaim]:
    """Like authenticate, but the nonce is handed back unclaimed, for an endpoint that writes it in its
    own transaction (one DynamoDB call fewer). The endpoint must claim it on every other path: run
    its checks inside `claimed_on_error(nonce)` and claim it when it writes nothing."""
    agent, raw, nonce = _verified(blueprint)
    with claimed_on_error(nonce):
        body = _json_body(raw)
    return agent, body, nonce


def claim(nonce: NonceClaim) -> None:
    """Use up the nonce, or Unauthorized when it was used (a replayed request)."""
    if not container.current().dedupe.claim(nonce):
        raise Unauthorized("nonce already used")


@contextmanager
def claimed_on_error(nonce: NonceClaim) -> Iterator[None]:
    """A request answered with an error still uses up its nonce, and a replay of it is answered 401."""
    try:
        yield
    except Unauthorized:
        raise
    except DomainError:
        claim(nonce)
        raise


def _verified(blueprint: Blueprint) -> tuple[EdgeAgentInfo, bytes, NonceClaim]:
    """The agent whose MAC and timestamp check out, the raw body and the nonce it used."""
    request = blueprint.current_request
    raw = request.raw_body or b""
    signed = edge_auth.parse_headers(dict(request.headers))
    if signed is None:
        raise Unauthorized("missing or malformed signature headers")
    c = container.current()
    agent = c.directory.edge_agent(signed.agent_id)
    now = c.clock.now()
    if agent is None or not agent.active:
        raise Unauthorized("bad signature")
    # The route path (no API Gateway stage prefix) is what is signed, so one signature works on every stage.
    problem = edge_auth.verify(agent.secret, signed, request.method, request.path, raw, now)
    if problem is not None:
        raise Unauthorized(problem)
    # Only a genuine request may use up a nonce, so it is claimed (by the caller) after the MAC.
    return agent, raw, NonceClaim(agent.agent_id, signed.nonce, now, edge_auth.MAX_SKEW_S)


def _json_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body


def field(body: dict, name: str, kind: type, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidRequest(f"field {name!r} must be {kind.__name__}")
    return value


def terminal_of(agent: EdgeAgentInfo, body: dict) -> TerminalInfo:
    terminal_id = field(body, "terminal_id", str)
    terminal = container.current().directory.terminal(terminal_id)
    if terminal is None or terminal.agent_id != agent.agent_id or not terminal.active:
        raise NotFound("unknown terminal")
    return terminal


def ok(body: dict, status: int = 200) -> Response:
    return Response(body={"ok": True, **body}, status_code=status, headers={"Content-Type": "application/json"})
