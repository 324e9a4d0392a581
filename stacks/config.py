"""Typed, validated configuration of the app: the name prefix, the stages, the stage to synthesize.

The stages live in ``cdk.json`` under ``context.stages``; ``app.py`` selects one with
``-c stage=<name>`` (default ``dev``), parses the context here exactly once into frozen pydantic
models (:func:`load_app_config`) and passes the pieces down to stacks as props. Constructs never
read context or the environment.

Nothing is guessed: every model forbids unknown keys, a JSON ``null`` is refused wherever it
appears (omitting a key is how to take its default), an empty ``-c stage=`` is refused, context keys
that look like this app's but are not are refused, and a cross-field check blames the key the user
wrote, never a key that only holds its default. Per-key overrides on the command line
(``-c stages.dev.training.max_wait_seconds=10800``) are applied to the selected stage with the same
validation; their values are parsed as JSON where they parse (so ``1800`` is an int and ``null`` is
null), else kept as strings. Every error is one line naming the key path, the bad value and what is
allowed (:class:`ConfigError`).

Names: a stage name is lowercase letters and digits and the name prefix (default ``MlPlatform``) is
letters and digits, so ``<prefix>-<stage>-<Role>`` stack names, and the export and resource names
derived from them, are distinct for distinct (prefix, stage) pairs. A stage whose data is retained
(``removal_policy: retain``) must declare its account and region.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from ml_platform.budget import MAX_THRESHOLD_PERCENT, MIN_THRESHOLD_PERCENT
from ml_platform.clarify_config import BiasSettings, ClarifyConfigs, DatasetSchema, ShapSettings
from ml_platform.endpoint import (
    MAX_CANARY_PERCENT,
    MODEL_PACKAGE_ARN,
    VARIANT_NAME_PATTERN,
    variant_instance_type_problem,
)
from ml_platform.images import IMAGE_TABLE, TABLE_RESOURCE, Image
from ml_platform.monitor_rules import (
    HOURLY_RUNTIME_LIMITS,
    MODEL_QUALITY_METRICS,
    OFFSET_FORMS,
    SCHEDULE_FORMS,
    MonitorType,
    max_runtime_limit,
    metric_range,
    offset_seconds,
    schedule_period_hours,
    threshold_problem,
)
from ml_platform.service_model import MAX_TRAINING_SECONDS
from ml_platform.service_model import enum as sagemaker_enum
from training_code import contract

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# The SageMaker Feature Store feature-name pattern (CreateFeatureGroup FeatureName).
FEATURE_NAME_PATTERN = r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$"

#: The platform's cost-allocation tags: ``project`` (this value) and ``stage`` (the stage name), on every
#: resource (app.py), on the jobs the pipelines start, and in the stage budget's cost filter.
PROJECT_TAG = "ml-platform"


def platform_tags(stage: str) -> dict[str, str]:
    """The cost-allocation tags of one stage's resources."""
    return {"project": PROJECT_TAG, "stage": stage}


DEFAULT_STAGE = "dev"
DEFAULT_NAME_PREFIX = "MlPlatform"
# Stack names are "<prefix>-<stage>-<Role>". Neither part may hold a '-', so the split is unambiguous and
# distinct (prefix, stage) pairs give distinct stack, export and resource names (CDK's unique resource
# names drop every non-alphanumeric character: with '-' allowed, 'dev' and 'de-v' were one name).
STAGE_NAME_PATTERN = r"^[a-z][a-z0-9]{0,15}$"
STAGE_NAME_RULE = "a lowercase letter, then lowercase letters and digits, at most 16 characters"
NAME_PREFIX_PATTERN = r"^[A-Z][A-Za-z0-9]{0,23}$"
NAME_PREFIX_RULE = "an uppercase letter, then letters and digits, at most 24 characters (e.g. MlPlatformB)"
# Where the regions of the container images are listed (ml_platform.images reads it).
IMAGE_TABLE_PATH = f"constructs/ml_platform/{TABLE_RESOURCE}"


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


#: The AWS images the stacks deploy (the pipelines' jobs, incl. the Model Monitor analyzer of the data-quality
#: baseline; the endpoint runs the platform's own image). A stage's region must have all of them.
STAGE_IMAGES = (
    Image.PYTORCH_TRAINING_GPU,
    Image.PYTORCH_TRAINING_CPU,
    Image.MODEL_MONITOR_ANALYZER,
    Image.CLARIFY,
)


def _known_image_region(value: str) -> str:
    regions = IMAGE_TABLE.regions_of(STAGE_IMAGES)
    if value not in regions:
        raise PydanticCustomError(
            "not_allowed",
            "a region where {table} has every image the stacks use ({count} regions; "
            "scripts/gen_image_uris.py regenerates it from the SageMaker SDK)",
            {"table": IMAGE_TABLE_PATH, "count": len(regions)},
        )
    return value


class ConfigError(ValueError):
    """A stage configuration that cannot be used. The message names key, value and what is allowed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _fail(key: str, value: Any, allowed: str) -> ValueError:
    """A validator error in the one format: ``<key>: got <value>; allowed: <allowed>``."""
    return ValueError(f"{key}: got {value!r}; allowed: {allowed}")


def _given(model: BaseModel, key: str) -> bool:
    """Whether ``key`` was written in the config (rather than holding its default)."""
    return key in model.model_fields_set


def _shown(model: BaseModel, key: str) -> str:
    """``key (value)``, marked when the value is the default nobody wrote."""
    value = getattr(model, key)
    return (
        f"{key} ({value!r})" if _given(model, key) else f"{key} ({value!r}, the default; the key is not set)"
    )


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
    # preprocess.py's arguments: defaults and rules from training_code/contract.py.
    train_ratio: Annotated[float, Field(gt=0, lt=1)] = contract.SPLIT_RATIOS[contract.TRAIN]
    validation_ratio: Annotated[float, Field(gt=0, lt=1)] = contract.SPLIT_RATIOS[contract.VALIDATION]
    test_ratio: Annotated[float, Field(gt=0, lt=1)] = contract.SPLIT_RATIOS[contract.TEST]
    seed: Annotated[int, Field(ge=0)] = contract.DEFAULT_SPLIT_SEED

    @model_validator(mode="after")
    def _ratios(self) -> Self:
        ratios = {split: getattr(self, f"{split}_ratio") for split in contract.SPLIT_RATIOS}
        total = sum(ratios.values())
        if not contract.ratios_sum_to_one(ratios):
            parts = ", ".join(_shown(self, k) for k in ("train_ratio", "validation_ratio", "test_ratio"))
            raise _fail(
                "train_ratio+validation_ratio+test_ratio", round(total, 12), f"a sum of exactly 1 ({parts})"
            )
        return self


def _hyperparameter_field(spec: contract.Hyperparameter) -> tuple[Any, Any]:
    """A model hyperparameter as a pydantic field: train.py's bounds (contract), capped at the stage limit."""
    kind: Any = Literal[spec.choices] if spec.choices else spec.type
    low, high = spec.minimum, spec.maximum if spec.maximum is not None else spec.stage_maximum
    exclusive_high = spec.exclusive_maximum and spec.maximum is not None
    field = Field(
        gt=low if spec.exclusive_minimum else None,
        ge=None if spec.exclusive_minimum else low,
        lt=high if exclusive_high else None,
        le=None if exclusive_high else high,
    )
    return Annotated[kind, field], spec.default


if TYPE_CHECKING:

    class HyperParameters(_Model):
        """Static view for type checkers of the model built below."""

else:
    #: Hyperparameters passed to train.py as ``--<name> <value>``: one key per model hyperparameter of
    #: training_code/contract.py (MODEL_HYPERPARAMETERS), with its type, default and bounds.
    HyperParameters = create_model(
        "HyperParameters",
        __base__=_Model,
        __doc__="Hyperparameters passed to train.py as ``--<name> <value>`` (training_code/contract.py).",
        __module__=__name__,
        **{spec.name: _hyperparameter_field(spec) for spec in contract.MODEL_HYPERPARAMETERS},
    )


class TrainingConfig(_Model):
    """The training job: GPU managed spot training with checkpoints."""

    instance_type: TrainingInstance = "ml.g5.xlarge"
    instance_count: Annotated[int, Field(ge=1, le=64)] = 1
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 50
    use_spot: bool = True
    checkpoints: bool = True
    checkpoint_interval_steps: int = contract.DEFAULT_CHECKPOINT_INTERVAL_STEPS  # bench/README.md
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
            # checkpoints defaults to true, so a false one was written: blame it.
            raise _fail(
                "checkpoints",
                self.checkpoints,
                "true when use_spot is true"
                + ("" if _given(self, "use_spot") else " (the default; the key is not set)")
                + " (a spot interruption without checkpoints restarts from scratch)",
            )
        if self.max_wait_seconds < self.max_runtime_seconds:
            if _given(self, "max_wait_seconds"):
                raise _fail(
                    "max_wait_seconds",
                    self.max_wait_seconds,
                    f"at least {_shown(self, 'max_runtime_seconds')}; the spot wait includes it",
                )
            raise _fail(
                "max_runtime_seconds",
                self.max_runtime_seconds,
                f"at most {_shown(self, 'max_wait_seconds')}; set max_wait_seconds too (the spot wait "
                "includes the run time)",
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


def _check_tuned(name: str, tuned: ContinuousRange | IntegerRange) -> None:
    """A tuning range whose both ends train.py accepts (bounds from training_code/contract.py)."""
    spec = contract.HYPERPARAMETERS[name]
    wanted = IntegerRange if spec.type is int else ContinuousRange
    if not isinstance(tuned, wanted):
        raise _fail(name, tuned.model_dump(), f"a {wanted.__name__} ({name} is {spec.type.__name__})")
    low, high = spec.minimum, spec.maximum
    if low is not None and high is not None:
        if not (spec.accepts(tuned.min) and spec.accepts(tuned.max)):
            first = "<" if spec.exclusive_minimum else "<="
            last = "<" if spec.exclusive_maximum else "<="
            raise _fail(
                name,
                [tuned.min, tuned.max],
                f"{contract.number(low)} {first} min < max {last} {contract.number(high)}",
            )
        return
    reason = f" ({spec.reason})" if spec.reason else ""
    if low is not None and not spec.accepts(tuned.min):
        allowed = (
            f"greater than {contract.number(low)}"
            if spec.exclusive_minimum
            else f"at least {contract.number(low)}"
        )
        raise _fail(f"{name}.min", tuned.min, allowed + reason)
    cap = high if high is not None else spec.stage_maximum
    if cap is not None and tuned.max > cap:
        raise _fail(f"{name}.max", tuned.max, f"at most {contract.number(cap)}")


class TuningRanges(_Model):
    learning_rate: ContinuousRange = ContinuousRange(min=1e-4, max=1e-1, scaling="Logarithmic")
    batch_size: IntegerRange = IntegerRange(min=32, max=256)
    dropout: ContinuousRange = ContinuousRange(min=0.1, max=0.5)
    hidden_units: IntegerRange = IntegerRange(min=64, max=512)

    @model_validator(mode="after")
    def _ranges_train_py_accepts(self) -> Self:
        if self.learning_rate.scaling != "Logarithmic":
            if _given(self.learning_rate, "scaling"):
                raise _fail(
                    "learning_rate.scaling",
                    self.learning_rate.scaling,
                    "'Logarithmic' (learning rates span decades)",
                )
            raise ValueError(
                f"learning_rate.scaling: not set, and its default {self.learning_rate.scaling!r} is not "
                "allowed here; allowed: 'Logarithmic' (learning rates span decades)"
            )
        for name in type(self).model_fields:
            _check_tuned(name, getattr(self, name))
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
            if _given(self, "max_parallel_jobs"):
                raise _fail(
                    "max_parallel_jobs", self.max_parallel_jobs, f"at most {_shown(self, 'max_jobs')}"
                )
            raise _fail(
                "max_jobs",
                self.max_jobs,
                f"at least {_shown(self, 'max_parallel_jobs')}; set max_parallel_jobs too",
            )
        if self.strategy == "Hyperband" and self.early_stopping != "Off":
            if _given(self, "early_stopping"):
                raise _fail(
                    "early_stopping",
                    self.early_stopping,
                    "'Off' with the Hyperband strategy (it stops early itself)",
                )
            raise _fail(
                "strategy",
                self.strategy,
                f"'Hyperband' only with early_stopping 'Off', and early_stopping is not set (its default is "
                f"{self.early_stopping!r}); set early_stopping: 'Off'",
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


# ---- serving ---------------------------------------------------------------------------------------

#: A variant's ``model``: the newest Approved package of the stage's model package group, looked up at synth
#: time and cached in cdk.context.json (stacks/model_packages.py), or an explicit model package ARN.
LATEST_APPROVED = "latest-approved"
#: At most 3 variants: each has 3 rollback alarms (ml_platform.endpoint_alarms.ROLLBACK_ALARMS) and a
#: DeploymentConfig takes at most 10 (CreateEndpointConfig itself would take 10 variants).
MAX_VARIANTS = 3
#: Time the new fleet of a blue/green deployment is given to start, on top of the canary and baking waits.
PROVISIONING_ALLOWANCE_SECONDS = 600


def _model_source(value: str) -> str:
    if value != LATEST_APPROVED and not MODEL_PACKAGE_ARN.fullmatch(value):
        raise PydanticCustomError(
            "not_allowed",
            "'{latest}' (the newest Approved package of the stage's group) or a versioned model package ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)",
            {"latest": LATEST_APPROVED},
        )
    return value


class VariantConfig(_Model):
    """One production variant of the endpoint (e.g. champion and challenger)."""

    name: Annotated[str, Field(pattern=VARIANT_NAME_PATTERN)]
    model: Annotated[str, AfterValidator(_model_source)]
    instance_type: InferenceInstance
    initial_instance_count: Annotated[int, Field(ge=1)]
    weight: Annotated[float, Field(ge=0, le=1000)]
    min_capacity: Annotated[int, Field(ge=1)]
    max_capacity: Annotated[int, Field(ge=1, le=1000)]
    #: Target tracking on the variant (on by default). Turned off for one deployment to change the instance
    #: type of an autoscaled variant (README: "Changing a variant's instance type").
    autoscaling: bool = True

    @model_validator(mode="before")
    @classmethod
    def _has_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model" not in data:
            raise _fail(
                "model",
                "(not set)",
                f"every variant serves a model: '{LATEST_APPROVED}' or a model package ARN "
                f"(variant {data.get('name', '?')!r})",
            )
        return data

    @model_validator(mode="after")
    def _capacity(self) -> Self:
        problem = variant_instance_type_problem(self.instance_type, autoscaling=self.autoscaling)
        if problem:
            raise _fail("instance_type", self.instance_type, problem)
        if self.min_capacity > self.max_capacity:
            raise _fail("min_capacity", self.min_capacity, f"at most max_capacity ({self.max_capacity})")
        if not self.min_capacity <= self.initial_instance_count <= self.max_capacity:
            raise _fail(
                "initial_instance_count",
                self.initial_instance_count,
                f"between min_capacity ({self.min_capacity}) and max_capacity ({self.max_capacity})",
            )
        return self


class DeploymentSettings(_Model):
    """Blue/green updates (the endpoint's DeploymentConfig): traffic shifts to the new fleet in a canary step
    (or all at once), bakes, and rolls back if a rollback alarm fires."""

    traffic_routing: Literal["canary", "all-at-once"] = "canary"
    canary_percent: Annotated[int, Field(ge=1)] = 10
    canary_wait_seconds: Annotated[int, Field(ge=0, le=3600)] = 600
    baking_seconds: Annotated[int, Field(ge=0, le=3600)] = 600
    max_execution_seconds: Annotated[int, Field(ge=600, le=28800)] = 3600

    @model_validator(mode="after")
    def _canary(self) -> Self:
        if self.canary_percent > MAX_CANARY_PERCENT:
            raise _fail(
                "canary_percent",
                self.canary_percent,
                f"1 to {MAX_CANARY_PERCENT} (SageMaker's canary is at most half of a variant's instances)",
            )
        waits = self.canary_wait_seconds + self.baking_seconds
        if self.max_execution_seconds < waits + PROVISIONING_ALLOWANCE_SECONDS:
            raise _fail(
                "max_execution_seconds",
                self.max_execution_seconds,
                f"at least canary_wait_seconds + baking_seconds + {PROVISIONING_ALLOWANCE_SECONDS} "
                f"({waits} + {PROVISIONING_ALLOWANCE_SECONDS}: the new fleet must also start)",
            )
        return self


def canary_instances(percent: int, instances: int) -> int:
    """Instances in a canary of ``percent`` % of a fleet, rounded up.

    SageMaker does not document the rounding; rounding up is the reading under which a small fleet can fail
    the 50 % rule, so it is the safe one."""
    return math.ceil(percent * instances / 100)


class AutoscalingSettings(_Model):
    """Target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute).

    The target is AWS's documented formula: max sustainable requests per second of one instance x safety
    factor x 60. ``max_rps_per_instance`` is a measurement: ``max_rps_source`` says where it comes from.
    """

    max_rps_per_instance: Annotated[float, Field(gt=0)]
    max_rps_source: Annotated[str, Field(min_length=10)]
    safety_factor: Annotated[float, Field(gt=0, le=1)] = 0.5
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=86400)] = 300
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=86400)] = 60

    @property
    def target_invocations_per_instance(self) -> float:
        return round(self.max_rps_per_instance * self.safety_factor * 60, 1)


class AlarmSettings(_Model):
    """Per-variant endpoint alarms (CloudWatch), into the stage's alert topic."""

    errors_5xx: Annotated[int, Field(ge=0)] = 0
    # A threshold at the metric's maximum could never be crossed (the alarms compare with '>').
    rate_4xx_percent: Annotated[float, Field(gt=0, lt=100)] = 5.0
    latency_p99_ms: Annotated[float, Field(gt=0, lt=60_000)] = 200.0  # InvokeEndpoint times out at 60 s
    cpu_percent: Annotated[float, Field(gt=0, lt=100)] = 80.0  # of the whole instance (all vCPUs)
    memory_percent: Annotated[float, Field(gt=0, lt=100)] = 80.0
    disk_percent: Annotated[float, Field(gt=0, lt=100)] = 80.0
    period_seconds: Literal[60, 300, 900, 3600] = 60
    evaluation_periods: Annotated[int, Field(ge=1, le=60)] = 3
    datapoints_to_alarm: Annotated[int, Field(ge=1, le=60)] = 2

    @model_validator(mode="after")
    def _datapoints(self) -> Self:
        window = self.period_seconds * self.evaluation_periods
        if window > 86400:
            raise _fail(
                "evaluation_periods",
                self.evaluation_periods,
                f"at most {86400 // self.period_seconds} with period_seconds {self.period_seconds} "
                "(CloudWatch evaluates at most one day)",
            )
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise _fail(
                "datapoints_to_alarm",
                self.datapoints_to_alarm,
                f"at most {_shown(self, 'evaluation_periods')}",
            )
        return self


class ServingConfig(_Model):
    """The real-time endpoint: weighted variants, data capture, blue/green deployment, scaling, alarms."""

    variants: tuple[VariantConfig, ...]
    capture_sampling_percentage: Annotated[int, Field(ge=0, le=100)] = 100
    deployment: DeploymentSettings = DeploymentSettings()
    autoscaling: AutoscalingSettings
    alarms: AlarmSettings = AlarmSettings()

    @model_validator(mode="after")
    def _variants(self) -> Self:
        # Counted here rather than with Field(min_length=...): pydantic would also report a too-short tuple
        # for every variant that failed its own validation.
        if not 2 <= len(self.variants) <= MAX_VARIANTS:
            raise _fail(
                "variants",
                len(self.variants),
                f"2 to {MAX_VARIANTS} variants (champion and challenger at least; each variant has 3 "
                "rollback alarms and a deployment takes at most 10)",
            )
        names = [v.name for v in self.variants]
        # VariantName is case-insensitive in SageMaker's metrics and scaling resource ids: compare folded.
        dupes = sorted({n for n in names if [m.lower() for m in names].count(n.lower()) > 1})
        if dupes:
            raise _fail("variants", dupes, "unique variant names (case-insensitively)")
        if not any(v.weight > 0 for v in self.variants):
            raise _fail("variants.*.weight", [v.weight for v in self.variants], "at least one weight above 0")
        self._check_canary()
        return self

    def _check_canary(self) -> None:
        deployment = self.deployment
        if deployment.traffic_routing != "canary":
            return
        for index, variant in enumerate(self.variants):
            for count in range(variant.min_capacity, variant.max_capacity + 1):
                if canary_instances(deployment.canary_percent, count) > count / 2:
                    raise _fail(
                        f"variants.{index}",
                        f"{variant.name}: {count} instance(s)",
                        f"a fleet whose canary ({deployment.canary_percent} % of {count} instance(s), "
                        "rounded up) is at most half of it (SageMaker's canary rule): raise min_capacity, "
                        "lower deployment.canary_percent, or set deployment.traffic_routing to 'all-at-once'",
                    )


# ---- monitoring ------------------------------------------------------------------------------------


class BudgetConfig(_Model):
    """The stage's monthly AWS Budgets cost budget, on the platform's cost-allocation tag ``stage``.

    Alerts go to the stage's alert topic when the actual cost, or the forecasted cost of the month, passes
    its percentage of the limit.
    """

    monthly_limit_usd: float
    actual_alert_percent: float = 80.0
    forecast_alert_percent: float = 100.0

    @model_validator(mode="after")
    def _amounts(self) -> Self:
        if not (math.isfinite(self.monthly_limit_usd) and self.monthly_limit_usd > 0):
            raise _fail("monthly_limit_usd", self.monthly_limit_usd, "a positive amount in USD")
        for key in ("actual_alert_percent", "forecast_alert_percent"):
            value = getattr(self, key)
            if not (math.isfinite(value) and MIN_THRESHOLD_PERCENT <= value <= MAX_THRESHOLD_PERCENT):
                raise _fail(
                    key,
                    value,
                    f"a percentage of the limit from {MIN_THRESHOLD_PERCENT} to {MAX_THRESHOLD_PERCENT} (AWS "
                    "Budgets notification thresholds)",
                )
        return self


def _schedule(value: str) -> str:
    try:
        schedule_period_hours(value)
    except ValueError:
        raise PydanticCustomError("not_allowed", "{forms}", {"forms": SCHEDULE_FORMS}) from None
    return value


def _offset(value: str) -> str:
    try:
        offset_seconds(value)
    except ValueError:
        raise PydanticCustomError("not_allowed", "{forms}", {"forms": OFFSET_FORMS}) from None
    return value


Schedule = Annotated[str, AfterValidator(_schedule)]
Offset = Annotated[str, AfterValidator(_offset)]
FacetValue = Annotated[float, Field(allow_inf_nan=False)] | int | str


class _MonitorSchedule(_Model):
    """A Model Monitor schedule: its cron expression and its jobs' stopping condition."""

    MONITOR_TYPE: ClassVar[MonitorType]

    schedule: Schedule
    max_runtime_seconds: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _runtime(self) -> Self:
        period = schedule_period_hours(self.schedule)
        limit = max_runtime_limit(self.MONITOR_TYPE, period)
        if self.max_runtime_seconds > limit:
            raise _fail(
                "max_runtime_seconds",
                self.max_runtime_seconds,
                f"at most {limit} for a {self.MONITOR_TYPE} job every {period} hour(s) (the stopping "
                "condition cannot exceed the schedule's period; "
                f"{HOURLY_RUNTIME_LIMITS[self.MONITOR_TYPE]} s per hour for {self.MONITOR_TYPE})",
            )
        return self


class _GroundTruthWindow(_MonitorSchedule):
    """Monitors that merge ground truth read a window of captures that ends before the run, so the labels
    of its inferences have arrived (``StartTimeOffset`` / ``EndTimeOffset``)."""

    start_time_offset: Offset = "-P2D"
    end_time_offset: Offset = "-P1D"

    @model_validator(mode="after")
    def _window(self) -> Self:
        start, end = offset_seconds(self.start_time_offset), offset_seconds(self.end_time_offset)
        if not start < end < 0:
            raise _fail(
                "start_time_offset",
                self.start_time_offset,
                f"an offset before end_time_offset ({self.end_time_offset}), which must itself be before the "
                "run (e.g. -P2D and -P1D: the captures of the day before yesterday, graded with the labels "
                "that arrived since)",
            )
        return self


class DataQualityMonitorConfig(_MonitorSchedule):
    """Data-quality drift of the captured requests against the served package's baseline."""

    MONITOR_TYPE: ClassVar[MonitorType] = "DataQuality"
    #: Alarm when a feature's distance from its baseline distribution exceeds this (Model Monitor's
    #: ``comparison_threshold`` default is 0.1).
    drift_threshold: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.1


class ModelQualityMonitorConfig(_GroundTruthWindow):
    """Model quality of the captured predictions graded by the uploaded ground truth."""

    MONITOR_TYPE: ClassVar[MonitorType] = "ModelQuality"
    metric: str
    threshold: float

    @model_validator(mode="after")
    def _metric(self) -> Self:
        try:
            low, high = metric_range(self.metric)
        except ValueError:
            raise _fail("metric", self.metric, f"one of {', '.join(sorted(set(_ALL_METRICS)))}") from None
        problem = threshold_problem(self.metric, self.threshold)
        if problem is not None:
            raise _fail(
                "threshold",
                self.threshold,
                f"{problem}: a value of {self.metric} from {low} to {high} that the alarm can cross",
            )
        return self


_ALL_METRICS = tuple(m for names in MODEL_QUALITY_METRICS.values() for m in names)


class ModelBiasMonitorConfig(_GroundTruthWindow):
    """Bias drift of the served predictions (the facet and labels of ``bias``)."""

    MONITOR_TYPE: ClassVar[MonitorType] = "ModelBias"


class ModelExplainabilityMonitorConfig(_MonitorSchedule):
    """Feature-attribution (SHAP) drift of the served model (the settings of ``explainability``)."""

    MONITOR_TYPE: ClassVar[MonitorType] = "ModelExplainability"


class BiasConfig(_Model):
    """The facet and favourable outcome of the pipelines' bias baselines and of bias monitoring."""

    facet: str
    facet_values_or_threshold: tuple[FacetValue, ...]
    positive_labels: tuple[str, ...] = ()


class ExplainabilityConfig(_Model):
    """Kernel SHAP of the pipelines' explainability baseline and of explainability monitoring."""

    shap_baseline: tuple[FacetValue, ...]
    num_samples: Annotated[int, Field(ge=1, le=10_000)] = 100
    agg_method: Literal["mean_abs", "median", "mean_sq"] = "mean_abs"


class MonitoringConfig(_Model):
    """Operations of the stage: notifications (always on), the cost budget, and Model Monitor.

    ``bias`` and ``explainability`` describe the analyses the pipelines baseline and the schedules repeat;
    each of the four schedules is optional (left out: not scheduled). Model quality and model bias merge
    ground truth uploaded under ``ground-truth/<ground_truth_prefix>/``.
    """

    budget: BudgetConfig
    instance_type: ProcessingInstance = "ml.m5.xlarge"
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    ground_truth_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] | None = None
    bias: BiasConfig
    explainability: ExplainabilityConfig
    data_quality: DataQualityMonitorConfig | None = None
    model_quality: ModelQualityMonitorConfig | None = None
    model_bias: ModelBiasMonitorConfig | None = None
    model_explainability: ModelExplainabilityMonitorConfig | None = None

    @model_validator(mode="after")
    def _ground_truth(self) -> Self:
        for key in ("model_quality", "model_bias"):
            if getattr(self, key) is not None and self.ground_truth_prefix is None:
                raise _fail(
                    "ground_truth_prefix",
                    None,
                    f"a key prefix under ground-truth/ (e.g. 'breast-cancer') when {key} is scheduled: its "
                    "jobs merge the captured predictions with the labels uploaded there",
                )
        return self

    def schedules(self) -> dict[MonitorType, _MonitorSchedule]:
        """The scheduled monitors, by Model Monitor type."""
        configured: dict[MonitorType, _MonitorSchedule | None] = {
            "DataQuality": self.data_quality,
            "ModelQuality": self.model_quality,
            "ModelBias": self.model_bias,
            "ModelExplainability": self.model_explainability,
        }
        return {kind: value for kind, value in configured.items() if value is not None}


#: The committed manifests of the datasets: ``datasets/<name>/manifest.json``, the same file a dataset
#: version is uploaded with (``raw/<name>/<version>/manifest.json``).
DATASETS_DIR = Path(__file__).resolve().parent.parent / "datasets"


@functools.lru_cache(maxsize=8)
def dataset_schema(name: str) -> DatasetSchema:
    """The schema of dataset ``name`` from ``datasets/<name>/manifest.json`` (read once per process)."""
    return DatasetSchema.from_file(DATASETS_DIR / name / "manifest.json")


class StageConfig(_Model):
    """Everything one stage (e.g. dev, prod) of the platform is built from."""

    name: Annotated[str, Field(pattern=STAGE_NAME_PATTERN)]
    account: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    region: (
        Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$"), AfterValidator(_known_image_region)] | None
    ) = None
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
    #: A production stage: every endpoint variant keeps at least two instances (availability).
    production: bool = False
    #: Email addresses subscribed to the stage's alert topic (each confirms by mail).
    alert_emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = ()
    serving: ServingConfig | None = None
    monitoring: MonitoringConfig

    @property
    def dataset_schema(self) -> DatasetSchema:
        """The columns of the dataset, from its committed ``datasets/<dataset.name>/manifest.json``."""
        return dataset_schema(self.dataset.name)

    @property
    def clarify(self) -> ClarifyConfigs:
        """The Clarify analysis configurations of the stage (the pipelines' baselines and the monitors)."""
        bias, explainability = self.monitoring.bias, self.monitoring.explainability
        return ClarifyConfigs(
            self.dataset_schema,
            BiasSettings(bias.facet, bias.facet_values_or_threshold, bias.positive_labels),
            ShapSettings(explainability.shap_baseline, explainability.num_samples, explainability.agg_method),
        )

    @property
    def resource_tags(self) -> dict[str, str]:
        """The tags of every resource and job of the stage: the cost-allocation tags, then ``tags``."""
        return {**platform_tags(self.name), **self.tags}

    @model_validator(mode="after")
    def _check_stage(self) -> Self:
        self._check_production_serving()
        self._check_dataset_and_monitors()
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise _fail("log_retention_days", self.log_retention_days, f"one of {list(LOG_RETENTION_DAYS)}")
        if self.auto_delete_objects and self.removal_policy != "destroy":
            raise _fail(
                "auto_delete_objects",
                self.auto_delete_objects,
                "true only with removal_policy 'destroy' (retained data is never auto-deleted)",
            )
        if self.removal_policy == "retain" and (self.account is None or self.region is None):
            missing = " and ".join(k for k in ("account", "region") if getattr(self, k) is None)
            raise ValueError(
                f"{missing.replace(' and ', '/')}: not set; allowed: with removal_policy 'retain' both "
                "account and region are required (a stage whose data outlives its stacks is pinned to one "
                "account and region, so it cannot be deployed wherever the credentials point)"
            )
        if (self.account is None) != (self.region is None):
            given, missing = ("account", "region") if self.region is None else ("region", "account")
            raise ValueError(
                f"{missing}: not set, but {given} is ({getattr(self, given)!r}); allowed: both account and "
                "region (environment-specific synth) or neither (environment-agnostic)"
            )
        return self

    def _check_dataset_and_monitors(self) -> None:
        """The dataset's manifest agrees with ``dataset`` and the Clarify/model-quality settings fit it."""
        try:
            schema = self.dataset_schema
        except ValueError as error:
            raise _fail(
                "dataset.name", self.dataset.name, f"a dataset with a committed manifest ({error})"
            ) from None
        if len(schema.classes) != self.dataset.num_classes:
            raise _fail(
                "dataset.num_classes",
                self.dataset.num_classes,
                f"{len(schema.classes)}, the number of classes its manifest declares "
                f"({list(schema.classes)})",
            )
        try:
            self.clarify  # noqa: B018 - builds (and so checks) the analysis configurations
        except ValueError as error:
            raise ValueError(f"monitoring.{error}") from None
        quality = self.monitoring.model_quality
        problem_type = schema.contract.problem_type
        if quality is not None and quality.metric not in MODEL_QUALITY_METRICS[problem_type]:
            raise _fail(
                "monitoring.model_quality.metric",
                quality.metric,
                f"a {problem_type} metric ({', '.join(MODEL_QUALITY_METRICS[problem_type])}): the dataset "
                f"has {len(schema.classes)} classes",
            )

    def _check_production_serving(self) -> None:
        if not self.production or self.serving is None:
            return
        # initial_instance_count >= min_capacity is the variant's own rule, so min_capacity covers both.
        for index, variant in enumerate(self.serving.variants):
            if variant.min_capacity < 2:
                raise _fail(
                    f"serving.variants.{index}.min_capacity",
                    variant.min_capacity,
                    f"at least 2 in a production stage (variant {variant.name!r}: one instance is a single "
                    "point of failure)",
                )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field's annotation holds (directly or in an Optional/Union), if any."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _field_at(loc: tuple[int | str, ...], root: type[BaseModel]) -> FieldInfo | None:
    """The model field a key path ends at (``None`` for list items, mapping values and unknown keys)."""
    model: type[BaseModel] | None = root
    field: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            # An item of a tuple of models (e.g. features.2): continue in the item's model.
            item = get_args(field.annotation)[0] if field is not None and get_args(field.annotation) else None
            model, field = _model_in(item), None
            continue
        if model is None:
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _model_in(field.annotation)
    return field


def _describe(loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    """Allowed keys of the model at ``loc`` (for 'unknown key' errors)."""
    parent = _field_at(loc[:-1], root) if loc[:-1] else None
    model = root if not loc[:-1] else (_model_in(parent.annotation) if parent is not None else None)
    if model is None and loc[:-1] and isinstance(loc[-2], int):
        # The key sits in an item of a tuple of models.
        field = _field_at(loc[:-2], root)
        args = get_args(field.annotation) if field is not None else ()
        model = _model_in(args[0]) if args else None
    if model is None:
        return ""
    return ", ".join(sorted(model.model_fields))


# ---- null ------------------------------------------------------------------------------------------
# A JSON null is refused wherever it appears. Omitting a key is how to take its default; a null is never
# read as "the default", and never as "not set" for an optional key. Nulls are replaced by a value that
# every field type refuses, so pydantic reports an error there (and no cross-field check of an enclosing
# model runs on incomplete data); those errors are then reported as the null they stand for.
_NULL = {"<null>": True}


def _mark_nulls(value: Any, annotation: Any, loc: tuple[int | str, ...], found: list[tuple[Any, ...]]) -> Any:
    if value is None:
        found.append(loc)
        return dict(_NULL)
    model = _model_in(annotation)
    if model is not None and isinstance(value, dict):
        return {
            key: (
                _mark_nulls(item, model.model_fields[key].annotation, (*loc, key), found)
                if key in model.model_fields
                else item  # an unknown key: reported as unknown, whatever its value
            )
            for key, item in value.items()
        }
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is tuple and args and isinstance(value, list):
        return [_mark_nulls(item, args[0], (*loc, i), found) for i, item in enumerate(value)]
    if (
        isinstance(origin, type)
        and issubclass(origin, Mapping)
        and len(args) == 2
        and isinstance(value, dict)
    ):
        return {key: _mark_nulls(item, args[1], (*loc, key), found) for key, item in value.items()}
    return value


def _holds_stand_in(value: Any) -> bool:
    if value == _NULL:
        return True
    if isinstance(value, dict):
        return any(_holds_stand_in(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_stand_in(v) for v in value)
    return False


def _null_message(loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    field = _field_at(loc, root) if not isinstance(loc[-1], int) else None
    if field is None:
        # A list item or a mapping value (features.2, tags.team).
        what = "remove the item" if isinstance(loc[-1], int) else "remove the key"
        return f"null is not allowed; {what} or give it a value"
    if field.is_required():
        return "null is not allowed; the key is required"
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "null is not allowed; omit the key to leave it unset"
    if isinstance(default, BaseModel):
        return "null is not allowed; omit the key to use the defaults of all its keys"
    shown = json.dumps(list(default) if isinstance(default, tuple) else default)
    return f"null is not allowed; omit the key to use the default {shown}"


# ---- errors ----------------------------------------------------------------------------------------


def _origin_of(path: str, origins: Mapping[str, str]) -> str:
    """`` (from -c ...)`` when ``path`` (or a key above or below it) came from a command-line override."""
    for key, assignment in origins.items():
        if path == key or path.startswith(key + ".") or key.startswith(path + "."):
            return f" (from -c {assignment})"
    return ""


def _format_errors(
    prefix: str,
    error: ValidationError | None,
    root: type[BaseModel],
    nulls: Sequence[tuple[Any, ...]] = (),
    origins: Mapping[str, str] | None = None,
) -> list[str]:
    origins = origins or {}
    lines = []
    for loc in nulls:
        path = ".".join([prefix, *(str(p) for p in loc)])
        lines.append(f"{path}: {_null_message(loc, root)}{_origin_of(path, origins)}")
    for item in error.errors() if error is not None else ():
        loc = tuple(item["loc"])
        if any(loc[: len(null)] == null for null in nulls) or _holds_stand_in(item.get("input")):
            continue  # the stand-in for a null (or a consequence of it), reported above
        path = ".".join([prefix, *(str(p) for p in loc)])
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            line = f"{path}: unknown key (value {value!r}); allowed keys: {_describe(loc, root)}"
        elif item["type"] == "value_error":
            # Our own validators already name key, value and what is allowed.
            line = f"{path}.{re.sub(r'^Value error, ', '', item['msg'])}"
        elif item["type"] == "missing":
            line = f"{path}: required key is missing"
        else:
            message = (
                item["msg"]
                .replace("Input should be ", "")
                .replace("String should match", "a string matching")
            )
            line = f"{path}: got {value!r}; allowed: {message}"
        key_path = line.split(":", 1)[0]
        lines.append(line + _origin_of(key_path, origins))
    return lines


def _invalid(lines: list[str]) -> ConfigError:
    return ConfigError("invalid stage configuration:\n  " + "\n  ".join(lines))


def _check_stage_name(stage: Any) -> None:
    if not isinstance(stage, str) or not re.fullmatch(STAGE_NAME_PATTERN, stage):
        collides = isinstance(stage, str) and re.fullmatch(
            STAGE_NAME_PATTERN, re.sub(r"[^a-z0-9]", "", stage)
        )
        squeezed = re.sub(r"[^a-z0-9]", "", stage) if isinstance(stage, str) else ""
        hint = (
            f"; resource names drop other characters, so it would be named like {squeezed!r}"
            if collides
            else ""
        )
        raise ConfigError(
            f"stages.{stage}: stage name {stage!r} is not allowed; allowed: {STAGE_NAME_RULE}{hint}"
        )


def _parse_stage(
    stages: Mapping[str, Any], stage: str, origins: Mapping[str, str]
) -> tuple[StageConfig | None, list[str]]:
    """``stages[stage]`` parsed, or the error lines (key path, value, what is allowed) of everything wrong."""
    raw = stages[stage]
    if raw is None:
        return None, [
            f"stages.{stage}: null is not allowed; a stage is an object (e.g. a copy of another stage's); "
            "delete the key to drop the stage"
        ]
    if not isinstance(raw, Mapping):
        return None, [f"stages.{stage}: got {raw!r}; allowed: an object"]
    if "name" in raw:
        return None, [f"stages.{stage}.name: unknown key; the stage name is the key under stages"]
    nulls: list[tuple[Any, ...]] = []
    marked = _mark_nulls(dict(raw), StageConfig, (), nulls)
    try:
        # JSON mode with strict models: "30" is not 30 and a list is a valid tuple, exactly as in cdk.json.
        config = StageConfig.model_validate_json(json.dumps({"name": stage, **marked}))
    except ValidationError as error:
        return None, _format_errors(f"stages.{stage}", error, StageConfig, nulls, origins)
    if nulls:  # only nulls of optional keys (the stand-in is refused everywhere, so this is defensive)
        return None, _format_errors(f"stages.{stage}", None, StageConfig, nulls, origins)
    return config, []


def load_stage(stages: Any, stage: str) -> StageConfig:
    """Parse ``stages[stage]`` (the ``stages`` object of cdk.json context) into a :class:`StageConfig`."""
    _check_stages(stages)
    _check_selected(stages, stage)
    config, lines = _parse_stage(stages, stage, {})
    if config is None:
        raise _invalid(lines)
    return config


def _check_stages(stages: Any) -> None:
    if stages is None:
        raise ConfigError(
            "stages: not set or null; allowed: an object mapping stage names to configs (cdk.json "
            "context.stages; run the app through `cdk synth`, which passes cdk.json's context)"
        )
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError(f"stages: got {stages!r}; allowed: an object mapping stage names to configs")
    for name in stages:
        _check_stage_name(name)


def _check_selected(stages: Mapping[str, Any], stage: Any) -> None:
    if not isinstance(stage, str) or stage not in stages:
        hint = f"; omit -c stage to synthesize the default {DEFAULT_STAGE!r}" if stage == "" else ""
        raise ConfigError(
            f"stage: got {stage!r}; allowed: one of {sorted(stages)} (from cdk.json context.stages){hint}"
        )


# ---- the app's context -----------------------------------------------------------------------------

# CDK's own context keys (feature flags, lookups, aws:cdk:*, acknowledged-issue-numbers...) all hold one of
# these characters; a key without any of them is taken to be meant for this app and must be one of its keys.
_CDK_KEY_CHARACTERS = re.compile(r"[:@/-]")
APP_KEYS = ("stage", "stages", "name_prefix")
OVERRIDE_PREFIX = "stages."


def _parse_cli_value(value: Any) -> Any:
    """A ``-c key=value`` value (always a string from the CLI) as JSON where it parses, else the string."""
    if not isinstance(value, str):
        return value

    def refuse_constant(name: str) -> Any:
        raise ValueError(name)  # NaN / Infinity are not JSON

    try:
        return json.loads(value, parse_constant=refuse_constant)
    except ValueError:
        return value


@dataclass(frozen=True)
class AppConfig:
    """What app.py builds: the stage to synthesize, every stage of cdk.json (all validated) and the name
    prefix of every stack (``<name_prefix>-<stage>-<Role>``)."""

    name_prefix: str
    stage: StageConfig
    stages: Mapping[str, StageConfig]

    @property
    def stack_prefix(self) -> str:
        return stack_prefix(self.name_prefix, self.stage.name)


def stack_prefix(name_prefix: str, stage: str) -> str:
    """The first part of every stack name of a stage: ``<name_prefix>-<stage>``."""
    return f"{name_prefix}-{stage}"


def _apply_overrides(context: Mapping[str, Any], stages: dict[str, Any], selected: str) -> dict[str, str]:
    """Apply each ``stages.<stage>.<key>...`` context key to ``stages`` in place; return key -> assignment."""
    origins: dict[str, str] = {}
    for key in sorted(k for k in context if k.startswith(OVERRIDE_PREFIX)):
        raw_value = context[key]
        assignment = f"{key}={raw_value if isinstance(raw_value, str) else json.dumps(raw_value)}"
        parts = key[len(OVERRIDE_PREFIX) :].split(".")
        stage, path = parts[0], parts[1:]
        if stage not in stages:
            raise ConfigError(
                f"-c {assignment}: stage {stage!r} is not in cdk.json (stages: {sorted(stages)}); "
                "an override changes a key of an existing stage, it cannot add a stage"
            )
        if stage != selected:
            raise ConfigError(
                f"-c {assignment}: overrides stage {stage!r}, but the stage being synthesized is "
                f"{selected!r}; allowed: -c stages.{selected}.<key>=<value> (or -c stage={stage})"
            )
        if not path or "" in path:
            raise ConfigError(f"-c {assignment}: allowed: -c stages.{stage}.<key>[.<key>...]=<value>")
        node: Any = stages[stage]
        for depth, part in enumerate(path[:-1]):
            where = ".".join(["stages", stage, *path[: depth + 1]])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"-c {assignment}: {where}: no item {part!r} (the list has {len(node)})"
                    )
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ConfigError(f"-c {assignment}: {where} is {node!r}, not an object with keys")
        last = path[-1]
        value = _parse_cli_value(raw_value)
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(f"-c {assignment}: no item {last!r} (the list has {len(node)})")
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(
                f"-c {assignment}: {'.'.join(['stages', stage, *path[:-1]])} is {node!r}, not an object"
            )
        origins[key] = assignment
    return origins


def _optional_string(context: Mapping[str, Any], key: str, default: str) -> Any:
    if key not in context:
        return default
    value = context[key]
    if value is None:
        raise ConfigError(f"{key}: null is not allowed; omit it to use the default {default!r}")
    return value


def load_app_config(context: Mapping[str, Any]) -> AppConfig:
    """Validate the app's context (as the CDK CLI passes it, nulls included) into an :class:`AppConfig`.

    Every stage of ``stages`` is parsed (a broken stage fails every synth, not only its own); command-line
    overrides (``-c stages.<stage>.<key>=<value>``) apply to the selected stage only.
    """
    unknown = sorted(
        k
        for k in context
        if not _CDK_KEY_CHARACTERS.search(k) and k not in APP_KEYS and not k.startswith(OVERRIDE_PREFIX)
    )
    if unknown:
        raise ConfigError(
            f"context key {unknown[0]!r}: unknown to this app; allowed: {', '.join(APP_KEYS)} and "
            "stages.<stage>.<key>[.<key>...] (a per-key override of the stage being synthesized)"
        )
    stage = _optional_string(context, "stage", DEFAULT_STAGE)
    name_prefix = _optional_string(context, "name_prefix", DEFAULT_NAME_PREFIX)
    if not isinstance(name_prefix, str) or not re.fullmatch(NAME_PREFIX_PATTERN, name_prefix):
        raise ConfigError(f"name_prefix: got {name_prefix!r}; allowed: {NAME_PREFIX_RULE}")
    raw_stages = _parse_cli_value(context.get("stages"))  # -c stages='{...}' arrives as a string
    _check_stages(raw_stages)
    _check_selected(raw_stages, stage)
    stages = copy.deepcopy(dict(raw_stages))
    origins = _apply_overrides(context, stages, stage)
    parsed: dict[str, StageConfig] = {}
    lines: list[str] = []
    for name in stages:
        config, errors = _parse_stage(stages, name, origins)
        lines += errors
        if config is not None:
            parsed[name] = config
    if lines:
        raise _invalid(lines)
    return AppConfig(name_prefix=name_prefix, stage=parsed[stage], stages=parsed)


def context_from_environment(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The context exactly as the CDK CLI hands it to the app, JSON nulls included; ``None`` without the CLI.

    The CLI writes it as JSON to CDK_CONTEXT_JSON (and, when too big for the environment, the rest to the
    file named by CONTEXT_OVERFLOW_LOCATION_ENV). The App's own view of it has lost every null-valued key
    (jsii drops them on the way to Python), so the config is read from here.
    """
    text = environ.get("CDK_CONTEXT_JSON")
    if text is None:
        return None
    context: dict[str, Any] = json.loads(text)
    overflow = environ.get("CONTEXT_OVERFLOW_LOCATION_ENV")
    if overflow:
        context.update(json.loads(Path(overflow).read_text()))
    return context
