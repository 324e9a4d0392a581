"""DataLake and PlatformKey on a bare Stack: the properties that keep the data safe."""

from __future__ import annotations

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from ml_platform.data_lake import DataLake, PlatformKey, Zone, dataset_prefix


def make_lake(stack: Stack, **overrides: object) -> DataLake:
    key = PlatformKey(stack, "Key", description="test", removal_policy=RemovalPolicy.DESTROY).key
    props: dict[str, object] = {
        "key": key,
        "intelligent_tiering_after_days": 30,
        "noncurrent_version_expiration_days": 90,
        "abort_incomplete_multipart_upload_days": 7,
        "access_log_expiration_days": 365,
        "removal_policy": RemovalPolicy.DESTROY,
        "auto_delete_objects": False,
    }
    props.update(overrides)
    return DataLake(stack, "Lake", **props)  # type: ignore[arg-type]


def lake_bucket(template: Template) -> dict:
    buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"VersioningConfiguration": Match.any_value()}}
    )
    (lake,) = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    return lake["Properties"]


def test_key_rotates(bare_stack: Stack) -> None:
    make_lake(bare_stack)
    Template.from_stack(bare_stack).has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_lake_bucket_is_versioned_kms_encrypted_with_bucket_key_and_private(bare_stack: Stack) -> None:
    lake = make_lake(bare_stack)
    props = lake_bucket(Template.from_stack(bare_stack))
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["BucketKeyEnabled"] is True
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = bare_stack.resolve(lake.key.key_arn)
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_id
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["LoggingConfiguration"]["DestinationBucketName"] == bare_stack.resolve(
        lake.access_log_bucket.bucket_name
    )


def test_lake_lifecycle_comes_from_props(bare_stack: Stack) -> None:
    make_lake(bare_stack, intelligent_tiering_after_days=12, noncurrent_version_expiration_days=34)
    (rule,) = lake_bucket(Template.from_stack(bare_stack))["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Transitions"] == [{"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 12}]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 34}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


@pytest.mark.parametrize("logical_prefix", ["LakeBucket", "LakeAccessLogs"])
def test_both_buckets_deny_non_tls_requests(bare_stack: Stack, logical_prefix: str) -> None:
    make_lake(bare_stack)
    policies = Template.from_stack(bare_stack).find_resources("AWS::S3::BucketPolicy")
    (policy,) = [p for p in policies.values() if p["Properties"]["Bucket"]["Ref"].startswith(logical_prefix)]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny[0]["Principal"] == {"AWS": "*"} and deny[0]["Action"] == "s3:*"


def test_access_log_bucket_is_sse_s3_versioned_and_expires_logs(bare_stack: Stack) -> None:
    lake = make_lake(bare_stack, access_log_expiration_days=400)
    template = Template.from_stack(bare_stack)
    logical = bare_stack.resolve(lake.access_log_bucket.bucket_name)["Ref"]
    props = template.to_json()["Resources"][logical]["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "AES256"}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 400


def test_removal_policy_retain_keeps_both_buckets_and_auto_delete_needs_destroy(bare_stack: Stack) -> None:
    make_lake(bare_stack, removal_policy=RemovalPolicy.RETAIN)
    buckets = Template.from_stack(bare_stack).find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Retain"}
    with pytest.raises(
        ValueError, match=r"auto_delete_objects: got True; allowed: True only with RemovalPolicy\.DESTROY"
    ):
        make_lake(
            Stack(App(), "Other"),
            removal_policy=RemovalPolicy.RETAIN,
            auto_delete_objects=True,
        )


def test_zone_grants_are_exact_actions_scoped_to_the_zone(bare_stack: Stack) -> None:
    lake = make_lake(bare_stack)
    role = iam.Role(bare_stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    lake.grant_read(role, Zone.RAW)
    lake.grant_read_write(role, Zone.MODELS)
    (policy,) = Template.from_stack(bare_stack).find_resources("AWS::IAM::Policy").values()
    granted: set[tuple[str, str]] = set()  # (action, resource suffix or condition)
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in actions:
            for resource in resources:
                if action.startswith("kms:"):
                    granted.add((action, "key"))
                elif action == "s3:ListBucket":
                    granted.add((action, str(statement["Condition"]["StringLike"]["s3:prefix"])))
                else:
                    granted.add((action, resource["Fn::Join"][1][-1]))
    assert granted == {
        ("s3:ListBucket", "['raw/*']"),
        ("s3:ListBucket", "['models/*']"),
        ("s3:GetObject", "/raw/*"),
        ("s3:GetObject", "/models/*"),
        ("s3:PutObject", "/models/*"),
        ("s3:AbortMultipartUpload", "/models/*"),
        ("kms:Decrypt", "key"),
        ("kms:Encrypt", "key"),
        ("kms:GenerateDataKey", "key"),
    }
    with pytest.raises(ValueError, match="zones: got none"):
        lake.grant_read(role)


def test_zones_and_dataset_convention() -> None:
    assert [z.prefix for z in Zone] == [
        "raw/", "processed/", "features/", "models/", "checkpoints/", "capture/", "monitoring/",
        "ground-truth/",
    ]  # fmt: skip
    assert dataset_prefix("breast-cancer", "v3") == "raw/breast-cancer/v3/"
    with pytest.raises(ValueError, match="version: got 'v1/x'"):
        dataset_prefix("breast-cancer", "v1/x")


@pytest.mark.parametrize("auto_delete", [True, False])
def test_objects_are_auto_deleted_only_when_asked(bare_stack: Stack, auto_delete: bool) -> None:
    make_lake(bare_stack, auto_delete_objects=auto_delete)
    custom = Template.from_stack(bare_stack).find_resources("Custom::S3AutoDeleteObjects")
    assert len(custom) == (2 if auto_delete else 0)
