"""Settings from the environment, read once per cold start. Every name has a local default."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    dynamodb_endpoint: str | None  # None on AWS; the local emulator's URL locally and in tests
    kms_key_id: str  # key id or alias sealing channel, edge and terminal secrets
    kms_endpoint: str | None  # None on AWS; locally the same moto server as DynamoDB
    channel_gateway: str | None  # payment platforms' base URL: None on AWS, the sandbox locally
    public_base_url: str  # where platforms and wallets reach the API (notify URLs, aggregated QR)
    qr_order_ttl_s: int  # how long a QR order can be paid
    channel_timeout_s: float
    # Signs the console's statement and operator-setup tokens (api/statements.py). None refuses them all:
    # a deployment that forgot it exposes nothing. Never logged (repr=False keeps it out of reprs).
    statements_token_secret: str | None = field(default=None, repr=False)
    bank_settlement_file_url: str | None = None  # the bank's daily settlement file (reconciliation)
    bank_payout_url: str | None = None  # where payout instructions go (channels/bank_payouts.py)
    # Threads booking a card batch's payments (services/card_batch.py); 1 books them one by one.
    card_batch_workers: int = 8

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        stage = env.get("STAGE", "local")
        return cls(
            stage=stage,
            region=env.get("AWS_DEFAULT_REGION", "ap-east-1"),
            table_prefix=env.get("TABLE_PREFIX", f"scanpay-{stage}-"),
            dynamodb_endpoint=env.get("DYNAMODB_ENDPOINT") or None,
            kms_key_id=env.get("KMS_KEY_ID", f"alias/scanpay-{stage}"),
            kms_endpoint=env.get("KMS_ENDPOINT") or env.get("DYNAMODB_ENDPOINT") or None,
            channel_gateway=env.get("CHANNEL_GATEWAY") or None,
            public_base_url=env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            qr_order_ttl_s=int(env.get("QR_ORDER_TTL_S", "300")),
            channel_timeout_s=float(env.get("CHANNEL_TIMEOUT_S", "5")),
            statements_token_secret=env.get("STATEMENTS_TOKEN_SECRET") or None,
            bank_settlement_file_url=env.get("BANK_SETTLEMENT_FILE_URL") or None,
            bank_payout_url=env.get("BANK_PAYOUT_URL") or None,
            card_batch_workers=max(1, int(env.get("CARD_BATCH_WORKERS", "8"))),
        )
