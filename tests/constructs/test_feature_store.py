"""FeatureGroup on a bare Stack: stores, keys, schema and the role's grants."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from ml_platform.feature_store import Feature, FeatureGroup

FEATURES = [Feature("record_id", "String"), Feature("event_time", "Fractional"), Feature("x1", "Fractional")]


def make_group(stack: Stack, **overrides: Any) -> tuple[FeatureGroup, kms.Key, s3.Bucket]:
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    bucket = s3.Bucket(stack, "Bucket", encryption_key=key)
    props: dict[str, Any] = {
        "key": key,
        "bucket": bucket,
        "offline_prefix": "features/",
        "record_identifier": "record_id",
        "event_time_feature": "event_time",
        "features": FEATURES,
        "description": "test",
        "online_store": True,
        "offline_table_format": "Iceberg",
        "removal_policy": RemovalPolicy.RETAIN,
    }
    props.update(overrides)
    return FeatureGroup(stack, "Group", **props), key, bucket


def group_resource(stack: Stack) -> dict[str, Any]:
    (resource,) = Template.from_stack(stack).find_resources("AWS::SageMaker::FeatureGroup").values()
    return dict(resource)


def test_online_and_offline_stores_are_encrypted_with_the_key(bare_stack: Stack) -> None:
    _, key, bucket = make_group(bare_stack)
    props = group_resource(bare_stack)["Properties"]
    key_arn = bare_stack.resolve(key.key_arn)
    # PascalCase keys, exactly as CloudFormation expects them.
    assert props["OnlineStoreConfig"] == {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key_arn}}
    offline = props["OfflineStoreConfig"]
    assert offline["S3StorageConfig"]["KmsKeyId"] == key_arn
    assert offline["S3StorageConfig"]["S3Uri"] == {
        "Fn::Join": ["", ["s3://", bare_stack.resolve(bucket.bucket_name), "/features"]]
    }
    assert offline["TableFormat"] == "Iceberg"
    assert offline["DisableGlueTableCreation"] is False


def test_schema_record_id_event_time_and_definitions(bare_stack: Stack) -> None:
    make_group(bare_stack)
    props = group_resource(bare_stack)["Properties"]
    assert props["RecordIdentifierFeatureName"] == "record_id"
    assert props["EventTimeFeatureName"] == "event_time"
    assert props["FeatureDefinitions"] == [{"FeatureName": f.name, "FeatureType": f.type} for f in FEATURES]
    assert props["RoleArn"]["Fn::GetAtt"][1] == "Arn"


def test_online_store_can_be_disabled(bare_stack: Stack) -> None:
    make_group(bare_stack, online_store=False)
    assert "OnlineStoreConfig" not in group_resource(bare_stack)["Properties"]


def test_retained_and_named_deterministically(bare_stack: Stack) -> None:
    group, _, _ = make_group(bare_stack)
    resource = group_resource(bare_stack)
    assert resource["DeletionPolicy"] == "Retain" and resource["UpdateReplacePolicy"] == "Retain"
    assert resource["Properties"]["FeatureGroupName"] == group.feature_group_name
    # Lower case: IAM compares ARNs case sensitively, and the group's ARN then has one spelling.
    assert group.feature_group_name.startswith("teststack-group-") and len(group.feature_group_name) <= 64
    assert group.feature_group_name == group.feature_group_name.lower()


def test_role_may_only_touch_the_offline_prefix_and_the_key(bare_stack: Stack) -> None:
    make_group(bare_stack)
    (policy,) = Template.from_stack(bare_stack).find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {
        "s3:PutObject", "s3:GetObject", "s3:PutObjectAcl", "s3:ListBucket", "s3:GetBucketAcl",
        "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey",
    }  # fmt: skip
    object_statements = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert object_statements[0]["Resource"]["Fn::Join"][1][-1] == "/features/*"
    listing = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["features/*"]}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"record_identifier": "nope"}, "record_identifier: got 'nope'"),
        ({"event_time_feature": "nope"}, "event_time_feature: got 'nope'"),
        ({"offline_prefix": "features"}, "offline_prefix: got 'features'"),
    ],
)
def test_bad_props_are_refused(bare_stack: Stack, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_group(bare_stack, **overrides)
