"""The 服务号 access token, shared by all containers through DynamoDB (store/card_mp_tokens.py).

WeChat gives an app id one live access token for 7200 s; each fetch retires the previous token
after 5 minutes, and fetches are rate-limited per day. So a token is fetched once per app id per
~2 h for all containers together: each container keeps the token in memory until REFRESH_BEFORE_S
before its expiry, then reads the shared item; a token that is due is refreshed by the one
container that wins the lease (a conditional write on the version it read), while the others go
on using the current token (still valid for REFRESH_BEFORE_S) or, when there is none, wait a
bounded number of rounds for the new one and then give up (TokenUnavailable: the caller's work
is retried later). A token WeChat calls invalid before its time is replaced the same way, once:
only if the shared item still holds that token's version.

The token is sealed with KMS at rest (purpose "wechat_mp_token") and never logged.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Callable

from chalicelib.domain.clock import Sleep
from chalicelib.store.card_mp_tokens import MpTokenStore, StoredToken
from chalicelib.store.secrets import Sealer

PURPOSE = "wechat_mp_token"
REFRESH_BEFORE_S = 600  # refresh 10 minutes ahead: the old token serves everyone meanwhile
USABLE_BEFORE_S = 60  # a token this close to its expiry is not handed out any more
LEASE_S = 30  # longer than a token fetch may take (the client times out after a few seconds)
WAIT_ROUNDS = 10
WAIT_S = 0.3

Fetch = Callable[[], tuple[str, int]]  # asks WeChat: (access_token, expires_in seconds)


class TokenUnavailable(Exception):
    """No usable token now (another container is fetching, or the fetch failed): try again later."""


@dataclass(frozen=True)
class _Held:
    token: str
    expires_at: float
    version: int


class MpTokens:
    def __init__(self, store: MpTokenStore, sealer: Sealer, clock: Callable[[], float], sleep: Sleep,
                 owner: str | None = None) -> None:
        self._store = store
        self._sealer = sealer
        self._clock = clock
        self._sleep = sleep
        self._owner = owner or secrets.token_hex(8)  # this container, for the lease
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def token(self, appid: str, fetch: Fetch) -> str:
        with self._lock:
            held = self._held.get(appid)
        if held is not None and held.expires_at - self._clock() > REFRESH_BEFORE_S:
            return held.token
        return self._shared(appid, fetch, stale_version=None)

    def invalidate(self, appid: str, fetch: Fetch) -> str:
        """WeChat refused the token this container holds: a new one, fetched at most once for
        everybody (if another container replaced it already, that one is used)."""
        with self._lock:
            held = self._held.pop(appid, None)
        return self._shared(appid, fetch, stale_version=held.version if held else None)

    def _shared(self, appid: str, fetch: Fetch, stale_version: int | None) -> str:
        for _ in range(WAIT_ROUNDS):
            now = self._clock()
            stored = self._store.read(appid)
            usable = self._usable(stored, now, stale_version)
            if usable is not None and usable.expires_at - now > REFRESH_BEFORE_S:
                return self._keep(appid, usable)
            version = stored.version if stored else 0
            if self._store.take_lease(appid, version, self._owner, now, LEASE_S):
                return self._refresh(appid, fetch, version + 1)
            if usable is not None:
                return self._keep(appid, usable)  # another container is refreshing it; this one still works
            self._sleep(WAIT_S)
        raise TokenUnavailable("the 服务号 access token is being refreshed elsewhere")

    def _usable(self, stored: StoredToken | None, now: float, stale_version: int | None) -> _Held | None:
        if stored is None or not stored.sealed or stored.version == stale_version:
            return None
        if stored.expires_at - now <= USABLE_BEFORE_S:
            return None
        return _Held(self._sealer.unseal(stored.sealed, PURPOSE), stored.expires_at, stored.version)

    def _refresh(self, appid: str, fetch: Fetch, version: int) -> str:
        try:
            token, expires_in = fetch()
        except Exception:
            self._store.release(appid, self._owner)
            raise
        now = self._clock()
        held = _Held(token, now + int(expires_in), version)
        # Stored only while the lease is ours; if it ran out and another container stored a newer
        # token meanwhile, ours is still the newest at WeChat, so it is used here all the same.
        self._store.put_token(appid, self._owner, self._sealer.seal(token, PURPOSE), held.expires_at, version, now)
        return self._keep(appid, held)

    def _keep(self, appid: str, held: _Held) -> str:
        with self._lock:
            self._held[appid] = held
        return held.token
