"""The edge agent's own install list (deploy/edge-agent/requirements.txt) names every library the
agent imports and pins each one as the project's requirements do, so that a shop machine set up
from it runs what the tests ran."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
AGENT_LIST = ROOT / "deploy" / "edge-agent" / "requirements.txt"
IMPORT_NAMES = {"httptools": "httptools", "cryptography": "cryptography", "fastcrc": "fastcrc", "uvloop": "uvloop"}  # module -> package


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            found[name.split("[", 1)[0].strip().lower()] = version.strip()
    return found


def agent_imports() -> set[str]:
    """Top-level modules imported by the agent (the simulator is a test tool, not the agent)."""
    names: set[str] = set()
    for path in (ROOT / "edge_agent").rglob("*.py"):
        if "simulator" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name != "edge_agent"}


def test_every_library_the_agent_imports_is_on_its_list() -> None:
    imported = agent_imports()
    assert imported == set(IMPORT_NAMES), imported
    assert set(pins(AGENT_LIST)) == {IMPORT_NAMES[name] for name in imported}


def test_pins_match_the_project_requirements() -> None:
    project = {**pins(ROOT / "requirements.txt"), **pins(ROOT / "requirements-dev.txt")}
    for name, version in pins(AGENT_LIST).items():
        assert project.get(name) == version, name
