"""A SageMaker Feature Store feature group with KMS-encrypted online and offline stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Names, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_platform.compliance import acknowledge, acknowledge_inline_policy, finding_ref

FeatureType = Literal["Integral", "Fractional", "String"]


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType


class FeatureGroup(Construct):
    """A feature group: record identifier + event time + the given features.

    The online store (if enabled) is encrypted with ``key``; the offline store lives under
    ``offline_prefix`` of ``bucket`` and is encrypted with the same key. ``self.role`` is the
    role Feature Store assumes to write the offline store, granted only that prefix and the key.

    CfnFeatureGroup types its store configs as ``Any``: they are passed as PascalCase dicts,
    because the generated Property structs serialize with camelCase keys that CloudFormation
    rejects.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.IKey,
        bucket: s3.IBucket,
        offline_prefix: str,
        record_identifier: str,
        event_time_feature: str,
        features: Sequence[Feature],
        description: str,
        online_store: bool,
        offline_table_format: Literal["Glue", "Iceberg"],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        names = [f.name for f in features]
        for label, value in (
            ("record_identifier", record_identifier),
            ("event_time_feature", event_time_feature),
        ):
            if value not in names:
                raise ValueError(f"{label}: got {value!r}; allowed: one of the features {names}")
        if not offline_prefix.endswith("/") or offline_prefix.startswith("/"):
            raise ValueError(
                f"offline_prefix: got {offline_prefix!r}; allowed: a key prefix like 'features/'"
            )

        self.role = iam.Role(
            self,
            "OfflineStoreRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Feature Store writes the offline store of one feature group",
        )
        # The offline-store permissions Feature Store documents, with exact actions.
        objects = bucket.arn_for_objects(f"{offline_prefix}*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:PutObjectAcl"], resources=[objects]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{offline_prefix}*"]}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetBucketAcl"], resources=[bucket.bucket_arn])
        )
        key.grant(self.role, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")

        # FeatureGroupName is required by CloudFormation; derive it from the construct path so
        # it is unique per stage and stack and never hand-written. Lower case, so the ARN SageMaker
        # authorizes calls on and the ARN granted in IAM (which compares case sensitively) are one.
        self.feature_group_name = Names.unique_resource_name(self, max_length=64, separator="-").lower()
        offline_config: dict[str, object] = {
            "S3StorageConfig": {
                "S3Uri": f"s3://{bucket.bucket_name}/{offline_prefix.rstrip('/')}",
                "KmsKeyId": key.key_arn,
            },
            "DisableGlueTableCreation": False,
            "TableFormat": offline_table_format,
        }
        online_config = (
            {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key.key_arn}} if online_store else None
        )
        self.feature_group = sagemaker.CfnFeatureGroup(
            self,
            "Resource",
            feature_group_name=self.feature_group_name,
            description=description,
            record_identifier_feature_name=record_identifier,
            event_time_feature_name=event_time_feature,
            feature_definitions=[
                sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(feature_name=f.name, feature_type=f.type)
                for f in features
            ],
            offline_store_config=offline_config,
            online_store_config=online_config,
            role_arn=self.role.role_arn,
        )
        # The role's grants must exist before Feature Store validates its access to the bucket.
        policy = self.role.node.find_child("DefaultPolicy")
        self.feature_group.node.add_dependency(policy)
        acknowledge_inline_policy(policy)
        acknowledge(
            policy,
            "Feature Store writes offline-store objects under keys it generates inside this prefix.",
            f"AwsSolutions-IAM5[Resource::{finding_ref(bucket)}/{offline_prefix}*]",
        )
        self.feature_group.apply_removal_policy(removal_policy)

    @staticmethod
    def arn(scope: Construct, name: str) -> str:
        """The ARN of the feature group ``name`` in ``scope``'s account and region."""
        return Stack.of(scope).format_arn(service="sagemaker", resource="feature-group", resource_name=name)

    def grant_ingest(self, grantee: iam.IGrantable, scope: Construct | None = None) -> None:
        """Describe the group and put records into it (and nothing else): what ingest_features.py needs."""
        grant_feature_ingestion(grantee, self.arn(scope or self, self.feature_group_name))


def grant_feature_ingestion(grantee: iam.IGrantable, feature_group_arn: str) -> None:
    """``sagemaker:DescribeFeatureGroup`` and ``sagemaker:PutRecord`` on exactly one feature group."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"],
        resource_arns=[feature_group_arn],
    )
