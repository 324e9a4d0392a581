"""Pipeline steps: a SageMaker API request (:mod:`.requests`) wrapped with the step's name and wiring.

A step is a dict, as in the pipeline definition JSON: ``Name``, ``Type``, ``Arguments`` (the request),
and optionally ``DependsOn``, ``RetryPolicies``, ``PropertyFiles``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

from ml_platform.pipelines.expressions import Json
from ml_platform.pipelines.shapes import (
    CreateHyperParameterTuningJobRequest,
    CreateModelInput,
    CreateModelPackageInput,
    CreateProcessingJobRequest,
    CreateTrainingJobRequest,
    CreateTransformJobRequest,
)

StepType = Literal[
    "Processing",
    "Training",
    "Tuning",
    "RegisterModel",
    "Model",
    "Transform",
    "Condition",
    "Fail",
    "QualityCheck",
    "ClarifyCheck",
]
QualityCheckType = Literal["DATA_QUALITY", "MODEL_QUALITY"]
ClarifyCheckType = Literal["DATA_BIAS", "MODEL_BIAS", "MODEL_EXPLAINABILITY"]
#: Clarify checks that ask the model (a shadow endpoint of ``ModelName``).
MODEL_CLARIFY_CHECKS: tuple[ClarifyCheckType, ...] = ("MODEL_BIAS", "MODEL_EXPLAINABILITY")


class PropertyFile(TypedDict):
    PropertyFileName: str
    OutputName: str
    FilePath: str


class Step(TypedDict):
    Name: str
    Type: StepType
    Arguments: Any  # the API request of the step type (or the condition/fail arguments)
    DependsOn: NotRequired[list[str]]
    RetryPolicies: NotRequired[list[dict[str, Json]]]
    PropertyFiles: NotRequired[list[PropertyFile]]
    # QualityCheck and ClarifyCheck steps (beside their Arguments, as the SageMaker SDK's QualityCheckStep
    # and ClarifyCheckStep write them).
    CheckType: NotRequired[QualityCheckType | ClarifyCheckType]
    ModelPackageGroupName: NotRequired[Json]
    SkipCheck: NotRequired[Json]
    RegisterNewBaseline: NotRequired[Json]
    FailOnViolation: NotRequired[Json]
    SuppliedBaselineStatistics: NotRequired[Json]
    SuppliedBaselineConstraints: NotRequired[Json]
    #: ClarifyCheck MODEL_BIAS / MODEL_EXPLAINABILITY: the model Clarify's shadow endpoint serves.
    ModelName: NotRequired[Json]


# Pipeline-level retries of a step whose job failed to get capacity or hit a service error.
CAPACITY_RETRY_POLICIES: list[dict[str, Json]] = [
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


def processing_step(
    name: str,
    request: CreateProcessingJobRequest,
    *,
    property_files: Sequence[PropertyFile] = (),
    depends_on: Sequence[str] = (),
) -> Step:
    step: Step = {"Name": name, "Type": "Processing", "Arguments": request}
    if property_files:
        step["PropertyFiles"] = list(property_files)
    if depends_on:
        step["DependsOn"] = list(depends_on)
    return step


#: What a QualityCheck step reports (``Steps.<name>.<property>``): the baseline it computed, and the one
#: it checked against (the same when RegisterNewBaseline is true).
QUALITY_CHECK_PROPERTIES = (
    "CalculatedBaselineStatistics",
    "CalculatedBaselineConstraints",
    "BaselineUsedForDriftCheckStatistics",
    "BaselineUsedForDriftCheckConstraints",
)


def quality_check_step(
    name: str,
    request: CreateProcessingJobRequest,
    *,
    check_type: QualityCheckType,
    model_package_group_name: Json,
    skip_check: Json,
    register_new_baseline: Json,
    fail_on_violation: Json = False,
    depends_on: Sequence[str] = (),
) -> Step:
    """A ``QualityCheck`` step: a Model Monitor analyzer processing job (``request``) plus the check fields.

    No supplied baselines: SageMaker Pipelines checks against the latest approved package of the group,
    which a first run does not have, so ``skip_check`` and ``register_new_baseline`` must then be true
    (pass pipeline parameters so a run can choose). The step's properties are
    :data:`QUALITY_CHECK_PROPERTIES` (S3 URIs of ``statistics.json`` / ``constraints.json``).
    """
    step: Step = {
        "Name": name,
        "Type": "QualityCheck",
        "Arguments": request,
        "CheckType": check_type,
        "ModelPackageGroupName": model_package_group_name,
        "SkipCheck": skip_check,
        "RegisterNewBaseline": register_new_baseline,
        "FailOnViolation": fail_on_violation,
    }
    if depends_on:
        step["DependsOn"] = list(depends_on)
    return step


#: What a ClarifyCheck step reports: the S3 URI of the ``analysis.json`` it computed, and of the one it
#: checked against (the same when RegisterNewBaseline is true). Clarify baselines have no statistics.
CLARIFY_CHECK_PROPERTIES = ("CalculatedBaselineConstraints", "BaselineUsedForDriftCheckConstraints")


def clarify_check_step(
    name: str,
    request: CreateProcessingJobRequest,
    *,
    check_type: ClarifyCheckType,
    model_package_group_name: Json,
    skip_check: Json,
    register_new_baseline: Json,
    model_name: Json | None = None,
    fail_on_violation: Json = False,
    depends_on: Sequence[str] = (),
) -> Step:
    """A ``ClarifyCheck`` step: a SageMaker Clarify processing job (``request``) plus the check fields.

    ``model_name`` (a Model step's ``ModelName``) is required for MODEL_BIAS and MODEL_EXPLAINABILITY, whose
    analysis asks the model through a shadow endpoint, and refused for DATA_BIAS. As for QualityCheck
    steps, SkipCheck/RegisterNewBaseline false need an approved package with such a baseline. The step's
    properties are :data:`CLARIFY_CHECK_PROPERTIES`.
    """
    asks_model = check_type in MODEL_CLARIFY_CHECKS
    if asks_model != (model_name is not None):
        raise ValueError(
            f"model_name: got {model_name!r} for {check_type}; allowed: a model name for "
            f"{' and '.join(MODEL_CLARIFY_CHECKS)} only"
        )
    step: Step = {
        "Name": name,
        "Type": "ClarifyCheck",
        "Arguments": request,
        "CheckType": check_type,
        "ModelPackageGroupName": model_package_group_name,
        "SkipCheck": skip_check,
        "RegisterNewBaseline": register_new_baseline,
        "FailOnViolation": fail_on_violation,
    }
    if model_name is not None:
        step["ModelName"] = model_name
    if depends_on:
        step["DependsOn"] = list(depends_on)
    return step


def training_step(name: str, request: CreateTrainingJobRequest, *, retry_policies: bool = True) -> Step:
    step: Step = {"Name": name, "Type": "Training", "Arguments": request}
    if retry_policies:
        step["RetryPolicies"] = CAPACITY_RETRY_POLICIES
    return step


def tuning_step(name: str, request: CreateHyperParameterTuningJobRequest) -> Step:
    return {"Name": name, "Type": "Tuning", "Arguments": request, "RetryPolicies": CAPACITY_RETRY_POLICIES}


def register_model_step(name: str, request: CreateModelPackageInput) -> Step:
    """A ``RegisterModel`` step: ``CreateModelPackage``."""
    return {"Name": name, "Type": "RegisterModel", "Arguments": request}


def model_step(name: str, request: CreateModelInput, *, depends_on: Sequence[str] = ()) -> Step:
    """A ``Model`` step: ``CreateModel`` (the SDK's ``ModelStep``/``CreateModelStep`` type). SageMaker
    Pipelines names the model; later steps read it as ``Steps.<name>.ModelName``."""
    step: Step = {"Name": name, "Type": "Model", "Arguments": request}
    if depends_on:
        step["DependsOn"] = list(depends_on)
    return step


def transform_step(name: str, request: CreateTransformJobRequest, *, retry_policies: bool = True) -> Step:
    """A ``Transform`` step: ``CreateTransformJob`` (retried on capacity and internal errors)."""
    step: Step = {"Name": name, "Type": "Transform", "Arguments": request}
    if retry_policies:
        step["RetryPolicies"] = CAPACITY_RETRY_POLICIES
    return step


def condition_step(
    name: str,
    *,
    conditions: Sequence[dict[str, Json]],
    if_steps: Sequence[Step],
    else_steps: Sequence[Step],
    depends_on: Sequence[str] = (),
) -> Step:
    step: Step = {
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


def fail_step(name: str, message: Json) -> Step:
    return {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}}


@dataclass(frozen=True)
class ParameterCheck:
    """A rule on run-time parameter values that SageMaker would otherwise only enforce mid-execution.

    The rule is broken when every condition in ``violation`` holds; the execution then fails at its
    start with ``message`` (which names the parameters and their values).
    """

    name: str
    violation: Sequence[dict[str, Json]]
    message: Json


def parameter_check_steps(checks: Sequence[ParameterCheck]) -> list[Step]:
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
