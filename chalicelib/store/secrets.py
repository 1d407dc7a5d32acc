"""Secrets at rest are sealed with KMS: channel keys, edge agent keys, terminal keys.

Unsealed values are cached for the life of the Lambda container: a KMS Decrypt per request would
add a network round trip and cost to every payment, and the container's memory is where the
plaintext has to be anyway while it signs.
"""
from __future__ import annotations

import base64
import threading
from typing import Protocol

from chalicelib.config import Settings


class Sealer(Protocol):
    def seal(self, plaintext: str, purpose: str) -> str: ...

    def unseal(self, sealed: str, purpose: str) -> str: ...


class KmsSealer:
    def __init__(self, settings: Settings, client: object | None = None) -> None:
        self._key_id = settings.kms_key_id
        self._settings = settings
        self._client = client
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _kms(self):  # type: ignore[no-untyped-def]
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "kms", region_name=self._settings.region, endpoint_url=self._settings.kms_endpoint
            )
        return self._client

    def seal(self, plaintext: str, purpose: str) -> str:
        # The encryption context binds a ciphertext to its use: a sealed terminal key pasted into
        # a channel setting will not decrypt.
        answer = self._kms().encrypt(
            KeyId=self._key_id, Plaintext=plaintext.encode("utf-8"), EncryptionContext={"purpose": purpose}
        )
        return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def unseal(self, sealed: str, purpose: str) -> str:
        key = (sealed, purpose)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        answer = self._kms().decrypt(
            CiphertextBlob=base64.b64decode(sealed), EncryptionContext={"purpose": purpose}
        )
        plaintext = answer["Plaintext"].decode("utf-8")
        with self._lock:
            self._cache[key] = plaintext
        return plaintext


def ensure_local_key(settings: Settings) -> str:
    """Local stack and tests: create the KMS key and its alias once (on AWS, infra/ does)."""
    import boto3

    kms = boto3.client("kms", region_name=settings.region, endpoint_url=settings.kms_endpoint)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    if settings.kms_key_id in aliases:
        return aliases[settings.kms_key_id] or settings.kms_key_id
    key_id = kms.create_key(Description=f"ScanPay {settings.stage} secrets")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=settings.kms_key_id, TargetKeyId=key_id)
    return key_id
