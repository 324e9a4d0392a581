"""The guard against endpoint updates SageMaker refuses: deployed variants (stubbed AWS) vs the config."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from aws_cdk import App
from botocore.stub import Stubber

from app import build_app
from ml_platform.endpoint import AutoscaledVariantUpdateError, DeployedVariant
from stacks.config import load_app_config
from stacks.deployed_endpoint import (
    context_key,
    current_variants,
    declared_digest,
    deployed_variants,
    from_context,
    to_context,
)
from stacks.model_packages import LookupFailed
from tests.conftest import CDK_JSON, SERVING_CONTEXT, feature_flags

STACK = "MlPlatform-prod-Serving"
ENDPOINT = "Endpoint-AbC123"
ACCOUNT, REGION = "123456789012", "us-east-1"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def test_the_deployed_variants_come_from_the_stack_output_endpoint_config_and_scalable_targets() -> None:
    cfn, sm, aas = client("cloudformation"), client("sagemaker"), client("application-autoscaling")
    with Stubber(cfn) as c, Stubber(sm) as s, Stubber(aas) as a:
        c.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": STACK,
                        "CreationTime": "2026-11-01T00:00:00Z",
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [{"OutputKey": "EndpointName", "OutputValue": ENDPOINT}],
                    }
                ]
            },
            {"StackName": STACK},
        )
        s.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT.lower()}",
                "EndpointConfigName": "Config-1",
                "EndpointStatus": "InService",
                "CreationTime": "2026-11-01T00:00:00Z",
                "LastModifiedTime": "2026-11-01T00:00:00Z",
            },
            {"EndpointName": ENDPOINT},
        )
        s.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "Config-1",
                "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/config-1",
                "CreationTime": "2026-11-01T00:00:00Z",
                "ProductionVariants": [
                    {"VariantName": "champion", "ModelName": "m1", "InstanceType": "ml.c5.xlarge"},
                    {"VariantName": "challenger", "ModelName": "m2", "InstanceType": "ml.c5.xlarge"},
                ],
            },
            {"EndpointConfigName": "Config-1"},
        )
        a.add_response(
            "describe_scalable_targets",
            {
                "ScalableTargets": [
                    {
                        "ServiceNamespace": "sagemaker",
                        "ResourceId": f"endpoint/{ENDPOINT}/variant/champion",
                        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                        "MinCapacity": 2,
                        "MaxCapacity": 6,
                        "RoleARN": "arn:aws:iam::123456789012:role/x",
                        "CreationTime": "2026-11-01T00:00:00Z",
                    }
                ]
            },
            {
                "ServiceNamespace": "sagemaker",
                "ResourceIds": [
                    f"endpoint/{ENDPOINT}/variant/champion",
                    f"endpoint/{ENDPOINT}/variant/challenger",
                ],
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            },
        )
        found = deployed_variants(cfn, sm, aas, STACK)
    assert found == [
        DeployedVariant("champion", "ml.c5.xlarge", True),
        DeployedVariant("challenger", "ml.c5.xlarge", False),
    ]


def test_a_stack_that_does_not_exist_yet_has_no_variants() -> None:
    cfn = client("cloudformation")
    with Stubber(cfn) as c:
        c.add_client_error(
            "describe_stacks",
            "ValidationError",
            f"Stack with id {STACK} does not exist",
            400,
            {"StackName": STACK},
        )
        assert deployed_variants(cfn, client("sagemaker"), client("application-autoscaling"), STACK) == []


DECLARED = [("champion", "ml.c5.xlarge", True), ("challenger", "ml.c5.xlarge", True)]


def run(context: dict[str, Any], lookup: Any, saved: dict[str, Any], reports: list[str]) -> Any:
    return current_variants(
        account=ACCOUNT,
        region=REGION,
        stack_name=STACK,
        declared=DECLARED,
        context=context,
        lookup=lookup,
        save=saved.update,
        report=reports.append,
    )


def test_a_lookup_is_cached_under_the_declaration_and_an_unchanged_declaration_reads_the_cache() -> None:
    deployed = [DeployedVariant("champion", "ml.c5.xlarge", True)]
    saved: dict[str, Any] = {}
    reports: list[str] = []
    assert run({}, lambda *_: deployed, saved, reports) == deployed
    key = context_key(ACCOUNT, REGION, STACK, declared_digest(DECLARED))
    assert saved == {key: to_context(deployed)} and reports == []

    def never(*_: str) -> list[DeployedVariant]:
        raise AssertionError("cached: no call")

    assert run(saved, never, {}, reports) == deployed


def test_any_change_to_what_is_declared_is_a_new_key_so_it_is_looked_up_again() -> None:
    base = declared_digest(DECLARED)
    assert declared_digest([("champion", "ml.c5.2xlarge", True), DECLARED[1]]) != base
    assert declared_digest([("champion", "ml.c5.xlarge", False), DECLARED[1]]) != base
    assert declared_digest(DECLARED[:1]) != base
    assert declared_digest(list(reversed(DECLARED))) == base  # order is not a change


def test_when_aws_cannot_be_asked_synth_says_so_and_goes_on() -> None:
    reports: list[str] = []

    def failing(*_: str) -> list[DeployedVariant]:
        raise LookupFailed("no AWS credentials")

    assert run({}, failing, {}, reports) is None
    (report,) = reports
    assert "could not check the deployed endpoint of MlPlatform-prod-Serving" in report
    assert "no AWS credentials" in report and "two deployments" in report


def test_cached_values_round_trip() -> None:
    deployed = [DeployedVariant("a", "ml.m5.large", False)]
    assert from_context(to_context(deployed)) == deployed


def synth_prod(deployed: list[DeployedVariant], **changes: str) -> dict[str, Any]:
    context = {**CDK_JSON["context"], **SERVING_CONTEXT["prod"], **changes, "stage": "prod"}
    config = load_app_config(context)
    return build_app(
        App(context={**feature_flags(), **context}),
        config.stage,
        context=context,
        variants_lookup=lambda *_: deployed,
        report=lambda _: None,
    )


def test_changing_the_instance_type_of_an_autoscaled_variant_is_refused_with_the_procedure() -> None:
    now = [
        DeployedVariant("champion", "ml.c5.xlarge", True),
        DeployedVariant("challenger", "ml.c5.xlarge", True),
    ]
    assert "serving" in synth_prod(now)  # the same instance types: fine
    change = {"stages.prod.serving.variants.0.instance_type": "ml.c5.2xlarge"}
    with pytest.raises(AutoscaledVariantUpdateError) as caught:
        synth_prod(now, **change)
    message = str(caught.value)
    assert "'champion' (ml.c5.xlarge -> ml.c5.2xlarge)" in message
    assert "set autoscaling off for the variant" in message
    # Step 1 of the procedure (autoscaling off, same type) passes; so does step 2 once the target is gone.
    assert "serving" in synth_prod(now, **{"stages.prod.serving.variants.0.autoscaling": "false"})
    step_two = [DeployedVariant("champion", "ml.c5.xlarge", False), now[1]]
    assert "serving" in synth_prod(step_two, **change)
