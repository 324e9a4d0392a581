"""SageMaker Pipelines as CloudFormation: the pipeline construct and builders for its steps.

CloudFormation has no resource for a processing, training, tuning or transform job; they are
steps of an ``AWS::SageMaker::Pipeline``. Each step's ``Arguments`` is exactly the request of
the matching SageMaker API (``CreateProcessingJob``, ``CreateTrainingJob``,
``CreateHyperParameterTuningJob``, ``CreateModelPackage``), written here as Python dicts. The
definition is serialized with ``Stack.to_json_string`` so CDK tokens (bucket names, role and
key ARNs, image URIs) resolve at deploy time. The job names are filled in by SageMaker
Pipelines. Values known only at run time are pipeline expressions (:func:`param`,
:func:`join`, :func:`step_property`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jsii
from aws_cdk import Aspects, IAspect, Names, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IConstruct

SCHEMA_VERSION = "2020-12-01"
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
ParameterType = Literal["String", "Integer", "Boolean", "Float"]
Json = Any

# Local paths inside processing containers (every LocalPath must be under /opt/ml/processing/).
PROCESSING_ROOT = "/opt/ml/processing"
PROCESSING_CODE_DIR = f"{PROCESSING_ROOT}/code"
# Unpacks the code bundle and runs one script with the ContainerArguments ("$@"), the way the
# SageMaker SDK's FrameworkProcessor runs a source directory in a framework image.
PROCESSING_ENTRYPOINT_TEMPLATE = (
    "set -euo pipefail; mkdir -p /opt/ml/code; tar -xzf {code_dir}/{archive} -C /opt/ml/code; "
    'cd /opt/ml/code; exec python3 {script} "$@"'
)


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter; ``.ref`` is the expression that reads it at run time."""

    name: str
    type: ParameterType
    default: str | int | float | bool
    #: The only values an execution may pass (SageMaker refuses any other when the execution starts).
    enum_values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        expected: dict[str, tuple[type, ...]] = {
            "String": (str,),
            "Integer": (int,),
            "Float": (float, int),
            "Boolean": (bool,),
        }
        ok = isinstance(self.default, expected[self.type])
        if self.type in ("Integer", "Float") and isinstance(self.default, bool):
            ok = False
        if not ok:
            raise ValueError(
                f"parameter {self.name}: got default {self.default!r}; allowed: a {self.type} value"
            )
        if self.enum_values and (self.type != "String" or self.default not in self.enum_values):
            raise ValueError(
                f"parameter {self.name}: got default {self.default!r} with enum values "
                f"{list(self.enum_values)}; allowed: a String parameter whose default is one of them"
            )

    @property
    def ref(self) -> dict[str, str]:
        return param(self.name)

    def to_json(self) -> dict[str, Json]:
        spec: dict[str, Json] = {"Name": self.name, "Type": self.type, "DefaultValue": self.default}
        if self.enum_values:
            spec["EnumValues"] = list(self.enum_values)
        return spec


def param(name: str) -> dict[str, str]:
    return {"Get": f"Parameters.{name}"}


def step_property(step: str, path: str) -> dict[str, str]:
    """A property of an earlier step, e.g. ``step_property("Train", "ModelArtifacts.S3ModelArtifacts")``."""
    return {"Get": f"Steps.{step}.{path}"}


def join(on: str, *values: Json) -> dict[str, Json]:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def json_get(step: str, property_file: str, path: str) -> dict[str, Json]:
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{property_file}"},
            "Path": path,
        }
    }


def hyperparameter_value(value: Json) -> str:
    """Hyperparameters are strings; like the SageMaker SDK, JSON-encode them for the framework toolkits."""
    return json.dumps(value)


@dataclass(frozen=True)
class JobEnvironment:
    """What every job of the platform shares: the role, the stage key, the code bundle."""

    role_arn: str
    kms_key_arn: str
    code_uri: str  # s3:// URL of the sourcedir.tar.gz asset
    code_object_key: str  # its object key (file name inside the channel / processing input)


def processing_input(name: str, s3_uri: Json, local_path: str) -> dict[str, Json]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": s3_uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def processing_output(name: str, local_path: str, s3_uri: Json) -> dict[str, Json]:
    return {
        "OutputName": name,
        "AppManaged": False,
        "S3Output": {"S3Uri": s3_uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"},
    }


def processing_step(
    name: str,
    *,
    env: JobEnvironment,
    image_uri: str,
    script: str,
    arguments: Sequence[str],
    instance_type: Json,
    instance_count: Json,
    volume_size_gb: int,
    max_runtime_seconds: int,
    inputs: Sequence[dict[str, Json]],
    outputs: Sequence[dict[str, Json]],
    encrypt_volume: bool,
    property_files: Sequence[dict[str, str]] = (),
    depends_on: Sequence[str] = (),
    network_isolation: bool = True,
) -> dict[str, Json]:
    """A ``Processing`` step running ``script`` from the code bundle in a framework image.

    Inter-container traffic encryption is on and outputs use the key. Network isolation is on unless
    the script must call an AWS API (an isolated job can reach none). ``encrypt_volume`` puts the key
    on the instance volume: pass False for instance types with local instance storage, for which
    SageMaker refuses ``VolumeKmsKeyId`` (see :mod:`ml_platform.instance_types`).
    """
    command = PROCESSING_ENTRYPOINT_TEMPLATE.format(
        code_dir=PROCESSING_CODE_DIR, archive=env.code_object_key, script=script
    )
    step: dict[str, Json] = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": image_uri,
                "ContainerEntrypoint": ["/bin/bash", "-c", command, script],
                # The API refuses an empty list: omit the key when the script takes no arguments.
                **({"ContainerArguments": list(arguments)} if arguments else {}),
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceType": instance_type,
                    "InstanceCount": instance_count,
                    "VolumeSizeInGB": volume_size_gb,
                    **({"VolumeKmsKeyId": env.kms_key_arn} if encrypt_volume else {}),
                }
            },
            "ProcessingInputs": [processing_input("code", env.code_uri, PROCESSING_CODE_DIR), *inputs],
            **(
                {"ProcessingOutputConfig": {"Outputs": list(outputs), "KmsKeyId": env.kms_key_arn}}
                if outputs
                else {}
            ),
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
            "NetworkConfig": {
                "EnableNetworkIsolation": network_isolation,
                "EnableInterContainerTrafficEncryption": True,
            },
            "RoleArn": env.role_arn,
        },
    }
    if property_files:
        step["PropertyFiles"] = list(property_files)
    if depends_on:
        step["DependsOn"] = list(depends_on)
    return step


@dataclass(frozen=True)
class SpotSettings:
    """Managed spot training: spot on/off, waiting budget and where checkpoints go."""

    enabled: bool
    max_wait_seconds: Json  # int or a pipeline expression
    checkpoint_s3_uri: Json | None  # must end in '/'; unique per execution (and step)


def training_job(
    *,
    env: JobEnvironment,
    image_uri: str,
    entry_point: str,
    hyperparameters: Mapping[str, Json],
    channels: Mapping[str, Json],
    output_path: Json,
    instance_type: Json,
    instance_count: Json,
    volume_size_gb: int,
    max_runtime_seconds: Json,
    spot: SpotSettings,
    retry_attempts: int,
    metric_definitions: Sequence[Mapping[str, str]],
    distributed: bool,
    region: str,
    encrypt_volume: bool,
) -> dict[str, Json]:
    """A ``CreateTrainingJob`` request for a script-mode framework container (PyTorch DLC).

    Network isolation is on, so the code bundle travels as the ``code`` input channel and
    ``sagemaker_submit_directory`` points at its local copy (as the SageMaker SDK does).
    ``distributed`` turns on the torchrun launcher (``sagemaker_torch_distributed_enabled``).
    Inter-container traffic encryption is always on: the instance count may be a run-time
    parameter, and encryption must hold whenever it is above one. ``encrypt_volume`` puts the key on
    the instance volumes: pass False for instance types with local instance storage (SageMaker refuses
    ``VolumeKmsKeyId`` for them; their NVMe store is encrypted by the instance's hardware).
    """
    if spot.enabled and spot.checkpoint_s3_uri is None:
        raise ValueError(
            "spot.checkpoint_s3_uri: got None; allowed: an s3:// URI ending in '/' when spot is on"
        )
    code_channel = "code"
    if code_channel in channels:
        raise ValueError(f"channels: got {sorted(channels)}; allowed: any names but '{code_channel}'")
    framework_hyperparameters = {
        "sagemaker_program": entry_point,
        "sagemaker_submit_directory": f"/opt/ml/input/data/{code_channel}/{env.code_object_key}",
        "sagemaker_region": region,
        "sagemaker_container_log_level": 20,
    }
    if distributed:
        framework_hyperparameters["sagemaker_torch_distributed_enabled"] = True
    all_hyperparameters = {
        key: hyperparameter_value(value)
        for key, value in {**framework_hyperparameters, **hyperparameters}.items()
    }
    stopping: dict[str, Json] = {"MaxRuntimeInSeconds": max_runtime_seconds}
    if spot.enabled:
        stopping["MaxWaitTimeInSeconds"] = spot.max_wait_seconds
    request: dict[str, Json] = {
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(m) for m in metric_definitions],
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": all_hyperparameters,
        "RoleArn": env.role_arn,
        "InputDataConfig": [
            *(_channel(name, uri, "text/csv") for name, uri in channels.items()),
            _channel(code_channel, env.code_uri, "application/x-tar", prefix=False),
        ],
        "OutputDataConfig": {"S3OutputPath": output_path, "KmsKeyId": env.kms_key_arn},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": volume_size_gb,
            **({"VolumeKmsKeyId": env.kms_key_arn} if encrypt_volume else {}),
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot.enabled,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "RetryStrategy": {"MaximumRetryAttempts": retry_attempts},
    }
    if spot.checkpoint_s3_uri is not None:
        request["CheckpointConfig"] = {"S3Uri": spot.checkpoint_s3_uri, "LocalPath": "/opt/ml/checkpoints"}
    return request


def _channel(name: str, s3_uri: Json, content_type: str, *, prefix: bool = True) -> dict[str, Json]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": s3_uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "ContentType": content_type,
        "CompressionType": "None",
        "InputMode": "File",
        **({"RecordWrapperType": "None"} if prefix else {}),
    }


def training_step(name: str, request: dict[str, Json], *, retry_policies: bool = True) -> dict[str, Json]:
    step: dict[str, Json] = {"Name": name, "Type": "Training", "Arguments": request}
    if retry_policies:
        step["RetryPolicies"] = CAPACITY_RETRY_POLICIES
    return step


# Pipeline-level retries of a step whose job failed to get capacity or hit a service error.
CAPACITY_RETRY_POLICIES = [
    {
        "ExceptionType": [
            "SageMaker.CAPACITY_ERROR",
            "SageMaker.RESOURCE_LIMIT",
            "SageMaker.JOB_INTERNAL_ERROR",
        ],
        "IntervalSeconds": 60,
        "BackoffRate": 2.0,
        "MaxAttempts": 3,
    }
]


@dataclass(frozen=True)
class ContinuousRange:
    name: str
    min: float
    max: float
    scaling: str


@dataclass(frozen=True)
class IntegerRange:
    name: str
    min: int
    max: int
    scaling: str


def tuning_step(
    name: str,
    *,
    training_request: Mapping[str, Json],
    tuned: Sequence[ContinuousRange | IntegerRange],
    strategy: str,
    objective_metric: str,
    objective_type: str,
    max_jobs: int,
    max_parallel_jobs: int,
    early_stopping: str,
) -> dict[str, Json]:
    """A ``Tuning`` step; its training job definition is ``training_request`` minus the tuned ones.

    Spot, checkpoints, retry, network isolation and encryption carry over unchanged into the definition.
    """
    tuned_names = {r.name for r in tuned}
    static = {k: v for k, v in training_request["HyperParameters"].items() if k not in tuned_names}
    algorithm = {
        k: v
        for k, v in training_request["AlgorithmSpecification"].items()
        if k in ("TrainingImage", "TrainingInputMode", "MetricDefinitions")
    }
    definition_keys = (
        "RoleArn",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "EnableManagedSpotTraining",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "CheckpointConfig",
        "RetryStrategy",
    )
    definition = {k: training_request[k] for k in definition_keys if k in training_request}
    definition.update({"StaticHyperParameters": static, "AlgorithmSpecification": algorithm})
    ranges: dict[str, list[dict[str, str]]] = {"ContinuousParameterRanges": [], "IntegerParameterRanges": []}
    for r in tuned:
        kind = "ContinuousParameterRanges" if isinstance(r, ContinuousRange) else "IntegerParameterRanges"
        ranges[kind].append(
            {"Name": r.name, "MinValue": str(r.min), "MaxValue": str(r.max), "ScalingType": r.scaling}
        )
    return {
        "Name": name,
        "Type": "Tuning",
        "Arguments": {
            "HyperParameterTuningJobConfig": {
                "Strategy": strategy,
                "HyperParameterTuningJobObjective": {"Type": objective_type, "MetricName": objective_metric},
                "ResourceLimits": {
                    "MaxNumberOfTrainingJobs": max_jobs,
                    "MaxParallelTrainingJobs": max_parallel_jobs,
                },
                "ParameterRanges": ranges,
                "TrainingJobEarlyStoppingType": early_stopping,
            },
            "TrainingJobDefinition": definition,
        },
        "RetryPolicies": CAPACITY_RETRY_POLICIES,
    }


def register_model_step(
    name: str,
    *,
    model_package_group_name: str,
    description: str,
    image_uri: str,
    model_data_url: Json,
    metrics_s3_uri: Json,
    inference_instance_types: Sequence[str],
    transform_instance_types: Sequence[str],
    environment: Mapping[str, str],
    customer_metadata: Mapping[str, Json] | None = None,
) -> dict[str, Json]:
    """A ``RegisterModel`` step: ``CreateModelPackage``, ``PendingManualApproval``, with its metrics."""
    request: dict[str, Json] = {
        "ModelPackageGroupName": model_package_group_name,
        "ModelPackageDescription": description,
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [
                {"Image": image_uri, "ModelDataUrl": model_data_url, "Environment": dict(environment)}
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": list(inference_instance_types),
            "SupportedTransformInstanceTypes": list(transform_instance_types),
        },
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_s3_uri}}
        },
    }
    if customer_metadata:
        request["CustomerMetadataProperties"] = dict(customer_metadata)
    return {"Name": name, "Type": "RegisterModel", "Arguments": request}


def condition_step(
    name: str,
    *,
    conditions: Sequence[dict[str, Json]],
    if_steps: Sequence[dict[str, Json]],
    else_steps: Sequence[dict[str, Json]],
    depends_on: Sequence[str] = (),
) -> dict[str, Json]:
    step: dict[str, Json] = {
        "Name": name,
        "Type": "Condition",
        "Arguments": {
            "Conditions": list(conditions),
            "IfSteps": list(if_steps),
            "ElseSteps": list(else_steps),
        },
    }
    if depends_on:
        step["DependsOn"] = list(depends_on)
    return step


def fail_step(name: str, message: Json) -> dict[str, Json]:
    return {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}}


class SageMakerPipeline(Construct):
    """An ``AWS::SageMaker::Pipeline`` from parameters and steps; ``self.definition`` is the unresolved dict.

    The pipeline name is derived from the construct path (CloudFormation requires one); it is unique per
    stage and stack and never hand-written.

    SageMaker Experiments integration is off (no ``PipelineExperimentConfig``, which is how the SDK's
    ``pipeline_experiment_config=None`` renders): with it, every execution creates an experiment, a
    trial and a trial component per job, which needs Create/Associate/Update permissions on experiment
    entities with run-time names, and those entities outlive the pipeline (deleting it leaves them
    behind). What the platform compares runs by is already recorded elsewhere: each model package holds
    its evaluation metrics, the tuning job ranks its trials, and job metrics go to CloudWatch.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        description: str,
        role: iam.IRole,
        parameters: Sequence[Parameter],
        steps: Sequence[dict[str, Json]],
    ) -> None:
        super().__init__(scope, id_)
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"parameters: got duplicate names in {names}; allowed: unique names")
        self.definition: dict[str, Json] = {
            "Version": SCHEMA_VERSION,
            "Metadata": {},
            "Parameters": [p.to_json() for p in parameters],
            # No PipelineExperimentConfig: SageMaker Experiments integration is off (see the class doc).
            "Steps": list(steps),
        }
        self.pipeline_name = Names.unique_resource_name(self, max_length=80, separator="-")
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=self.pipeline_name,
            pipeline_description=description,
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": Stack.of(self).to_json_string(self.definition)},
        )
        # The role's grants, including policies added after this point, must be in place before SageMaker
        # validates the definition: an aspect adds the dependency at synthesis, when all grants exist.
        Aspects.of(self).add(_DependOnRolePolicies(self.pipeline, role))


@jsii.implements(IAspect)
class _DependOnRolePolicies:
    """Makes ``resource`` depend on every IAM policy inside ``role``'s construct subtree."""

    def __init__(self, resource: sagemaker.CfnPipeline, role: iam.IRole) -> None:
        self._resource = resource
        self._role = role

    def visit(self, node: IConstruct) -> None:
        if node is not self._resource:
            return
        for child in self._role.node.find_all():
            if isinstance(child, iam.CfnPolicy):
                self._resource.node.add_dependency(child)


@dataclass(frozen=True)
class ParameterCheck:
    """A rule on run-time parameter values that SageMaker would otherwise only enforce mid-execution.

    The rule is broken when every condition in ``violation`` holds; the execution then fails at its
    start with ``message`` (which names the parameters and their values).
    """

    name: str
    violation: Sequence[dict[str, Json]]
    message: Json


def parameter_check_steps(checks: Sequence[ParameterCheck]) -> list[dict[str, Json]]:
    """One condition step per check: a Fail step when it is violated, nothing otherwise.

    Make the pipeline's first real step depend on all of them (``[s["Name"] for s in ...]``).
    """
    return [
        condition_step(
            f"Check{check.name}",
            conditions=list(check.violation),
            if_steps=[fail_step(f"Invalid{check.name}", check.message)],
            else_steps=[],
        )
        for check in checks
    ]
