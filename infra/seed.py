"""Seeds a deployed stage with its first dealer, merchants, sites, edge agents and terminals.

    AWS_PROFILE=... AWS_DEFAULT_REGION=ap-east-1 python -m infra.seed --stage prod seed.json

Secrets (dealer passwords, channel keys, edge agent secrets, terminal keys) come from the JSON file,
never from the command line (shell history, process lists), and are sealed with the stage's KMS
key (alias/scanpay-<stage>) by store/registry.py on the way in, with the same encryption context
the functions use. The file holds plaintext secrets: create it on the operator's machine, keep it
out of the repository and delete it afterwards. Every item is written whole: running the seed again
replaces the items it names (that is how a merchant's channel keys are rotated today).

The document (every list optional; the fields are Registry's arguments):

    {"dealers":     [{"dealer_id", "name", "login", "password"}],
     "providers":   [{"provider_id", "accounts": [ACCOUNT, ...]}],
     "merchants":   [{"merchant_id", "dealer_id", "name", "scheme", "accounts": [ACCOUNT, ...],
                      "bank_binding": {...}, "fee_rate_ppm", "dealer_share_ppm", "late_payment_policy"}],
     "sites":       [{"site_id", "merchant_id", "name"}],
     "edge_agents": [{"agent_id", "site_id", "merchant_id", "secret"}],
     "terminals":   [{"terminal_id", "agent_id", "merchant_id", "site_id", "key", "name"}]}
    ACCOUNT = {"wallet": "wechat" | "alipay", "kind": "wechat_v2" | "wechat_v3" | "alipay",
               "settings": {public settings}, "secrets": {keys, sealed}}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from chalicelib.config import Settings
from chalicelib.store.connection import bind_models
from chalicelib.store.registry import ChannelAccount, Registry
from chalicelib.store.secrets import KmsSealer, Sealer
from infra.tables import kms_alias, table_prefix

# Applied in this order, so that every item's parents exist before it does.
SECTIONS = ("dealers", "providers", "merchants", "sites", "edge_agents", "terminals")


def _accounts(item: dict[str, Any]) -> dict[str, Any]:
    accounts = [ChannelAccount(**account) for account in item.get("accounts", [])]
    return {**item, "accounts": accounts} if "accounts" in item else item


def seed(document: dict[str, Any], registry: Registry) -> dict[str, int]:
    """Writes the document's items; returns how many of each section were written."""
    unknown = set(document) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; expected some of {SECTIONS}")
    writers = {
        "dealers": registry.put_dealer, "providers": registry.put_provider, "merchants": registry.put_merchant,
        "sites": registry.put_site, "edge_agents": registry.put_edge_agent, "terminals": registry.put_terminal,
    }
    counts = {}
    for section in SECTIONS:
        items = document.get(section, [])
        for item in items:
            writers[section](**_accounts(item))
        counts[section] = len(items)
    return counts


def stage_settings(stage: str) -> Settings:
    """The stage's settings as its functions derive them; region (and, for the local stack only,
    DYNAMODB_ENDPOINT) from the environment."""
    return Settings.from_env({
        **os.environ, "STAGE": stage, "TABLE_PREFIX": table_prefix(stage), "KMS_KEY_ID": kms_alias(stage),
    })


def registry_for(settings: Settings, sealer: Sealer | None = None) -> Registry:
    bind_models(settings)
    return Registry(sealer or KmsSealer(settings), clock_now=time.time())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="seed a stage's first dealer, merchants and terminals")
    parser.add_argument("--stage", required=True)
    parser.add_argument("document", type=Path, help="JSON file, see python -m infra.seed --help")
    args = parser.parse_args(argv)
    document = json.loads(args.document.read_text(encoding="utf-8"))
    counts = seed(document, registry_for(stage_settings(args.stage)))
    print(", ".join(f"{count} {section}" for section, count in counts.items() if count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
