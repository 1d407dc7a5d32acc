"""DynamoDB calls per operation, counted with botocore event hooks on the store's real clients.

Counts are for a warm Lambda container: the directory (merchant, terminal, channel settings) is
cached per container, so the first request of a container reads those once more.
"""
from __future__ import annotations

from chalicelib.store.connection import dynamodb_clients
from chalicelib.store.directory import TerminalInfo
from devstack.call_counter import DynamoDBCallCounter


def _terminal(world) -> TerminalInfo:  # type: ignore[no-untyped-def]
    return TerminalInfo(world.terminal_id, world.agent_id, world.merchant_id, world.site_id, True)


def test_creating_an_order_is_one_read_and_one_write(container, world, settings) -> None:
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    service = container.order_service
    service.create_qr_order(_terminal(world), 1, 100, None)  # warms the directory cache
    counter.reset()
    service.create_qr_order(_terminal(world), 2, 100, None)
    assert counter.snapshot() == {"GetItem": 1, "TransactWriteItems": 1}
    counter.reset()
    service.create_qr_order(_terminal(world), 3, 100, "wechat")  # with the channel call
    assert counter.snapshot() == {"GetItem": 1, "TransactWriteItems": 1}
    counter.reset()
    service.create_qr_order(_terminal(world), 3, 100, "wechat")  # a retry: one read, no write
    assert counter.snapshot() == {"GetItem": 1}


def test_applying_a_notification_is_one_transaction_and_one_read(container, world, settings, fake_channels) -> None:
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    service = container.order_service
    first = service.create_qr_order(_terminal(world), 1, 100, "wechat")
    second = service.create_qr_order(_terminal(world), 2, 100, "wechat")
    channel = fake_channels.by_wallet["wechat"]
    for answer in (first, second):
        channel.pay(answer["order_id"])
    container.notifications.handle("wechat_v2", world.merchant_id, *channel.notification(first["order_id"]))
    counter.reset()
    reply = container.notifications.handle("wechat_v2", world.merchant_id, *channel.notification(second["order_id"]))
    assert reply.status == 200
    assert counter.snapshot() == {"GetItem": 1, "TransactWriteItems": 1}
    counter.reset()
    container.notifications.handle("wechat_v2", world.merchant_id, *channel.notification(second["order_id"]))
    assert counter.snapshot() == {"GetItem": 1}  # a repeat is answered from the order alone
