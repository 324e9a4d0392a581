"""The access model's own tests: the IAM simulator rejects what it must, the evaluator evaluates right."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.access_model import (
    CAPTURE_FILE,
    CAPTURE_HOUR,
    Access,
    Evaluation,
    Lake,
    ModelPackage,
    PipelineEvaluator,
    assume_role_access,
    denied,
    derive_accesses,
    endpoint_accesses,
    evaluate,
    evaluate_together,
    hosted_endpoints,
    package_group,
    served_packages,
    statement_resources,
    without_statements,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/exec"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}
TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::lake", "arn:aws:s3:::lake/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def policy(*statements: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "p", "policy": {"Version": "2012-10-17", "Statement": list(statements)}}]


def allowed(access: Access, identity: list[dict[str, Any]], resources: dict[str, Any] | None = None) -> bool:
    (decision,) = evaluate([access], principal=ROLE, identity_policies=identity, resource_policies=resources)
    return decision.allowed


LIST_RAW = policy(
    {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::lake",
        "Condition": {"StringLike": {"s3:prefix": ["raw/*"]}},
    }
)


def test_a_prefix_condition_is_enforced() -> None:
    """What moto's evaluator gets wrong: StringLike on s3:prefix must refuse other prefixes."""
    assert allowed(Access("s3:ListBucket", "arn:aws:s3:::lake", "t", {"s3:prefix": "raw/x/"}), LIST_RAW)
    assert not allowed(
        Access("s3:ListBucket", "arn:aws:s3:::lake", "t", {"s3:prefix": "models/x/"}), LIST_RAW
    )
    assert not allowed(Access("s3:ListBucket", "arn:aws:s3:::lake", "t"), LIST_RAW)


def test_an_exact_prefix_condition_refuses_its_neighbours() -> None:
    identity = policy(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::assets",
            "Condition": {"StringEquals": {"s3:prefix": "abc.gz"}},
        }
    )
    assert allowed(Access("s3:ListBucket", "arn:aws:s3:::assets", "t", {"s3:prefix": "abc.gz"}), identity)
    assert not allowed(Access("s3:ListBucket", "arn:aws:s3:::assets", "t", {"s3:prefix": "abc"}), identity)


def test_a_bucket_policy_deny_wins_and_tls_is_assumed() -> None:
    identity = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lake/raw/*"})
    read = Access("s3:GetObject", "arn:aws:s3:::lake/raw/a.csv", "t")
    assert allowed(read, identity, {"arn:aws:s3:::lake": TLS_ONLY})
    plain = Access("s3:GetObject", "arn:aws:s3:::lake/raw/a.csv", "t", {"aws:SecureTransport": "false"})
    assert not allowed(plain, identity, {"arn:aws:s3:::lake": TLS_ONLY})
    assert not allowed(Access("s3:GetObject", "arn:aws:s3:::lake/models/m.tar.gz", "t"), identity)


def test_a_key_needs_both_its_key_policy_and_the_identity_policy() -> None:
    identity = policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY})
    decrypt = Access("kms:Decrypt", KEY, "t")
    assert allowed(decrypt, identity, {KEY: ROOT_KEY_POLICY})
    other_account = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}}
    no_iam = {"Version": "2012-10-17", "Statement": [{**other_account, "Action": "kms:*", "Resource": "*"}]}
    assert not allowed(decrypt, identity, {KEY: no_iam})  # the key policy does not enable IAM policies
    assert not allowed(Access("kms:Encrypt", KEY, "t"), identity, {KEY: ROOT_KEY_POLICY})


def test_grants_only_for_aws_resources() -> None:
    identity = policy(
        {
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": KEY,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        }
    )
    grant = Access("kms:CreateGrant", KEY, "t", {"kms:GrantIsForAWSResource": "true"})
    assert allowed(grant, identity, {KEY: ROOT_KEY_POLICY})
    assert not allowed(Access("kms:CreateGrant", KEY, "t"), identity, {KEY: ROOT_KEY_POLICY})


def test_pass_role_only_to_the_named_service() -> None:
    identity = policy(
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": ROLE,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    )
    assert allowed(
        Access("iam:PassRole", ROLE, "t", {"iam:PassedToService": "sagemaker.amazonaws.com"}), identity
    )
    assert not allowed(
        Access("iam:PassRole", ROLE, "t", {"iam:PassedToService": "ec2.amazonaws.com"}), identity
    )


def test_a_resource_of_the_wrong_type_for_the_action_is_an_invalid_request() -> None:
    identity = policy({"Effect": "Allow", "Action": "sagemaker:CreateModelPackage", "Resource": "*"})
    group = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/g"
    (decision,) = evaluate(
        [Access("sagemaker:CreateModelPackage", group, "t")], principal=ROLE, identity_policies=identity
    )
    assert not decision.allowed and decision.detail.startswith("invalid request")
    assert "invalid request" in denied([decision])[0]


def test_identity_only_accesses_ignore_the_missing_resource_policy_of_another_account() -> None:
    repository = "arn:aws:ecr:us-east-1:763104351884:repository/pytorch-training"
    identity = policy({"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": repository})
    assert allowed(Access("ecr:BatchGetImage", repository, "t", identity_only=True), identity)
    assert not allowed(
        Access("ecr:BatchGetImage", repository, "t"), identity
    )  # cross-account, no repo policy


IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"
DEFINITION: dict[str, Any] = {
    "Version": "2020-12-01",
    "Parameters": [
        {"Name": "Version", "Type": "String", "DefaultValue": "v1"},
        {"Name": "Wait", "Type": "Integer", "DefaultValue": 10},
    ],
    "Steps": [
        {
            "Name": "CheckWait",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    {"Type": "LessThan", "LeftValue": {"Get": "Parameters.Wait"}, "RightValue": 5}
                ],
                "IfSteps": [{"Name": "Bad", "Type": "Fail", "Arguments": {"ErrorMessage": "wait too short"}}],
                "ElseSteps": [],
            },
        },
        {
            "Name": "Prep",
            "Type": "Processing",
            "Arguments": {
                "AppSpecification": {"ImageUri": IMAGE},
                "ProcessingResources": {
                    "ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1}
                },
                "ProcessingInputs": [
                    {
                        "InputName": "raw",
                        "S3Input": {
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": ["s3://lake", "raw", {"Get": "Parameters.Version"}, ""],
                                }
                            },
                            "S3DataType": "S3Prefix",
                        },
                    }
                ],
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "out",
                            "S3Output": {
                                "S3Uri": {
                                    "Std:Join": {
                                        "On": "/",
                                        "Values": [
                                            "s3://lake",
                                            "processed",
                                            {"Get": "Execution.PipelineExecutionId"},
                                            "",
                                        ],
                                    }
                                }
                            },
                        }
                    ]
                },
                "RoleArn": ROLE,
            },
        },
    ],
}


def test_the_evaluator_resolves_parameters_joins_and_step_properties() -> None:
    ev = PipelineEvaluator(DEFINITION, {"Version": "v7"})
    prep = DEFINITION["Steps"][1]
    assert ev.value(prep["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]) == "s3://lake/raw/v7/"
    reference = {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}
    assert ev.value(reference) == "s3://lake/processed/abcd1234efgh/"
    assert [s["Name"] for s in ev.executed_steps()] == ["CheckWait", "Prep"]
    assert ev.fails_with() is None


def test_the_evaluator_stops_at_a_fail_step() -> None:
    ev = PipelineEvaluator(DEFINITION, {"Wait": 1})
    assert [s["Name"] for s in ev.executed_steps()] == ["CheckWait", "Bad"]
    assert ev.fails_with() == "wait too short"


def test_derived_accesses_list_and_read_a_prefix_and_write_outputs() -> None:
    accesses = derive_accesses(DEFINITION, role_arn=ROLE, lake=Lake("lake", KEY))
    found = {(a.action, a.resource, tuple(sorted(a.context.items()))) for a in accesses}
    assert ("s3:ListBucket", "arn:aws:s3:::lake", (("s3:prefix", "raw/v1/"),)) in found
    assert ("s3:GetObject", "arn:aws:s3:::lake/raw/v1/part-00000.csv", ()) in found
    assert ("s3:PutObject", "arn:aws:s3:::lake/processed/abcd1234efgh/result.csv", ()) in found
    assert ("kms:Decrypt", KEY, (("kms:ViaService", "s3.amazonaws.com"),)) in found
    assert ("iam:PassRole", ROLE, (("iam:PassedToService", "sagemaker.amazonaws.com"),)) in found
    # No volume key in the request: no grant is needed.
    assert not [a for a in accesses if a.action == "kms:CreateGrant"]


def test_unknown_step_types_are_refused() -> None:
    definition = {**DEFINITION, "Steps": [{"Name": "X", "Type": "EMR", "Arguments": {}}]}
    with pytest.raises(ValueError, match="does not know step type 'EMR'"):
        derive_accesses(definition, role_arn=ROLE, lake=Lake("lake", KEY))


# ---- serving: endpoints, packages, trust, batched evaluation -----------------------------------------------

PACKAGE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/models/3"
SERVING_IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/serving:1"
LAKE = Lake("lake", KEY)
IMPORTS = {"Lake:Bucket": "lake", "Lake:Key": KEY}


def serving_template(*, capture: bool = True, volume_key: bool = True) -> dict[str, Any]:
    """A serving template the way CDK writes one: models, a config and an endpoint wired by Fn::GetAtt."""
    role = {"Fn::GetAtt": ["Role", "Arn"]}
    config: dict[str, Any] = {
        "ProductionVariants": [
            {"VariantName": name, "ModelName": {"Fn::GetAtt": [f"Model{name}", "ModelName"]}}
            for name in ("blue", "green")
        ]
    }
    if capture:
        config["DataCaptureConfig"] = {
            "DestinationS3Uri": {
                "Fn::Join": ["", ["s3://", {"Fn::ImportValue": "Lake:Bucket"}, "/capture/ep"]]
            },
            "KmsKeyId": {"Fn::ImportValue": "Lake:Key"},
        }
    if volume_key:
        config["KmsKeyId"] = {"Fn::ImportValue": "Lake:Key"}

    def model(**container: Any) -> dict[str, Any]:
        return {"Type": "AWS::SageMaker::Model", "Properties": {"ExecutionRoleArn": role, **container}}

    return {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
            # Both places a package can be named: Containers (the serving stack's) and PrimaryContainer.
            "Modelblue": model(Containers=[{"ModelPackageName": PACKAGE}]),
            "Modelgreen": model(PrimaryContainer={"ModelPackageName": PACKAGE}),
            "Config": {"Type": "AWS::SageMaker::EndpointConfig", "Properties": config},
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                    "DeploymentConfig": {
                        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep/blue/5xx"}]}
                    },
                },
            },
        }
    }


def test_an_endpoint_is_read_with_its_config_models_capture_keys_and_alarms() -> None:
    (endpoint,) = hosted_endpoints(serving_template(), IMPORTS)
    assert [(v.name, v.model_package_arn) for v in endpoint.variants] == [
        ("blue", PACKAGE),
        ("green", PACKAGE),
    ]
    assert {v.execution_role_arn for v in endpoint.variants} == {f"arn:aws:iam::{ACCOUNT}:role/Role"}
    assert (endpoint.capture_uri, endpoint.capture_key, endpoint.volume_key) == (
        "s3://lake/capture/ep",
        KEY,
        KEY,
    )
    assert endpoint.rollback_alarms == ("ep/blue/5xx",)
    (bare,) = hosted_endpoints(serving_template(capture=False, volume_key=False), IMPORTS)
    assert (bare.capture_uri, bare.capture_key, bare.volume_key) == (None, None, None)


def test_an_endpoint_whose_model_is_not_in_the_template_is_refused() -> None:
    template = serving_template()
    template["Resources"]["Config"]["Properties"]["ProductionVariants"][0]["ModelName"] = "imported-model"
    with pytest.raises(ValueError, match=r"variant 0\.ModelName: got 'imported-model'; allowed: Fn::GetAtt"):
        hosted_endpoints(template, IMPORTS)


def test_hosting_writes_capture_per_variant_and_grants_the_volume_key_only_when_set() -> None:
    (endpoint,) = hosted_endpoints(serving_template(), IMPORTS)
    packages = {PACKAGE: ModelPackage(SERVING_IMAGE, "s3://lake/models/run/output/model.tar.gz")}
    accesses = endpoint_accesses(endpoint, lake=LAKE, model_packages=packages)
    puts = sorted(a.resource for a in accesses if a.action == "s3:PutObject")
    hour = f"{CAPTURE_HOUR}/{CAPTURE_FILE}"
    assert puts == [f"arn:aws:s3:::lake/capture/ep/{endpoint.name}/{v}/{hour}" for v in ("blue", "green")]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\d{2}/[^/]+\.jsonl", hour)
    assert ("kms:Encrypt", KEY) in {(a.action, a.resource) for a in accesses}
    grants = [a for a in accesses if a.action == "kms:CreateGrant"]
    assert [(g.resource, dict(g.context)) for g in grants] == [(KEY, {"kms:GrantIsForAWSResource": "true"})]
    (bare,) = hosted_endpoints(serving_template(capture=False, volume_key=False), IMPORTS)
    actions = {a.action for a in endpoint_accesses(bare, lake=LAKE, model_packages=packages)}
    assert not actions & {"s3:PutObject", "kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant"}
    assert {"ecr:BatchGetImage", "s3:GetObject", "logs:PutLogEvents", "cloudwatch:DescribeAlarms"} <= actions
    with pytest.raises(ValueError, match=r"model package .*models/3.*pass what it serves"):
        endpoint_accesses(endpoint, lake=LAKE, model_packages={})


def test_a_served_version_holds_what_its_group_registers_and_other_groups_are_refused() -> None:
    registered = {
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/models/1": ModelPackage(SERVING_IMAGE, "u")
    }
    assert served_packages(registered, [PACKAGE]) == {PACKAGE: ModelPackage(SERVING_IMAGE, "u")}
    other = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/other/3"
    with pytest.raises(
        ValueError, match=r"group 'other' is not one the pipeline registers into \(\['models'\]\)"
    ):
        served_packages(registered, [other])
    with pytest.raises(ValueError, match="not a versioned model package ARN"):
        package_group(f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/models")


def test_evaluating_together_decides_as_separate_evaluations_do_and_checks_trust() -> None:
    read = Access("s3:GetObject", "arn:aws:s3:::lake/raw/a.csv", "t")
    write = Access("s3:PutObject", "arn:aws:s3:::lake/raw/a.csv", "t")
    readers = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lake/raw/*"})
    writers = policy({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::lake/raw/*"})
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    together = evaluate_together(
        [
            Evaluation([read, write, read], ROLE, readers),
            Evaluation([read, write], ROLE, writers),
            Evaluation([assume_role_access(ROLE)], "sagemaker.amazonaws.com", (), {ROLE: trust}),
            Evaluation(
                [assume_role_access(ROLE, "ec2.amazonaws.com")], "ec2.amazonaws.com", (), {ROLE: trust}
            ),
        ]
    )
    assert [[d.allowed for d in batch] for batch in together] == [
        [True, False],
        [False, True],
        [True],
        [False],
    ]
    separate = [evaluate([read, write], principal=ROLE, identity_policies=p) for p in (readers, writers)]
    assert [[d.allowed for d in b] for b in separate] == [[True, False], [False, True]]
    bare = Evaluation([Access("s3:GetObject", "arn:aws:s3:::lake/a", "t")], "sagemaker.amazonaws.com")
    with pytest.raises(ValueError, match="names no account"):
        evaluate_together([bare])


def test_a_statement_is_dropped_from_every_policy_that_holds_it() -> None:
    both = policy(
        {
            "Sid": "Keep",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::lake/models/*",
        },
        {
            "Sid": "Drop",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": ["arn:aws:s3:::lake/capture/*"],
        },
    )
    kept = without_statements(both, lambda s: "arn:aws:s3:::lake/capture/*" in statement_resources(s))
    assert [s["Sid"] for s in kept[0]["policy"]["Statement"]] == ["Keep"]
    assert len(both[0]["policy"]["Statement"]) == 2  # the input is not changed
