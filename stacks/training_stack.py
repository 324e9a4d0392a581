"""The training stack: execution role, code bundle, model package group, training and tuning pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Names, RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_platform.data_lake import LakeAccess, LakeExports, Zone
from ml_platform.execution_role import SageMakerExecutionRole
from ml_platform.images import Image, image_uri
from ml_platform.pipelines import (
    EXECUTION_ID,
    ContinuousRange,
    IntegerRange,
    JobEnvironment,
    Parameter,
    SageMakerPipeline,
    SpotSettings,
    condition_step,
    fail_step,
    join,
    json_get,
    processing_input,
    processing_output,
    processing_step,
    register_model_step,
    step_property,
    training_job,
    training_step,
    tuning_step,
)
from ml_platform.source_bundle import SourceBundle
from stacks.config import StageConfig
from training_code import metrics

TRAINING_CODE_DIR = Path(__file__).resolve().parents[1] / "training_code"
# The processing outputs of the preprocessing step (train.py reads the first two as channels).
SPLITS = ("train", "validation", "test", "baseline")
EVALUATION_PROPERTY_FILE = "EvaluationReport"
INFERENCE_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
}


class TrainingStack(Stack):
    """Role, code, registry and the two pipelines of one stage; reads and writes the data stack's lake."""

    def __init__(
        self, scope: Construct, id_: str, *, config: StageConfig, lake_exports: LakeExports, **kwargs: Any
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.lake = lake = LakeAccess.from_exports(self, "Lake", lake_exports)
        removal = RemovalPolicy.RETAIN if config.removal_policy == "retain" else RemovalPolicy.DESTROY

        self.code = SourceBundle(self, "TrainingCode", source=TRAINING_CODE_DIR)
        group_name = Names.unique_resource_name(self, max_length=56, separator="-")
        self.model_package_group_name = f"{group_name}-models"
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
            image_uris=list(self.images.values()),
            model_package_group_names=[self.model_package_group_name],
            code_bucket_arn=self.code.asset.bucket.bucket_arn,
            code_object_arn=self.code.asset.bucket.arn_for_objects(self.code.object_key),
        )
        self.execution_role.role.node.add_dependency(self.model_package_group)
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

    def _preprocess(self, pipeline: str, dataset_version: Any, instance_type: Any) -> dict[str, Any]:
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
            ],
            instance_type=instance_type,
            instance_count=cfg.instance_count,
            volume_size_gb=cfg.volume_size_gb,
            max_runtime_seconds=cfg.max_runtime_seconds,
            inputs=[
                processing_input(
                    "raw", self._uri(Zone.RAW, dataset.name, dataset_version), "/opt/ml/processing/input"
                )
            ],
            outputs=[
                processing_output(
                    split,
                    f"/opt/ml/processing/output/{split}",
                    self._uri(Zone.PROCESSED, dataset.name, pipeline, EXECUTION_ID, split),
                )
                for split in SPLITS
            ],
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
        report_uri = join(
            "/",
            step_property(
                evaluate, f"ProcessingOutputConfig.Outputs['{metrics.EVALUATION_OUTPUT_NAME}'].S3Output.S3Uri"
            ),
            metrics.EVALUATION_FILE_NAME,
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

    def _parameters(self, *extra: Parameter) -> dict[str, Parameter]:
        """The parameters both pipelines take (defaults from the stage config), then ``extra``."""
        cfg = self.config
        return {
            p.name: p
            for p in (
                Parameter("DatasetVersion", "String", cfg.dataset.version),
                Parameter("ProcessingInstanceType", "String", cfg.processing.instance_type),
                Parameter("TrainingInstanceType", "String", cfg.training.instance_type),
                *extra,
                Parameter("AccuracyThreshold", "Float", cfg.training.accuracy_threshold),
            )
        }

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

        steps = [
            self._preprocess(name, p["DatasetVersion"].ref, p["ProcessingInstanceType"].ref),
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
        steps = [
            self._preprocess(name, p["DatasetVersion"].ref, p["ProcessingInstanceType"].ref),
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
