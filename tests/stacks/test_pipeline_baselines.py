"""The model-quality, bias and explainability baselines of the training and tuning pipelines (issue 9).

Beside DataQualityCheck<b> (tests/stacks/test_data_quality_baseline.py) the pipelines run

* ``DataBiasCheck`` (ClarifyCheck DATA_BIAS) after Preprocess, on its ``labeled/`` output;
* per branch (Spot/OnDemand, Best), inside the quality gate's if-branch before Register:
  ``DataQualityCheck<b>`` (QualityCheck DATA_QUALITY on Evaluate's ``data_quality`` output),
  ``ClarifyModel<b>`` (a Model step: the trained artifact with the serving image), ``ModelQualityCheck<b>``
  (QualityCheck MODEL_QUALITY on Evaluate's ``predictions`` output), ``ModelBiasCheck<b>`` and
  ``ModelExplainabilityCheck<b>`` (ClarifyCheck MODEL_BIAS / MODEL_EXPLAINABILITY with ``ModelName``).

Checked on the shared synth of every stage: placement, URIs (evaluated), check types, environment, Clarify
inputs (the analysis configs are the stage's ClarifyConfigs, byte for byte), isolation only where documented,
the registration mapping; and broken steps are refused by the validator and the builders.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from ml_platform.clarify_config import config_json
from ml_platform.images import Image, image_uri_for_region
from ml_platform.instance_types import has_instance_storage
from ml_platform.model_pipelines import (
    CLARIFY_MODEL_STEP,
    DATA_BIAS_STEP,
    DATA_QUALITY_STEP,
    EXPLAINABILITY_STEP,
    MODEL_BIAS_STEP,
    MODEL_QUALITY_STEP,
    TrainingPipeline,
    TuningPipeline,
    registered_explainability_config,
)
from ml_platform.pipelines import (
    JobEnvironment,
    ModelQualityAttributes,
    clarify_check_step,
    clarify_job,
    model_quality_baseline_job,
)
from stacks.config import platform_tags
from stacks.training_stack import clarify_shadow_endpoint_prefix, clarify_shadow_instance_type
from tests.conftest import BASELINE_FILES, STAGES, SynthesizedStage
from tests.support.access_model import EXECUTION_ID, PipelineEvaluator
from tests.support.sagemaker_api import (
    PLACEHOLDER_REGION,
    iter_steps,
    template_exports,
    validate_pipeline_definition,
    validate_request,
)
from tests.support.training_pipelines import PIPELINES, asset_text, definitions, steps
from training_code import contract, monitoring_contract

PIPELINE_NAMES = {"training": TrainingPipeline.NAME, "tuning": TuningPipeline.NAME}
BRANCHES = {"training": ("Spot", "OnDemand"), "tuning": ("Best",)}
JSON = "application/json"
# Clarify check step (without branch) -> (check type, baseline folder, asks a model).
CLARIFY_CHECKS = {
    DATA_BIAS_STEP: ("DATA_BIAS", "data-bias", False),
    MODEL_BIAS_STEP: ("MODEL_BIAS", "model-bias", True),
    EXPLAINABILITY_STEP: ("MODEL_EXPLAINABILITY", "explainability", True),
}
#: Quality check step (without branch) -> baseline folder.
QUALITY_CHECKS = {DATA_QUALITY_STEP: "data-quality", MODEL_QUALITY_STEP: "model-quality"}
CASES = [(stage, pipeline) for stage in STAGES for pipeline in PIPELINES]


def _lake_bucket(synth: SynthesizedStage) -> str:
    exports = template_exports(synth.template("data"))
    (bucket,) = [v for k, v in exports.items() if k.endswith(":LakeBucketName")]
    return str(bucket)


def _baseline_uri(synth: SynthesizedStage, pipeline: str, kind: str) -> str:
    """The check's output URI: no trailing '/' (SageMaker registers ``<S3Uri>/<file>``)."""
    return f"s3://{_lake_bucket(synth)}/monitoring/baselines/{PIPELINE_NAMES[pipeline]}/{EXECUTION_ID}/{kind}"


def _check_names(pipeline: str) -> list[str]:
    return [DATA_BIAS_STEP] + [
        f"{step}{branch}"
        for branch in BRANCHES[pipeline]
        for step in (DATA_QUALITY_STEP, MODEL_QUALITY_STEP, MODEL_BIAS_STEP, EXPLAINABILITY_STEP)
    ]


@pytest.fixture(scope="module")
def rendered(synthesized: dict[str, SynthesizedStage]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(stage, p): definitions(synthesized[stage])[p] for stage in STAGES for p in PIPELINES}


# ---- placement and wiring -----------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_the_model_checks_run_only_for_a_model_that_passed_the_gate(
    rendered: dict[tuple[str, str], dict[str, Any]], stage: str, pipeline: str
) -> None:
    """DataBiasCheck after Preprocess; per branch data quality, the model and its three checks in the gate's
    if-branch, before Register; nothing of them in the else-branch (Fail)."""
    definition = rendered[(stage, pipeline)]
    assert validate_pipeline_definition(definition) == []
    top = [s["Name"] for s in definition["Steps"]]
    assert top.index("Preprocess") < top.index(DATA_BIAS_STEP)
    assert DATA_QUALITY_STEP not in top
    for branch in BRANCHES[pipeline]:
        gate = steps(definition)[f"QualityGate{branch}"]["Arguments"]
        assert [(s["Name"], s["Type"]) for s in gate["IfSteps"]] == [
            (f"{DATA_QUALITY_STEP}{branch}", "QualityCheck"),
            (f"{CLARIFY_MODEL_STEP}{branch}", "Model"),
            (f"{MODEL_QUALITY_STEP}{branch}", "QualityCheck"),
            (f"{MODEL_BIAS_STEP}{branch}", "ClarifyCheck"),
            (f"{EXPLAINABILITY_STEP}{branch}", "ClarifyCheck"),
            (f"Register{branch}", "RegisterModel"),
        ]
        assert [s["Type"] for s in gate["ElseSteps"]] == ["Fail"]


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_every_check_takes_the_two_run_parameters_and_the_stage_group(
    rendered: dict[tuple[str, str], dict[str, Any]],
    synthesized: dict[str, SynthesizedStage],
    stage: str,
    pipeline: str,
) -> None:
    definition = rendered[(stage, pipeline)]
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults["SkipDriftChecks"] is True and defaults["RegisterNewBaselines"] is True
    assert not {"SkipDataQualityCheck", "RegisterNewDataQualityBaseline"} & set(defaults)
    (group,) = [
        r["Properties"]["ModelPackageGroupName"]
        for r in synthesized[stage].template("training")["Resources"].values()
        if r["Type"] == "AWS::SageMaker::ModelPackageGroup"
    ]
    checks = [s for s in iter_steps(definition) if s["Type"] in ("QualityCheck", "ClarifyCheck")]
    assert sorted(s["Name"] for s in checks) == sorted(_check_names(pipeline))
    for check in checks:
        assert check["SkipCheck"] == {"Get": "Parameters.SkipDriftChecks"}, check["Name"]
        assert check["RegisterNewBaseline"] == {"Get": "Parameters.RegisterNewBaselines"}, check["Name"]
        assert check["ModelPackageGroupName"] == group
        assert check["FailOnViolation"] is False
        assert "SuppliedBaselineConstraints" not in check


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_every_baseline_lands_in_its_folder_under_monitoring_baselines(
    rendered: dict[tuple[str, str], dict[str, Any]],
    synthesized: dict[str, SynthesizedStage],
    stage: str,
    pipeline: str,
) -> None:
    """``monitoring/baselines/<pipeline>/<execution>/<kind>`` (no trailing '/'); the properties Register reads
    are the files the jobs write there (analysis.json for Clarify, statistics.json and constraints.json
    otherwise), ``<S3Uri>/<file>`` as SageMaker builds them."""
    synth, definition = synthesized[stage], rendered[(stage, pipeline)]
    ev = PipelineEvaluator(definition)
    all_steps = steps(definition)
    for name in _check_names(pipeline):
        step = all_steps[name]
        kind = (
            QUALITY_CHECKS[_base(name)] if step["Type"] == "QualityCheck" else CLARIFY_CHECKS[_base(name)][1]
        )
        (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
        uri = ev.value(output["S3Output"]["S3Uri"])
        assert uri == _baseline_uri(synth, pipeline, kind), name
        files = (
            {"Statistics": "statistics.json", "Constraints": "constraints.json"}
            if step["Type"] == "QualityCheck"
            else {"Constraints": "analysis.json"}
        )
        for member, file_name in files.items():
            assert ev.value({"Get": f"Steps.{name}.CalculatedBaseline{member}"}) == f"{uri}/{file_name}"
            assert (
                ev.value({"Get": f"Steps.{name}.BaselineUsedForDriftCheck{member}"}) == f"{uri}/{file_name}"
            )


def _base(name: str) -> str:
    """A check step's name without its branch suffix."""
    for base in (DATA_QUALITY_STEP, MODEL_QUALITY_STEP, MODEL_BIAS_STEP, EXPLAINABILITY_STEP, DATA_BIAS_STEP):
        if name.startswith(base):
            return base
    raise AssertionError(name)


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_the_model_quality_check_reads_evaluates_predictions_with_the_contracts_columns(
    rendered: dict[tuple[str, str], dict[str, Any]],
    synthesized: dict[str, SynthesizedStage],
    stage: str,
    pipeline: str,
) -> None:
    synth, definition = synthesized[stage], rendered[(stage, pipeline)]
    mc = synth.config.dataset_schema.contract
    all_steps = steps(definition)
    for branch in BRANCHES[pipeline]:
        step = all_steps[f"{MODEL_QUALITY_STEP}{branch}"]
        assert step["CheckType"] == "MODEL_QUALITY"
        args = step["Arguments"]
        (dataset,) = args["ProcessingInputs"]
        assert dataset["S3Input"]["S3Uri"] == {
            "Get": f"Steps.Evaluate{branch}.ProcessingOutputConfig.Outputs['{contract.PREDICTIONS_OUTPUT}']"
            ".S3Output.S3Uri"
        }
        evaluate = all_steps[f"Evaluate{branch}"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
        (predictions,) = [o for o in evaluate if o["OutputName"] == contract.PREDICTIONS_OUTPUT]
        assert predictions["S3Output"]["LocalPath"] == contract.PREDICTIONS_DIR
        env = args["Environment"]
        expected = {
            "analysis_type": "MODEL_QUALITY",
            "problem_type": mc.problem_type,
            "inference_attribute": monitoring_contract.BASELINE_PREDICTION_COLUMN,
            "ground_truth_attribute": monitoring_contract.BASELINE_LABEL_COLUMN,
        }
        if mc.binary:
            expected |= {
                "probability_attribute": monitoring_contract.BASELINE_PROBABILITY_COLUMN,
                "probability_threshold_attribute": str(mc.probability_threshold),
            }
        assert {k: v for k, v in env.items() if k in expected or k.endswith("_attribute")} == expected
        assert env["dataset_source"] == dataset["S3Input"]["LocalPath"]
        assert json.loads(env["dataset_format"]) == {
            "csv": {"header": True, "output_columns_position": "START"}
        }
        # The attributes name columns of the header Evaluate writes (lower case and '_' only).
        for key in ("inference_attribute", "ground_truth_attribute", "probability_attribute"):
            if key in env:
                assert env[key] in monitoring_contract.BASELINE_COLUMNS
                monitoring_contract.check_baseline_column_name(env[key])
        assert args["NetworkConfig"] == {
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        }
        region = synth.config.region or PLACEHOLDER_REGION
        assert args["AppSpecification"] == {
            "ImageUri": image_uri_for_region(region, Image.MODEL_MONITOR_ANALYZER)
        }


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_the_clarify_checks_run_the_stages_analysis_on_the_labeled_split(
    rendered: dict[tuple[str, str], dict[str, Any]],
    synthesized: dict[str, SynthesizedStage],
    stage: str,
    pipeline: str,
) -> None:
    """Clarify's image for the region, the analysis config (an asset whose file is exactly the stage's
    ClarifyConfigs output), the labeled dataset, key on output (and volume unless instance storage),
    stopping condition, tags, inter-container encryption; isolation off only for the model checks."""
    synth, definition = synthesized[stage], rendered[(stage, pipeline)]
    clarify, shadow = synth.config.clarify, clarify_shadow_instance_type(synth.config)
    prefix = clarify_shadow_endpoint_prefix(synth.stacks["training"].stack_name)
    configs = {
        DATA_BIAS_STEP: clarify.data_bias_baselining(),
        MODEL_BIAS_STEP: clarify.model_bias_baselining(shadow, endpoint_name_prefix=prefix),
        EXPLAINABILITY_STEP: clarify.explainability_baselining(shadow, endpoint_name_prefix=prefix),
    }
    region = synth.config.region or PLACEHOLDER_REGION
    processing = synth.config.processing
    for step in (s for s in iter_steps(definition) if s["Type"] == "ClarifyCheck"):
        base = _base(step["Name"])
        check_type, _, asks_model = CLARIFY_CHECKS[base]
        assert step["CheckType"] == check_type
        args = step["Arguments"]
        assert args["AppSpecification"] == {"ImageUri": image_uri_for_region(region, Image.CLARIFY)}
        inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
        assert list(inputs) == ["analysis_config", "dataset"]
        assert inputs["analysis_config"]["LocalPath"] == "/opt/ml/processing/input/config"
        assert inputs["dataset"]["LocalPath"] == "/opt/ml/processing/input/data"
        assert asset_text(synth, inputs["analysis_config"]["S3Uri"]) == config_json(configs[base])
        assert inputs["dataset"]["S3Uri"] == {
            "Get": f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{contract.LABELED}'].S3Output.S3Uri"
        }
        (output,) = args["ProcessingOutputConfig"]["Outputs"]
        assert (
            output["OutputName"],
            output["S3Output"]["LocalPath"],
            output["S3Output"]["S3UploadMode"],
        ) == (
            "analysis_result",
            "/opt/ml/processing/output",
            "EndOfJob",
        )
        key = args["ProcessingOutputConfig"]["KmsKeyId"]
        assert key.startswith("arn:aws:kms:")
        cluster = args["ProcessingResources"]["ClusterConfig"]
        assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
        assert ("VolumeKmsKeyId" in cluster) is not has_instance_storage(processing.instance_type)
        assert cluster.get("VolumeKmsKeyId", key) == key
        assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": processing.max_runtime_seconds}
        tags = {t["Key"]: t["Value"] for t in args["Tags"]}
        assert tags.items() >= {**platform_tags(stage), **synth.config.tags}.items()
        assert args["NetworkConfig"] == {
            "EnableNetworkIsolation": not asks_model,
            "EnableInterContainerTrafficEncryption": True,
        }
        assert ("ModelName" in step) is asks_model


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_the_model_checks_ask_the_model_the_branch_trained(
    rendered: dict[tuple[str, str], dict[str, Any]], stage: str, pipeline: str
) -> None:
    """ModelName is the branch's Model step: the registered image and artifact, network isolation off (the
    documented exception: Clarify's shadow endpoint must reach it), tagged."""
    definition = rendered[(stage, pipeline)]
    all_steps = steps(definition)
    for branch in BRANCHES[pipeline]:
        model_step = all_steps[f"{CLARIFY_MODEL_STEP}{branch}"]
        for check in (MODEL_BIAS_STEP, EXPLAINABILITY_STEP):
            assert all_steps[f"{check}{branch}"]["ModelName"] == {
                "Get": f"Steps.{CLARIFY_MODEL_STEP}{branch}.ModelName"
            }
        (registered,) = all_steps[f"Register{branch}"]["Arguments"]["InferenceSpecification"]["Containers"]
        model = model_step["Arguments"]
        assert model["PrimaryContainer"] == {
            "Image": registered["Image"],
            "ModelDataUrl": registered["ModelDataUrl"],
        }
        assert model["EnableNetworkIsolation"] is False
        assert model["ExecutionRoleArn"] == all_steps[f"{MODEL_BIAS_STEP}{branch}"]["Arguments"]["RoleArn"]
        assert {"Key": "pipeline", "Value": PIPELINE_NAMES[pipeline]} in model["Tags"]
    # Every other model and job is isolated (the exceptions are exactly these and IngestFeatures).
    unisolated = sorted(
        s["Name"]
        for s in iter_steps(definition)
        if (s["Arguments"].get("NetworkConfig") or {}).get("EnableNetworkIsolation") is False
        or (s["Type"] == "Model" and s["Arguments"]["EnableNetworkIsolation"] is False)
    )
    assert unisolated == sorted(
        ["IngestFeatures"]
        + [
            f"{s}{b}"
            for b in BRANCHES[pipeline]
            for s in (CLARIFY_MODEL_STEP, MODEL_BIAS_STEP, EXPLAINABILITY_STEP)
        ]
    )


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_the_package_registers_what_the_checks_computed_and_used(
    rendered: dict[tuple[str, str], dict[str, Any]],
    synthesized: dict[str, SynthesizedStage],
    stage: str,
    pipeline: str,
) -> None:
    """ModelMetrics: the computed baselines; DriftCheckBaselines: the ones the checks used, and the bias and
    explainability monitoring configs (assets with exactly the stage's monitoring configs)."""
    synth, definition = synthesized[stage], rendered[(stage, pipeline)]
    all_steps = steps(definition)

    def source(step: str, prop: str) -> dict[str, Any]:
        return {"ContentType": JSON, "S3Uri": {"Get": f"Steps.{step}.{prop}"}}

    for branch in BRANCHES[pipeline]:
        args = all_steps[f"Register{branch}"]["Arguments"]
        mq, mb, ex = (f"{s}{branch}" for s in (MODEL_QUALITY_STEP, MODEL_BIAS_STEP, EXPLAINABILITY_STEP))
        dq = f"{DATA_QUALITY_STEP}{branch}"
        assert args["ModelMetrics"] == {
            "ModelQuality": {
                "Statistics": source(mq, "CalculatedBaselineStatistics"),
                "Constraints": source(mq, "CalculatedBaselineConstraints"),
            },
            "ModelDataQuality": {
                "Statistics": source(dq, "CalculatedBaselineStatistics"),
                "Constraints": source(dq, "CalculatedBaselineConstraints"),
            },
            "Bias": {
                "PreTrainingReport": source(DATA_BIAS_STEP, "CalculatedBaselineConstraints"),
                "PostTrainingReport": source(mb, "CalculatedBaselineConstraints"),
                "Report": source(mb, "CalculatedBaselineConstraints"),
            },
            "Explainability": {"Report": source(ex, "CalculatedBaselineConstraints")},
        }
        drift = copy.deepcopy(args["DriftCheckBaselines"])
        bias_config = drift["Bias"].pop("ConfigFile")
        explainability_config = drift["Explainability"].pop("ConfigFile")
        assert drift == {
            "ModelDataQuality": {
                "Statistics": source(dq, "BaselineUsedForDriftCheckStatistics"),
                "Constraints": source(dq, "BaselineUsedForDriftCheckConstraints"),
            },
            "ModelQuality": {
                "Statistics": source(mq, "BaselineUsedForDriftCheckStatistics"),
                "Constraints": source(mq, "BaselineUsedForDriftCheckConstraints"),
            },
            "Bias": {
                "PreTrainingConstraints": source(DATA_BIAS_STEP, "BaselineUsedForDriftCheckConstraints"),
                "PostTrainingConstraints": source(mb, "BaselineUsedForDriftCheckConstraints"),
            },
            "Explainability": {"Constraints": source(ex, "BaselineUsedForDriftCheckConstraints")},
        }
        clarify = synth.config.clarify
        assert bias_config["ContentType"] == explainability_config["ContentType"] == JSON
        assert asset_text(synth, bias_config["S3Uri"]) == config_json(clarify.bias_monitoring())
        registered = json.loads(asset_text(synth, explainability_config["S3Uri"]))
        assert registered == registered_explainability_config(
            clarify, clarify_shadow_instance_type(synth.config)
        )
        assert "model_name" not in registered["predictor"] and registered["methods"]["shap"]


@pytest.mark.parametrize(("stage", "pipeline"), CASES)
def test_the_registered_uris_evaluate_to_the_baseline_files(
    rendered: dict[tuple[str, str], dict[str, Any]],
    synthesized: dict[str, SynthesizedStage],
    stage: str,
    pipeline: str,
) -> None:
    """What monitoring reads from a package this pipeline registers (a first run: computed == used)."""
    synth, definition = synthesized[stage], rendered[(stage, pipeline)]
    ev = PipelineEvaluator(definition)
    expected = BASELINE_FILES
    base = f"s3://{_lake_bucket(synth)}/monitoring/baselines/{PIPELINE_NAMES[pipeline]}/{EXECUTION_ID}/"
    for register in (s for s in iter_steps(definition) if s["Type"] == "RegisterModel"):
        drift = register["Arguments"]["DriftCheckBaselines"]
        got = {
            (section, member): ev.value(value["S3Uri"])
            for section, members in drift.items()
            for member, value in members.items()
            if member != "ConfigFile"
        }
        assert got == {k: base + v for k, v in expected.items()}
        assert registered_uri_problems(ev, register) == []


def _sources(tree: Any) -> list[Any]:
    """Every MetricsSource's ``S3Uri`` in a ModelMetrics / DriftCheckBaselines tree."""
    if isinstance(tree, dict):
        if "S3Uri" in tree:
            return [tree["S3Uri"]]
        return [uri for value in tree.values() for uri in _sources(value)]
    return []


def registered_uri_problems(ev: PipelineEvaluator, register: dict[str, Any]) -> list[str]:
    """Registered URIs (model metrics and drift-check baselines) with '//' after the scheme: a key nothing
    wrote (what a check output ending in '/' gives, since SageMaker registers ``<S3Uri>/<file>``)."""
    args = register["Arguments"]
    uris = [ev.value(u) for u in _sources(args["ModelMetrics"]) + _sources(args["DriftCheckBaselines"])]
    assert len(uris) == 17, uris  # 8 model metrics + 9 drift-check baselines (the two ConfigFiles included)
    return [u for u in uris if not u.startswith("s3://") or "//" in u.removeprefix("s3://")]


def test_a_check_output_ending_in_a_slash_would_register_a_double_slash(
    rendered: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """The evaluator builds check properties as SageMaker does (``<S3Uri>/<file>``, nothing stripped):
    give one check's output the old trailing '/' and the registered URIs hold '//', which the test above
    refuses."""
    definition = copy.deepcopy(rendered[("dev", "training")])
    step = _step(definition, f"{DATA_QUALITY_STEP}Spot")
    (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    output["S3Output"]["S3Uri"]["Std:Join"]["Values"].append("")  # ends in '/'
    ev = PipelineEvaluator(definition)
    problems = registered_uri_problems(ev, _step(definition, "RegisterSpot"))
    assert problems and all(p.endswith(("/data-quality//statistics.json", "/data-quality//constraints.json"))
                            for p in problems), problems  # fmt: skip
    assert len(problems) == 4  # statistics and constraints, computed and used


# ---- broken steps are refused -------------------------------------------------------------------------


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in iter_steps(definition) if s["Name"] == name)


def _drift(d: dict[str, Any]) -> dict[str, Any]:
    drift: dict[str, Any] = _step(d, "RegisterSpot")["Arguments"]["DriftCheckBaselines"]
    return drift


def _metrics(d: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = _step(d, "RegisterSpot")["Arguments"]["ModelMetrics"]
    return metrics


@pytest.mark.parametrize(
    ("what", "change", "expected"),
    [
        (
            "a model check without a model",
            lambda d: _step(d, "ModelBiasCheckSpot").pop("ModelName"),
            "ModelName: missing (a MODEL_BIAS check asks a model's shadow endpoint)",
        ),
        (
            "a data-bias check with a model",
            lambda d: _step(d, DATA_BIAS_STEP).update(ModelName={"Get": "Steps.ClarifyModelSpot.ModelName"}),
            "ModelName: given for a 'DATA_BIAS' check",
        ),
        (
            "a quality check type on a Clarify step",
            lambda d: _step(d, DATA_BIAS_STEP).update(CheckType="DATA_QUALITY"),
            "CheckType: 'DATA_QUALITY' not one of",
        ),
        (
            "a Clarify check type on a quality step",
            lambda d: _step(d, "ModelQualityCheckSpot").update(CheckType="MODEL_BIAS"),
            "CheckType: 'MODEL_BIAS' not one of",
        ),
        (
            "statistics on a Clarify step",
            lambda d: _step(d, DATA_BIAS_STEP).update(SuppliedBaselineStatistics="s3://b/k"),
            "unknown ClarifyCheck member 'SuppliedBaselineStatistics'",
        ),
        (
            "a renamed config input",
            lambda d: _step(d, "ModelExplainabilityCheckSpot")["Arguments"]["ProcessingInputs"][0].update(
                InputName="config"
            ),
            "Clarify input 'analysis_config': LocalPath 'missing'",
        ),
        (
            "a moved dataset",
            lambda d: _step(d, DATA_BIAS_STEP)["Arguments"]["ProcessingInputs"][1]["S3Input"].update(
                LocalPath="/opt/ml/processing/input/labeled"
            ),
            "Clarify input 'dataset': LocalPath",
        ),
        (
            "a string for SkipCheck",
            lambda d: _step(d, "ModelBiasCheckSpot").update(SkipCheck="false"),
            "SkipCheck: 'false' is not a bool",
        ),
        (
            "an unknown processing member",
            lambda d: _step(d, "ModelBiasCheckSpot")["Arguments"].update(NetworkConfiguration={}),
            "NetworkConfiguration",
        ),
        (
            "a Clarify step with statistics",
            lambda d: _drift(d)["ModelQuality"]["Statistics"].update(
                S3Uri={"Get": "Steps.ModelBiasCheckSpot.BaselineUsedForDriftCheckStatistics"}
            ),
            "ClarifyCheckStepMetadata has no member 'BaselineUsedForDriftCheckStatistics'",
        ),
        (
            "a config file without a URI",
            lambda d: _drift(d)["Bias"]["ConfigFile"].pop("S3Uri"),
            "DriftCheckBaselines.Bias.ConfigFile",
        ),
        (
            "a report without a content type",
            lambda d: _metrics(d)["Explainability"]["Report"].pop("ContentType"),
            "ModelMetrics.Explainability.Report.ContentType",
        ),
        (
            "a misspelt metrics section",
            lambda d: _metrics(d).update(Explainabilty={}),
            "Explainabilty",
        ),
        (
            "a model from a step that is no model",
            lambda d: _step(d, "ModelBiasCheckSpot").update(
                ModelName={"Get": "Steps.ClarifyModelSpot.ModelNam"}
            ),
            "ModelNam",
        ),
    ],
)
def test_the_validator_refuses_a_broken_baseline_step_or_registration(
    rendered: dict[tuple[str, str], dict[str, Any]], what: str, change: Any, expected: str
) -> None:
    broken = copy.deepcopy(rendered[("dev", "training")])
    assert validate_pipeline_definition(broken) == []
    change(broken)
    errors = validate_pipeline_definition(broken)
    assert any(expected in e for e in errors), (what, errors)


ENV = JobEnvironment(
    role_arn="arn:aws:iam::123456789012:role/r",
    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000",
    code_uri="s3://a/c.gz",
    code_object_key="c.gz",
    tags=(("team", "ml"),),
)


@pytest.mark.parametrize("instance_type", ["ml.m5.xlarge", "ml.r5d.xlarge"])
def test_the_baseline_requests_put_the_key_on_the_volume_only_without_instance_storage(
    instance_type: str,
) -> None:
    encrypt = not has_instance_storage(instance_type)
    common: dict[str, Any] = {
        "env": ENV, "instance_type": instance_type, "instance_count": 1, "volume_size_gb": 30,
        "max_runtime_seconds": 3600, "encrypt_volume": encrypt,
        "output_uri": "s3://lake/monitoring/baselines/training/x/model-quality/",
    }  # fmt: skip
    quality: Any = model_quality_baseline_job(
        image_uri="156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        dataset_uri="s3://lake/models/training/x/EvaluateSpot-predictions/",
        attributes=ModelQualityAttributes("MulticlassClassification", "prediction", "label"),
        **common,
    )
    bias: Any = clarify_job(
        image_uri="205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0",
        config_uri="s3://assets/abc.json",
        dataset_uri="s3://lake/processed/d/training/x/labeled/",
        network_isolation=False,
        **common,
    )
    for request in (quality, bias):
        assert validate_request("CreateProcessingJob", request) == []
        cluster = request["ProcessingResources"]["ClusterConfig"]
        assert ("VolumeKmsKeyId" in cluster) is encrypt
        assert request["ProcessingOutputConfig"]["KmsKeyId"] == ENV.kms_key_arn
        assert request["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert "probability_attribute" not in quality["Environment"]
    assert bias["NetworkConfig"]["EnableNetworkIsolation"] is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"problem_type": "Ranking", "inference": "p", "ground_truth": "l"}, "problem_type: got 'Ranking'"),
        (
            {"problem_type": "MulticlassClassification", "inference": "p", "ground_truth": "l",
             "probability": "q", "probability_threshold": 0.5},
            "allowed: only for BinaryClassification",
        ),
        (
            {"problem_type": "BinaryClassification", "inference": "p", "ground_truth": "l",
             "probability": "q"},
            "probability_threshold: got None with probability 'q'; allowed: both or neither",
        ),
        (
            {"problem_type": "BinaryClassification", "inference": "p", "ground_truth": "l",
             "probability": "q", "probability_threshold": 1.0},
            "probability_threshold: got 1.0; allowed: in (0, 1)",
        ),
        ({"problem_type": "BinaryClassification", "inference": "l", "ground_truth": "l"}, "distinct"),
    ],
)  # fmt: skip
def test_model_quality_attributes_refuse_what_the_analyzer_cannot_read(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelQualityAttributes(**kwargs)


def test_a_clarify_step_takes_a_model_exactly_when_its_analysis_asks_one() -> None:
    request: Any = {}
    model = {"Get": "Steps.M.ModelName"}
    with pytest.raises(ValueError, match=r"model_name: got None for MODEL_BIAS; allowed: a model name for"):
        clarify_check_step("X", request, check_type="MODEL_BIAS", model_package_group_name="g",
                           skip_check=True, register_new_baseline=True)  # fmt: skip
    with pytest.raises(ValueError, match=r"model_name: got .* for DATA_BIAS"):
        clarify_check_step("X", request, check_type="DATA_BIAS", model_package_group_name="g",
                           skip_check=True, register_new_baseline=True, model_name=model)  # fmt: skip
    step = clarify_check_step("X", request, check_type="MODEL_EXPLAINABILITY", model_package_group_name="g",
                              skip_check=True, register_new_baseline=True, model_name=model)  # fmt: skip
    assert step["ModelName"] == model and step["Type"] == "ClarifyCheck"
