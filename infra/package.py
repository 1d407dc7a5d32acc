"""Builds the deployable artefacts of one stage: build/<...>/sam.json and deployment.zip.

    python -m infra.package --stage dev --out build/dev             # resolves wheels from PyPI
    python -m infra.package --stage dev --out build/dev --offline   # from this venv, no network
    python -m infra.package --stage dev --out build/dev --wheelhouse wheels/

Steps:
1. check the stage's config against the naming the template uses and the generated policies;
2. copy the project (app.py, chalicelib/, requirements.txt, vendor/, .chalice/ config and
   policies) to a scratch directory without __pycache__, and run there
   `chalice package --stage <stage> --merge-template infra/resources.json <out>`. The copy keeps
   chalice's dependency cache (.chalice/deployments/) out of the working tree: its key ignores where
   wheels came from, so an offline build could otherwise be reused by a later online one;
3. pin the template's Stage parameter to the packaged stage (the functions' environment names
   that stage's tables, so the stack must create those and no others), and repair chalice's
   reference to the API function's log group (aws/chalice#2079);
4. append precompiled bytecode to deployment.zip (infra/bytecode.py);
5. refuse a zip that lacks a runtime dependency (chalice only prints a warning), unless the
   caller names it with --allow-missing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from infra.build_template import CHALICE_DIR, RESOURCES_PATH, ROOT, stale_files
from infra.bytecode import CompileReport, precompile
from infra.tables import kms_alias, table_prefix
from infra.wheelhouse import build_wheelhouse, requirement_closure

API_GATEWAY_TIMEOUT_S = 29  # API Gateway's integration limit: a longer function is cut off mid-request
DEFAULT_REGION = "ap-east-1"  # chalice needs one for service principals; the template itself is region-free
# Payment platforms post notifications to PUBLIC_BASE_URL: prod may not ship with a placeholder.
PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net")
STRICT_URL_STAGES = frozenset({"prod"})


class PackageError(RuntimeError):
    pass


@dataclass(frozen=True)
class PackageResult:
    template_path: Path
    zip_path: Path
    runtime: str
    missing: frozenset[str]  # runtime distributions absent from the zip (all allowed by the caller)
    warnings: tuple[str, ...]
    bytecode: CompileReport
    chalice_output: str


# -- 1. configuration ------------------------------------------------------------------------------

def load_config() -> dict[str, Any]:
    return json.loads((CHALICE_DIR / "config.json").read_text(encoding="utf-8"))


def stage_env(config: dict[str, Any], stage: str) -> dict[str, str]:
    stage_config = config.get("stages", {}).get(stage, {})
    return {**config.get("environment_variables", {}), **stage_config.get("environment_variables", {})}


def url_problem(config: dict[str, Any], stage: str) -> str | None:
    url = stage_env(config, stage).get("PUBLIC_BASE_URL", "")
    if url.startswith("https://") and not any(host in url for host in PLACEHOLDER_HOSTS):
        return None
    return f"PUBLIC_BASE_URL of {stage} is {url!r}: set the stage's https custom domain (infra/README.md)"


def check_stage_config(config: dict[str, Any], stage: str) -> list[str]:
    """Problems that would make the stack and the functions disagree. Empty when all is well."""
    stages = config.get("stages", {})
    if stage not in stages:
        return [f"stage {stage!r} is not in .chalice/config.json (stages: {sorted(stages)})"]
    env = stage_env(config, stage)
    expected = {"STAGE": stage, "TABLE_PREFIX": table_prefix(stage), "KMS_KEY_ID": kms_alias(stage)}
    problems = [f"{name} is {env.get(name)!r}, the template makes {value!r}"
                for name, value in expected.items() if env.get(name) != value]
    if config.get("autogen_policy", True) or stages[stage].get("autogen_policy"):
        problems.append("autogen_policy must be false: the policies are generated from the models")
    problems += [f"{path.relative_to(ROOT)} is out of date: run python -m infra.build_template"
                 for path in stale_files()]
    return problems


# -- 2. chalice package in a clean copy -------------------------------------------------------------

def _ignore_bytecode(_directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__" or name.endswith(".pyc")}


def stage_project(dest: Path) -> Path:
    """The files chalice packages, copied without bytecode or chalice's caches."""
    dest.mkdir(parents=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("chalicelib", "vendor"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=_ignore_bytecode)
    (dest / ".chalice").mkdir()
    for path in CHALICE_DIR.glob("*.json"):
        shutil.copy2(path, dest / ".chalice" / path.name)
    return dest


def chalice_env(wheelhouse: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    # Packaging needs no AWS credentials; do not let botocore probe the instance metadata service.
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    if wheelhouse is not None:
        # chalice runs pip in a subprocess that inherits this environment: pip then resolves from the
        # wheelhouse only, ignoring any index configured in the user's pip.conf.
        env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse.resolve()), "PIP_CONFIG_FILE": os.devnull,
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return env


def run_chalice(project: Path, stage: str, out: Path, env: dict[str, str]) -> str:
    command = [
        sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())",
        "--project-dir", str(project), "package", "--stage", stage,
        "--merge-template", str(RESOURCES_PATH), str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise PackageError(f"chalice package failed ({done.returncode}):\n{output}")
    return output


# -- 3. template ------------------------------------------------------------------------------------

def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items()
            if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")}


def pin_stage(template: dict[str, Any], stage: str) -> None:
    parameter = template["Parameters"]["Stage"]
    parameter["Default"] = stage
    parameter["AllowedValues"] = [stage]


def fix_api_log_group(template: dict[str, Any]) -> None:
    """chalice 1.34 names the API function's log group after "${ApiHandler}", then renames that
    function to "APIHandler", leaving a reference CloudFormation rejects (aws/chalice#2079)."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Logs::LogGroup":
            continue
        name = resource["Properties"]["LogGroupName"]
        if name == {"Fn::Sub": "/aws/lambda/${ApiHandler}"} and "ApiHandler" not in template["Resources"]:
            resource["Properties"]["LogGroupName"] = {"Fn::Sub": "/aws/lambda/${APIHandler}"}


def template_runtime(template: dict[str, Any]) -> str:
    runtimes = {f["Properties"]["Runtime"] for f in functions(template).values()}
    if len(runtimes) != 1:
        raise PackageError(f"expected one Lambda runtime, the template has {sorted(runtimes)}")
    return runtimes.pop()


def check_api_timeout(template: dict[str, Any]) -> None:
    # chalice names the function behind API Gateway "APIHandler".
    timeout = functions(template)["APIHandler"]["Properties"]["Timeout"]
    if timeout > API_GATEWAY_TIMEOUT_S:
        raise PackageError(f"APIHandler timeout {timeout} s exceeds API Gateway's {API_GATEWAY_TIMEOUT_S} s")


# -- 5. dependencies --------------------------------------------------------------------------------

def packaged_distributions(zip_path: Path) -> set[str]:
    with zipfile.ZipFile(zip_path) as archive:
        roots = {name.split("/", 1)[0] for name in archive.namelist()}
    return {canonicalize_name(root[: -len(".dist-info")].rsplit("-", 1)[0])
            for root in roots if root.endswith(".dist-info")}


def missing_distributions(zip_path: Path) -> set[str]:
    needed = set(requirement_closure(ROOT / "requirements.txt"))
    return needed - packaged_distributions(zip_path)


# -- the whole step ---------------------------------------------------------------------------------

def package(stage: str, out: Path, *, offline: bool = False, wheelhouse: Path | None = None,
            allow_missing: frozenset[str] = frozenset(), allow_placeholder_url: bool = False) -> PackageResult:
    config = load_config()
    problems = check_stage_config(config, stage)
    warnings = [problem for problem in [url_problem(config, stage)] if problem]
    if warnings and stage in STRICT_URL_STAGES and not allow_placeholder_url:
        problems += warnings
    if problems:
        raise PackageError(f"stage {stage}:\n  " + "\n  ".join(problems))
    with tempfile.TemporaryDirectory(prefix="scanpay-package-") as scratch_name:
        scratch = Path(scratch_name)
        if offline:
            wheelhouse = scratch / "wheelhouse"
            build_wheelhouse(ROOT / "requirements.txt", wheelhouse)
        chalice_out = scratch / "out"
        output = run_chalice(stage_project(scratch / "project"), stage, chalice_out, chalice_env(wheelhouse))
        template_path, zip_path = chalice_out / "sam.json", chalice_out / "deployment.zip"
        template = json.loads(template_path.read_text(encoding="utf-8"))
        pin_stage(template, stage)
        fix_api_log_group(template)
        check_api_timeout(template)
        runtime = template_runtime(template)
        report = precompile(zip_path, runtime, scratch / "bytecode")
        missing = frozenset(missing_distributions(zip_path))
        if missing - allow_missing:
            raise PackageError(f"the zip lacks {sorted(missing - allow_missing)} for {runtime}; chalice said:\n{output}")
        out.mkdir(parents=True, exist_ok=True)
        (out / "sam.json").write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
        shutil.move(zip_path, out / "deployment.zip")
    return PackageResult(out / "sam.json", out / "deployment.zip", runtime, missing, tuple(warnings), report, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chalice package + infra/resources.json + bytecode")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--offline", action="store_true", help="wheels repacked from this venv, no network")
    source.add_argument("--wheelhouse", type=Path, help="resolve wheels from this directory only")
    parser.add_argument("--allow-missing", action="append", default=[], metavar="DIST",
                        help="accept a zip without this distribution (e.g. a test package)")
    parser.add_argument("--allow-placeholder-url", action="store_true",
                        help=f"accept a placeholder PUBLIC_BASE_URL in {sorted(STRICT_URL_STAGES)} (test packages only)")
    args = parser.parse_args(argv)
    try:
        result = package(args.stage, args.out, offline=args.offline, wheelhouse=args.wheelhouse,
                         allow_missing=frozenset(canonicalize_name(n) for n in args.allow_missing),
                         allow_placeholder_url=args.allow_placeholder_url)
    except PackageError as error:
        print(f"infra.package: {error}", file=sys.stderr)
        return 1
    print(f"{result.template_path}\n{result.zip_path} ({result.runtime}, "
          f"{result.bytecode.compiled} modules precompiled)")
    for warning in result.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if result.missing:
        print(f"WARNING: the zip lacks {sorted(result.missing)}: do not deploy it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
