"""The two command lines: ``python -m edge_agent --config FILE`` (a TOML file here) and the terminal
simulator, as separate processes talking TCP and HTTP on loopback."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from edge_agent.simulator.client import TerminalClient
from edge_agent.simulator.stub_cloud import StubCloud, StubCloudThread

ROOT = Path(__file__).resolve().parents[3]
TERMINALS = {"T0001": "demo-key-T0001", "T0002": "demo-key-T0002"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _logged_in_once(port: int) -> None:
    async with asyncio.timeout(20):
        while True:
            async with TerminalClient("127.0.0.1", port, "T0001", TERMINALS["T0001"]) as client:
                if (await client.login())["ok"]:
                    return
            await asyncio.sleep(0.05)


def _simulator(port: int, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "edge_agent.simulator", "--port", str(port), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_agent_and_simulator_command_lines(tmp_path: Path) -> None:
    cloud = StubCloud("E-DEMO", "demo-edge-secret", TERMINALS)
    cloud.state.cards = {"10000001": 10_000, "10000002": 10_000}
    thread = StubCloudThread(cloud).start()
    port = _free_port()
    config = tmp_path / "agent.toml"
    config.write_text(f'agent_id = "E-DEMO"\nagent_secret = "demo-edge-secret"\ncloud_url = "{cloud.url}"\n'
                      f'listen_host = "127.0.0.1"\nlisten_port = {port}\ndata_dir = "{tmp_path / "data"}"\n')
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "--log-level", "WARNING"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening on 127.0.0.1" in (agent.stdout.readline() if agent.stdout else "")
        asyncio.run(_logged_in_once(port))  # the terminal list has come from the cloud
        out = _simulator(port, "--tid", "T0001", "swipe", "--card", "10000001", "--amount", "1250", "--txn", "7")
        assert 'LOGIN {"ok": true' in out and '"balance_fen": 8750' in out
        out = _simulator(port, "--tid", "T0001", "qr", "--amount", "500", "--wait", "0")
        assert 'QR_CREATE {"txn"' in out and "█" in out  # the QR, drawn in block characters
        script = tmp_path / "script.txt"
        script.write_text("# one connection, three commands\nswipe --card 10000002 --amount 100 --txn 9\n"
                          "swipe --card 10000002 --amount 100 --txn 9\nupload --record 11:10000001:300:1795000000\n")
        out = _simulator(port, "--tid", "T0002", "script", str(script))
        assert out.count('"balance_fen": 9900') == 2 and 'OFFLINE_UPLOAD {"accepted": [11]' in out
        out = _simulator(port, "load", "--terminals", "2", "--ops", "5", "--card", "10000001")
        assert "2 terminals x 5 swipes: 10 answered" in out and "latency p50" in out
        assert thread.call(lambda c: c.state.cards["10000001"], cloud) == 10_000 - 1250 - 300 - 10
    finally:
        agent.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = agent.wait(15)
        thread.stop()
    assert code == 0 and time.monotonic() - started < 10
    status = subprocess.run([sys.executable, "-m", "edge_agent", "--config", str(config), "--status"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and "offline records: accepted 1" in status.stdout
