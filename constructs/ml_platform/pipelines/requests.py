"""Builders of the SageMaker API requests the pipeline steps send (typed: :mod:`.shapes`).

Each builder returns exactly the request of one API (``CreateProcessingJob``, ``CreateTrainingJob``,
``CreateHyperParameterTuningJob``, ``CreateModelPackage``, ``CreateModel``, ``CreateTransformJob``)
without the job or model name, which SageMaker Pipelines fills in. Platform-wide choices live here
once: network isolation, inter-container encryption, the stage key on outputs (and on volumes where the
instance type allows it), the code bundle as an input, retry strategies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ml_platform.instance_types import has_instance_storage
from ml_platform.pipelines.expressions import Json
from ml_platform.pipelines.shapes import (
    AlgorithmSpecification,
    AppSpecification,
    Channel,
    CreateHyperParameterTuningJobRequest,
    CreateModelInput,
    CreateModelPackageInput,
    CreateProcessingJobRequest,
    CreateTrainingJobRequest,
    CreateTransformJobRequest,
    DriftCheckBaselines,
    EarlyStoppingType,
    HyperParameterAlgorithmSpecification,
    HyperParameterTrainingJobDefinition,
    MetricDefinition,
    ModelMetrics,
    ModelPackageContainerDefinition,
    ObjectiveType,
    ParameterRange,
    ParameterRanges,
    ProcessingClusterConfig,
    ProcessingInput,
    ProcessingOutput,
    ResourceConfig,
    ScalingType,
    StoppingCondition,
    Tag,
    TransformResources,
    TuningStrategy,
)
from ml_platform.service_model import members

# Local paths inside processing containers (every LocalPath must be under /opt/ml/processing/).
PROCESSING_ROOT = "/opt/ml/processing"
PROCESSING_CODE_DIR = f"{PROCESSING_ROOT}/code"
# Unpacks the code bundle and runs one script with the ContainerArguments ("$@"), the way the
# SageMaker SDK's FrameworkProcessor runs a source directory in a framework image.
PROCESSING_ENTRYPOINT_TEMPLATE = (
    "set -euo pipefail; mkdir -p /opt/ml/code; tar -xzf {code_dir}/{archive} -C /opt/ml/code; "
    'cd /opt/ml/code; exec python3 {script} "$@"'
)
CODE_CHANNEL = "code"


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
    #: Tags of every job (cost allocation: SageMaker Pipelines does not copy a pipeline's tags to its jobs).
    tags: tuple[tuple[str, str], ...] = ()


def processing_input(name: str, s3_uri: Json, local_path: str) -> ProcessingInput:
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


def processing_output(name: str, local_path: str, s3_uri: Json) -> ProcessingOutput:
    return {
        "OutputName": name,
        "AppManaged": False,
        "S3Output": {"S3Uri": s3_uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"},
    }


def _processing_cluster(
    env: JobEnvironment, instance_type: Json, instance_count: Json, volume_size_gb: int, encrypt_volume: bool
) -> ProcessingClusterConfig:
    """The cluster of a processing job; the stage key on its volume unless ``encrypt_volume`` is False
    (instance types with local instance storage, for which SageMaker refuses ``VolumeKmsKeyId``)."""
    cluster: ProcessingClusterConfig = {
        "InstanceType": instance_type,
        "InstanceCount": instance_count,
        "VolumeSizeInGB": volume_size_gb,
    }
    if encrypt_volume:
        cluster["VolumeKmsKeyId"] = env.kms_key_arn
    return cluster


def processing_job(
    *,
    env: JobEnvironment,
    image_uri: str,
    script: str,
    arguments: Sequence[Json],
    instance_type: Json,
    instance_count: Json,
    volume_size_gb: int,
    max_runtime_seconds: int,
    inputs: Sequence[ProcessingInput],
    outputs: Sequence[ProcessingOutput],
    encrypt_volume: bool,
    network_isolation: bool = True,
) -> CreateProcessingJobRequest:
    """A ``CreateProcessingJob`` request running ``script`` from the code bundle in a framework image.

    Inter-container traffic encryption is on and outputs use the key. Network isolation is on unless
    the script must call an AWS API (an isolated job can reach none). ``encrypt_volume`` puts the key
    on the instance volume: pass False for instance types with local instance storage, for which
    SageMaker refuses ``VolumeKmsKeyId`` (see :mod:`ml_platform.instance_types`).
    """
    command = PROCESSING_ENTRYPOINT_TEMPLATE.format(
        code_dir=PROCESSING_CODE_DIR, archive=env.code_object_key, script=script
    )
    app: AppSpecification = {
        "ImageUri": image_uri,
        "ContainerEntrypoint": ["/bin/bash", "-c", command, script],
    }
    if arguments:  # the API refuses an empty list: omit the key when the script takes no arguments
        app["ContainerArguments"] = list(arguments)
    cluster = _processing_cluster(env, instance_type, instance_count, volume_size_gb, encrypt_volume)
    request: CreateProcessingJobRequest = {
        "AppSpecification": app,
        "ProcessingResources": {"ClusterConfig": cluster},
        "ProcessingInputs": [processing_input(CODE_CHANNEL, env.code_uri, PROCESSING_CODE_DIR), *inputs],
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "NetworkConfig": {
            "EnableNetworkIsolation": network_isolation,
            "EnableInterContainerTrafficEncryption": True,
        },
        "RoleArn": env.role_arn,
    }
    if outputs:  # a job that writes nothing to S3 has no output config
        request["ProcessingOutputConfig"] = {"Outputs": list(outputs), "KmsKeyId": env.kms_key_arn}
    if env.tags:
        request["Tags"] = tag_list(dict(env.tags))
    return request


# SageMaker Model Monitor's analyzer (QualityCheck steps), as the SageMaker SDK's QualityCheckStep runs it:
# the baseline dataset is a *directory* input, the results land in the output folder.
DATA_QUALITY_INPUT = "baseline_dataset_input"
DATA_QUALITY_INPUT_DIR = f"{PROCESSING_ROOT}/input/{DATA_QUALITY_INPUT}"
DATA_QUALITY_OUTPUT = "quality_check_output"
DATA_QUALITY_OUTPUT_DIR = f"{PROCESSING_ROOT}/output"
#: The files a baselining run writes into its output (the SDK's STATISTICS_JSON_DEFAULT_FILE_NAME and
#: CONSTRAINTS_JSON_DEFAULT_FILE_NAME): what the monitoring job definitions read.
BASELINE_STATISTICS_FILE = "statistics.json"
BASELINE_CONSTRAINTS_FILE = "constraints.json"


def _analyzer_job(
    *,
    env: JobEnvironment,
    image_uri: str,
    dataset_uri: Json,
    output_uri: Json,
    instance_type: Json,
    instance_count: Json,
    volume_size_gb: int,
    max_runtime_seconds: int,
    encrypt_volume: bool,
    header: bool,
    extra_environment: Mapping[str, str],
) -> CreateProcessingJobRequest:
    """Model Monitor's analyzer on a CSV baseline dataset folder (shared by the data- and model-quality
    baselining jobs; ``extra_environment`` is what a model-quality run adds)."""
    dataset_format = {"csv": {"header": header, "output_columns_position": "START"}}
    cluster = _processing_cluster(env, instance_type, instance_count, volume_size_gb, encrypt_volume)
    environment: dict[str, Json] = {
        "dataset_format": json.dumps(dataset_format),
        "dataset_source": DATA_QUALITY_INPUT_DIR,
        "output_path": DATA_QUALITY_OUTPUT_DIR,
        "publish_cloudwatch_metrics": "Disabled",
        **extra_environment,
    }
    request: CreateProcessingJobRequest = {
        "AppSpecification": {"ImageUri": image_uri},
        "ProcessingResources": {"ClusterConfig": cluster},
        "ProcessingInputs": [processing_input(DATA_QUALITY_INPUT, dataset_uri, DATA_QUALITY_INPUT_DIR)],
        "ProcessingOutputConfig": {
            "Outputs": [processing_output(DATA_QUALITY_OUTPUT, DATA_QUALITY_OUTPUT_DIR, output_uri)],
            "KmsKeyId": env.kms_key_arn,
        },
        "Environment": environment,
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
        "RoleArn": env.role_arn,
    }
    if env.tags:
        request["Tags"] = tag_list(dict(env.tags))
    return request


def data_quality_baseline_job(
    *,
    env: JobEnvironment,
    image_uri: str,
    dataset_uri: Json,
    output_uri: Json,
    instance_type: Json,
    instance_count: Json,
    volume_size_gb: int,
    max_runtime_seconds: int,
    encrypt_volume: bool,
    header: bool = True,
) -> CreateProcessingJobRequest:
    """A ``CreateProcessingJob`` request running Model Monitor's analyzer on a CSV baseline dataset.

    The request is what the SageMaker SDK's ``QualityCheckStep`` (``DataQualityCheckConfig``) writes, plus
    the platform's choices: network isolation (the analyzer reads its input folder and writes its output
    folder, it calls no AWS API), inter-container encryption, the stage key on the output (and the volume
    unless ``encrypt_volume`` is False: instance storage), a stopping condition and the jobs' tags.
    ``publish_cloudwatch_metrics`` is Disabled as in the SDK: metrics are for monitoring schedules.
    ``dataset_uri`` is a folder (``S3Prefix``): the analyzer reads ``dataset_source`` as a directory.
    """
    return _analyzer_job(
        env=env,
        image_uri=image_uri,
        dataset_uri=dataset_uri,
        output_uri=output_uri,
        instance_type=instance_type,
        instance_count=instance_count,
        volume_size_gb=volume_size_gb,
        max_runtime_seconds=max_runtime_seconds,
        encrypt_volume=encrypt_volume,
        header=header,
        extra_environment={},
    )


#: ``problem_type`` values of Model Monitor's model-quality analysis (``ModelQualityAppSpecification``).
MODEL_QUALITY_PROBLEM_TYPES = ("BinaryClassification", "MulticlassClassification", "Regression")


@dataclass(frozen=True)
class ModelQualityAttributes:
    """Where the analyzer finds each value in a model-quality baseline dataset (CSV with a header: the
    column names). ``probability`` and ``probability_threshold`` are for binary classification only (the
    threshold turns the positive-class probability into the predicted 1/0); None leaves them out."""

    problem_type: str
    inference: str
    ground_truth: str
    probability: str | None = None
    probability_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.problem_type not in MODEL_QUALITY_PROBLEM_TYPES:
            raise ValueError(
                f"problem_type: got {self.problem_type!r}; allowed: {', '.join(MODEL_QUALITY_PROBLEM_TYPES)}"
            )
        binary = self.problem_type == "BinaryClassification"
        if (self.probability is not None or self.probability_threshold is not None) and not binary:
            raise ValueError(
                f"probability: got {self.probability!r} (threshold {self.probability_threshold!r}) for "
                f"{self.problem_type}; allowed: only for BinaryClassification"
            )
        if (self.probability is None) != (self.probability_threshold is None):
            raise ValueError(
                f"probability_threshold: got {self.probability_threshold!r} with probability "
                f"{self.probability!r}; allowed: both or neither"
            )
        if self.probability_threshold is not None and not 0.0 < self.probability_threshold < 1.0:
            raise ValueError(f"probability_threshold: got {self.probability_threshold!r}; allowed: in (0, 1)")
        names = [n for n in (self.inference, self.ground_truth, self.probability) if n is not None]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"attributes: got {names}; allowed: distinct, non-empty column names")

    def environment(self) -> dict[str, str]:
        """The analyzer's environment (the SDK's ``ModelQualityCheckConfig``; every value a string)."""
        env = {
            "analysis_type": "MODEL_QUALITY",
            "problem_type": self.problem_type,
            "inference_attribute": self.inference,
            "ground_truth_attribute": self.ground_truth,
        }
        if self.probability is not None:
            env["probability_attribute"] = self.probability
            env["probability_threshold_attribute"] = str(self.probability_threshold)
        return env


def model_quality_baseline_job(
    *,
    env: JobEnvironment,
    image_uri: str,
    dataset_uri: Json,
    output_uri: Json,
    attributes: ModelQualityAttributes,
    instance_type: Json,
    instance_count: Json,
    volume_size_gb: int,
    max_runtime_seconds: int,
    encrypt_volume: bool,
) -> CreateProcessingJobRequest:
    """A ``CreateProcessingJob`` request running Model Monitor's analyzer in model-quality mode: the
    SDK's ``QualityCheckStep`` with ``ModelQualityCheckConfig`` (``analysis_type`` MODEL_QUALITY, the
    problem type and the columns of the prediction, probability and ground truth), with the platform's
    choices as in :func:`data_quality_baseline_job` (isolation, encryption, key, stopping condition,
    tags). ``dataset_uri`` is the folder of a CSV with a header row naming those columns."""
    return _analyzer_job(
        env=env,
        image_uri=image_uri,
        dataset_uri=dataset_uri,
        output_uri=output_uri,
        instance_type=instance_type,
        instance_count=instance_count,
        volume_size_gb=volume_size_gb,
        max_runtime_seconds=max_runtime_seconds,
        encrypt_volume=encrypt_volume,
        header=True,
        extra_environment=attributes.environment(),
    )


# SageMaker Clarify's processing container (ClarifyCheck steps), as the SageMaker SDK's
# SageMakerClarifyProcessor mounts it: the analysis configuration, the dataset, the result folder.
CLARIFY_CONFIG_INPUT = "analysis_config"
CLARIFY_CONFIG_DIR = f"{PROCESSING_ROOT}/input/config"
CLARIFY_DATASET_INPUT = "dataset"
CLARIFY_DATASET_DIR = f"{PROCESSING_ROOT}/input/data"
CLARIFY_OUTPUT = "analysis_result"
CLARIFY_OUTPUT_DIR = f"{PROCESSING_ROOT}/output"
#: What a Clarify run writes into its output (the bias metrics or the SHAP values): the "constraints" of a
#: Clarify baseline (the SDK's ``ClarifyBaseliningJob.suggested_constraints`` reads it).
CLARIFY_ANALYSIS_FILE = "analysis.json"


def clarify_job(
    *,
    env: JobEnvironment,
    image_uri: str,
    config_uri: Json,
    dataset_uri: Json,
    output_uri: Json,
    instance_type: Json,
    instance_count: Json,
    volume_size_gb: int,
    max_runtime_seconds: int,
    encrypt_volume: bool,
    network_isolation: bool,
) -> CreateProcessingJobRequest:
    """A ``CreateProcessingJob`` request running SageMaker Clarify: the SDK's ``ClarifyCheckStep`` job
    (inputs ``analysis_config`` and ``dataset``, output ``analysis_result``, ``EndOfJob`` upload) plus the
    platform's choices: the stage key on the output (and the volume unless ``encrypt_volume`` is False),
    inter-container encryption, a stopping condition, the jobs' tags.

    ``network_isolation`` must be False for a run that asks the model (post-training bias, SHAP): Clarify
    then starts a shadow endpoint of the model and calls the SageMaker API and runtime, which an isolated
    job cannot reach (Developer Guide, "Configure Clarify processing jobs for Amazon VPC"). A run on the
    dataset alone (pre-training bias) is isolated.
    """
    cluster = _processing_cluster(env, instance_type, instance_count, volume_size_gb, encrypt_volume)
    request: CreateProcessingJobRequest = {
        "AppSpecification": {"ImageUri": image_uri},
        "ProcessingResources": {"ClusterConfig": cluster},
        "ProcessingInputs": [
            processing_input(CLARIFY_CONFIG_INPUT, config_uri, CLARIFY_CONFIG_DIR),
            processing_input(CLARIFY_DATASET_INPUT, dataset_uri, CLARIFY_DATASET_DIR),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [processing_output(CLARIFY_OUTPUT, CLARIFY_OUTPUT_DIR, output_uri)],
            "KmsKeyId": env.kms_key_arn,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "NetworkConfig": {
            "EnableNetworkIsolation": network_isolation,
            "EnableInterContainerTrafficEncryption": True,
        },
        "RoleArn": env.role_arn,
    }
    if env.tags:
        request["Tags"] = tag_list(dict(env.tags))
    return request


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
    metric_definitions: Sequence[MetricDefinition],
    distributed: bool,
    region: str,
    encrypt_volume: bool,
) -> CreateTrainingJobRequest:
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
    if CODE_CHANNEL in channels:
        raise ValueError(f"channels: got {sorted(channels)}; allowed: any names but '{CODE_CHANNEL}'")
    framework_hyperparameters: dict[str, Json] = {
        "sagemaker_program": entry_point,
        "sagemaker_submit_directory": f"/opt/ml/input/data/{CODE_CHANNEL}/{env.code_object_key}",
        "sagemaker_region": region,
        "sagemaker_container_log_level": 20,
    }
    if distributed:
        framework_hyperparameters["sagemaker_torch_distributed_enabled"] = True
    all_hyperparameters = {
        key: hyperparameter_value(value)
        for key, value in {**framework_hyperparameters, **hyperparameters}.items()
    }
    stopping: StoppingCondition = {"MaxRuntimeInSeconds": max_runtime_seconds}
    if spot.enabled:
        stopping["MaxWaitTimeInSeconds"] = spot.max_wait_seconds
    resources: ResourceConfig = {
        "InstanceType": instance_type,
        "InstanceCount": instance_count,
        "VolumeSizeInGB": volume_size_gb,
    }
    if encrypt_volume:
        resources["VolumeKmsKeyId"] = env.kms_key_arn
    algorithm: AlgorithmSpecification = {
        "TrainingImage": image_uri,
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": m["Name"], "Regex": m["Regex"]} for m in metric_definitions],
        "EnableSageMakerMetricsTimeSeries": True,
    }
    request: CreateTrainingJobRequest = {
        "AlgorithmSpecification": algorithm,
        "HyperParameters": all_hyperparameters,
        "RoleArn": env.role_arn,
        "InputDataConfig": [
            *(_channel(name, uri, "text/csv") for name, uri in channels.items()),
            _channel(CODE_CHANNEL, env.code_uri, "application/x-tar", prefix=False),
        ],
        "OutputDataConfig": {"S3OutputPath": output_path, "KmsKeyId": env.kms_key_arn},
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot.enabled,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "RetryStrategy": {"MaximumRetryAttempts": retry_attempts},
    }
    if spot.checkpoint_s3_uri is not None:
        request["CheckpointConfig"] = {"S3Uri": spot.checkpoint_s3_uri, "LocalPath": "/opt/ml/checkpoints"}
    if env.tags:
        request["Tags"] = tag_list(dict(env.tags))
    return request


def _channel(name: str, s3_uri: Json, content_type: str, *, prefix: bool = True) -> Channel:
    channel: Channel = {
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
    }
    if prefix:
        channel["RecordWrapperType"] = "None"
    return channel


@dataclass(frozen=True)
class ContinuousRange:
    name: str
    min: float
    max: float
    scaling: ScalingType


@dataclass(frozen=True)
class IntegerRange:
    name: str
    min: int
    max: int
    scaling: ScalingType


# CreateTrainingJob members a tuning job's training definition carries under another name, and those it
# does not take at all (with the reason). Every other member is copied as is; an unknown one is refused,
# so a member added to the training job can never silently stay out of tuning.
RENAMED_FOR_TUNING = {"HyperParameters": "StaticHyperParameters"}
NOT_IN_TUNING: dict[tuple[str, ...], str] = {
    ("AlgorithmSpecification", "EnableSageMakerMetricsTimeSeries"): (
        "tuning jobs always publish the objective metric; "
        "HyperParameterAlgorithmSpecification has no such member"
    ),
}


def tuning_definition(
    training: CreateTrainingJobRequest, tuned_names: Sequence[str]
) -> HyperParameterTrainingJobDefinition:
    """The training job definition of a tuning job, built from the training job request itself.

    Every member of ``training`` is carried over (``HyperParameters`` as ``StaticHyperParameters``, minus
    the tuned ones); the members listed in :data:`NOT_IN_TUNING` are dropped for their stated reason;
    anything else that ``HyperParameterTrainingJobDefinition`` (or its algorithm specification) has no
    member for raises, naming it. Spot, checkpoints, retries, isolation and encryption therefore reach
    every trial by construction.
    """
    definition_members = members("HyperParameterTrainingJobDefinition")
    algorithm_members = members("HyperParameterAlgorithmSpecification")
    definition: dict[str, Json] = {}
    for key, value in training.items():
        if key == "Tags":  # on the tuning job itself, which adds them to every trial it launches
            continue
        target = RENAMED_FOR_TUNING.get(key, key)
        if target not in definition_members:
            raise ValueError(
                f"training request member {key!r}: not a member of HyperParameterTrainingJobDefinition; "
                "allowed: map it in RENAMED_FOR_TUNING or drop it with a reason in NOT_IN_TUNING"
            )
        definition[target] = value
    static = {k: v for k, v in training.get("HyperParameters", {}).items() if k not in tuned_names}
    definition["StaticHyperParameters"] = static
    algorithm: dict[str, Json] = {}
    for key, value in training["AlgorithmSpecification"].items():
        if ("AlgorithmSpecification", key) in NOT_IN_TUNING:
            continue
        if key not in algorithm_members:
            raise ValueError(
                f"AlgorithmSpecification member {key!r}: not a member of "
                "HyperParameterAlgorithmSpecification; allowed: drop it with a reason in NOT_IN_TUNING"
            )
        algorithm[key] = value
    definition["AlgorithmSpecification"] = HyperParameterAlgorithmSpecification(**algorithm)  # type: ignore[typeddict-item]
    return HyperParameterTrainingJobDefinition(**definition)  # type: ignore[typeddict-item]


def tuning_job(
    *,
    training_request: CreateTrainingJobRequest,
    tuned: Sequence[ContinuousRange | IntegerRange],
    strategy: TuningStrategy,
    objective_metric: str,
    objective_type: ObjectiveType,
    max_jobs: int,
    max_parallel_jobs: int,
    early_stopping: EarlyStoppingType,
) -> CreateHyperParameterTuningJobRequest:
    """A ``CreateHyperParameterTuningJob`` request whose trials are ``training_request`` (see above)."""
    continuous: list[ParameterRange] = []
    integer: list[ParameterRange] = []
    for r in tuned:
        item: ParameterRange = {
            "Name": r.name,
            "MinValue": str(r.min),
            "MaxValue": str(r.max),
            "ScalingType": r.scaling,
        }
        (continuous if isinstance(r, ContinuousRange) else integer).append(item)
    ranges: ParameterRanges = {"ContinuousParameterRanges": continuous, "IntegerParameterRanges": integer}
    request: CreateHyperParameterTuningJobRequest = {
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
        "TrainingJobDefinition": tuning_definition(training_request, [r.name for r in tuned]),
    }
    if "Tags" in training_request:  # "also added to all training jobs that the tuning job launches"
        request["Tags"] = training_request["Tags"]
    return request


#: What the serving container takes and answers (the registered package declares it; batch transform and
#: Clarify read text/csv, the endpoint's default answer is application/json).
CONTENT_TYPES = ("text/csv", "application/json")
RESPONSE_TYPES = ("application/json", "text/csv")


def model_package(
    *,
    model_package_group_name: str,
    description: str,
    image_uri: Json,
    model_data_url: Json,
    model_metrics: ModelMetrics,
    inference_instance_types: Sequence[str],
    transform_instance_types: Sequence[str],
    content_types: Sequence[str] = CONTENT_TYPES,
    response_types: Sequence[str] = RESPONSE_TYPES,
    environment: Mapping[str, str] | None = None,
    customer_metadata: Mapping[str, Json] | None = None,
    drift_check_baselines: DriftCheckBaselines | None = None,
) -> CreateModelPackageInput:
    """A ``CreateModelPackage`` request: ``PendingManualApproval``, with its model metrics.

    ``model_metrics`` describe the model (the baselines the run computed for it); ``environment`` is
    omitted when empty: the platform's serving container needs none.
    ``drift_check_baselines`` are the baselines Model Monitor compares the served model's traffic with
    (the check steps' outputs); the monitoring stack reads them from the package it serves.
    """
    container: ModelPackageContainerDefinition = {"Image": image_uri, "ModelDataUrl": model_data_url}
    if environment:
        container["Environment"] = dict(environment)
    request: CreateModelPackageInput = {
        "ModelPackageGroupName": model_package_group_name,
        "ModelPackageDescription": description,
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [container],
            "SupportedContentTypes": list(content_types),
            "SupportedResponseMIMETypes": list(response_types),
            "SupportedRealtimeInferenceInstanceTypes": list(inference_instance_types),
            "SupportedTransformInstanceTypes": list(transform_instance_types),
        },
        "ModelMetrics": model_metrics,
    }
    if customer_metadata:
        request["CustomerMetadataProperties"] = dict(customer_metadata)
    if drift_check_baselines:
        request["DriftCheckBaselines"] = drift_check_baselines
    return request


def tag_list(tags: Mapping[str, str]) -> list[Tag]:
    """``{"k": "v"}`` as the API's ``[{"Key": "k", "Value": "v"}]``, sorted by key (stable definitions)."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def model_from_package(
    *, model_package: Json, role_arn: Json, tags: Mapping[str, str] | None = None
) -> CreateModelInput:
    """A ``CreateModel`` request serving a registered model package, with network isolation.

    The package's inference specification supplies the image and the artifact, so neither is named here
    (SageMaker reads them with ``DescribeModelPackage`` and checks the role can get the artifact). With
    network isolation the container can call no AWS API and reach no network: it only serves.
    """
    request: CreateModelInput = {
        "PrimaryContainer": {"ModelPackageName": model_package},
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": True,
    }
    if tags:
        request["Tags"] = tag_list(tags)
    return request


def model_from_artifacts(
    *,
    image_uri: Json,
    model_data_url: Json,
    role_arn: Json,
    network_isolation: bool = True,
    tags: Mapping[str, str] | None = None,
) -> CreateModelInput:
    """A ``CreateModel`` request serving ``model_data_url`` (a ``model.tar.gz``) with ``image_uri``: what a
    run trained, before any package exists (a package's model is :func:`model_from_package`).

    Network isolation is on unless the caller documents why not: Clarify's shadow endpoint (post-training
    bias and SHAP of a check step) cannot reach a model whose network isolation is on.
    """
    request: CreateModelInput = {
        "PrimaryContainer": {"Image": image_uri, "ModelDataUrl": model_data_url},
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": network_isolation,
    }
    if tags:
        request["Tags"] = tag_list(tags)
    return request


def prefix_uri_problem(what: str, uri: Json) -> str | None:
    """Why ``uri`` is not a safe ``s3://`` prefix (ending in '/', no empty key segment), or None.

    A literal string is checked as it is; a ``Std:Join`` on '/' is checked on its parts: the last one
    must be "" (the trailing '/'), no other literal part may be empty or start or end with '/' (each
    would give '//' in the key, which SageMaker's downloads refuse). A step property (``Get`` of
    ``Steps.*``) is trusted: it is a prefix a step declared. Anything else (a bare parameter) is refused,
    since no run-time check can see what a run passes.
    """
    if isinstance(uri, str):
        key = uri.removeprefix("s3://")
        if not uri.startswith("s3://") or "/" not in key or not uri.endswith("/") or "//" in key:
            return f"{what}: got {uri!r}; allowed: an s3:// prefix ending in '/' without '//'"
        return None
    if isinstance(uri, dict) and set(uri) == {"Get"} and str(uri["Get"]).startswith("Steps."):
        return None
    join = uri.get("Std:Join") if isinstance(uri, dict) and set(uri) == {"Std:Join"} else None
    if not isinstance(join, dict) or join.get("On") != "/" or not join.get("Values"):
        return f"{what}: got {uri!r}; allowed: an s3:// string or a '/'-join of parts, ending in '/'"
    values = join["Values"]
    first = values[0]
    if values[-1] != "" or len(values) < 3 or not (isinstance(first, str) and first.startswith("s3://")):
        return f"{what}: got {uri!r}; allowed: a '/'-join from 's3://<bucket>' to a last part '' (the '/')"
    for part in values[1:-1]:
        if isinstance(part, str) and (not part or part[0] == "/" or part[-1] == "/"):
            return (
                f"{what}: part {part!r} of {uri!r} would put '//' in the key; "
                "allowed: non-empty parts without '/' at either end"
            )
    return None


def transform_job(
    *,
    model_name: Json,
    input_uri: Json,
    output_uri: Json,
    kms_key_arn: Json,
    instance_type: Json,
    instance_count: Json,
    encrypt_volume: bool | None = None,
    content_type: str = "text/csv",
    accept: str = "text/csv",
    max_payload_mb: int = 6,
    max_concurrent_transforms: int | None = None,
    join_input: bool = True,
    environment: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> CreateTransformJobRequest:
    """A ``CreateTransformJob`` request scoring every line of the files under ``input_uri``.

    Records are lines (``SplitType`` Line); ``MultiRecord`` packs as many as fit into ``max_payload_mb``
    per request, and the answers are assembled line by line (``AssembleWith`` Line) into
    ``<output_uri><input file>.out``, encrypted with the key. With ``join_input`` each output line is the
    input record followed by the model's answer (``DataProcessing.JoinSource`` Input).

    ``encrypt_volume``: the key on the instance volume. None derives it from a literal ``instance_type``
    (no key for instance types with local storage, which SageMaker refuses it for); True with such a type
    is refused here. For an instance type known only at run time (a parameter), pass it explicitly.
    Both URIs must be prefixes ending in '/' (:func:`prefix_uri_problem`).
    """
    for what, uri in (("input_uri", input_uri), ("output_uri", output_uri)):
        problem = prefix_uri_problem(what, uri)
        if problem:
            raise ValueError(problem)
    if not 1 <= max_payload_mb <= 100:
        raise ValueError(f"max_payload_mb: got {max_payload_mb}; allowed: 1 to 100 (CreateTransformJob)")
    if max_concurrent_transforms is not None and not (
        max_concurrent_transforms >= 1 and max_concurrent_transforms * max_payload_mb <= 100
    ):
        raise ValueError(
            f"max_concurrent_transforms: got {max_concurrent_transforms} with max_payload_mb "
            f"{max_payload_mb}; allowed: 1 or more, with max_concurrent_transforms x max_payload_mb "
            "at most 100 (MB)"
        )
    local_storage = has_instance_storage(instance_type) if isinstance(instance_type, str) else None
    if encrypt_volume is None:
        if local_storage is None:
            raise ValueError(
                f"encrypt_volume: got None with instance_type {instance_type!r}; allowed: True or False "
                "when the instance type is known only at run time"
            )
        encrypt_volume = not local_storage
    elif encrypt_volume and local_storage:
        raise ValueError(
            f"encrypt_volume: got True with instance_type {instance_type!r}, which has local instance "
            "storage; allowed: False (SageMaker refuses VolumeKmsKeyId there; the instance store is "
            "encrypted by the hardware)"
        )
    resources: TransformResources = {"InstanceType": instance_type, "InstanceCount": instance_count}
    if encrypt_volume:
        resources["VolumeKmsKeyId"] = kms_key_arn
    request: CreateTransformJobRequest = {
        "ModelName": model_name,
        "MaxPayloadInMB": max_payload_mb,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": output_uri,
            "Accept": accept,
            "AssembleWith": "Line",
            "KmsKeyId": kms_key_arn,
        },
        "TransformResources": resources,
    }
    if max_concurrent_transforms is not None:
        request["MaxConcurrentTransforms"] = max_concurrent_transforms
    if join_input:
        request["DataProcessing"] = {"JoinSource": "Input"}
    if environment:
        request["Environment"] = dict(environment)
    if tags:
        request["Tags"] = tag_list(tags)
    return request
