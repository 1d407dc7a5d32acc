"""Card payment bench: `python -m bench.cards.run [--quick] [--n N] [--batch B]` (also run by `python -m bench`).

Our own process's CPU per card payment, against the DynamoDB emulator run as a child process (its
CPU is its own), in the same run:
1. through the API as Lambda runs it: a signed POST /edge/v1/cards/pay as an API Gateway proxy
   event handed to app() (authentication, the BatchGetItem, the TransactWriteItems that also
   claims the request's nonce, Chalice routing and the JSON answer);
2. the same through Chalice's test client (which also builds the event and matches the route,
   API Gateway's work in production);
3. through CardPaymentService.pay (the read and the transaction, no HTTP layer);
4. raw boto3: one TransactWriteItems writing the same items as the API (the card update with the
   same condition, the ledger entry, the dedupe record, the nonce record with its condition),
   hand-built dicts, no PynamoDB;
5. raw boto3: the same BatchGetItem and TransactWriteItems (what the service's DynamoDB work costs
   at the least);
6. through the API as Lambda runs it, a signed POST /edge/v1/cards/pay-batch of B payments on B
   different cards (what the edge agent sends under load, edge_agent/card_batch.py), for each B of
   --sizes: one PutItem (the nonce), one BatchGetItem, B TransactWriteItems. Shown per payment;
7. raw boto3 doing the same calls for a batch of the largest B (hand-built dicts).
Prints CPU ms per payment (median and p90 of batches) and the ratios to row 4, the issue's yardstick
(aim: API under 1.5x), and to row 5. Every loop is bounded by --n (and --requests for batches).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core.operations import Meter, Row, _dummy_aws_credentials
from bench.core.stack import start_emulator


PAY = "/edge/v1/cards/pay"
PAY_BATCH = "/edge/v1/cards/pay-batch"


def lambda_event(path: str, headers: dict[str, str], body: bytes) -> dict:
    """An API Gateway proxy event, as chalice.local builds one (the route needs no path parameters)."""
    return {"requestContext": {"httpMethod": "POST", "resourcePath": path, "path": path,
                               "identity": {"sourceIp": "127.0.0.1"}},
            "headers": {k.lower(): v for k, v in headers.items()}, "pathParameters": {}, "stageVariables": {},
            "multiValueQueryStringParameters": None, "body": body.decode()}


def _machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, Python {platform.python_version()}"


class RawPayments:
    """What a card payment writes, as plain boto3 dicts: the yardstick for our own layers."""

    def __init__(self, client, settings, merchant_id: str, card_no: str, account_id: str, cash_fen: int) -> None:  # type: ignore[no-untyped-def]
        from chalicelib.domain.settlement_totals import shard_of
        from chalicelib.store.card_models import CardModel
        from chalicelib.store.models import DedupeModel, LedgerEntryModel
        from chalicelib.store.settlement_totals import SettlementTotalsModel

        self.client, self.merchant_id, self.card_no, self.account_id = client, merchant_id, card_no, account_id
        self.cash_fen = cash_fen
        self.tables = (CardModel.Meta.table_name, LedgerEntryModel.Meta.table_name, DedupeModel.Meta.table_name)
        self.totals_table = SettlementTotalsModel.Meta.table_name
        self.totals_shard = f"card#{shard_of(account_id)}"  # a card payment's totals item (store/settlement_totals.py)
        self.txn = itertools.count(1)

    def items(self, amount_fen: int = 100) -> list[dict]:
        cards, ledger, dedupe = self.tables
        from chalicelib.domain.clock import business_date

        txn, now = next(self.txn), time.time()
        day = business_date(now).isoformat()
        source = f"RAW#{txn}"
        answer = {"ok": True, "code": "OK", "msg": "扣款成功", "voice": "扣款1.00元",
                  "balance_fen": self.cash_fen - amount_fen, "charged_fen": amount_fen}
        update = {"Update": {
            "TableName": cards, "Key": {"card_key": {"S": f"{self.merchant_id}#{self.card_no}"}},
            "UpdateExpression": "ADD #cash :neg, #df :amt, #dc :one SET #u = :now",
            "ConditionExpression": "#st = :st AND #acc = :acc AND #cash = :cash AND #sub = :sub AND #cls = :cls AND #day = :day",
            "ExpressionAttributeNames": {"#cash": "cash_fen", "#df": "day_fen", "#dc": "day_count", "#u": "updated_at",
                                         "#st": "status", "#acc": "account_id", "#sub": "subsidy_fen",
                                         "#cls": "class_code", "#day": "day"},
            "ExpressionAttributeValues": {":neg": {"N": str(-amount_fen)}, ":amt": {"N": str(amount_fen)},
                                          ":one": {"N": "1"}, ":now": {"N": str(now)}, ":st": {"S": "active"},
                                          ":acc": {"S": self.account_id}, ":cash": {"N": str(self.cash_fen)},
                                          ":sub": {"N": "0"}, ":cls": {"S": "default"}, ":day": {"S": day}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
        account = f"card#{self.account_id}"
        entry = {"Put": {"TableName": ledger, "ConditionExpression": "attribute_not_exists(entry_id)", "Item": {
            "account_id": {"S": account}, "entry_id": {"S": f"pay#{source}#cash"},
            "merchant_id": {"S": self.merchant_id}, "merchant_day": {"S": f"{self.merchant_id}#{day}"},
            "entry_ref": {"S": f"{account}|pay#{source}#cash"}, "amount_fen": {"N": str(-amount_fen)},
            "kind": {"S": "CARD_PAYMENT"}, "wallet": {"S": "cash"}, "channel": {"S": "card"},
            "channel_trade_no": {"S": source}, "business_date": {"S": day}, "created_at": {"N": str(now)},
            "card_counters": {"S": f"{day}|"}}}}  # the limit counters the payment moved (a reversal gives them back)
        record = {"Put": {"TableName": dedupe, "ConditionExpression": "attribute_not_exists(dedupe_key)",
                          "ReturnValuesOnConditionCheckFailure": "ALL_OLD", "Item": {
                              "dedupe_key": {"S": f"txn#{source}"}, "kind": {"S": "card_txn"},
                              "ref": {"S": self.account_id}, "answer": {"S": json.dumps(answer)},
                              "request_hash": {"S": "0" * 32}, "created_at": {"N": str(now)}}}}
        nonce = {"Put": {"TableName": dedupe,
                         "ConditionExpression": "attribute_not_exists(dedupe_key) OR expires_at < :now",
                         "ExpressionAttributeValues": {":now": {"N": str(now)}}, "Item": {
                             "dedupe_key": {"S": f"nonce#RAW#{txn}"}, "kind": {"S": "nonce"},
                             "created_at": {"N": str(now)}, "expires_at": {"N": str(now + 600)}}}}
        # The merchant-day's running totals, ADDed in every card transaction since 2026-11-26 (run G on).
        totals = {"Update": {
            "TableName": self.totals_table,
            "Key": {"merchant_day": {"S": f"{self.merchant_id}#{day}"}, "channel_shard": {"S": self.totals_shard}},
            "UpdateExpression": "ADD #a :amt, #c :one",
            "ExpressionAttributeNames": {"#a": "R|card|CARD_PAYMENT|cash|amount_fen",
                                         "#c": "R|card|CARD_PAYMENT|cash|count"},
            "ExpressionAttributeValues": {":amt": {"N": str(-amount_fen)}, ":one": {"N": "1"}}}}
        self.cash_fen -= amount_fen
        return [entry, record, nonce, update, totals]

    def transact(self) -> None:
        self.client.transact_write_items(TransactItems=self.items())

    def read_and_transact(self) -> None:
        cards, _, dedupe = self.tables
        self.client.batch_get_item(RequestItems={
            cards: {"Keys": [{"card_key": {"S": f"{self.merchant_id}#{self.card_no}"}}], "ConsistentRead": True},
            dedupe: {"Keys": [{"dedupe_key": {"S": "txn#RAW#none"}}], "ConsistentRead": True}})
        self.transact()

    def batch(self, card_keys: list[str]) -> None:
        """What a pay-batch of len(card_keys) does at the least: the nonce PutItem, one BatchGetItem of
        the cards and their txns' dedupe records, one TransactWriteItems per payment."""
        cards, _, dedupe = self.tables
        txn, now = next(self.txn), time.time()
        self.client.put_item(
            TableName=dedupe, ConditionExpression="attribute_not_exists(dedupe_key) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(now)}},
            Item={"dedupe_key": {"S": f"nonce#RAWB#{txn}"}, "kind": {"S": "nonce"}, "created_at": {"N": str(now)},
                  "expires_at": {"N": str(now + 600)}})
        self.client.batch_get_item(RequestItems={
            cards: {"Keys": [{"card_key": {"S": k}} for k in card_keys], "ConsistentRead": True},
            dedupe: {"Keys": [{"dedupe_key": {"S": f"txn#RAWB#{txn}#{i}"}} for i in range(len(card_keys))],
                     "ConsistentRead": True}})
        for _ in card_keys:
            self.transact()


@dataclass
class BatchRow:
    """A Meter row of pay-batch requests, shown per payment."""

    row: Row
    size: int

    @property
    def operation(self) -> str:
        return self.row.operation

    @property
    def n(self) -> int:
        return self.row.n * self.size

    @property
    def calls_per_op(self) -> dict[str, float]:
        return {api: count / self.size for api, count in self.row.calls_per_op.items()}

    @property
    def median_ms(self) -> float:
        return self.row.median_ms / self.size

    @property
    def p90_ms(self) -> float:
        return self.row.p90_ms / self.size

    @property
    def first_ms(self) -> float:
        return self.row.first_ms / self.size

    @property
    def thread_ms_total(self) -> float:
        return self.row.thread_ms_total


def run(n: int, batch: int, sizes: tuple[int, ...] = (10, 50), requests: int = 0) -> int:
    _dummy_aws_credentials()
    import boto3
    from chalice.test import Client

    from app import app
    from chalicelib.config import Settings
    from chalicelib.container import Container, install
    from chalicelib.domain.clock import SystemClock
    from chalicelib.services.card_container import card_services
    from chalicelib.store.connection import create_tables, dynamodb_clients
    from chalicelib.store.directory import TerminalInfo
    from chalicelib.store.secrets import ensure_local_key
    from devstack.call_counter import DynamoDBCallCounter
    from tests.support.card_world import issue_card
    from tests.support.edge_client import signed_headers
    from tests.support.world import seed_world

    with tempfile.TemporaryDirectory(prefix="bench-cards-") as tmp:
        emulator = start_emulator(Path(tmp))
        try:
            # CARD_BATCH_WORKERS 1: a pay-batch books its items in the calling thread, whose CPU is what
            # this bench measures (time.thread_time); on the pool, their CPU would go uncounted.
            settings = Settings.from_env({"STAGE": "bench", "AWS_DEFAULT_REGION": "ap-east-1",
                                          "DYNAMODB_ENDPOINT": emulator.url, "CARD_BATCH_WORKERS": "1"})
            container = Container(settings, SystemClock())
            install(container)
            services = card_services(container)
            create_tables()
            ensure_local_key(settings)
            world = seed_world(container)
            meter = Meter(batch)
            clients = dynamodb_clients(settings)
            raw_client = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint)
            meter.counter = DynamoDBCallCounter(clients + [raw_client])
            terminal = TerminalInfo(world.terminal_id, world.agent_id, world.merchant_id, world.site_id, True)
            txns = itertools.count(1)
            cash = 100 * 100 * (n + 1) * 4
            for card in ("1001", "1002", "1003"):
                issue_card(services, world.merchant_id, card, cash_fen=cash)

            def signed() -> tuple[bytes, dict[str, str]]:
                body = json.dumps({"terminal_id": world.terminal_id, "txn": next(txns), "card": "1001",
                                   "amount_fen": 100, "ts": int(time.time())}).encode()
                return body, signed_headers(world.agent_id, world.agent_secret, "POST", PAY, body, time.time())

            def lambda_pay() -> dict:
                body, headers = signed()
                return json.loads(app(lambda_event(PAY, headers, body), None)["body"])

            answers = meter.measure("card payment, API (proxy event to app())", [lambda_pay] * (n + 1))
            with Client(app) as client:
                def client_pay() -> dict:
                    body, headers = signed()
                    return json.loads(client.http.post(PAY, headers=headers, body=body).body)

                answers += meter.measure("card payment, API via Chalice test client", [client_pay] * (n + 1))
            answers += meter.measure("card payment, CardPaymentService.pay", [
                lambda: services.payments.pay(terminal, next(txns), "1002", 100)] * (n + 1))
            # Batches: B different cards per request, as the edge agent's batches mostly are (setup, not measured).
            batch_cards = [f"2{i:04d}" for i in range(max(sizes))]
            # Few requests of a big batch still measure many payments; the emulator (moto copies every
            # table a transaction touches, for its rollback) slows as the tables grow, so keep it bounded.
            requests_of = {size: requests or max(3, n // size) for size in sizes}
            for card in batch_cards:
                issue_card(services, world.merchant_id, card, cash_fen=100 * (sum(requests_of.values()) + len(sizes)))
            batch_rows: list[BatchRow] = []
            for size in sizes:
                def batch_pay(size: int = size) -> dict:
                    items = [{"terminal_id": world.terminal_id, "txn": next(txns), "card": card, "amount_fen": 100,
                              "ts": int(time.time())} for card in batch_cards[:size]]
                    body = json.dumps({"items": items}).encode()
                    headers = signed_headers(world.agent_id, world.agent_secret, "POST", PAY_BATCH, body, time.time())
                    return json.loads(app(lambda_event(PAY_BATCH, headers, body), None)["body"])

                per_request = Meter(1, counter=meter.counter)
                replies = per_request.measure(f"card payments, API pay-batch of {size}",
                                              [batch_pay] * (requests_of[size] + 1))
                answers += [r["body"] for reply in replies for r in reply.get("results", [{"body": reply}])]
                batch_rows.append(BatchRow(per_request.rows[0], size))
            failed = [a for a in answers if a.get("code") != "OK"]
            if failed:
                print(f"payments failed: {failed[:3]}", file=sys.stderr)
                return 1
            raw = RawPayments(raw_client, settings, world.merchant_id, "1003",
                              services.cards.get(world.merchant_id, "1003").account_id, cash)
            services.payments.pay(terminal, next(txns), "1003", 100)  # the counters' day, as in rows 1 and 2
            raw.cash_fen = services.cards.get(world.merchant_id, "1003").cash_fen
            meter.measure("raw boto3 TransactWriteItems, same items", [raw.transact] * (n + 1))
            meter.measure("raw boto3 BatchGetItem + TransactWriteItems", [raw.read_and_transact] * (n + 1))
            size = max(sizes)
            keys = [f"{world.merchant_id}#{card}" for card in batch_cards[:size]]
            per_request = Meter(1, counter=meter.counter)
            per_request.measure(f"raw boto3 pay-batch calls, B = {size}",
                                [lambda: raw.batch(keys)] * (requests_of[size] + 1))
            batch_rows.append(BatchRow(per_request.rows[0], size))
        finally:
            emulator.stop()
    _report(meter, batch_rows)
    return 0


def _report(meter: Meter, batch_rows: list[BatchRow]) -> None:
    print(f"  {'operation':<46}{'N':>5}  {'DynamoDB calls/payment':<52}{'CPU ms/pay median':>17}{'p90':>7}{'1st op':>8}")
    for row in [*meter.rows, *batch_rows]:
        calls = ", ".join(f"{api} {count:.2f}" for api, count in row.calls_per_op.items())
        print(f"  {row.operation:<46}{row.n:>5}  {calls:<52}{row.median_ms:>17.2f}{row.p90_ms:>7.2f}{row.first_ms:>8.1f}")
    api, _, service, raw, raw_rw = (row.median_ms for row in meter.rows)
    print(f"  ratio API / raw TransactWriteItems:            {api / raw:.2f}x  (aim: under 1.5x)")
    print(f"  ratio API / raw BatchGetItem + Transact:       {api / raw_rw:.2f}x")
    print(f"  ratio service / raw TransactWriteItems:        {service / raw:.2f}x")
    print(f"  ratio service / raw BatchGetItem + Transact:   {service / raw_rw:.2f}x")
    *api_batches, raw_batch = batch_rows
    for row in api_batches:
        print(f"  ratio pay-batch of {row.size:<3} / raw TransactWriteItems: {row.median_ms / raw:.2f}x  "
              f"(per payment; / raw pay-batch calls of {raw_batch.size}: {row.median_ms / raw_batch.median_ms:.2f}x)")
    print(f"  CPU over all measured calls: thread {sum(r.thread_ms_total for r in [*meter.rows, *batch_rows]):.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cards.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N (smoke test)")
    parser.add_argument("--n", type=int, default=100, help="measured payments per row")
    parser.add_argument("--batch", type=int, default=10, help="payments per CPU sample")
    parser.add_argument("--sizes", default="10,50", help="pay-batch sizes, comma separated (at most 50)")
    parser.add_argument("--requests", type=int, default=0,
                        help="measured pay-batch requests per size (default: about --n payments, at least 3)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.sizes, args.requests = 4, 2, "2,3", 2
    sizes = tuple(sorted({int(s) for s in args.sizes.split(",")}))
    if not sizes or not all(1 <= s <= 50 for s in sizes):
        parser.error("--sizes: 1 to 50 payments per batch (two keys per payment, one BatchGetItem)")
    print(f"== Card payment bench ({_machine()})", flush=True)
    started = time.monotonic()
    code = run(args.n, args.batch, sizes, max(0, args.requests))
    print(f"== done in {time.monotonic() - started:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
