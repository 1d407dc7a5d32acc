"""The cold-import bench's reading of `-X importtime` output: who imported a library, and whose
fault an eager import is."""
from __future__ import annotations

from bench.core.imports import TargetFigures, check_lazy_sdks, import_chain, importer_of, parse_importtime

# As CPython prints it: a module's own imports are listed before it, two spaces deeper.
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |           OpenSSL.SSL
import time:        50 |        150 |         urllib3.contrib.pyopenssl
import time:        20 |        170 |       botocore.httpsession
import time:        10 |        180 |     pynamodb.models
import time:         5 |          5 |       wechatpy.pay
import time:         5 |         10 |     wechatpy
import time:         7 |         17 |   chalicelib.channels.wechat_v2
import time:        30 |        227 | app
"""


def test_entries_keep_depth_and_times() -> None:
    entries = parse_importtime(IMPORTTIME)
    assert [(e.depth, e.name, e.self_us) for e in entries][:2] == [(5, "OpenSSL.SSL", 100),
                                                                  (4, "urllib3.contrib.pyopenssl", 50)]
    assert entries[-1].depth == 0 and entries[-1].cumulative_us == 227


def test_chain_runs_from_the_top_level_import_down() -> None:
    entries = parse_importtime(IMPORTTIME)
    assert import_chain(entries, "wechatpy.pay") == ["app", "chalicelib.channels.wechat_v2", "wechatpy",
                                                     "wechatpy.pay"]
    assert importer_of(import_chain(entries, "wechatpy"), "wechatpy") == "chalicelib.channels.wechat_v2"


def test_a_package_importing_its_own_submodule_is_not_a_loop_in_the_chain() -> None:
    text = """\
import time:         1 |          1 |       a.b
import time:         1 |          2 |     a
import time:         1 |          3 |   a.b
import time:         1 |          4 | top
"""
    assert import_chain(parse_importtime(text), "a.b") == ["top", "a.b"]


def test_a_crypto_library_our_module_imports_fails_even_when_the_bare_app_loads_it() -> None:
    text = """\
import time:        10 |         10 |     cryptography
import time:         5 |         15 |   chalicelib.domain.edge_auth
import time:         5 |         20 | app
"""
    app = TargetFigures(modules={"app", "cryptography"}, entries=parse_importtime(text))
    lines, ok = check_lazy_sdks(app, TargetFigures(modules={"cryptography"}))
    assert not ok
    assert lines[1] == "FAIL: cryptography imported eagerly by our chalicelib.domain.edge_auth: " \
                       "... -> chalicelib.domain.edge_auth -> cryptography"


def test_an_sdk_imported_by_our_code_fails_and_names_the_importer() -> None:
    entries = parse_importtime(IMPORTTIME)
    app = TargetFigures(modules={"app", "wechatpy", "wechatpy.pay", "OpenSSL", "OpenSSL.SSL"}, entries=entries)
    bare = TargetFigures(modules={"OpenSSL", "OpenSSL.SSL"})
    lines, ok = check_lazy_sdks(app, bare)
    assert not ok
    assert any(line.startswith("FAIL: payment SDK wechatpy imported eagerly by chalicelib.channels.wechat_v2")
               for line in lines)
    assert any(line.startswith("note: OpenSSL is loaded by the bare app too; imported by urllib3.contrib.pyopenssl")
               for line in lines)


def test_a_crypto_library_the_bare_app_does_without_fails() -> None:
    entries = parse_importtime(IMPORTTIME)
    app = TargetFigures(modules={"app", "OpenSSL", "OpenSSL.SSL"}, entries=entries)
    lines, ok = check_lazy_sdks(app, TargetFigures(modules=set()))
    assert not ok
    assert lines[0].startswith("OK: no payment SDK")
    assert lines[1].startswith("FAIL: OpenSSL loaded by `import app` but not by the bare app; "
                               "imported by urllib3.contrib.pyopenssl")
