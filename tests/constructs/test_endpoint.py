"""ServingEndpoint on a bare Stack: models, endpoint config, blue/green endpoint and autoscaling.

Fine-grained assertions on every property, the props it refuses, the API requests CloudFormation makes for it
(validated against botocore) and the cdk-nag packs.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Fn, RemovalPolicy, Stack
from aws_cdk.assertions import Match, Template

from ml_platform.data_lake import DataLake, LakeAccess, LakeExports, PlatformKey, Zone
from ml_platform.endpoint import (
    AUTOSCALED_VARIANT_PROCEDURE,
    AutoscaledVariantUpdateError,
    CaptureProps,
    DeployedVariant,
    DeploymentProps,
    ScalingProps,
    ServingEndpoint,
    VariantProps,
    check_autoscaled_variant_updates,
)
from ml_platform.model_role import ModelExecutionRole
from stacks.policy import add_policy_gates
from tests.conftest import feature_flags
from tests.support.endpoint_requests import (
    ApiRequest,
    render_requests,
    requests_of,
    validate,
    validate_endpoint_template,
)

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/ml-dev-models/{}"
REPOSITORY = "arn:aws:ecr:us-east-1:123456789012:repository/serving"
CHAMPION = VariantProps(
    name="champion",
    model_package_arn=PACKAGE.format(3),
    instance_type="ml.m5.large",
    initial_instance_count=2,
    initial_weight=0.9,
    min_capacity=2,
    max_capacity=6,
    target_invocations_per_instance=4500.0,
)
CHALLENGER = VariantProps(
    name="challenger",
    model_package_arn=PACKAGE.format(4),
    instance_type="ml.c5.xlarge",
    initial_instance_count=1,
    initial_weight=0.1,
    min_capacity=1,
    max_capacity=3,
    target_invocations_per_instance=6000.0,
)
DEPLOYMENT = DeploymentProps(
    canary_percent=10,
    canary_wait_seconds=300,
    baking_seconds=600,
    max_execution_seconds=3600,
    rollback_alarm_names=("ml-dev-champion-5xx", "ml-dev-challenger-5xx", "ml-dev-latency-p99"),
)
SCALING = ScalingProps(scale_in_cooldown_seconds=300, scale_out_cooldown_seconds=60)


def make_lake(stack: Stack) -> DataLake:
    key = PlatformKey(stack, "Key", description="t", removal_policy=RemovalPolicy.DESTROY).key
    return DataLake(
        stack, "Lake", key=key, intelligent_tiering_after_days=0, noncurrent_version_expiration_days=1,
        abort_incomplete_multipart_upload_days=7, access_log_expiration_days=1,
        removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=False,
    )  # fmt: skip


def make_endpoint(
    stack: Stack, *, lake: LakeAccess | None = None, **overrides: Any
) -> tuple[ServingEndpoint, LakeAccess]:
    access = lake if lake is not None else make_lake(stack).access
    props: dict[str, Any] = {
        "variants": [CHAMPION, CHALLENGER],
        "role": ModelExecutionRole(stack, "ModelRole", lake=access, repositories=[REPOSITORY]),
        "key": access.key,
        "capture": CaptureProps(
            destination_s3_uri=access.s3_uri(Zone.CAPTURE, "endpoint"), sampling_percentage=25
        ),
        "deployment": DEPLOYMENT,
        "scaling": SCALING,
    }
    props.update(overrides)
    return ServingEndpoint(stack, "Serving", **props), access


def resources(stack: Stack, kind: str) -> dict[str, Any]:
    return dict(Template.from_stack(stack).find_resources(kind))


def only(stack: Stack, kind: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = resources(stack, kind).items()
    return logical_id, resource


def config_props(stack: Stack) -> dict[str, Any]:
    return only(stack, "AWS::SageMaker::EndpointConfig")[1]["Properties"]


# ---- models -----------------------------------------------------------------------------------------------


def test_one_network_isolated_model_per_variant_from_its_package(bare_stack: Stack) -> None:
    endpoint, _ = make_endpoint(bare_stack)
    models = resources(bare_stack, "AWS::SageMaker::Model")
    assert len(models) == 2
    role_arn = bare_stack.resolve(endpoint.node.scope.node.find_child("ModelRole").role.role_arn)  # type: ignore[union-attr]
    by_package = {
        m["Properties"]["Containers"][0]["ModelPackageName"]: m["Properties"] for m in models.values()
    }
    assert set(by_package) == {PACKAGE.format(3), PACKAGE.format(4)}
    for package, props in by_package.items():
        assert props == {
            "EnableNetworkIsolation": True,
            "ExecutionRoleArn": role_arn,
            "Containers": [{"ModelPackageName": package}],  # image and artifact come from the package
        }
    assert set(endpoint.models) == {"champion", "challenger"}


def test_models_wait_for_the_roles_policy(bare_stack: Stack) -> None:
    make_endpoint(bare_stack)
    (policy_id,) = resources(bare_stack, "AWS::IAM::Policy")
    for model in resources(bare_stack, "AWS::SageMaker::Model").values():
        assert policy_id in model["DependsOn"]


def test_no_physical_names(bare_stack: Stack) -> None:
    make_endpoint(bare_stack)
    assert all(
        "ModelName" not in m["Properties"] for m in resources(bare_stack, "AWS::SageMaker::Model").values()
    )
    assert "EndpointConfigName" not in config_props(bare_stack)
    assert "EndpointName" not in only(bare_stack, "AWS::SageMaker::Endpoint")[1]["Properties"]


# ---- endpoint config --------------------------------------------------------------------------------------


def test_every_variant_with_its_model_type_count_and_weight(bare_stack: Stack) -> None:
    endpoint, _ = make_endpoint(bare_stack)
    variants = config_props(bare_stack)["ProductionVariants"]
    assert variants == [
        {
            "VariantName": v.name,
            "ModelName": bare_stack.resolve(endpoint.models[v.name].attr_model_name),
            "InstanceType": v.instance_type,
            "InitialInstanceCount": v.initial_instance_count,
            "InitialVariantWeight": v.initial_weight,
        }
        for v in (CHAMPION, CHALLENGER)
    ]


def test_capture_of_inputs_and_outputs_into_the_capture_zone_with_the_stage_key(bare_stack: Stack) -> None:
    _, lake = make_endpoint(bare_stack)
    capture = config_props(bare_stack)["DataCaptureConfig"]
    assert capture == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": {
            "Fn::Join": ["", ["s3://", bare_stack.resolve(lake.bucket.bucket_name), "/capture/endpoint"]]
        },
        "KmsKeyId": bare_stack.resolve(lake.key.key_arn),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
    }


def test_the_stage_key_encrypts_ebs_only_instance_volumes(bare_stack: Stack) -> None:
    endpoint, lake = make_endpoint(bare_stack)
    assert config_props(bare_stack)["KmsKeyId"] == bare_stack.resolve(lake.key.key_arn)
    assert endpoint.volume_key_omitted is False


@pytest.mark.parametrize(
    "types",
    [("ml.g5.xlarge", "ml.g5.xlarge"), ("ml.m5.large", "ml.g4dn.xlarge"), ("ml.m5d.large", "ml.c5.xlarge")],
    ids=["all-instance-storage", "mixed-second", "mixed-first"],
)
def test_no_volume_key_when_any_variant_has_instance_storage(
    bare_stack: Stack, types: tuple[str, str]
) -> None:
    variants = [replace(CHAMPION, instance_type=types[0]), replace(CHALLENGER, instance_type=types[1])]
    endpoint, lake = make_endpoint(bare_stack, variants=variants)
    props = config_props(bare_stack)
    assert "KmsKeyId" not in props
    assert props["DataCaptureConfig"]["KmsKeyId"] == bare_stack.resolve(lake.key.key_arn)  # capture keeps it
    assert endpoint.volume_key_omitted is True


# ---- endpoint ---------------------------------------------------------------------------------------------


def test_blue_green_canary_with_baking_timeout_and_rollback_alarms(bare_stack: Stack) -> None:
    make_endpoint(bare_stack)
    props = only(bare_stack, "AWS::SageMaker::Endpoint")[1]["Properties"]
    assert props["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                "WaitIntervalInSeconds": 300,
            },
            "TerminationWaitInSeconds": 600,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": name} for name in DEPLOYMENT.rollback_alarm_names]
        },
    }


def test_updates_keep_instance_counts_but_apply_weights(bare_stack: Stack) -> None:
    endpoint, _ = make_endpoint(bare_stack)
    config_id, _ = only(bare_stack, "AWS::SageMaker::EndpointConfig")
    props = only(bare_stack, "AWS::SageMaker::Endpoint")[1]["Properties"]
    assert props["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    assert props["RetainAllVariantProperties"] is True
    # DataCaptureConfig is "not currently supported" in this list (SageMaker API reference): never sent.
    assert props["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]
    assert "RetainDeploymentConfig" not in props
    assert endpoint.applied_variant_properties == ("DesiredWeight",)


def test_without_autoscaled_variants_updates_apply_the_configs_instance_counts(bare_stack: Stack) -> None:
    variants = [replace(CHAMPION, autoscaling=False), replace(CHALLENGER, autoscaling=False)]
    make_endpoint(bare_stack, variants=variants)
    props = only(bare_stack, "AWS::SageMaker::Endpoint")[1]["Properties"]
    kinds = [p["VariantPropertyType"] for p in props["ExcludeRetainedVariantProperties"]]
    assert kinds == ["DesiredInstanceCount", "DesiredWeight"]
    assert resources(bare_stack, "AWS::ApplicationAutoScaling::ScalableTarget") == {}


def test_the_endpoint_does_not_reference_the_alarms(bare_stack: Stack) -> None:
    """Alarm names are literals in the endpoint: the alarms may reference it without a cycle."""
    make_endpoint(bare_stack)
    _, endpoint = only(bare_stack, "AWS::SageMaker::Endpoint")
    alarms = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert all(isinstance(a["AlarmName"], str) for a in alarms)
    assert "DependsOn" not in endpoint


# ---- autoscaling ------------------------------------------------------------------------------------------


def test_one_scalable_target_per_variant_on_the_endpoint(bare_stack: Stack) -> None:
    endpoint, _ = make_endpoint(bare_stack)
    endpoint_id, _ = only(bare_stack, "AWS::SageMaker::Endpoint")
    targets = resources(bare_stack, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert len(targets) == 2
    for variant in (CHAMPION, CHALLENGER):
        lid = bare_stack.resolve(endpoint.scalable_targets[variant.name].logical_id)
        assert targets[lid]["Properties"] == {
            "ServiceNamespace": "sagemaker",
            "ResourceId": {
                "Fn::Join": [
                    "",
                    ["endpoint/", {"Fn::GetAtt": [endpoint_id, "EndpointName"]}, f"/variant/{variant.name}"],
                ]
            },
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": variant.min_capacity,
            "MaxCapacity": variant.max_capacity,
        }  # no RoleARN: the SageMaker service-linked role of Application Auto Scaling


def test_target_tracking_on_invocations_per_instance_with_both_cooldowns(bare_stack: Stack) -> None:
    endpoint, _ = make_endpoint(bare_stack)
    for variant in (CHAMPION, CHALLENGER):
        Template.from_stack(bare_stack).has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "PolicyType": "TargetTrackingScaling",
                "ScalingTargetId": {
                    "Ref": bare_stack.resolve(endpoint.scalable_targets[variant.name].logical_id)
                },
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": variant.target_invocations_per_instance,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 60,
                    "DisableScaleIn": Match.absent(),
                },
            },
        )
    assert len(resources(bare_stack, "AWS::ApplicationAutoScaling::ScalingPolicy")) == 2


def test_a_variant_with_autoscaling_off_gets_no_target_or_policy(bare_stack: Stack) -> None:
    endpoint, _ = make_endpoint(bare_stack, variants=[CHAMPION, replace(CHALLENGER, autoscaling=False)])
    assert set(endpoint.scalable_targets) == set(endpoint.scaling_policies) == {"champion"}
    assert len(resources(bare_stack, "AWS::ApplicationAutoScaling::ScalableTarget")) == 1


def test_resources_are_created_in_dependency_order(bare_stack: Stack) -> None:
    """Models -> config -> endpoint -> scalable targets -> policies, by references CloudFormation follows."""
    make_endpoint(bare_stack)
    template = Template.from_stack(bare_stack).to_json()

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["Ref"]} if "Ref" in node else set()
            if "Fn::GetAtt" in node:
                found.add(node["Fn::GetAtt"][0])
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    by_type: dict[str, list[str]] = {}
    for lid, resource in template["Resources"].items():
        by_type.setdefault(resource["Type"], []).append(lid)
    (config_id,) = by_type["AWS::SageMaker::EndpointConfig"]
    (endpoint_id,) = by_type["AWS::SageMaker::Endpoint"]
    resources_ = template["Resources"]
    assert set(by_type["AWS::SageMaker::Model"]) <= refs(resources_[config_id])
    assert config_id in refs(resources_[endpoint_id])
    for target in by_type["AWS::ApplicationAutoScaling::ScalableTarget"]:
        assert endpoint_id in refs(resources_[target])
    assert {
        next(iter(refs(resources_[p]))) for p in by_type["AWS::ApplicationAutoScaling::ScalingPolicy"]
    } == set(by_type["AWS::ApplicationAutoScaling::ScalableTarget"])


# ---- refused props ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"variants": [CHAMPION, replace(CHALLENGER, name="Champion")]},
            r"variants.name: got \['Champion', 'champion'\]; allowed: unique",
        ),
        (
            {"variants": [replace(CHAMPION, initial_weight=0), replace(CHALLENGER, initial_weight=0)]},
            r"variants.initial_weight: got \[0, 0\]; allowed: at least one weight above 0",
        ),
        (
            {"variants": [CHAMPION, replace(CHALLENGER, initial_weight=-1)]},
            r"variants\[1\] \('challenger'\).initial_weight: got -1; allowed: 0 or more",
        ),
        (
            {"variants": [replace(CHAMPION, min_capacity=7)]},
            r"variants\[0\] \('champion'\).min_capacity: got 7; allowed: at most max_capacity \(6\)",
        ),
        (
            {"variants": [replace(CHAMPION, initial_instance_count=1)]},
            r"initial_instance_count: got 1; allowed: between min_capacity \(2\) and max_capacity \(6\)",
        ),
        (
            {"variants": [replace(CHAMPION, initial_instance_count=9)]},
            r"initial_instance_count: got 9; allowed: between",
        ),
        (
            {"variants": [replace(CHAMPION, min_capacity=0, initial_instance_count=0)]},
            r"min_capacity: got 0; allowed: 1 or more",
        ),
        (
            {"variants": [replace(CHAMPION, target_invocations_per_instance=0)]},
            r"target_invocations_per_instance: got 0; allowed: above 0",
        ),
        (
            {"variants": [replace(CHAMPION, target_invocations_per_instance=-5.0)]},
            r"target_invocations_per_instance: got -5.0",
        ),
        (
            {"variants": [replace(CHAMPION, instance_type="ml.m5.huge")]},
            r"instance_type: got 'ml.m5.huge'; allowed: a real-time instance type",
        ),
        (
            {"variants": [replace(CHAMPION, instance_type="ml.inf1.xlarge")]},
            r"instance_type: got 'ml.inf1.xlarge'; allowed: a family that deployment guardrails support",
        ),
        (
            {"variants": [replace(CHAMPION, instance_type="ml.t2.medium")]},
            r"instance_type: got 'ml.t2.medium'; allowed: a non-burstable type for an autoscaled variant",
        ),
        (
            {"variants": [replace(CHAMPION, name="champion_1")]},
            r"name: got 'champion_1'; allowed: 1-63 letters",
        ),
        (
            {"variants": [replace(CHAMPION, model_package_arn="my-model")]},
            r"model_package_arn: got 'my-model'; allowed: a versioned model package ARN",
        ),
        ({"variants": []}, r"variants: got 0; allowed: 1 to 10 variants"),
        (
            {"deployment": replace(DEPLOYMENT, canary_percent=51)},
            r"deployment.canary_percent: got 51; allowed: 1 to 50",
        ),
        (
            {"deployment": replace(DEPLOYMENT, canary_percent=0)},
            r"deployment.canary_percent: got 0; allowed: 1 to 50",
        ),
        (
            {"deployment": replace(DEPLOYMENT, baking_seconds=3601)},
            r"deployment.baking_seconds: got 3601; allowed: 0 to 3600",
        ),
        (
            {"deployment": replace(DEPLOYMENT, canary_wait_seconds=-1)},
            r"deployment.canary_wait_seconds: got -1; allowed: 0 to 3600",
        ),
        (
            {"deployment": replace(DEPLOYMENT, max_execution_seconds=599)},
            r"deployment.max_execution_seconds: got 599; allowed: 600 to 28800",
        ),
        (
            {"deployment": replace(DEPLOYMENT, max_execution_seconds=900)},
            r"max_execution_seconds: got 900; allowed: more than canary_wait_seconds \+ baking_seconds "
            r"\(300 \+ 600\)",
        ),
        (
            {"deployment": replace(DEPLOYMENT, rollback_alarm_names=())},
            r"rollback_alarm_names: got \(\); allowed: 1 to 10 alarm names",
        ),
        (
            {"deployment": replace(DEPLOYMENT, rollback_alarm_names=("a", "a"))},
            r"allowed: distinct alarm names",
        ),
        (
            {"deployment": replace(DEPLOYMENT, rollback_alarm_names=("x" * 256,))},
            r"allowed: alarm names of 1-255 characters",
        ),
        (
            {"scaling": replace(SCALING, scale_in_cooldown_seconds=-1)},
            r"scaling.scale_in_cooldown_seconds: got -1; allowed: a whole number",
        ),
    ],
)
def test_bad_props_are_refused(bare_stack: Stack, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_endpoint(bare_stack, **change)


@pytest.mark.parametrize(
    ("capture", "message"),
    [
        ({"sampling_percentage": 101}, r"capture.sampling_percentage: got 101; allowed: 0 to 100"),
        ({"sampling_percentage": -1}, r"capture.sampling_percentage: got -1"),
        (
            {"destination_s3_uri": "s3://bucket/raw/capture"},
            r"capture.destination_s3_uri: got 's3://bucket/raw/capture'",
        ),
        ({"destination_s3_uri": "s3://bucket/capture/"}, r"without a trailing '/'"),
        ({"destination_s3_uri": "s3://bucket/capture//x"}, r"capture.destination_s3_uri"),
        ({"destination_s3_uri": "s3://bucket/captures"}, r"capture.destination_s3_uri"),
        ({"csv_content_types": ()}, r"capture.csv_content_types: got \(\); allowed: 1 to 10 media types"),
        ({"json_content_types": ("application/json; charset=utf-8",)}, r"capture.json_content_types: got"),
    ],
)
def test_bad_capture_is_refused(bare_stack: Stack, capture: dict[str, Any], message: str) -> None:
    props = {"destination_s3_uri": "s3://bucket/capture/endpoint", "sampling_percentage": 10, **capture}
    with pytest.raises(ValueError, match=message):
        make_endpoint(bare_stack, capture=CaptureProps(**props))


def test_a_burstable_variant_without_autoscaling_is_accepted(bare_stack: Stack) -> None:
    endpoint, _ = make_endpoint(
        bare_stack, variants=[CHAMPION, replace(CHALLENGER, instance_type="ml.t2.medium", autoscaling=False)]
    )
    assert set(endpoint.scalable_targets) == {"champion"}


def test_a_capture_uri_with_a_literal_bucket_in_the_capture_zone_is_accepted(bare_stack: Stack) -> None:
    make_endpoint(
        bare_stack, capture=CaptureProps(destination_s3_uri="s3://lake/capture", sampling_percentage=0)
    )
    assert config_props(bare_stack)["DataCaptureConfig"]["DestinationS3Uri"] == "s3://lake/capture"


# ---- updates of autoscaled variants -------------------------------------------------------------------


def deployed(name: str, instance_type: str, *, autoscaled: bool) -> DeployedVariant:
    return DeployedVariant(name=name, instance_type=instance_type, autoscaled=autoscaled)


NOW = [
    deployed("champion", "ml.m5.large", autoscaled=True),
    deployed("challenger", "ml.c5.xlarge", autoscaled=True),
]


def test_an_instance_type_change_of_an_autoscaled_variant_is_refused_with_the_procedure() -> None:
    changed = [replace(CHAMPION, instance_type="ml.m5.xlarge"), CHALLENGER]
    with pytest.raises(AutoscaledVariantUpdateError) as error:
        check_autoscaled_variant_updates(NOW, changed)
    message = str(error.value)
    assert message.startswith(
        "variants: autoscaled variant(s) 'champion' (ml.m5.large -> ml.m5.xlarge); allowed:"
    )
    assert "challenger" not in message.split("allowed:")[0]
    assert message.endswith(AUTOSCALED_VARIANT_PROCEDURE)
    assert "(1) set autoscaling off for the variant" in message


@pytest.mark.parametrize(
    ("next_", "named"),
    [
        # Autoscaling off in the same deployment does not help: the target is deleted after the update.
        (
            [replace(CHAMPION, instance_type="ml.m5.xlarge", autoscaling=False), CHALLENGER],
            "'champion' (ml.m5",
        ),
        ([CHAMPION], "'challenger' (removed)"),
        ([CHAMPION, replace(CHALLENGER, name="challenger2")], "'challenger' (removed)"),
    ],
    ids=["autoscaling-off-in-the-same-deployment", "removed", "renamed"],
)
def test_other_refused_updates(next_: list[VariantProps], named: str) -> None:
    with pytest.raises(AutoscaledVariantUpdateError, match=re.escape(named)):
        check_autoscaled_variant_updates(NOW, next_)


@pytest.mark.parametrize(
    ("now", "next_"),
    [
        (
            [deployed("champion", "ml.m5.large", autoscaled=False)],
            [replace(CHAMPION, instance_type="ml.m5.xlarge")],
        ),
        (
            [deployed("champion", "ml.m5.large", autoscaled=False)],
            [CHALLENGER],
        ),
        (
            [deployed("champion", "ml.m5.large", autoscaled=True)],
            [replace(CHAMPION, model_package_arn=PACKAGE.format(9), initial_weight=0.5)],
        ),
        ([deployed("CHAMPION", "ml.m5.large", autoscaled=True)], [CHAMPION, CHALLENGER]),
        ([], [CHAMPION]),
        ([deployed("champion", "ml.m5.large", autoscaled=True)], [replace(CHAMPION, autoscaling=False)]),
    ],
    ids=[
        "step-2-of-the-procedure",
        "remove-after-step-1",
        "new-model-same-type",
        "names-fold-case-and-new-variant",
        "first-deploy",
        "step-1-of-the-procedure",
    ],
)
def test_other_updates_pass(now: list[DeployedVariant], next_: list[VariantProps]) -> None:
    check_autoscaled_variant_updates(now, next_)


# ---- the API requests CloudFormation makes, validated against botocore ------------------------------------


def rendered(stack: Stack, imports: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[ApiRequest]]:
    template = dict(Template.from_stack(stack).to_json())
    return template, render_requests(template, imports)


def test_every_request_is_valid_for_the_api(bare_stack: Stack) -> None:
    make_endpoint(bare_stack)
    template, requests = rendered(bare_stack)
    assert [r.operation for r in requests].count("CreateModel") == 2
    assert {r.operation for r in requests} == {
        "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint",
        "RegisterScalableTarget", "PutScalingPolicy",
    }  # fmt: skip
    assert validate_endpoint_template(template) == []


def test_the_rendered_requests_carry_the_values(bare_stack: Stack) -> None:
    make_endpoint(bare_stack)
    _, requests = rendered(bare_stack)
    (config,) = requests_of(requests, "CreateEndpointConfig")
    (create,) = requests_of(requests, "CreateEndpoint")
    (update,) = requests_of(requests, "UpdateEndpoint")
    models = {r.params["ModelName"]: r.params for r in requests_of(requests, "CreateModel")}
    assert {v["ModelName"] for v in config.params["ProductionVariants"]} == set(models)
    assert config.params["KmsKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert config.params["DataCaptureConfig"]["DestinationS3Uri"].endswith("/capture/endpoint")
    assert create.params["EndpointConfigName"] == config.params["EndpointConfigName"]
    assert "RetainAllVariantProperties" not in create.params  # CreateEndpoint does not take it
    assert update.params["RetainAllVariantProperties"] is True
    assert update.params["EndpointName"] == create.params["EndpointName"]
    targets = requests_of(requests, "RegisterScalableTarget")
    assert sorted(t.params["ResourceId"] for t in targets) == sorted(
        f"endpoint/{create.params['EndpointName']}/variant/{name}" for name in ("champion", "challenger")
    )


def test_an_imported_lake_renders_through_its_exports(bare_stack: Stack) -> None:
    exports = LakeExports(
        bucket_name="ml-dev:LakeBucketName", bucket_arn="ml-dev:LakeBucketArn", key_arn="ml-dev:LakeKeyArn"
    )
    lake = LakeAccess.from_exports(bare_stack, "Lake", exports)
    make_endpoint(bare_stack, lake=lake)
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-8444-555555555555"
    imports = {
        exports.bucket_name: "ml-dev-lake",
        exports.bucket_arn: "arn:aws:s3:::ml-dev-lake",
        exports.key_arn: key_arn,
    }
    template, requests = rendered(bare_stack, imports)
    assert validate_endpoint_template(template, imports) == []
    (config,) = requests_of(requests, "CreateEndpointConfig")
    capture = config.params["DataCaptureConfig"]
    assert capture | {"CaptureOptions": None, "CaptureContentTypeHeader": None} == {
        "EnableCapture": True, "InitialSamplingPercentage": 25, "DestinationS3Uri": "s3://ml-dev-lake/capture/endpoint",
        "KmsKeyId": key_arn, "CaptureOptions": None, "CaptureContentTypeHeader": None,
    }  # fmt: skip
    assert config.params["KmsKeyId"] == key_arn


def _mutated(request: ApiRequest, path: list[Any], value: Any) -> ApiRequest:
    params = copy.deepcopy(request.params)
    node = params
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return ApiRequest(request.logical_id, request.service, request.operation, params)


@pytest.mark.parametrize(
    ("operation", "path", "value", "error"),
    [
        (
            "CreateEndpointConfig",
            ["ProductionVariants", 0, "InitialVariantWeight"],
            -1,
            "InitialVariantWeight: -1 is below the minimum 0",
        ),
        (
            "CreateEndpointConfig",
            ["ProductionVariants", 1, "InstanceType"],
            "ml.bogus.xlarge",
            "not in enum ProductionVariantInstanceType",
        ),
        (
            "CreateEndpointConfig",
            ["ProductionVariants", 0, "VariantName"],
            "champion_1",
            "does not match pattern",
        ),
        (
            "CreateEndpointConfig",
            ["DataCaptureConfig", "InitialSamplingPercentage"],
            101,
            "above the maximum 100",
        ),
        (
            "CreateEndpointConfig",
            ["DataCaptureConfig", "CaptureOptions", 0, "CaptureMode"],
            "Both",
            "not in enum CaptureMode",
        ),
        ("CreateModel", ["EnableNetworkIsolation"], "yes", "invalid type str"),
        ("CreateModel", ["Containers", 0, "ModelPackage"], "x", "unknown member"),
        (
            "CreateEndpoint",
            ["DeploymentConfig", "BlueGreenUpdatePolicy", "TerminationWaitInSeconds"],
            3601,
            "above the maximum 3600",
        ),
        (
            "UpdateEndpoint",
            ["ExcludeRetainedVariantProperties", 0, "VariantPropertyType"],
            "Weight",
            "not in enum VariantPropertyType",
        ),
        (
            "CreateEndpoint",
            ["DeploymentConfig", "BlueGreenUpdatePolicy", "TrafficRoutingConfiguration", "Type"],
            "CANARIES",
            "not in enum TrafficRoutingConfigType",
        ),
        (
            "RegisterScalableTarget",
            ["ScalableDimension"],
            "sagemaker:variant:InstanceCount",
            "not in enum ScalableDimension",
        ),
        ("RegisterScalableTarget", ["MinCapacity"], "2", "Invalid type for parameter MinCapacity"),
        (
            "PutScalingPolicy",
            [
                "TargetTrackingScalingPolicyConfiguration",
                "PredefinedMetricSpecification",
                "PredefinedMetricType",
            ],
            "SageMakerInvocations",
            "not in enum MetricType",
        ),
    ],
)
def test_the_validation_catches_a_bad_value(
    bare_stack: Stack, operation: str, path: list[Any], value: Any, error: str
) -> None:
    make_endpoint(bare_stack)
    _, requests = rendered(bare_stack)
    request = requests_of(requests, operation)[0]
    assert validate(request) == []
    errors = validate(_mutated(request, path, value))
    assert any(error in e for e in errors), errors


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            lambda c, e, t: c["ProductionVariants"][1].update(InstanceType="ml.g5.xlarge"),
            "KmsKeyId is refused with instance-storage",
        ),
        (
            lambda c, e, t: e["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
                "CanarySize"
            ].update(Value=60),
            "CanarySize 60 % is above 50 %",
        ),
        (
            lambda c, e, t: e["DeploymentConfig"]["BlueGreenUpdatePolicy"].update(
                MaximumExecutionTimeoutInSeconds=900
            ),
            "is not above the waits (900)",
        ),
        (
            lambda c, e, t: c["ProductionVariants"][0].update(VariantName="blue"),
            "names variant 'champion', which the endpoint config lacks",
        ),
        (lambda c, e, t: t.update(MinCapacity=3), "is outside MinCapacity..MaxCapacity (3..6)"),
        (
            lambda c, e, t: c["ProductionVariants"][0].update(InitialVariantWeight=-1),
            "InitialVariantWeight: -1 is below the minimum 0",
        ),
        (lambda c, e, t: t.update(ScheduledActions=[]), "map to no member of ['RegisterScalableTarget']"),
        (
            lambda c, e, t: e["ExcludeRetainedVariantProperties"].append(
                {"VariantPropertyType": "DataCaptureConfig"}
            ),
            "DataCaptureConfig is 'not currently supported'",
        ),
        (
            lambda c, e, t: e["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"].pop(
                "CanarySize"
            ),
            "of Type CANARY needs CanarySize",
        ),
        (
            lambda c, e, t: e["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"].pop(
                "WaitIntervalInSeconds"
            ),
            "WaitIntervalInSeconds: missing required member",
        ),
        (
            lambda c, e, t: e["DeploymentConfig"]["AutoRollbackConfiguration"].update(Alarms=[]),
            "Alarms: length 0",
        ),
        (
            lambda c, e, t: c["ProductionVariants"][0].update(InstanceType="ml.t2.medium"),
            "has a burstable instance type, which cannot autoscale",
        ),
    ],
    ids=[
        "volume-key-with-instance-storage",
        "canary-too-big",
        "timeout-too-short",
        "variant-renamed",
        "count-outside-capacity",
        "negative-weight",
        "unmapped-property",
        "data-capture-in-exclude-list",
        "canary-without-size",
        "canary-without-wait",
        "no-rollback-alarms",
        "burstable-autoscaled",
    ],
)
def test_the_template_validation_catches_service_rules(bare_stack: Stack, edit: Any, error: str) -> None:
    endpoint, _ = make_endpoint(bare_stack)
    template = Template.from_stack(bare_stack).to_json()
    resources_ = template["Resources"]
    config_id = bare_stack.resolve(endpoint.endpoint_config.logical_id)
    endpoint_id = bare_stack.resolve(endpoint.endpoint.logical_id)
    target_id = bare_stack.resolve(endpoint.scalable_targets["champion"].logical_id)
    try:
        edit(
            resources_[config_id]["Properties"],
            resources_[endpoint_id]["Properties"],
            resources_[target_id]["Properties"],
        )
        errors = validate_endpoint_template(template)
    except ValueError as exc:  # an unmapped property cannot be rendered at all
        errors = [str(exc)]
    assert any(error in e for e in errors), errors


# ---- policy packs -----------------------------------------------------------------------------------------


def gated_stack(outdir: Path) -> tuple[App, Stack]:
    app = App(context=feature_flags(), outdir=str(outdir))
    add_policy_gates(app)
    return app, Stack(app, "Serving")


def report(outdir: Path) -> dict[str, Any]:
    return json.loads((outdir / "validation-report.json").read_text())


@pytest.mark.parametrize(
    "instance_type", ["ml.c5.xlarge", "ml.g4dn.xlarge"], ids=["ebs-only", "instance-storage"]
)
def test_the_endpoint_passes_every_policy_pack(tmp_path: Path, instance_type: str) -> None:
    app, stack = gated_stack(tmp_path)
    make_endpoint(stack, variants=[CHAMPION, replace(CHALLENGER, instance_type=instance_type)])
    app.synth()  # raises on any unacknowledged finding
    assert report(tmp_path)["pluginReports"] == []


def test_the_volume_key_acknowledgment_is_narrow_and_names_the_instance_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, stack = gated_stack(tmp_path)
    endpoint, _ = make_endpoint(
        stack, variants=[CHAMPION, replace(CHALLENGER, instance_type="ml.g4dn.xlarge")]
    )
    acknowledged: dict[str, str] = {}
    for entry in endpoint.endpoint_config.node.metadata:
        if entry.type == "aws:cdk:acknowledged-rules":
            acknowledged.update(entry.data)
    assert sorted(acknowledged) == [
        "Annotation::HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured",
        "Annotation::NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
    ], acknowledged
    assert all("ml.g4dn.xlarge" in reason and "ml.m5.large" not in reason for reason in acknowledged.values())
    # Without it the HIPAA and NIST packs fail the synth on exactly the endpoint config (AwsSolutions has no
    # such rule: its SageMaker rules are about notebook instances).
    monkeypatch.setattr(ServingEndpoint, "_acknowledge_no_volume_key", lambda self: None)
    app2, stack2 = gated_stack(tmp_path / "unacknowledged")
    make_endpoint(stack2, variants=[CHAMPION, replace(CHALLENGER, instance_type="ml.g4dn.xlarge")])
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app2.synth()
    found = {
        (v["ruleName"], c["constructPath"])
        for plugin in report(tmp_path / "unacknowledged")["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    }
    assert found == {
        ("HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured", "Serving/Serving/Config"),
        ("NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured", "Serving/Serving/Config"),
    }


def test_an_import_value_capture_uri_is_checked_on_its_literal_parts(bare_stack: Stack) -> None:
    uri = f"s3://{Fn.import_value('ml-dev:LakeBucketName')}/capture/endpoint"
    make_endpoint(bare_stack, capture=CaptureProps(destination_s3_uri=uri, sampling_percentage=5))
    with pytest.raises(ValueError, match=r"capture\.destination_s3_uri"):
        make_endpoint(
            Stack(App(context=feature_flags()), "Other"),
            capture=CaptureProps(
                destination_s3_uri=f"s3://{Fn.import_value('x')}/raw/x", sampling_percentage=5
            ),
        )
