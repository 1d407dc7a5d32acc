"""The card blacklist, fetched from the cloud as versioned deltas, kept in SQLite, pushed to terminals.

``POST /edge/v1/cards/blacklist`` ``{after_version}`` answers
``{version, full, add: [card], remove: [card]}`` (``full``: the list is whole, replace ours). The
offline decision reads the stored list; the version goes into LOGIN and HEARTBEAT answers.

Terminals get BLACKLIST pushes: the change, to every logged-in terminal, when the version moves;
the whole list after each LOGIN (the LOGIN does not say which version the terminal holds). A list
too long for one frame (BODY at most 4096 bytes) goes in several pushes of the same ``ver``: the
first says ``full`` (replace), the others only add.
"""

from __future__ import annotations

import asyncio
import logging

from collections.abc import Callable, Iterable
from typing import Any

from .cloud import PATH_BLACKLIST, CloudClient, CloudUnavailable
from .config import AgentConfig
from .protocol import Command
from .server import TerminalConnection
from .store import Store

__all__ = ["BlacklistSync"]

log = logging.getLogger(__name__)
KV_VERSION = "blacklist_version"
CHUNK_BYTES = 3800  # of card numbers in one push, leaving room for the rest of the BODY


def blacklist_pushes(version: int, full: bool, add: list[str], remove: list[str]) -> list[dict[str, Any]]:
    """The BLACKLIST push bodies of one change, each small enough for one frame."""
    bodies: list[dict[str, Any]] = []
    for kind, cards in (("add", add), ("remove", remove)):
        for chunk in _chunks(cards):
            bodies.append({"ver": version, "full": False, "add": chunk if kind == "add" else [],
                           "remove": chunk if kind == "remove" else []})
    if full:
        if not bodies:
            bodies.append({"ver": version, "full": True, "add": [], "remove": []})
        bodies[0]["full"] = True
    return bodies


def _chunks(cards: Iterable[str]) -> list[list[str]]:
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for card in cards:
        cost = len(card.encode("utf-8")) + 3  # quotes and comma
        if current and size + cost > CHUNK_BYTES:
            chunks.append(current)
            current, size = [], 0
        current.append(card)
        size += cost
    if current:
        chunks.append(current)
    return chunks


class BlacklistSync:
    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient,
                 links: Callable[[], list[TerminalConnection]] = list) -> None:
        self._config = config
        self._store = store
        self._cloud = cloud
        self._links = links  # the logged-in terminals, to push changes to

    @property
    def version(self) -> int:
        raw = self._store.get_kv(KV_VERSION)
        return int(raw) if raw else 0

    async def sync_once(self) -> bool:
        """Apply the cloud's changes since our version; True when something changed."""
        reply = await self._cloud.post(PATH_BLACKLIST, {"after_version": self.version})
        if not reply.success:
            raise CloudUnavailable(f"{PATH_BLACKLIST}: HTTP {reply.status} {reply.code}")
        body = reply.body
        version, full = body.get("version"), body.get("full") is True
        add, remove = body.get("add") or [], body.get("remove") or []
        if not isinstance(version, int) or isinstance(version, bool) or not _cards(add) or not _cards(remove):
            raise CloudUnavailable(f"{PATH_BLACKLIST}: malformed answer")
        if version == self.version:
            return False  # nothing new (a cloud may answer "full" even then)
        await self._store.apply_blacklist(version, full, add, remove)
        for conn in self._links():
            for body in blacklist_pushes(version, full, add, remove):
                conn.push(Command.BLACKLIST, body)
        log.info("blacklist now at version %s (%s added, %s removed%s)", version, len(add), len(remove),
                 ", full list" if full else "")
        return True

    def after_login(self, conn: TerminalConnection) -> None:
        """The whole list, to a terminal that has just logged in (when there is a list at all)."""
        version = self.version
        if version:
            for body in blacklist_pushes(version, True, self._store.blacklist_cards(), []):
                conn.push(Command.BLACKLIST, body)

    async def run(self) -> None:
        while True:
            try:
                await self.sync_once()
            except CloudUnavailable as exc:
                log.info("blacklist not refreshed: %s", exc)
            except Exception:  # noqa: BLE001 - keep the last good list and try again later
                log.exception("blacklist refresh failed")
            await asyncio.sleep(self._config.blacklist_poll_s)


def _cards(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(card, str) for card in value)
