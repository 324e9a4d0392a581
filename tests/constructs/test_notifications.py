"""PlatformNotifications on a bare Stack: every event pattern, target and message; checked against AWS's own
sample events with EventBridge's matching rules.

The sample events are the ones in "Events that Amazon SageMaker AI sends to Amazon EventBridge"
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html, fetched
2026): each ``*_SAMPLE`` below is the documented event verbatim except where a comment says what was
changed (identifiers made the platform's, a status set to the one a case needs). botocore has no offline
EventBridge matcher, so :func:`matches` implements the part of EventBridge's pattern language the rules use
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html), and its own
tests below pin each operator, including the cases it must reject.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import botocore.session
import pytest
from aws_cdk import App, CfnElement, Fn, Stack
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

from ml_platform.notifications import (
    APPROVAL_STATUSES,
    SOURCE,
    DetailType,
    Notification,
    PlatformNotifications,
)
from stacks.policy import add_policy_gates
from tests.conftest import feature_flags
from tests.stacks.test_synthesized_stacks import LINT_REGIONS
from tests.support.sagemaker_api import PLACEHOLDER_ACCOUNT, PLACEHOLDER_REGION, render_template_value

# ---- EventBridge matching (the subset the rules use) ----------------------------------------------

_MISSING = object()


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Whether ``event`` matches ``pattern`` under EventBridge's rules (exact values, prefix, anything-but,
    equals-ignore-case, exists, nested objects, arrays in the event, ``$or``). Unknown operators raise."""
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches(branch, event) for branch in expected):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            # A nested pattern on a missing (or non-object) field sees all its members missing.
            if not matches(expected, value if isinstance(value, Mapping) else {}):
                return False
        elif isinstance(expected, list):
            if not _leaf_matches(expected, value):
                return False
        else:
            raise ValueError(f"pattern member {key!r}: {expected!r} is neither an object nor an array")
    return True


def _leaf_matches(filters: list[Any], value: Any) -> bool:
    """A leaf matches when any filter matches; an array in the event when any element does."""
    if value is not _MISSING and isinstance(value, Mapping):
        value = _MISSING  # filters apply to leaves only (EventBridge: exists matches leaf nodes)
    values = value if isinstance(value, list) else [value]
    return any(_filter_matches(f, v) for f in filters for v in values) or (
        isinstance(value, list) and not value and any(f == {"exists": False} for f in filters)
    )


def _same(expected: Any, value: Any) -> bool:
    """JSON equality: the string "5" is not the number 5, true is not 1 (numbers compare by value)."""

    def kind(x: Any) -> str:
        return "bool" if isinstance(x, bool) else "number" if isinstance(x, int | float) else type(x).__name__

    return kind(expected) == kind(value) and expected == value


def _filter_matches(f: Any, value: Any) -> bool:
    if not isinstance(f, Mapping):
        return value is not _MISSING and _same(f, value)
    ((operator, operand),) = f.items()
    if operator == "exists":
        return (value is not _MISSING) is operand
    if value is _MISSING:
        return False
    if operator == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == operand.lower()
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if operator == "anything-but":
        if isinstance(operand, Mapping):
            return not _filter_matches(operand, value)
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(_same(x, value) for x in excluded)
    raise ValueError(f"operator {operator!r} is not implemented by this test matcher")


def test_matcher_exact_values_are_case_and_type_sensitive() -> None:
    assert matches({"a": ["Failed"]}, {"a": "Failed"})
    assert not matches({"a": ["Failed"]}, {"a": "failed"})
    assert not matches({"a": ["Failed"]}, {"a": "Completed"})
    assert not matches({"a": ["5"]}, {"a": 5})
    assert not matches({"a": [1]}, {"a": True})
    assert matches({"a": ["x", "Failed"]}, {"a": "Failed"})


def test_matcher_missing_fields_match_only_exists_false() -> None:
    assert not matches({"a": ["Failed"]}, {"b": "Failed"})
    assert not matches({"a": [{"equals-ignore-case": "x"}]}, {})
    assert not matches({"a": [{"anything-but": "x"}]}, {})
    assert matches({"a": [{"exists": False}]}, {"b": 1})
    assert not matches({"a": [{"exists": False}]}, {"a": "x"})
    assert matches({"a": [{"exists": True}]}, {"a": "x"})
    assert not matches({"a": [{"exists": True}]}, {"a": {"b": 1}})  # exists looks at leaves only


def test_matcher_nested_objects_and_arrays() -> None:
    assert matches({"d": {"s": ["ok"]}}, {"d": {"s": "ok", "other": 1}})
    assert not matches({"d": {"s": ["ok"]}}, {"d": {"s": "no"}})
    assert not matches({"d": {"s": ["ok"]}}, {"x": 1})
    assert matches({"d": {"h": {"t": [{"exists": False}]}}}, {"d": {}})  # parent missing: child missing
    assert not matches({"d": {"h": {"t": [{"exists": False}]}}}, {"d": {"h": {"t": "x"}}})
    assert matches({"f": ["B"]}, {"f": ["A", "B"]})  # any element of an array in the event
    assert not matches({"f": ["C"]}, {"f": ["A", "B"]})


def test_matcher_operators() -> None:
    assert matches({"a": [{"equals-ignore-case": "ARN:X"}]}, {"a": "arn:x"})
    assert not matches({"a": [{"equals-ignore-case": "arn:x"}]}, {"a": "arn:y"})
    assert matches({"a": [{"prefix": "pipe"}]}, {"a": "pipelines-1"})
    assert not matches({"a": [{"prefix": "pipe"}]}, {"a": "a-pipe"})
    assert matches({"a": [{"anything-but": ["x", "y"]}]}, {"a": "z"})
    assert not matches({"a": [{"anything-but": ["x", "y"]}]}, {"a": "y"})
    assert not matches({"a": [{"anything-but": {"prefix": "model-"}}]}, {"a": "model-monitoring-1"})
    with pytest.raises(ValueError, match="numeric"):
        matches({"a": [{"numeric": [">", 1]}]}, {"a": 2})


def test_matcher_or_and_all_members() -> None:
    pattern = {"s": ["x"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}
    assert matches(pattern, {"s": "x", "a": "1"})
    assert matches(pattern, {"s": "x", "b": "2"})
    assert not matches(pattern, {"s": "x", "a": "2"})
    assert not matches(pattern, {"s": "y", "a": "1"})


# ---- AWS's sample events (see the module doc for the source) ---------------------------------------

ACCOUNT = PLACEHOLDER_ACCOUNT  # what the rendered template uses for AWS::AccountId
REGION = PLACEHOLDER_REGION
EXEC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/MlPlatform-dev-Training-ExecutionRole"
MONITOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/MlPlatform-dev-Monitoring-JobRole"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/SomeoneElsesRole"
PIPELINES = ("MlPlatform-dev-Training-TrainingPipeline", "MlPlatform-dev-Training-TuningPipeline")
GROUP = "mlplatform-dev-training-models"

TRAINING_SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "SageMaker Training Job State Change",
    "source": "aws.sagemaker",
    "account": "111122223333",
    "time": "2018-10-06T12:26:13Z",
    "region": "us-east-1",
    "resources": ["arn:aws:sagemaker:us-east-1:111122223333:training-job/kmeans-1"],
    "detail": {
        "TrainingJobName": "89c96cc8-dded-4739-afcc-6f1dc936701d",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:training-job/kmeans-1",
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "HyperParameters": {"Hyper": "Parameters"},
        "AlgorithmSpecification": {
            "TrainingImage": "TrainingImage",
            "TrainingInputMode": "TrainingInputMode",
        },
        "RoleArn": "arn:aws:iam::111122223333:role/SMRole",
        "InputDataConfig": [
            {
                "ChannelName": "Train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3DataType",
                        "S3Uri": "S3Uri",
                        "S3DataDistributionType": "S3DataDistributionType",
                    }
                },
                "ContentType": "ContentType",
                "CompressionType": "CompressionType",
                "RecordWrapperType": "RecordWrapperType",
            }
        ],
        "OutputDataConfig": {"KmsKeyId": "KmsKeyId", "S3OutputPath": "S3OutputPath"},
        "ResourceConfig": {
            "InstanceType": "InstanceType",
            "InstanceCount": 3,
            "VolumeSizeInGB": 20,
            "VolumeKmsKeyId": "VolumeKmsKeyId",
        },
        "VpcConfig": {},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "CreationTime": "1583831889050",
        "TrainingStartTime": "1583831889050",
        "TrainingEndTime": "1583831889050",
        "LastModifiedTime": "1583831889050",
        "SecondaryStatusTransitions": [],
        "Tags": {},
    },
}

TUNING_SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "SageMaker HyperParameter Tuning Job State Change",
    "source": "aws.sagemaker",
    "account": "111122223333",
    "time": "2018-10-06T12:26:13Z",
    "region": "us-east-1",
    "resources": ["arn:aws:sagemaker:us-east-1:111122223333:tuningJob/x"],
    "detail": {
        "HyperParameterTuningJobName": "016bffd3-6d71-4d3a-9710-0a332b2759fc",
        "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:111122223333:tuningJob/x",
        "TrainingJobDefinition": {
            "StaticHyperParameters": {},
            "AlgorithmSpecification": {
                "TrainingImage": "trainingImageName",
                "TrainingInputMode": "inputModeFile",
                "MetricDefinitions": [{"Name": "metricName", "Regex": "regex"}],
            },
            "RoleArn": "roleArn",
            "InputDataConfig": [
                {
                    "ChannelName": "channelName",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "s3DataType",
                            "S3Uri": "s3Uri",
                            "S3DataDistributionType": "s3DistributionType",
                        }
                    },
                    "ContentType": "contentType",
                    "CompressionType": "gz",
                    "RecordWrapperType": "RecordWrapper",
                }
            ],
            "VpcConfig": {"SecurityGroupIds": ["securityGroupIds"], "Subnets": ["subnets"]},
            "OutputDataConfig": {"KmsKeyId": "kmsKeyId", "S3OutputPath": "s3OutputPath"},
            "ResourceConfig": {
                "InstanceType": "instanceType",
                "InstanceCount": 10,
                "VolumeSizeInGB": 500,
                "VolumeKmsKeyId": "volumeKeyId",
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
        "HyperParameterTuningJobStatus": "status",
        "CreationTime": "1583831889050",
        "LastModifiedTime": "1583831889050",
        "TrainingJobStatusCounters": {
            "Completed": 1,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": 0,
            "Stopped": 0,
        },
        "ObjectiveStatusCounters": {"Succeeded": 1, "Pending": 0, "Failed": 0},
        "Tags": {},
    },
}

PROCESSING_SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "0a15f67d-aa23-0123-0123-01a23w89r01t",
    "detail-type": "SageMaker Processing Job State Change",
    "source": "aws.sagemaker",
    "account": "111122223333",
    "time": "2019-05-31T21:49:54Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:sagemaker:us-west-2:037210630506:processing-job/integ-test-analytics-algo-54ee3282-5899-4aa3-afc2-7ce1d02"
    ],
    "detail": {
        "ProcessingInputs": [
            {
                "InputName": "InputName",
                "S3Input": {
                    "S3Uri": "s3://input/s3/uri",
                    "LocalPath": "/opt/ml/processing/input/local/path",
                    "S3DataType": "MANIFEST_FILE",
                    "S3InputMode": "PIPE",
                    "S3DataDistributionType": "FULLYREPLICATED",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "OutputName",
                    "S3Output": {
                        "S3Uri": "s3://output/s3/uri",
                        "LocalPath": "/opt/ml/processing/output/local/path",
                        "S3UploadMode": "CONTINUOUS",
                    },
                }
            ],
            "KmsKeyId": "KmsKeyId",
        },
        "ProcessingJobName": "integ-test-analytics-algo-54ee3282-5899-4aa3-afc2-7ce1d02",
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 3,
                "InstanceType": "ml.c5.xlarge",
                "VolumeSizeInGB": 5,
                "VolumeKmsKeyId": "VolumeKmsKeyId",
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 2000},
        "AppSpecification": {
            "ImageUri": "012345678901.dkr.ecr.us-west-2.amazonaws.com/processing-uri:latest"
        },
        "NetworkConfig": {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": False,
            "VpcConfig": {
                "SecurityGroupIds": ["SecurityGroupId1", "SecurityGroupId2", "SecurityGroupId3"],
                "Subnets": ["Subnet1", "Subnet2"],
            },
        },
        "RoleArn": "arn:aws:iam::037210630506:role/SageMakerPowerUser",
        "ExperimentConfig": {},
        "ProcessingJobArn": (
            "arn:aws:sagemaker:us-west-2:037210630506:processing-job/"
            "integ-test-analytics-algo-54ee3282-5899-4aa3-afc2-7ce1d02"
        ),
        "ProcessingJobStatus": "Failed",
        "FailureReason": "InternalServerError: We encountered an internal error.  Please try again.",
        "ProcessingEndTime": 1704320746000,
        "ProcessingStartTime": 1704320734000,
        "LastModifiedTime": 1704320746000,
        "CreationTime": 1704320199000,
    },
}

PIPELINE_SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "315c1398-40ff-a850-213b-158f73kd93ir",
    "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
    "source": "aws.sagemaker",
    "account": "111122223333",
    "time": "2021-03-15T16:10:11Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:sagemaker:us-east-1:111122223333:pipeline/myPipeline-123",
        "arn:aws:sagemaker:us-east-1:111122223333:pipeline/myPipeline-123/execution/p4jn9xou8a8s",
    ],
    "detail": {
        "pipelineExecutionDisplayName": "SomeDisplayName",
        "currentPipelineExecutionStatus": "Succeeded",
        "previousPipelineExecutionStatus": "Executing",
        "executionStartTime": "2021-03-15T16:03:13Z",
        "executionEndTime": "2021-03-15T16:10:10Z",
        "pipelineExecutionDescription": "SomeDescription",
        "pipelineArn": "arn:aws:sagemaker:us-east-1:111122223333:pipeline/myPipeline-123",
        "pipelineExecutionArn": (
            "arn:aws:sagemaker:us-east-1:111122223333:pipeline/myPipeline-123/execution/p4jn9xou8a8s"
        ),
    },
}

# The documented model package sample is not valid JSON as printed (a second "source" member holding a list,
# a "#" comment inside UpdatedModelPackageFields, a missing comma): here the first "source" is kept, the
# comment dropped (it lists the other values: ModelApprovalStatus, ApprovalDescription, sourceUri,
# CustomerMetadataProperties, InferenceSpecification) and the comma added.
MODEL_PACKAGE_SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "SageMaker Model Package State Change",
    "source": "aws.sagemaker",
    "account": "111122223333",
    "time": "2021-02-24T17:00:14Z",
    "region": "us-east-2",
    "resources": ["arn:aws:sagemaker:us-east-2:111122223333:model-package/versionedmp-p-idy6c3e1fiqj/2"],
    "detail": {
        "ModelPackageGroupName": "versionedmp-p-idy6c3e1fiqj",
        "ModelPackageVersion": 2,
        "ModelPackageArn": (
            "arn:aws:sagemaker:us-east-2:111122223333:model-package/versionedmp-p-idy6c3e1fiqj/2"
        ),
        "CreationTime": "2021-02-24T17:00:14Z",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "257758044811.dkr.ecr.us-east-2.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3",
                    "ImageDigest": "sha256:4dc8a7e4a010a19bb9e0a6b063f355393f6e623603361bd8b105f554d4f0c004",
                    "ModelDataUrl": (
                        "s3://sagemaker-project-p-idy6c3e1fiqj/versionedmp-p-idy6c3e1fiqj/AbaloneTrain/"
                        "pipelines-4r83jejmhorv-TrainAbaloneModel-xw869y8C4a/output/model.tar.gz"
                    ),
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "CertifyForMarketplace": False,
        "ModelApprovalStatus": "Rejected",
        "MetadataProperties": {
            "GeneratedBy": (
                "arn:aws:sagemaker:us-east-2:111122223333:pipeline/versionedmp-p-idy6c3e1fiqj/execution/4r83jejmhorv"
            )
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": (
                        "s3://sagemaker-project-p-idy6c3e1fiqj/versionedmp-p-idy6c3e1fiqj/"
                        "script-2021-02-24-10-55-15-413/output/evaluation/evaluation.json"
                    ),
                }
            }
        },
        "ModelLifeCycle": {
            "Stage": "Development",
            "StageStatus": "Approved",
            "StageDescription": "StageDescription",
        },
        "UpdatedModelPackageFields": ["ModelLifeCycle"],
        "LastModifiedTime": "2021-02-24T17:00:14Z",
    },
}

# A reason as SageMaker's training toolkit writes them: quotes and line breaks (why the messages are JSON).
SCRIPT_FAILURE = (
    "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"
    'ErrorMessage "ValueError: bad"\nCommand "python train.py"'
)


def event(sample: Mapping[str, Any], **detail: Any) -> dict[str, Any]:
    """A deep copy of ``sample`` in the platform's account and region, with ``detail`` members replaced
    (a value of ``None`` removes the member)."""
    result = copy.deepcopy(dict(sample))
    result["account"], result["region"] = ACCOUNT, REGION
    for key, value in detail.items():
        if value is None:
            result["detail"].pop(key, None)
        else:
            result["detail"][key] = value
    return result


def pipeline_arn(name: str) -> str:
    # SageMaker may report the ARN in lower case: the rules must still match.
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{name.lower()}"


def tuning_event(status: str, role: str = EXEC_ROLE) -> dict[str, Any]:
    result = event(TUNING_SAMPLE, HyperParameterTuningJobStatus=status)
    result["detail"]["TrainingJobDefinition"]["RoleArn"] = role
    return result


# ---- the construct -------------------------------------------------------------------------------

TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:MlPlatform-dev-Data-Alerts"


def make(stack: Stack, **overrides: Any) -> PlatformNotifications:
    props: dict[str, Any] = {
        "topic": sns.Topic.from_topic_arn(stack, "AlertTopic", TOPIC_ARN),
        "job_role_arns": [EXEC_ROLE],
        "monitoring_role_arns": [MONITOR_ROLE],
        "pipeline_names": list(PIPELINES),
        "model_package_group_name": GROUP,
        "label": "ml-platform dev",
    }
    props.update(overrides)
    return PlatformNotifications(stack, "Notifications", **props)


def rendered_rules(stack: Stack, notifications: PlatformNotifications) -> dict[Notification, dict[str, Any]]:
    """Each rule's properties from the synthesized template, intrinsics rendered (us-east-1, 123456789012)."""
    template = Template.from_stack(stack).to_json()
    return {
        kind: render_template_value(
            template, template["Resources"][stack.get_logical_id(cast(CfnElement, rule.node.default_child))]
        )["Properties"]
        for kind, rule in notifications.rules.items()
    }


@pytest.fixture
def rules(bare_stack: Stack) -> dict[Notification, dict[str, Any]]:
    return rendered_rules(bare_stack, make(bare_stack))


def matching(rules: Mapping[Notification, Mapping[str, Any]], evt: Mapping[str, Any]) -> set[Notification]:
    return {kind for kind, props in rules.items() if matches(props["EventPattern"], evt)}


def test_one_rule_per_notification_on_the_default_bus_without_names(
    bare_stack: Stack, rules: dict[Notification, dict[str, Any]]
) -> None:
    assert set(rules) == set(Notification)
    for kind, props in rules.items():
        assert "Name" not in props and "EventBusName" not in props, kind  # generated name, default bus
        assert props["State"] == "ENABLED"
        assert props["Description"] == kind.description
        pattern = props["EventPattern"]
        assert pattern["source"] == [SOURCE] == ["aws.sagemaker"]
        assert pattern["detail-type"] == [kind.detail_type.value]
        assert set(pattern) == {"source", "detail-type", "detail"}


def test_detail_types_are_sagemakers_strings() -> None:
    assert {d.value for d in DetailType} == {
        "SageMaker Training Job State Change",
        "SageMaker Processing Job State Change",
        "SageMaker HyperParameter Tuning Job State Change",
        "SageMaker Model Building Pipeline Execution Status Change",
        "SageMaker Model Package State Change",
    }
    for sample, detail_type in [
        (TRAINING_SAMPLE, DetailType.TRAINING_JOB),
        (PROCESSING_SAMPLE, DetailType.PROCESSING_JOB),
        (TUNING_SAMPLE, DetailType.TUNING_JOB),
        (PIPELINE_SAMPLE, DetailType.PIPELINE_EXECUTION),
        (MODEL_PACKAGE_SAMPLE, DetailType.MODEL_PACKAGE),
    ]:
        assert sample["detail-type"] == detail_type.value


def test_every_event_pattern_exactly(rules: dict[Notification, dict[str, Any]]) -> None:
    """The detail of every pattern, rendered: statuses, role/pipeline/registry scoping, trial exclusion."""
    job = [{"equals-ignore-case": EXEC_ROLE}]
    monitor = [{"equals-ignore-case": MONITOR_ROLE}]
    arns = [{"equals-ignore-case": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{n}"} for n in PIPELINES]
    group = [{"equals-ignore-case": GROUP}]
    expected = {
        Notification.TRAINING_JOB_FAILED: {"TrainingJobStatus": ["Failed"], "RoleArn": job},
        Notification.TRAINING_JOB_STOPPED: {
            "TrainingJobStatus": ["Stopped"],
            "RoleArn": job,
            "TuningJobArn": [{"exists": False}],
            "HyperParameters": {"_tuning_objective_metric": [{"exists": False}]},
        },
        Notification.PROCESSING_JOB_FAILED: {"ProcessingJobStatus": ["Failed"], "RoleArn": job},
        Notification.PROCESSING_JOB_STOPPED: {"ProcessingJobStatus": ["Stopped"], "RoleArn": job},
        Notification.TUNING_JOB_FAILED_OR_STOPPED: {
            "HyperParameterTuningJobStatus": ["Failed", "Stopped"],
            "TrainingJobDefinition": {"RoleArn": job},
        },
        Notification.MONITORING_JOB_FAILED: {"ProcessingJobStatus": ["Failed"], "RoleArn": monitor},
        Notification.MONITORING_JOB_STOPPED: {"ProcessingJobStatus": ["Stopped"], "RoleArn": monitor},
        Notification.MONITORING_VIOLATIONS: {
            "ProcessingJobStatus": ["Completed"],
            "ExitMessage": [{"prefix": "CompletedWithViolations"}],
            "RoleArn": monitor,
        },
        Notification.PIPELINE_EXECUTION_FAILED: {
            "currentPipelineExecutionStatus": ["Failed", "CompletedWithFailures"],
            "pipelineArn": arns,
        },
        Notification.MODEL_APPROVAL_CHANGED: {
            "ModelPackageGroupName": group,
            "UpdatedModelPackageFields": ["ModelApprovalStatus"],
            "ModelApprovalStatus": ["Approved", "Rejected", "PendingManualApproval"],
        },
        Notification.MODEL_PACKAGE_REGISTERED: {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": ["PendingManualApproval"],
            "ModelPackageStatus": ["Completed"],
            "UpdatedModelPackageFields": [{"exists": False}],
        },
    }
    assert {kind: props["EventPattern"]["detail"] for kind, props in rules.items()} == expected


# Field -> the botocore shape holding the event field (the events carry Describe*'s members).
_DESCRIBE_SHAPES = {
    DetailType.TRAINING_JOB: "DescribeTrainingJobResponse",
    DetailType.PROCESSING_JOB: "DescribeProcessingJobResponse",
    DetailType.TUNING_JOB: "DescribeHyperParameterTuningJobResponse",
    DetailType.MODEL_PACKAGE: "DescribeModelPackageOutput",
}
# Members only the events have (documented on the events page), not the Describe* responses.
_EVENT_ONLY_FIELDS = {"UpdatedModelPackageFields"}
_STATUS_ENUMS = {
    "TrainingJobStatus": "TrainingJobStatus",
    "ProcessingJobStatus": "ProcessingJobStatus",
    "HyperParameterTuningJobStatus": "HyperParameterTuningJobStatus",
    "currentPipelineExecutionStatus": "PipelineExecutionStatus",
    "ModelApprovalStatus": "ModelApprovalStatus",
    "ModelPackageStatus": "ModelPackageStatus",
}


def _pattern_leaves(
    detail: Mapping[str, Any], path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], list[Any]]]:
    leaves = []
    for key, value in detail.items():
        if isinstance(value, Mapping):
            leaves += _pattern_leaves(value, (*path, key))
        else:
            leaves.append(((*path, key), value))
    return leaves


def test_matched_fields_and_statuses_exist_in_sagemakers_api_model(
    rules: dict[Notification, dict[str, Any]],
) -> None:
    """A misspelt field or status would match nothing, silently: each is checked against botocore."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    for kind, props in rules.items():
        for path, filters in _pattern_leaves(props["EventPattern"]["detail"]):
            if path[-1] in _STATUS_ENUMS:
                allowed = model.shape_for(_STATUS_ENUMS[path[-1]]).enum
                assert {f for f in filters if isinstance(f, str)} <= set(allowed), (kind, path)
            shape_name = _DESCRIBE_SHAPES.get(kind.detail_type)
            # A hyperparameter name and the event-only members are not Describe* members.
            if shape_name is None or path[-1] == "_tuning_objective_metric" or path[0] in _EVENT_ONLY_FIELDS:
                continue
            shape = model.shape_for(shape_name)
            for member in path:
                assert member in shape.members, (kind, path, shape.name)
                shape = shape.members[member]
    approval_filter = rules[Notification.MODEL_APPROVAL_CHANGED]["EventPattern"]["detail"][
        "UpdatedModelPackageFields"
    ]
    assert set(approval_filter) <= set(model.shape_for("DescribeModelPackageOutput").members)
    assert set(APPROVAL_STATUSES) == set(model.shape_for("ModelApprovalStatus").enum)


def test_targets_publish_to_the_topic_with_no_role_and_no_topic_policy(bare_stack: Stack) -> None:
    make(bare_stack)
    template = Template.from_stack(bare_stack)
    resources = template.to_json()["Resources"]
    assert {r["Type"] for r in resources.values()} == {"AWS::Events::Rule"}  # no IAM, no topic policy
    for rule in template.find_resources("AWS::Events::Rule").values():
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == TOPIC_ARN
        assert "RoleArn" not in target
        assert set(target) == {"Arn", "Id", "InputTransformer"}
    assert "*" not in json.dumps(resources)  # no wildcard anywhere


def test_imported_topic_from_exports_is_the_target(bare_stack: Stack) -> None:
    """As the monitoring stack wires it: the topic and the roles come from other stacks' exports."""
    topic = sns.Topic.from_topic_arn(
        bare_stack, "Imported", Fn.import_value("MlPlatform-dev-Data:AlertTopicArn")
    )
    notifications = make(
        bare_stack,
        topic=topic,
        job_role_arns=[Fn.import_value("MlPlatform-dev-Training:ExecutionRoleArn")],
        monitoring_role_arns=[Fn.import_value("MlPlatform-dev-Monitoring:JobRoleArn")],
    )
    imports = {
        "MlPlatform-dev-Data:AlertTopicArn": TOPIC_ARN,
        "MlPlatform-dev-Training:ExecutionRoleArn": EXEC_ROLE,
        "MlPlatform-dev-Monitoring:JobRoleArn": MONITOR_ROLE,
    }
    template = Template.from_stack(bare_stack).to_json()
    rule = notifications.rules[Notification.TRAINING_JOB_FAILED]
    props = render_template_value(
        template,
        template["Resources"][bare_stack.get_logical_id(cast(CfnElement, rule.node.default_child))],
        imports,
    )["Properties"]
    assert props["Targets"][0]["Arn"] == TOPIC_ARN
    assert props["EventPattern"]["detail"]["RoleArn"] == [{"equals-ignore-case": EXEC_ROLE}]


# ---- each pattern against the documented events -----------------------------------------------------

CASES: list[tuple[str, dict[str, Any], set[Notification]]] = [
    # Training: the documented event is Completed (nothing), then failed / stopped variants.
    ("training completed", event(TRAINING_SAMPLE, RoleArn=EXEC_ROLE), set()),
    (
        "training failed",
        event(
            TRAINING_SAMPLE,
            RoleArn=EXEC_ROLE,
            TrainingJobStatus="Failed",
            SecondaryStatus="Failed",
            FailureReason=SCRIPT_FAILURE,
        ),
        {Notification.TRAINING_JOB_FAILED},
    ),
    (
        "training failed, role in other case",
        event(TRAINING_SAMPLE, RoleArn=EXEC_ROLE.lower(), TrainingJobStatus="Failed", FailureReason="x"),
        {Notification.TRAINING_JOB_FAILED},
    ),
    (
        "training failed, someone else's role",
        event(TRAINING_SAMPLE, RoleArn=OTHER_ROLE, TrainingJobStatus="Failed", FailureReason="x"),
        set(),
    ),
    (
        "training stopped at max run time",
        event(
            TRAINING_SAMPLE,
            RoleArn=EXEC_ROLE,
            TrainingJobStatus="Stopped",
            SecondaryStatus="MaxRuntimeExceeded",
        ),
        {Notification.TRAINING_JOB_STOPPED},
    ),
    (
        "tuning trial stopped early (TuningJobArn)",
        event(
            TRAINING_SAMPLE,
            RoleArn=EXEC_ROLE,
            TrainingJobStatus="Stopped",
            SecondaryStatus="Stopped",
            TuningJobArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/x",
        ),
        set(),
    ),
    (
        "tuning trial stopped early (objective hyperparameter)",
        event(
            TRAINING_SAMPLE,
            RoleArn=EXEC_ROLE,
            TrainingJobStatus="Stopped",
            HyperParameters={"_tuning_objective_metric": "validation:f1", "lr": "0.01"},
        ),
        set(),
    ),
    (
        "tuning trial failed",
        event(
            TRAINING_SAMPLE,
            RoleArn=EXEC_ROLE,
            TrainingJobStatus="Failed",
            FailureReason="x",
            TuningJobArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/x",
        ),
        {Notification.TRAINING_JOB_FAILED},
    ),
    # Processing: the documented event is Failed.
    ("processing failed", event(PROCESSING_SAMPLE, RoleArn=EXEC_ROLE), {Notification.PROCESSING_JOB_FAILED}),
    (
        "processing stopped",
        event(PROCESSING_SAMPLE, RoleArn=EXEC_ROLE, ProcessingJobStatus="Stopped", FailureReason=None),
        {Notification.PROCESSING_JOB_STOPPED},
    ),
    (
        "processing completed",
        event(PROCESSING_SAMPLE, RoleArn=EXEC_ROLE, ProcessingJobStatus="Completed", FailureReason=None),
        set(),
    ),
    ("processing failed, someone else's role (as documented)", event(PROCESSING_SAMPLE), set()),
    (
        "monitoring job failed",
        event(PROCESSING_SAMPLE, RoleArn=MONITOR_ROLE),
        {Notification.MONITORING_JOB_FAILED},
    ),
    (
        "monitoring job stopped",
        event(PROCESSING_SAMPLE, RoleArn=MONITOR_ROLE, ProcessingJobStatus="Stopped", FailureReason=None),
        {Notification.MONITORING_JOB_STOPPED},
    ),
    (
        "monitoring job with violations (ends Completed)",
        event(
            PROCESSING_SAMPLE,
            RoleArn=MONITOR_ROLE,
            ProcessingJobStatus="Completed",
            FailureReason=None,
            ExitMessage="CompletedWithViolations: Job completed successfully with 3 violations.",
        ),
        {Notification.MONITORING_VIOLATIONS},
    ),
    (
        "monitoring job without violations",
        event(
            PROCESSING_SAMPLE,
            RoleArn=MONITOR_ROLE,
            ProcessingJobStatus="Completed",
            FailureReason=None,
            ExitMessage="Completed: Job completed successfully with no violations.",
        ),
        set(),
    ),
    (
        "a pipeline job's exit message that happens to say violations",
        event(
            PROCESSING_SAMPLE,
            RoleArn=EXEC_ROLE,
            ProcessingJobStatus="Completed",
            FailureReason=None,
            ExitMessage="CompletedWithViolations: 1 violation.",
        ),
        set(),
    ),
    # Tuning: the documented event has the placeholder status "status".
    ("tuning, documented placeholder status", tuning_event("status"), set()),
    ("tuning failed", tuning_event("Failed"), {Notification.TUNING_JOB_FAILED_OR_STOPPED}),
    ("tuning stopped", tuning_event("Stopped"), {Notification.TUNING_JOB_FAILED_OR_STOPPED}),
    ("tuning completed", tuning_event("Completed"), set()),
    ("tuning failed, someone else's role", tuning_event("Failed", OTHER_ROLE), set()),
    # Pipelines: the documented event is Succeeded.
    ("pipeline succeeded", event(PIPELINE_SAMPLE, pipelineArn=pipeline_arn(PIPELINES[0])), set()),
    (
        "pipeline failed",
        event(
            PIPELINE_SAMPLE, pipelineArn=pipeline_arn(PIPELINES[0]), currentPipelineExecutionStatus="Failed"
        ),
        {Notification.PIPELINE_EXECUTION_FAILED},
    ),
    (
        "pipeline completed with failures",
        event(
            PIPELINE_SAMPLE,
            pipelineArn=pipeline_arn(PIPELINES[1]),
            currentPipelineExecutionStatus="CompletedWithFailures",
        ),
        {Notification.PIPELINE_EXECUTION_FAILED},
    ),
    (
        "pipeline failed, another pipeline (as documented)",
        event(PIPELINE_SAMPLE, currentPipelineExecutionStatus="Failed"),
        set(),
    ),
    (
        "pipeline stopped",
        event(
            PIPELINE_SAMPLE, pipelineArn=pipeline_arn(PIPELINES[0]), currentPipelineExecutionStatus="Stopped"
        ),
        set(),
    ),
    # Model packages: the documented event is a ModelLifeCycle update of a Rejected package.
    (
        "package lifecycle update (as documented, our group)",
        event(MODEL_PACKAGE_SAMPLE, ModelPackageGroupName=GROUP),
        set(),
    ),
    (
        "package approved",
        event(
            MODEL_PACKAGE_SAMPLE,
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            UpdatedModelPackageFields=["ModelApprovalStatus"],
        ),
        {Notification.MODEL_APPROVAL_CHANGED},
    ),
    (
        "package rejected with a description",
        event(
            MODEL_PACKAGE_SAMPLE,
            ModelPackageGroupName=GROUP,
            UpdatedModelPackageFields=["ApprovalDescription", "ModelApprovalStatus"],
        ),
        {Notification.MODEL_APPROVAL_CHANGED},
    ),
    (
        "package approved, another group",
        event(
            MODEL_PACKAGE_SAMPLE,
            ModelApprovalStatus="Approved",
            UpdatedModelPackageFields=["ModelApprovalStatus"],
        ),
        set(),
    ),
    (
        "package metadata update of an approved package",
        event(
            MODEL_PACKAGE_SAMPLE,
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            UpdatedModelPackageFields=["CustomerMetadataProperties"],
        ),
        set(),
    ),
    (
        "package registered",
        event(
            MODEL_PACKAGE_SAMPLE,
            ModelPackageGroupName=GROUP.upper(),
            ModelApprovalStatus="PendingManualApproval",
            UpdatedModelPackageFields=None,
            ModelLifeCycle=None,
        ),
        {Notification.MODEL_PACKAGE_REGISTERED},
    ),
    (
        "package being registered (InProgress)",
        event(
            MODEL_PACKAGE_SAMPLE,
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="PendingManualApproval",
            ModelPackageStatus="InProgress",
            UpdatedModelPackageFields=None,
        ),
        set(),
    ),
]


@pytest.mark.parametrize(("case", "evt", "expected"), CASES, ids=[c[0] for c in CASES])
def test_patterns_against_documented_events(
    rules: dict[Notification, dict[str, Any]], case: str, evt: dict[str, Any], expected: set[Notification]
) -> None:
    """Each event notifies through exactly the expected rule (never two: no duplicate alerts)."""
    assert matching(rules, evt) == expected, case


def test_every_rule_is_exercised_by_a_documented_event() -> None:
    assert set().union(*(expected for _, _, expected in CASES)) == set(Notification)


def test_without_monitoring_roles_there_are_no_monitoring_rules(bare_stack: Stack) -> None:
    rules = rendered_rules(bare_stack, make(bare_stack, monitoring_role_arns=[], notify_registration=False))
    assert set(rules) == set(Notification) - {
        Notification.MONITORING_JOB_FAILED,
        Notification.MONITORING_JOB_STOPPED,
        Notification.MONITORING_VIOLATIONS,
        Notification.MODEL_PACKAGE_REGISTERED,
    }
    # A monitoring role's processing job is then nobody's business.
    assert matching(rules, event(PROCESSING_SAMPLE, RoleArn=MONITOR_ROLE)) == set()


# ---- messages -----------------------------------------------------------------------------------

_VARIABLE = re.compile(r"<([^<>]+)>")


def json_path(evt: Mapping[str, Any], path: str) -> Any:
    """EventBridge's dot-notation JSON path ("$.detail.FailureReason") on ``evt``; KeyError when absent."""
    assert path.startswith("$."), path
    value: Any = evt
    for part in path[2:].split("."):
        value = value[part]
    return value


def render_message(transformer: Mapping[str, Any], evt: Mapping[str, Any]) -> dict[str, Any]:
    """What EventBridge sends the topic: each ``<variable>`` (outside quotes) replaced by the JSON value at
    its path. Every variable must be mapped and its path present in the event."""
    paths = transformer["InputPathsMap"]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in paths, f"template variable <{name}> is not in InputPathsMap"
        return json.dumps(json_path(evt, paths[name]))

    text = _VARIABLE.sub(value, transformer["InputTemplate"])
    assert len(transformer["InputTemplate"]) <= 8192 and len(paths) <= 100  # EventBridge's limits
    return dict(json.loads(text))


MESSAGE_CASES = [c for c in CASES if c[2]]


@pytest.mark.parametrize(("case", "evt", "expected"), MESSAGE_CASES, ids=[c[0] for c in MESSAGE_CASES])
def test_messages_render_from_the_documented_events(
    rules: dict[Notification, dict[str, Any]], case: str, evt: dict[str, Any], expected: set[Notification]
) -> None:
    """Every variable's path exists in the event (a missing one is not created) and the message is JSON."""
    (kind,) = expected
    (target,) = rules[kind]["Targets"]
    message = render_message(target["InputTransformer"], evt)
    assert message["alert"].startswith("[ml-platform dev] ")
    assert (message["account"], message["region"], message["time"]) == (ACCOUNT, REGION, evt["time"])


def _rendered(
    rules: Mapping[Notification, Mapping[str, Any]], kind: Notification, evt: Mapping[str, Any]
) -> dict[str, Any]:
    return render_message(rules[kind]["Targets"][0]["InputTransformer"], evt)


def test_failed_job_messages_name_the_job_status_and_reason(
    rules: dict[Notification, dict[str, Any]],
) -> None:
    failed = event(
        TRAINING_SAMPLE,
        RoleArn=EXEC_ROLE,
        TrainingJobStatus="Failed",
        SecondaryStatus="Failed",
        FailureReason=SCRIPT_FAILURE,
    )
    message = _rendered(rules, Notification.TRAINING_JOB_FAILED, failed)
    assert message == {
        "alert": "[ml-platform dev] SageMaker training job failed",
        "job": "89c96cc8-dded-4739-afcc-6f1dc936701d",
        "status": "Failed",
        "secondaryStatus": "Failed",
        "reason": SCRIPT_FAILURE,  # quotes and line breaks survive: the value is inserted as JSON
        "arn": "arn:aws:sagemaker:us-east-1:111122223333:training-job/kmeans-1",
        "account": ACCOUNT,
        "region": REGION,
        "time": "2018-10-06T12:26:13Z",
        "console": f"https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/jobs",
    }
    processing = _rendered(
        rules, Notification.PROCESSING_JOB_FAILED, event(PROCESSING_SAMPLE, RoleArn=EXEC_ROLE)
    )
    assert processing["job"] == PROCESSING_SAMPLE["detail"]["ProcessingJobName"]
    assert processing["reason"] == "InternalServerError: We encountered an internal error.  Please try again."
    assert processing["arn"] == PROCESSING_SAMPLE["detail"]["ProcessingJobArn"]
    assert processing["console"].endswith("#/processing-jobs")
    monitoring = _rendered(
        rules, Notification.MONITORING_JOB_FAILED, event(PROCESSING_SAMPLE, RoleArn=MONITOR_ROLE)
    )
    assert monitoring["alert"] == "[ml-platform dev] Model Monitor job failed"
    assert monitoring["reason"] == processing["reason"]
    exit_message = "CompletedWithViolations: Job completed successfully with 3 violations."
    violations = _rendered(
        rules,
        Notification.MONITORING_VIOLATIONS,
        event(
            PROCESSING_SAMPLE,
            RoleArn=MONITOR_ROLE,
            ProcessingJobStatus="Completed",
            FailureReason=None,
            ExitMessage=exit_message,
        ),
    )
    assert violations["alert"] == "[ml-platform dev] Model Monitor found violations"
    assert (violations["violations"], violations["status"]) == (exit_message, "Completed")


def test_stopped_job_messages_need_no_reason(rules: dict[Notification, dict[str, Any]]) -> None:
    """Stopped jobs carry no FailureReason: their templates must not ask for it (it would be missing)."""
    for kind in (
        Notification.TRAINING_JOB_STOPPED,
        Notification.PROCESSING_JOB_STOPPED,
        Notification.MONITORING_JOB_STOPPED,
    ):
        assert not any(
            "FailureReason" in p
            for p in rules[kind]["Targets"][0]["InputTransformer"]["InputPathsMap"].values()
        )
    stopped = event(
        TRAINING_SAMPLE, RoleArn=EXEC_ROLE, TrainingJobStatus="Stopped", SecondaryStatus="MaxWaitTimeExceeded"
    )
    message = _rendered(rules, Notification.TRAINING_JOB_STOPPED, stopped)
    assert (message["status"], message["secondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")


def test_tuning_pipeline_and_package_messages(rules: dict[Notification, dict[str, Any]]) -> None:
    tuning = _rendered(rules, Notification.TUNING_JOB_FAILED_OR_STOPPED, tuning_event("Failed"))
    assert tuning["job"] == "016bffd3-6d71-4d3a-9710-0a332b2759fc" and tuning["status"] == "Failed"
    assert tuning["trainingJobs"]["NonRetryableError"] == 0 and tuning["objectives"]["Succeeded"] == 1
    assert tuning["console"].endswith("#/hyper-tuning-jobs")

    failed = event(
        PIPELINE_SAMPLE, pipelineArn=pipeline_arn(PIPELINES[0]), currentPipelineExecutionStatus="Failed"
    )
    pipeline = _rendered(rules, Notification.PIPELINE_EXECUTION_FAILED, failed)
    assert pipeline["pipeline"] == pipeline_arn(PIPELINES[0])
    assert pipeline["execution"] == PIPELINE_SAMPLE["detail"]["pipelineExecutionArn"]
    assert pipeline["status"] == "Failed" and "list-pipeline-execution-steps" in pipeline["next"]

    approved = event(
        MODEL_PACKAGE_SAMPLE,
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        UpdatedModelPackageFields=["ModelApprovalStatus"],
    )
    package = _rendered(rules, Notification.MODEL_APPROVAL_CHANGED, approved)
    assert (package["modelPackageGroup"], package["version"], package["approvalStatus"]) == (
        GROUP,
        2,
        "Approved",
    )
    assert package["arn"] == MODEL_PACKAGE_SAMPLE["detail"]["ModelPackageArn"]
    registered = event(
        MODEL_PACKAGE_SAMPLE,
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        UpdatedModelPackageFields=None,
    )
    new = _rendered(rules, Notification.MODEL_PACKAGE_REGISTERED, registered)
    assert new["approvalStatus"] == "PendingManualApproval" and "update-model-package" in new["next"]


def test_message_rendering_fails_on_a_missing_field(rules: dict[Notification, dict[str, Any]]) -> None:
    """The check above can fail: a failed training event without its FailureReason is caught."""
    no_reason = event(TRAINING_SAMPLE, RoleArn=EXEC_ROLE, TrainingJobStatus="Failed", FailureReason=None)
    with pytest.raises(KeyError, match="FailureReason"):
        _rendered(rules, Notification.TRAINING_JOB_FAILED, no_reason)


def test_no_label_no_prefix(bare_stack: Stack) -> None:
    rules = rendered_rules(bare_stack, make(bare_stack, label=None))
    failed = event(PROCESSING_SAMPLE, RoleArn=EXEC_ROLE)
    assert (
        _rendered(rules, Notification.PROCESSING_JOB_FAILED, failed)["alert"]
        == "SageMaker processing job failed"
    )


# ---- props ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"job_role_arns": []}, r"job_role_arns: got no role; allowed: at least one IAM role ARN"),
        ({"job_role_arns": "arn:aws:iam::123456789012:role/X"}, r"job_role_arns: got the string"),
        ({"job_role_arns": ["MyRole"]}, r"job_role_arns: got 'MyRole'; allowed: IAM role ARNs"),
        (
            {"job_role_arns": [EXEC_ROLE, EXEC_ROLE.replace("Training", "training")]},
            r"more than once",
        ),
        ({"monitoring_role_arns": [EXEC_ROLE]}, r"monitoring_role_arns: got .*also in job_role_arns"),
        ({"pipeline_names": []}, r"pipeline_names: got none; allowed: at least one"),
        (
            {"pipeline_names": ["bad_name"]},
            r"pipeline_names: got 'bad_name'; allowed: SageMaker pipeline names",
        ),
        ({"pipeline_names": ["p", "P"]}, r"pipeline_names: got \['P', 'p'\] more than once"),
        ({"model_package_group_name": "-group"}, r"model_package_group_name: got '-group'"),
        ({"label": "a <b>"}, r"label: got 'a <b>'; allowed: 1-64 characters without '<', '>'"),
        ({"label": "x" * 65}, r"label: got 'x{65}'"),
    ],
)
def test_bad_props_are_refused(bare_stack: Stack, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make(bare_stack, **overrides)


# ---- policy gates and cfn-lint -----------------------------------------------------------------


def test_cdk_nag_and_cfn_lint_clean(tmp_path: Path) -> None:
    app = App(context=feature_flags(), outdir=str(tmp_path))
    add_policy_gates(app)
    stack = Stack(app, "NotificationsStack")
    make(stack)
    assembly = app.synth()  # a cdk-nag finding raises here
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    template = assembly.get_stack_by_name("NotificationsStack").template
    matches_ = lint(json.dumps(template), config=ManualArgs(regions=LINT_REGIONS))
    assert [str(m) for m in matches_] == []
