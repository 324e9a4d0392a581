"""The serving stack on the shared synth of every stage: what the stage config says is what is declared."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App

from app import build_app
from stacks.config import ServingConfig, load_app_config
from stacks.model_packages import context_key
from tests.conftest import (
    CDK_JSON,
    SERVING_CONTEXT,
    STAGES,
    SynthesizedStage,
    drift_check_baselines,
    feature_flags,
    model_package_arn,
)
from tests.support.endpoint_requests import validate_endpoint_template
from tests.support.sagemaker_api import template_exports

GROUP = "mlplatform-{stage}-training-models"


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = of_type(template, kind).values()
    return resource


def serving_of(synth: SynthesizedStage) -> ServingConfig:
    assert synth.config.serving is not None
    return synth.config.serving


def expected_arns(stage: str) -> dict[str, str]:
    """What the tests' context makes each variant serve (tests/conftest.py SERVING_CONTEXT)."""
    if stage == "dev":
        return {"champion": model_package_arn("dev", 3), "challenger": model_package_arn("dev", 4)}
    return {"champion": model_package_arn("prod", 12), "challenger": model_package_arn("prod", 11)}


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_a_serving_stack(synthesized: dict[str, SynthesizedStage], stage: str) -> None:
    assert synthesized[stage].stacks["serving"].stack_name == f"MlPlatform-{stage}-Serving"


@pytest.mark.parametrize("stage", STAGES)
def test_one_network_isolated_model_per_variant_from_its_package(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    template = synthesized[stage].template("serving")
    models = of_type(template, "AWS::SageMaker::Model")
    served = set()
    for model in models.values():
        props = model["Properties"]
        assert props["EnableNetworkIsolation"] is True
        assert "ModelName" not in props  # no physical names: a new model is a new name
        containers = props.get("Containers") or [props["PrimaryContainer"]]
        (container,) = containers
        served.add(container["ModelPackageName"])
    assert served == set(expected_arns(stage).values())
    assert len(models) == len(serving_of(synthesized[stage]).variants)


@pytest.mark.parametrize("stage", STAGES)
def test_the_endpoint_config_declares_every_variant_from_config(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    serving = serving_of(synth)
    template = synth.template("serving")
    props = one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "EndpointConfigName" not in props
    declared = {v["VariantName"]: v for v in props["ProductionVariants"]}
    assert list(declared) == [v.name for v in serving.variants]
    models = of_type(template, "AWS::SageMaker::Model")
    for variant in serving.variants:
        got = declared[variant.name]
        assert got["InstanceType"] == variant.instance_type
        assert got["InitialInstanceCount"] == variant.initial_instance_count
        assert got["InitialVariantWeight"] == variant.weight
        (model_id,) = [lid for lid in models if got["ModelName"] == {"Fn::GetAtt": [lid, "ModelName"]}]
        container = (models[model_id]["Properties"].get("Containers") or [None])[0] or models[model_id][
            "Properties"
        ]["PrimaryContainer"]
        assert container["ModelPackageName"] == expected_arns(stage)[variant.name]


@pytest.mark.parametrize("stage", STAGES)
def test_data_capture_goes_to_the_lakes_capture_zone_encrypted_with_the_stage_key(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    props = one(synth.template("serving"), "AWS::SageMaker::EndpointConfig")["Properties"]
    capture = props["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == serving_of(synth).capture_sampling_percentage
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    text = json.dumps(capture["DestinationS3Uri"])
    assert "capture" in text and "//capture" not in text and not text.rstrip('"').endswith("//")
    assert "LakeKeyArn" in json.dumps(capture["KmsKeyId"]) or "Key" in json.dumps(capture["KmsKeyId"])


@pytest.mark.parametrize("stage", STAGES)
def test_the_endpoint_deploys_blue_green_with_a_canary_and_rolls_back_on_alarms(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    deployment_cfg = serving_of(synth).deployment
    template = synth.template("serving")
    endpoint = one(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert "EndpointName" not in endpoint
    assert endpoint["RetainAllVariantProperties"] is True
    deployment = endpoint["DeploymentConfig"]
    policy = deployment["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    if deployment_cfg.traffic_routing == "canary":
        assert routing["Type"] == "CANARY"
        assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": deployment_cfg.canary_percent}
        assert routing["WaitIntervalInSeconds"] == deployment_cfg.canary_wait_seconds
    else:  # variants too small to canary: blue/green all at once, still baked and rolled back on alarms
        assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    assert policy["TerminationWaitInSeconds"] == deployment_cfg.baking_seconds
    assert policy["MaximumExecutionTimeoutInSeconds"] == deployment_cfg.max_execution_seconds
    # The rollback alarms exist in this stack under exactly those names, on this endpoint.
    rollback = {a["AlarmName"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]}
    alarms = {a["Properties"]["AlarmName"]: a for a in of_type(template, "AWS::CloudWatch::Alarm").values()}
    assert rollback and rollback <= set(alarms)
    variants = {v.name for v in serving_of(synth).variants}
    covered = set()
    for name in rollback:
        text = json.dumps(alarms[name]["Properties"])
        covered |= {v for v in variants if f'"{v}"' in text}
    assert covered == variants, "every variant has rollback alarms"


@pytest.mark.parametrize("stage", STAGES)
def test_each_variant_scales_on_invocations_per_instance_with_the_measured_target(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    serving = serving_of(synth)
    template = synth.template("serving")
    targets = of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert len(targets) == len(policies) == len(serving.variants)
    by_variant = {}
    for lid, target in targets.items():
        props = target["Properties"]
        assert props["ServiceNamespace"] == "sagemaker"
        assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        assert "RoleARN" not in props  # the SageMaker endpoint service-linked role
        resource_id = json.dumps(props["ResourceId"])
        (variant,) = [v for v in serving.variants if f"/variant/{v.name}" in resource_id]
        assert (props["MinCapacity"], props["MaxCapacity"]) == (variant.min_capacity, variant.max_capacity)
        by_variant[lid] = variant
    scaling = serving.autoscaling
    for policy in policies.values():
        props = policy["Properties"]
        assert props["PolicyType"] == "TargetTrackingScaling"
        tracking = props["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["PredefinedMetricSpecification"] == {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        }
        assert tracking["TargetValue"] == scaling.max_rps_per_instance * scaling.safety_factor * 60
        assert tracking["ScaleInCooldown"] == scaling.scale_in_cooldown_seconds
        assert tracking["ScaleOutCooldown"] == scaling.scale_out_cooldown_seconds
        assert props["ScalingTargetId"]["Ref"] in by_variant


def test_prod_canaries_and_dev_whose_variants_run_one_instance_shifts_all_at_once(
    synthesized: dict[str, SynthesizedStage],
) -> None:
    routing = {
        stage: one(synthesized[stage].template("serving"), "AWS::SageMaker::Endpoint")["Properties"][
            "DeploymentConfig"
        ]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"]
        for stage in STAGES
    }
    assert routing == {"dev": "ALL_AT_ONCE", "prod": "CANARY"}


@pytest.mark.parametrize("stage", STAGES)
def test_every_request_cloudformation_makes_is_valid_for_the_sagemaker_and_autoscaling_apis(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """CreateModel, CreateEndpointConfig, CreateEndpoint/UpdateEndpoint, RegisterScalableTarget and
    PutScalingPolicy as rendered from the template, against botocore, plus the rules no schema shows."""
    synth = synthesized[stage]
    assert (
        validate_endpoint_template(synth.template("serving"), template_exports(synth.template("data"))) == []
    )


def build(context_changes: dict[str, Any], stage: str = "prod") -> tuple[list[str], dict[str, Any]]:
    context = {**CDK_JSON["context"], **context_changes, "stage": stage}
    config = load_app_config(context)
    reports: list[str] = []
    saved: dict[str, str] = {}
    stacks = build_app(
        App(context={**feature_flags(), **context}),
        config.stage,
        context=context,
        lookup=lambda *_: model_package_arn(stage, 21),
        variants_lookup=lambda *_: [],  # nothing deployed yet
        baselines_lookup=lambda *_: drift_check_baselines(stage),
        save_lookups=saved.update,
        report=reports.append,
    )
    return reports, {"stacks": stacks, "saved": saved}


def test_without_a_model_the_serving_stack_is_left_out_and_synth_says_what_to_do() -> None:
    reports, built = build({}, stage="dev")  # dev is environment-agnostic: 'latest-approved' cannot look up
    assert "serving" not in built["stacks"] and set(built["stacks"]) == {"data", "training", "monitoring"}
    (report,) = reports
    assert "serving stack of stage 'dev' is left out" in report
    assert "-c stages.dev.serving.variants.0.model=<model package ARN>" in report
    assert "approve a model package" in report


def test_a_lookup_fills_the_context_cache_and_builds_the_serving_stack() -> None:
    reports, built = build({})
    assert reports == [] and "serving" in built["stacks"]
    key = context_key("123456789012", "us-east-1", GROUP.format(stage="prod"))
    assert built["saved"][key] == model_package_arn("prod", 21)


def test_the_tests_serve_what_a_user_would_pass() -> None:
    assert set(SERVING_CONTEXT) == set(STAGES)
