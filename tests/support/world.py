"""Seeds a dealer, a merchant, a site, an edge agent and terminals with unique ids for one test."""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

from chalicelib.container import Container
from chalicelib.store.registry import ChannelAccount, Registry


@dataclass
class World:
    dealer_id: str
    merchant_id: str
    site_id: str
    agent_id: str
    agent_secret: str
    terminals: dict[str, str] = field(default_factory=dict)  # terminal id -> LOGIN key

    @property
    def terminal_id(self) -> str:
        return next(iter(self.terminals))


def seed_world(container: Container, accounts: list[ChannelAccount] | None = None, scheme: int = 1,
               late_payment_policy: str = "refund", bank_binding: dict | None = None,
               terminal_count: int = 2) -> World:
    tag = uuid.uuid4().hex[:8].upper()
    world = World(f"D{tag}", f"M{tag}", f"S{tag}", f"E{tag}", secrets.token_hex(32))
    registry = Registry(container.sealer, container.clock.now())
    registry.put_dealer(world.dealer_id, f"Dealer {tag}", f"dealer-{tag}", "pw")
    if accounts is None:
        accounts = [ChannelAccount("wechat", "wechat_v2", {"appid": "wx1", "mch_id": "MCH1"}, {"api_key": "k"}),
                    ChannelAccount("alipay", "alipay", {"app_id": "app1"}, {"app_private_key": "k"})]
    registry.put_merchant(world.merchant_id, world.dealer_id, f"Canteen {tag}", scheme, accounts,
                          late_payment_policy=late_payment_policy, bank_binding=bank_binding)
    registry.put_site(world.site_id, world.merchant_id, "Site")
    registry.put_edge_agent(world.agent_id, world.site_id, world.merchant_id, world.agent_secret)
    for n in range(1, terminal_count + 1):
        terminal_id = f"T{tag}{n}"
        world.terminals[terminal_id] = f"key-{terminal_id}"
        registry.put_terminal(terminal_id, world.agent_id, world.merchant_id, world.site_id,
                              world.terminals[terminal_id])
    return world
