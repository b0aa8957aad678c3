"""Staging: the key, the buckets and the dataset upload, as synthesized for each environment."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.staging import dataset_digest
from tests.conftest import FIXTURE_DATASETS, resources_of


def staging_keys(template: Any) -> list[dict[str, Any]]:
    """The staging key(s) (the notification topic has a key of its own)."""
    keys = resources_of(template, "AWS::KMS::Key")
    return [v for k, v in keys.items() if k.startswith("Staging")]


ENVIRONMENTS = ["dev", "staging", "prod", "nova-dev"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_rotates_and_admits_only_this_accounts_logs(
    templates: dict[str, Any], env: str
) -> None:
    [key] = staging_keys(templates[env])
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    logs = next(s for s in statements if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount")
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_bucket_is_private_encrypted_and_tls_only(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    buckets = resources_of(template, "AWS::S3::Bucket")
    assert len(buckets) == 3, "access logs, datasets, artifacts"
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    tls_only = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Effect"] == "Deny"
                tls_only.add(policy["Properties"]["Bucket"]["Ref"])
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert logical_id in tls_only, f"{logical_id} must deny non-TLS requests"
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in rule for rule in rules)
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        algorithm = sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        if "AccessLogs" in logical_id:
            # S3 cannot deliver server access logs to an SSE-KMS bucket
            assert algorithm == "AES256"
        else:
            assert algorithm == "aws:kms"
            assert "KMSMasterKeyID" in sse["ServerSideEncryptionByDefault"]
            assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith(
                "StagingAccessLogs"
            )


def test_removal_follows_the_environment(templates: dict[str, Any]) -> None:
    for env, policy, auto_delete in (
        ("dev", "Delete", True),
        ("staging", "Retain", False),
        ("prod", "Retain", False),
    ):
        template = templates[env]
        for bucket in resources_of(template, "AWS::S3::Bucket").values():
            assert bucket["DeletionPolicy"] == policy
        [key] = staging_keys(template)
        assert key["DeletionPolicy"] == policy
        has_auto_delete = bool(resources_of(template, "Custom::S3AutoDeleteObjects"))
        assert has_auto_delete is auto_delete


@pytest.mark.parametrize("env", ["dev", "nova-dev"])
def test_dataset_lands_under_a_content_addressed_prefix(
    templates: dict[str, Any], synthesized: dict[str, Any], env: str
) -> None:
    digest = dataset_digest(FIXTURE_DATASETS / "gsm8k")
    stack = synthesized["stacks"][env]
    assert stack.staging.dataset_prefix == f"datasets/gsm8k/{digest}/"
    assert stack.staging.train_key.endswith(f"{digest}/train.jsonl")
    templates[env].has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketKeyPrefix": f"datasets/gsm8k/{digest}/",
            "Prune": False,
            "SystemMetadata": {"sse": "aws:kms", "sse-kms-key-id": Match.any_value()},
        },
    )
    # the upload handler may use the key (to write SSE-KMS objects)
    templates[env].has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": Match.array_with(["kms:Decrypt"])})]
                )
            },
            "Roles": Match.array_with(
                [{"Ref": Match.string_like_regexp("CustomCDKBucketDeployment.*ServiceRole")}]
            ),
        },
    )


def test_dataset_digest_changes_with_content(tmp_path: Any) -> None:
    (tmp_path / "train.jsonl").write_text('{"a": 1}\n')
    first = dataset_digest(tmp_path)
    (tmp_path / "README.md").write_text("not part of the data")
    assert dataset_digest(tmp_path) == first
    (tmp_path / "validation.jsonl").write_text('{"b": 2}\n')
    second = dataset_digest(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"a": 2}\n')
    assert len({first, second, dataset_digest(tmp_path)}) == 3
