"""The data-quality baseline of the training and tuning pipelines (issue 9, item 1, first piece).

A ``QualityCheck`` step runs SageMaker Model Monitor's analyzer on Preprocess's baseline dataset and writes
``statistics.json`` and ``constraints.json`` under
``monitoring/baselines/<pipeline>/<execution>/data-quality/``; the RegisterModel step registers exactly
those files as the package's data-quality metrics and drift-check baselines (the other baselines:
tests/stacks/test_pipeline_baselines.py). Checked on the shared synth of every stage, and the validator is
shown to refuse broken check steps.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from ml_platform.images import Image, image_uri_for_region
from ml_platform.instance_types import has_instance_storage
from ml_platform.model_pipelines import DATA_QUALITY_STEP, TrainingPipeline, TuningPipeline
from stacks.config import platform_tags
from tests.conftest import STAGES, SynthesizedStage
from tests.support.access_model import EXECUTION_ID, PipelineEvaluator
from tests.support.sagemaker_api import (
    PLACEHOLDER_REGION,
    iter_steps,
    template_exports,
    validate_pipeline_definition,
)
from tests.support.training_pipelines import PIPELINES, definitions, steps
from training_code import contract

PIPELINE_NAMES = {"training": TrainingPipeline.NAME, "tuning": TuningPipeline.NAME}
STATISTICS = {"Get": f"Steps.{DATA_QUALITY_STEP}.CalculatedBaselineStatistics"}
CONSTRAINTS = {"Get": f"Steps.{DATA_QUALITY_STEP}.CalculatedBaselineConstraints"}
USED_STATISTICS = {"Get": f"Steps.{DATA_QUALITY_STEP}.BaselineUsedForDriftCheckStatistics"}
USED_CONSTRAINTS = {"Get": f"Steps.{DATA_QUALITY_STEP}.BaselineUsedForDriftCheckConstraints"}


def _check(synth: SynthesizedStage, pipeline: str) -> tuple[dict[str, Any], dict[str, Any]]:
    definition = definitions(synth)[pipeline]
    return definition, steps(definition)[DATA_QUALITY_STEP]


def _lake_bucket(synth: SynthesizedStage) -> str:
    exports = template_exports(synth.template("data"))
    (bucket,) = [v for k, v in exports.items() if k.endswith(":LakeBucketName")]
    return str(bucket)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_the_check_step_is_a_valid_data_quality_check_after_preprocess(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str
) -> None:
    """Arguments against botocore's CreateProcessingJob; the SDK's check fields; first-run defaults."""
    synth = synthesized[stage]
    definition, step = _check(synth, pipeline)
    assert validate_pipeline_definition(definition) == []
    assert step["Type"] == "QualityCheck" and step["CheckType"] == "DATA_QUALITY"
    group = [
        r["Properties"]["ModelPackageGroupName"]
        for r in synth.template("training")["Resources"].values()
        if r["Type"] == "AWS::SageMaker::ModelPackageGroup"
    ]
    assert [step["ModelPackageGroupName"]] == group
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert step["SkipCheck"] == {"Get": "Parameters.SkipDriftChecks"}
    assert step["RegisterNewBaseline"] == {"Get": "Parameters.RegisterNewBaselines"}
    assert defaults["SkipDriftChecks"] is True and defaults["RegisterNewBaselines"] is True
    assert step["FailOnViolation"] is False
    assert not {"SuppliedBaselineStatistics", "SuppliedBaselineConstraints"} & set(step)
    # Its one input is Preprocess's baseline output (so it runs after Preprocess, beside training).
    (dataset,) = step["Arguments"]["ProcessingInputs"]
    assert dataset["S3Input"]["S3Uri"] == {
        "Get": f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{contract.BASELINE}'].S3Output.S3Uri"
    }
    assert dataset["S3Input"]["S3DataType"] == "S3Prefix"  # the analyzer reads a directory
    top_level = [s["Name"] for s in definition["Steps"]]
    assert top_level.index("Preprocess") < top_level.index(DATA_QUALITY_STEP)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_the_analyzer_job_is_isolated_encrypted_bounded_and_tagged(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str
) -> None:
    synth = synthesized[stage]
    definition, step = _check(synth, pipeline)
    args = step["Arguments"]
    region = synth.config.region or PLACEHOLDER_REGION
    assert args["AppSpecification"] == {
        "ImageUri": image_uri_for_region(region, Image.MODEL_MONITOR_ANALYZER)
    }
    assert re.fullmatch(
        rf"\d{{12}}\.dkr\.ecr\.{re.escape(region)}\.amazonaws\.com/sagemaker-model-monitor-analyzer",
        args["AppSpecification"]["ImageUri"],
    )
    assert args["NetworkConfig"] == {
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
    }
    key = args["ProcessingOutputConfig"]["KmsKeyId"]
    assert key.startswith("arn:aws:kms:")
    cluster = args["ProcessingResources"]["ClusterConfig"]
    assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    assert (
        PipelineEvaluator(definition).value(cluster["InstanceType"]) == synth.config.processing.instance_type
    )
    if has_instance_storage(synth.config.processing.instance_type):
        assert "VolumeKmsKeyId" not in cluster
    else:
        assert cluster["VolumeKmsKeyId"] == key
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": synth.config.processing.max_runtime_seconds}
    tags = {t["Key"]: t["Value"] for t in args["Tags"]}
    assert tags.items() >= {**platform_tags(stage), **synth.config.tags}.items()
    # The analyzer's environment names the input and output folders the request mounts.
    (dataset,) = args["ProcessingInputs"]
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    env = args["Environment"]
    assert env["dataset_source"] == dataset["S3Input"]["LocalPath"]
    assert env["output_path"] == output["S3Output"]["LocalPath"]
    assert json.loads(env["dataset_format"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    assert env["publish_cloudwatch_metrics"] == "Disabled"
    assert all(isinstance(v, str) and len(v) <= 256 for v in env.values())


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_the_baseline_lands_under_monitoring_baselines_per_pipeline_and_execution(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str
) -> None:
    synth = synthesized[stage]
    definition, step = _check(synth, pipeline)
    ev = PipelineEvaluator(definition)
    (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    uri = ev.value(output["S3Output"]["S3Uri"])
    bucket = _lake_bucket(synth)
    assert uri == (
        f"s3://{bucket}/monitoring/baselines/{PIPELINE_NAMES[pipeline]}/{EXECUTION_ID}/data-quality/"
    )
    assert "//" not in uri.removeprefix("s3://")
    # The input is the folder Preprocess writes baseline.csv into (header + raw train features).
    (dataset,) = step["Arguments"]["ProcessingInputs"]
    dataset_uri = ev.value(dataset["S3Input"]["S3Uri"])
    assert dataset_uri.endswith(f"/{contract.BASELINE}/") and "//" not in dataset_uri.removeprefix("s3://")
    assert contract.split_file(contract.BASELINE) == "baseline.csv"
    # The registered files are the ones the analyzer writes into that folder.
    assert ev.value(STATISTICS) == uri + "statistics.json"
    assert ev.value(CONSTRAINTS) == uri + "constraints.json"
    # A run that registers new baselines checks against (and registers) the ones it computed.
    assert ev.value(USED_STATISTICS) == ev.value(STATISTICS)
    assert ev.value(USED_CONSTRAINTS) == ev.value(CONSTRAINTS)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_registered_package_carries_exactly_the_check_steps_baselines(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str
) -> None:
    definition = definitions(synthesized[stage])[pipeline]
    registers = [s for s in iter_steps(definition) if s["Type"] == "RegisterModel"]
    assert registers
    for register in registers:
        args = register["Arguments"]
        assert args["DriftCheckBaselines"]["ModelDataQuality"] == {
            "Statistics": {"ContentType": "application/json", "S3Uri": USED_STATISTICS},
            "Constraints": {"ContentType": "application/json", "S3Uri": USED_CONSTRAINTS},
        }
        assert args["ModelMetrics"]["ModelDataQuality"] == {
            "Statistics": {"ContentType": "application/json", "S3Uri": STATISTICS},
            "Constraints": {"ContentType": "application/json", "S3Uri": CONSTRAINTS},
        }
    checks = [s for s in iter_steps(definition) if s["Type"] == "QualityCheck"]
    assert [c["Name"] for c in checks if c["CheckType"] == "DATA_QUALITY"] == [DATA_QUALITY_STEP]


# ---- the validator refuses broken check steps and registrations -------------------------------------


def _broken(definition: dict[str, Any], change: Any) -> list[str]:
    broken = copy.deepcopy(definition)
    change(broken)
    return validate_pipeline_definition(broken)


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in iter_steps(definition) if s["Name"] == name)


@pytest.mark.parametrize(
    ("what", "change", "expected"),
    [
        (
            "an unknown check type",
            lambda d: _step(d, DATA_QUALITY_STEP).update(CheckType="DATA_BIAS"),
            "CheckType: 'DATA_BIAS' not one of",
        ),
        (
            "a string for SkipCheck",
            lambda d: _step(d, DATA_QUALITY_STEP).update(SkipCheck="true"),
            "SkipCheck: 'true' is not a bool",
        ),
        (
            "no RegisterNewBaseline",
            lambda d: _step(d, DATA_QUALITY_STEP).pop("RegisterNewBaseline"),
            "RegisterNewBaseline: missing",
        ),
        (
            "a misspelt check field",
            lambda d: _step(d, DATA_QUALITY_STEP).update(SkipChecks=True),
            "unknown QualityCheck member 'SkipChecks'",
        ),
        (
            "an unknown processing member",
            lambda d: _step(d, DATA_QUALITY_STEP)["Arguments"].update(Enviroment={}),
            "Enviroment",
        ),
        (
            "a baseline property that does not exist",
            lambda d: _step(d, "RegisterSpot")["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"][
                "Statistics"
            ].update(S3Uri={"Get": f"Steps.{DATA_QUALITY_STEP}.BaselineUsedForDriftCheckStats"}),
            "QualityCheckStepMetadata has no member 'BaselineUsedForDriftCheckStats'",
        ),
        (
            "a metrics source without a content type",
            lambda d: _step(d, "RegisterSpot")["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"][
                "Constraints"
            ].pop("ContentType"),
            "ContentType",
        ),
    ],
)
def test_the_validator_refuses_a_broken_check_or_registration(
    dev_definition: dict[str, Any], what: str, change: Any, expected: str
) -> None:
    errors = _broken(dev_definition, change)
    assert any(expected in e for e in errors), (what, errors)


@pytest.fixture(scope="module")
def dev_definition(synthesized: dict[str, SynthesizedStage]) -> dict[str, Any]:
    definition = definitions(synthesized["dev"])["training"]
    assert validate_pipeline_definition(definition) == []
    return definition


@pytest.mark.parametrize("instance_type", ["ml.m5.xlarge", "ml.r5d.xlarge"])
def test_the_analyzer_request_puts_the_key_on_the_volume_only_without_instance_storage(
    instance_type: str,
) -> None:
    """SageMaker refuses VolumeKmsKeyId for instance-storage types (their store is hardware-encrypted)."""
    from ml_platform.pipelines import JobEnvironment, data_quality_baseline_job
    from tests.support.sagemaker_api import validate_request

    key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
    env = JobEnvironment(
        role_arn="arn:aws:iam::123456789012:role/r", kms_key_arn=key, code_uri="s3://a/c.gz",
        code_object_key="c.gz", tags=(("team", "ml"),),
    )  # fmt: skip
    request: Any = data_quality_baseline_job(
        env=env,
        image_uri="156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        dataset_uri="s3://lake/processed/d/training/x/baseline/",
        output_uri="s3://lake/monitoring/baselines/training/x/data-quality/",
        instance_type=instance_type,
        instance_count=1,
        volume_size_gb=30,
        max_runtime_seconds=3600,
        encrypt_volume=not has_instance_storage(instance_type),
    )
    assert validate_request("CreateProcessingJob", request) == []
    cluster = request["ProcessingResources"]["ClusterConfig"]
    assert ("VolumeKmsKeyId" in cluster) is (instance_type == "ml.m5.xlarge")
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == key
    assert request["Tags"] == [{"Key": "team", "Value": "ml"}]
