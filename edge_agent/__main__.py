"""``python -m edge_agent --config FILE``: run the edge agent until SIGTERM or SIGINT.

``--status`` prints what the agent's store holds (offline records by state, every record the cloud
rejected, payments refused offline after an uncertain online attempt and how the cloud settled
each: reversed, never booked, or refused) and exits; it reads the SQLite file only and can run
next to a live agent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from . import event_loop
from .agent import EdgeAgent
from .config import AgentConfig, load_config
from .store import Store

log = logging.getLogger("edge_agent")


async def serve(config: AgentConfig) -> None:
    agent = await EdgeAgent(config).start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, agent.request_stop)
    print(f"edge agent {config.agent_id} listening on {config.listen_host}:{agent.port}, "
          f"cloud {config.cloud_url}, data {config.db_path}, event loop {event_loop.loop_name(config.event_loop)}",
          flush=True)
    await agent.run_until_stopped()  # a signal started stop(); this returns once it is through
    log.info("stopped")


def print_status(config: AgentConfig) -> int:
    if not config.db_path.exists():
        print(f"no store at {config.db_path}")
        return 1
    store = Store.open(config.db_path)
    try:
        counts = store.offline_counts()
        print(f"offline records: {', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'}")
        for row in store.offline_rows("rejected"):
            print(f"  rejected {row.tid}/{row.txn} card {row.card} {row.amount_fen} fen: {row.code}")
        for tid, txn, reason, outcome, detail in store.uncertain_outcomes():
            settled = f"{outcome}{f' ({detail})' if detail else ''}" if outcome else "not settled with the cloud yet"
            print(f"  refused offline after an uncertain online attempt: {tid}/{txn} ({reason}): {settled}")
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent", description="ScanPay edge agent")
    parser.add_argument("--config", required=True, help="JSON or TOML settings (see edge_agent/config.py)")
    parser.add_argument("--status", action="store_true", help="print the store's records and exit")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = load_config(args.config)
    if args.status:
        return print_status(config)
    event_loop.run(serve(config), config.event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
