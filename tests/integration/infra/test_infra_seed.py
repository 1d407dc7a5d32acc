"""infra/seed.py against the local DynamoDB + KMS: secrets arrive sealed, with the functions' context."""
from __future__ import annotations

import json

from chalicelib.config import Settings
from chalicelib.store.directory import CHANNEL_PURPOSE, EDGE_PURPOSE, TERMINAL_PURPOSE
from chalicelib.store.models import DealerModel, EdgeAgentModel, MerchantModel, TerminalModel
from chalicelib.store.secrets import KmsSealer
from infra.seed import registry_for, seed

DOCUMENT = {
    "dealers": [{"dealer_id": "seed-dealer", "name": "Seed Dealer", "login": "seed", "password": "seed-password"}],
    "merchants": [{
        "merchant_id": "seed-canteen", "dealer_id": "seed-dealer", "name": "Seed Canteen", "scheme": 1,
        "accounts": [{"wallet": "wechat", "kind": "wechat_v3", "settings": {"appid": "wx-seed", "mchid": "1900000001"},
                      "secrets": {"apiv3_key": "seed-apiv3-key"}}],
    }],
    "sites": [{"site_id": "seed-site", "merchant_id": "seed-canteen", "name": "Hall 1"}],
    "edge_agents": [{"agent_id": "seed-agent", "site_id": "seed-site", "merchant_id": "seed-canteen",
                     "secret": "seed-agent-secret"}],
    "terminals": [{"terminal_id": "TSEED1", "agent_id": "seed-agent", "merchant_id": "seed-canteen",
                   "site_id": "seed-site", "key": "seed-terminal-key"}],
}


def test_seed_writes_every_section_and_seals_every_secret(settings: Settings) -> None:
    counts = seed(DOCUMENT, registry_for(settings))
    assert counts == {"dealers": 1, "providers": 0, "merchants": 1, "sites": 1, "edge_agents": 1, "terminals": 1}

    stored = json.dumps([
        DealerModel.get("seed-dealer").attribute_values, MerchantModel.get("seed-canteen").attribute_values,
        EdgeAgentModel.get("seed-agent").attribute_values, TerminalModel.get("TSEED1").attribute_values,
    ], default=str)
    for secret in ("seed-password", "seed-apiv3-key", "seed-agent-secret", "seed-terminal-key"):
        assert secret not in stored

    sealer = KmsSealer(settings)
    channel = MerchantModel.get("seed-canteen").channels["wechat"]
    assert json.loads(sealer.unseal(channel["sealed"], CHANNEL_PURPOSE)) == {"apiv3_key": "seed-apiv3-key"}
    assert sealer.unseal(EdgeAgentModel.get("seed-agent").secret_sealed, EDGE_PURPOSE) == "seed-agent-secret"
    assert sealer.unseal(TerminalModel.get("TSEED1").key_sealed, TERMINAL_PURPOSE) == "seed-terminal-key"
