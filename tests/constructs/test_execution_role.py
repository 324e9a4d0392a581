"""SageMakerExecutionRole on a bare Stack: what the pipelines' role may do, and nothing broader."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Template

from ml_platform.clarify_config import shadow_endpoint_prefix
from ml_platform.data_lake import DataLake, PlatformKey, Zone
from ml_platform.execution_role import SageMakerExecutionRole
from ml_platform.source_bundle import JsonDocument

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311"
#: What the training stack passes (``shadow_endpoint_prefix(<stack name>, "clarify")``).
SHADOW_PREFIX = shadow_endpoint_prefix("MlPlatform-dev", "clarify")


def make_lake(stack: Stack) -> DataLake:
    key = PlatformKey(stack, "Key", description="t", removal_policy=RemovalPolicy.DESTROY).key
    return DataLake(
        stack, "Lake", key=key, intelligent_tiering_after_days=0, noncurrent_version_expiration_days=1,
        abort_incomplete_multipart_upload_days=7, access_log_expiration_days=1,
        removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=False,
    )  # fmt: skip


def group(stack: Stack, name: str) -> sagemaker.CfnModelPackageGroup:
    return sagemaker.CfnModelPackageGroup(stack, f"Group-{name}", model_package_group_name=name)


def make_role(stack: Stack, prefix: str = SHADOW_PREFIX) -> tuple[SageMakerExecutionRole, dict[str, Any]]:
    lake = make_lake(stack)
    role = SageMakerExecutionRole(
        stack,
        "Exec",
        lake=lake.access,
        read_zones=[Zone.RAW],
        write_zones=[Zone.MODELS, Zone.CHECKPOINTS],
        delete_zones=[Zone.CHECKPOINTS],
        image_uris=[IMAGE],
        model_package_groups=[group(stack, "my-models")],
        assets=[
            JsonDocument(stack, "A", document={"a": 1}).asset,
            JsonDocument(stack, "B", document=[2]).asset,
        ],
        shadow_endpoint_prefix=prefix,
    )
    template = Template.from_stack(stack).to_json()
    (policy,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    statements = {
        s.get("Sid", f"#{i}"): s for i, s in enumerate(policy["Properties"]["PolicyDocument"]["Statement"])
    }
    asset_keys = [stack.resolve(a.s3_object_key) for a in role_assets(stack)]
    return role, {"template": template, "statements": statements, "stack": stack, "asset_keys": asset_keys}


def role_assets(stack: Stack) -> list[Any]:
    return [c.asset for c in stack.node.children if isinstance(c, JsonDocument)]


def actions(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_role_is_assumed_by_sagemaker_only(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack)
    (role,) = [r for r in out["template"]["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]  # no *FullAccess managed policies


def test_no_action_wildcards_and_deletes_only_in_the_checkpoint_zone(bare_stack: Stack) -> None:
    """S3 deletes only of checkpoints; the only other deletes are Clarify's of its own shadow endpoints."""
    _, out = make_role(bare_stack)
    every = [a for s in out["statements"].values() for a in actions(s)]
    assert all("*" not in a for a in every), every
    deletes = [s for s in out["statements"].values() if any("Delete" in a for a in actions(s))]
    (delete,) = [s for s in deletes if any(a.startswith("s3:") for a in actions(s))]
    assert actions(delete) == ["s3:DeleteObject"]
    assert delete["Resource"]["Fn::Join"][1][-1] == "/checkpoints/*"
    (shadow,) = [s for s in deletes if s is not delete]
    assert shadow["Sid"] == "ClarifyShadowEndpoints"


def test_the_shadow_endpoint_grant_names_only_clarify_endpoints(bare_stack: Stack) -> None:
    """Create, describe, invoke, delete: only endpoints and configs named ``<shadow_endpoint_prefix>*`` (the
    prefix the Clarify configs set; Clarify names both the config and the endpoint from it)."""
    _, out = make_role(bare_stack)
    shadow = out["statements"]["ClarifyShadowEndpoints"]
    assert sorted(actions(shadow)) == sorted(
        f"sagemaker:{a}"
        for a in (
            "CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig", "CreateEndpoint",
            "DescribeEndpoint", "DeleteEndpoint", "InvokeEndpoint",
        )
    )  # fmt: skip
    tails = sorted(r["Fn::Join"][1][-1] for r in shadow["Resource"])
    assert SHADOW_PREFIX == "mlplatform-dev-clarify"
    assert tails == [":endpoint-config/mlplatform-dev-clarify*", ":endpoint/mlplatform-dev-clarify*"]
    listing = out["statements"]["FindApprovedBaselines"]
    assert actions(listing) == ["sagemaker:ListModelPackages"]
    assert listing["Resource"]["Fn::Join"][1][-1] == ":model-package/*"


def test_delete_zones_must_be_write_zones(bare_stack: Stack) -> None:
    lake = make_lake(bare_stack)
    with pytest.raises(ValueError, match=r"delete_zones: got 'raw'; allowed: zones of write_zones only"):
        SageMakerExecutionRole(
            bare_stack, "Exec", lake=lake.access, read_zones=[Zone.RAW], write_zones=[Zone.MODELS],
            delete_zones=[Zone.RAW], image_uris=[IMAGE], model_package_groups=[group(bare_stack, "g")],
            assets=[JsonDocument(bare_stack, "A", document={}).asset], shadow_endpoint_prefix=SHADOW_PREFIX,
        )  # fmt: skip


def test_job_assets_are_listed_with_exactly_their_keys_as_prefix(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack)
    keys = out["asset_keys"]
    assert len(keys) == 2 and all(k.endswith(".json") for k in keys)
    listing = out["statements"]["ListJobAssets"]
    assert actions(listing) == ["s3:ListBucket"]
    bucket = listing["Resource"]["Fn::Join"][1]
    assert bucket[-1] == {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}
    assert sorted(listing["Condition"]["StringEquals"]["s3:prefix"]) == sorted(keys)
    assert list(listing["Condition"]) == ["StringEquals"]
    reads = out["statements"]["ReadJobAssets"]
    assert sorted(r["Fn::Join"][1][-1] for r in reads["Resource"]) == sorted(f"/{k}" for k in keys)


def test_the_role_depends_on_the_model_package_groups_it_names(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack)
    resources = out["template"]["Resources"]
    (role_id,) = [lid for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    (group_id,) = [lid for lid, r in resources.items() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"]
    assert group_id in resources[role_id]["DependsOn"]


def test_grants_on_the_stage_key_are_only_for_aws_resources(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack)
    grant = out["statements"]["GrantsForJobVolumes"]
    assert actions(grant) == ["kms:CreateGrant"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert grant["Resource"] == {"Fn::GetAtt": [grant["Resource"]["Fn::GetAtt"][0], "Arn"]}
    assert grant["Resource"]["Fn::GetAtt"][0].startswith("Key")


def test_pass_role_only_itself_only_to_sagemaker(bare_stack: Stack) -> None:
    role, out = make_role(bare_stack)
    statement = out["statements"]["PassOnlyThisRoleToSageMaker"]
    assert actions(statement) == ["iam:PassRole"]
    assert statement["Resource"] == bare_stack.resolve(role.role.role_arn)
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_jobs_and_packages_are_scoped_to_their_arn_types(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack)
    jobs = out["statements"]["PipelineJobs"]
    suffixes = sorted(r["Fn::Join"][1][-1] for r in jobs["Resource"])
    assert suffixes == sorted(
        f":{k}/*" for k in ("processing-job", "training-job", "hyper-parameter-tuning-job", "transform-job")
    )
    packages = out["statements"]["RegisteredPackages"]
    assert packages["Resource"]["Fn::Join"][1][-1] == ":model-package/my-models/*"
    groups = out["statements"]["RegisterModels"]
    assert groups["Resource"]["Fn::Join"][1][-1] == ":model-package-group/my-models"


def test_images_are_pulled_from_their_own_repository_only(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack)
    pull = out["statements"]["PullFrameworkImages"]
    assert sorted(actions(pull)) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    (repository,) = pull["Resource"] if isinstance(pull["Resource"], list) else [pull["Resource"]]
    parts = repository["Fn::Join"][1]
    literal = "".join(p if isinstance(p, str) else "<token>" for p in parts)
    # The account and repository come from the URI itself (correct for every region's DLC account).
    assert literal == "arn:<token>:ecr:<token>:763104351884:repository/pytorch-training"


def test_metrics_are_limited_to_sagemaker_namespaces(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack)
    metrics = out["statements"]["JobMetrics"]
    assert actions(metrics) == ["cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {
        "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}
    }


@pytest.mark.parametrize(
    "prefix",
    ["", "sm-clarify*", "-clarify", "clarify-", "a" * 24, "ml_platform-clarify", "ml platform"],
)
def test_a_shadow_prefix_clarify_would_refuse_or_that_widens_the_grant_is_refused(
    bare_stack: Stack, prefix: str
) -> None:
    """At most 23 letters, digits and inner hyphens (Clarify's endpoint_name_prefix); no wildcard."""
    message = rf"shadow_endpoint_prefix: got {re.escape(repr(prefix))}; allowed: "
    with pytest.raises(ValueError, match=message):
        make_role(bare_stack, prefix)


def test_the_grant_follows_the_prefix_given(bare_stack: Stack) -> None:
    _, out = make_role(bare_stack, "x" * 23)
    tails = sorted(r["Fn::Join"][1][-1] for r in out["statements"]["ClarifyShadowEndpoints"]["Resource"])
    assert tails == [f":endpoint-config/{'x' * 23}*", f":endpoint/{'x' * 23}*"]
