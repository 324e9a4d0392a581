"""The role SageMaker Model Monitor's scheduled jobs run as (``RoleArn`` of the four job definitions).

A monitoring execution is a processing job that SageMaker starts from a job definition, with this role:
it pulls the Model Monitor analyzer or Clarify image, reads the endpoint's data capture (and, for model
quality and model bias, the uploaded ground truth), reads the baselines and the Clarify analysis
configuration, writes its report encrypted with the stage key, creates a grant on the stage key for its
volume, writes logs and publishes the drift metrics. The Clarify explainability run also creates, invokes
and deletes a temporary *shadow endpoint* of the explainer model (Developer Guide "Configure a SageMaker
Clarify processing job ... for a VPC": the job "needs to call the Amazon SageMaker API service to
manipulate the shadow endpoint, or describe a SageMaker model" and SageMaker Runtime to invoke it).

Every grant is exact and added by the monitor that needs it (:class:`ml_platform.model_monitor.ModelMonitor`
calls the ``grant_*`` methods), so a stage that schedules fewer monitors gets fewer permissions:

* capture: ``s3:ListBucket`` with ``s3:prefix`` under ``capture/<folder>/<endpoint>/`` and
  ``s3:GetObject`` below it (all variants: a monitor analyses the whole endpoint);
* ground truth: the same under ``ground-truth/<prefix>/``;
* baselines: ``s3:GetObject`` (and the listing SageMaker may make) of exactly the registered files;
* Clarify configurations: the CDK file assets, exactly their objects (as the pipelines' role reads its
  assets);
* reports: ``s3:PutObject``/``s3:AbortMultipartUpload`` under ``monitoring/reports/<type>/`` only, never
  read or delete;
* the stage key: ``kms:Decrypt`` (reads), ``kms:GenerateDataKey``/``kms:Encrypt`` (the output's
  ``KmsKeyId``), ``kms:CreateGrant`` only for AWS resources (the volume's ``VolumeKmsKeyId``);
* ``cloudwatch:PutMetricData`` only into the Model Monitor namespaces
  (``aws/sagemaker/Endpoints/{data,model,bias,explainability}-metrics``) and the processing jobs' own
  instance-metrics namespace;
* logs of processing jobs (``/aws/sagemaker/ProcessingJobs``);
* ECR: the analyzer's and Clarify's repositories (AWS-owned, per region) and ``ecr:GetAuthorizationToken``;
* the shadow endpoint (explainability only): ``sagemaker:DescribeModel`` of the explainer model, create /
  describe / delete endpoint configs and endpoints, and ``sagemaker:InvokeEndpoint``, all on names starting
  with the analysis configuration's ``endpoint_name_prefix``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ml_platform.clarify_config import SHADOW_ENDPOINT_ACTIONS
from ml_platform.compliance import acknowledge, acknowledge_inline_policy, acknowledge_resources
from ml_platform.data_lake import LakeAccess

#: Where processing jobs (and so monitoring executions) write their logs.
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
#: The CloudWatch namespaces Model Monitor's real-time-endpoint metrics land in, and the processing jobs'
#: instance metrics (Developer Guide "CloudWatch Metrics for ... Model Monitor", "Monitor SageMaker AI with
#: Amazon CloudWatch").
MONITOR_METRIC_NAMESPACES = (
    "aws/sagemaker/Endpoints/data-metrics",
    "aws/sagemaker/Endpoints/model-metrics",
    "aws/sagemaker/Endpoints/bias-metrics",
    "aws/sagemaker/Endpoints/explainability-metrics",
    "/aws/sagemaker/ProcessingJobs",
)
ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")


def image_repository_arn(uri: str) -> str:
    """The ECR repository ARN of an image URI ``<account>.dkr.ecr.<region>.<domain>/<repository>[:tag]``.

    Works for literal URIs and for the ``Fn::FindInMap`` tokens of an environment-agnostic stack (the
    analyzer is pulled untagged: ``<repository>:`` + nothing still splits in two).
    """
    host_and_path = Fn.split("/", uri, 2)
    host = Fn.select(0, host_and_path)
    path = Fn.select(1, host_and_path) + ":"
    repository = Fn.select(0, Fn.split(":", path, 2))
    account = Fn.select(0, Fn.split(".", host))
    return Fn.join("", ["arn:", Aws.PARTITION, ":ecr:", Aws.REGION, ":", account, ":repository/", repository])


class MonitoringJobRole(Construct):
    """The execution role of the stage's Model Monitor jobs; grants are added per monitor (module doc)."""

    def __init__(self, scope: Construct, id_: str, *, lake: LakeAccess) -> None:
        super().__init__(scope, id_)
        self.lake = lake
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker Model Monitor jobs: read capture, ground truth, baselines; write reports",
        )
        stack = Stack.of(self)
        # Every monitor: the stage key encrypts its volume (a grant per volume), its output (KmsKeyId) and
        # everything it reads from the lake.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="StageKeyForReadsAndReports",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[lake.key.key_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="GrantsForJobVolumes",
                actions=["kms:CreateGrant"],
                resources=[lake.key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        self.log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=PROCESSING_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.log_stream_arn = f"{self.log_group_arn}:log-stream:*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogGroup",
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[self.log_group_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogStreams",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_stream_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="MonitorMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": list(MONITOR_METRIC_NAMESPACES)}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self._read_prefixes: list[str] = []
        self._object_reads: list[str] = []
        self._report_prefixes: list[str] = []
        self._repositories: list[str] = []
        self._assets: list[s3_assets.Asset] = []
        self._policy = self.role.node.find_child("DefaultPolicy")
        acknowledge_inline_policy(self._policy)
        acknowledge(
            self._policy,
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level permissions; "
            "PutMetricData is limited to Model Monitor's and the processing jobs' namespaces by a "
            "cloudwatch:namespace condition.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge_resources(
            self._policy,
            "Each monitoring execution is a processing job named by SageMaker at run time; it writes one log "
            "stream per instance into the processing jobs' log group.",
            self.log_stream_arn,
        )

    @property
    def role_arn(self) -> str:
        return self.role.role_arn

    # ---- the lake --------------------------------------------------------------------------------------

    def grant_read_prefix(self, key_prefix: str, reason: str) -> None:
        """List and get every object under ``key_prefix`` (ends in '/'; tokens allowed) of the lake."""
        if not key_prefix.endswith("/"):
            raise ValueError(f"key_prefix: got {key_prefix!r}; allowed: a key prefix ending in '/'")
        if key_prefix in self._read_prefixes:
            return
        self._read_prefixes.append(key_prefix)
        objects = self.lake.bucket.arn_for_objects(f"{key_prefix}*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.lake.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{key_prefix}*"]}},
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]))
        acknowledge_resources(self._policy, reason, objects)

    def grant_read_objects(self, s3_uris: Sequence[str]) -> None:
        """Get exactly these objects (``s3://<bucket>/<key>``, literal), and list exactly their keys."""
        new = [uri for uri in s3_uris if uri not in self._object_reads]
        if not new:
            return
        keys = []
        for uri in new:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            if not uri.startswith("s3://") or not bucket or not key or key.endswith("/"):
                raise ValueError(f"s3_uris: got {uri!r}; allowed: s3://<bucket>/<object key>")
            keys.append((bucket, key))
        self._object_reads.extend(new)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/{key}" for bucket, key in keys],
            )
        )
        for bucket in sorted({b for b, _ in keys}):
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}"],
                    conditions={"StringEquals": {"s3:prefix": [k for b, k in keys if b == bucket]}},
                )
            )

    def grant_write_reports(self, key_prefix: str) -> None:
        """Put (never get or delete) objects under ``key_prefix`` (ends in '/') of the lake."""
        if not key_prefix.endswith("/"):
            raise ValueError(f"key_prefix: got {key_prefix!r}; allowed: a key prefix ending in '/'")
        if key_prefix in self._report_prefixes:
            return
        self._report_prefixes.append(key_prefix)
        objects = self.lake.bucket.arn_for_objects(f"{key_prefix}*")
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[objects])
        )
        acknowledge_resources(
            self._policy,
            "Model Monitor names each report by endpoint, schedule and execution hour at run time; writes "
            "are limited to this monitor type's report prefix.",
            objects,
        )

    # ---- images and configuration ----------------------------------------------------------------------

    def grant_pull(self, image_uri: str) -> None:
        """Pull ``image_uri`` (the analyzer's or Clarify's AWS-owned repository of the stack's region)."""
        arn = image_repository_arn(image_uri)
        key = Stack.of(self).to_json_string(arn)
        if key in self._repositories:
            return
        self._repositories.append(key)
        self.role.add_to_policy(iam.PolicyStatement(actions=list(ECR_PULL_ACTIONS), resources=[arn]))

    def grant_read_asset(self, asset: s3_assets.Asset) -> None:
        """Read one CDK file asset (a Clarify analysis configuration): exactly its object."""
        if asset in self._assets:
            return
        self._assets.append(asset)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[asset.bucket.arn_for_objects(asset.s3_object_key)]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[asset.bucket.bucket_arn],
                conditions={"StringEquals": {"s3:prefix": [asset.s3_object_key]}},
            )
        )

    # ---- the explainability run's shadow endpoint ------------------------------------------------------

    def grant_shadow_endpoints(self, *, model_name: str, endpoint_name_prefix: str) -> None:
        """Describe ``model_name``; create, invoke and delete endpoints (and their configs) named
        ``<endpoint_name_prefix>*`` (SageMaker ARNs carry names in lower case)."""
        stack = Stack.of(self)
        prefix = endpoint_name_prefix.lower()
        self.shadow_arns = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{prefix}*")
            for kind in ("endpoint-config", "endpoint")
        ]
        self.explainer_model_arn = stack.format_arn(
            service="sagemaker", resource="model", resource_name=model_name.lower()
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ExplainerModel",
                actions=["sagemaker:DescribeModel"],
                resources=[self.explainer_model_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ShadowEndpoints", actions=list(SHADOW_ENDPOINT_ACTIONS), resources=self.shadow_arns
            )
        )
        acknowledge_resources(
            self._policy,
            "Clarify names its temporary shadow endpoint and endpoint config at run time from the analysis "
            "configuration's endpoint_name_prefix; the grant is limited to that prefix.",
            *self.shadow_arns,
        )
