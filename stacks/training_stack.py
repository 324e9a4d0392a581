"""The training stack: execution role, code bundle, serving image, model package group, and the training,
tuning and batch-transform pipelines.

It only wires constructs: the pipeline graphs and their API requests live in
``ml_platform.model_pipelines``; this module maps the stage config onto their props and the runtime
code's contract (``training_code``) onto theirs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_platform.clarify_config import shadow_endpoint_prefix
from ml_platform.data_lake import LakeAccess, LakeExports, Zone
from ml_platform.execution_role import SageMakerExecutionRole
from ml_platform.feature_store import FeatureGroup, grant_feature_ingestion
from ml_platform.images import image_uri
from ml_platform.model_pipelines import (
    BaselineConfigs,
    BatchTransformPipeline,
    BatchTransformProps,
    DatasetProps,
    MonitoringBaselineProps,
    PipelineFoundation,
    ProcessingProps,
    RegistryProps,
    RuntimeContract,
    TrainingPipeline,
    TrainingProps,
    TuningPipeline,
    TuningProps,
)
from ml_platform.pipelines import ContinuousRange, IntegerRange, ModelQualityAttributes
from ml_platform.pipelines.shapes import MetricDefinition
from ml_platform.serving_image import ServingImage
from ml_platform.source_bundle import JsonDocument, SourceBundle
from stacks.config import GPU_FAMILIES, STAGE_IMAGES, StageConfig
from training_code import contract, ingest_features, metrics, monitoring_contract

TRAINING_CODE_DIR = Path(__file__).resolve().parents[1] / "training_code"

METRICS = metrics.METRIC_DEFINITIONS
# What the runtime code defines and the pipelines must match.
RUNTIME_CONTRACT = RuntimeContract(
    preprocess_script="preprocess.py",
    train_script="train.py",
    evaluate_script="evaluate.py",
    ingest_script="ingest_features.py",
    preprocess_outputs=contract.PREPROCESS_OUTPUTS,
    train_channels=contract.TRAINING_CHANNELS,
    test_split=contract.TEST,
    feature_records_dir=contract.RECORDS_DIR,
    preprocess_input_dir=contract.PREPROCESS_INPUT_DIR,
    preprocess_output_dir=contract.PREPROCESS_OUTPUT_DIR,
    schema_input_dir=contract.SCHEMA_INPUT_DIR,
    ingest_input_dir=contract.INGEST_INPUT_DIR,
    evaluate_model_dir=contract.EVALUATE_MODEL_DIR,
    evaluate_test_dir=contract.EVALUATE_TEST_DIR,
    evaluation_dir=contract.EVALUATION_DIR,
    metric_definitions=[
        MetricDefinition(Name=m["Name"], Regex=m["Regex"]) for m in metrics.METRIC_DEFINITIONS
    ],
    objective_metric=metrics.OBJECTIVE_METRIC,
    objective_type=metrics.OBJECTIVE_TYPE,
    evaluation_output_name=metrics.EVALUATION_OUTPUT_NAME,
    evaluation_file_name=metrics.EVALUATION_FILE_NAME,
    gate_metric_path="",  # per stage: depends on the number of classes (see TrainingStack)
    gate_metric_name=metrics.EVALUATION_GATE_METRIC,
    scoring_output=contract.SCORING,
    labeled_output=contract.LABELED,
    predictions_output=contract.PREDICTIONS_OUTPUT,
    predictions_dir=contract.PREDICTIONS_DIR,
    evaluate_scoring_dir=contract.EVALUATE_SCORING_DIR,
    data_quality_output=contract.DATA_QUALITY_OUTPUT,
    data_quality_dir=contract.DATA_QUALITY_DIR,
)
#: The images the pipelines' jobs run (the config checks the stage's region has them all).
JOB_IMAGES = STAGE_IMAGES


def clarify_shadow_instance_type(config: StageConfig) -> str:
    """The instance type of Clarify's shadow endpoints in the pipelines' checks: the first real-time type
    the registered packages declare (``registry.inference_instance_types``), so the serving image is known
    to run on it."""
    return config.registry.inference_instance_types[0]


def clarify_shadow_endpoint_prefix(stack_name: str) -> str:
    """The name prefix of the Clarify shadow endpoints (and endpoint configs) of this stack's pipelines:
    set as ``endpoint_name_prefix`` in the check steps' Clarify configs and the only endpoint names the
    execution role may create and delete. From the stage's part of the stack name (``<prefix>-<stage>``,
    distinct per stage and app copy), at most 23 characters (Clarify's limit): a name too long to fit is cut
    and made distinct by a digest (``clarify_config.shadow_endpoint_prefix``)."""
    stage_part = stack_name.rsplit("-", 1)[0]  # stack names are <prefix>-<stage>-<Role> (stacks.config)
    return shadow_endpoint_prefix(stage_part, "clarify")


def model_quality_attributes(config: StageConfig) -> ModelQualityAttributes:
    """How the model-quality analyzer reads Evaluate's ``predictions.csv`` (its header names the columns).

    Binary: the positive class's probability and the contract's threshold (which turns it into the 1/0
    the ground truth holds), as the model-quality job definition reads the endpoint's answers; multiclass:
    the predicted class name (the probability column is the predicted class's, not an input of the job).
    """
    mc = config.dataset_schema.contract
    binary = mc.problem_type == monitoring_contract.BINARY_CLASSIFICATION
    return ModelQualityAttributes(
        problem_type=mc.problem_type,
        inference=monitoring_contract.BASELINE_PREDICTION_COLUMN,
        ground_truth=monitoring_contract.BASELINE_LABEL_COLUMN,
        probability=monitoring_contract.BASELINE_PROBABILITY_COLUMN if binary else None,
        probability_threshold=mc.probability_threshold if binary else None,
    )


def model_package_group_name(stack_name: str) -> str:
    """``<stack name>-models`` in lower case: unique wherever stack names are (one account and region).

    SageMaker writes model package ARNs with the group name as given, and IAM compares ARNs case
    sensitively, so a lower-case name keeps the role's grant and every ARN form of the group identical.
    Hyphens are kept, so stages such as ``dev`` and ``de-v`` can never share a group.
    """
    name = f"{stack_name}-models".lower()
    if len(name) > 63:  # CreateModelPackageGroup's limit; keep it unique with a digest of the full name
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


class TrainingStack(Stack):
    """Role, code, serving image, registry and the three pipelines of one stage; reads and writes the data
    stack's lake.

    The serving image is built from ``training_code/`` (its Dockerfile and .dockerignore allow-list) at
    deploy time; the training and tuning pipelines register every model with it, and the batch-transform
    pipeline scores with the packages they registered.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        lake_exports: LakeExports,
        feature_group_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.lake = lake = LakeAccess.from_exports(self, "Lake", lake_exports)
        removal = RemovalPolicy.RETAIN if config.removal_policy == "retain" else RemovalPolicy.DESTROY

        self.code = SourceBundle(self, "TrainingCode", source=TRAINING_CODE_DIR)
        # The feature group's schema, for Preprocess: a file, since a container argument holds 256 characters.
        fs = config.feature_store
        schema = ingest_features.schema_argument(
            fs.record_identifier,
            fs.event_time_feature,
            [{"name": f.name, "type": f.type} for f in fs.features],
        )
        self.feature_store_schema = JsonDocument(self, "FeatureStoreSchema", document=json.loads(schema))
        self.model_package_group_name = model_package_group_name(self.stack_name)
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=self.model_package_group_name,
            model_package_group_description=f"Models of the ML platform ({config.name}), approved manually",
        )
        self.model_package_group.apply_removal_policy(removal)

        self.images = {image: image_uri(self, image) for image in JOB_IMAGES}
        self.serving_image = ServingImage(self, "ServingImage", directory=TRAINING_CODE_DIR)
        # The Clarify analysis configurations of the check steps and the registered monitoring configs.
        self.clarify_shadow_endpoint_prefix = clarify_shadow_endpoint_prefix(self.stack_name)
        self.baseline_configs = BaselineConfigs(
            self,
            "BaselineConfigs",
            props=MonitoringBaselineProps(
                clarify=config.clarify,
                model_quality=model_quality_attributes(config),
                shadow_instance_type=clarify_shadow_instance_type(config),
                shadow_endpoint_prefix=self.clarify_shadow_endpoint_prefix,
            ),
        )
        self.execution_role = SageMakerExecutionRole(
            self,
            "ExecutionRole",
            lake=lake,
            read_zones=[Zone.RAW],
            # monitoring/: the check steps write their baselines under monitoring/baselines/.
            write_zones=[Zone.PROCESSED, Zone.MODELS, Zone.CHECKPOINTS, Zone.MONITORING],
            # SageMaker mirrors checkpoints that train.py prunes: it deletes them in S3 too.
            delete_zones=[Zone.CHECKPOINTS],
            image_uris=list(self.images.values()),
            # The batch-transform model and the Clarify checks' model run as this role: they pull the
            # serving image.
            image_repositories=[self.serving_image.repository],
            model_package_groups=[self.model_package_group],
            assets=[self.code.asset, self.feature_store_schema.asset, *self.baseline_configs.assets],
            shadow_endpoint_prefix=self.clarify_shadow_endpoint_prefix,
        )
        # Each dataset version's processed features go into the data stack's feature group.
        self.feature_group_name = feature_group_name
        grant_feature_ingestion(self.execution_role.role, FeatureGroup.arn(self, feature_group_name))

        foundation = PipelineFoundation(
            lake=lake,
            role=self.execution_role.role,
            key_arn=lake.key.key_arn,
            code=self.code,
            images=self.images,
            model_package_group_name=self.model_package_group_name,
            feature_group_name=feature_group_name,
            feature_store_schema=self.feature_store_schema,
            serving_image_uri=self.serving_image.image_uri,
            tags=config.resource_tags,
        )
        props = {**self._props(config), "baselines": self.baseline_configs}
        self.training_pipeline = TrainingPipeline(self, "TrainingPipeline", foundation=foundation, **props)
        self.tuning_pipeline = TuningPipeline(
            self, "TuningPipeline", foundation=foundation, tuning=self._tuning(config), **props
        )
        self.batch_transform_pipeline = BatchTransformPipeline(
            self,
            "BatchTransformPipeline",
            foundation=foundation,
            contract=props["contract"],
            dataset=props["dataset"],
            transform=self._batch_transform(config),
        )
        CfnOutput(self, "TrainingPipelineName", value=self.training_pipeline.pipeline_name)
        CfnOutput(self, "TuningPipelineName", value=self.tuning_pipeline.pipeline_name)
        CfnOutput(self, "BatchTransformPipelineName", value=self.batch_transform_pipeline.pipeline_name)
        CfnOutput(self, "ModelPackageGroupName", value=self.model_package_group_name)
        self.pipeline_names = tuple(
            p.pipeline_name
            for p in (self.training_pipeline, self.tuning_pipeline, self.batch_transform_pipeline)
        )
        # The role every job of the pipelines runs as: the monitoring stack's notifications match job events
        # by it (an explicit export, like the lake's).
        self.execution_role_arn_export = f"{self.stack_name}:ExecutionRoleArn"
        CfnOutput(
            self,
            "ExecutionRoleArn",
            value=self.execution_role.role.role_arn,
            export_name=self.execution_role_arn_export,
        )

    @staticmethod
    def _props(config: StageConfig) -> dict[str, Any]:
        """The stage config as the pipelines' props (both pipelines share these)."""
        processing, training = config.processing, config.training
        hyperparameters: dict[str, Any] = {
            **training.hyperparameters.model_dump(),
            "checkpoint_interval_steps": training.checkpoint_interval_steps,
        }
        runtime = dataclasses.replace(
            RUNTIME_CONTRACT,
            gate_metric_path=metrics.evaluation_json_path(num_classes=config.dataset.num_classes),
        )
        return {
            "contract": runtime,
            "dataset": DatasetProps(name=config.dataset.name, version=config.dataset.version),
            "processing": ProcessingProps(
                instance_type=processing.instance_type,
                instance_count=processing.instance_count,
                volume_size_gb=processing.volume_size_gb,
                max_runtime_seconds=processing.max_runtime_seconds,
                preprocess_arguments=(
                    *("--train_ratio", str(processing.train_ratio)),
                    *("--validation_ratio", str(processing.validation_ratio)),
                    *("--test_ratio", str(processing.test_ratio)),
                    *("--seed", str(processing.seed)),
                ),
            ),
            "training": TrainingProps(
                instance_type=training.instance_type,
                instance_count=training.instance_count,
                volume_size_gb=training.volume_size_gb,
                use_spot=training.use_spot,
                checkpoints=training.checkpoints,
                max_runtime_seconds=training.max_runtime_seconds,
                max_wait_seconds=training.max_wait_seconds,
                max_retry_attempts=training.max_retry_attempts,
                accuracy_threshold=training.accuracy_threshold,
                hyperparameters=hyperparameters,
                instance_families=GPU_FAMILIES,
            ),
            "registry": RegistryProps(
                inference_instance_types=tuple(config.registry.inference_instance_types),
                transform_instance_types=tuple(config.registry.transform_instance_types),
                # What the serving container (training_code/serve.py) takes and answers.
                content_types=contract.REQUEST_CONTENT_TYPES,
                response_types=contract.RESPONSE_CONTENT_TYPES,
            ),
        }

    @staticmethod
    def _batch_transform(config: StageConfig) -> BatchTransformProps:
        """Batch transform on the first of the registry's transform instance types (what every registered
        package declares it supports), one instance; a run may pass another of those types or count."""
        types = tuple(config.registry.transform_instance_types)
        return BatchTransformProps(
            instance_type=types[0],
            instance_count=1,
            instance_types=types,
            # The serving container's body limit (and what it announces on /execution-parameters).
            max_payload_mb=contract.MAX_PAYLOAD_MB,
        )

    @staticmethod
    def _tuning(config: StageConfig) -> TuningProps:
        tuning = config.tuning
        r = tuning.ranges
        return TuningProps(
            strategy=tuning.strategy,
            max_jobs=tuning.max_jobs,
            max_parallel_jobs=tuning.max_parallel_jobs,
            early_stopping=tuning.early_stopping,
            # Integer or continuous by the hyperparameter's type in the runtime contract.
            ranges=tuple(
                (IntegerRange if contract.HYPERPARAMETERS[name].type is int else ContinuousRange)(
                    name, getattr(r, name).min, getattr(r, name).max, getattr(r, name).scaling
                )
                for name in type(r).model_fields
            ),
            # Trials share the execution's checkpoint prefix; each configuration gets its own folder.
            trial_hyperparameters={"checkpoint_namespace": "config"},
        )
