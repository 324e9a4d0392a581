"""The platform's pipelines as constructs: training (spot or on-demand), hyperparameter tuning, and batch
transform (offline scoring with an approved model package).

Each is a ``SageMakerPipeline`` construct with typed keyword props; a stack only builds the props from
its config and wires them:

* :class:`PipelineFoundation`: what every pipeline of a stage shares (lake, role, code, images, the
  serving image, registry group, feature group and its schema document);
* :class:`RuntimeContract`: what the runtime code (``training_code/``) defines and the pipelines must
  match (script names, splits, metric definitions, evaluation report layout, feature records folder);
* :class:`DatasetProps`, :class:`ProcessingProps`, :class:`TrainingProps`, :class:`TuningProps`,
  :class:`RegistryProps`, :class:`BatchTransformProps`: the stage's choices.

Graphs::

    training:        Check* -> Preprocess -> IngestFeatures
                                          -> DataBiasCheck (pre-training bias of the data)
                                          -> SpotOrOnDemand -> Train -> Evaluate -> Gate -> Checks -> Register
                                                                                          | Fail
    tuning:          Check* -> Preprocess -> IngestFeatures
                                          -> DataBiasCheck
                                          -> Tune -> EvaluateBest -> Gate -> Checks -> Register | Fail
    batch-transform: Check* -> ScoringModel (CreateModel from the package) -> BatchTransform

    Checks (per branch, only for a model that passed the gate): DataQualityCheck<branch> (Evaluate's
    data-quality dataset: the model's answers, then the inputs it was asked), ClarifyModel<branch>
    (CreateModel of the trained artifact), ModelQualityCheck<branch> (Evaluate's predictions),
    ModelBiasCheck<branch> and ModelExplainabilityCheck<branch> (Clarify with a shadow endpoint of
    ClarifyModel<branch>, named ``<shadow endpoint prefix>*``: the only endpoints the role may manage).

Every baseline lands in ``monitoring/baselines/<pipeline>/<execution>/<kind>/`` (:data:`BASELINE_FOLDERS`);
Register records them as the package's model metrics (what this run computed) and drift-check baselines
(what Model Monitor compares traffic with: the same files, or with ``RegisterNewBaselines`` false the
latest approved package's).

Models are registered with the platform's own inference container (``ServingImage``) and the artifact
the run trained, so an approved package serves without a framework container.

Run-time parameters that SageMaker would only refuse mid-run fail the execution at its start
(:func:`parameter_checks`); instance-type parameters only take types of the configured type's storage
class, so the volume-key choice made at synth fits every value (:mod:`ml_platform.instance_types`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ml_platform.clarify_config import ClarifyConfigs, config_asset
from ml_platform.data_lake import LakeAccess, Zone
from ml_platform.images import Image
from ml_platform.instance_types import api_instance_types, has_instance_storage, same_storage_class
from ml_platform.pipelines import (
    EXECUTION_ID,
    ContinuousRange,
    IntegerRange,
    JobEnvironment,
    Json,
    ModelQualityAttributes,
    Parameter,
    ParameterCheck,
    SageMakerPipeline,
    SpotSettings,
    Step,
    clarify_check_step,
    clarify_job,
    condition_step,
    data_quality_baseline_job,
    fail_step,
    join,
    json_get,
    model_from_artifacts,
    model_from_package,
    model_package,
    model_quality_baseline_job,
    model_step,
    param,
    parameter_check_steps,
    processing_input,
    processing_job,
    processing_output,
    processing_step,
    quality_check_step,
    register_model_step,
    step_property,
    training_job,
    training_step,
    transform_job,
    transform_step,
    tuning_job,
    tuning_step,
)
from ml_platform.pipelines.requests import CONTENT_TYPES, RESPONSE_TYPES
from ml_platform.pipelines.shapes import (
    CreateTrainingJobRequest,
    DriftCheckBaselines,
    EarlyStoppingType,
    MetricDefinition,
    MetricsSource,
    ModelMetrics,
    ObjectiveType,
    TuningStrategy,
)
from ml_platform.pipelines.steps import ClarifyCheckType
from ml_platform.service_model import MAX_TRAINING_SECONDS
from ml_platform.source_bundle import JsonDocument, SourceBundle

EVALUATION_PROPERTY_FILE = "EvaluationReport"
#: The pre-training bias baseline step (Clarify on Preprocess's labeled output), after Preprocess.
DATA_BIAS_STEP = "DataBiasCheck"
# Per branch (the name + the branch suffix: Spot, OnDemand, Best), inside the quality gate's if-branch.
#: The data-quality baseline step (Model Monitor's analyzer on Evaluate's data-quality dataset). Per branch,
#: because Model Monitor's data-quality job on an endpoint reads each capture as the model's output columns
#: then its input columns and matches them to the baseline's columns by position: the baseline must hold
#: the model's answers, which only exist after Evaluate.
DATA_QUALITY_STEP = "DataQualityCheck"
#: The model-quality baseline step (Model Monitor's analyzer on Evaluate's predictions).
MODEL_QUALITY_STEP = "ModelQualityCheck"
#: The post-training bias and SHAP baseline steps (Clarify with a shadow endpoint of the checked model).
MODEL_BIAS_STEP = "ModelBiasCheck"
EXPLAINABILITY_STEP = "ModelExplainabilityCheck"
#: The Model step creating the SageMaker model those two Clarify steps serve (``ModelName``).
CLARIFY_MODEL_STEP = "ClarifyModel"
#: Where baselines land: ``monitoring/baselines/<pipeline>/<execution>/<kind>/`` (issue 9).
BASELINES_FOLDER = "baselines"
DATA_QUALITY_FOLDER = "data-quality"
MODEL_QUALITY_FOLDER = "model-quality"
DATA_BIAS_FOLDER = "data-bias"
MODEL_BIAS_FOLDER = "model-bias"
EXPLAINABILITY_FOLDER = "explainability"
#: Check step (without branch suffix) -> the ``<kind>`` folder of its baseline.
BASELINE_FOLDERS = {
    DATA_QUALITY_STEP: DATA_QUALITY_FOLDER,
    MODEL_QUALITY_STEP: MODEL_QUALITY_FOLDER,
    DATA_BIAS_STEP: DATA_BIAS_FOLDER,
    MODEL_BIAS_STEP: MODEL_BIAS_FOLDER,
    EXPLAINABILITY_STEP: EXPLAINABILITY_FOLDER,
}
#: The pipeline parameters of every check step (SkipCheck, RegisterNewBaseline).
SKIP_DRIFT_CHECKS = "SkipDriftChecks"
REGISTER_NEW_BASELINES = "RegisterNewBaselines"
JSON = "application/json"


@dataclass(frozen=True)
class PipelineFoundation:
    """What every pipeline of a stage shares. Built and granted by the stack that wires them."""

    lake: LakeAccess
    role: iam.IRole
    key_arn: str
    code: SourceBundle
    images: Mapping[Image, str]
    model_package_group_name: str
    feature_group_name: str
    feature_store_schema: JsonDocument
    #: The platform's inference container (``ServingImage.image_uri``): what registered models serve with.
    serving_image_uri: str
    #: Tags of every job the pipelines start (the cost-allocation tags: the stage budget filters on them).
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def jobs(self) -> JobEnvironment:
        return JobEnvironment(
            role_arn=self.role.role_arn,
            kms_key_arn=self.key_arn,
            code_uri=self.code.s3_uri,
            code_object_key=self.code.object_key,
            tags=tuple(sorted(self.tags.items())),
        )


@dataclass(frozen=True)
class RuntimeContract:
    """What the runtime code defines and the pipeline steps must match (owned by ``training_code/``)."""

    preprocess_script: str
    train_script: str
    evaluate_script: str
    ingest_script: str
    #: Preprocess's outputs, one subfolder of ``preprocess_output_dir`` each (the feature records included).
    preprocess_outputs: tuple[str, ...]
    train_channels: tuple[str, ...]
    test_split: str
    feature_records_dir: str
    # Container paths (every processing LocalPath is under /opt/ml/processing/).
    preprocess_input_dir: str
    preprocess_output_dir: str
    schema_input_dir: str
    ingest_input_dir: str
    evaluate_model_dir: str
    evaluate_test_dir: str
    evaluation_dir: str
    metric_definitions: Sequence[MetricDefinition]
    objective_metric: str
    objective_type: ObjectiveType
    evaluation_output_name: str
    evaluation_file_name: str
    #: JSON path of the gated metric inside the evaluation report, and its name for the Fail message.
    gate_metric_path: str
    gate_metric_name: str
    #: Preprocess's output of the test split's raw feature cells (what the endpoint and batch transform
    #: receive): the batch-transform pipeline's input.
    scoring_output: str
    #: Preprocess's output of the labeled test split (header: input columns then the label; the label
    #: cells are ground-truth values): the dataset of the three Clarify check steps.
    labeled_output: str
    #: Evaluate's second output (name and container folder): the model-quality baseline dataset
    #: (``prediction,probability,label`` per test record), the ModelQualityCheck step's input.
    predictions_output: str
    predictions_dir: str
    #: Evaluate's input folder of Preprocess's ``scoring_output`` (the test split's raw feature cells, what
    #: the endpoint receives): the input columns of the data-quality baseline.
    evaluate_scoring_dir: str
    #: Evaluate's third output (name and container folder): the data-quality baseline dataset (a CSV with a
    #: header row: the model's response columns, then the input columns, as Model Monitor reads a capture),
    #: the DataQualityCheck step's input.
    data_quality_output: str
    data_quality_dir: str


@dataclass(frozen=True)
class DatasetProps:
    name: str
    version: str


@dataclass(frozen=True)
class ProcessingProps:
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    #: Arguments of the preprocessing script (split ratios, seed, ...).
    preprocess_arguments: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingProps:
    instance_type: str
    instance_count: int
    volume_size_gb: int
    use_spot: bool
    checkpoints: bool
    max_runtime_seconds: int
    max_wait_seconds: int
    max_retry_attempts: int
    accuracy_threshold: float
    #: Every hyperparameter the training script receives (``--name value``).
    hyperparameters: Mapping[str, Json]
    #: Instance-type prefixes the training image runs on (e.g. the GPU families).
    instance_families: tuple[str, ...] = ("ml.",)


@dataclass(frozen=True)
class TuningProps:
    strategy: TuningStrategy
    max_jobs: int
    max_parallel_jobs: int
    early_stopping: EarlyStoppingType
    ranges: tuple[ContinuousRange | IntegerRange, ...]
    #: Hyperparameters only the tuning job's trials receive (e.g. a per-configuration checkpoint folder).
    trial_hyperparameters: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryProps:
    inference_instance_types: tuple[str, ...]
    transform_instance_types: tuple[str, ...]
    #: What the registered model is, for its package description ("<dataset> <kind> from pipeline <name>").
    model_kind: str = "classifier"
    #: What the serving container takes and answers (its own contract; the first response type is its
    #: default).
    content_types: tuple[str, ...] = CONTENT_TYPES
    response_types: tuple[str, ...] = RESPONSE_TYPES


@dataclass(frozen=True)
class MonitoringBaselineProps:
    """What the baselines of the checks need: the Clarify analyses (from the dataset's manifest and the
    stage's ``monitoring.bias`` / ``monitoring.explainability``), how the model-quality analyzer reads
    Evaluate's predictions, the instance type of Clarify's shadow endpoint (a hosting type the serving
    image runs on) and the prefix Clarify names it (and its endpoint config) with: the execution role may
    manage only endpoints of that prefix (``SageMakerExecutionRole(shadow_endpoint_prefix=...)``), and
    Clarify's default prefix (``sm-clarify``) is no platform's, so it is always set."""

    clarify: ClarifyConfigs
    model_quality: ModelQualityAttributes
    shadow_instance_type: str
    #: ``ml_platform.clarify_config.shadow_endpoint_prefix(...)``: at most 23 characters (Clarify's limit).
    shadow_endpoint_prefix: str


class BaselineConfigs(Construct):
    """The Clarify analysis configurations as file assets (``analysis_config.json``), built once per stage.

    The three baselining configs are the ``analysis_config`` inputs of the check steps; the bias and
    explainability *monitoring* configs are what the packages register as their drift-check
    ``ConfigFile`` s. The execution role must read all of them: pass :attr:`assets` to
    :class:`~ml_platform.execution_role.SageMakerExecutionRole`.
    """

    def __init__(self, scope: Construct, id_: str, *, props: MonitoringBaselineProps) -> None:
        super().__init__(scope, id_)
        self.props = props
        clarify, shadow = props.clarify, props.shadow_instance_type
        prefix = props.shadow_endpoint_prefix
        self.data_bias = config_asset(self, "DataBias", clarify.data_bias_baselining())
        self.model_bias = config_asset(
            self, "ModelBias", clarify.model_bias_baselining(shadow, endpoint_name_prefix=prefix)
        )
        self.explainability = config_asset(
            self, "Explainability", clarify.explainability_baselining(shadow, endpoint_name_prefix=prefix)
        )
        self.bias_monitoring = config_asset(self, "BiasMonitoring", clarify.bias_monitoring())
        self.explainability_monitoring = config_asset(
            self, "ExplainabilityMonitoring", registered_explainability_config(clarify, shadow)
        )

    @property
    def assets(self) -> list[s3_assets.Asset]:
        return [
            self.data_bias,
            self.model_bias,
            self.explainability,
            self.bias_monitoring,
            self.explainability_monitoring,
        ]


def registered_explainability_config(clarify: ClarifyConfigs, shadow_instance_type: str) -> dict[str, Any]:
    """The explainability monitoring config a package registers (``DriftCheckBaselines.Explainability.
    ConfigFile``): without ``predictor.model_name`` (see ``ClarifyConfigs.explainability_monitoring``); the
    monitoring stack writes its own config naming the model its jobs use."""
    return clarify.explainability_monitoring(shadow_instance_type)


def parameter_checks(parameters: Mapping[str, Parameter]) -> list[ParameterCheck]:
    """Rules on the run-time parameters, checked before any job starts (each Fail names the values)."""
    p = {name: param(name) for name in parameters}

    def outside(name: str, low: Json, high: Json) -> dict[str, Json]:
        return {
            "Type": "Or",
            "Conditions": [
                {"Type": "LessThan", "LeftValue": p[name], "RightValue": low},
                {"Type": "GreaterThan", "LeftValue": p[name], "RightValue": high},
            ],
        }

    checks = [
        ParameterCheck(
            "DatasetVersion",
            [{"Type": "Equals", "LeftValue": p["DatasetVersion"], "RightValue": ""}],
            "DatasetVersion: got ''; allowed: a dataset version folder name under raw/<dataset>/",
        ),
        ParameterCheck(
            "AccuracyThreshold",
            [outside("AccuracyThreshold", 0.0, 1.0)],
            join("", "AccuracyThreshold: got ", p["AccuracyThreshold"], "; allowed: 0 to 1"),
        ),
    ]
    if "MaxRuntimeSeconds" not in p:
        return checks
    limit = MAX_TRAINING_SECONDS
    wait = outside("MaxWaitSeconds", p["MaxRuntimeSeconds"], limit)
    return [
        *checks,
        ParameterCheck(
            "MaxRuntimeSeconds",
            [outside("MaxRuntimeSeconds", 1, limit)],
            join("", "MaxRuntimeSeconds: got ", p["MaxRuntimeSeconds"], f"; allowed: 1 to {limit} (28 days)"),
        ),
        ParameterCheck(
            "MaxWaitSeconds",
            [{"Type": "Equals", "LeftValue": p["UseSpot"], "RightValue": True}, wait],
            join(
                "",
                "MaxWaitSeconds: got ",
                p["MaxWaitSeconds"],
                " with UseSpot true; allowed: at least MaxRuntimeSeconds (",
                p["MaxRuntimeSeconds"],
                f") and at most {limit} (the spot wait includes the run time)",
            ),
        ),
        ParameterCheck(
            "TrainingInstanceCount",
            [{"Type": "LessThan", "LeftValue": p["TrainingInstanceCount"], "RightValue": 1}],
            join("", "TrainingInstanceCount: got ", p["TrainingInstanceCount"], "; allowed: 1 or more"),
        ),
    ]


def lake_prefix(lake: LakeAccess, zone: Zone, *parts: Any) -> dict[str, Any]:
    """``s3://<lake>/<zone>/<parts...>/`` as a pipeline expression (parts may be expressions).

    A '/'-join ending in "" (so the URI ends in '/'); a literal part must be non-empty and have no '/'
    at either end, or the key would hold '//', which SageMaker's downloads refuse.
    """
    for part in parts:
        if isinstance(part, str) and (not part or part.startswith("/") or part.endswith("/")):
            raise ValueError(f"part: got {part!r}; allowed: a non-empty key segment without '/' at an end")
    return join("/", f"s3://{lake.bucket.bucket_name}", zone.value, *parts, "")


class _Steps:
    """The steps both pipelines share, for one pipeline (``name``) of one stage."""

    def __init__(
        self,
        name: str,
        *,
        foundation: PipelineFoundation,
        contract: RuntimeContract,
        dataset: DatasetProps,
        processing: ProcessingProps,
        training: TrainingProps,
        baselines: BaselineConfigs,
    ) -> None:
        self.name = name
        self.foundation = foundation
        self.contract = contract
        self.dataset = dataset
        self.processing = processing
        self.training = training
        self.baselines = baselines
        self.jobs = foundation.jobs
        self.encrypt_processing_volumes = not has_instance_storage(processing.instance_type)
        self.encrypt_training_volumes = not has_instance_storage(training.instance_type)

    # ---- locations ---------------------------------------------------------------------------------

    def uri(self, zone: Zone, *parts: Any) -> dict[str, Any]:
        """``s3://<lake>/<zone>/<parts...>/`` as a pipeline expression (parts may be expressions)."""
        return lake_prefix(self.foundation.lake, zone, *parts)

    def object_uri(self, zone: Zone, *parts: Any) -> dict[str, Any]:
        """``s3://<lake>/<zone>/<parts...>`` (an object: no trailing '/')."""
        return join("/", f"s3://{self.foundation.lake.bucket.bucket_name}", zone.value, *parts)

    def output_uri(self, step: str) -> dict[str, Any]:
        """Where a step of this execution writes: ``models/<pipeline>/<execution>/<step>/``."""
        return self.uri(Zone.MODELS, self.name, EXECUTION_ID, step)

    def checkpoint_uri(self, step: str) -> dict[str, Any]:
        """Unique per execution and step, ending in '/': a retried job resumes, another run never does."""
        return self.uri(Zone.CHECKPOINTS, self.name, EXECUTION_ID, step)

    @staticmethod
    def split_uri(split: str) -> dict[str, str]:
        return step_property("Preprocess", f"ProcessingOutputConfig.Outputs['{split}'].S3Output.S3Uri")

    # ---- parameters --------------------------------------------------------------------------------

    def parameters(self, *extra: Parameter) -> dict[str, Parameter]:
        """The parameters both pipelines take (defaults from the props), then ``extra``.

        The instance-type parameters only take types of the configured type's storage class, so a run
        can never pair an instance-store type with the volume key the steps were built with (or an
        EBS-only type without it).
        """
        processing, training = self.processing, self.training
        processing_types = same_storage_class(
            processing.instance_type, api_instance_types("ProcessingInstanceType")
        )
        training_types = same_storage_class(
            training.instance_type,
            [
                t
                for t in api_instance_types("TrainingInstanceType")
                if t.startswith(training.instance_families)
            ],
        )
        return {
            p.name: p
            for p in (
                Parameter("DatasetVersion", "String", self.dataset.version),
                Parameter(
                    "ProcessingInstanceType", "String", processing.instance_type, tuple(processing_types)
                ),
                Parameter("TrainingInstanceType", "String", training.instance_type, tuple(training_types)),
                *extra,
                Parameter("AccuracyThreshold", "Float", training.accuracy_threshold),
                # Of all five check steps. A first run has no approved package to check against: skip the
                # drift checks and make the new baselines the ones registered (SageMaker refuses false
                # without a previous baseline of the check's type).
                Parameter(SKIP_DRIFT_CHECKS, "Boolean", True),
                Parameter(REGISTER_NEW_BASELINES, "Boolean", True),
            )
        }

    # ---- steps -------------------------------------------------------------------------------------

    def head(self, p: Mapping[str, Parameter]) -> list[Step]:
        """How every pipeline starts: the parameter checks, then Preprocess (after all of them), then
        IngestFeatures (after Preprocess, in parallel with what follows it)."""
        checks = parameter_check_steps(parameter_checks(p))
        return [
            *checks,
            self.preprocess(p, [c["Name"] for c in checks]),
            self.ingest_features(p),
            self.data_bias_check(p),
        ]

    def preprocess(self, p: Mapping[str, Parameter], depends_on: list[str]) -> Step:
        processing, contract, schema = self.processing, self.contract, self.foundation.feature_store_schema
        request = processing_job(
            env=self.jobs,
            image_uri=self.foundation.images[Image.PYTORCH_TRAINING_CPU],
            script=contract.preprocess_script,
            arguments=[
                *processing.preprocess_arguments,
                *("--feature_store_schema_file", f"{contract.schema_input_dir}/{schema.object_key}"),
            ],
            instance_type=p["ProcessingInstanceType"].ref,
            instance_count=processing.instance_count,
            volume_size_gb=processing.volume_size_gb,
            max_runtime_seconds=processing.max_runtime_seconds,
            encrypt_volume=self.encrypt_processing_volumes,
            inputs=[
                processing_input(
                    "raw",
                    self.uri(Zone.RAW, self.dataset.name, p["DatasetVersion"].ref),
                    contract.preprocess_input_dir,
                ),
                processing_input("feature_store_schema", schema.s3_uri, contract.schema_input_dir),
            ],
            outputs=[
                processing_output(
                    name,
                    f"{contract.preprocess_output_dir}/{name}",
                    self.uri(Zone.PROCESSED, self.dataset.name, self.name, EXECUTION_ID, name),
                )
                for name in contract.preprocess_outputs
            ],
        )
        return processing_step("Preprocess", request, depends_on=depends_on)

    def ingest_features(self, p: Mapping[str, Parameter]) -> Step:
        """Put the dataset version's processed records into the feature group (after Preprocess).

        The only job without network isolation: it calls the Feature Store runtime API, which an isolated
        job cannot reach. It reads nothing but the records Preprocess wrote and writes no S3 output.
        """
        records = self.contract.feature_records_dir
        local_dir = self.contract.ingest_input_dir
        request = processing_job(
            env=self.jobs,
            image_uri=self.foundation.images[Image.PYTORCH_TRAINING_CPU],
            script=self.contract.ingest_script,
            arguments=[
                *("--input_dir", local_dir),
                *("--feature_group_name", self.foundation.feature_group_name),
                *("--region", Aws.REGION),
            ],
            instance_type=p["ProcessingInstanceType"].ref,
            instance_count=1,
            volume_size_gb=self.processing.volume_size_gb,
            max_runtime_seconds=self.processing.max_runtime_seconds,
            encrypt_volume=self.encrypt_processing_volumes,
            network_isolation=False,
            inputs=[processing_input(records, self.split_uri(records), local_dir)],
            outputs=[],
        )
        return processing_step("IngestFeatures", request)

    def baseline_uri(self, kind: str) -> dict[str, Any]:
        """``s3://<lake>/monitoring/baselines/<pipeline>/<execution>/<kind>``: one folder per run and
        baseline kind, written without a trailing '/' (as the SageMaker SDK does): SageMaker builds a check
        step's ``CalculatedBaseline*`` / ``BaselineUsedForDriftCheck*`` as ``<S3Uri>/<file>``, so a trailing
        '/' would register ``.../<kind>//statistics.json``, a key nothing wrote."""
        return self.object_uri(Zone.MONITORING, BASELINES_FOLDER, self.name, EXECUTION_ID, kind)

    def _check_resources(self, p: Mapping[str, Parameter]) -> dict[str, Any]:
        """Where every check job runs: one instance of the run's processing type, with the processing jobs'
        volume size, time limit and volume key."""
        return {
            "instance_type": p["ProcessingInstanceType"].ref,
            "instance_count": 1,
            "volume_size_gb": self.processing.volume_size_gb,
            "max_runtime_seconds": self.processing.max_runtime_seconds,
            "encrypt_volume": self.encrypt_processing_volumes,
        }

    def _check_fields(self, p: Mapping[str, Parameter]) -> dict[str, Any]:
        """What every check step compares with and registers: the stage's group, and the run's two
        parameters (skip the drift check; register the new baseline)."""
        return {
            "model_package_group_name": self.foundation.model_package_group_name,
            "skip_check": p[SKIP_DRIFT_CHECKS].ref,
            "register_new_baseline": p[REGISTER_NEW_BASELINES].ref,
        }

    def data_quality_check(self, p: Mapping[str, Parameter], *, suffix: str, dataset_uri: Json) -> Step:
        """Model Monitor's data-quality baseline (statistics.json, constraints.json) of Evaluate's
        data-quality dataset (``dataset_uri``, a folder): the model's answers first, then the inputs it
        was asked, as the endpoint's data-quality monitor reads each capture (``output_columns_position``
        START). In the gate's if-branch, so only a model that passed the gate gets a baseline."""
        request = data_quality_baseline_job(
            env=self.jobs,
            image_uri=self.foundation.images[Image.MODEL_MONITOR_ANALYZER],
            dataset_uri=dataset_uri,
            output_uri=self.baseline_uri(DATA_QUALITY_FOLDER),
            **self._check_resources(p),
        )
        return quality_check_step(
            f"{DATA_QUALITY_STEP}{suffix}",
            request,
            check_type="DATA_QUALITY",
            **self._check_fields(p),
        )

    def _clarify_request(
        self, p: Mapping[str, Parameter], *, config_uri: str, dataset_uri: Json, folder: str, asks_model: bool
    ) -> Any:
        """A Clarify job of this pipeline. ``asks_model``: post-training bias or SHAP, whose shadow endpoint
        the job creates and calls through the SageMaker API and runtime, so (the one documented exception
        besides IngestFeatures) its network isolation is off; a run on the dataset alone is isolated."""
        return clarify_job(
            env=self.jobs,
            image_uri=self.foundation.images[Image.CLARIFY],
            config_uri=config_uri,
            dataset_uri=dataset_uri,
            output_uri=self.baseline_uri(folder),
            **self._check_resources(p),
            network_isolation=not asks_model,
        )

    def data_bias_check(self, p: Mapping[str, Parameter]) -> Step:
        """Clarify's pre-training bias of Preprocess's labeled test split (``analysis.json``), after
        Preprocess, beside training: no model is involved, so the job is network-isolated."""
        request = self._clarify_request(
            p,
            config_uri=self.baselines.data_bias.s3_object_url,
            dataset_uri=self.split_uri(self.contract.labeled_output),
            folder=DATA_BIAS_FOLDER,
            asks_model=False,
        )
        return clarify_check_step(
            DATA_BIAS_STEP,
            request,
            check_type="DATA_BIAS",
            **self._check_fields(p),
        )

    def model_checks(
        self,
        p: Mapping[str, Parameter],
        *,
        suffix: str,
        model_data: Json,
        predictions_uri: Json,
        data_quality_uri: Json,
    ) -> list[Step]:
        """The baselines of a model that passed the gate: data quality (Evaluate's answers and inputs), the
        model Clarify serves, model quality (Evaluate's predictions), post-training bias and SHAP (Clarify
        asking that model on the labeled test split)."""
        baselines = self.baselines
        model_step_name = f"{CLARIFY_MODEL_STEP}{suffix}"
        # Network isolation off: Clarify's shadow endpoint of this model is reached over the network by the
        # Clarify job (Developer Guide, "Configure Clarify processing jobs for Amazon VPC": "The network
        # isolation option of both the SageMaker Clarify job and the model must be disabled"). The model
        # only ever serves that shadow endpoint; served models are created from packages, isolated.
        model = model_step(
            model_step_name,
            model_from_artifacts(
                image_uri=self.foundation.serving_image_uri,
                model_data_url=model_data,
                role_arn=self.foundation.role.role_arn,
                network_isolation=False,
                tags={**self.foundation.tags, "pipeline": self.name},
            ),
        )
        model_name = step_property(model_step_name, "ModelName")
        quality = quality_check_step(
            f"{MODEL_QUALITY_STEP}{suffix}",
            model_quality_baseline_job(
                env=self.jobs,
                image_uri=self.foundation.images[Image.MODEL_MONITOR_ANALYZER],
                dataset_uri=predictions_uri,
                output_uri=self.baseline_uri(MODEL_QUALITY_FOLDER),
                attributes=baselines.props.model_quality,
                **self._check_resources(p),
            ),
            check_type="MODEL_QUALITY",
            **self._check_fields(p),
        )
        labeled = self.split_uri(self.contract.labeled_output)
        model_checks: tuple[tuple[str, s3_assets.Asset, str, ClarifyCheckType], ...] = (
            (MODEL_BIAS_STEP, baselines.model_bias, MODEL_BIAS_FOLDER, "MODEL_BIAS"),
            (EXPLAINABILITY_STEP, baselines.explainability, EXPLAINABILITY_FOLDER, "MODEL_EXPLAINABILITY"),
        )
        clarify = [
            clarify_check_step(
                f"{step}{suffix}",
                self._clarify_request(
                    p, config_uri=asset.s3_object_url, dataset_uri=labeled, folder=folder, asks_model=True
                ),
                check_type=check_type,
                **self._check_fields(p),
                model_name=model_name,
            )
            for step, asset, folder, check_type in model_checks
        ]
        data_quality = self.data_quality_check(p, suffix=suffix, dataset_uri=data_quality_uri)
        return [data_quality, model, quality, *clarify]

    def model_metrics(self, suffix: str) -> ModelMetrics:
        """What the package records about the model: the baselines this run computed
        (``CalculatedBaseline*``)."""

        def calculated(step: str, kind: str = "Constraints") -> MetricsSource:
            return {"ContentType": JSON, "S3Uri": step_property(step, f"CalculatedBaseline{kind}")}

        quality, bias = f"{MODEL_QUALITY_STEP}{suffix}", f"{MODEL_BIAS_STEP}{suffix}"
        data_quality = f"{DATA_QUALITY_STEP}{suffix}"
        return {
            "ModelQuality": {
                "Statistics": calculated(quality, "Statistics"),
                "Constraints": calculated(quality),
            },
            "ModelDataQuality": {
                "Statistics": calculated(data_quality, "Statistics"),
                "Constraints": calculated(data_quality),
            },
            "Bias": {
                "PreTrainingReport": calculated(DATA_BIAS_STEP),
                "PostTrainingReport": calculated(bias),
                "Report": calculated(bias),
            },
            "Explainability": {"Report": calculated(f"{EXPLAINABILITY_STEP}{suffix}")},
        }

    def drift_check_baselines(self, suffix: str) -> DriftCheckBaselines:
        """What Model Monitor compares the package's traffic with: the baselines the checks used
        (``BaselineUsedForDriftCheck*``: this run's with RegisterNewBaselines true, otherwise the latest
        approved package's), and the bias and explainability monitoring configurations."""

        def used(step: str, kind: str = "Constraints") -> MetricsSource:
            return {"ContentType": JSON, "S3Uri": step_property(step, f"BaselineUsedForDriftCheck{kind}")}

        quality, data_quality = f"{MODEL_QUALITY_STEP}{suffix}", f"{DATA_QUALITY_STEP}{suffix}"
        bias_config = self.baselines.bias_monitoring.s3_object_url
        explainability_config = self.baselines.explainability_monitoring.s3_object_url
        return {
            "ModelDataQuality": {
                "Statistics": used(data_quality, "Statistics"),
                "Constraints": used(data_quality),
            },
            "ModelQuality": {"Statistics": used(quality, "Statistics"), "Constraints": used(quality)},
            "Bias": {
                "PreTrainingConstraints": used(DATA_BIAS_STEP),
                "PostTrainingConstraints": used(f"{MODEL_BIAS_STEP}{suffix}"),
                "ConfigFile": {"ContentType": JSON, "S3Uri": bias_config},
            },
            "Explainability": {
                "Constraints": used(f"{EXPLAINABILITY_STEP}{suffix}"),
                "ConfigFile": {"ContentType": JSON, "S3Uri": explainability_config},
            },
        }

    def training_request(
        self,
        *,
        step: str,
        instance_type: Json,
        instance_count: Json,
        max_runtime: Json,
        spot: SpotSettings,
        extra_hyperparameters: Mapping[str, Json] | None = None,
    ) -> CreateTrainingJobRequest:
        training, contract = self.training, self.contract
        return training_job(
            env=self.jobs,
            image_uri=self.foundation.images[Image.PYTORCH_TRAINING_GPU],
            entry_point=contract.train_script,
            hyperparameters={**training.hyperparameters, **(extra_hyperparameters or {})},
            channels={name: self.split_uri(name) for name in contract.train_channels},
            output_path=self.output_uri(step),
            instance_type=instance_type,
            instance_count=instance_count,
            volume_size_gb=training.volume_size_gb,
            max_runtime_seconds=max_runtime,
            spot=spot,
            retry_attempts=training.max_retry_attempts,
            metric_definitions=contract.metric_definitions,
            distributed=True,
            region=Aws.REGION,
            encrypt_volume=self.encrypt_training_volumes,
        )

    def evaluate_and_register(
        self, *, suffix: str, model_data: Json, p: Mapping[str, Parameter], registry: RegistryProps
    ) -> list[Step]:
        """Evaluate -> quality gate -> register (PendingManualApproval) or fail."""
        contract, processing = self.contract, self.processing
        evaluate = f"Evaluate{suffix}"
        request = processing_job(
            env=self.jobs,
            image_uri=self.foundation.images[Image.PYTORCH_TRAINING_CPU],
            script=contract.evaluate_script,
            arguments=[],
            instance_type=p["ProcessingInstanceType"].ref,
            instance_count=1,
            volume_size_gb=processing.volume_size_gb,
            max_runtime_seconds=processing.max_runtime_seconds,
            encrypt_volume=self.encrypt_processing_volumes,
            inputs=[
                processing_input("model", model_data, contract.evaluate_model_dir),
                processing_input(
                    contract.test_split, self.split_uri(contract.test_split), contract.evaluate_test_dir
                ),
                # The raw inputs the endpoint receives: the input columns of the data-quality dataset.
                processing_input(
                    contract.scoring_output,
                    self.split_uri(contract.scoring_output),
                    contract.evaluate_scoring_dir,
                ),
            ],
            outputs=[
                processing_output(
                    contract.evaluation_output_name,
                    contract.evaluation_dir,
                    self.output_uri(evaluate),
                ),
                # Beside (not inside) the report's folder: the model-quality check reads the whole prefix.
                processing_output(
                    contract.predictions_output,
                    contract.predictions_dir,
                    self.output_uri(f"{evaluate}-{contract.predictions_output}"),
                ),
                # Likewise its own folder: the data-quality check reads the whole prefix.
                processing_output(
                    contract.data_quality_output,
                    contract.data_quality_dir,
                    self.output_uri(f"{evaluate}-{contract.data_quality_output}"),
                ),
            ],
        )
        evaluation = processing_step(
            evaluate,
            request,
            property_files=[
                {
                    "PropertyFileName": EVALUATION_PROPERTY_FILE,
                    "OutputName": contract.evaluation_output_name,
                    "FilePath": contract.evaluation_file_name,
                }
            ],
        )
        # The report's own URI (the output URI ends in '/': joining it with "/<file>" would give "//").
        report_uri = self.object_uri(
            Zone.MODELS, self.name, EXECUTION_ID, evaluate, contract.evaluation_file_name
        )
        threshold = p["AccuracyThreshold"].ref

        def output(name: str) -> dict[str, str]:
            return step_property(evaluate, f"ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri")

        checks = self.model_checks(
            p,
            suffix=suffix,
            model_data=model_data,
            predictions_uri=output(contract.predictions_output),
            data_quality_uri=output(contract.data_quality_output),
        )
        register = register_model_step(
            f"Register{suffix}",
            model_package(
                model_package_group_name=self.foundation.model_package_group_name,
                description=f"{self.dataset.name} {registry.model_kind} from pipeline {self.name}",
                image_uri=self.foundation.serving_image_uri,
                model_data_url=model_data,
                model_metrics=self.model_metrics(suffix),
                inference_instance_types=registry.inference_instance_types,
                transform_instance_types=registry.transform_instance_types,
                content_types=registry.content_types,
                response_types=registry.response_types,
                # The evaluation report (evaluate.py's metrics of the test split, which the gate read).
                customer_metadata={
                    "dataset": self.dataset.name,
                    "pipeline": self.name,
                    "evaluation_report": report_uri,
                },
                drift_check_baselines=self.drift_check_baselines(suffix),
            ),
        )
        gate = condition_step(
            f"QualityGate{suffix}",
            conditions=[
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": json_get(evaluate, EVALUATION_PROPERTY_FILE, contract.gate_metric_path),
                    "RightValue": threshold,
                }
            ],
            if_steps=[*checks, register],
            else_steps=[
                fail_step(
                    f"BelowThreshold{suffix}",
                    join(" ", f"{contract.gate_metric_name} below the threshold", threshold),
                )
            ],
        )
        return [evaluation, gate]


class TrainingPipeline(SageMakerPipeline):
    """Preprocess, spot (or on-demand) training with checkpoints, evaluate, quality gate, register.

    Spot on/off is a run-time parameter, but SageMaker refuses ``MaxWaitTimeInSeconds`` without spot, so
    the choice is a condition step with one branch per setting.
    """

    #: The pipeline's name in the lake's layout (``processed/<dataset>/training/<execution>/...``).
    NAME = "training"

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        foundation: PipelineFoundation,
        contract: RuntimeContract,
        dataset: DatasetProps,
        processing: ProcessingProps,
        training: TrainingProps,
        registry: RegistryProps,
        baselines: BaselineConfigs,
    ) -> None:
        s = _Steps(
            self.NAME,
            foundation=foundation,
            contract=contract,
            dataset=dataset,
            processing=processing,
            training=training,
            baselines=baselines,
        )
        p = s.parameters(
            Parameter("TrainingInstanceCount", "Integer", training.instance_count),
            Parameter("UseSpot", "Boolean", training.use_spot),
            Parameter("MaxRuntimeSeconds", "Integer", training.max_runtime_seconds),
            Parameter("MaxWaitSeconds", "Integer", training.max_wait_seconds),
        )

        def branch(suffix: str, spot_on: bool) -> list[Step]:
            step = f"Train{suffix}"
            spot = SpotSettings(
                enabled=spot_on,
                max_wait_seconds=p["MaxWaitSeconds"].ref,
                checkpoint_s3_uri=s.checkpoint_uri(step) if training.checkpoints else None,
            )
            request = s.training_request(
                step=step,
                instance_type=p["TrainingInstanceType"].ref,
                instance_count=p["TrainingInstanceCount"].ref,
                max_runtime=p["MaxRuntimeSeconds"].ref,
                spot=spot,
            )
            model = step_property(step, "ModelArtifacts.S3ModelArtifacts")
            return [
                training_step(step, request),
                *s.evaluate_and_register(suffix=suffix, model_data=model, p=p, registry=registry),
            ]

        steps = [
            *s.head(p),
            condition_step(
                "SpotOrOnDemand",
                conditions=[{"Type": "Equals", "LeftValue": p["UseSpot"].ref, "RightValue": True}],
                if_steps=branch("Spot", True),
                else_steps=branch("OnDemand", False),
                depends_on=["Preprocess"],
            ),
        ]
        super().__init__(
            scope,
            id_,
            description="Preprocess, spot training with checkpoints, evaluate, quality gate, register",
            role=foundation.role,
            parameters=list(p.values()),
            steps=steps,
        )


def model_artifacts_uri(output_path: dict[str, Any], job_name: Json) -> dict[str, Any]:
    """Where SageMaker puts a training job's model: ``<S3OutputPath>/<job name>/output/model.tar.gz``.

    ``output_path`` is the ``Std:Join`` the job's ``S3OutputPath`` was built with (ending in '/').
    """
    values = output_path["Std:Join"]["Values"]
    if output_path["Std:Join"]["On"] != "/" or values[-1] != "":
        raise ValueError(f"output_path: got {output_path!r}; allowed: a '/'-join ending in '/'")
    return join("/", *values[:-1], job_name, "output", "model.tar.gz")


class TuningPipeline(SageMakerPipeline):
    """Preprocess, Bayesian tuning (spot, checkpoints), evaluate the best job's model, gate, register.

    The trials' training job definition is the training request itself (see
    :func:`ml_platform.pipelines.tuning_definition`), so spot, checkpoints and encryption reach every
    trial. Trials share the execution's checkpoint prefix; ``tuning.trial_hyperparameters`` gives each
    configuration its own folder.
    """

    #: The pipeline's name in the lake's layout (``processed/<dataset>/tuning/<execution>/...``).
    NAME = "tuning"

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        foundation: PipelineFoundation,
        contract: RuntimeContract,
        dataset: DatasetProps,
        processing: ProcessingProps,
        training: TrainingProps,
        tuning: TuningProps,
        registry: RegistryProps,
        baselines: BaselineConfigs,
    ) -> None:
        s = _Steps(
            self.NAME,
            foundation=foundation,
            contract=contract,
            dataset=dataset,
            processing=processing,
            training=training,
            baselines=baselines,
        )
        p = s.parameters()
        spot = SpotSettings(
            enabled=training.use_spot,
            max_wait_seconds=training.max_wait_seconds,
            checkpoint_s3_uri=s.checkpoint_uri("Tune") if training.checkpoints else None,
        )
        request = s.training_request(
            step="Tune",
            instance_type=p["TrainingInstanceType"].ref,
            instance_count=training.instance_count,
            max_runtime=training.max_runtime_seconds,
            spot=spot,
            extra_hyperparameters=tuning.trial_hyperparameters,
        )
        tune = tuning_step(
            "Tune",
            tuning_job(
                training_request=request,
                tuned=tuning.ranges,
                strategy=tuning.strategy,
                objective_metric=contract.objective_metric,
                objective_type=contract.objective_type,
                max_jobs=tuning.max_jobs,
                max_parallel_jobs=tuning.max_parallel_jobs,
                early_stopping=tuning.early_stopping,
            ),
        )
        best_model = model_artifacts_uri(
            s.output_uri("Tune"), step_property("Tune", "BestTrainingJob.TrainingJobName")
        )
        steps = [
            *s.head(p),
            tune,
            *s.evaluate_and_register(suffix="Best", model_data=best_model, p=p, registry=registry),
        ]
        super().__init__(
            scope,
            id_,
            description="Preprocess, Bayesian tuning (spot, checkpoints), evaluate best, gate, register",
            role=foundation.role,
            parameters=list(p.values()),
            steps=steps,
        )


@dataclass(frozen=True)
class BatchTransformProps:
    """How the batch-transform pipeline scores: instances, payloads, what a run may choose.

    ``instance_types`` are the types a run may pass (the model packages' ``SupportedTransformInstanceTypes``,
    i.e. the registry config); only those of ``instance_type``'s storage class are offered, so the
    volume-key choice made at synth fits every value. ``max_payload_mb`` bounds each request's body
    (the serving container's limit must hold it); ``max_concurrent_transforms`` None lets SageMaker ask the
    container (``GET /execution-parameters``) and otherwise send one request at a time per instance.
    """

    instance_type: str
    instance_count: int
    instance_types: tuple[str, ...]
    max_payload_mb: int = 6
    max_concurrent_transforms: int | None = None
    #: Each output line is the input record followed by the model's answer (``JoinSource`` Input).
    join_input: bool = True
    #: Environment of the serving container in the transform job (e.g. its per-request row limit).
    environment: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.instance_type not in self.instance_types:
            raise ValueError(
                f"instance_type: got {self.instance_type!r}; allowed: one of instance_types "
                f"{list(self.instance_types)} (the types the registered packages support)"
            )
        if self.instance_count < 1:
            raise ValueError(f"instance_count: got {self.instance_count}; allowed: 1 or more")


def batch_parameter_checks() -> list[ParameterCheck]:
    """Rules on the batch pipeline's run-time parameters, checked before the model is created.

    Pipeline conditions can compare values but not match patterns, so the form of the package ARN is left
    to ``CreateModel`` (which refuses a malformed one before anything runs) and the role (which allows only
    this stage's group); the input location is built by the pipeline itself (see
    :class:`BatchTransformPipeline`), so only an empty execution id, which would put '//' into it, is
    refused here. ``StartPipelineExecution`` already refuses empty strings; the empty-value checks keep
    the rule in the definition (local mode, and any future relaxation of that service check).
    """
    p = {name: param(name) for name in ("ModelPackageArn", "SourceExecutionId", "TransformInstanceCount")}
    return [
        ParameterCheck(
            "ModelPackageArn",
            [{"Type": "Equals", "LeftValue": p["ModelPackageArn"], "RightValue": ""}],
            "ModelPackageArn: got ''; allowed: the ARN of an approved model package of this stage's group "
            "(arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>)",
        ),
        ParameterCheck(
            "SourceExecutionId",
            [{"Type": "Equals", "LeftValue": p["SourceExecutionId"], "RightValue": ""}],
            "SourceExecutionId: got ''; allowed: the id of a SourcePipeline execution whose Preprocess "
            "wrote the scoring input",
        ),
        ParameterCheck(
            "TransformInstanceCount",
            [{"Type": "LessThan", "LeftValue": p["TransformInstanceCount"], "RightValue": 1}],
            join("", "TransformInstanceCount: got ", p["TransformInstanceCount"], "; allowed: 1 or more"),
        ),
    ]


class BatchTransformPipeline(SageMakerPipeline):
    """Score a processed dataset version with an approved model package; predictions land in the lake.

    Parameters (a run passes the first two):

    * ``ModelPackageArn`` (required): the package to score with, of this stage's group (the role may
      describe no other); a SageMaker model is created from it with network isolation;
    * ``SourceExecutionId`` (required) and ``SourcePipeline`` (``training`` or ``tuning``): whose
      Preprocess output to score, ``processed/<dataset>/<SourcePipeline>/<SourceExecutionId>/<scoring>/``
      (the test split's raw feature cells, one record per line). The pipeline builds this location from
      the parts, so it always lies under ``processed/``;
    * ``TransformInstanceType``, ``TransformInstanceCount``.

    Predictions go to ``processed/<dataset>/batch-transform/<execution id>/predictions/``, one
    ``<input file>.out`` per input file, encrypted with the stage key: beside the data they score (the
    processed zone), one folder per execution (re-runs never overwrite each other), and a subfolder so an
    execution can add more outputs later without mixing them into the predictions.
    """

    NAME = "batch-transform"
    MODEL_STEP = "ScoringModel"
    TRANSFORM_STEP = "BatchTransform"
    PREDICTIONS = "predictions"

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        foundation: PipelineFoundation,
        contract: RuntimeContract,
        dataset: DatasetProps,
        transform: BatchTransformProps,
        source_pipelines: Sequence[str] = (TrainingPipeline.NAME, TuningPipeline.NAME),
    ) -> None:
        if not source_pipelines:
            raise ValueError(
                "source_pipelines: got none; allowed: the names of the pipelines that preprocess"
            )
        types = same_storage_class(transform.instance_type, transform.instance_types)
        p = {
            q.name: q
            for q in (
                Parameter("ModelPackageArn", "String", None),
                Parameter("SourcePipeline", "String", source_pipelines[0], tuple(source_pipelines)),
                Parameter("SourceExecutionId", "String", None),
                Parameter("TransformInstanceType", "String", transform.instance_type, tuple(types)),
                Parameter("TransformInstanceCount", "Integer", transform.instance_count),
            )
        }
        checks = parameter_check_steps(batch_parameter_checks())
        # The stage's job tags (foundation.tags, cost allocation), plus which pipeline made the model and job.
        tags = {**foundation.tags, "pipeline": self.NAME}
        model = model_step(
            self.MODEL_STEP,
            model_from_package(
                model_package=p["ModelPackageArn"].ref, role_arn=foundation.role.role_arn, tags=tags
            ),
            depends_on=[c["Name"] for c in checks],
        )
        lake = foundation.lake
        request = transform_job(
            model_name=step_property(self.MODEL_STEP, "ModelName"),
            input_uri=lake_prefix(
                lake,
                Zone.PROCESSED,
                dataset.name,
                p["SourcePipeline"].ref,
                p["SourceExecutionId"].ref,
                contract.scoring_output,
            ),
            output_uri=lake_prefix(
                lake, Zone.PROCESSED, dataset.name, self.NAME, EXECUTION_ID, self.PREDICTIONS
            ),
            kms_key_arn=foundation.key_arn,
            instance_type=p["TransformInstanceType"].ref,
            instance_count=p["TransformInstanceCount"].ref,
            encrypt_volume=not has_instance_storage(transform.instance_type),
            max_payload_mb=transform.max_payload_mb,
            max_concurrent_transforms=transform.max_concurrent_transforms,
            join_input=transform.join_input,
            environment=transform.environment,
            tags=tags,
        )
        super().__init__(
            scope,
            id_,
            description="Score a processed dataset version with an approved model package (batch transform)",
            role=foundation.role,
            parameters=list(p.values()),
            steps=[*checks, model, transform_step(self.TRANSFORM_STEP, request)],
        )
