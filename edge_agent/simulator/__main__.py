"""``python -m edge_agent.simulator``: a terminal on the command line, speaking protocol.md.

One command per call, or several in a row on one connection (``script``)::

    python -m edge_agent.simulator --tid T0001 --key demo-key-T0001 login
    python -m edge_agent.simulator --tid T0001 --key demo-key-T0001 swipe --card 10000001 --amount 1250
    python -m edge_agent.simulator --tid T0001 --key demo-key-T0001 qr --amount 1250 --wait 120
    python -m edge_agent.simulator --tid T0001 --key demo-key-T0001 scan --amount 990 --code 134567890123456789
    python -m edge_agent.simulator --tid T0001 --key demo-key-T0001 query --txn 1700000000123
    python -m edge_agent.simulator --tid T0001 --key demo-key-T0001 upload --record 17:10000001:300:1795000000
    python -m edge_agent.simulator --tid T0001 --key demo-key-T0001 script FILE   # one command a line
    python -m edge_agent.simulator load --terminals 100 --ops 50 --card 10000001

Every command logs in first. ``qr`` draws the QR as text and waits for the PAY_RESULT push. ``load``
logs in N terminals (ids ``--tid-format``, keys ``--key-format``) that swipe M times each, and
prints a latency histogram. Answers are printed as JSON, one a line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from typing import Any

from ..protocol import Command
from .client import TerminalClient
from .load import histogram, percentile, run_load
from .qr_text import qr_as_text


def _print(label: str, body: Any) -> None:
    print(f"{label} {json.dumps(body, ensure_ascii=False)}", flush=True)


def _record(text: str) -> dict[str, Any]:
    txn, card, amount, ts = text.split(":")
    return {"txn": int(txn), "card": card, "amount_fen": int(amount), "ts": int(ts)}


def _command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="command", add_help=False)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("login")
    sub.add_parser("heartbeat")
    swipe = sub.add_parser("swipe")
    swipe.add_argument("--card", required=True)
    swipe.add_argument("--amount", type=int, required=True, help="fen")
    swipe.add_argument("--txn", type=int)
    qr = sub.add_parser("qr")
    qr.add_argument("--amount", type=int, required=True)
    qr.add_argument("--txn", type=int)
    qr.add_argument("--wait", type=float, default=120.0, help="seconds to wait for PAY_RESULT (0: do not wait)")
    cancel = sub.add_parser("cancel")
    cancel.add_argument("--txn", type=int, required=True)
    scan = sub.add_parser("scan")
    scan.add_argument("--amount", type=int, required=True)
    scan.add_argument("--code", required=True, help="the consumer's payment code")
    scan.add_argument("--txn", type=int)
    query = sub.add_parser("query")
    query.add_argument("--txn", type=int, required=True)
    upload = sub.add_parser("upload")
    upload.add_argument("--record", action="append", required=True, help="TXN:CARD:AMOUNT_FEN:TS")
    wait = sub.add_parser("wait-push", help="wait for pushes and acknowledge them")
    wait.add_argument("--seconds", type=float, default=10.0)
    return parser


async def run_command(client: TerminalClient, argv: list[str]) -> None:
    args = _command_parser().parse_args(argv)
    txn = getattr(args, "txn", None) or TerminalClient.next_txn()
    if args.command == "login":
        return  # done by the caller
    if args.command == "heartbeat":
        _print("HEARTBEAT", await client.heartbeat())
    elif args.command == "swipe":
        _print("CARD_PAY", await client.card_pay(txn, args.card, args.amount))
    elif args.command == "qr":
        answer = await client.qr_create(txn, args.amount)
        _print("QR_CREATE", answer)
        if answer.get("ok"):
            print(qr_as_text(answer["qr"]), flush=True)
            if args.wait > 0:
                push = await client.next_push(Command.PAY_RESULT, timeout=args.wait)
                _print("PAY_RESULT", push.body)
    elif args.command == "cancel":
        _print("QR_CANCEL", await client.qr_cancel(args.txn))
    elif args.command == "scan":
        _print("SCAN_PAY", await client.scan_pay(txn, args.amount, args.code))
    elif args.command == "query":
        _print("QUERY", await client.query(args.txn))
    elif args.command == "upload":
        _print("OFFLINE_UPLOAD", await client.offline_upload([_record(r) for r in args.record]))
    elif args.command == "wait-push":
        try:
            while True:
                push = await client.next_push(timeout=args.seconds)
                _print(push.cmd.name, push.body)
        except TimeoutError:
            pass


async def run_session(host: str, port: int, tid: str, key: str, commands: list[list[str]]) -> int:
    async with TerminalClient(host, port, tid, key) as client:
        login = await client.login()
        _print("LOGIN", login)
        if not login.get("ok"):
            return 1
        for argv in commands:
            await run_command(client, argv)
    return 0


async def run_load_command(args: argparse.Namespace) -> int:
    keys = {args.tid_format.format(n=n): args.key_format.format(tid=args.tid_format.format(n=n))
            for n in range(1, args.terminals + 1)}
    result = await run_load(args.host, args.port, keys, args.ops, cards=args.card or ["10000001"],
                            amount_fen=args.amount, interval_s=args.interval)
    lat = result.latencies_s
    print(f"{result.terminals} terminals x {result.ops} swipes: {len(lat)} answered ({result.offline} offline, "
          f"refused {result.refused or 0}), {result.failures} unanswered, {result.rate:.0f} swipes/s over "
          f"{result.seconds:.2f} s")
    print(f"latency p50 {percentile(lat, 0.5) * 1000:.2f} ms, p90 {percentile(lat, 0.9) * 1000:.2f} ms, "
          f"p99 {percentile(lat, 0.99) * 1000:.2f} ms, max {max(lat, default=0) * 1000:.2f} ms")
    print(histogram(lat))
    return 0 if result.failures == 0 and not result.refused else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--tid", default="T0001")
    parser.add_argument("--key", default=None, help="LOGIN key (default demo-key-<tid>)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="a command (see above)")
    args = parser.parse_args(argv)
    if not args.rest:
        parser.error("a command is required")
    if args.rest[0] == "load":
        load = argparse.ArgumentParser(prog="load")
        load.add_argument("--terminals", type=int, default=10)
        load.add_argument("--ops", type=int, default=100)
        load.add_argument("--card", action="append")
        load.add_argument("--amount", type=int, default=1)
        load.add_argument("--interval", type=float, default=0.0, help="seconds between a terminal's swipes")
        load.add_argument("--tid-format", default="T{n:04d}")
        load.add_argument("--key-format", default="demo-key-{tid}")
        loaded = load.parse_args(args.rest[1:])
        loaded.host, loaded.port = args.host, args.port
        return asyncio.run(run_load_command(loaded))
    key = args.key or f"demo-key-{args.tid}"
    if args.rest[0] == "script":
        with open(args.rest[1], encoding="utf-8") as script:
            commands = [shlex.split(line) for line in script if line.strip() and not line.startswith("#")]
    else:
        commands = [args.rest]
    return asyncio.run(run_session(args.host, args.port, args.tid, key, commands))


if __name__ == "__main__":
    sys.exit(main())
