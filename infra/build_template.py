"""Generates the infrastructure that `chalice package` does not know about, from the models.

    python -m infra.build_template           # rewrite infra/resources.json and .chalice/policy-*.json
    python -m infra.build_template --check   # exit 1 if a committed file differs (CI, tests)

infra/resources.json is a CloudFormation fragment merged into chalice's template
(`chalice package --merge-template`): a `Stage` parameter, one DynamoDB table per model with its
GSIs, the KMS key that seals secrets and its alias, and outputs. The files are committed so that a
review shows what will be deployed; tests/integration/infra checks they equal what this generates.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra.policy import stage_policy
from infra.tables import APP_NAME, TableSpec, table_specs

ROOT = Path(__file__).resolve().parent.parent
RESOURCES_PATH = ROOT / "infra" / "resources.json"
CHALICE_DIR = ROOT / ".chalice"
STAGES = ("local", "dev", "prod")
KMS_KEY_ID = "SecretsKey"
KMS_ALIAS_ID = "SecretsKeyAlias"


def _tags() -> list[dict[str, Any]]:
    return [{"Key": "app", "Value": APP_NAME}, {"Key": "stage", "Value": {"Ref": "Stage"}}]


def _key_schema(elements: list[dict[str, str]]) -> list[dict[str, str]]:
    # DynamoDB wants HASH before RANGE; PynamoDB lists them in attribute order.
    return sorted(
        ({"AttributeName": e["AttributeName"], "KeyType": e["KeyType"]} for e in elements),
        key=lambda e: e["KeyType"] != "HASH",
    )


def _projection(projection: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"ProjectionType": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        result["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return result


def _gsis(schema: dict[str, Any]) -> list[dict[str, Any]]:
    # On-demand tables take no ProvisionedThroughput on their indexes either.
    indexes = [
        {
            "IndexName": index["index_name"],
            "KeySchema": _key_schema(index["key_schema"]),
            "Projection": _projection(index["projection"]),
        }
        for index in schema["global_secondary_indexes"]
    ]
    return sorted(indexes, key=lambda index: index["IndexName"])


def table_resource(spec: TableSpec) -> dict[str, Any]:
    schema = spec.schema()
    if schema["local_secondary_indexes"]:
        raise NotImplementedError(f"{spec.base_name}: local secondary indexes are not generated yet")
    properties: dict[str, Any] = {
        "TableName": {"Fn::Sub": f"{APP_NAME}-${{Stage}}-{spec.base_name}"},
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(
            ({"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
             for a in schema["attribute_definitions"]),
            key=lambda a: a["AttributeName"],
        ),
        "KeySchema": _key_schema(schema["key_schema"]),
    }
    if schema["global_secondary_indexes"]:
        properties["GlobalSecondaryIndexes"] = _gsis(schema)
    properties |= {
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        # SSE with the AWS managed key (aws/dynamodb): encrypted at rest and visible in CloudTrail,
        # without granting the functions on a second customer key.
        "SSESpecification": {"SSEEnabled": True},
        "DeletionProtectionEnabled": spec.is_money,
        "Tags": _tags(),
    }
    # Retain every table: merchants' sealed channel settings and terminal keys exist nowhere else,
    # and money tables are also deletion-protected. Deleting a stack never drops data.
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _key_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # The usual root statement: IAM policies (the functions' role, operators) decide who
                # may use the key; without it nothing but this policy could grant access.
                "Sid": "AccountManagesKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                # Every sealed value is bound to its use by the "purpose" context (store/secrets.py);
                # a ciphertext made without one could be pasted anywhere, so none may be made or read.
                "Sid": "DenyCryptoWithoutPurpose",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                "Resource": "*",
                "Condition": {"Null": {"kms:EncryptionContext:purpose": "true"}},
            },
        ],
    }


def kms_resources() -> dict[str, Any]:
    key = {
        "Type": "AWS::KMS::Key",
        # Losing the key loses every sealed secret: never delete it with the stack.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Description": {"Fn::Sub": f"{APP_NAME} ${{Stage}}: seals channel, edge agent and terminal secrets"},
            "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "EnableKeyRotation": True,
            "PendingWindowInDays": 30,
            "KeyPolicy": _key_policy(),
            "Tags": _tags(),
        },
    }
    alias = {
        "Type": "AWS::KMS::Alias",
        "Properties": {"AliasName": {"Fn::Sub": f"alias/{APP_NAME}-${{Stage}}"}, "TargetKeyId": {"Ref": KMS_KEY_ID}},
    }
    return {KMS_KEY_ID: key, KMS_ALIAS_ID: alias}


def outputs(specs: list[TableSpec]) -> dict[str, Any]:
    result: dict[str, Any] = {
        f"{spec.logical_id}Name": {"Description": f"{spec.base_name} table", "Value": {"Ref": spec.logical_id}}
        for spec in specs
    }
    result["SecretsKeyArn"] = {"Description": "KMS key sealing secrets", "Value": {"Fn::GetAtt": [KMS_KEY_ID, "Arn"]}}
    result["SecretsKeyAliasName"] = {"Description": "KMS_KEY_ID of the stage", "Value": {"Ref": KMS_ALIAS_ID}}
    return result


def build_resources() -> dict[str, Any]:
    specs = table_specs()
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {
            "Stage": {
                "Type": "String",
                "Description": "Chalice stage; names the tables scanpay-<Stage>-* and the key alias/scanpay-<Stage>",
                "AllowedPattern": "^[a-z][a-z0-9]*$",
                "ConstraintDescription": "lower-case letters and digits, e.g. dev or prod",
            }
        },
        "Resources": {spec.logical_id: table_resource(spec) for spec in specs} | kms_resources(),
        "Outputs": outputs(specs),
    }


def build_policies() -> dict[str, dict[str, Any]]:
    specs = table_specs()
    return {stage: stage_policy(stage, specs) for stage in STAGES}


def policy_path(stage: str) -> Path:
    return CHALICE_DIR / f"policy-{stage}.json"


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def generated_files() -> dict[Path, str]:
    files = {RESOURCES_PATH: render(build_resources())}
    files |= {policy_path(stage): render(policy) for stage, policy in build_policies().items()}
    return files


def stale_files() -> list[Path]:
    """Committed files that differ from what the models generate now."""
    return [path for path, text in generated_files().items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)} (run python -m infra.build_template)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated_files().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
