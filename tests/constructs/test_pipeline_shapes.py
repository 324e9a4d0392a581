"""The typed requests mirror botocore's SageMaker shapes; the tuning definition is the training job."""

from __future__ import annotations

from typing import Any, cast

import pytest
from botocore.loaders import Loader

from ml_platform.pipelines import JobEnvironment, SpotSettings, training_job, tuning_definition
from ml_platform.pipelines.requests import NOT_IN_TUNING, RENAMED_FOR_TUNING
from ml_platform.pipelines.shapes import SHAPES

MODEL = Loader().load_service_model("sagemaker", "service-2")["shapes"]
# Members SageMaker Pipelines fills in itself (the job and model names), per request shape.
PIPELINE_FILLED = {
    "CreateProcessingJobRequest": {"ProcessingJobName"},
    "CreateTrainingJobRequest": {"TrainingJobName"},
    "CreateHyperParameterTuningJobRequest": {"HyperParameterTuningJobName"},
    "CreateTransformJobRequest": {"TransformJobName"},
    "CreateModelInput": {"ModelName"},
}


@pytest.mark.parametrize("typed", list(SHAPES), ids=lambda t: t.__name__)
def test_every_typed_request_mirrors_its_botocore_shape(typed: Any) -> None:
    shape = MODEL[SHAPES[typed]]
    members = set(shape["members"])
    keys = set(typed.__annotations__)
    assert keys <= members, f"{typed.__name__}: not in {SHAPES[typed]}: {sorted(keys - members)}"
    required = set(shape.get("required", [])) - PIPELINE_FILLED.get(SHAPES[typed], set())
    assert required == set(typed.__required_keys__), typed.__name__


ENV = JobEnvironment(role_arn="arn:aws:iam::123456789012:role/r", kms_key_arn="k", code_uri="s3://a/c.gz",
                     code_object_key="c.gz")  # fmt: skip


def request() -> Any:
    return training_job(
        env=ENV, image_uri="i", entry_point="train.py", hyperparameters={"lr": 0.1, "epochs": 2},
        channels={"train": "s3://b/t/"}, output_path="s3://b/m/", instance_type="ml.g5.xlarge",
        instance_count=1, volume_size_gb=10, max_runtime_seconds=60,
        spot=SpotSettings(enabled=True, max_wait_seconds=120, checkpoint_s3_uri="s3://b/c/"),
        retry_attempts=2,
        metric_definitions=[{"Name": "m", "Regex": "m=(.*)"}], distributed=True, region="us-east-1",
        encrypt_volume=False,
    )  # fmt: skip


def test_every_training_member_reaches_the_tuning_definition_or_is_dropped_for_a_reason() -> None:
    training = request()
    definition: dict[str, Any] = dict(tuning_definition(training, ["lr"]))
    for key, value in training.items():
        target = RENAMED_FOR_TUNING.get(key, key)
        assert target in definition, key
        if key not in ("HyperParameters", "AlgorithmSpecification"):
            assert definition[target] == value, key
    assert "lr" not in definition["StaticHyperParameters"]
    assert definition["StaticHyperParameters"]["epochs"] == "2"
    dropped = {k for (where, k) in NOT_IN_TUNING if where == "AlgorithmSpecification"}
    assert set(definition["AlgorithmSpecification"]) == set(training["AlgorithmSpecification"]) - dropped


def test_a_training_member_the_tuning_definition_cannot_take_is_refused_not_dropped() -> None:
    training: Any = {**request(), "ProfilerConfig": {"S3OutputPath": "s3://b/p/"}}
    with pytest.raises(
        ValueError, match="'ProfilerConfig': not a member of HyperParameterTrainingJobDefinition"
    ):
        tuning_definition(training, [])
    algorithm = {**request()["AlgorithmSpecification"], "ContainerEntrypoint": ["x"]}
    with pytest.raises(ValueError, match="'ContainerEntrypoint': not a member of"):
        tuning_definition(cast(Any, {**request(), "AlgorithmSpecification": algorithm}), [])
