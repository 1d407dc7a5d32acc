from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig, OfflineLimits, load_config

REQUIRED = {"agent_id": "E-1", "agent_secret": "s", "cloud_url": "http://127.0.0.1:8000"}


def test_json_and_toml_give_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({**REQUIRED, "listen_port": 9200,
                                                 "offline_limits": {"max_payment_fen": 1500}}))
    (tmp_path / "a.toml").write_text('agent_id = "E-1"\nagent_secret = "s"\ncloud_url = "http://127.0.0.1:8000"\n'
                                     'listen_port = 9200\n[offline_limits]\nmax_payment_fen = 1500\n')
    from_json, from_toml = load_config(tmp_path / "a.json"), load_config(tmp_path / "a.toml")
    assert from_json == from_toml
    assert from_json.listen_port == 9200 and from_json.card_pay_deadline_s == 0.8
    assert from_json.offline_limits == OfflineLimits(max_payment_fen=1500)


@pytest.mark.parametrize("values", [
    {"agent_id": "E-1", "agent_secret": "s"},  # no cloud_url
    {**REQUIRED, "listen_prot": 1},  # a typo is an error, not a silent default
    {**REQUIRED, "card_pay_deadline_s": 1.5},  # protocol.md answers CARD_PAY within 1 s
    {**REQUIRED, "card_pay_batch_items": 101},  # the cloud's pay-batch takes at most 100
    {**REQUIRED, "card_pay_calls_in_flight": 0},
    {**REQUIRED, "offline_limits": {"max_payment_fen": -1}},
    {**REQUIRED, "offline_limits": {"max_payment_fen": 12.5}},  # no float near money
])
def test_bad_config_is_refused(values: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        AgentConfig.from_dict(values)
