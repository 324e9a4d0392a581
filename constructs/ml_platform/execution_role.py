"""The SageMaker execution role of the pipelines and of the jobs they start."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, Fn, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_platform.clarify_config import MAX_SHADOW_PREFIX_LENGTH, SHADOW_ENDPOINT_ACTIONS
from ml_platform.compliance import acknowledge, acknowledge_inline_policy, acknowledge_resources
from ml_platform.data_lake import LakeAccess, Zone

# Job types a SageMaker pipeline of this platform creates, as IAM resource types.
JOB_RESOURCE_TYPES = ("processing-job", "training-job", "hyper-parameter-tuning-job", "transform-job")
#: What Clarify accepts as ``predictor.endpoint_name_prefix`` (the analysis-config schema's pattern; at most
#: ``MAX_SHADOW_PREFIX_LENGTH`` characters): no '*' or '?', so the grant's ``<prefix>*`` is the only wildcard.
SHADOW_PREFIX_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")


class SageMakerExecutionRole(Construct):
    """One role that SageMaker Pipelines assumes to run a pipeline and passes to the jobs it starts.

    Grants, all exact actions:

    * the lake: read ``read_zones``, read/write ``write_zones``, delete only in ``delete_zones`` (the
      checkpoint zone: SageMaker mirrors a checkpoint that the job prunes locally by deleting it in S3),
      and the stage key, including ``kms:CreateGrant`` for AWS resources (SageMaker creates a grant for
      each job volume it encrypts with the key);
    * the job assets (code bundle, config documents): list their bucket with exactly their keys as
      ``s3:prefix`` (SageMaker lists an ``S3Prefix`` input before it downloads it) and get the objects;
    * the job lifecycle (create/describe/stop, tags) on job ARNs of this account and region;
    * ``iam:PassRole`` on itself, only to SageMaker;
    * registering model packages into ``model_package_groups`` (the role depends on them) and describing
      their versions (``CreateModel`` from a package reads it with the caller's permissions);
    * creating and describing SageMaker models of this account and region (the batch-transform pipeline's
      model step, and the model the Clarify checks serve; it is also the models' execution role, so it pulls
      the serving image and reads the artifact);
    * the check steps' drift checks against the group's latest approved package (list and describe the
      group's packages), and SageMaker Clarify's shadow endpoint of a model (create, describe, invoke and
      delete endpoint configs and endpoints named ``<shadow_endpoint_prefix>*``: the prefix the pipelines'
      Clarify configs set as ``endpoint_name_prefix``, from which Clarify names both the endpoint config and
      the endpoint; its default, ``sm-clarify``, would be denied);
    * pulling the framework images (``image_uris``) and the platform's own images (``image_repositories``,
      e.g. the serving image's CDK asset repository), writing job logs and metrics.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        lake: LakeAccess,
        read_zones: Sequence[Zone],
        write_zones: Sequence[Zone],
        delete_zones: Sequence[Zone] = (),
        image_uris: Sequence[str],
        model_package_groups: Sequence[sagemaker.CfnModelPackageGroup],
        assets: Sequence[s3_assets.Asset],
        shadow_endpoint_prefix: str,
        image_repositories: Sequence[ecr.IRepository] = (),
    ) -> None:
        super().__init__(scope, id_)
        if len(shadow_endpoint_prefix) > MAX_SHADOW_PREFIX_LENGTH or not SHADOW_PREFIX_PATTERN.fullmatch(
            shadow_endpoint_prefix
        ):
            raise ValueError(
                f"shadow_endpoint_prefix: got {shadow_endpoint_prefix!r}; allowed: at most "
                f"{MAX_SHADOW_PREFIX_LENGTH} letters, digits and inner hyphens "
                "(Clarify's endpoint_name_prefix)"
            )
        self.shadow_endpoint_prefix = shadow_endpoint_prefix
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker pipelines, the jobs they start and the models they create",
        )
        role = self.role
        if read_zones:
            lake.grant_read(role, *read_zones)
        if write_zones:
            lake.grant_read_write(role, *write_zones)
        for zone in delete_zones:
            if zone not in write_zones:
                raise ValueError(f"delete_zones: got {zone.value!r}; allowed: zones of write_zones only")
        if delete_zones:
            lake.grant_delete(role, *delete_zones)
        # Job volumes encrypted with the stage key: SageMaker creates a grant for the instance's volume.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="GrantsForJobVolumes",
                actions=["kms:CreateGrant"],
                resources=[lake.key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )

        # The code bundle and config documents are CDK assets in the bootstrap bucket: list and read exactly
        # those objects. They are S3Prefix inputs (so each file keeps its name in the container), and
        # SageMaker lists a prefix before it downloads it.
        if not assets:
            raise ValueError("assets: got none; allowed: the jobs' file assets (code bundle, documents)")
        stack = Stack.of(self)
        buckets = {json.dumps(stack.resolve(a.bucket.bucket_arn), sort_keys=True) for a in assets}
        if len(buckets) != 1:
            raise ValueError(f"assets: got assets in {len(buckets)} buckets; allowed: one asset bucket")
        asset_bucket_arn = assets[0].bucket.bucket_arn
        asset_object_keys = [a.s3_object_key for a in assets]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadJobAssets",
                actions=["s3:GetObject"],
                resources=[f"{asset_bucket_arn}/{key}" for key in asset_object_keys],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListJobAssets",
                actions=["s3:ListBucket"],
                resources=[asset_bucket_arn],
                conditions={"StringEquals": {"s3:prefix": list(asset_object_keys)}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[asset_bucket_arn])
        )

        self.job_arns = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name="*")
            for kind in JOB_RESOURCE_TYPES
        ]
        names = [group.model_package_group_name for group in model_package_groups]
        if not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"model_package_groups: got names {names}; allowed: groups with a literal name")
        group_arns = [
            stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=name)
            for name in names
        ]
        self.package_arns = [
            stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{name}/*")
            for name in names
        ]
        # The grants name the groups (no reference CloudFormation could order by): create them first.
        for group in model_package_groups:
            role.node.add_dependency(group)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:AddTags",
                ],
                resources=self.job_arns,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterModels",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackageGroup"],
                resources=group_arns,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisteredPackages",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:AddTags",
                ],
                resources=self.package_arns,
            )
        )
        # The batch-transform pipeline's model step (CreateModel, named by SageMaker Pipelines at run time;
        # tagged for cost allocation). Nothing running as this role deletes a model.
        self.model_arn = stack.format_arn(service="sagemaker", resource="model", resource_name="*")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PipelineModels",
                actions=["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"],
                resources=[self.model_arn],
            )
        )
        # The check steps compare with the baselines of the group's latest approved package when a run sets
        # SkipDriftChecks or RegisterNewBaselines to false: SageMaker Pipelines lists the group's packages
        # (ListModelPackages authorizes on the model-package resource type, without a group in the request's
        # ARN) and describes the latest (RegisteredPackages above).
        self.package_list_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name="*"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FindApprovedBaselines",
                actions=["sagemaker:ListModelPackages"],
                resources=[self.package_list_arn],
            )
        )
        # SageMaker Clarify's model checks (post-training bias, SHAP) run as this role and stand up a shadow
        # endpoint of the step's model: it describes the model, creates the config and endpoint, invokes it
        # and deletes both (Developer Guide, "Configure Clarify processing jobs for Amazon VPC"). Clarify
        # names both from the config's endpoint_name_prefix ("<prefix>-config-..." and "<prefix>-...").
        self.shadow_endpoint_arns = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{shadow_endpoint_prefix}*")
            for kind in ("endpoint-config", "endpoint")
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ClarifyShadowEndpoints",
                actions=list(SHADOW_ENDPOINT_ACTIONS),
                resources=self.shadow_endpoint_arns,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyThisRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )

        # Framework images: the DLC account differs per region, so derive each repository ARN from its URI
        # (<account>.dkr.ecr.<region>.<domain>/<repository>:<tag>); works for literal and mapped URIs.
        repositories = sorted({self._repository_arn(uri) for uri in image_uris})
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullFrameworkImages",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=repositories,
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        # The platform's own images (CDK image assets): the same three pull actions on their repositories.
        for repository in image_repositories:
            repository.grant_pull(role)
        self.log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[self.log_group_arn, f"{self.log_group_arn}:log-stream:*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            )
        )
        self._acknowledge(lake, read_zones, write_zones)
        self.delete_zones = tuple(delete_zones)

    @staticmethod
    def _repository_arn(uri: str) -> str:
        host_and_path = Fn.split("/", uri, 2)
        host = Fn.select(0, host_and_path)
        # "<repository>:" + tag-or-nothing: an untagged URI (Model Monitor's analyzer) still splits in two.
        path = Fn.select(1, host_and_path) + ":"
        repository = Fn.select(0, Fn.split(":", path, 2))
        account = Fn.select(0, Fn.split(".", host))
        return Fn.join(
            "", ["arn:", Aws.PARTITION, ":ecr:", Aws.REGION, ":", account, ":repository/", repository]
        )

    def _acknowledge(self, lake: LakeAccess, read_zones: Sequence[Zone], write_zones: Sequence[Zone]) -> None:
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge_inline_policy(policy)
        lake.acknowledge_zone_objects(policy, *read_zones, *write_zones)
        acknowledge_resources(
            policy,
            "SageMaker Pipelines names every job it starts at run time; the grant is limited to this "
            "account, region and the job types the pipelines create.",
            *self.job_arns,
        )
        acknowledge_resources(
            policy,
            "Model package versions are created at run time inside this stage's model package groups only.",
            *self.package_arns,
        )
        acknowledge_resources(
            policy,
            "SageMaker Pipelines names the models its model steps create at run time; the grant is limited "
            "to creating, describing and tagging models of this account and region (no delete).",
            self.model_arn,
        )
        acknowledge_resources(
            policy,
            "ListModelPackages authorizes on the model-package resource type without naming a group; the "
            "grant allows listing only (describing is limited to this stage's groups).",
            self.package_list_arn,
        )
        acknowledge_resources(
            policy,
            "SageMaker Clarify names its shadow endpoints at run time from the endpoint_name_prefix the "
            "pipelines' Clarify configs set; the grant is limited to endpoints and endpoint configs of this "
            "account and region with that prefix.",
            *self.shadow_endpoint_arns,
        )
        acknowledge(
            policy,
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level permissions; "
            "PutMetricData is limited to SageMaker's namespaces by a cloudwatch:namespace condition.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge_resources(
            policy,
            "SageMaker jobs create their own log group and one log stream per instance under "
            "/aws/sagemaker/; their names are generated at run time.",
            self.log_group_arn,
            f"{self.log_group_arn}:log-stream:*",
        )
