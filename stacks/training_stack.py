"""The training stack: execution role, code bundle, model package group, training and tuning pipelines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_platform.data_lake import LakeAccess, LakeExports, Zone
from ml_platform.execution_role import SageMakerExecutionRole
from ml_platform.feature_store import FeatureGroup, grant_feature_ingestion
from ml_platform.images import Image, image_uri
from ml_platform.instance_types import api_instance_types, has_instance_storage, same_storage_class
from ml_platform.pipelines import (
    EXECUTION_ID,
    PROCESSING_ROOT,
    ContinuousRange,
    IntegerRange,
    JobEnvironment,
    Parameter,
    ParameterCheck,
    SageMakerPipeline,
    SpotSettings,
    condition_step,
    fail_step,
    join,
    json_get,
    param,
    parameter_check_steps,
    processing_input,
    processing_output,
    processing_step,
    register_model_step,
    step_property,
    training_job,
    training_step,
    tuning_step,
)
from ml_platform.source_bundle import JsonDocument, SourceBundle
from stacks.config import GPU_FAMILIES, MAX_TRAINING_SECONDS, StageConfig
from training_code import ingest_features, metrics

TRAINING_CODE_DIR = Path(__file__).resolve().parents[1] / "training_code"
# The processing outputs of the preprocessing step (train.py reads the first two as channels).
SPLITS = ("train", "validation", "test", "baseline")
EVALUATION_PROPERTY_FILE = "EvaluationReport"
# Where Preprocess finds the feature group's schema (outside its raw input, which must hold only the dataset).
SCHEMA_INPUT_DIR = "/opt/ml/processing/schema"
INFERENCE_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
}


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
    """Role, code, registry and the two pipelines of one stage; reads and writes the data stack's lake."""

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
        self.feature_store_schema = JsonDocument(
            self, "FeatureStoreSchema", document=json.loads(self._feature_store_schema())
        )
        self.model_package_group_name = model_package_group_name(self.stack_name)
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=self.model_package_group_name,
            model_package_group_description=f"Models of the ML platform ({config.name}), approved manually",
        )
        self.model_package_group.apply_removal_policy(removal)

        self.images = {image: image_uri(self, image) for image in Image}
        self.execution_role = SageMakerExecutionRole(
            self,
            "ExecutionRole",
            lake=lake,
            read_zones=[Zone.RAW],
            write_zones=[Zone.PROCESSED, Zone.MODELS, Zone.CHECKPOINTS],
            # SageMaker mirrors checkpoints that train.py prunes: it deletes them in S3 too.
            delete_zones=[Zone.CHECKPOINTS],
            image_uris=list(self.images.values()),
            model_package_group_names=[self.model_package_group_name],
            asset_bucket_arn=self.code.asset.bucket.bucket_arn,
            asset_object_keys=[self.code.object_key, self.feature_store_schema.object_key],
        )
        self.execution_role.role.node.add_dependency(self.model_package_group)
        # Each dataset version's processed features go into the data stack's feature group.
        self.feature_group_name = feature_group_name
        grant_feature_ingestion(self.execution_role.role, FeatureGroup.arn(self, feature_group_name))
        self.jobs = JobEnvironment(
            role_arn=self.execution_role.role.role_arn,
            kms_key_arn=lake.key.key_arn,
            code_uri=self.code.s3_uri,
            code_object_key=self.code.object_key,
        )
        self.training_pipeline = self._training_pipeline()
        self.tuning_pipeline = self._tuning_pipeline()
        CfnOutput(self, "TrainingPipelineName", value=self.training_pipeline.pipeline_name)
        CfnOutput(self, "TuningPipelineName", value=self.tuning_pipeline.pipeline_name)
        CfnOutput(self, "ModelPackageGroupName", value=self.model_package_group_name)

    # ---- shared pieces ---------------------------------------------------------------------------

    def _uri(self, zone: Zone, *parts: Any) -> dict[str, Any]:
        """``s3://<lake>/<zone>/<parts...>/`` as a pipeline expression (parts may be expressions)."""
        return join("/", f"s3://{self.lake.bucket.bucket_name}", zone.value, *parts, "")

    def _object_uri(self, zone: Zone, *parts: Any) -> dict[str, Any]:
        """``s3://<lake>/<zone>/<parts...>`` (an object: no trailing '/')."""
        return join("/", f"s3://{self.lake.bucket.bucket_name}", zone.value, *parts)

    def _preprocess(
        self, pipeline: str, dataset_version: Any, instance_type: Any, depends_on: list[str]
    ) -> dict[str, Any]:
        cfg = self.config.processing
        dataset = self.config.dataset
        return processing_step(
            "Preprocess",
            env=self.jobs,
            image_uri=self.images[Image.PYTORCH_TRAINING_CPU],
            script="preprocess.py",
            arguments=[
                *("--train_ratio", str(cfg.train_ratio)),
                *("--validation_ratio", str(cfg.validation_ratio)),
                *("--test_ratio", str(cfg.test_ratio)),
                *("--seed", str(cfg.seed)),
                *(
                    "--feature_store_schema_file",
                    f"{SCHEMA_INPUT_DIR}/{self.feature_store_schema.object_key}",
                ),
            ],
            instance_type=instance_type,
            instance_count=cfg.instance_count,
            volume_size_gb=cfg.volume_size_gb,
            max_runtime_seconds=cfg.max_runtime_seconds,
            encrypt_volume=self.encrypt_processing_volumes,
            depends_on=depends_on,
            inputs=[
                processing_input(
                    "raw", self._uri(Zone.RAW, dataset.name, dataset_version), "/opt/ml/processing/input"
                ),
                processing_input("feature_store_schema", self.feature_store_schema.s3_uri, SCHEMA_INPUT_DIR),
            ],
            outputs=[
                processing_output(
                    split,
                    f"/opt/ml/processing/output/{split}",
                    self._uri(Zone.PROCESSED, dataset.name, pipeline, EXECUTION_ID, split),
                )
                for split in (*SPLITS, ingest_features.RECORDS_DIR)
            ],
        )

    def _feature_store_schema(self) -> str:
        fs = self.config.feature_store
        return ingest_features.schema_argument(
            fs.record_identifier,
            fs.event_time_feature,
            [{"name": f.name, "type": f.type} for f in fs.features],
        )

    def _ingest_features(self, processing_instance: Any) -> dict[str, Any]:
        """Put the dataset version's processed records into the feature group (after Preprocess).

        The only job without network isolation: it calls the Feature Store runtime API, which an isolated
        job cannot reach. It reads nothing but the records Preprocess wrote and writes no S3 output.
        """
        cfg = self.config.processing
        records = ingest_features.RECORDS_DIR
        local_dir = f"{PROCESSING_ROOT}/input/{records}"
        return processing_step(
            "IngestFeatures",
            env=self.jobs,
            image_uri=self.images[Image.PYTORCH_TRAINING_CPU],
            script="ingest_features.py",
            arguments=[
                *("--input_dir", local_dir),
                *("--feature_group_name", self.feature_group_name),
                *("--region", Aws.REGION),
            ],
            instance_type=processing_instance,
            instance_count=1,
            volume_size_gb=cfg.volume_size_gb,
            max_runtime_seconds=cfg.max_runtime_seconds,
            encrypt_volume=self.encrypt_processing_volumes,
            network_isolation=False,
            inputs=[
                processing_input(records, self._split_uri(records), f"{PROCESSING_ROOT}/input/{records}")
            ],
            outputs=[],
        )

    @staticmethod
    def _split_uri(split: str) -> dict[str, str]:
        return step_property("Preprocess", f"ProcessingOutputConfig.Outputs['{split}'].S3Output.S3Uri")

    def _training_request(
        self,
        *,
        pipeline: str,
        step: str,
        instance_type: Any,
        instance_count: Any,
        max_runtime: Any,
        spot: SpotSettings,
        extra_hyperparameters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        cfg = self.config.training
        extra_hyperparameters = extra_hyperparameters or {}
        hp = cfg.hyperparameters.model_dump()
        hp["checkpoint_interval_steps"] = cfg.checkpoint_interval_steps
        hp.update(extra_hyperparameters)
        return training_job(
            env=self.jobs,
            image_uri=self.images[Image.PYTORCH_TRAINING_GPU],
            entry_point="train.py",
            hyperparameters=hp,
            channels={"train": self._split_uri("train"), "validation": self._split_uri("validation")},
            output_path=self._uri(Zone.MODELS, pipeline, EXECUTION_ID, step),
            instance_type=instance_type,
            instance_count=instance_count,
            volume_size_gb=cfg.volume_size_gb,
            max_runtime_seconds=max_runtime,
            spot=spot,
            retry_attempts=cfg.max_retry_attempts,
            metric_definitions=metrics.METRIC_DEFINITIONS,
            distributed=True,
            region=Aws.REGION,
            encrypt_volume=self.encrypt_training_volumes,
        )

    def _checkpoint_uri(self, pipeline: str, step: str) -> dict[str, Any]:
        """Unique per execution and step, ending in '/': a retried job resumes, another run never does."""
        return self._uri(Zone.CHECKPOINTS, pipeline, EXECUTION_ID, step)

    def _evaluate_and_register(
        self, *, suffix: str, model_data: Any, pipeline: str, processing_instance: Any, threshold: Any
    ) -> list[dict[str, Any]]:
        """Evaluate -> quality gate -> register (PendingManualApproval) or fail."""
        cfg = self.config.processing
        evaluate = f"Evaluate{suffix}"
        evaluation = processing_step(
            evaluate,
            env=self.jobs,
            image_uri=self.images[Image.PYTORCH_TRAINING_CPU],
            script="evaluate.py",
            arguments=[],
            instance_type=processing_instance,
            instance_count=1,
            volume_size_gb=cfg.volume_size_gb,
            max_runtime_seconds=cfg.max_runtime_seconds,
            encrypt_volume=self.encrypt_processing_volumes,
            inputs=[
                processing_input("model", model_data, "/opt/ml/processing/model"),
                processing_input("test", self._split_uri("test"), "/opt/ml/processing/test"),
            ],
            outputs=[
                processing_output(
                    metrics.EVALUATION_OUTPUT_NAME,
                    "/opt/ml/processing/evaluation",
                    self._uri(Zone.MODELS, pipeline, EXECUTION_ID, evaluate),
                )
            ],
            property_files=[
                {
                    "PropertyFileName": EVALUATION_PROPERTY_FILE,
                    "OutputName": metrics.EVALUATION_OUTPUT_NAME,
                    "FilePath": metrics.EVALUATION_FILE_NAME,
                }
            ],
        )
        metric_path = metrics.evaluation_json_path(num_classes=self.config.dataset.num_classes)
        # The report's own URI (the output URI ends in '/': joining it with "/<file>" would give "//").
        report_uri = self._object_uri(
            Zone.MODELS, pipeline, EXECUTION_ID, evaluate, metrics.EVALUATION_FILE_NAME
        )
        registry = self.config.registry
        register = register_model_step(
            f"Register{suffix}",
            model_package_group_name=self.model_package_group_name,
            description=f"{self.config.dataset.name} classifier from pipeline {pipeline}",
            image_uri=self.images[Image.PYTORCH_INFERENCE_CPU],
            model_data_url=model_data,
            metrics_s3_uri=report_uri,
            inference_instance_types=registry.inference_instance_types,
            transform_instance_types=registry.transform_instance_types,
            environment=INFERENCE_ENVIRONMENT,
            customer_metadata={"dataset": self.config.dataset.name, "pipeline": pipeline},
        )
        gate = condition_step(
            f"QualityGate{suffix}",
            conditions=[
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": json_get(evaluate, EVALUATION_PROPERTY_FILE, metric_path),
                    "RightValue": threshold,
                }
            ],
            if_steps=[register],
            else_steps=[
                fail_step(
                    f"BelowThreshold{suffix}",
                    join(" ", f"{metrics.EVALUATION_GATE_METRIC} below the threshold", threshold),
                )
            ],
        )
        return [evaluation, gate]

    # ---- the pipelines ---------------------------------------------------------------------------

    @property
    def encrypt_processing_volumes(self) -> bool:
        """The stage key on processing volumes, unless the type has instance storage (refused there)."""
        return not has_instance_storage(self.config.processing.instance_type)

    @property
    def encrypt_training_volumes(self) -> bool:
        return not has_instance_storage(self.config.training.instance_type)

    def _parameters(self, *extra: Parameter) -> dict[str, Parameter]:
        """The parameters both pipelines take (defaults from the stage config), then ``extra``.

        The instance-type parameters only take types of the configured type's storage class, so a run
        can never pair an instance-store type with the volume key the steps were built with (or an
        EBS-only type without it).
        """
        cfg = self.config
        processing_types = same_storage_class(
            cfg.processing.instance_type, api_instance_types("ProcessingInstanceType")
        )
        training_types = same_storage_class(
            cfg.training.instance_type,
            [t for t in api_instance_types("TrainingInstanceType") if t.startswith(GPU_FAMILIES)],
        )
        return {
            p.name: p
            for p in (
                Parameter("DatasetVersion", "String", cfg.dataset.version),
                Parameter(
                    "ProcessingInstanceType", "String", cfg.processing.instance_type, tuple(processing_types)
                ),
                Parameter(
                    "TrainingInstanceType", "String", cfg.training.instance_type, tuple(training_types)
                ),
                *extra,
                Parameter("AccuracyThreshold", "Float", cfg.training.accuracy_threshold),
            )
        }

    @staticmethod
    def _checks(parameters: dict[str, Parameter]) -> list[ParameterCheck]:
        """Rules on the run-time parameters, checked before any job starts (each Fail names the values)."""
        p = {name: param(name) for name in parameters}
        checks = [
            ParameterCheck(
                "DatasetVersion",
                [{"Type": "Equals", "LeftValue": p["DatasetVersion"], "RightValue": ""}],
                "DatasetVersion: got ''; allowed: a dataset version folder name under raw/<dataset>/",
            ),
            ParameterCheck(
                "AccuracyThreshold",
                [
                    {
                        "Type": "Or",
                        "Conditions": [
                            {"Type": "LessThan", "LeftValue": p["AccuracyThreshold"], "RightValue": 0.0},
                            {"Type": "GreaterThan", "LeftValue": p["AccuracyThreshold"], "RightValue": 1.0},
                        ],
                    }
                ],
                join("", "AccuracyThreshold: got ", p["AccuracyThreshold"], "; allowed: 0 to 1"),
            ),
        ]
        if "MaxRuntimeSeconds" in p:
            checks += [
                ParameterCheck(
                    "MaxRuntimeSeconds",
                    [
                        {
                            "Type": "Or",
                            "Conditions": [
                                {"Type": "LessThan", "LeftValue": p["MaxRuntimeSeconds"], "RightValue": 1},
                                {
                                    "Type": "GreaterThan",
                                    "LeftValue": p["MaxRuntimeSeconds"],
                                    "RightValue": MAX_TRAINING_SECONDS,
                                },
                            ],
                        }
                    ],
                    join(
                        "",
                        "MaxRuntimeSeconds: got ",
                        p["MaxRuntimeSeconds"],
                        f"; allowed: 1 to {MAX_TRAINING_SECONDS} (28 days)",
                    ),
                ),
                ParameterCheck(
                    "MaxWaitSeconds",
                    [
                        {"Type": "Equals", "LeftValue": p["UseSpot"], "RightValue": True},
                        {
                            "Type": "Or",
                            "Conditions": [
                                {
                                    "Type": "LessThan",
                                    "LeftValue": p["MaxWaitSeconds"],
                                    "RightValue": p["MaxRuntimeSeconds"],
                                },
                                {
                                    "Type": "GreaterThan",
                                    "LeftValue": p["MaxWaitSeconds"],
                                    "RightValue": MAX_TRAINING_SECONDS,
                                },
                            ],
                        },
                    ],
                    join(
                        "",
                        "MaxWaitSeconds: got ",
                        p["MaxWaitSeconds"],
                        " with UseSpot true; allowed: at least MaxRuntimeSeconds (",
                        p["MaxRuntimeSeconds"],
                        f") and at most {MAX_TRAINING_SECONDS} (the spot wait includes the run time)",
                    ),
                ),
                ParameterCheck(
                    "TrainingInstanceCount",
                    [{"Type": "LessThan", "LeftValue": p["TrainingInstanceCount"], "RightValue": 1}],
                    join(
                        "", "TrainingInstanceCount: got ", p["TrainingInstanceCount"], "; allowed: 1 or more"
                    ),
                ),
            ]
        return checks

    def _training_pipeline(self) -> SageMakerPipeline:
        cfg = self.config.training
        p = self._parameters(
            Parameter("TrainingInstanceCount", "Integer", cfg.instance_count),
            Parameter("UseSpot", "Boolean", cfg.use_spot),
            Parameter("MaxRuntimeSeconds", "Integer", cfg.max_runtime_seconds),
            Parameter("MaxWaitSeconds", "Integer", cfg.max_wait_seconds),
        )
        name = "training"

        def branch(suffix: str, spot_on: bool) -> list[dict[str, Any]]:
            # SageMaker refuses MaxWaitTimeInSeconds without spot, so spot on/off is a branch, not a field.
            step = f"Train{suffix}"
            spot = SpotSettings(
                enabled=spot_on,
                max_wait_seconds=p["MaxWaitSeconds"].ref,
                checkpoint_s3_uri=self._checkpoint_uri(name, step) if cfg.checkpoints else None,
            )
            request = self._training_request(
                pipeline=name,
                step=step,
                instance_type=p["TrainingInstanceType"].ref,
                instance_count=p["TrainingInstanceCount"].ref,
                max_runtime=p["MaxRuntimeSeconds"].ref,
                spot=spot,
            )
            return [
                training_step(step, request),
                *self._evaluate_and_register(
                    suffix=suffix,
                    model_data=step_property(step, "ModelArtifacts.S3ModelArtifacts"),
                    pipeline=name,
                    processing_instance=p["ProcessingInstanceType"].ref,
                    threshold=p["AccuracyThreshold"].ref,
                ),
            ]

        checks = parameter_check_steps(self._checks(p))
        steps = [
            *checks,
            self._preprocess(
                name, p["DatasetVersion"].ref, p["ProcessingInstanceType"].ref, [c["Name"] for c in checks]
            ),
            self._ingest_features(p["ProcessingInstanceType"].ref),
            condition_step(
                "SpotOrOnDemand",
                conditions=[{"Type": "Equals", "LeftValue": p["UseSpot"].ref, "RightValue": True}],
                if_steps=branch("Spot", True),
                else_steps=branch("OnDemand", False),
                depends_on=["Preprocess"],
            ),
        ]
        return SageMakerPipeline(
            self,
            "TrainingPipeline",
            description="Preprocess, spot training with checkpoints, evaluate, quality gate, register",
            role=self.execution_role.role,
            parameters=list(p.values()),
            steps=steps,
        )

    def _tuning_pipeline(self) -> SageMakerPipeline:
        cfg, tuning = self.config.training, self.config.tuning
        p = self._parameters()
        name = "tuning"
        # Trials share this execution's checkpoint prefix; train.py's config namespace keeps them apart.
        spot = SpotSettings(
            enabled=cfg.use_spot,
            max_wait_seconds=cfg.max_wait_seconds,
            checkpoint_s3_uri=self._checkpoint_uri(name, "Tune") if cfg.checkpoints else None,
        )
        request = self._training_request(
            pipeline=name,
            step="Tune",
            instance_type=p["TrainingInstanceType"].ref,
            instance_count=cfg.instance_count,
            max_runtime=cfg.max_runtime_seconds,
            spot=spot,
            # Trials share the execution's checkpoint prefix; each configuration gets its own folder.
            extra_hyperparameters={"checkpoint_namespace": "config"},
        )
        r = tuning.ranges
        lr = r.learning_rate
        tune = tuning_step(
            "Tune",
            training_request=request,
            tuned=[
                ContinuousRange("learning_rate", lr.min, lr.max, lr.scaling),
                IntegerRange("batch_size", r.batch_size.min, r.batch_size.max, r.batch_size.scaling),
                ContinuousRange("dropout", r.dropout.min, r.dropout.max, r.dropout.scaling),
                IntegerRange("hidden_units", r.hidden_units.min, r.hidden_units.max, r.hidden_units.scaling),
            ],
            strategy=tuning.strategy,
            objective_metric=metrics.OBJECTIVE_METRIC,
            objective_type=metrics.OBJECTIVE_TYPE,
            max_jobs=tuning.max_jobs,
            max_parallel_jobs=tuning.max_parallel_jobs,
            early_stopping=tuning.early_stopping,
        )
        best_model = join(
            "/",
            f"s3://{self.lake.bucket.bucket_name}",
            Zone.MODELS.value,
            name,
            EXECUTION_ID,
            "Tune",
            step_property("Tune", "BestTrainingJob.TrainingJobName"),
            "output",
            "model.tar.gz",
        )
        checks = parameter_check_steps(self._checks(p))
        steps = [
            *checks,
            self._preprocess(
                name, p["DatasetVersion"].ref, p["ProcessingInstanceType"].ref, [c["Name"] for c in checks]
            ),
            self._ingest_features(p["ProcessingInstanceType"].ref),
            tune,
            *self._evaluate_and_register(
                suffix="Best",
                model_data=best_model,
                pipeline=name,
                processing_instance=p["ProcessingInstanceType"].ref,
                threshold=p["AccuracyThreshold"].ref,
            ),
        ]
        return SageMakerPipeline(
            self,
            "TuningPipeline",
            description="Preprocess, Bayesian tuning (spot, checkpoints), evaluate best, gate, register",
            role=self.execution_role.role,
            parameters=list(p.values()),
            steps=steps,
        )
