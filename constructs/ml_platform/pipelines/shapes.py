"""The SageMaker API request shapes the platform's pipeline steps send, as TypedDicts.

Each class mirrors the botocore shape of the same name (``SHAPES`` maps it): its keys are members of
that shape, and ``Required`` marks the members the API requires (except the job and model names
SageMaker Pipelines fills in). ``tests/constructs/test_pipeline_shapes.py`` checks both against botocore's
SageMaker model, so a misspelt or unknown member is a type error and a test failure, not a runtime
surprise. Values are :data:`Json` because any of them may be a pipeline expression.
"""

# No ``from __future__ import annotations``: TypedDict reads Required[...] from evaluated annotations.
from typing import Any, Literal, Required, TypedDict

from ml_platform.pipelines.expressions import Json

ScalingType = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]
TuningStrategy = Literal["Bayesian", "Random", "Hyperband", "Grid"]
ObjectiveType = Literal["Maximize", "Minimize"]
EarlyStoppingType = Literal["Off", "Auto"]
BatchStrategy = Literal["MultiRecord", "SingleRecord"]
SplitType = Literal["None", "Line", "RecordIO", "TFRecord"]
AssemblyType = Literal["None", "Line"]
JoinSource = Literal["Input", "None"]

# ---- processing ---------------------------------------------------------------------------------


class Tag(TypedDict):
    Key: str
    Value: str


class ProcessingS3Input(TypedDict, total=False):
    S3Uri: Required[Json]
    LocalPath: str
    S3DataType: Required[Literal["ManifestFile", "S3Prefix"]]
    S3InputMode: Literal["Pipe", "File"]
    S3DataDistributionType: Literal["FullyReplicated", "ShardedByS3Key"]
    S3CompressionType: Literal["None", "Gzip"]


class ProcessingInput(TypedDict, total=False):
    InputName: Required[str]
    AppManaged: bool
    S3Input: ProcessingS3Input


class ProcessingS3Output(TypedDict, total=False):
    S3Uri: Required[Json]
    LocalPath: str
    S3UploadMode: Required[Literal["Continuous", "EndOfJob"]]


class ProcessingOutput(TypedDict, total=False):
    OutputName: Required[str]
    S3Output: ProcessingS3Output
    AppManaged: bool


class ProcessingOutputConfig(TypedDict, total=False):
    Outputs: Required[list[ProcessingOutput]]
    KmsKeyId: Json


class ProcessingClusterConfig(TypedDict, total=False):
    InstanceCount: Json
    InstanceType: Json
    VolumeSizeInGB: Required[int]
    VolumeKmsKeyId: Json


class ProcessingResources(TypedDict):
    ClusterConfig: ProcessingClusterConfig


class AppSpecification(TypedDict, total=False):
    ImageUri: Required[str]
    ContainerEntrypoint: list[str]
    ContainerArguments: list[Json]


class ProcessingStoppingCondition(TypedDict):
    MaxRuntimeInSeconds: Json


class NetworkConfig(TypedDict, total=False):
    EnableInterContainerTrafficEncryption: bool
    EnableNetworkIsolation: bool


class CreateProcessingJobRequest(TypedDict, total=False):
    ProcessingInputs: list[ProcessingInput]
    ProcessingOutputConfig: ProcessingOutputConfig
    ProcessingResources: Required[ProcessingResources]
    StoppingCondition: ProcessingStoppingCondition
    AppSpecification: Required[AppSpecification]
    Environment: dict[str, Json]
    NetworkConfig: NetworkConfig
    RoleArn: Required[str]
    Tags: list[Tag]


# ---- training -----------------------------------------------------------------------------------


class MetricDefinition(TypedDict):
    Name: str
    Regex: str


class AlgorithmSpecification(TypedDict, total=False):
    TrainingImage: str
    TrainingInputMode: Required[Literal["Pipe", "File", "FastFile"]]
    MetricDefinitions: list[MetricDefinition]
    EnableSageMakerMetricsTimeSeries: bool


class S3DataSource(TypedDict, total=False):
    S3DataType: Required[Literal["ManifestFile", "S3Prefix", "AugmentedManifestFile", "Converse"]]
    S3Uri: Required[Json]
    S3DataDistributionType: Literal["FullyReplicated", "ShardedByS3Key"]


class DataSource(TypedDict, total=False):
    S3DataSource: S3DataSource


class Channel(TypedDict, total=False):
    ChannelName: Required[str]
    DataSource: Required[DataSource]
    ContentType: str
    CompressionType: Literal["None", "Gzip"]
    RecordWrapperType: Literal["None", "RecordIO"]
    InputMode: Literal["Pipe", "File", "FastFile"]


class OutputDataConfig(TypedDict, total=False):
    KmsKeyId: Json
    S3OutputPath: Required[Json]


class ResourceConfig(TypedDict, total=False):
    InstanceType: Json
    InstanceCount: Json
    VolumeSizeInGB: int
    VolumeKmsKeyId: Json


class StoppingCondition(TypedDict, total=False):
    MaxRuntimeInSeconds: Json
    MaxWaitTimeInSeconds: Json


class CheckpointConfig(TypedDict, total=False):
    S3Uri: Required[Json]
    LocalPath: str


class RetryStrategy(TypedDict):
    MaximumRetryAttempts: int


class CreateTrainingJobRequest(TypedDict, total=False):
    HyperParameters: dict[str, str]
    AlgorithmSpecification: AlgorithmSpecification  # optional in the API (an algorithm ARN may replace it)
    RoleArn: Required[str]
    InputDataConfig: list[Channel]
    OutputDataConfig: Required[OutputDataConfig]
    ResourceConfig: ResourceConfig
    StoppingCondition: StoppingCondition
    EnableNetworkIsolation: bool
    EnableInterContainerTrafficEncryption: bool
    EnableManagedSpotTraining: bool
    CheckpointConfig: CheckpointConfig
    RetryStrategy: RetryStrategy
    Tags: list[Tag]


# ---- tuning -------------------------------------------------------------------------------------


class HyperParameterAlgorithmSpecification(TypedDict, total=False):
    TrainingImage: str
    TrainingInputMode: Required[Literal["Pipe", "File", "FastFile"]]
    MetricDefinitions: list[MetricDefinition]


class HyperParameterTrainingJobDefinition(TypedDict, total=False):
    StaticHyperParameters: dict[str, str]
    AlgorithmSpecification: Required[HyperParameterAlgorithmSpecification]
    RoleArn: Required[str]
    InputDataConfig: list[Channel]
    OutputDataConfig: Required[OutputDataConfig]
    ResourceConfig: ResourceConfig
    StoppingCondition: Required[StoppingCondition]
    EnableNetworkIsolation: bool
    EnableInterContainerTrafficEncryption: bool
    EnableManagedSpotTraining: bool
    CheckpointConfig: CheckpointConfig
    RetryStrategy: RetryStrategy


class ParameterRange(TypedDict, total=False):
    Name: Required[str]
    MinValue: Required[str]
    MaxValue: Required[str]
    ScalingType: ScalingType


class ParameterRanges(TypedDict, total=False):
    IntegerParameterRanges: list[ParameterRange]
    ContinuousParameterRanges: list[ParameterRange]


class HyperParameterTuningJobObjective(TypedDict):
    Type: ObjectiveType
    MetricName: str


class ResourceLimits(TypedDict, total=False):
    MaxNumberOfTrainingJobs: int
    MaxParallelTrainingJobs: Required[int]


class HyperParameterTuningJobConfig(TypedDict, total=False):
    Strategy: Required[TuningStrategy]
    HyperParameterTuningJobObjective: HyperParameterTuningJobObjective
    ResourceLimits: Required[ResourceLimits]
    ParameterRanges: ParameterRanges
    TrainingJobEarlyStoppingType: EarlyStoppingType


class CreateHyperParameterTuningJobRequest(TypedDict, total=False):
    HyperParameterTuningJobConfig: Required[HyperParameterTuningJobConfig]
    TrainingJobDefinition: HyperParameterTrainingJobDefinition
    Tags: list[Tag]


# ---- registry -----------------------------------------------------------------------------------


class ModelPackageContainerDefinition(TypedDict, total=False):
    Image: Json
    ModelDataUrl: Json
    Environment: dict[str, str]


class InferenceSpecification(TypedDict, total=False):
    Containers: Required[list[ModelPackageContainerDefinition]]
    SupportedTransformInstanceTypes: list[str]
    SupportedRealtimeInferenceInstanceTypes: list[str]
    SupportedContentTypes: list[str]
    SupportedResponseMIMETypes: list[str]


class MetricsSource(TypedDict):
    ContentType: str
    S3Uri: Json


class FileSource(TypedDict, total=False):
    ContentType: str
    S3Uri: Required[Json]


class ModelQuality(TypedDict, total=False):
    Statistics: MetricsSource
    Constraints: MetricsSource


class ModelDataQuality(TypedDict, total=False):
    Statistics: MetricsSource
    Constraints: MetricsSource


class Bias(TypedDict, total=False):
    Report: MetricsSource
    PreTrainingReport: MetricsSource
    PostTrainingReport: MetricsSource


class Explainability(TypedDict, total=False):
    Report: MetricsSource


class ModelMetrics(TypedDict, total=False):
    #: The baselines this run computed (the check steps' ``CalculatedBaseline*``): what the model is.
    ModelQuality: ModelQuality
    ModelDataQuality: ModelDataQuality
    Bias: Bias
    Explainability: Explainability


class DriftCheckModelDataQuality(TypedDict, total=False):
    Statistics: MetricsSource
    Constraints: MetricsSource


class DriftCheckModelQuality(TypedDict, total=False):
    Statistics: MetricsSource
    Constraints: MetricsSource


class DriftCheckBias(TypedDict, total=False):
    ConfigFile: FileSource
    PreTrainingConstraints: MetricsSource
    PostTrainingConstraints: MetricsSource


class DriftCheckExplainability(TypedDict, total=False):
    Constraints: MetricsSource
    ConfigFile: FileSource


class DriftCheckBaselines(TypedDict, total=False):
    """What Model Monitor's jobs compare the served model's traffic with (the check steps'
    ``BaselineUsedForDriftCheck*``, plus the analysis configurations of the Clarify monitors)."""

    ModelDataQuality: DriftCheckModelDataQuality
    ModelQuality: DriftCheckModelQuality
    Bias: DriftCheckBias
    Explainability: DriftCheckExplainability


class CreateModelPackageInput(TypedDict, total=False):
    ModelPackageGroupName: str
    ModelPackageDescription: str
    InferenceSpecification: InferenceSpecification
    ModelApprovalStatus: Literal["Approved", "Rejected", "PendingManualApproval"]
    CustomerMetadataProperties: dict[str, Json]
    ModelMetrics: ModelMetrics
    DriftCheckBaselines: DriftCheckBaselines


# ---- models and batch transform ------------------------------------------------------------------


class ContainerDefinition(TypedDict, total=False):
    #: An image and its artifact, or (instead of both) a model package (ARN or name), whose inference
    #: specification supplies them.
    Image: Json
    ModelDataUrl: Json
    ModelPackageName: Json
    Environment: dict[str, str]


class CreateModelInput(TypedDict, total=False):
    PrimaryContainer: ContainerDefinition
    ExecutionRoleArn: Json
    Tags: list[Tag]
    EnableNetworkIsolation: bool


class TransformS3DataSource(TypedDict):
    S3DataType: Literal["ManifestFile", "S3Prefix", "AugmentedManifestFile"]
    S3Uri: Json


class TransformDataSource(TypedDict):
    S3DataSource: TransformS3DataSource


class TransformInput(TypedDict, total=False):
    DataSource: Required[TransformDataSource]
    ContentType: str
    CompressionType: Literal["None", "Gzip"]
    SplitType: SplitType


class TransformOutput(TypedDict, total=False):
    S3OutputPath: Required[Json]
    Accept: str
    AssembleWith: AssemblyType
    KmsKeyId: Json


class TransformResources(TypedDict, total=False):
    InstanceType: Required[Json]
    InstanceCount: Required[Json]
    VolumeKmsKeyId: Json


class DataProcessing(TypedDict, total=False):
    InputFilter: str
    OutputFilter: str
    JoinSource: JoinSource


class CreateTransformJobRequest(TypedDict, total=False):
    ModelName: Required[Json]
    MaxConcurrentTransforms: int
    MaxPayloadInMB: int
    BatchStrategy: BatchStrategy
    Environment: dict[str, str]
    TransformInput: Required[TransformInput]
    TransformOutput: Required[TransformOutput]
    TransformResources: Required[TransformResources]
    DataProcessing: DataProcessing
    Tags: list[Tag]


#: Each TypedDict -> the botocore shape it mirrors (checked by the tests).
SHAPES: dict[Any, str] = {
    cls: cls.__name__
    for cls in (
        ProcessingS3Input, ProcessingInput, ProcessingS3Output, ProcessingOutput, ProcessingOutputConfig,
        ProcessingClusterConfig, ProcessingResources, AppSpecification, NetworkConfig,
        MetricDefinition, AlgorithmSpecification, S3DataSource, DataSource, Channel, OutputDataConfig,
        ResourceConfig, StoppingCondition, CheckpointConfig, RetryStrategy,
        HyperParameterAlgorithmSpecification, HyperParameterTrainingJobDefinition, ParameterRange,
        ParameterRanges, HyperParameterTuningJobObjective, ResourceLimits, HyperParameterTuningJobConfig,
        ModelPackageContainerDefinition, InferenceSpecification, MetricsSource, FileSource, ModelQuality,
        ModelDataQuality, Bias, Explainability, ModelMetrics, DriftCheckModelDataQuality,
        DriftCheckModelQuality, DriftCheckBias, DriftCheckExplainability, DriftCheckBaselines,
        Tag, ContainerDefinition, TransformS3DataSource, TransformDataSource, TransformInput,
        TransformOutput, TransformResources, DataProcessing,
    )
}  # fmt: skip
SHAPES.update(
    {
        ProcessingStoppingCondition: "ProcessingStoppingCondition",
        CreateProcessingJobRequest: "CreateProcessingJobRequest",
        CreateTrainingJobRequest: "CreateTrainingJobRequest",
        CreateHyperParameterTuningJobRequest: "CreateHyperParameterTuningJobRequest",
        CreateModelPackageInput: "CreateModelPackageInput",
        CreateModelInput: "CreateModelInput",
        CreateTransformJobRequest: "CreateTransformJobRequest",
        ParameterRange: "ContinuousParameterRange",
    }
)
