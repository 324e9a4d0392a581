"""Typed, validated stage configuration.

The stages live in ``cdk.json`` under ``context.stages``; ``app.py`` selects one with
``-c stage=<name>`` (default ``dev``), parses it here exactly once into frozen pydantic
models and passes the pieces down to stacks as props. Constructs never read context or
the environment.

Every model forbids unknown keys, so a typo fails synth instead of silently falling back
to a default. Every error is reported as one message naming the key path, the bad value
and what is allowed (:class:`ConfigError`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Literal, Self

from botocore.loaders import Loader
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# The SageMaker Feature Store feature-name pattern (CreateFeatureGroup FeatureName).
FEATURE_NAME_PATTERN = r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$"


@cache
def sagemaker_enum(shape: str) -> tuple[str, ...]:
    """An enum of botocore's SageMaker service model (e.g. ``TrainingInstanceType``): what the API accepts."""
    model = Loader().load_service_model("sagemaker", "service-2")
    return tuple(model["shapes"][shape]["enum"])


def _instance_type(shape: str, families: tuple[str, ...] = ()) -> AfterValidator:
    """Validates an instance type against the SageMaker API enum ``shape`` (and, optionally, families)."""

    def check(value: str) -> str:
        allowed = sagemaker_enum(shape)
        if value not in allowed:
            raise PydanticCustomError(
                "not_allowed",
                "an instance type of the SageMaker API's {shape} enum, e.g. {examples}",
                {"shape": shape, "examples": ", ".join(allowed[:4])},
            )
        if families and not value.startswith(families):
            raise PydanticCustomError(
                "not_allowed",
                "a GPU instance type (families {families})",
                {"families": ", ".join(f + "*" for f in families)},
            )
        return value

    return AfterValidator(check)


class ConfigError(ValueError):
    """A stage configuration that cannot be used. The message names key, value and what is allowed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _fail(key: str, value: Any, allowed: str) -> ValueError:
    """A validator error in the one format: ``<key>: got <value>; allowed: <allowed>``."""
    return ValueError(f"{key}: got {value!r}; allowed: {allowed}")


class DataLakeConfig(_Model):
    """The data-lake bucket's lifecycle (days)."""

    intelligent_tiering_after_days: Annotated[int, Field(ge=0, le=3650)] = 30
    noncurrent_version_expiration_days: Annotated[int, Field(ge=1, le=3650)] = 90
    abort_incomplete_multipart_upload_days: Annotated[int, Field(ge=1, le=365)] = 7
    access_log_expiration_days: Annotated[int, Field(ge=1, le=3650)] = 365


class FeatureDefinition(_Model):
    name: Annotated[str, Field(pattern=FEATURE_NAME_PATTERN)]
    type: Literal["Integral", "Fractional", "String"]


class FeatureStoreConfig(_Model):
    """The feature group: its schema and stores."""

    description: Annotated[str, Field(min_length=1, max_length=128)] = "Tabular features of the platform"
    record_identifier: str
    event_time_feature: str
    features: Annotated[tuple[FeatureDefinition, ...], Field(min_length=2, max_length=2500)]
    online_store: bool = True
    offline_table_format: Literal["Glue", "Iceberg"] = "Iceberg"

    @model_validator(mode="after")
    def _check_schema(self) -> Self:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _fail("features", dupes, "unique feature names (duplicates found)")
        by_name = {f.name: f for f in self.features}
        if self.record_identifier not in by_name:
            raise _fail("record_identifier", self.record_identifier, f"one of the features {names}")
        if self.event_time_feature not in by_name:
            raise _fail("event_time_feature", self.event_time_feature, f"one of the features {names}")
        event_type = by_name[self.event_time_feature].type
        if event_type not in ("String", "Fractional"):
            raise _fail(
                "event_time_feature",
                f"{self.event_time_feature} of type {event_type}",
                "a feature of type String (ISO-8601) or Fractional (epoch seconds)",
            )
        if self.record_identifier == self.event_time_feature:
            raise _fail(
                "event_time_feature", self.event_time_feature, "a feature other than record_identifier"
            )
        return self


# GPU families the training image (PyTorch GPU DLC) is built for.
GPU_FAMILIES = ("ml.p", "ml.g")
TrainingInstance = Annotated[str, _instance_type("TrainingInstanceType", GPU_FAMILIES)]
ProcessingInstance = Annotated[str, _instance_type("ProcessingInstanceType")]
InferenceInstance = Annotated[str, _instance_type("ProductionVariantInstanceType")]
TransformInstance = Annotated[str, _instance_type("TransformInstanceType")]
# SageMaker's limit for MaxRuntimeInSeconds / MaxWaitTimeInSeconds of a training job: 28 days.
MAX_TRAINING_SECONDS = 28 * 24 * 3600


class DatasetConfig(_Model):
    """The raw dataset the pipelines read: ``raw/<name>/<version>/`` with its manifest.json."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = "breast-cancer"
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")] = "v1"
    num_classes: Annotated[int, Field(ge=2, le=1000)] = 2


class ProcessingConfig(_Model):
    """Preprocessing and evaluation jobs (CPU)."""

    instance_type: ProcessingInstance = "ml.m5.xlarge"
    instance_count: Annotated[int, Field(ge=1, le=1)] = 1
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    max_runtime_seconds: Annotated[int, Field(ge=60, le=5 * 24 * 3600)] = 3600
    train_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.7
    validation_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.15
    test_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.15
    seed: Annotated[int, Field(ge=0)] = 42

    @model_validator(mode="after")
    def _ratios(self) -> Self:
        total = self.train_ratio + self.validation_ratio + self.test_ratio
        if abs(total - 1.0) > 1e-9:
            raise _fail("train_ratio+validation_ratio+test_ratio", round(total, 12), "a sum of exactly 1")
        return self


class HyperParameters(_Model):
    """Hyperparameters passed to train.py as ``--<name> <value>``."""

    epochs: Annotated[int, Field(ge=1, le=10000)] = 20
    batch_size: Annotated[int, Field(ge=2, le=65536)] = 64  # BatchNorm needs two rows per batch
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 1e-3
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3
    hidden_units: Annotated[int, Field(ge=1, le=65536)] = 128
    num_layers: Annotated[int, Field(ge=1, le=64)] = 2
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 1e-4
    seed: Annotated[int, Field(ge=0)] = 42


class TrainingConfig(_Model):
    """The training job: GPU managed spot training with checkpoints."""

    instance_type: TrainingInstance = "ml.g5.xlarge"
    instance_count: Annotated[int, Field(ge=1, le=64)] = 1
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 50
    use_spot: bool = True
    checkpoints: bool = True
    checkpoint_interval_steps: int = 1000  # overhead measured in bench/README.md
    max_runtime_seconds: Annotated[int, Field(ge=60, le=MAX_TRAINING_SECONDS)] = 4 * 3600
    max_wait_seconds: Annotated[int, Field(ge=60, le=MAX_TRAINING_SECONDS)] = 8 * 3600
    max_retry_attempts: Annotated[int, Field(ge=1, le=30)] = 3
    hyperparameters: HyperParameters = HyperParameters()
    accuracy_threshold: Annotated[float, Field(ge=0, le=1)] = 0.9

    @model_validator(mode="after")
    def _spot(self) -> Self:
        if self.checkpoint_interval_steps <= 0:
            raise _fail(
                "checkpoint_interval_steps", self.checkpoint_interval_steps, "a positive number of steps"
            )
        if self.use_spot and not self.checkpoints:
            raise _fail(
                "checkpoints",
                self.checkpoints,
                "true when use_spot is true (a spot interruption without checkpoints restarts from scratch)",
            )
        if self.max_wait_seconds < self.max_runtime_seconds:
            raise _fail(
                "max_wait_seconds",
                self.max_wait_seconds,
                f"at least max_runtime_seconds ({self.max_runtime_seconds}); the spot wait includes it",
            )
        return self


def _check_range(low: float, high: float, scaling: str) -> None:
    """What every tuning range needs: min below max, and a positive min on a logarithmic scale."""
    if low >= high:
        raise _fail("min", low, f"less than max ({high})")
    if scaling == "Logarithmic" and low <= 0:
        raise _fail("min", low, "greater than 0 with Logarithmic scaling")


class ContinuousRange(_Model):
    min: float
    max: float
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Linear"

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        _check_range(self.min, self.max, self.scaling)
        if self.scaling == "ReverseLogarithmic" and not (self.min >= 0 and self.max < 1):
            raise _fail("min/max", [self.min, self.max], "0 <= min < max < 1 with ReverseLogarithmic scaling")
        return self


class IntegerRange(_Model):
    min: int
    max: int
    scaling: Literal["Auto", "Linear", "Logarithmic"] = "Linear"

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        _check_range(self.min, self.max, self.scaling)
        return self


class TuningRanges(_Model):
    learning_rate: ContinuousRange = ContinuousRange(min=1e-4, max=1e-1, scaling="Logarithmic")
    batch_size: IntegerRange = IntegerRange(min=32, max=256)
    dropout: ContinuousRange = ContinuousRange(min=0.1, max=0.5)
    hidden_units: IntegerRange = IntegerRange(min=64, max=512)

    @model_validator(mode="after")
    def _ranges_train_py_accepts(self) -> Self:
        if self.learning_rate.scaling != "Logarithmic":
            raise _fail(
                "learning_rate.scaling",
                self.learning_rate.scaling,
                "'Logarithmic' (learning rates span decades)",
            )
        if self.batch_size.min < 2:
            raise _fail("batch_size.min", self.batch_size.min, "at least 2 (BatchNorm needs two rows)")
        if self.hidden_units.min < 1:
            raise _fail("hidden_units.min", self.hidden_units.min, "at least 1")
        if not (self.dropout.min >= 0 and self.dropout.max < 1):
            raise _fail("dropout", [self.dropout.min, self.dropout.max], "0 <= min < max < 1")
        return self


class TuningConfig(_Model):
    """The hyperparameter tuning job (its trials use TrainingConfig's instance, spot and checkpoints)."""

    strategy: Literal["Bayesian", "Random", "Hyperband"] = "Bayesian"
    max_jobs: Annotated[int, Field(ge=1, le=750)] = 50
    max_parallel_jobs: Annotated[int, Field(ge=1, le=100)] = 5
    early_stopping: Literal["Auto", "Off"] = "Auto"
    ranges: TuningRanges = TuningRanges()

    @model_validator(mode="after")
    def _parallel(self) -> Self:
        if self.max_parallel_jobs > self.max_jobs:
            raise _fail("max_parallel_jobs", self.max_parallel_jobs, f"at most max_jobs ({self.max_jobs})")
        if self.strategy == "Hyperband" and self.early_stopping != "Off":
            raise _fail(
                "early_stopping",
                self.early_stopping,
                "'Off' with the Hyperband strategy (it stops early itself)",
            )
        return self


class RegistryConfig(_Model):
    """What a registered model package declares it can be deployed on."""

    inference_instance_types: Annotated[tuple[InferenceInstance, ...], Field(min_length=1)] = (
        "ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge",
    )  # fmt: skip
    transform_instance_types: Annotated[tuple[TransformInstance, ...], Field(min_length=1)] = (
        "ml.m5.xlarge",
    )


class StageConfig(_Model):
    """Everything one stage (e.g. dev, prod) of the platform is built from."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    account: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] | None = None
    removal_policy: Literal["destroy", "retain"]
    auto_delete_objects: bool = False
    termination_protection: bool = False
    log_retention_days: int = 30
    tags: Mapping[str, str] = Field(default_factory=dict)
    data_lake: DataLakeConfig = DataLakeConfig()
    feature_store: FeatureStoreConfig
    dataset: DatasetConfig = DatasetConfig()
    processing: ProcessingConfig = ProcessingConfig()
    training: TrainingConfig = TrainingConfig()
    tuning: TuningConfig = TuningConfig()
    registry: RegistryConfig = RegistryConfig()

    @model_validator(mode="after")
    def _check_stage(self) -> Self:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise _fail("log_retention_days", self.log_retention_days, f"one of {list(LOG_RETENTION_DAYS)}")
        if self.auto_delete_objects and self.removal_policy != "destroy":
            raise _fail(
                "auto_delete_objects",
                self.auto_delete_objects,
                "true only with removal_policy 'destroy' (retained data is never auto-deleted)",
            )
        if (self.account is None) != (self.region is None):
            raise _fail(
                "account/region",
                {"account": self.account, "region": self.region},
                "both set (environment-specific synth) or both absent (environment-agnostic)",
            )
        return self


def _describe(loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    """Allowed keys of the model at ``loc`` (for 'unknown key' errors)."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ""
        annotation = field.annotation
        model = None
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
            elif hasattr(candidate, "__args__"):
                inner = [a for a in candidate.__args__ if isinstance(a, type) and issubclass(a, BaseModel)]
                model = inner[0] if inner else model
    if model is None:
        return ""
    return ", ".join(sorted(model.model_fields))


def _format_errors(prefix: str, error: ValidationError, root: type[BaseModel]) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        path = ".".join([prefix, *(str(p) for p in loc)])
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key (value {value!r}); allowed keys: {_describe(loc, root)}")
            continue
        message = item["msg"]
        if item["type"] == "value_error":
            # Our own validators already name key, value and what is allowed.
            message = re.sub(r"^Value error, ", "", message)
            lines.append(f"{path}.{message}")
            continue
        if item["type"] == "missing":
            lines.append(f"{path}: required key is missing")
            continue
        message = message.replace("Input should be ", "").replace("String should match", "a string matching")
        lines.append(f"{path}: got {value!r}; allowed: {message}")
    return "invalid stage configuration:\n  " + "\n  ".join(lines)


def load_stage(stages: Any, stage: str) -> StageConfig:
    """Parse ``stages[stage]`` (the ``stages`` object of cdk.json context) into a :class:`StageConfig`."""
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError(
            f"context.stages: got {stages!r}; allowed: an object mapping stage names to configs"
        )
    if stage not in stages:
        raise ConfigError(
            f"stage: got {stage!r}; allowed: one of {sorted(stages)} (from cdk.json context.stages)"
        )
    raw = stages[stage]
    if not isinstance(raw, Mapping):
        raise ConfigError(f"stages.{stage}: got {raw!r}; allowed: an object")
    if "name" in raw:
        raise ConfigError(f"stages.{stage}.name: unknown key; the stage name is the key under stages")
    try:
        # JSON mode with strict models: "30" is not 30 and a list is a valid tuple, exactly as in cdk.json.
        return StageConfig.model_validate_json(json.dumps({"name": stage, **raw}))
    except ValidationError as error:
        raise ConfigError(_format_errors(f"stages.{stage}", error, StageConfig)) from None
