"""The training stack on the shared synth: each pipeline step against botocore, and what matters."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from ml_platform.instance_types import has_instance_storage
from stacks.training_stack import TrainingStack
from tests.conftest import STAGES, SynthesizedStage
from tests.support.access_model import EXECUTION_ID, PipelineEvaluator
from tests.support.sagemaker_api import (
    PLACEHOLDER_REGION,
    iter_steps,
    template_exports,
    validate_pipeline_definition,
)
from tests.support.training_pipelines import PIPELINES, batch_definition, definitions, steps
from training_code import contract, metrics


def parameter_defaults(definition: dict[str, Any]) -> dict[str, Any]:
    return {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}


@pytest.fixture(scope="module")
def dev(synthesized: dict[str, SynthesizedStage]) -> dict[str, dict[str, Any]]:
    return definitions(synthesized["dev"])


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_step_is_a_valid_sagemaker_api_request(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str
) -> None:
    """Arguments of every step (nested ones too) against botocore's model: shapes, types, enums, patterns."""
    definition = definitions(synthesized[stage])[pipeline]
    assert validate_pipeline_definition(definition) == []
    types = {step["Type"] for step in iter_steps(definition)}
    assert {"Processing", "Condition", "RegisterModel", "Fail"} <= types
    assert ("Training" if pipeline == "training" else "Tuning") in types


def test_training_pipeline_parameters_default_to_the_stage_config(
    synthesized: dict[str, SynthesizedStage],
) -> None:
    for synth in synthesized.values():
        cfg = synth.config
        defaults = parameter_defaults(definitions(synth)["training"])
        assert defaults == {
            "DatasetVersion": cfg.dataset.version,
            "ProcessingInstanceType": cfg.processing.instance_type,
            "TrainingInstanceType": cfg.training.instance_type,
            "TrainingInstanceCount": cfg.training.instance_count,
            "UseSpot": cfg.training.use_spot,
            "MaxRuntimeSeconds": cfg.training.max_runtime_seconds,
            "MaxWaitSeconds": cfg.training.max_wait_seconds,
            "AccuracyThreshold": cfg.training.accuracy_threshold,
            # A first run has no previous baseline: compute one, check nothing, use the new one.
            "SkipDriftChecks": True,
            "RegisterNewBaselines": True,
        }
        assert defaults["MaxWaitSeconds"] >= defaults["MaxRuntimeSeconds"]


def training_stack(synth: SynthesizedStage) -> TrainingStack:
    return cast(TrainingStack, synth.stacks["training"])


def unrendered_training_requests(synth: SynthesizedStage) -> dict[str, dict[str, Any]]:
    """The training steps of the training pipeline as written (pipeline expressions intact)."""
    stack = cast(TrainingStack, synth.stacks["training"])
    return {
        s["Name"]: s["Arguments"]
        for s in iter_steps(stack.training_pipeline.definition)
        if s["Type"] == "Training"
    }


def test_spot_branch_uses_managed_spot_with_max_wait_and_the_on_demand_branch_does_not(
    synthesized: dict[str, SynthesizedStage],
) -> None:
    requests = unrendered_training_requests(synthesized["dev"])
    assert set(requests) == {"TrainSpot", "TrainOnDemand"}
    spot, on_demand = requests["TrainSpot"], requests["TrainOnDemand"]
    assert spot["EnableManagedSpotTraining"] is True
    assert spot["StoppingCondition"] == {
        "MaxRuntimeInSeconds": {"Get": "Parameters.MaxRuntimeSeconds"},
        "MaxWaitTimeInSeconds": {"Get": "Parameters.MaxWaitSeconds"},
    }
    # SageMaker refuses MaxWaitTimeInSeconds when spot is off.
    assert on_demand["EnableManagedSpotTraining"] is False
    assert on_demand["StoppingCondition"] == {"MaxRuntimeInSeconds": {"Get": "Parameters.MaxRuntimeSeconds"}}
    (choice,) = [
        s
        for s in steps(
            cast(TrainingStack, synthesized["dev"].stacks["training"]).training_pipeline.definition
        ).values()
        if s["Name"] == "SpotOrOnDemand"
    ]
    condition = choice["Arguments"]["Conditions"][0]
    assert condition == {"Type": "Equals", "LeftValue": {"Get": "Parameters.UseSpot"}, "RightValue": True}
    assert choice["Arguments"]["IfSteps"][0]["Name"] == "TrainSpot"
    assert choice["Arguments"]["ElseSteps"][0]["Name"] == "TrainOnDemand"


def test_checkpoint_uri_ends_in_slash_and_is_unique_per_execution_and_step(
    synthesized: dict[str, SynthesizedStage],
) -> None:
    requests = unrendered_training_requests(synthesized["dev"])
    for name, request in requests.items():
        config = request["CheckpointConfig"]
        assert config["LocalPath"] == "/opt/ml/checkpoints"
        join = config["S3Uri"]["Std:Join"]
        assert join["On"] == "/" and join["Values"][-1] == ""  # joined with '/', so the URI ends in '/'
        assert {"Get": "Execution.PipelineExecutionId"} in join["Values"]
        assert name in join["Values"] and "checkpoints" in join["Values"]
    # Rendered, it is an s3:// URI in the lake's checkpoints/ zone, ending in '/'.
    rendered = steps(definitions(synthesized["dev"])["training"])["TrainSpot"]["Arguments"][
        "CheckpointConfig"
    ]
    assert rendered["S3Uri"]["Std:Join"]["Values"][1] == "checkpoints"


@pytest.mark.parametrize("stage", STAGES)
def test_training_jobs_are_encrypted_isolated_retried_and_distributed(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    (key_arn,) = [v for k, v in template_exports(synth.template("data")).items() if k.endswith(":LakeKeyArn")]
    for name, step in steps(definitions(synth)["training"]).items():
        if step["Type"] != "Training":
            continue
        request = step["Arguments"]
        assert request["EnableNetworkIsolation"] is True
        assert request["EnableInterContainerTrafficEncryption"] is True
        assert request["RetryStrategy"] == {"MaximumRetryAttempts": synth.config.training.max_retry_attempts}
        # The stage key on the volumes, except on instance types with local storage (SageMaker refuses it
        # there; their instance store is encrypted by the hardware).
        instance_type = request["ResourceConfig"]["InstanceType"]
        if has_instance_storage(synth.config.training.instance_type):
            assert "VolumeKmsKeyId" not in request["ResourceConfig"], instance_type
        else:
            assert request["ResourceConfig"]["VolumeKmsKeyId"] == key_arn
        assert request["OutputDataConfig"]["KmsKeyId"] == key_arn
        assert request["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
        assert request["HyperParameters"]["sagemaker_program"] == '"train.py"'
        image = request["AlgorithmSpecification"]["TrainingImage"]
        region = re.escape(synth.config.region or PLACEHOLDER_REGION)
        assert re.fullmatch(
            rf"\d{{12}}\.dkr\.ecr\.{region}\.amazonaws\.com(\.cn)?/pytorch-training:2\.\d+\.\d+-gpu-py311",
            image,
        )
        assert step["RetryPolicies"][0]["ExceptionType"] == [
            "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT", "SageMaker.JOB_INTERNAL_ERROR",
        ]  # fmt: skip
        assert name in ("TrainSpot", "TrainOnDemand")


def test_metric_definitions_come_from_the_training_code(dev: dict[str, dict[str, Any]]) -> None:
    train = steps(dev["training"])["TrainSpot"]["Arguments"]
    assert train["AlgorithmSpecification"]["MetricDefinitions"] == metrics.METRIC_DEFINITIONS
    tune = steps(dev["tuning"])["Tune"]["Arguments"]
    assert (
        tune["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
        == metrics.METRIC_DEFINITIONS
    )
    objective = tune["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"Type": "Maximize", "MetricName": metrics.OBJECTIVE_METRIC}
    assert objective["MetricName"] in {m["Name"] for m in metrics.METRIC_DEFINITIONS}


@pytest.mark.parametrize("stage", STAGES)
def test_tuning_is_bayesian_with_config_ranges_and_spot_checkpoints_inside(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    tuning, training = synth.config.tuning, synth.config.training
    tune = steps(definitions(synth)["tuning"])["Tune"]["Arguments"]
    config = tune["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": tuning.max_jobs,
        "MaxParallelTrainingJobs": tuning.max_parallel_jobs,
    }
    continuous = {r["Name"]: r for r in config["ParameterRanges"]["ContinuousParameterRanges"]}
    integer = {r["Name"]: r for r in config["ParameterRanges"]["IntegerParameterRanges"]}
    assert continuous["learning_rate"] == {
        "Name": "learning_rate",
        "MinValue": str(tuning.ranges.learning_rate.min),
        "MaxValue": str(tuning.ranges.learning_rate.max),
        "ScalingType": "Logarithmic",
    }
    assert (continuous["dropout"]["MinValue"], continuous["dropout"]["MaxValue"]) == ("0.1", "0.5")
    assert (integer["batch_size"]["MinValue"], integer["batch_size"]["MaxValue"]) == ("32", "256")
    assert (integer["hidden_units"]["MinValue"], integer["hidden_units"]["MaxValue"]) == ("64", "512")
    definition = tune["TrainingJobDefinition"]
    # Tuned hyperparameters are not also static; the fixed ones are.
    assert not {"learning_rate", "batch_size", "dropout", "hidden_units"} & set(
        definition["StaticHyperParameters"]
    )
    assert definition["StaticHyperParameters"]["checkpoint_interval_steps"] == str(
        training.checkpoint_interval_steps
    )
    assert definition["EnableManagedSpotTraining"] is training.use_spot is True
    assert definition["StoppingCondition"] == {
        "MaxRuntimeInSeconds": training.max_runtime_seconds,
        "MaxWaitTimeInSeconds": training.max_wait_seconds,
    }
    assert (
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"]
        >= definition["StoppingCondition"]["MaxRuntimeInSeconds"]
    )
    assert definition["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"][-1] == ""
    assert definition["EnableNetworkIsolation"] is True
    assert definition["EnableInterContainerTrafficEncryption"] is True
    assert definition["RetryStrategy"] == {"MaximumRetryAttempts": training.max_retry_attempts}


def test_best_model_of_tuning_is_evaluated(dev: dict[str, dict[str, Any]]) -> None:
    tuning = steps(dev["tuning"])
    model_input = next(
        i for i in tuning["EvaluateBest"]["Arguments"]["ProcessingInputs"] if i["InputName"] == "model"
    )
    values = model_input["S3Input"]["S3Uri"]["Std:Join"]["Values"]
    assert {"Get": "Steps.Tune.BestTrainingJob.TrainingJobName"} in values
    assert values[-2:] == ["output", "model.tar.gz"]
    output_path = tuning["Tune"]["Arguments"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]
    # The best model lives under the tuning job's output path: <output path>/<best job>/output/model.tar.gz
    assert output_path["Std:Join"]["Values"][:-1] == values[: len(output_path["Std:Join"]["Values"]) - 1]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_quality_gate_registers_pending_manual_approval_with_metrics(
    synthesized: dict[str, SynthesizedStage], pipeline: str
) -> None:
    synth = synthesized["prod"]
    definition = definitions(synth)[pipeline]
    all_steps = steps(definition)
    gates = [s for name, s in all_steps.items() if name.startswith("QualityGate")]
    assert gates
    path = metrics.evaluation_json_path(num_classes=synth.config.dataset.num_classes)
    for gate in gates:
        (condition,) = gate["Arguments"]["Conditions"]
        assert condition["Type"] == "GreaterThanOrEqualTo"
        assert (
            condition["LeftValue"]["Std:JsonGet"]["Path"]
            == path
            == "binary_classification_metrics.accuracy.value"
        )
        assert condition["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
        # Only a model that passed the gate is checked (its baselines) and registered.
        *checks, register = gate["Arguments"]["IfSteps"]
        assert [c["Type"] for c in checks] == [
            "QualityCheck",  # data quality (Evaluate's answers and inputs)
            "Model",
            "QualityCheck",  # model quality
            "ClarifyCheck",
            "ClarifyCheck",
        ]
        (fail,) = gate["Arguments"]["ElseSteps"]
        assert fail["Type"] == "Fail"
        request = register["Arguments"]
        assert register["Type"] == "RegisterModel"
        assert request["ModelApprovalStatus"] == "PendingManualApproval"
        statistics = request["ModelMetrics"]["ModelQuality"]["Statistics"]
        assert statistics == {
            "ContentType": "application/json",
            "S3Uri": {"Get": f"Steps.{checks[2]['Name']}.CalculatedBaselineStatistics"},
        }
        assert request["ModelMetrics"]["ModelDataQuality"]["Statistics"] == {
            "ContentType": "application/json",
            "S3Uri": {"Get": f"Steps.{checks[0]['Name']}.CalculatedBaselineStatistics"},
        }
        # The evaluation report the gate read stays findable from the package.
        report = request["CustomerMetadataProperties"]["evaluation_report"]
        assert report["Std:Join"]["Values"][-1] == metrics.EVALUATION_FILE_NAME
        group = synth.template("training")["Resources"]
        (group_props,) = [
            r["Properties"] for r in group.values() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"
        ]
        assert request["ModelPackageGroupName"] == group_props["ModelPackageGroupName"]
    assert parameter_defaults(definition)["AccuracyThreshold"] == synth.config.training.accuracy_threshold


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_models_are_registered_with_the_serving_image_and_the_trained_artifact(
    synthesized: dict[str, SynthesizedStage], stage: str, pipeline: str
) -> None:
    """An approved package serves with the platform's ONNX container: no framework image, no entry point."""
    synth = synthesized[stage]
    stack = training_stack(synth)
    region = re.escape(synth.config.region or PLACEHOLDER_REGION)
    all_steps = steps(definitions(synth)[pipeline])
    registers = {name: s for name, s in all_steps.items() if s["Type"] == "RegisterModel"}
    assert registers
    for name, register in registers.items():
        spec = register["Arguments"]["InferenceSpecification"]
        (container,) = spec["Containers"]
        assert set(container) == {"Image", "ModelDataUrl"}  # no SAGEMAKER_PROGRAM: the server needs none
        assert re.fullmatch(
            rf"\d{{12}}\.dkr\.ecr\.{region}\.amazonaws\.com/cdk-hnb659fds-container-assets-\d{{12}}-{region}:"
            + stack.serving_image.asset_hash,
            container["Image"],
        ), container["Image"]
        # The artifact the run trained and evaluated (the Evaluate step's model input).
        evaluate = all_steps["Evaluate" + name.removeprefix("Register")]["Arguments"]
        (model_input,) = [i for i in evaluate["ProcessingInputs"] if i["InputName"] == "model"]
        assert model_input["S3Input"]["S3Uri"] == container["ModelDataUrl"]
        # The serving container's own contract (training_code/contract.py, serving section).
        assert (
            spec["SupportedContentTypes"]
            == list(contract.REQUEST_CONTENT_TYPES)
            == ["text/csv", "application/json"]
        )
        assert spec["SupportedResponseMIMETypes"] == list(contract.RESPONSE_CONTENT_TYPES)
        assert spec["SupportedResponseMIMETypes"][0] == "application/json"  # the endpoint's default answer
        assert spec["SupportedRealtimeInferenceInstanceTypes"] == list(
            synth.config.registry.inference_instance_types
        )
        assert spec["SupportedTransformInstanceTypes"] == list(synth.config.registry.transform_instance_types)


def test_evaluation_step_writes_the_property_file_the_gate_reads(dev: dict[str, dict[str, Any]]) -> None:
    evaluate = steps(dev["training"])["EvaluateSpot"]
    (property_file,) = evaluate["PropertyFiles"]
    assert property_file == {
        "PropertyFileName": "EvaluationReport",
        "OutputName": metrics.EVALUATION_OUTPUT_NAME,
        "FilePath": metrics.EVALUATION_FILE_NAME,
    }
    outputs = evaluate["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    # The report, the model-quality baseline dataset (predictions.csv) and the data-quality one
    # (data_quality.csv), each in a folder of its own.
    assert [o["OutputName"] for o in outputs] == [
        metrics.EVALUATION_OUTPUT_NAME,
        contract.PREDICTIONS_OUTPUT,
        contract.DATA_QUALITY_OUTPUT,
    ]
    assert [o["S3Output"]["LocalPath"] for o in outputs] == [
        contract.EVALUATION_DIR,
        contract.PREDICTIONS_DIR,
        contract.DATA_QUALITY_DIR,
    ]
    # Its inputs: the model, the test split, and the raw inputs the endpoint receives (scoring).
    inputs = evaluate["Arguments"]["ProcessingInputs"]
    assert [(i["InputName"], i["S3Input"]["LocalPath"]) for i in inputs if i["InputName"] != "code"] == [
        ("model", contract.EVALUATE_MODEL_DIR),
        (contract.TEST, contract.EVALUATE_TEST_DIR),
        (contract.SCORING, contract.EVALUATE_SCORING_DIR),
    ]


def test_processing_jobs_are_isolated_encrypted_and_run_the_bundled_scripts(
    dev: dict[str, dict[str, Any]],
) -> None:
    for name, step in steps(dev["training"]).items():
        if step["Type"] != "Processing":
            continue
        args = step["Arguments"]
        # Only feature ingestion calls an AWS API (Feature Store), which an isolated job cannot reach.
        assert args["NetworkConfig"] == {
            "EnableNetworkIsolation": name != "IngestFeatures",
            "EnableInterContainerTrafficEncryption": True,
        }
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"].startswith("arn:aws:kms:")
        if name != "IngestFeatures":  # it writes nothing to S3
            assert args["ProcessingOutputConfig"]["KmsKeyId"].startswith("arn:aws:kms:")
        entry = args["AppSpecification"]["ContainerEntrypoint"]
        script = {"Preprocess": "preprocess.py", "IngestFeatures": "ingest_features.py"}.get(
            name, "evaluate.py"
        )
        assert entry[:2] == ["/bin/bash", "-c"] and f"exec python3 {script}" in entry[2]
        assert (Path(__file__).parents[2] / "training_code" / script).is_file()
        code = next(i for i in args["ProcessingInputs"] if i["InputName"] == "code")
        assert code["S3Input"]["LocalPath"] == "/opt/ml/processing/code"
        assert (
            code["S3Input"]["S3Uri"].endswith(".gz") and code["S3Input"]["S3Uri"].split("/")[-1] in entry[2]
        )


def test_preprocess_reads_the_versioned_raw_dataset(dev: dict[str, dict[str, Any]]) -> None:
    preprocess = steps(dev["training"])["Preprocess"]["Arguments"]
    raw = next(i for i in preprocess["ProcessingInputs"] if i["InputName"] == "raw")
    values = raw["S3Input"]["S3Uri"]["Std:Join"]["Values"]
    assert values[1:4] == ["raw", "breast-cancer", {"Get": "Parameters.DatasetVersion"}]
    assert [o["OutputName"] for o in preprocess["ProcessingOutputConfig"]["Outputs"]] == [
        "train", "validation", "test", "baseline", "scoring", "scoring_labels", "labeled", "feature_store",
    ]  # fmt: skip


def test_model_package_group_is_retained_in_prod(synthesized: dict[str, SynthesizedStage]) -> None:
    resources = synthesized["prod"].template("training")["Resources"]
    (group,) = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"]
    assert group["DeletionPolicy"] == "Retain"
    resources = synthesized["dev"].template("training")["Resources"]
    (group,) = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"]
    assert group["DeletionPolicy"] == "Delete"


def test_pipelines_run_as_the_execution_role(synthesized: dict[str, SynthesizedStage]) -> None:
    resources = synthesized["dev"].template("training")["Resources"]
    pipelines = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    assert len(pipelines) == 3
    for pipeline in pipelines:
        role = pipeline["Properties"]["RoleArn"]["Fn::GetAtt"]
        assert role[0].startswith("ExecutionRole") and role[1] == "Arn"
        assert json.dumps(pipeline).count("PipelineDefinitionBody") == 1


# ---- batch transform ---------------------------------------------------------------------------------

BATCH_RUN = {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"}


@pytest.mark.parametrize("stage", STAGES)
def test_the_batch_pipeline_is_valid_and_scores_on_the_registry_transform_type(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    definition = batch_definition(synth)
    assert validate_pipeline_definition(definition) == []
    assert [s["Type"] for s in iter_steps(definition)][-2:] == ["Model", "Transform"]
    (key_arn,) = [v for k, v in template_exports(synth.template("data")).items() if k.endswith(":LakeKeyArn")]
    types = synth.config.registry.transform_instance_types
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert parameters["TransformInstanceType"]["DefaultValue"] == types[0]
    assert set(parameters["TransformInstanceType"]["EnumValues"]) <= set(types)
    assert "DefaultValue" not in parameters["ModelPackageArn"]
    assert "DefaultValue" not in parameters["SourceExecutionId"]
    all_steps = steps(definition)
    model = all_steps["ScoringModel"]["Arguments"]
    assert model["PrimaryContainer"] == {"ModelPackageName": {"Get": "Parameters.ModelPackageArn"}}
    assert model["EnableNetworkIsolation"] is True
    role = synth.template("training")["Resources"]
    assert model["ExecutionRoleArn"].startswith("arn:aws:iam::") and any(
        lid.startswith("ExecutionRole") for lid in role
    )
    request = all_steps["BatchTransform"]["Arguments"]
    assert request["ModelName"] == {"Get": "Steps.ScoringModel.ModelName"}
    assert (request["BatchStrategy"], request["MaxPayloadInMB"]) == ("MultiRecord", contract.MAX_PAYLOAD_MB)
    assert request["TransformInput"]["ContentType"] in contract.REQUEST_CONTENT_TYPES
    assert request["TransformOutput"]["Accept"] in contract.RESPONSE_CONTENT_TYPES
    assert request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformInput"]["ContentType"] == "text/csv"
    assert request["TransformOutput"]["AssembleWith"] == "Line"
    assert request["TransformOutput"]["Accept"] == "text/csv"
    assert request["TransformOutput"]["KmsKeyId"] == key_arn
    resources = request["TransformResources"]
    assert resources["InstanceType"] == {"Get": "Parameters.TransformInstanceType"}
    if has_instance_storage(types[0]):
        assert "VolumeKmsKeyId" not in resources
    else:
        assert resources["VolumeKmsKeyId"] == key_arn
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags == {t["Key"]: t["Value"] for t in model["Tags"]}
    assert tags["stage"] == synth.config.name and tags["pipeline"] == "batch-transform"
    assert {k: tags[k] for k in synth.config.tags} == dict(synth.config.tags)


@pytest.mark.parametrize("source", PIPELINES)
def test_the_batch_pipeline_scores_exactly_what_a_preprocess_execution_wrote(
    synthesized: dict[str, SynthesizedStage], source: str
) -> None:
    """The batch input for (SourcePipeline, SourceExecutionId) is the scoring output of that execution."""
    synth = synthesized["dev"]
    preprocess = PipelineEvaluator(definitions(synth)[source])
    (scoring,) = [
        o
        for o in steps(definitions(synth)[source])["Preprocess"]["Arguments"]["ProcessingOutputConfig"][
            "Outputs"
        ]
        if o["OutputName"] == contract.SCORING
    ]
    written = preprocess.value(scoring["S3Output"]["S3Uri"])
    batch = batch_definition(synth)
    ev = PipelineEvaluator(batch, {**BATCH_RUN, "SourcePipeline": source, "SourceExecutionId": EXECUTION_ID})
    request = ev.value(steps(batch)["BatchTransform"]["Arguments"])
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == written
    assert written.endswith(f"/{source}/{EXECUTION_ID}/scoring/")
    bucket = written.split("/")[2]
    assert request["TransformOutput"]["S3OutputPath"] == (
        f"s3://{bucket}/processed/{synth.config.dataset.name}/batch-transform/{EXECUTION_ID}/predictions/"
    )


def test_the_execution_role_may_pull_the_serving_image(synthesized: dict[str, SynthesizedStage]) -> None:
    synth = synthesized["dev"]
    stack = training_stack(synth)
    repository = stack.resolve(stack.serving_image.repository.repository_arn)
    documents = [
        r["Properties"]["PolicyDocument"]
        for lid, r in synth.template("training")["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and lid.startswith("ExecutionRole")
    ]
    pulls = [
        s
        for d in documents
        for s in d["Statement"]
        if repository == s["Resource"]
        or repository in (s["Resource"] if isinstance(s["Resource"], list) else [])
    ]
    assert pulls and "ecr:BatchGetImage" in pulls[0]["Action"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_job_the_pipelines_start_carries_the_cost_allocation_tags(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """SageMaker Pipelines does not copy a pipeline's tags to its jobs: each request carries them, or the
    stage budget (filtered on these tags) would miss the compute it exists for."""
    from stacks.config import platform_tags

    expected = {**platform_tags(stage), **synthesized[stage].config.tags}
    tagged_types = {"Processing", "Training", "Tuning", "Transform", "Model"}
    for name, definition in definitions(synthesized[stage]).items():
        jobs = [s for s in iter_steps(definition) if s["Type"] in tagged_types]
        assert jobs, name
        for step in jobs:
            tags = {t["Key"]: t["Value"] for t in step["Arguments"].get("Tags", [])}
            assert tags.items() >= expected.items(), (name, step["Name"], tags)
            if step["Type"] == "Tuning":  # on the tuning job, which adds them to its trials
                assert "Tags" not in step["Arguments"]["TrainingJobDefinition"]
