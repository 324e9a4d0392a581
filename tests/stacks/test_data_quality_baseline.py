"""The data-quality baseline of the training and tuning pipelines (issue 9, item 1, first piece).

Per branch, inside the quality gate's if-branch, a ``QualityCheck`` step ``DataQualityCheck<branch>`` runs
SageMaker Model Monitor's analyzer on Evaluate's data-quality dataset (``data_quality.csv``: the model's
response columns, then the input columns, because Model Monitor's data-quality job on an endpoint reads each
capture as output columns then input columns and matches them to the baseline by position) and writes
``statistics.json`` and ``constraints.json`` under
``monitoring/baselines/<pipeline>/<execution>/data-quality``; the branch's RegisterModel step registers
exactly those files as the package's data-quality metrics and drift-check baselines (the other baselines:
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
from training_code import contract, monitoring_contract

PIPELINE_NAMES = {"training": TrainingPipeline.NAME, "tuning": TuningPipeline.NAME}
BRANCHES = {"training": ("Spot", "OnDemand"), "tuning": ("Best",)}
CASES = [(pipeline, branch) for pipeline in PIPELINES for branch in BRANCHES[pipeline]]


def _ref(branch: str, path: str) -> dict[str, str]:
    return {"Get": f"Steps.{DATA_QUALITY_STEP}{branch}.{path}"}


def _check(synth: SynthesizedStage, pipeline: str, branch: str) -> tuple[dict[str, Any], dict[str, Any]]:
    definition = definitions(synth)[pipeline]
    return definition, steps(definition)[f"{DATA_QUALITY_STEP}{branch}"]


def _lake_bucket(synth: SynthesizedStage) -> str:
    exports = template_exports(synth.template("data"))
    (bucket,) = [v for k, v in exports.items() if k.endswith(":LakeBucketName")]
    return str(bucket)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(("pipeline", "branch"), CASES)
def test_the_check_step_is_a_valid_data_quality_check_of_evaluates_dataset_after_the_gate(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str, branch: str
) -> None:
    """Arguments against botocore's CreateProcessingJob; the SDK's check fields; first-run defaults; in the
    gate's if-branch (only a model that passed gets a baseline), before the branch's Register."""
    synth = synthesized[stage]
    definition, step = _check(synth, pipeline, branch)
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
    # Its one input is Evaluate's data-quality output (so it runs after Evaluate, in the branch).
    (dataset,) = step["Arguments"]["ProcessingInputs"]
    assert dataset["S3Input"]["S3Uri"] == {
        "Get": f"Steps.Evaluate{branch}.ProcessingOutputConfig.Outputs['{contract.DATA_QUALITY_OUTPUT}']"
        ".S3Output.S3Uri"
    }
    assert dataset["S3Input"]["S3DataType"] == "S3Prefix"  # the analyzer reads a directory
    assert DATA_QUALITY_STEP not in {s["Name"] for s in definition["Steps"]}  # no head step any more
    gate = steps(definition)[f"QualityGate{branch}"]
    if_steps = [s["Name"] for s in gate["Arguments"]["IfSteps"]]
    assert step["Name"] in if_steps
    assert if_steps.index(step["Name"]) < if_steps.index(f"Register{branch}")
    assert step["Name"] not in [s["Name"] for s in gate["Arguments"]["ElseSteps"]]


@pytest.mark.parametrize(("pipeline", "branch"), CASES)
def test_evaluate_gets_the_raw_inputs_and_writes_the_data_quality_dataset_to_its_own_folder(
    synthesized: dict[str, SynthesizedStage], pipeline: str, branch: str
) -> None:
    """Evaluate reads Preprocess's scoring output (what the endpoint receives) at the contract's folder and
    uploads data_quality.csv from its data-quality folder to a prefix of its own (the check reads all of
    it: nothing else may land there)."""
    definition = definitions(synthesized["dev"])[pipeline]
    ev = PipelineEvaluator(definition)
    args = steps(definition)[f"Evaluate{branch}"]["Arguments"]
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs[contract.SCORING]["S3Uri"] == {
        "Get": f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{contract.SCORING}'].S3Output.S3Uri"
    }
    assert inputs[contract.SCORING]["LocalPath"] == contract.EVALUATE_SCORING_DIR
    outputs = {o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    data_quality = outputs[contract.DATA_QUALITY_OUTPUT]
    assert data_quality["LocalPath"] == contract.DATA_QUALITY_DIR
    uris = {name: ev.value(o["S3Uri"]) for name, o in outputs.items()}
    assert uris[contract.DATA_QUALITY_OUTPUT].endswith(
        f"/{PIPELINE_NAMES[pipeline]}/{EXECUTION_ID}/Evaluate{branch}-{contract.DATA_QUALITY_OUTPUT}/"
    )
    others = [u for n, u in uris.items() if n != contract.DATA_QUALITY_OUTPUT]
    assert not any(u.startswith(uris[contract.DATA_QUALITY_OUTPUT]) for u in others), uris
    assert monitoring_contract.DATA_QUALITY_BASELINE_FILE == "data_quality.csv"


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(("pipeline", "branch"), CASES)
def test_the_analyzer_job_is_isolated_encrypted_bounded_and_tagged(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str, branch: str
) -> None:
    synth = synthesized[stage]
    definition, step = _check(synth, pipeline, branch)
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
    # The response columns come first in data_quality.csv, as in a capture Model Monitor reads.
    assert json.loads(env["dataset_format"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    assert env["publish_cloudwatch_metrics"] == "Disabled"
    assert all(isinstance(v, str) and len(v) <= 256 for v in env.values())


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(("pipeline", "branch"), CASES)
def test_the_baseline_lands_under_monitoring_baselines_per_pipeline_and_execution(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str, branch: str
) -> None:
    synth = synthesized[stage]
    definition, step = _check(synth, pipeline, branch)
    ev = PipelineEvaluator(definition)
    (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    uri = ev.value(output["S3Output"]["S3Uri"])
    bucket = _lake_bucket(synth)
    # No trailing '/': SageMaker registers <S3Uri>/<file> (as the SDK writes it).
    assert uri == f"s3://{bucket}/monitoring/baselines/{PIPELINE_NAMES[pipeline]}/{EXECUTION_ID}/data-quality"
    # The input is the folder Evaluate writes data_quality.csv into (header: responses, then inputs).
    (dataset,) = step["Arguments"]["ProcessingInputs"]
    dataset_uri = ev.value(dataset["S3Input"]["S3Uri"])
    assert dataset_uri.endswith(f"-{contract.DATA_QUALITY_OUTPUT}/")
    assert "//" not in dataset_uri.removeprefix("s3://")
    # The registered files are the ones the analyzer writes into that folder, without '//'.
    assert ev.value(_ref(branch, "CalculatedBaselineStatistics")) == uri + "/statistics.json"
    assert ev.value(_ref(branch, "CalculatedBaselineConstraints")) == uri + "/constraints.json"
    # A run that registers new baselines checks against (and registers) the ones it computed.
    for kind in ("Statistics", "Constraints"):
        used = ev.value(_ref(branch, f"BaselineUsedForDriftCheck{kind}"))
        assert used == ev.value(_ref(branch, f"CalculatedBaseline{kind}"))
        assert "//" not in used.removeprefix("s3://")


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_registered_package_carries_exactly_the_check_steps_baselines(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str
) -> None:
    definition = definitions(synthesized[stage])[pipeline]
    registers = [s for s in iter_steps(definition) if s["Type"] == "RegisterModel"]
    assert [r["Name"] for r in registers] == [f"Register{b}" for b in BRANCHES[pipeline]]
    for register, branch in zip(registers, BRANCHES[pipeline], strict=True):
        args = register["Arguments"]
        assert args["DriftCheckBaselines"]["ModelDataQuality"] == {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": _ref(branch, "BaselineUsedForDriftCheckStatistics"),
            },
            "Constraints": {
                "ContentType": "application/json",
                "S3Uri": _ref(branch, "BaselineUsedForDriftCheckConstraints"),
            },
        }
        assert args["ModelMetrics"]["ModelDataQuality"] == {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": _ref(branch, "CalculatedBaselineStatistics"),
            },
            "Constraints": {
                "ContentType": "application/json",
                "S3Uri": _ref(branch, "CalculatedBaselineConstraints"),
            },
        }
    checks = [s for s in iter_steps(definition) if s["Type"] == "QualityCheck"]
    assert [c["Name"] for c in checks if c["CheckType"] == "DATA_QUALITY"] == [
        f"{DATA_QUALITY_STEP}{b}" for b in BRANCHES[pipeline]
    ]


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
            lambda d: _step(d, f"{DATA_QUALITY_STEP}Spot").update(CheckType="DATA_BIAS"),
            "CheckType: 'DATA_BIAS' not one of",
        ),
        (
            "a string for SkipCheck",
            lambda d: _step(d, f"{DATA_QUALITY_STEP}Spot").update(SkipCheck="true"),
            "SkipCheck: 'true' is not a bool",
        ),
        (
            "no RegisterNewBaseline",
            lambda d: _step(d, f"{DATA_QUALITY_STEP}Spot").pop("RegisterNewBaseline"),
            "RegisterNewBaseline: missing",
        ),
        (
            "a misspelt check field",
            lambda d: _step(d, f"{DATA_QUALITY_STEP}Spot").update(SkipChecks=True),
            "unknown QualityCheck member 'SkipChecks'",
        ),
        (
            "an unknown processing member",
            lambda d: _step(d, f"{DATA_QUALITY_STEP}Spot")["Arguments"].update(Enviroment={}),
            "Enviroment",
        ),
        (
            "a baseline property that does not exist",
            lambda d: _step(d, "RegisterSpot")["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"][
                "Statistics"
            ].update(S3Uri={"Get": f"Steps.{DATA_QUALITY_STEP}Spot.BaselineUsedForDriftCheckStats"}),
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
        dataset_uri="s3://lake/models/training/x/EvaluateSpot-data_quality/",
        output_uri="s3://lake/monitoring/baselines/training/x/data-quality",
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
