"""Model Monitor of the serving stack's endpoint: job definitions, schedules, explainer model, baselines.

On the shared synth of every stage (the champion package's baselines come from a cached DescribeModelPackage
lookup in the test context, tests/conftest.py), and on bare stacks for the rules a stage config does not
exercise (instance storage, refused inputs, names that change with their properties).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from botocore.session import Session
from botocore.stub import Stubber
from cfnlint.api import ManualArgs, lint
from sagemaker.core.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0

from ml_platform.clarify_config import shadow_endpoint_prefix
from ml_platform.data_lake import LakeAccess
from ml_platform.images import Image, image_uri_for_region
from ml_platform.model_monitor import (
    IMAGES,
    NAME_PARTS,
    NAME_PATTERN,
    REPORT_FOLDERS,
    ModelMonitor,
    MonitorBaselines,
    MonitorResources,
    MonitorSchedule,
    champion,
    content_hash,
)
from ml_platform.monitor_role import MonitoringJobRole
from ml_platform.monitor_rules import MONITOR_TYPES, MonitorType, max_runtime_limit, schedule_period_hours
from stacks.model_packages import LookupFailed
from stacks.monitor_baselines import context_key, drift_check_baselines, resolve_monitors
from tests.conftest import (
    CDK_JSON,
    SERVING_CONTEXT,
    STAGES,
    SynthesizedStage,
    feature_flags,
    model_package_arn,
    synth_stage,
)
from tests.conftest import (
    drift_check_baselines as registered_baselines,
)
from tests.support.access_model import hosted_endpoints
from tests.support.sagemaker_api import render_template_value, template_exports, validate_request


def resources_of(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def job_definitions(template: Mapping[str, Any]) -> dict[MonitorType, dict[str, Any]]:
    """Monitor type -> the properties of its job definition."""
    found: dict[MonitorType, dict[str, Any]] = {}
    for kind in MONITOR_TYPES:
        for resource in resources_of(template, f"AWS::SageMaker::{kind}JobDefinition").values():
            assert kind not in found, f"two {kind} job definitions"
            found[kind] = resource["Properties"]
    return found


def schedules(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for resource in resources_of(template, "AWS::SageMaker::MonitoringSchedule").values():
        props = resource["Properties"]
        found[props["MonitoringScheduleConfig"]["MonitoringType"]] = props
    return found


def imports_of(synth: SynthesizedStage) -> dict[str, Any]:
    """The data stack's exports and the serving stack's endpoint name (the name CloudFormation generates,
    as the access model renders it)."""
    data = template_exports(synth.template("data"))
    (endpoint,) = hosted_endpoints(synth.template("serving"), data)
    return {**data, f"{synth.stacks['serving'].stack_name}:EndpointName": endpoint.name}


def rendered(synth: SynthesizedStage, value: Any) -> Any:
    return render_template_value(synth.template("monitoring"), value, imports_of(synth))


def champion_package(synth: SynthesizedStage) -> str:
    variants = synth.stacks["serving"].variants  # type: ignore[attr-defined]
    name = champion([(v.name, v.initial_weight) for v in variants])
    return str(next(v.model_package_arn for v in variants if v.name == name))


def asset_json(synth: SynthesizedStage, config_uri: Any) -> dict[str, Any]:
    """The content of the file asset a ConfigUri names (staged in the cloud assembly)."""
    uri = rendered(synth, config_uri)
    file_name = str(uri).rsplit("/", 1)[1]
    path = synth.outdir / f"asset.{file_name}"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def lake_key(stage: str) -> dict[str, str]:
    return {"Fn::ImportValue": f"MlPlatform-{stage}-Data:LakeKeyArn"}


# ---- the shared synth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_every_scheduled_monitor_has_one_job_definition_and_one_schedule(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    template = synth.template("monitoring")
    scheduled = set(synth.config.monitoring.schedules())
    assert scheduled == set(MONITOR_TYPES)  # the stages schedule all four: every rule below is exercised
    assert set(job_definitions(template)) == scheduled
    assert set(schedules(template)) == scheduled


@pytest.mark.parametrize("stage", STAGES)
def test_images_network_encryption_keys_metrics_and_tags(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """Analyzer for data/model quality, Clarify for bias/explainability; isolation and traffic encryption
    on, except isolation for explainability (its shadow endpoint); the stage key for volume and output;
    CloudWatch metrics on; the stage's tags (part of the hashed name)."""
    synth = synthesized[stage]
    assert IMAGES == {
        "DataQuality": Image.MODEL_MONITOR_ANALYZER,
        "ModelQuality": Image.MODEL_MONITOR_ANALYZER,
        "ModelBias": Image.CLARIFY,
        "ModelExplainability": Image.CLARIFY,
    }
    for kind, props in job_definitions(synth.template("monitoring")).items():
        app = props[f"{kind}AppSpecification"]
        assert rendered(synth, app["ImageUri"]) == image_uri_for_region("us-east-1", IMAGES[kind])
        assert props["NetworkConfig"] == {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": kind != "ModelExplainability",
        }, kind
        assert props["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == lake_key(stage)
        assert props[f"{kind}JobOutputConfig"]["KmsKeyId"] == lake_key(stage)
        assert app["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
        cluster = props["JobResources"]["ClusterConfig"]
        monitoring = synth.config.monitoring
        assert (cluster["InstanceType"], cluster["VolumeSizeInGB"], cluster["InstanceCount"]) == (
            monitoring.instance_type,
            monitoring.volume_size_gb,
            1,
        )
        assert props["Tags"] == [
            {"Key": k, "Value": v} for k, v in sorted(synth.config.resource_tags.items())
        ]


@pytest.mark.parametrize("stage", STAGES)
def test_stopping_conditions_schedules_and_names(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """Runtime and cron from config (runtime within the documented cap); the job definition's name is the
    hash of its other properties; the schedule's name is stable and names the job definition."""
    synth = synthesized[stage]
    template = synth.template("monitoring")
    configured = synth.config.monitoring.schedules()
    definitions, scheduled = job_definitions(template), schedules(template)
    prefix = f"MlPlatform-{stage}-Monitoring".lower()
    for kind, props in definitions.items():
        runtime = props["StoppingCondition"]["MaxRuntimeInSeconds"]
        assert runtime == configured[kind].max_runtime_seconds
        assert runtime <= max_runtime_limit(kind, schedule_period_hours(configured[kind].schedule))
        others = {k: v for k, v in props.items() if k != "JobDefinitionName"}
        name = props["JobDefinitionName"]
        assert name == f"{prefix}-{NAME_PARTS[kind]}-{content_hash(others)}"
        assert len(name) <= 63 and NAME_PATTERN.fullmatch(name)
        schedule = scheduled[kind]
        assert schedule["MonitoringScheduleName"] == f"{prefix}-{NAME_PARTS[kind]}"
        assert schedule["MonitoringScheduleConfig"] == {
            "MonitoringJobDefinitionName": name,
            "MonitoringType": kind,
            "ScheduleConfig": {"ScheduleExpression": configured[kind].schedule},
        }
        export = f"MlPlatform-{stage}-Serving:EndpointName"
        assert schedule["EndpointName"] == {"Fn::ImportValue": export}
        assert props[f"{kind}JobInput"]["EndpointInput"]["EndpointName"] == {"Fn::ImportValue": export}
    # Each schedule is created after the job definition it names (a name is no reference).
    by_name = {r["Properties"].get("JobDefinitionName"): lid for lid, r in template["Resources"].items()}
    for resource in resources_of(template, "AWS::SageMaker::MonitoringSchedule").values():
        definition = by_name[
            resource["Properties"]["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]
        ]
        assert definition in resource["DependsOn"]


@pytest.mark.parametrize("stage", STAGES)
def test_outputs_inputs_and_baselines(synthesized: dict[str, SynthesizedStage], stage: str) -> None:
    """One output under monitoring/reports/<type>; the capture of the endpoint; ground truth and its window
    for model quality and bias; the champion package's registered baselines."""
    synth = synthesized[stage]
    monitoring = synth.config.monitoring
    imports = imports_of(synth)
    bucket = imports[f"MlPlatform-{stage}-Data:LakeBucketName"]
    package = champion_package(synth)
    assert package == model_package_arn(stage, 3 if stage == "dev" else 12)
    registered = MonitorBaselines(package, SERVING_CONTEXT[stage][context_key(package)])
    for kind, props in job_definitions(synth.template("monitoring")).items():
        (output,) = props[f"{kind}JobOutputConfig"]["MonitoringOutputs"]
        assert rendered(synth, output["S3Output"]) == {
            "S3Uri": f"s3://{bucket}/monitoring/reports/{REPORT_FOLDERS[kind]}",
            "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob",
        }
        job_input = props[f"{kind}JobInput"]
        endpoint_input = job_input["EndpointInput"]
        assert endpoint_input["LocalPath"] == "/opt/ml/processing/input/endpoint"
        baseline = props[f"{kind}BaselineConfig"]
        uris = registered.uris(kind)
        assert baseline["ConstraintsResource"] == {"S3Uri": uris[-1]}
        assert baseline.get("StatisticsResource") == ({"S3Uri": uris[0]} if kind == "DataQuality" else None)
        if kind in ("ModelQuality", "ModelBias"):
            window = monitoring.model_quality if kind == "ModelQuality" else monitoring.model_bias
            assert rendered(synth, job_input["GroundTruthS3Input"]) == {
                "S3Uri": f"s3://{bucket}/ground-truth/{monitoring.ground_truth_prefix}/"
            }
            assert (endpoint_input["StartTimeOffset"], endpoint_input["EndTimeOffset"]) == (
                window.start_time_offset,
                window.end_time_offset,
            )
        else:
            assert "GroundTruthS3Input" not in job_input and "StartTimeOffset" not in endpoint_input


@pytest.mark.parametrize("stage", STAGES)
def test_attributes_come_from_the_monitoring_contract(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    contract = synth.config.dataset_schema.contract
    definitions = job_definitions(synth.template("monitoring"))
    base = {
        "EndpointName",
        "LocalPath",
        "S3InputMode",
        "S3DataDistributionType",
        "StartTimeOffset",
        "EndTimeOffset",
    }

    def attributes(kind: MonitorType) -> dict[str, Any]:
        endpoint_input = definitions[kind][f"{kind}JobInput"]["EndpointInput"]
        return {k: v for k, v in endpoint_input.items() if k not in base}

    assert definitions["ModelQuality"]["ModelQualityAppSpecification"]["ProblemType"] == contract.problem_type
    assert attributes("ModelQuality") == contract.model_quality_endpoint_input()
    assert attributes("ModelBias") == contract.clarify_endpoint_input()
    expected = contract.clarify_endpoint_input()
    expected.pop("ProbabilityThresholdAttribute", None)  # CloudFormation's explainability input has none
    assert attributes("ModelExplainability") == expected
    assert attributes("DataQuality") == {}


@pytest.mark.parametrize("stage", STAGES)
def test_clarify_configs_are_the_generated_assets_and_validate(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """ConfigUri is the asset of the stage's ClarifyConfigs; the explainability config names the explainer
    model (network isolation off, the champion package) and the shadow-endpoint prefix the role allows."""
    synth = synthesized[stage]
    clarify = synth.config.clarify
    definitions = job_definitions(synth.template("monitoring"))
    bias = asset_json(synth, definitions["ModelBias"]["ModelBiasAppSpecification"]["ConfigUri"])
    assert bias == clarify.bias_monitoring()
    explain = asset_json(
        synth, definitions["ModelExplainability"]["ModelExplainabilityAppSpecification"]["ConfigUri"]
    )
    (model,) = resources_of(synth.template("monitoring"), "AWS::SageMaker::Model").values()
    props = model["Properties"]
    assert props["EnableNetworkIsolation"] is False
    assert props["Containers"] == [{"ModelPackageName": champion_package(synth)}]
    champion_type = next(
        v.instance_type
        for v in synth.stacks["serving"].variants  # type: ignore[attr-defined]
        if v.model_package_arn == champion_package(synth)
    )
    expected = clarify.explainability_monitoring(champion_type, props["ModelName"])
    prefix = explain["predictor"].pop("endpoint_name_prefix")
    assert explain == expected
    # Clarify's endpoint_name_prefix is at most 23 characters (Developer Guide, analysis configuration files)
    stack_name = synth.stacks["monitoring"].stack_name
    assert prefix == shadow_endpoint_prefix(stack_name, "shap") and prefix.endswith("-shap")
    assert len(prefix) <= 23
    # The monitoring subsets validate as analysis configs once a check's dataset_type (and, for bias, its
    # methods) are added, as the job adds them.
    ANALYSIS_CONFIG_SCHEMA_V1_0.validate(
        {**bias, "dataset_type": "text/csv", "methods": {"post_training_bias": {"methods": "all"}}}
    )
    ANALYSIS_CONFIG_SCHEMA_V1_0.validate(
        {
            **explain,
            "dataset_type": "text/csv",
            "predictor": {**explain["predictor"], "endpoint_name_prefix": prefix},
        }
    )
    with pytest.raises(Exception, match="endpoint_name_prefix"):
        ANALYSIS_CONFIG_SCHEMA_V1_0.validate(
            {
                **explain,
                "dataset_type": "text/csv",
                "predictor": {**explain["predictor"], "endpoint_name_prefix": "-x"},
            }
        )


@pytest.mark.parametrize("stage", STAGES)
def test_job_definitions_are_valid_api_requests_and_the_template_lints_clean(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    for kind, props in job_definitions(synth.template("monitoring")).items():
        request = rendered(synth, props)
        assert validate_request(f"Create{kind}JobDefinition", request, pipeline_step=False) == [], kind
    matches = lint(json.dumps(synth.template("monitoring")), config=ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id}: {m.message}" for m in matches] == []


def test_the_api_check_catches_a_broken_job_definition(synthesized: dict[str, SynthesizedStage]) -> None:
    synth = synthesized["prod"]
    props = copy.deepcopy(job_definitions(synth.template("monitoring"))["ModelQuality"])
    props["ModelQualityAppSpecification"]["ProblemType"] = "Ranking"
    props["JobDefinitionName"] = "bad_name"
    errors = validate_request("CreateModelQualityJobDefinition", rendered(synth, props), pipeline_step=False)
    assert any("ProblemType" in e for e in errors) and any("JobDefinitionName" in e for e in errors)


# ---- monitors left out -------------------------------------------------------------------------------------


def test_a_package_without_a_baseline_leaves_that_monitor_out_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = model_package_arn("dev", 3)
    context = {
        **CDK_JSON["context"],
        **SERVING_CONTEXT["dev"],
        context_key(package): registered_baselines("dev", omit=(("ModelQuality", "Constraints"),)),
    }
    synth = synth_stage("dev", tmp_path, context=context)
    err = capsys.readouterr().err
    assert f"ModelQuality: model package {package} has no DriftCheckBaselines.ModelQuality.Constraints" in err
    assert set(job_definitions(synth.template("monitoring"))) == set(MONITOR_TYPES) - {"ModelQuality"}
    # No model-quality alarm without its schedule.
    alarms = json.dumps(resources_of(synth.template("monitoring"), "AWS::CloudWatch::Alarm"))
    assert "data-metrics" in alarms and "model-metrics" not in alarms


def test_without_a_cached_lookup_no_monitor_is_built_and_synth_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = model_package_arn("dev", 3)
    context = {
        k: v
        for k, v in {**CDK_JSON["context"], **SERVING_CONTEXT["dev"]}.items()
        if k != context_key(package)
    }
    synth = synth_stage("dev", tmp_path, context=context)
    err = capsys.readouterr().err
    assert f"model package {package}: no cached lookup ({context_key(package)}) and lookups are off" in err
    assert job_definitions(synth.template("monitoring")) == {}
    assert not resources_of(synth.template("monitoring"), "AWS::IAM::Role")


# ---- the lookup --------------------------------------------------------------------------------------------


def sagemaker_client() -> Any:
    return Session().create_client("sagemaker", region_name="us-east-1")


def test_the_lookup_reads_drift_check_baselines_with_describe_model_package() -> None:
    package = model_package_arn("prod", 12)
    registered = registered_baselines("prod")
    client = sagemaker_client()
    with Stubber(client) as stub:
        for baselines in (registered, None):
            response: dict[str, Any] = {
                "ModelPackageName": "mlplatform-prod-training-models",
                "ModelPackageArn": package,
                "CreationTime": "2025-01-01T00:00:00Z",
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": []},
            }
            if baselines is not None:
                response["DriftCheckBaselines"] = baselines
            stub.add_response("describe_model_package", response, {"ModelPackageName": package})
        assert drift_check_baselines(client, package) == registered
        assert drift_check_baselines(client, package) == {}
        stub.assert_no_pending_responses()


def test_resolution_prefers_the_cache_then_asks_once_and_caches() -> None:
    package = model_package_arn("prod", 12)
    key = context_key(package)
    assert key == (
        "sagemaker-model-package-drift-check-baselines:account=123456789012:region=us-east-1:"
        "package=mlplatform-prod-training-models/12"
    )
    calls: list[tuple[str, str, str]] = []

    def lookup(account: str, region: str, arn: str) -> Mapping[str, Any]:
        calls.append((account, region, arn))
        return registered_baselines("prod", omit=(("Explainability", "Constraints"),))

    cached = resolve_monitors(
        package, MONITOR_TYPES, context={key: registered_baselines("prod")}, lookup=lookup
    )
    assert (cached.monitors, cached.cache, cached.problems, calls) == (MONITOR_TYPES, {}, (), [])
    asked = resolve_monitors(package, MONITOR_TYPES, context={}, lookup=lookup)
    assert calls == [("123456789012", "us-east-1", package)]
    assert asked.cache == {key: registered_baselines("prod", omit=(("Explainability", "Constraints"),))}
    assert asked.monitors == ("DataQuality", "ModelQuality", "ModelBias")
    (problem,) = asked.problems
    assert problem.startswith(
        f"ModelExplainability: model package {package} has no DriftCheckBaselines.Explainability.Constraints"
    )


def test_a_failed_lookup_is_reported_never_defaulted() -> None:
    package = model_package_arn("prod", 12)

    def failing(account: str, region: str, arn: str) -> Mapping[str, Any]:
        raise LookupFailed("no AWS credentials")

    failed = resolve_monitors(package, ("DataQuality", "ModelBias"), context={}, lookup=failing)
    assert (failed.baselines, failed.monitors, failed.cache) == (None, (), {})
    (problem,) = failed.problems
    assert problem.startswith(f"DataQuality, ModelBias: model package {package}: could not read")
    assert "no AWS credentials" in problem
    assert resolve_monitors(package, (), context={}, lookup=failing).problems == ()


def test_the_champion_is_the_heaviest_variant_first_on_ties() -> None:
    assert champion([("a", 0.1), ("b", 0.9)]) == "b"
    assert champion([("a", 0.5), ("b", 0.5)]) == "a"
    with pytest.raises(ValueError, match="variants: got none"):
        champion([])


# ---- the construct on a bare stack -------------------------------------------------------------------------


def bare(
    *,
    instance_type: str = "ml.m5.xlarge",
    schedules: Mapping[MonitorType, MonitorSchedule] | None = None,
    tags: Mapping[str, str] | None = None,
    baselines: Mapping[str, Any] | None = None,
    ground_truth_prefix: str | None = "gt",
    name_prefix: str = "Test",
    region: str | None = "us-east-1",
) -> tuple[Stack, ModelMonitor]:
    from stacks.config import load_app_config

    config = load_app_config({**CDK_JSON["context"], "stage": "dev"}).stage
    app = App(context=feature_flags())
    env = {"account": "123456789012", "region": region} if region else None
    stack = Stack(app, "Bare", env=env)
    key = kms.Key(stack, "Key", removal_policy=RemovalPolicy.DESTROY)
    bucket = s3.Bucket(stack, "Lake", encryption_key=key, removal_policy=RemovalPolicy.DESTROY)
    lake = LakeAccess(bucket=bucket, key=key)
    monitor = ModelMonitor(
        stack,
        "Monitor",
        endpoint_name="my-endpoint",
        capture_prefix="capture/endpoint/my-endpoint/",
        lake=lake,
        role=MonitoringJobRole(stack, "Role", lake=lake),
        resources=MonitorResources(instance_type=instance_type, volume_size_gb=20),
        schedules=schedules
        or {
            "DataQuality": MonitorSchedule("cron(0 * ? * * *)", 3600),
            "ModelQuality": MonitorSchedule("cron(0 0 ? * * *)", 1800, "-P2D", "-P1D"),
        },
        baselines=MonitorBaselines("arn:x", registered_baselines("dev") if baselines is None else baselines),
        clarify=config.clarify,
        name_prefix=name_prefix,
        tags={"a": "1"} if tags is None else tags,
        ground_truth_prefix=ground_truth_prefix,
    )
    return stack, monitor


def test_instance_storage_types_get_no_volume_key() -> None:
    for instance_type, keyed in (("ml.m5.xlarge", True), ("ml.r5d.xlarge", False), ("ml.g4dn.xlarge", False)):
        _, monitor = bare(instance_type=instance_type)
        for kind, props in monitor.properties.items():
            cluster = props["JobResources"]["ClusterConfig"]
            assert ("VolumeKmsKeyId" in cluster) is keyed, instance_type
            assert "KmsKeyId" in props[f"{kind}JobOutputConfig"]  # the output is always the stage key's


def test_the_name_changes_with_every_property_and_tag_but_the_schedule_name_does_not() -> None:
    _, base = bare()
    _, same = bare()
    _, tagged = bare(tags={"a": "2"})
    _, bigger = bare(instance_type="ml.m5.2xlarge")
    assert base.job_definition_names == same.job_definition_names
    for other in (tagged, bigger):
        for kind in base.job_definition_names:
            assert other.job_definition_names[kind] != base.job_definition_names[kind]
            assert other.schedule_names[kind] == base.schedule_names[kind] == f"test-{NAME_PARTS[kind]}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"schedules": {"ModelQuality": MonitorSchedule("cron(0 * ? * * *)", 3600, "-P2D", "-P1D")}},
            r"max_runtime_seconds: got 3600; allowed: 1 to 1800",
        ),
        ({"schedules": {"DataQuality": MonitorSchedule("cron(5 * ? * * *)", 60)}}, r"schedule: 'cron\(5"),
        (
            {"schedules": {"ModelBias": MonitorSchedule("cron(0 0 ? * * *)", 60)}},
            "start_time_offset and end_time_offset",
        ),
        (
            {"schedules": {"ModelBias": MonitorSchedule("cron(0 0 ? * * *)", 60, "-P1D", "-P2D")}},
            "before end_time_offset",
        ),
        (
            {"schedules": {"DataQuality": MonitorSchedule("cron(0 * ? * * *)", 60, "-P1D", "-PT1H")}},
            "takes no window",
        ),
        (
            {"baselines": registered_baselines("dev", omit=(("ModelDataQuality", "Statistics"),))},
            r"no DriftCheckBaselines.ModelDataQuality.Statistics",
        ),
        ({"ground_truth_prefix": None}, "ground_truth_prefix: got None"),
        (
            {"schedules": {"ModelExplainability": MonitorSchedule("cron(0 0 ? * * *)", 60)}},
            "explainer, shadow_instance_type",
        ),
        ({"name_prefix": "x" * 50}, "job definition name: got"),
    ],
)
def test_bad_props_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bare(**kwargs)


def test_an_environment_agnostic_stack_maps_the_images_per_region() -> None:
    stack, _ = bare(region=None)
    template = App.of(stack).synth().get_stack_by_name("Bare").template  # type: ignore[union-attr]
    images = {json.dumps(p[f"{k}AppSpecification"]["ImageUri"]) for k, p in job_definitions(template).items()}
    assert images == {
        json.dumps({"Fn::FindInMap": ["ImageUriModelMonitorAnalyzer", {"Ref": "AWS::Region"}, "uri"]})
    }
