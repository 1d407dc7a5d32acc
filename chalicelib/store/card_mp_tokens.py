"""The shared 服务号 access tokens (WeChatMpTokenModel): read, lease the refresh, store the new one.

Every write is conditional: a lease is taken only on the version that was read and only when no
other lease is running (or it ran out), and a new token is stored only by the lease's owner. So of
many containers that find the token due, one fetches; the others keep using the current token
(still valid) or wait for the new one.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.store.card_models import WeChatMpTokenModel


@dataclass(frozen=True)
class StoredToken:
    appid: str
    sealed: str | None
    expires_at: float
    version: int
    lease_until: float | None


def _failed_condition(error: UpdateError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


class MpTokenStore:
    def read(self, appid: str) -> StoredToken | None:
        try:
            item = WeChatMpTokenModel.get(appid, consistent_read=True)
        except DoesNotExist:
            return None
        return StoredToken(item.appid, item.token_sealed, float(item.expires_at or 0), int(item.version or 0),
                           float(item.lease_until) if item.lease_until is not None else None)

    def take_lease(self, appid: str, version: int, owner: str, now: float, lease_s: float) -> bool:
        """The right to fetch the next token, if the token is still at `version` (0: none yet) and
        no other container holds a running lease."""
        same_version = WeChatMpTokenModel.version == version
        if version == 0:
            same_version = same_version | WeChatMpTokenModel.version.does_not_exist()
        free = WeChatMpTokenModel.lease_until.does_not_exist() | (WeChatMpTokenModel.lease_until < now)
        try:
            WeChatMpTokenModel(appid).update(actions=[
                WeChatMpTokenModel.lease_owner.set(owner), WeChatMpTokenModel.lease_until.set(now + lease_s)],
                condition=same_version & free)
        except UpdateError as error:
            if _failed_condition(error):
                return False
            raise
        return True

    def put_token(self, appid: str, owner: str, sealed: str, expires_at: float, version: int, now: float) -> bool:
        """Store the fetched token as `version`, ending the lease; only while `owner` holds it."""
        try:
            WeChatMpTokenModel(appid).update(actions=[
                WeChatMpTokenModel.token_sealed.set(sealed), WeChatMpTokenModel.expires_at.set(expires_at),
                WeChatMpTokenModel.version.set(version), WeChatMpTokenModel.fetched_at.set(now),
                WeChatMpTokenModel.lease_owner.remove(), WeChatMpTokenModel.lease_until.remove()],
                condition=WeChatMpTokenModel.lease_owner == owner)
        except UpdateError as error:
            if _failed_condition(error):
                return False
            raise
        return True

    def release(self, appid: str, owner: str) -> None:
        """The fetch failed: let the next container try at once instead of after the lease."""
        try:
            WeChatMpTokenModel(appid).update(actions=[
                WeChatMpTokenModel.lease_owner.remove(), WeChatMpTokenModel.lease_until.remove()],
                condition=WeChatMpTokenModel.lease_owner == owner)
        except UpdateError as error:
            if not _failed_condition(error):
                raise
