"""Offline packaging: a wheelhouse rebuilt from the distributions installed in the packaging venv.

`chalice package` resolves requirements.txt by running `pip download` (then, for wheels that
cannot run on Lambda, `pip download --platform manylinux... --only-binary`), so it needs an index.
chalice's pip inherits our environment, so PIP_NO_INDEX=1 plus PIP_FIND_LINKS=<wheelhouse> make it
resolve from a local directory instead, with chalice's own Lambda-compatibility checks unchanged.

The pip cache cannot serve as that directory (it holds HTTP responses and the wheels pip built
itself, not the downloaded wheels under their names), but the venv already holds every runtime
distribution, unpacked: each is repacked here into a wheel from its RECORD, under the tags of the
wheel it was installed from (its WHEEL file). Those tags are honest, so chalice still refuses a
binary wheel built for a newer glibc than the Lambda runtime's (the zip then lacks it, and
infra/package.py refuses the zip); `lambda_incompatible` predicts which, with chalice's own test.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Files pip writes at install time; a wheel does not carry them (RECORD is rewritten).
_INSTALL_ONLY = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


@dataclass(frozen=True)
class Repacked:
    name: str  # canonical distribution name
    version: str
    path: Path


def _read_requirements(path: Path) -> list[Requirement]:
    requirements = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirements.append(Requirement(line))
    return requirements


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    # Environment markers are evaluated for this interpreter, which is the Lambda runtime's version.
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def requirement_closure(requirements_path: Path) -> dict[str, metadata.Distribution]:
    """Every installed distribution that requirements.txt needs, by canonical name, with extras."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    pending = [(req, frozenset()) for req in _read_requirements(requirements_path)]
    closure: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, parent_extras = pending.pop()
        name, extras = canonicalize_name(requirement.name), frozenset(requirement.extras)
        if not _applies(requirement, parent_extras) or (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name not in installed:
            raise LookupError(f"{requirement} is not installed in {sys.prefix}: install requirements.txt first")
        closure[name] = installed[name]
        pending.extend((Requirement(r), extras) for r in installed[name].requires or [])
    return closure


def wheel_tags(dist: metadata.Distribution) -> list[str]:
    wheel_file = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel_file.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise ValueError(f"{dist.metadata['Name']} was not installed from a wheel (no Tag in WHEEL)")
    return tags


def wheel_filename(dist: metadata.Distribution) -> str:
    # Compressed tag set (PEP 425): each part lists its values joined by dots.
    parts = [tag.split("-") for tag in wheel_tags(dist)]
    compressed = "-".join(".".join(sorted({p[i] for p in parts})) for i in range(3))
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    return f"{name}-{dist.version}-{compressed}.whl"


def _record_line(arcname: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return [arcname, f"sha256={digest}", str(len(data))]


def _packed_files(dist: metadata.Distribution) -> list[str]:
    """The installed files that belong in the wheel: site-packages content, no bytecode, no
    scripts (RECORD lists those as ../../bin/..., and Lambda has no use for them)."""
    if dist.files is None:
        raise ValueError(f"{dist.metadata['Name']} has no RECORD")
    keep = []
    for path in dist.files:
        arcname = path.as_posix()
        if arcname.startswith("..") or "__pycache__" in path.parts or arcname.endswith(".pyc"):
            continue
        if path.parts[0].endswith(".dist-info") and path.name in _INSTALL_ONLY:
            continue
        keep.append(arcname)
    return keep


def repack(dist: metadata.Distribution, out_dir: Path) -> Repacked:
    path = out_dir / wheel_filename(dist)
    dist_info = next(p.parts[0] for p in dist.files or [] if p.parts[0].endswith(".dist-info"))
    records = []
    # Stored, not deflated: the wheelhouse is thrown away after packaging, speed matters more.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as wheel:
        for arcname in _packed_files(dist):
            data = Path(dist.locate_file(arcname)).read_bytes()
            wheel.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([*records, [f"{dist_info}/RECORD", "", ""]])
        wheel.writestr(f"{dist_info}/RECORD", buffer.getvalue())
    return Repacked(canonicalize_name(dist.metadata["Name"]), dist.version, path)


def build_wheelhouse(requirements_path: Path, out_dir: Path) -> list[Repacked]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [repack(dist, out_dir) for dist in requirement_closure(requirements_path).values()]


def lambda_incompatible(dists: Iterable[metadata.Distribution], python_runtime: str) -> set[str]:
    """Names of the installed distributions whose wheel chalice will refuse for this runtime (e.g. a
    manylinux_2_34 wheel for python3.11, whose Amazon Linux 2 has glibc 2.26). Asks chalice's own
    test, so that the prediction cannot disagree with what chalice then does."""
    from chalice.deploy.packager import BaseLambdaDeploymentPackager, DependencyBuilder
    from chalice.utils import OSUtils

    abi = BaseLambdaDeploymentPackager._RUNTIME_TO_ABI[python_runtime]
    builder = DependencyBuilder(OSUtils())
    return {canonicalize_name(d.metadata["Name"]) for d in dists
            if not builder._is_compatible_wheel_filename(abi, wheel_filename(d))}
