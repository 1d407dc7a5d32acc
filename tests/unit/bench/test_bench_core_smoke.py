"""The cloud-core benches run end to end with a tiny N and print their figures.

Each runs as `make bench` runs it: a process of its own, with the emulator and the sandbox as
further processes. The two quick runs go in parallel to keep this test short. What is asserted is
the shape of the report and the DynamoDB call counts it prints (counts are behaviour; times are
not asserted, only that they are printed).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
RATIO = re.compile(r"ratio app\.py / bare\s+\d+\.\d\dx\s+\d+\.\d\dx\s+\d+\.\d\dx")
CALLS = {
    "create QR, aggregated (no channel call)": "GetItem 1.00, TransactWriteItems 1.00",
    "create QR, wechat, FakeChannel": "GetItem 1.00, TransactWriteItems 1.00",
    "notification, FakeChannel": "GetItem 1.00, TransactWriteItems 1.00",
    "notification repeat, FakeChannel": "GetItem 1.00",
}
KINDS = ("wechat_v2", "wechat_v3", "alipay")
SANDBOX_CALLS = {f"create QR, {kind} via sandbox": "GetItem 1.00, TransactWriteItems 1.00" for kind in KINDS} | {
    f"notification, {kind} (sandbox-signed)": "GetItem 1.00, TransactWriteItems 1.00" for kind in KINDS
} | {"notification repeat, wechat_v2": "GetItem 1.00"}


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(process: subprocess.Popen[str], timeout_s: float = 90) -> str:
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.terminate()  # the bench stops its emulator and sandbox on SIGTERM
        output, _ = process.communicate(timeout=30)
        raise AssertionError(f"bench did not finish in {timeout_s} s:\n{output}") from None
    assert process.returncode == 0, output
    return output


def _rows(output: str) -> dict[str, tuple[int, str]]:
    """operation -> (N, DynamoDB calls/op), from the printed table, once the times parse as numbers."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r"\s+(.+?)\s{2,}(\d+)  (.+?)\s{2,}(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d)$", line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), match.group(3))
    return rows


def test_quick_runs_print_import_ratio_lazy_sdks_and_calls_per_operation() -> None:
    imports = _start("bench.core.run", "--quick", "--skip-ops")
    operations = _start("bench.core.run", "--quick", "--skip-imports")
    import_output, ops_output = _finish(imports), _finish(operations)

    assert RATIO.search(import_output), import_output
    assert "-X importtime: self time by top-level package" in import_output
    assert "OK: no payment SDK (wechatpy, wechatpayv3, alipay)" in import_output
    assert "FAIL" not in import_output
    assert _rows(ops_output) == {operation: (4, calls) for operation, calls in (CALLS | SANDBOX_CALLS).items()}, \
        ops_output
    assert "whole process (all threads" in ops_output
    assert re.search(r"Store clients .*: \d+ in \d+ ms CPU", ops_output), ops_output
