"""Tests of the SageMaker request and pipeline validator: each check passes good input and fails bad input."""

from __future__ import annotations

import copy
import json
import re
import warnings
from typing import Any

import pytest

from . import sagemaker_api
from .sagemaker_api import (
    PipelineExpressionError,
    PipelineRuntimeValue,
    TemplateRenderError,
    iter_steps,
    java_regex_to_python,
    pipeline_definitions,
    render_template_value,
    resolve_expressions,
    validate_pipeline_definition,
    validate_request,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311"


def training_request() -> dict[str, Any]:
    """A complete, valid CreateTrainingJob request using managed spot training."""
    return {
        "TrainingJobName": "churn-train-2024-01-01",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "HyperParameters": {"epochs": "10", "learning-rate": "0.001"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://data-bucket/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {
            "S3OutputPath": "s3://data-bucket/models/",
            "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": "s3://data-bucket/checkpoints/", "LocalPath": "/opt/ml/checkpoints"},
        "RetryStrategy": {"MaximumRetryAttempts": 2},
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "Tags": [{"Key": "project:name", "Value": "Churn prédiction"}],
    }


def one_error(errors: list[str], *fragments: str) -> str:
    """The single error containing every fragment (fails with all errors shown otherwise)."""
    matching = [e for e in errors if all(f in e for f in fragments)]
    assert len(matching) == 1, f"expected one error with {fragments}, got {errors}"
    return matching[0]


# --------------------------------------------------------------------------------------------------
# validate_request
# --------------------------------------------------------------------------------------------------


def test_valid_training_request_passes() -> None:
    assert validate_request("CreateTrainingJob", training_request(), pipeline_step=False) == []


def test_pipeline_filled_job_name_is_exempt_only_in_pipeline_steps() -> None:
    request = training_request()
    del request["TrainingJobName"]
    assert validate_request("CreateTrainingJob", request) == []
    errors = validate_request("CreateTrainingJob", request, pipeline_step=False)
    assert errors == ["TrainingJobName: missing required member"]


def test_exemption_is_per_operation_and_narrow() -> None:
    transform = {
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/out"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    # TransformJobName is filled in by SageMaker Pipelines, the model to use is not.
    assert validate_request("CreateTransformJob", transform) == ["ModelName: missing required member"]
    assert validate_request("CreateModel", {"ExecutionRoleArn": ROLE_ARN}) == []
    # A job name that *is* given is still validated.
    request = training_request()
    request["TrainingJobName"] = "bad_name"
    one_error(validate_request("CreateTrainingJob", request), "TrainingJobName:", "does not match pattern")


def test_bad_instance_type_enum() -> None:
    request = training_request()
    request["ResourceConfig"]["InstanceType"] = "ml.g5.xlarg"
    error = one_error(validate_request("CreateTrainingJob", request), "ResourceConfig.InstanceType:")
    assert "'ml.g5.xlarg' not in enum TrainingInstanceType" in error
    assert "closest: ['ml.g5.xlarge'" in error


def test_short_enum_lists_every_value() -> None:
    request = training_request()
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Stream"
    error = one_error(
        validate_request("CreateTrainingJob", request), "AlgorithmSpecification.TrainingInputMode"
    )
    assert "['Pipe', 'File', 'FastFile']" in error


def test_bad_s3_uri_pattern() -> None:
    request = training_request()
    request["CheckpointConfig"]["S3Uri"] = "data-bucket/checkpoints/"
    error = one_error(validate_request("CreateTrainingJob", request), "CheckpointConfig.S3Uri:")
    assert "does not match pattern '(https|s3)://([^/]+)/?(.*)' of S3Uri" in error


def test_pattern_must_match_the_whole_value() -> None:
    request = training_request()
    request["RoleArn"] = ROLE_ARN + " "  # a prefix matches; the service requires a full match
    one_error(validate_request("CreateTrainingJob", request), "RoleArn:", "does not match pattern")


def test_wrong_type_int_where_string() -> None:
    request = training_request()
    request["HyperParameters"]["epochs"] = 10
    error = one_error(validate_request("CreateTrainingJob", request), "HyperParameters.epochs:")
    assert "invalid type int (10); expected str" in error


def test_bool_where_integer() -> None:
    request = training_request()
    request["ResourceConfig"]["InstanceCount"] = True
    one_error(validate_request("CreateTrainingJob", request), "ResourceConfig.InstanceCount:", "bool")


def test_unknown_member_suggests_the_real_one() -> None:
    request = training_request()
    request["StoppingCondition"]["MaxRuntimeInSecond"] = 10
    error = one_error(validate_request("CreateTrainingJob", request), "StoppingCondition.MaxRuntimeInSecond:")
    assert "unknown member; did you mean 'MaxRuntimeInSeconds'?" in error


def test_missing_required_member() -> None:
    request = training_request()
    del request["OutputDataConfig"]["S3OutputPath"]
    del request["RoleArn"]
    errors = validate_request("CreateTrainingJob", request)
    one_error(errors, "OutputDataConfig.S3OutputPath: missing required member")
    one_error(errors, "RoleArn: missing required member")


def test_minimum_and_maximum() -> None:
    request = training_request()
    request["RetryStrategy"]["MaximumRetryAttempts"] = 31
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = 0
    request["Tags"] = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    request["InputDataConfig"] = []
    errors = validate_request("CreateTrainingJob", request)
    one_error(errors, "RetryStrategy.MaximumRetryAttempts:", "above the maximum 30")
    one_error(errors, "StoppingCondition.MaxRuntimeInSeconds:", "0 is below the minimum 1")
    one_error(errors, "Tags:", "list length 51 is above the maximum 50")
    one_error(errors, "InputDataConfig:", "length 0 is below the minimum 1")


def test_unknown_operation_raises() -> None:
    with pytest.raises(ValueError, match="unknown SageMaker operation 'CreateTrainingJobs'"):
        validate_request("CreateTrainingJobs", {})


# --------------------------------------------------------------------------------------------------
# Java patterns
# --------------------------------------------------------------------------------------------------


def _pattern(shape_name: str) -> re.Pattern[str]:
    pattern = sagemaker_api._sagemaker_model().shape_for(shape_name).metadata["pattern"]
    compiled = sagemaker_api._compiled_pattern(pattern)
    assert compiled is not None
    return compiled


@pytest.mark.parametrize(
    ("shape", "good", "bad"),
    [
        ("TrainingJobName", "train-2024-01-01", "train_2024"),
        ("S3Uri", "s3://bucket/key/part", "bucket/key"),
        ("ImageUri", IMAGE, "two\nlines"),
        ("ContainerImage", IMAGE, "has space"),
        ("RoleArn", ROLE_ARN, "arn:aws:iam::12345:role/x"),
        ("KmsKeyId", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab", "key id with spaces"),
        ("ArnOrName", "my-model", "my-model-"),  # (?<!-) lookbehind
        ("TagKey", "Projet: données", "a<b"),  # \p{L}\p{Z}\p{N}
        ("TagValue", "Données 42", "a<b"),
    ],
)
def test_real_sagemaker_patterns(shape: str, good: str, bad: str) -> None:
    compiled = _pattern(shape)
    assert compiled.fullmatch(good), (shape, good)
    assert not compiled.fullmatch(bad), (shape, bad)


def test_every_sagemaker_pattern_translates() -> None:
    model = sagemaker_api._sagemaker_model()
    patterns = {model.shape_for(name).metadata.get("pattern") for name in model.shape_names} - {None}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        untranslated = [p for p in patterns if sagemaker_api._compiled_pattern(p) is None]
    assert untranslated == []
    assert not any(p in sagemaker_api.SKIPPED_PATTERNS for p in patterns)


def test_java_constructs_translate() -> None:
    # Surrogate pairs name supplementary characters; a quantified anchor is the anchor itself.
    surrogates = java_regex_to_python(r"[\u0020-\uD7FF\uD800\uDC00-\uDBFF\uDFFF]*")
    assert re.fullmatch(surrogates, "a\U0001f600", re.ASCII)
    assert not re.fullmatch(surrogates, "\x01", re.ASCII)
    assert re.fullmatch(java_regex_to_python(r"([\p{L}]*)${1,128}"), "é", re.ASCII)
    assert re.fullmatch(java_regex_to_python(r"arn:[\p{Alnum}\-]+"), "arn:aws-cn", re.ASCII)
    assert not re.fullmatch(java_regex_to_python(r"\p{Alnum}+"), "é", re.ASCII)  # POSIX classes are ASCII
    assert re.fullmatch(java_regex_to_python(r"\P{N}\Q.*\E"), "a.*", re.ASCII)
    assert re.fullmatch(java_regex_to_python(r"(?<year>\d{4})-"), "2024-", re.ASCII)
    assert not re.fullmatch(java_regex_to_python(r"\d+"), "\u0663", re.ASCII)  # Java's \d is ASCII


def test_untranslatable_pattern_is_recorded_and_warned_not_silently_passed() -> None:
    pattern = "[a-z&&[^e]]+"
    with pytest.warns(UserWarning, match="not checked"):
        assert sagemaker_api._compiled_pattern(pattern) is None
    try:
        assert "intersection" in sagemaker_api.SKIPPED_PATTERNS[pattern]
    finally:
        sagemaker_api.SKIPPED_PATTERNS.pop(pattern)
        sagemaker_api._compiled_pattern.cache_clear()


# --------------------------------------------------------------------------------------------------
# Pipeline expressions and definitions
# --------------------------------------------------------------------------------------------------

PREPROCESS_OUTPUT = {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
EVALUATION_OUTPUT = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}


def _processing_step(name: str, outputs: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {
                "ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
            },
            "AppSpecification": {
                "ImageUri": IMAGE,
                "ContainerEntrypoint": ["python3", "/opt/ml/code/run.py"],
            },
            "RoleArn": ROLE_ARN,
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": output,
                        "S3Output": {
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": [
                                        "s3://data-bucket",
                                        {"Get": "Execution.PipelineExecutionId"},
                                        output,
                                    ],
                                }
                            },
                            "LocalPath": f"/opt/ml/processing/{output}",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for output in outputs
                ]
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
        },
        **extra,
    }


def pipeline() -> dict[str, Any]:
    """A valid definition: preprocess -> train (spot) -> evaluate -> condition (register | fail)."""
    train = training_request()
    del train["TrainingJobName"]
    train["ResourceConfig"]["InstanceType"] = {"Get": "Parameters.InstanceType"}
    train["StoppingCondition"]["MaxRuntimeInSeconds"] = {"Get": "Parameters.MaxRuntime"}
    train["EnableManagedSpotTraining"] = {"Get": "Parameters.UseSpot"}
    train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = PREPROCESS_OUTPUT
    train["CheckpointConfig"]["S3Uri"] = {
        "Std:Join": {
            "On": "/",
            "Values": ["s3://data-bucket/checkpoints", {"Get": "Execution.PipelineExecutionId"}],
        }
    }
    register = {
        "Name": "RegisterModel",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "churn-models",
            "ModelApprovalStatus": {"Get": "Parameters.ApprovalStatus"},
            "InferenceSpecification": {
                "Containers": [
                    {"Image": IMAGE, "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
                "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
                "SupportedTransformInstanceTypes": ["ml.m5.large"],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": EVALUATION_OUTPUT,
                    }
                }
            },
        },
    }
    fail = {
        "Name": "AccuracyTooLow",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": {
                "Std:Join": {"On": " ", "Values": ["Accuracy below", {"Get": "Parameters.MinAccuracy"}]}
            }
        },
    }
    condition = {
        "Name": "CheckAccuracy",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": {
                        "Std:JsonGet": {
                            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                            "Path": "metrics.accuracy.value",
                        }
                    },
                    "RightValue": {"Get": "Parameters.MinAccuracy"},
                }
            ],
            "IfSteps": [register],
            "ElseSteps": [fail],
        },
    }
    evaluate = _processing_step(
        "Evaluate",
        ["evaluation"],
        DependsOn=["Train"],
        PropertyFiles=[
            {
                "PropertyFileName": "EvaluationReport",
                "OutputName": "evaluation",
                "FilePath": "evaluation.json",
            }
        ],
    )
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "InstanceType", "Type": "String", "DefaultValue": "ml.g5.xlarge"},
            {"Name": "MaxRuntime", "Type": "Integer", "DefaultValue": 3600},
            {"Name": "UseSpot", "Type": "Boolean", "DefaultValue": True},
            {"Name": "MinAccuracy", "Type": "Float", "DefaultValue": 0.8},
            {"Name": "ApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
        ],
        "PipelineExperimentConfig": {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        },
        "Steps": [
            _processing_step("Preprocess", ["train", "test"]),
            {"Name": "Train", "Type": "Training", "Arguments": train, "RetryPolicies": []},
            evaluate,
            condition,
        ],
    }


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step in iter_steps(definition) if step["Name"] == name)


def test_iter_steps_includes_nested_steps() -> None:
    names = [step["Name"] for step in iter_steps(pipeline())]
    assert names == ["Preprocess", "Train", "Evaluate", "CheckAccuracy", "RegisterModel", "AccuracyTooLow"]


def test_valid_pipeline_passes() -> None:
    assert validate_pipeline_definition(pipeline()) == []


def test_resolve_expressions_substitutes_defaults_and_placeholders() -> None:
    definition = pipeline()
    resolved = resolve_expressions(definition, _step(definition, "Train")["Arguments"])
    assert resolved["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert resolved["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert resolved["EnableManagedSpotTraining"] is True
    s3_uri = resolved["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert isinstance(s3_uri, PipelineRuntimeValue)
    assert s3_uri.startswith("s3://placeholder-bucket/")
    assert s3_uri.expression == PREPROCESS_OUTPUT
    checkpoint = resolved["CheckpointConfig"]["S3Uri"]
    assert isinstance(checkpoint, PipelineRuntimeValue)
    assert re.fullmatch(r"s3://data-bucket/checkpoints/\w+", checkpoint)
    literal_join = {"Std:Join": {"On": "-", "Values": ["a", 1, True, {"Get": "Parameters.InstanceType"}]}}
    assert resolve_expressions(definition, literal_join) == "a-1-true-ml.g5.xlarge"
    arn = resolve_expressions(definition, {"Get": "Steps.Train.TrainingJobArn"})
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/placeholder"


def test_undeclared_pipeline_parameter() -> None:
    definition = pipeline()
    args = {"ResourceConfig": {"InstanceType": {"Get": "Parameters.TrainInstanceType"}}}
    with pytest.raises(PipelineExpressionError) as raised:
        resolve_expressions(definition, args)
    assert raised.value.problems == [
        "ResourceConfig.InstanceType: undeclared pipeline parameter 'TrainInstanceType' "
        "(declared: ApprovalStatus, InstanceType, MaxRuntime, MinAccuracy, UseSpot)"
    ]
    _step(definition, "Train")["Arguments"].update(args)
    one_error(
        validate_pipeline_definition(definition),
        "step 'Train' (Training): ResourceConfig.InstanceType: ",
        "undeclared pipeline parameter 'TrainInstanceType'",
    )


@pytest.mark.parametrize(
    ("join", "fragment"),
    [
        ({"On": "/"}, "S3Uri.Std:Join: needs exactly the members On and Values"),
        ({"On": "/", "Values": "s3://b"}, "S3Uri.Std:Join.Values: must be a list"),
        ({"On": 1, "Values": ["s3://b"]}, "S3Uri.Std:Join.On: must be a string"),
        (
            {"On": "/", "Values": ["s3://b", {"x": 1}]},
            "S3Uri.Std:Join.Values[1]: cannot join a non-primitive",
        ),
        (
            {"On": "/", "Values": ["s3://b", {"Get": "Parameters.Nope"}]},
            "S3Uri.Std:Join.Values[1]: undeclared pipeline parameter 'Nope'",
        ),
    ],
)
def test_bad_std_join(join: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PipelineExpressionError) as raised:
        resolve_expressions(pipeline(), {"CheckpointConfig": {"S3Uri": {"Std:Join": join}}})
    one_error(raised.value.problems, "CheckpointConfig." + fragment)


def test_joined_value_is_validated() -> None:
    definition = pipeline()
    _step(definition, "Train")["Arguments"]["CheckpointConfig"]["S3Uri"] = {
        "Std:Join": {"On": "/", "Values": ["data-bucket", "checkpoints"]}
    }
    one_error(
        validate_pipeline_definition(definition),
        "step 'Train' (Training): CheckpointConfig.S3Uri: 'data-bucket/checkpoints' does not match pattern",
    )


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        (
            {"Get": "Steps.Preproces.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
            "step 'Preproces'",
        ),
        ({"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['training'].S3Output.S3Uri"}, "'training'"),
        ({"Get": "Execution.PipelineExecutionID"}, "unknown execution variable"),
        ({"Get": "Parameter.InstanceType"}, "unknown reference 'Parameter.InstanceType'"),
        ({"Std:Concat": ["a", "b"]}, "unknown pipeline function 'Std:Concat'"),
    ],
)
def test_bad_references(reference: dict[str, Any], fragment: str) -> None:
    definition = pipeline()
    _step(definition, "Train")["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = (
        reference
    )
    one_error(
        validate_pipeline_definition(definition),
        "step 'Train' (Training): InputDataConfig[0].DataSource.S3DataSource.S3Uri: ",
        fragment,
    )


def test_bad_json_get_property_file() -> None:
    definition = pipeline()
    json_get = _step(definition, "CheckAccuracy")["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"]
    json_get["PropertyFile"] = {"Get": "Steps.Evaluate.PropertyFiles.Report"}
    one_error(
        validate_pipeline_definition(definition),
        "step 'CheckAccuracy' (Condition): Conditions[0].LeftValue.Std:JsonGet:",
        "no property file 'Report'",
    )


def test_runtime_values_skip_enum_and_scalar_type_checks_only() -> None:
    definition = pipeline()
    # The instance type chosen at run time (e.g. from an earlier step's report) cannot be checked here,
    # and a run-time value is accepted for an integer member ...
    args = _step(definition, "Train")["Arguments"]
    args["ResourceConfig"]["InstanceType"] = {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}, "Path": "x"}
    }
    args["ResourceConfig"]["InstanceCount"] = {
        "Get": "Steps.Preprocess.ProcessingResources.ClusterConfig.InstanceCount"
    }
    assert validate_pipeline_definition(definition) == []
    # ... but not where an object is expected.
    args["ResourceConfig"] = {"Get": "Steps.Preprocess.ProcessingResources"}
    one_error(validate_pipeline_definition(definition), "ResourceConfig: invalid type PipelineRuntimeValue")


def test_nested_register_model_step_is_validated() -> None:
    definition = pipeline()
    register = _step(definition, "RegisterModel")["Arguments"]
    register["ModelApprovalStatus"] = "Approve"
    register["InferenceSpecification"]["Containers"][0]["Image"] = 42
    del register["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"]
    errors = validate_pipeline_definition(definition)
    assert len(errors) == 3, errors
    one_error(errors, "step 'RegisterModel' (RegisterModel): ModelApprovalStatus: 'Approve' not in enum")
    one_error(
        errors,
        "step 'RegisterModel' (RegisterModel): InferenceSpecification.Containers[0].Image: invalid type",
    )
    one_error(errors, "ModelMetrics.ModelQuality.Statistics.ContentType: missing required member")


def test_parameter_default_is_what_gets_validated() -> None:
    definition = pipeline()
    definition["Parameters"][0]["DefaultValue"] = "ml.g5.large"
    one_error(
        validate_pipeline_definition(definition),
        "step 'Train' (Training): ResourceConfig.InstanceType: 'ml.g5.large' not in enum",
    )


def test_pipeline_structure_errors() -> None:
    definition = pipeline()
    definition["Version"] = "2021-01-01"
    definition["Parameters"].append({"Name": "UseSpot", "Type": "Boolean", "DefaultValue": True})
    definition["Parameters"].append({"Name": "Epochs", "Type": "Integer", "DefaultValue": "10"})
    definition["Parameters"].append({"Name": "Flag", "Type": "Bool"})
    definition["Parameters"].append({"Name": "Ratio", "Type": "Float", "DefaultValue": False})
    _step(definition, "AccuracyTooLow")["Name"] = "Train"
    _step(definition, "Evaluate")["DependsOn"] = ["Training", "Evaluate"]
    _step(definition, "Evaluate")["PropertyFiles"][0]["OutputName"] = "eval"
    _step(definition, "CheckAccuracy")["Arguments"]["Conditions"][0]["Type"] = "GreaterOrEqual"
    definition["Steps"].append({"Name": "Deploy", "Type": "Endpoint", "Arguments": {"EndpointName": "x"}})
    errors = validate_pipeline_definition(definition)
    one_error(errors, "Version: '2021-01-01', expected '2020-12-01'")
    one_error(errors, "Parameters[5]: duplicate parameter name 'UseSpot'")
    one_error(errors, "Parameters[6] (Epochs): DefaultValue '10' is not a Integer")
    one_error(errors, "Parameters[8] (Ratio): DefaultValue False is not a Float")
    one_error(errors, "Parameters[7] (Flag): Type 'Bool' not one of")
    one_error(errors, "Steps: step name 'Train' is used 2 times")
    one_error(errors, "step 'Evaluate' (Processing): DependsOn 'Training' is not a step of this pipeline")
    one_error(errors, "step 'Evaluate' (Processing): DependsOn names the step itself")
    one_error(
        errors, "step 'Evaluate' (Processing): PropertyFiles[0].OutputName 'eval' not in ['evaluation']"
    )
    one_error(errors, "step 'CheckAccuracy' (Condition): Conditions[0].Type: 'GreaterOrEqual' not one of")
    one_error(
        errors, "step 'Deploy' (Endpoint): unknown step Type 'Endpoint' (its Arguments are not validated)"
    )
    assert len(errors) == 11, errors


# --------------------------------------------------------------------------------------------------
# CloudFormation rendering
# --------------------------------------------------------------------------------------------------

# Tokens as CDK's Stack.to_json_string leaves them: the JSON text is split around each token and the
# pieces are glued back together with Fn::Join (the shape below was taken from a real `cdk synth`).
TOKENS = {
    "@ROLE@": {"Fn::GetAtt": ["PipelineRoleDCFDBB91", "Arn"]},
    "@BUCKET@": {"Ref": "DataBucketE3889A50"},
    "@KEY@": {"Fn::GetAtt": ["Key961B73FD", "Arn"]},
    "@GROUP@": {"Fn::GetAtt": ["ModelGroup", "ModelPackageGroupArn"]},
    "@REGION@": {"Ref": "AWS::Region"},
}


def cfn_template(definition: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(definition, separators=(",", ":"))
    parts: list[Any] = [piece for piece in re.split("(@[A-Z]+@)", text) if piece]
    body = {"Fn::Join": ["", [TOKENS.get(part, part) for part in parts]]}
    return {
        "Resources": {
            "Key961B73FD": {"Type": "AWS::KMS::Key", "Properties": {}},
            "DataBucketE3889A50": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "PipelineRoleDCFDBB91": {"Type": "AWS::IAM::Role", "Properties": {}},
            "ModelGroup": {
                "Type": "AWS::SageMaker::ModelPackageGroup",
                "Properties": {"ModelPackageGroupName": "churn-models"},
            },
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineDefinition": {"PipelineDefinitionBody": body},
                    "PipelineName": "churn",
                    "RoleArn": TOKENS["@ROLE@"],
                },
            },
        }
    }


def test_rendered_template_pipeline_is_parsed_and_validated() -> None:
    definition = pipeline()
    train = _step(definition, "Train")["Arguments"]
    train["RoleArn"] = "@ROLE@"
    train["OutputDataConfig"] = {"S3OutputPath": "s3://@BUCKET@/models/", "KmsKeyId": "@KEY@"}
    train["Environment"]["AWS_REGION"] = "@REGION@"
    template = cfn_template(definition)
    assert template["Resources"]["Pipeline"]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"][
        "Fn::Join"
    ][1][1] == {"Fn::GetAtt": ["PipelineRoleDCFDBB91", "Arn"]}

    parsed = pipeline_definitions(template)
    assert list(parsed) == ["Pipeline"]
    args = _step(parsed["Pipeline"], "Train")["Arguments"]
    assert args["RoleArn"] == "arn:aws:iam::123456789012:role/PipelineRoleDCFDBB91"
    assert args["OutputDataConfig"]["S3OutputPath"] == "s3://placeholder-bucket-databuckete3889a50/models/"
    assert re.fullmatch(
        r"arn:aws:kms:us-east-1:123456789012:key/[0-9a-f-]{36}", args["OutputDataConfig"]["KmsKeyId"]
    )
    assert args["Environment"]["AWS_REGION"] == "us-east-1"
    assert validate_pipeline_definition(parsed["Pipeline"]) == []

    train["RoleArn"] = "@GROUP@"  # a model package group ARN is no role ARN
    errors = validate_pipeline_definition(pipeline_definitions(cfn_template(definition))["Pipeline"])
    role_pattern = r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
    assert errors == [
        "step 'Train' (Training): RoleArn: 'arn:aws:sagemaker:us-east-1:123456789012:model-package-group/"
        f"churn-models' does not match pattern {role_pattern!r} of RoleArn"
    ]


def test_render_intrinsics() -> None:
    template: dict[str, Any] = {
        "Parameters": {
            "Stage": {"Type": "String", "Default": "dev"},
            "Subnets": {"Type": "CommaDelimitedList", "Default": "subnet-1, subnet-2"},
        },
        "Mappings": {"Stages": {"dev": {"InstanceType": "ml.m5.large"}}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": {"Fn::Sub": "${Stage}-sagemaker"}}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        },
    }

    def render(value: Any) -> Any:
        return render_template_value(template, value)

    assert render({"Fn::GetAtt": ["Role", "Arn"]}) == "arn:aws:iam::123456789012:role/dev-sagemaker"
    assert render({"Fn::GetAtt": "Topic.TopicName"}) == "Topic"
    assert render({"Ref": "Topic"}) == "arn:aws:sns:us-east-1:123456789012:Topic"
    assert render({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Stage}-${AWS::AccountId}/${!Literal}"}) == (
        "arn:aws:s3:::dev-123456789012/${Literal}"
    )
    assert render({"Fn::Sub": ["${Role.Arn}|${X}", {"X": {"Ref": "AWS::URLSuffix"}}]}) == (
        "arn:aws:iam::123456789012:role/dev-sagemaker|amazonaws.com"
    )
    assert render({"Fn::FindInMap": ["Stages", {"Ref": "Stage"}, "InstanceType"]}) == "ml.m5.large"
    assert render({"Fn::Select": [1, {"Ref": "Subnets"}]}) == "subnet-2"
    assert render({"Fn::Select": ["0", {"Fn::Split": [":", "a:b"]}]}) == "a"
    assert render({"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, {"Ref": "AWS::Region"}]]}) == (
        "placeholder-stack-us-east-1"
    )
    assert render({"nested": [{"Ref": "Stage"}], "n": 1}) == {"nested": ["dev"], "n": 1}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "resource type 'AWS::Custom::Thing'"),
        ({"Fn::GetAtt": ["Role", "Name"]}, "unsupported attribute 'Name' of resource type 'AWS::IAM::Role'"),
        ({"Fn::GetAtt": ["Missing", "Arn"]}, "no resource or parameter named 'Missing'"),
        ({"Ref": "Queue"}, "Ref Queue: resource type 'AWS::Custom::Thing' is not supported"),
        ({"Ref": "AWS::NoValue"}, "unsupported pseudo parameter"),
        ({"Fn::If": ["IsProd", "a", "b"]}, "unsupported intrinsic Fn::If"),
        ({"Fn::FindInMap": ["Stages", "prod", "X"]}, "Stages.prod not in Mappings"),
        ({"Fn::Join": ["", [{"Fn::Split": [",", "a"]}]]}, "Fn::Join value 0 must render to a string"),
    ],
)
def test_render_errors(value: Any, message: str) -> None:
    template = {
        "Mappings": {"Stages": {"dev": {"X": "1"}}},
        "Resources": {
            "Queue": {"Type": "AWS::Custom::Thing", "Properties": {}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        },
    }
    with pytest.raises(TemplateRenderError, match=re.escape(message)):
        render_template_value(template, value)


def test_pipeline_definition_in_s3_is_unsupported() -> None:
    template = {
        "Resources": {
            "P": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineDefinition": {"PipelineDefinitionS3Location": {"Bucket": "b", "Key": "k"}}
                },
            }
        }
    }
    with pytest.raises(TemplateRenderError, match="P: PipelineDefinitionS3Location is not supported"):
        pipeline_definitions(template)


def test_invalid_json_body_is_reported() -> None:
    template = copy.deepcopy(cfn_template(pipeline()))
    template["Resources"]["Pipeline"]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"] = "{"
    with pytest.raises(TemplateRenderError, match="Pipeline: PipelineDefinitionBody is not valid JSON"):
        pipeline_definitions(template)


def test_supported_attributes_exist_in_cloudformation() -> None:
    """Cross-check the rendering tables against the CloudFormation resource schemas shipped with cfn-lint."""
    schema = pytest.importorskip("cfnlint.schema")
    manager = schema.PROVIDER_SCHEMA_MANAGER
    for resource_type, attribute in sagemaker_api._GET_ATT:
        get_atts = manager.get_resource_schema("us-east-1", resource_type).get_atts
        assert attribute in get_atts, (resource_type, attribute)
    for resource_type in sagemaker_api._REF:
        assert manager.get_resource_schema("us-east-1", resource_type) is not None


def test_enum_values_must_hold_the_default() -> None:
    definition = pipeline()
    (instance_type,) = [p for p in definition["Parameters"] if p["Name"] == "InstanceType"]
    instance_type["EnumValues"] = [instance_type["DefaultValue"], "ml.p3.2xlarge"]
    assert validate_pipeline_definition(definition) == []
    instance_type["EnumValues"] = ["ml.p3.2xlarge"]
    one_error(validate_pipeline_definition(definition), "Parameters[", "not in its EnumValues")
    instance_type["EnumValues"] = []
    one_error(validate_pipeline_definition(definition), "Parameters[", "EnumValues needs a String parameter")
