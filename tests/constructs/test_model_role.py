"""ModelExecutionRole on a bare Stack: what SageMaker hosting may do with the models' role, nothing more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr

from ml_platform.data_lake import DataLake, PlatformKey
from ml_platform.model_role import ModelExecutionRole
from stacks.policy import add_policy_gates
from tests.conftest import feature_flags
from tests.support.access_model import Access, denied, evaluate, resource_policies, role_policies
from tests.support.sagemaker_api import render_template_value

REPOSITORY = "arn:aws:ecr:us-east-1:123456789012:repository/serving"
ALARMS = ("ml-dev-champion-5xx", "ml-dev-challenger-latency-p99")


def make_lake(stack: Stack) -> DataLake:
    key = PlatformKey(stack, "Key", description="t", removal_policy=RemovalPolicy.DESTROY).key
    return DataLake(
        stack, "Lake", key=key, intelligent_tiering_after_days=0, noncurrent_version_expiration_days=1,
        abort_incomplete_multipart_upload_days=7, access_log_expiration_days=1,
        removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=False,
    )  # fmt: skip


def make_role(stack: Stack, *, alarms: tuple[str, ...] = ALARMS) -> tuple[ModelExecutionRole, DataLake]:
    lake = make_lake(stack)
    role = ModelExecutionRole(stack, "ModelRole", lake=lake.access, repositories=[REPOSITORY])
    if alarms:
        role.grant_describe_alarms(alarms)
    return role, lake


def template_of(stack: Stack) -> dict[str, Any]:
    return App.of(stack).synth().get_stack_by_name(stack.stack_name).template  # type: ignore[union-attr]


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = [
        r for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == [{"Ref": _role_id(template)}]
    ]  # fmt: skip
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _role_id(template: dict[str, Any]) -> str:
    (role_id,) = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    return role_id


def actions(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def by_sid(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements(template) if "Sid" in s}


def test_the_role_is_assumed_by_sagemaker_only_and_has_no_managed_policies(bare_stack: Stack) -> None:
    make_role(bare_stack)
    template = template_of(bare_stack)
    role = template["Resources"][_role_id(template)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert (
        trust["Principal"] == {"Service": "sagemaker.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    )
    assert "ManagedPolicyArns" not in role and "Policies" not in role


def test_exact_actions_only_and_no_deletes(bare_stack: Stack) -> None:
    make_role(bare_stack)
    every = [a for s in statements(template_of(bare_stack)) for a in actions(s)]
    assert all("*" not in a for a in every), every
    assert not [a for a in every if "Delete" in a or a.startswith("iam:")], every


def test_models_are_read_only_and_capture_is_written_with_the_stage_key(bare_stack: Stack) -> None:
    make_role(bare_stack)
    template = template_of(bare_stack)
    object_grants = {
        s["Resource"]["Fn::Join"][1][-1]: sorted(actions(s))
        for s in statements(template)
        if isinstance(s["Resource"], dict) and "Fn::Join" in s["Resource"] and "s3:GetObject" in actions(s)
    }
    assert object_grants == {
        "/models/*": ["s3:GetObject"],
        "/capture/*": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
    }
    listing = [s for s in statements(template) if actions(s) == ["s3:ListBucket"]]
    assert sorted(s["Condition"]["StringLike"]["s3:prefix"][0] for s in listing) == ["capture/*", "models/*"]
    kms = [s for s in statements(template) if any(a.startswith("kms:") for a in actions(s))]
    assert {a for s in kms for a in actions(s)} == {
        "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant",
    }  # fmt: skip
    assert all(s["Resource"]["Fn::GetAtt"][0].startswith("Key") for s in kms)
    # Grants on the key only for the instance volumes SageMaker attaches (KmsKeyId), never for a person.
    (grant,) = [s for s in kms if actions(s) == ["kms:CreateGrant"]]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_images_are_pulled_from_the_given_repositories_only(bare_stack: Stack) -> None:
    lake = make_lake(bare_stack)
    imported = ecr.Repository.from_repository_arn(
        bare_stack, "Imported", "arn:aws:ecr:us-east-1:123456789012:repository/other"
    )
    ModelExecutionRole(bare_stack, "ModelRole", lake=lake.access, repositories=[REPOSITORY, imported])
    sids = by_sid(template_of(bare_stack))
    pull = sids["PullServingImage"]
    assert sorted(actions(pull)) == [
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
    ]  # fmt: skip
    assert sorted(pull["Resource"]) == ["arn:aws:ecr:us-east-1:123456789012:repository/other", REPOSITORY]
    assert sids["EcrLogin"] == {
        "Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*", "Sid": "EcrLogin",
    }  # fmt: skip


def test_only_two_statements_have_resource_star_and_metrics_are_limited_by_namespace(
    bare_stack: Stack,
) -> None:
    make_role(bare_stack)
    star = [s for s in statements(template_of(bare_stack)) if s["Resource"] == "*"]
    assert sorted(a for s in star for a in actions(s)) == [
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken",
    ]
    (metrics,) = [s for s in star if actions(s) == ["cloudwatch:PutMetricData"]]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}


def test_logs_only_under_the_endpoint_log_groups(bare_stack: Stack) -> None:
    make_role(bare_stack)
    sids = by_sid(template_of(bare_stack))
    groups, streams = sids["EndpointLogGroups"], sids["EndpointLogStreams"]
    assert sorted(actions(groups)) == ["logs:CreateLogGroup", "logs:DescribeLogStreams"]
    assert sorted(actions(streams)) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert groups["Resource"]["Fn::Join"][1][-1] == ":log-group:/aws/sagemaker/Endpoints/*"
    assert streams["Resource"]["Fn::Join"][1][-1] == ":log-group:/aws/sagemaker/Endpoints/*:log-stream:*"


def test_rollback_alarms_are_readable_by_exact_arn(bare_stack: Stack) -> None:
    make_role(bare_stack)
    alarms = by_sid(template_of(bare_stack))["ReadRollbackAlarms"]
    assert actions(alarms) == ["cloudwatch:DescribeAlarms"]
    assert sorted(r["Fn::Join"][1][-1] for r in alarms["Resource"]) == sorted(f":alarm:{n}" for n in ALARMS)


def test_alarms_are_granted_once_and_never_empty(bare_stack: Stack) -> None:
    role, _ = make_role(bare_stack)
    with pytest.raises(ValueError, match=r"alarm_names: already granted 2 alarms; allowed: one call"):
        role.grant_describe_alarms(("other",))
    lake = make_lake(Stack(App(context=feature_flags()), "Other"))
    fresh = ModelExecutionRole(Stack.of(lake), "R", lake=lake.access, repositories=[REPOSITORY])
    with pytest.raises(ValueError, match=r"alarm_names: got none"):
        fresh.grant_describe_alarms(())


@pytest.mark.parametrize(
    ("repositories", "message"),
    [
        ([], r"repositories: got none; allowed: the ECR repositories"),
        (["serving:latest"], r"repositories\[0\]: got 'serving:latest'; allowed: an ECR repository ARN"),
    ],
)
def test_bad_repositories_are_refused(bare_stack: Stack, repositories: list[Any], message: str) -> None:
    lake = make_lake(bare_stack)
    with pytest.raises(ValueError, match=message):
        ModelExecutionRole(bare_stack, "ModelRole", lake=lake.access, repositories=repositories)


def test_the_role_passes_every_policy_pack(tmp_path: Path) -> None:
    app = App(context=feature_flags(), outdir=str(tmp_path))
    add_policy_gates(app)
    make_role(Stack(app, "Serving"))
    app.synth()  # raises on any unacknowledged finding
    assert json.loads((tmp_path / "validation-report.json").read_text())["pluginReports"] == []


def test_sagemaker_hosting_can_do_its_work_with_the_role_and_nothing_else(bare_stack: Stack) -> None:
    """The IAM simulator on the synthesized policies (plus the bucket and key policies of the lake)."""
    make_role(bare_stack)
    template = template_of(bare_stack)
    principal, policies = role_policies(template, _role_id(template), {})
    bucket = render_template_value(template, {"Ref": _lake_bucket_id(template)})
    key = render_template_value(template, {"Fn::GetAtt": [_key_id(template), "Arn"]})
    region_account = "us-east-1:123456789012"
    group = f"arn:aws:logs:{region_account}:log-group:/aws/sagemaker/Endpoints/ServingEndpoint-abc123"
    capture = f"arn:aws:s3:::{bucket}/capture/endpoint/ServingEndpoint-abc123/champion/2026/01/02/03/x.jsonl"
    needed = [
        Access("ecr:GetAuthorizationToken", "*", "log in to ECR"),
        Access("ecr:BatchGetImage", REPOSITORY, "pull the serving image"),
        Access("ecr:GetDownloadUrlForLayer", REPOSITORY, "pull the serving image"),
        Access(
            "s3:GetObject", f"arn:aws:s3:::{bucket}/models/train/job-1/output/model.tar.gz", "model artifact"
        ),
        Access("kms:Decrypt", key, "model artifact"),
        Access("s3:PutObject", capture, "data capture"),
        Access("kms:GenerateDataKey", key, "data capture"),
        Access("logs:CreateLogGroup", group, "endpoint logs"),
        Access("logs:CreateLogStream", f"{group}:log-stream:champion/i-0abc", "endpoint logs"),
        Access("logs:PutLogEvents", f"{group}:log-stream:champion/i-0abc", "endpoint logs"),
        Access(
            "cloudwatch:PutMetricData",
            "*",
            "instance metrics",
            {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"},
        ),
        *(
            Access(
                "cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region_account}:alarm:{name}", "rollback"
            )
            for name in ALARMS
        ),
    ]
    forbidden = [
        Access(
            "s3:PutObject",
            f"arn:aws:s3:::{bucket}/models/train/job-1/output/model.tar.gz",
            "overwrite a model",
        ),
        Access("s3:GetObject", f"arn:aws:s3:::{bucket}/raw/iris/v1/data.csv", "read raw data"),
        Access("s3:DeleteObject", capture, "delete capture"),
        Access("cloudwatch:PutMetricData", "*", "other namespace", {"cloudwatch:namespace": "Custom/Other"}),
        Access(
            "cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region_account}:alarm:other", "other alarm"
        ),
        Access("logs:CreateLogGroup", f"arn:aws:logs:{region_account}:log-group:/aws/lambda/x", "other logs"),
        Access("ecr:BatchGetImage", "arn:aws:ecr:us-east-1:123456789012:repository/other", "other image"),
    ]
    kwargs: dict[str, Any] = {
        "principal": principal,
        "identity_policies": policies,
        "resource_policies": resource_policies(template),
    }
    assert denied(evaluate(needed, **kwargs)) == []
    decisions = evaluate(forbidden, **kwargs)
    assert [str(d.access) for d in decisions if d.allowed] == []
    assert all(d.detail in ("ImplicitlyDenied", "ExplicitlyDenied") for d in decisions), decisions


def _lake_bucket_id(template: dict[str, Any]) -> str:
    (bucket_id,) = [
        lid for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket" and "LoggingConfiguration" in r["Properties"]
    ]  # fmt: skip
    return bucket_id


def _key_id(template: dict[str, Any]) -> str:
    (key_id,) = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key"]
    return key_id
