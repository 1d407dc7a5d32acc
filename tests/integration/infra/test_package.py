"""The deployable package, built offline: `chalice package` + infra/resources.json + bytecode.

No AWS account and no network: chalice's pip resolves from a wheelhouse repacked from this venv
(infra/wheelhouse.py). One package of the dev stage is built per module (about 30 s on an idle
machine) and every test below reads it.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint

from infra.build_template import build_policies, stale_files
from infra.bytecode import interpreter_runtime, pyc_name
from infra.package import PackageError, PackageResult, check_stage_config, functions, load_config, package
from infra.tables import TableSpec, table_specs
from infra.wheelhouse import lambda_incompatible, requirement_closure

ROOT = Path(__file__).resolve().parents[3]
STAGE = "dev"


@pytest.fixture(scope="module")
def unavailable_offline() -> frozenset[str]:
    """Runtime dependencies whose wheel in this venv cannot run on the Lambda runtime (here:
    cryptography's manylinux_2_34 wheel vs python3.11's glibc 2.26). chalice would download a
    compatible wheel online; offline the zip lacks them, so this package is for checking, not
    for deploying."""
    closure = requirement_closure(ROOT / "requirements.txt").values()
    return frozenset(lambda_incompatible(closure, interpreter_runtime()))


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory, unavailable_offline: frozenset[str]) -> PackageResult:
    out = tmp_path_factory.mktemp("build") / STAGE
    return package(STAGE, out, offline=True, allow_missing=unavailable_offline)


@pytest.fixture(scope="module")
def template(packaged: PackageResult) -> dict[str, Any]:
    return json.loads(packaged.template_path.read_text(encoding="utf-8"))


# -- generated files ---------------------------------------------------------------------------------

def test_committed_resources_and_policies_equal_what_the_models_generate() -> None:
    assert stale_files() == [], "run: python -m infra.build_template"


def test_every_stage_names_the_tables_and_key_the_template_creates() -> None:
    config = load_config()
    for stage in ("local", "dev", "prod"):
        assert check_stage_config(config, stage) == []


def test_stage_config_drift_is_reported() -> None:
    config = load_config()
    config["stages"][STAGE]["environment_variables"]["TABLE_PREFIX"] = "scanpay-other-"
    assert any("TABLE_PREFIX" in problem for problem in check_stage_config(config, STAGE))


def test_prod_refuses_a_placeholder_public_url(tmp_path: Path) -> None:
    # The check runs before chalice: payment platforms would post notifications to example.com.
    with pytest.raises(PackageError, match="PUBLIC_BASE_URL"):
        package("prod", tmp_path, offline=True)


# -- the merged template -----------------------------------------------------------------------------

def test_merged_template_has_no_cfn_lint_errors_or_warnings(packaged: PackageResult) -> None:
    matches = lint(packaged.template_path.read_text(encoding="utf-8"), regions=["ap-east-1"])
    serious = [m for m in matches if m.rule.severity in ("error", "warning")]
    assert serious == [], "\n".join(str(m) for m in serious)


def _expected_keys(attributes: dict[str, Any]) -> list[dict[str, str]]:
    keys = [{"AttributeName": a.attr_name, "KeyType": "HASH" if a.is_hash_key else "RANGE"}
            for a in attributes.values() if a.is_hash_key or a.is_range_key]
    return sorted(keys, key=lambda key: key["KeyType"] != "HASH")


def _attribute_types(spec: TableSpec) -> dict[str, str]:
    attributes = dict(spec.model.get_attributes())
    for index in spec.model._indexes.values():
        attributes |= index.Meta.attributes
    return {a.attr_name: a.attr_type for a in attributes.values() if a.is_hash_key or a.is_range_key}


@pytest.mark.parametrize("spec", table_specs(), ids=lambda spec: spec.base_name)
def test_every_model_is_a_table_with_its_keys_and_indexes(template: dict[str, Any], spec: TableSpec) -> None:
    table = template["Resources"][spec.logical_id]
    properties = table["Properties"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert properties["TableName"] == {"Fn::Sub": f"scanpay-${{Stage}}-{spec.base_name}"}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == _expected_keys(spec.model.get_attributes())
    defined = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    assert defined == _attribute_types(spec)
    indexes = {i["IndexName"]: i for i in properties.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.Meta.index_name for index in spec.model._indexes.values()}
    for index in spec.model._indexes.values():
        deployed = indexes[index.Meta.index_name]
        assert deployed["KeySchema"] == _expected_keys(index.Meta.attributes)
        assert deployed["Projection"]["ProjectionType"] == index.Meta.projection.projection_type
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["DeletionProtectionEnabled"] is (spec.base_name in {"orders", "ledger", "dedupe"})
    assert table["DeletionPolicy"] == "Retain"


def test_kms_key_and_alias_follow_the_stage(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["SecretsKey"]["Type"] == "AWS::KMS::Key"
    assert resources["SecretsKey"]["DeletionPolicy"] == "Retain"
    assert resources["SecretsKeyAlias"]["Properties"]["AliasName"] == {"Fn::Sub": "alias/scanpay-${Stage}"}


def test_stage_parameter_is_pinned_to_the_packaged_stage(template: dict[str, Any]) -> None:
    stage = template["Parameters"]["Stage"]
    assert (stage["Default"], stage["AllowedValues"]) == (STAGE, [STAGE])
    for function in functions(template).values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["TABLE_PREFIX"] == f"scanpay-{STAGE}-"
        assert env["KMS_KEY_ID"] == f"alias/scanpay-{STAGE}"
        assert "DYNAMODB_ENDPOINT" not in env and "CHANNEL_GATEWAY" not in env


def test_schedules_declared_in_app_are_in_the_template(template: dict[str, Any]) -> None:
    from app import app

    def expression(e: Any) -> str:  # a string, or chalice's Rate/Cron object
        return e if isinstance(e, str) else e.to_string()

    schedules = {(e.handler_string, expression(e.schedule_expression)) for e in app.event_sources
                 if hasattr(e, "schedule_expression")}
    assert schedules, "app.py registers no schedule"
    deployed = {
        (f["Properties"]["Handler"], event["Properties"]["Schedule"])
        for f in functions(template).values()
        for event in f["Properties"].get("Events", {}).values() if event["Type"] == "Schedule"
    }
    assert schedules <= deployed


def test_functions_run_the_packaging_python_within_api_gateway_limits(template: dict[str, Any]) -> None:
    deployed = functions(template)
    assert {f["Properties"]["Runtime"] for f in deployed.values()} == {interpreter_runtime()}
    assert deployed["APIHandler"]["Properties"]["Timeout"] <= 29


def test_function_roles_carry_the_generated_stage_policy(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for function in functions(template).values():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        policies = resources[role_id]["Properties"]["Policies"]
        assert [p["PolicyDocument"] for p in policies] == [build_policies()[STAGE]]


# -- the deployment zip ------------------------------------------------------------------------------

def test_every_source_ships_with_unchecked_hash_bytecode(packaged: PackageResult) -> None:
    with zipfile.ZipFile(packaged.zip_path) as archive:
        names = set(archive.namelist())
        sources = [name for name in names if name.endswith(".py")]
        assert "app.py" in sources and "chalicelib/store/models.py" in sources
        own = [s for s in sources if s == "app.py" or s.startswith("chalicelib/")]
        assert all(pyc_name(s) in names for s in own)
        assert packaged.bytecode.compiled + len(packaged.bytecode.failed) == len(sources)
        header = archive.read(pyc_name("app.py"))[:8]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked (PEP 552)


def test_packaged_bytecode_is_used_even_when_the_source_differs(packaged: PackageResult, tmp_path: Path) -> None:
    """What Lambda needs: the pyc is loaded as is, whatever mtime unzipping gave the source."""
    with zipfile.ZipFile(packaged.zip_path) as archive:
        for source in ("chalicelib/__init__.py", "chalicelib/config.py"):
            archive.extract(source, tmp_path)
            archive.extract(pyc_name(source), tmp_path)
    (tmp_path / "chalicelib" / "config.py").write_text("raise RuntimeError('compiled from source')\n")
    probe = "import chalicelib.config as c; print(c.Settings.from_env({}).table_prefix)"
    done = subprocess.run([sys.executable, "-B", "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "scanpay-local-"), done.stderr


def test_zip_lacks_only_what_this_venv_cannot_supply(packaged: PackageResult,
                                                      unavailable_offline: frozenset[str]) -> None:
    assert packaged.missing == unavailable_offline
    with zipfile.ZipFile(packaged.zip_path) as archive:
        roots = {name.split("/", 1)[0] for name in archive.namelist()}
    assert {"app.py", "chalicelib", "chalice", "pynamodb", "boto3", "wechatpy", "alipay", "defusedxml"} <= roots
