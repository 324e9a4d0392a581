"""Batch transform: the CreateModel / CreateTransformJob builders, their steps, and the pipeline construct.

Each request is validated against botocore's SageMaker model (tests/support/sagemaker_api.py), and the
pipeline is evaluated with concrete run values (tests/support/access_model.PipelineEvaluator).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from ml_platform.data_lake import LakeAccess, Zone
from ml_platform.model_pipelines import (
    BatchTransformPipeline,
    BatchTransformProps,
    DatasetProps,
    PipelineFoundation,
    lake_prefix,
)
from ml_platform.pipelines import (
    EXECUTION_ID,
    Parameter,
    join,
    model_from_package,
    model_step,
    param,
    step_property,
    transform_job,
    transform_step,
)
from ml_platform.source_bundle import JsonDocument, SourceBundle
from stacks.training_stack import RUNTIME_CONTRACT
from tests.support.access_model import PipelineEvaluator
from tests.support.sagemaker_api import pipeline_definitions, validate_pipeline_definition

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::123456789012:role/sm"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/stage-models/3"
IN = "s3://lake/processed/d/training/abc/scoring/"
OUT = "s3://lake/processed/d/batch-transform/x/predictions/"


def transform(**overrides: Any) -> Any:
    props: dict[str, Any] = {
        "model_name": step_property("ScoringModel", "ModelName"),
        "input_uri": IN,
        "output_uri": OUT,
        "kms_key_arn": KEY,
        "instance_type": "ml.m5.xlarge",
        "instance_count": 1,
    }
    props.update(overrides)
    return transform_job(**props)


def definition(*steps: Any, parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"Version": "2020-12-01", "Parameters": parameters or [], "Steps": list(steps)}


def scoring_steps(request: Any) -> list[Any]:
    model = model_step(
        "ScoringModel", model_from_package(model_package=PACKAGE, role_arn=ROLE, tags={"a": "b"})
    )
    return [model, transform_step("BatchTransform", request)]


def test_model_and_transform_requests_are_valid_and_score_lines_in_batches() -> None:
    request = transform()
    assert validate_pipeline_definition(definition(*scoring_steps(request))) == []
    assert request["BatchStrategy"] == "MultiRecord" and request["MaxPayloadInMB"] == 6
    assert request["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": IN}},
        "ContentType": "text/csv",
        "CompressionType": "None",
        "SplitType": "Line",
    }
    assert request["TransformOutput"] == {
        "S3OutputPath": OUT,
        "Accept": "text/csv",
        "AssembleWith": "Line",
        "KmsKeyId": KEY,
    }
    assert request["TransformResources"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeKmsKeyId": KEY,
    }
    assert request["DataProcessing"] == {"JoinSource": "Input"}
    assert "MaxConcurrentTransforms" not in request  # SageMaker asks the container, else 1
    model = model_from_package(model_package=PACKAGE, role_arn=ROLE, tags={"stage": "dev", "a": "b"})
    assert model == {
        "PrimaryContainer": {"ModelPackageName": PACKAGE},
        "ExecutionRoleArn": ROLE,
        "EnableNetworkIsolation": True,
        "Tags": [{"Key": "a", "Value": "b"}, {"Key": "stage", "Value": "dev"}],
    }
    step = model_step("M", model, depends_on=["CheckX"])
    assert step == {"Name": "M", "Type": "Model", "Arguments": model, "DependsOn": ["CheckX"]}


def test_the_volume_key_follows_the_instance_storage_and_is_refused_where_sagemaker_refuses_it() -> None:
    assert "VolumeKmsKeyId" not in transform(instance_type="ml.g4dn.xlarge")["TransformResources"]
    assert "VolumeKmsKeyId" not in transform(instance_type="ml.m5d.xlarge")["TransformResources"]
    assert transform(instance_type="ml.c5.xlarge")["TransformResources"]["VolumeKmsKeyId"] == KEY
    with pytest.raises(ValueError, match=r"encrypt_volume: got True with instance_type 'ml.g4dn.xlarge'"):
        transform(instance_type="ml.g4dn.xlarge", encrypt_volume=True)
    # An instance type known only at run time: the caller decides (from the parameter's storage class).
    with pytest.raises(ValueError, match=r"encrypt_volume: got None with instance_type \{'Get'"):
        transform(instance_type=param("T"))
    resources = transform(instance_type=param("T"), encrypt_volume=False)["TransformResources"]
    assert resources == {"InstanceType": {"Get": "Parameters.T"}, "InstanceCount": 1}


@pytest.mark.parametrize(
    ("field", "uri", "message"),
    [
        ("input_uri", "s3://lake/processed/d/scoring", r"input_uri: got 's3://lake/processed/d/scoring'"),
        ("output_uri", "s3://lake/processed//p/", r"output_uri: got .*without '//'"),
        ("input_uri", "lake/processed/", r"an s3:// prefix ending in '/'"),
        ("input_uri", join("/", "s3://lake", "processed", "x"), r"to a last part '' \(the '/'\)"),
        ("input_uri", join("/", "s3://lake", "processed", "", "x", ""), r"part '' of .* would put '//'"),
        ("output_uri", join("/", "s3://lake", "processed/", EXECUTION_ID, ""), r"part 'processed/'"),
        ("input_uri", join("", "s3://lake/", param("P"), "/"), r"allowed: an s3:// string or a '/'-join"),
        ("input_uri", param("InputUri"), r"allowed: an s3:// string or a '/'-join"),
    ],
)
def test_a_uri_that_is_not_a_safe_prefix_is_refused_by_the_builder(
    field: str, uri: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        transform(**{field: uri})


def test_payload_and_concurrency_limits_are_refused_beyond_the_api() -> None:
    with pytest.raises(ValueError, match=r"max_payload_mb: got 101; allowed: 1 to 100"):
        transform(max_payload_mb=101)
    with pytest.raises(ValueError, match=r"max_concurrent_transforms: got 20 with max_payload_mb 6"):
        transform(max_concurrent_transforms=20)
    assert transform(max_concurrent_transforms=4)["MaxConcurrentTransforms"] == 4
    assert "DataProcessing" not in transform(join_input=False)


def test_the_validator_catches_a_wrong_property_path_a_bad_enum_and_an_unknown_member() -> None:
    """Model and Transform steps go through botocore like the others; so do references to their properties."""
    misspelt = transform(model_name=step_property("ScoringModel", "ModelNam"))
    errors = validate_pipeline_definition(definition(*scoring_steps(misspelt)))
    assert any("DescribeModelOutput has no member 'ModelNam'; did you mean 'ModelName'?" in e for e in errors)
    bad: Any = {**transform(), "BatchStrategy": "AllAtOnce"}
    errors = validate_pipeline_definition(definition(*scoring_steps(bad)))
    assert any("BatchStrategy: 'AllAtOnce' not in enum BatchStrategy" in e for e in errors)
    model: Any = {**model_from_package(model_package=PACKAGE, role_arn=ROLE), "NetworkIsolation": True}
    errors = validate_pipeline_definition(definition(model_step("ScoringModel", model)))
    assert any(
        "NetworkIsolation: unknown member; did you mean 'EnableNetworkIsolation'?" in e for e in errors
    )
    huge: Any = transform(instance_type="ml.m5.gigantic", encrypt_volume=True)
    errors = validate_pipeline_definition(definition(*scoring_steps(huge)))
    assert any("TransformResources.InstanceType" in e and "ml.m5.gigantic" in e for e in errors)


def test_required_parameters_have_no_default_and_refuse_enum_values() -> None:
    assert Parameter("ModelPackageArn", "String", None).to_json() == {
        "Name": "ModelPackageArn",
        "Type": "String",
    }
    assert Parameter("ModelPackageArn", "String", None).required
    with pytest.raises(ValueError, match=r"parameter P: got no default with enum values \['a'\]"):
        Parameter("P", "String", None, ("a",))


# ---- the pipeline construct ------------------------------------------------------------------------


def foundation(stack: Stack, tmp_path: Path) -> PipelineFoundation:
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Lake", encryption_key=key)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "x.py").write_text("print(1)\n")
    return PipelineFoundation(
        lake=LakeAccess(bucket=bucket, key=key),
        role=role,
        key_arn=key.key_arn,
        code=SourceBundle(stack, "Code", source=tmp_path / "code"),
        images={},
        model_package_group_name="stage-models",
        feature_group_name="fg",
        feature_store_schema=JsonDocument(stack, "Schema", document={}),
        serving_image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1",
        tags={"project": "p", "stage": "dev"},
    )


def props(**overrides: Any) -> BatchTransformProps:
    values: dict[str, Any] = {
        "instance_type": "ml.m5.xlarge",
        "instance_count": 2,
        "instance_types": ("ml.m5.xlarge", "ml.c5.xlarge", "ml.g4dn.xlarge"),
    }
    values.update(overrides)
    return BatchTransformProps(**values)


def pipeline(stack: Stack, tmp_path: Path, **overrides: Any) -> tuple[BatchTransformPipeline, dict[str, Any]]:
    built = BatchTransformPipeline(
        stack,
        "Batch",
        foundation=foundation(stack, tmp_path),
        contract=dataclasses.replace(RUNTIME_CONTRACT, gate_metric_path="x"),
        dataset=DatasetProps(name="breast-cancer", version="v1"),
        transform=props(**overrides),
    )
    (rendered,) = pipeline_definitions(Template.from_stack(stack).to_json()).values()
    return built, rendered


RUN = {"ModelPackageArn": PACKAGE, "SourceExecutionId": "abc123def456"}


def test_the_pipeline_creates_an_isolated_model_from_the_package_and_scores_the_scoring_output(
    bare_stack: Stack, tmp_path: Path
) -> None:
    built, rendered = pipeline(bare_stack, tmp_path)
    assert validate_pipeline_definition(rendered) == []
    parameters = {p["Name"]: p for p in rendered["Parameters"]}
    assert "DefaultValue" not in parameters["ModelPackageArn"]  # every run names its package
    assert "DefaultValue" not in parameters["SourceExecutionId"]
    assert parameters["SourcePipeline"]["EnumValues"] == ["training", "tuning"]
    # Only the configured types of the default's storage class: the volume key fits every value.
    assert parameters["TransformInstanceType"]["EnumValues"] == ["ml.m5.xlarge", "ml.c5.xlarge"]
    assert parameters["TransformInstanceCount"]["DefaultValue"] == 2

    ev = PipelineEvaluator(rendered, {**RUN, "SourcePipeline": "tuning"})
    assert ev.fails_with() is None
    steps = {s["Name"]: s for s in ev.executed_steps()}
    model = ev.value(steps["ScoringModel"]["Arguments"])
    assert model["PrimaryContainer"] == {"ModelPackageName": PACKAGE}
    assert model["EnableNetworkIsolation"] is True
    assert {"Key": "pipeline", "Value": "batch-transform"} in model["Tags"]
    checks = [name for name in steps if name.startswith("Check")]
    assert sorted(steps["ScoringModel"]["DependsOn"]) == sorted(checks) and len(checks) == 3
    request = ev.value(steps["BatchTransform"]["Arguments"])
    bucket = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"].split("/")[2]
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{bucket}/processed/breast-cancer/tuning/abc123def456/scoring/"
    )
    assert request["TransformOutput"]["S3OutputPath"] == (
        f"s3://{bucket}/processed/breast-cancer/batch-transform/{ev.value(EXECUTION_ID)}/predictions/"
    )
    assert steps["BatchTransform"]["Arguments"]["ModelName"] == {"Get": "Steps.ScoringModel.ModelName"}
    key_arn = request["TransformOutput"]["KmsKeyId"]
    assert key_arn.startswith("arn:aws:kms:") and request["TransformResources"]["VolumeKmsKeyId"] == key_arn
    assert request["TransformResources"]["InstanceCount"] == 2
    assert built.pipeline_name and steps["BatchTransform"]["RetryPolicies"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ModelPackageArn": ""}, "ModelPackageArn: got ''; allowed: the ARN of an approved model package"),
        (
            {"SourceExecutionId": ""},
            "SourceExecutionId: got ''; allowed: the id of a SourcePipeline execution",
        ),
        ({"TransformInstanceCount": 0}, "TransformInstanceCount: got 0; allowed: 1 or more"),
    ],
)
def test_bad_run_values_fail_the_execution_before_any_model_is_created(
    bare_stack: Stack, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    _, rendered = pipeline(bare_stack, tmp_path)
    ev = PipelineEvaluator(rendered, {**RUN, **values})
    failure = ev.fails_with()
    assert failure is not None and failure.startswith(message)
    assert not any(s["Type"] in ("Model", "Transform") for s in ev.executed_steps())


def test_a_local_storage_transform_type_gets_no_volume_key_and_only_its_storage_class(
    bare_stack: Stack, tmp_path: Path
) -> None:
    _, rendered = pipeline(bare_stack, tmp_path, instance_type="ml.g4dn.xlarge")
    assert validate_pipeline_definition(rendered) == []
    (types,) = [p for p in rendered["Parameters"] if p["Name"] == "TransformInstanceType"]
    assert types["EnumValues"] == ["ml.g4dn.xlarge"]
    request = PipelineEvaluator(rendered, RUN).value(rendered["Steps"][-1]["Arguments"])
    assert request["TransformResources"] == {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 2}
    assert request["TransformOutput"]["KmsKeyId"].startswith("arn:aws:kms:")  # the output stays encrypted


def test_props_refuse_an_instance_type_the_packages_do_not_support_and_no_instances() -> None:
    with pytest.raises(
        ValueError, match=r"instance_type: got 'ml.c5.2xlarge'; allowed: one of instance_types"
    ):
        props(instance_type="ml.c5.2xlarge")
    with pytest.raises(ValueError, match=r"instance_count: got 0; allowed: 1 or more"):
        props(instance_count=0)


def test_lake_prefixes_refuse_a_part_that_would_put_a_double_slash_in_the_key(bare_stack: Stack) -> None:
    lake = LakeAccess(bucket=s3.Bucket(bare_stack, "B"), key=kms.Key(bare_stack, "K"))
    uri = lake_prefix(lake, Zone.PROCESSED, "d", EXECUTION_ID)
    assert uri["Std:Join"]["Values"][-1] == "" and uri["Std:Join"]["On"] == "/"
    for part in ("", "a/", "/a"):
        with pytest.raises(ValueError, match=r"allowed: a non-empty key segment without '/' at an end"):
            lake_prefix(lake, Zone.PROCESSED, part)
