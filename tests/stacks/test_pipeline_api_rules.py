"""Rules SageMaker enforces between fields and on values known only at run time, which shape checks miss.

Each pipeline is evaluated with concrete parameter values (tests/support/access_model.PipelineEvaluator):
the steps an execution would run, with every expression resolved.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest

from ml_platform.instance_types import api_instance_types, has_instance_storage
from stacks.config import MAX_TRAINING_SECONDS
from stacks.training_stack import TrainingStack
from tests.conftest import STAGES, SynthesizedStage
from tests.support.access_model import EXECUTION_ID, PipelineEvaluator, processing_script, split_s3
from tests.support.sagemaker_api import iter_steps, template_exports
from tests.support.training_pipelines import ALL_PIPELINES, PIPELINES, definitions
from training_code.ingest_features import RECORDS_DIR

# Step type -> (where its instance type and its volume key are, the API enum of the instance type).
INSTANCE_FIELDS = {
    "Processing": (("ProcessingResources", "ClusterConfig"), "ProcessingInstanceType"),
    "Training": (("ResourceConfig",), "TrainingInstanceType"),
    "Tuning": (("TrainingJobDefinition", "ResourceConfig"), "TrainingInstanceType"),
    "Transform": (("TransformResources",), "TransformInstanceType"),
}
#: Values for the parameters every run must pass (they have no default).
REQUIRED_VALUES: dict[str, Any] = {
    "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/group/1",
    "SourceExecutionId": EXECUTION_ID,
}


def _pipelines(synth: SynthesizedStage) -> dict[str, dict[str, Any]]:
    return definitions(synth, ALL_PIPELINES)


def _run_values(definition: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` for the parameters ``definition`` declares, plus the required ones it declares."""
    declared = {p["Name"]: p for p in definition["Parameters"]}
    required = {
        k: v for k, v in REQUIRED_VALUES.items() if k in declared and "DefaultValue" not in declared[k]
    }
    return {**required, **{k: v for k, v in values.items() if k in declared}}


@pytest.fixture(scope="module")
def pipelines(synthesized: dict[str, SynthesizedStage]) -> dict[str, dict[str, dict[str, Any]]]:
    return {stage: _pipelines(synthesized[stage]) for stage in STAGES}


def _dig(mapping: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        mapping = mapping[key]
    return mapping


def _parameter(definition: dict[str, Any], name: str) -> dict[str, Any]:
    (parameter,) = [p for p in definition["Parameters"] if p["Name"] == name]
    return parameter


def _all_steps_with(definition: dict[str, Any], values: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """Every step (both branches of every condition) with its arguments evaluated for ``values``."""
    ev = PipelineEvaluator(definition, _run_values(definition, values))
    return [
        (s, ev.value(s.get("Arguments", {}))) for s in iter_steps(definition) if s["Type"] in INSTANCE_FIELDS
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_no_instance_type_a_run_can_pass_meets_a_volume_key_it_refuses(
    pipelines: dict[str, dict[str, dict[str, Any]]], stage: str
) -> None:
    """VolumeKmsKeyId is refused for instance-store types: check every value each parameter may take."""
    checked = 0
    for name, definition in pipelines[stage].items():
        instance_parameters = [
            p["Name"] for p in definition["Parameters"] if p["Name"].endswith("InstanceType")
        ]
        assert instance_parameters, name
        for parameter_name in instance_parameters:
            parameter = _parameter(definition, parameter_name)
            values = parameter["EnumValues"]
            assert parameter["DefaultValue"] in values
            for value in values:
                for step, args in _all_steps_with(definition, {parameter_name: value}):
                    path, shape = INSTANCE_FIELDS[step["Type"]]
                    resources = _dig(args, path)
                    instance_type = resources["InstanceType"]
                    assert instance_type in api_instance_types(shape), (name, step["Name"], instance_type)
                    if has_instance_storage(instance_type):
                        assert "VolumeKmsKeyId" not in resources, (name, step["Name"], instance_type)
                    checked += 1
            # One storage class per parameter, so the steps built for it fit every value.
            assert len({has_instance_storage(v) for v in values}) == 1, (name, parameter_name)
    assert checked > 100


@pytest.mark.parametrize("stage", STAGES)
def test_ebs_only_types_get_the_stage_key_on_their_volumes(
    pipelines: dict[str, dict[str, dict[str, Any]]], stage: str, synthesized: dict[str, SynthesizedStage]
) -> None:
    (key_arn,) = [
        v for k, v in template_exports(synthesized[stage].template("data")).items() if k.endswith("KeyArn")
    ]
    for definition in pipelines[stage].values():
        for step, args in _all_steps_with(definition, {}):
            path, _ = INSTANCE_FIELDS[step["Type"]]
            resources = _dig(args, path)
            if not has_instance_storage(resources["InstanceType"]):
                assert resources["VolumeKmsKeyId"] == key_arn, step["Name"]


def _s3_uris(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith("s3://") else []
    if isinstance(value, dict):
        return [u for v in value.values() for u in _s3_uris(v)]
    if isinstance(value, list):
        return [u for v in value for u in _s3_uris(v)]
    return []


# Parameter values an execution may pass that still reach the jobs (the checks refuse the rest).
RUN_VALUES: list[dict[str, Any]] = [
    {},
    {"DatasetVersion": "2026-11-01"},
    {"DatasetVersion": "v2", "UseSpot": False},
    {"UseSpot": True, "MaxRuntimeSeconds": 60, "MaxWaitSeconds": 60},
    {"SourcePipeline": "tuning", "SourceExecutionId": "0123456789ab", "TransformInstanceCount": 3},
]


@pytest.mark.parametrize("stage", STAGES)
def test_no_uri_in_any_pipeline_can_contain_an_empty_path_segment(
    pipelines: dict[str, dict[str, dict[str, Any]]], stage: str
) -> None:
    """SageMaker refuses S3 keys with '//' (and a key starting with '/'): check every URI of every step."""
    for name, definition in pipelines[stage].items():
        for given in RUN_VALUES:
            values = _run_values(definition, given)
            ev = PipelineEvaluator(definition, values)
            executed = list(ev.executed_steps())
            assert ev.fails_with() is None, (name, values)
            uris = []
            for step in executed:
                args = ev.value(step.get("Arguments", {}))
                uris += _s3_uris(args)
                for pf in step.get("PropertyFiles", []):
                    uris.append(f"{_s3_uris(args['ProcessingOutputConfig'])[0]}{pf['FilePath']}")
            assert len(uris) >= (2 if name not in PIPELINES else 10), name
            for uri in uris:
                _, key = split_s3(uri)
                assert key and not key.startswith("/") and "//" not in key, (name, values, uri)


def test_the_registered_evaluation_report_uri_is_the_report_itself(
    pipelines: dict[str, dict[str, dict[str, Any]]],
) -> None:
    for definition in pipelines["dev"].values():
        ev = PipelineEvaluator(definition)
        for step in iter_steps(definition):
            if step["Type"] != "RegisterModel":
                continue
            uri = ev.value(step["Arguments"]["CustomerMetadataProperties"]["evaluation_report"])
            evaluate = "Evaluate" + step["Name"].removeprefix("Register")
            outputs = next(s for s in iter_steps(definition) if s["Name"] == evaluate)["Arguments"][
                "ProcessingOutputConfig"
            ]["Outputs"]
            (output,) = [o for o in outputs if o["OutputName"] == "evaluation"]
            assert uri == ev.value(output["S3Output"]["S3Uri"]) + "evaluation.json"


def _failure(definition: dict[str, Any], **values: Any) -> str | None:
    return PipelineEvaluator(definition, values).fails_with()


@pytest.mark.parametrize("pipeline", ["training", "tuning"])
def test_a_bad_dataset_version_or_threshold_fails_at_the_start_naming_it(
    pipelines: dict[str, dict[str, dict[str, Any]]], pipeline: str
) -> None:
    definition = pipelines["dev"][pipeline]
    assert _failure(definition) is None
    message = _failure(definition, DatasetVersion="")
    assert message is not None and message.startswith("DatasetVersion: got ''")
    assert _failure(definition, AccuracyThreshold=1.5) == "AccuracyThreshold: got 1.5; allowed: 0 to 1"
    assert _failure(definition, AccuracyThreshold=-0.1) == "AccuracyThreshold: got -0.1; allowed: 0 to 1"
    # The checks run before any job: the first real step depends on all of them.
    checks = [s["Name"] for s in definition["Steps"] if s["Name"].startswith("Check")]
    (preprocess,) = [s for s in definition["Steps"] if s["Name"] == "Preprocess"]
    assert checks and sorted(preprocess["DependsOn"]) == sorted(checks)
    assert [s["Name"] for s in definition["Steps"][: len(checks)]] == checks


def test_spot_wait_below_the_runtime_fails_at_the_start_naming_both(
    pipelines: dict[str, dict[str, dict[str, Any]]],
) -> None:
    definition = pipelines["dev"]["training"]
    message = _failure(definition, UseSpot=True, MaxRuntimeSeconds=3600, MaxWaitSeconds=1800)
    assert message is not None
    assert re.match(
        r"MaxWaitSeconds: got 1800 with UseSpot true; allowed: at least MaxRuntimeSeconds \(3600\)", message
    )
    # Without spot, SageMaker never sees MaxWaitTimeInSeconds: the same values run.
    assert _failure(definition, UseSpot=False, MaxRuntimeSeconds=3600, MaxWaitSeconds=1800) is None
    too_long = MAX_TRAINING_SECONDS + 1
    assert _failure(definition, MaxRuntimeSeconds=too_long, MaxWaitSeconds=too_long) == (
        f"MaxRuntimeSeconds: got {too_long}; allowed: 1 to {MAX_TRAINING_SECONDS} (28 days)"
    )
    assert _failure(definition, TrainingInstanceCount=0) == "TrainingInstanceCount: got 0; allowed: 1 or more"


def test_only_the_jobs_that_call_an_aws_api_run_without_network_isolation(
    pipelines: dict[str, dict[str, dict[str, Any]]],
) -> None:
    """An isolated job can call no AWS API: ingestion (Feature Store PutRecord) and the Clarify checks that
    ask a model (their shadow endpoint, and the model it serves) are the documented exceptions."""
    for definition in pipelines["dev"].values():
        for step in iter_steps(definition):
            args = step.get("Arguments", {})
            if step["Type"] in ("Processing", "QualityCheck", "ClarifyCheck"):
                isolated = args["NetworkConfig"]["EnableNetworkIsolation"]
                exception = processing_script(args) == "ingest_features.py" or "ModelName" in step
                assert isolated is not exception, step["Name"]
                assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
            elif step["Type"] == "Training":
                assert args["EnableNetworkIsolation"] is True
            elif step["Type"] == "Model":
                # Only the model a Clarify check's shadow endpoint serves, named by such a check.
                served_by_clarify = any(
                    s.get("ModelName") == {"Get": f"Steps.{step['Name']}.ModelName"}
                    for s in iter_steps(definition)
                )
                assert args["EnableNetworkIsolation"] is not served_by_clarify, step["Name"]


def test_every_dataset_version_lands_in_the_feature_group(
    pipelines: dict[str, dict[str, dict[str, Any]]], synthesized: dict[str, SynthesizedStage]
) -> None:
    """Preprocess writes the records for the configured schema; IngestFeatures puts them into the group."""
    synth = synthesized["dev"]
    (group,) = [
        r["Properties"]
        for r in synth.template("data")["Resources"].values()
        if r["Type"] == "AWS::SageMaker::FeatureGroup"
    ]
    for name in PIPELINES:
        ev = PipelineEvaluator(pipelines["dev"][name])
        executed = {s["Name"]: s for s in ev.executed_steps()}
        preprocess = ev.value(executed["Preprocess"]["Arguments"])
        arguments = preprocess["AppSpecification"]["ContainerArguments"]
        # The schema travels as a file input (a container argument holds at most 256 characters).
        schema_path = arguments[arguments.index("--feature_store_schema_file") + 1]
        document = cast(TrainingStack, synth.stacks["training"]).feature_store_schema
        inputs = preprocess["ProcessingInputs"]
        (schema_input,) = [
            i for i in inputs if schema_path == f"{i['S3Input']['LocalPath']}/{document.object_key}"
        ]
        assert schema_input["S3Input"]["S3Uri"].endswith(f"/{document.object_key}")
        schema = json.loads(document.path.read_text())
        assert schema["record_identifier"] == group["RecordIdentifierFeatureName"]
        assert schema["event_time_feature"] == group["EventTimeFeatureName"]
        assert [(f["name"], f["type"]) for f in schema["features"]] == [
            (f["FeatureName"], f["FeatureType"]) for f in group["FeatureDefinitions"]
        ]
        ingest = ev.value(executed["IngestFeatures"]["Arguments"])
        ingest_args = ingest["AppSpecification"]["ContainerArguments"]
        assert ingest_args[ingest_args.index("--feature_group_name") + 1] == group["FeatureGroupName"]
        (records,) = [i for i in ingest["ProcessingInputs"] if i["InputName"] == RECORDS_DIR]
        (written,) = [
            o for o in preprocess["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == RECORDS_DIR
        ]
        assert records["S3Input"]["S3Uri"] == written["S3Output"]["S3Uri"]
        assert records["S3Input"]["LocalPath"] == ingest_args[ingest_args.index("--input_dir") + 1]


def test_the_construct_library_unpacks_code_under_the_runtime_contracts_processing_root() -> None:
    """ml_platform (no dependency on training_code) and the runtime contract agree on /opt/ml/processing."""
    from ml_platform.pipelines import PROCESSING_CODE_DIR, PROCESSING_ROOT
    from training_code import contract

    assert PROCESSING_ROOT == contract.PROCESSING_ROOT
    assert PROCESSING_CODE_DIR.startswith(f"{contract.PROCESSING_ROOT}/")
