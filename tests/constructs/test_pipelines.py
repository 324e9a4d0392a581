"""Pipeline builders and the SageMakerPipeline construct on a bare Stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from ml_platform.pipelines import (
    ContinuousRange,
    IntegerRange,
    JobEnvironment,
    Parameter,
    ParameterCheck,
    SageMakerPipeline,
    SpotSettings,
    parameter_check_steps,
    processing_job,
    processing_step,
    training_job,
    training_step,
    tuning_job,
    tuning_step,
)
from ml_platform.pipelines.shapes import CreateTrainingJobRequest
from tests.support.sagemaker_api import pipeline_definitions, validate_pipeline_definition

ENV = JobEnvironment(
    role_arn="arn:aws:iam::123456789012:role/sm",
    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    code_uri="s3://assets-bucket/abc123.gz",
    code_object_key="abc123.gz",
)
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311"


def request(**overrides: Any) -> CreateTrainingJobRequest:
    props: dict[str, Any] = {
        "env": ENV,
        "image_uri": IMAGE,
        "entry_point": "train.py",
        "hyperparameters": {"epochs": 3, "learning_rate": 0.01},
        "channels": {"train": "s3://lake/processed/train/"},
        "output_path": "s3://lake/models/",
        "instance_type": "ml.g5.xlarge",
        "instance_count": 2,
        "volume_size_gb": 50,
        "max_runtime_seconds": 3600,
        "spot": SpotSettings(
            enabled=True, max_wait_seconds=7200, checkpoint_s3_uri="s3://lake/checkpoints/x/"
        ),
        "retry_attempts": 2,
        "metric_definitions": [{"Name": "validation:accuracy", "Regex": "acc=([0-9.]+)"}],
        "distributed": True,
        "region": "us-east-1",
        "encrypt_volume": False,  # ml.g5 has local instance storage
    }
    props.update(overrides)
    return training_job(**props)


def test_spot_training_request_is_valid_and_complete() -> None:
    r = request()
    assert r["EnableManagedSpotTraining"] is True
    assert r["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert r["CheckpointConfig"] == {"S3Uri": "s3://lake/checkpoints/x/", "LocalPath": "/opt/ml/checkpoints"}
    assert r["RetryStrategy"] == {"MaximumRetryAttempts": 2}
    assert r["HyperParameters"]["sagemaker_submit_directory"] == '"/opt/ml/input/data/code/abc123.gz"'
    assert r["HyperParameters"]["epochs"] == "3" and r["HyperParameters"]["learning_rate"] == "0.01"
    assert [c["ChannelName"] for c in r["InputDataConfig"]] == ["train", "code"]
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [training_step("Train", r)]}
    assert validate_pipeline_definition(definition) == []


def test_on_demand_request_has_no_max_wait() -> None:
    r = request(spot=SpotSettings(enabled=False, max_wait_seconds=7200, checkpoint_s3_uri=None))
    assert r["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert "CheckpointConfig" not in r and r["EnableManagedSpotTraining"] is False


def test_spot_without_checkpoints_and_a_code_channel_clash_are_refused() -> None:
    with pytest.raises(ValueError, match=r"spot\.checkpoint_s3_uri: got None"):
        request(spot=SpotSettings(enabled=True, max_wait_seconds=7200, checkpoint_s3_uri=None))
    with pytest.raises(ValueError, match="allowed: any names but 'code'"):
        request(channels={"code": "s3://x/"})


def test_invalid_request_is_caught_by_the_api_model() -> None:
    """The builders do not hide mistakes: a bad instance type fails the botocore validation."""
    bad = training_step("Train", request(instance_type="ml.g5.gigantic"))
    errors = validate_pipeline_definition({"Version": "2020-12-01", "Parameters": [], "Steps": [bad]})
    assert any("ResourceConfig.InstanceType" in e and "ml.g5.gigantic" in e for e in errors)


def test_tuning_step_carries_spot_and_checkpoints_and_moves_tuned_hyperparameters_out() -> None:
    step = tuning_step(
        "Tune",
        tuning_job(
            training_request=request(),
            tuned=[
                ContinuousRange("learning_rate", 1e-4, 0.1, "Logarithmic"),
                IntegerRange("epochs", 1, 5, "Linear"),
            ],
            strategy="Bayesian",
            objective_metric="validation:accuracy",
            objective_type="Maximize",
            max_jobs=10,
            max_parallel_jobs=2,
            early_stopping="Auto",
        ),
    )
    definition = step["Arguments"]["TrainingJobDefinition"]
    assert "learning_rate" not in definition["StaticHyperParameters"]
    assert "epochs" not in definition["StaticHyperParameters"]
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["CheckpointConfig"]["S3Uri"].endswith("/")
    ranges = step["Arguments"]["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
    ]
    errors = validate_pipeline_definition({"Version": "2020-12-01", "Parameters": [], "Steps": [step]})
    assert errors == []


def test_processing_step_runs_the_script_from_the_bundle() -> None:
    step = processing_step(
        "Evaluate",
        processing_job(
            env=ENV,
            image_uri=IMAGE,
            script="evaluate.py",
            arguments=[],
            instance_type="ml.m5.xlarge",
            instance_count=1,
            volume_size_gb=30,
            max_runtime_seconds=600,
            inputs=[],
            outputs=[],
            encrypt_volume=True,
        ),
    )
    assert step["Arguments"]["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == ENV.kms_key_arn
    assert step["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True
    app_spec = step["Arguments"]["AppSpecification"]
    assert "ContainerArguments" not in app_spec  # the API refuses an empty list
    assert "tar -xzf /opt/ml/processing/code/abc123.gz" in app_spec["ContainerEntrypoint"][2]
    assert validate_pipeline_definition({"Version": "2020-12-01", "Parameters": [], "Steps": [step]}) == []


def test_volume_key_only_when_asked() -> None:
    """SageMaker refuses VolumeKmsKeyId for instance types with local storage; the caller decides."""
    assert "VolumeKmsKeyId" not in request()["ResourceConfig"]
    assert request(encrypt_volume=True, instance_type="ml.p3.2xlarge")["ResourceConfig"][
        "VolumeKmsKeyId"
    ] == (ENV.kms_key_arn)


def test_enum_parameters_declare_their_values_and_refuse_a_default_outside_them() -> None:
    spec = Parameter("T", "String", "ml.g5.xlarge", ("ml.g5.xlarge", "ml.g5.2xlarge")).to_json()
    assert spec == {
        "Name": "T", "Type": "String", "DefaultValue": "ml.g5.xlarge",
        "EnumValues": ["ml.g5.xlarge", "ml.g5.2xlarge"],
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"parameter T: got default 'ml.p3.2xlarge' with enum values"):
        Parameter("T", "String", "ml.p3.2xlarge", ("ml.g5.xlarge",))


def test_pipelines_do_not_create_experiments(bare_stack: Stack) -> None:
    role = iam.Role(bare_stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    pipeline = SageMakerPipeline(bare_stack, "P", description="d", role=role, parameters=[], steps=[])
    assert "PipelineExperimentConfig" not in pipeline.definition


def test_parameter_checks_fail_the_execution_with_the_message() -> None:
    (check,) = parameter_check_steps(
        [
            ParameterCheck(
                "N", [{"Type": "LessThan", "LeftValue": {"Get": "Parameters.N"}, "RightValue": 1}], "bad N"
            )
        ]
    )
    assert check["Name"] == "CheckN" and check["Type"] == "Condition"
    assert check["Arguments"]["IfSteps"] == [
        {"Name": "InvalidN", "Type": "Fail", "Arguments": {"ErrorMessage": "bad N"}}
    ]
    assert check["Arguments"]["ElseSteps"] == []
    definition = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 1}],
    }
    assert validate_pipeline_definition({**definition, "Steps": [check]}) == []


def test_parameter_defaults_must_match_their_type() -> None:
    assert Parameter("N", "Integer", 3).to_json() == {"Name": "N", "Type": "Integer", "DefaultValue": 3}
    with pytest.raises(ValueError, match="parameter N: got default '3'; allowed: a Integer value"):
        Parameter("N", "Integer", "3")
    with pytest.raises(ValueError, match="parameter Spot: got default 1"):
        Parameter("Spot", "Boolean", 1)
    with pytest.raises(ValueError, match="parameter X: got default True"):
        Parameter("X", "Float", True)


def test_pipeline_construct_serializes_the_definition_with_resolved_tokens(bare_stack: Stack) -> None:
    role = iam.Role(bare_stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    env = JobEnvironment(
        role_arn=role.role_arn,
        kms_key_arn=ENV.kms_key_arn,
        code_uri=ENV.code_uri,
        code_object_key=ENV.code_object_key,
    )
    pipeline = SageMakerPipeline(
        bare_stack,
        "Pipe",
        description="test",
        role=role,
        parameters=[Parameter("InstanceType", "String", "ml.g5.xlarge")],
        steps=[training_step("Train", request(env=env, instance_type={"Get": "Parameters.InstanceType"}))],
    )
    role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=["*"]))
    template = Template.from_stack(bare_stack).to_json()
    (definition,) = pipeline_definitions(template).values()
    assert definition["Steps"][0]["Arguments"]["RoleArn"].startswith("arn:aws:iam::123456789012:role/")
    assert validate_pipeline_definition(definition) == []
    resource = template["Resources"][bare_stack.resolve(pipeline.pipeline.logical_id)]
    assert resource["Properties"]["PipelineName"] == pipeline.pipeline_name
    # A grant added after the pipeline was declared still comes first (the role itself via GetAtt).
    (depends_on,) = resource["DependsOn"]
    assert depends_on.startswith("RoleDefaultPolicy")
    with pytest.raises(ValueError, match="duplicate names"):
        duplicated = [Parameter("A", "String", "x"), Parameter("A", "String", "y")]
        SageMakerPipeline(bare_stack, "Dup", description="d", role=role, steps=[], parameters=duplicated)
    assert json.dumps(definition)
