"""The encrypted, versioned S3 data lake and the stage's KMS key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aws_cdk import CfnOutput, Duration, Fn, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from ml_platform.compliance import REPLICATION_REASON, REPLICATION_RULES, acknowledge, acknowledge_resources


class Zone(StrEnum):
    """The lake's zones. Each is a top-level prefix of the one data-lake bucket."""

    RAW = "raw"  # immutable source datasets: raw/<dataset>/<version>/{manifest.json, data files}
    PROCESSED = "processed"  # outputs of processing jobs (train/validation/test splits, baselines)
    FEATURES = "features"  # the Feature Store offline store
    MODELS = "models"  # model artifacts written by training jobs
    CHECKPOINTS = "checkpoints"  # spot-training checkpoints, one prefix per pipeline execution
    CAPTURE = "capture"  # endpoint data capture
    MONITORING = "monitoring"  # Model Monitor baselines and reports
    # the actual outcomes of inferences, uploaded by the application for model-quality and bias monitoring:
    # ground-truth/<monitoring.ground_truth_prefix>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl
    GROUND_TRUTH = "ground-truth"

    @property
    def prefix(self) -> str:
        """The key prefix of the zone, ending in '/'."""
        return f"{self.value}/"


def dataset_prefix(dataset: str, version: str) -> str:
    """The key prefix of one version of a raw dataset: ``raw/<dataset>/<version>/``."""
    for label, value in (("dataset", dataset), ("version", version)):
        if not value or "/" in value:
            raise ValueError(f"{label}: got {value!r}; allowed: a non-empty name without '/'")
    return f"{Zone.RAW.prefix}{dataset}/{version}/"


class PlatformKey(Construct):
    """The customer-managed KMS key that encrypts everything the stage stores (rotation on)."""

    def __init__(
        self, scope: Construct, id_: str, *, description: str, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=Duration.days(30),
        )


class DataLake(Construct):
    """The access-log bucket and the data-lake bucket.

    The lake bucket is versioned, SSE-KMS with an S3 bucket key, TLS-only, blocks all public
    access, writes server access logs to the log bucket, and has one lifecycle rule: objects
    move to Intelligent-Tiering, noncurrent versions expire, incomplete multipart uploads are
    aborted. Zones are prefixes (:class:`Zone`).

    The access-log bucket uses SSE-S3: S3 server access logging cannot deliver to a bucket
    whose default encryption is SSE-KMS.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.IKey,
        intelligent_tiering_after_days: int,
        noncurrent_version_expiration_days: int,
        abort_incomplete_multipart_upload_days: int,
        access_log_expiration_days: int,
        removal_policy: RemovalPolicy,
        auto_delete_objects: bool,
    ) -> None:
        super().__init__(scope, id_)
        if auto_delete_objects and removal_policy != RemovalPolicy.DESTROY:
            raise ValueError("auto_delete_objects: got True; allowed: True only with RemovalPolicy.DESTROY")
        self.key = key
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(access_log_expiration_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(
                        abort_incomplete_multipart_upload_days
                    ),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="data-lake/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tiering-and-version-cleanup",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=Duration.days(intelligent_tiering_after_days),
                        )
                    ],
                    noncurrent_version_expiration=Duration.days(noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(
                        abort_incomplete_multipart_upload_days
                    ),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
        )
        for bucket in (self.access_log_bucket, self.bucket):
            acknowledge(bucket, REPLICATION_REASON, *REPLICATION_RULES)
        acknowledge(
            self.access_log_bucket,
            "S3 server access logging delivers only to target buckets encrypted with SSE-S3 (SSE-KMS is not "
            "supported for log delivery); the logs hold request metadata, never lake objects.",
            "HIPAA.Security-S3DefaultEncryptionKMS",
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
        )
        self.access = LakeAccess(bucket=self.bucket, key=key)

    def s3_uri(self, zone: Zone, *parts: str) -> str:
        """``s3://<bucket>/<zone>/<parts...>`` (a token until deploy)."""
        return self.access.s3_uri(zone, *parts)

    def object_arn(self, zone: Zone) -> str:
        return self.access.object_arn(zone)

    def grant_read(self, grantee: iam.IGrantable, *zones: Zone) -> None:
        self.access.grant_read(grantee, *zones)

    def grant_read_write(self, grantee: iam.IGrantable, *zones: Zone) -> None:
        self.access.grant_read_write(grantee, *zones)

    def acknowledge_zone_objects(self, policy: IConstruct, *zones: Zone) -> None:
        self.access.acknowledge_zone_objects(policy, *zones)

    def export(self, export_prefix: str) -> LakeExports:
        """Explicit CloudFormation exports of the bucket and key, for stacks that read and write the lake.

        Explicit exports (rather than automatic cross-stack references) keep the contract between the
        stateful data stack and its consumers stable and visible, and let cdk-nag findings on consumer
        policies be acknowledged exactly (their text is known when the consumer is built).
        """
        exports = LakeExports(
            bucket_name=f"{export_prefix}:LakeBucketName",
            bucket_arn=f"{export_prefix}:LakeBucketArn",
            key_arn=f"{export_prefix}:LakeKeyArn",
        )
        CfnOutput(self, "BucketNameExport", value=self.bucket.bucket_name, export_name=exports.bucket_name)
        CfnOutput(self, "BucketArnExport", value=self.bucket.bucket_arn, export_name=exports.bucket_arn)
        CfnOutput(self, "KeyArnExport", value=self.key.key_arn, export_name=exports.key_arn)
        return exports


@dataclass(frozen=True)
class LakeExports:
    """The export names of a :class:`DataLake` (see :meth:`DataLake.export`)."""

    bucket_name: str
    bucket_arn: str
    key_arn: str


class LakeAccess:
    """Zone-scoped access to a lake bucket and its key: exact actions, one prefix per zone.

    Built by :class:`DataLake` for its own stack, or by :meth:`from_exports` in a consumer stack.
    """

    def __init__(self, *, bucket: s3.IBucket, key: kms.IKey) -> None:
        self.bucket = bucket
        self.key = key

    @classmethod
    def from_exports(cls, scope: Construct, id_: str, exports: LakeExports) -> LakeAccess:
        key = kms.Key.from_key_arn(scope, f"{id_}Key", Fn.import_value(exports.key_arn))
        bucket = s3.Bucket.from_bucket_attributes(
            scope,
            f"{id_}Bucket",
            bucket_arn=Fn.import_value(exports.bucket_arn),
            bucket_name=Fn.import_value(exports.bucket_name),
            encryption_key=key,
        )
        return cls(bucket=bucket, key=key)

    def s3_uri(self, zone: Zone, *parts: str) -> str:
        """``s3://<bucket>/<zone>/<parts...>`` (a token until deploy). Ends in '/' when the last part does."""
        return f"s3://{self.bucket.bucket_name}/{zone.prefix}{'/'.join(parts)}"

    def object_arn(self, zone: Zone) -> str:
        """The ARN pattern of every object in ``zone`` (``<bucket arn>/<zone>/*``)."""
        return self.bucket.arn_for_objects(f"{zone.prefix}*")

    def grant_read(self, grantee: iam.IGrantable, *zones: Zone) -> None:
        """List and read (decrypt) objects in the given zones only. Exact actions, no wildcards."""
        self._grant_list(grantee, zones)
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:GetObject"], resource_arns=[self.object_arn(z) for z in zones]
        )
        self.key.grant(grantee, "kms:Decrypt")

    def grant_read_write(self, grantee: iam.IGrantable, *zones: Zone) -> None:
        """List, read and write (encrypt/decrypt) objects in the given zones only; never delete."""
        self._grant_list(grantee, zones)
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            resource_arns=[self.object_arn(z) for z in zones],
        )
        self.key.grant(grantee, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")

    def grant_delete(self, grantee: iam.IGrantable, *zones: Zone) -> None:
        """Delete objects in the given zones only (the bucket is versioned: a deleted object's data stays
        as a noncurrent version until the lifecycle rule expires it)."""
        if not zones:
            raise ValueError("zones: got none; allowed: one or more of " + ", ".join(z.value for z in Zone))
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:DeleteObject"], resource_arns=[self.object_arn(z) for z in zones]
        )

    def acknowledge_zone_objects(self, policy: IConstruct, *zones: Zone) -> None:
        """Acknowledge the IAM5 finding for each zone's ``<bucket arn>/<zone>/*`` on a grantee's policy.

        Granting a zone means granting every object key under its prefix; that wildcard is the zone.
        """
        acknowledge_resources(
            policy,
            "Access is scoped to the object keys under one lake zone prefix; the keys are unknown at deploy "
            "time.",
            *(self.object_arn(zone) for zone in zones),
        )

    def _grant_list(self, grantee: iam.IGrantable, zones: tuple[Zone, ...]) -> None:
        if not zones:
            raise ValueError("zones: got none; allowed: one or more of " + ", ".join(z.value for z in Zone))
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{z.prefix}*" for z in zones]}},
            )
        )
