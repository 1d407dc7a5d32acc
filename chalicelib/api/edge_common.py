"""What every edge API endpoint shares: request authentication, field checks, terminal ownership.

A request with a bad signature, a stale timestamp or a reused nonce is answered 401 and changes
nothing. A terminal id that is not one of the calling agent's terminals is answered 404, exactly
like an unknown one, so one tenant cannot learn another's ids.
"""
from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.domain import edge_auth
from chalicelib.domain.errors import InvalidRequest, NotFound, Unauthorized
from chalicelib.store.directory import EdgeAgentInfo, TerminalInfo


def authenticate(blueprint: Blueprint) -> tuple[EdgeAgentInfo, dict]:
    """The calling agent and the JSON body, or Unauthorized / InvalidRequest."""
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
    # Only a genuine request may use up a nonce, so the check comes after the MAC.
    if not c.dedupe.claim_nonce(agent.agent_id, signed.nonce, now, edge_auth.MAX_SKEW_S):
        raise Unauthorized("nonce already used")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return agent, body


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
