"""Cold import of app.py against a bare Chalice + PynamoDB app (bench/core/bare_app.py).

Each run is a fresh interpreter (`python -c "import app"`), as a Lambda cold start is. The .pyc
files are present, as in the deployment package, which ships precompiled bytecode: the children
run with PYTHONPYCACHEPREFIX set to a temporary directory and without PYTHONDONTWRITEBYTECODE (set
on the development machines; with it, our own modules would be compiled from source on every run
while the libraries' .pyc from pip are used), and one discarded warm-up run per target writes the
bytecode there. The repository tree gets no __pycache__ from this. The targets alternate run by
run so that the machine's load at any moment weighs on all of them alike.

The child times only the import statement (perf_counter and process_time around it); the parent
also times the whole process (interpreter start + import + exit). `-X importtime` runs give the
breakdown by top-level package and, for any payment SDK found in sys.modules, the chain of
imports that brought it in: payment SDKs must be imported lazily, on a merchant's first payment.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median

from bench.core.stack import REPO

APP, BARE, BARE_NO_SSL = "app.py", "bare Chalice+PynamoDB", "bare, pyOpenSSL hidden"
# label -> (statement run before the clock starts, module imported). The third target is for
# information: botocore imports pyOpenSSL (and with it cryptography) whenever it is installed, and
# python-alipay-sdk installs it; hiding it shows what that costs every cold start, ours or not.
TARGETS = {
    APP: ("pass", "app"),
    BARE: ("pass", "bench.core.bare_app"),
    BARE_NO_SSL: ("sys.modules['OpenSSL'] = None", "bench.core.bare_app"),
}

# The SDKs themselves: none may be in sys.modules after `import app`.
PAYMENT_SDKS = ("wechatpy", "wechatpayv3", "alipay")
# Their crypto libraries: Cryptodome (pycryptodomex, python-alipay-sdk), OpenSSL (pyOpenSSL, required
# by python-alipay-sdk), cryptography (wechatpy, wechatpayv3). Allowed only when the bare app loads
# them too, i.e. when the stack itself (not our code) imports them.
CRYPTO_LIBS = ("Cryptodome", "Crypto", "OpenSSL", "cryptography")
OUR_ROOTS = ("app", "chalicelib")

_CHILD = (
    "import sys, time\n"
    "{prelude}\n"
    "t0 = time.perf_counter(); c0 = time.process_time()\n"
    "import {module}\n"
    "t1 = time.perf_counter(); c1 = time.process_time()\n"
    "print(t1 - t0, c1 - c0)\n"
    "print('\\n'.join(sorted(sys.modules)))\n"
)


@dataclass
class ImportEntry:
    depth: int
    name: str
    self_us: int
    cumulative_us: int


@dataclass
class TargetFigures:
    import_wall_s: list[float] = field(default_factory=list)
    import_cpu_s: list[float] = field(default_factory=list)
    process_wall_s: list[float] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)
    by_package_us: list[dict[str, int]] = field(default_factory=list)  # one per -X importtime run
    ours_us: list[dict[str, int]] = field(default_factory=list)  # our modules' self time, one per run
    entries: list[ImportEntry] = field(default_factory=list)  # of the last -X importtime run


@dataclass
class ImportReport:
    figures: dict[str, TargetFigures]
    sdk_lines: list[str]
    lazy_ok: bool  # no payment SDK (nor a crypto library the bare app does without) after import app


Env = dict[str, str] | None  # the children's environment (None: this process's)


def _python(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=True, env=env)


def _timed_run(env: Env, prelude: str, module: str, figures: TargetFigures) -> None:
    started = time.perf_counter()
    out = _python(env, "-c", _CHILD.format(prelude=prelude, module=module)).stdout.splitlines()
    figures.process_wall_s.append(time.perf_counter() - started)
    wall, cpu = (float(x) for x in out[0].split())
    figures.import_wall_s.append(wall)
    figures.import_cpu_s.append(cpu)
    figures.modules = set(out[1:])


def parse_importtime(stderr: str) -> list[ImportEntry]:
    """Lines `import time: <self us> | <cumulative us> | <2 spaces per depth><module>`, in the order
    imports finished (a module's own imports are listed before it)."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name_field = line[len("import time:"):].split("|")
        indent = len(name_field) - len(name_field.lstrip(" "))
        entries.append(ImportEntry((indent - 1) // 2, name_field.strip(), int(self_us), int(cumulative_us)))
    return entries


def import_chain(entries: list[ImportEntry], module: str) -> list[str]:
    """Who imported `module`: from the top-level import down to it. The importer of an entry is the
    next entry listed one level shallower. A package importing its own submodule shows up as a
    loop (a.b -> a -> a.b); loops are cut so that the chain reads as one path."""
    index = next((i for i, e in enumerate(entries) if e.name == module), None)
    if index is None:
        return []
    chain = [entries[index].name]
    depth = entries[index].depth
    for entry in entries[index + 1:]:
        if depth == 0:
            break
        if entry.depth == depth - 1:
            chain.append(entry.name)
            depth -= 1
    path: list[str] = []
    for name in reversed(chain):
        path = path[:path.index(name) + 1] if name in path else path + [name]
    return path


def importer_of(chain: list[str], root: str) -> str | None:
    """The module outside `root` that imported it first: the one whose import this is."""
    outside = [name for name in chain if name.split(".")[0] != root]
    return outside[-1] if outside else None


def _short(chain: list[str]) -> str:
    """The chain from our last module on (the part that explains the import)."""
    ours = [i for i, name in enumerate(chain) if name.split(".")[0] in OUR_ROOTS]
    start = ours[-1] if ours else 0
    return ("... -> " if start else "") + " -> ".join(chain[start:])


def self_time_by_package(entries: list[ImportEntry]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for entry in entries:
        totals[entry.name.split(".")[0]] += entry.self_us
    return dict(totals)


def _importtime_run(env: Env, prelude: str, module: str, figures: TargetFigures) -> None:
    code = f"import sys; {prelude}; import {module}"
    entries = parse_importtime(_python(env, "-X", "importtime", "-c", code).stderr)
    figures.entries = entries
    figures.by_package_us.append(self_time_by_package(entries))
    figures.ours_us.append({e.name: e.self_us for e in entries if e.name.split(".")[0] in OUR_ROOTS})


def _roots(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(names))


def _first_module(entries: list[ImportEntry], root: str) -> str:
    names = [e.name for e in entries if e.name.split(".")[0] == root]
    return root if root in names else (names[0] if names else root)


def check_lazy_sdks(app: TargetFigures, bare: TargetFigures) -> tuple[list[str], bool]:
    """Lines for the report, and whether the payment SDKs stayed out of `import app`. A library is
    ours to blame when the module that imported it is ours (app or chalicelib)."""
    lines, ok = [], True
    sdks = _roots(app.modules, PAYMENT_SDKS)
    if not sdks:
        lines.append(f"OK: no payment SDK ({', '.join(PAYMENT_SDKS)}) in sys.modules after `import app`")
    for root in sdks:
        ok = False
        chain = import_chain(app.entries, _first_module(app.entries, root))
        lines.append(f"FAIL: payment SDK {root} imported eagerly by {importer_of(chain, root)}: {_short(chain)}")
    for root in _roots(app.modules, CRYPTO_LIBS):
        chain = import_chain(app.entries, _first_module(app.entries, root))
        importer = importer_of(chain, root) or "?"
        if importer.split(".")[0] in OUR_ROOTS:
            ok = False
            lines.append(f"FAIL: {root} imported eagerly by our {importer}: {_short(chain)}")
        elif root not in _roots(bare.modules, CRYPTO_LIBS):
            ok = False
            lines.append(f"FAIL: {root} loaded by `import app` but not by the bare app; "
                         f"imported by {importer}: {_short(chain)}")
        else:
            lines.append(f"note: {root} is loaded by the bare app too; imported by {importer}: {_short(chain)}")
    return lines, ok


def run_import_bench(runs: int, importtime_runs: int, quick: bool = False) -> ImportReport:
    """`quick` (smoke tests): app.py and the bare app only, in the environment as it is, no warm-up
    run; the figures then may include compiling to bytecode and mean nothing."""
    if quick:
        return _run_import_bench(None, runs, importtime_runs, quick)
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return _run_import_bench(env | {"PYTHONPYCACHEPREFIX": pycache}, runs, importtime_runs, quick)


def _run_import_bench(env: Env, runs: int, importtime_runs: int, quick: bool) -> ImportReport:
    targets = {label: TARGETS[label] for label in ((APP, BARE) if quick else TARGETS)}
    figures = {label: TargetFigures() for label in targets}
    if not quick:
        for _prelude, module in targets.values():
            _python(env, "-c", f"import {module}")  # writes the .pyc files: the deployment ships them
    for _ in range(runs):
        for label, (prelude, module) in targets.items():
            _timed_run(env, prelude, module, figures[label])
    for _ in range(importtime_runs):
        for label, (prelude, module) in targets.items():
            _importtime_run(env, prelude, module, figures[label])
    app, bare = figures[APP], figures[BARE]
    lines, ok = check_lazy_sdks(app, bare)
    return ImportReport(figures, lines, ok)


def _ms(values: list[float]) -> float:
    return median(values) * 1000


def format_import_report(report: ImportReport, top: int = 10) -> str:
    app, bare = report.figures[APP], report.figures[BARE]
    runs = len(app.import_wall_s)
    out = [f"Cold import: fresh interpreter per run, all bytecode precompiled; median of {runs} runs per target, "
           "interleaved",
           f"  {'target':<24}{'import wall ms':>16}{'import CPU ms':>15}{'process wall ms':>17}{'modules':>9}"]
    for label, fig in report.figures.items():
        out.append(f"  {label:<24}{_ms(fig.import_wall_s):>16.1f}{_ms(fig.import_cpu_s):>15.1f}"
                   f"{_ms(fig.process_wall_s):>17.1f}{len(fig.modules):>9}")
    out.append(f"  {'ratio app.py / bare':<24}{_ms(app.import_wall_s) / _ms(bare.import_wall_s):>15.2f}x"
               f"{_ms(app.import_cpu_s) / _ms(bare.import_cpu_s):>14.2f}x"
               f"{_ms(app.process_wall_s) / _ms(bare.process_wall_s):>16.2f}x")
    out.append(f"-X importtime: self time by top-level package (wall clock: noisy under load), median of "
               f"{len(app.by_package_us)} run(s), top {top} for app.py")
    out.append(f"  {'package':<24}{'app.py ms':>12}{'bare ms':>10}")

    def med(runs_: list[dict[str, int]], name: str) -> float:
        return median(r.get(name, 0) for r in runs_) / 1000 if runs_ else 0.0

    packages = sorted({p for r in app.by_package_us for p in r}, key=lambda p: -med(app.by_package_us, p))
    for package in packages[:top]:
        app_ms, bare_ms = med(app.by_package_us, package), med(bare.by_package_us, package)
        out.append(f"  {package:<24}{app_ms:>12.1f}{bare_ms:>10.1f}")
    ours = sum(med(app.by_package_us, p) for p in OUR_ROOTS)
    out.append(f"  {'(our code: app+chalicelib)':<24}{ours:>12.1f}")
    modules = sorted({m for r in app.ours_us for m in r}, key=lambda m: -med(app.ours_us, m))
    out.append(f"  our {len(modules)} modules, slowest (self ms): "
               + ", ".join(f"{m} {med(app.ours_us, m):.1f}" for m in modules[:5]))
    out.append("Lazy payment SDKs:")
    out.extend(f"  {line}" for line in report.sdk_lines)
    return "\n".join(out)
