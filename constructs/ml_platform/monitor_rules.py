"""Model Monitor's rules that no schema shows: one home for the config and the constructs.

* **Schedules.** ``ScheduleConfig.ScheduleExpression`` takes (API reference; Developer Guide "Schedule
  expressions"; the SDK's ``CronExpressionGenerator``): hourly ``cron(0 * ? * * *)``, daily at hour H
  ``cron(0 H ? * * *)``, every N hours from hour H ``cron(0 H/N ? * * *)`` ("SageMaker only supports hourly
  integer rates between 1 hour and 24 hours"). The minute is always 0: nothing more frequent than hourly
  exists. ``NOW`` (one-time runs) is not a schedule a stack keeps, so it is refused here.
* **Stopping condition.** ``MaxRuntimeInSeconds`` "cannot exceed the frequency of the job. For data quality
  and model explainability, this can be up to 3600 seconds for an hourly schedule. For model bias and model
  quality hourly schedules, this can be up to 1800 seconds" (their runtime is split between the merge of
  ground truth and the analysis); at most 86,400 seconds.
* **Offsets.** Model quality and model bias read the captures of a window (``StartTimeOffset`` /
  ``EndTimeOffset``, ISO-8601 durations such as ``-P1D`` or ``-PT1H``) that must end before the run, so the
  ground truth of its inferences has had time to arrive.
* **Metrics.** The model-quality metrics Model Monitor publishes per problem type, and their ranges
  (classification scores are in [0, 1]; error metrics are non-negative).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final, Literal

MonitorType = Literal["DataQuality", "ModelQuality", "ModelBias", "ModelExplainability"]
MONITOR_TYPES: Final[tuple[MonitorType, ...]] = (
    "DataQuality",
    "ModelQuality",
    "ModelBias",
    "ModelExplainability",
)
#: Monitors that merge ground truth with the captures (their jobs take ``GroundTruthS3Input``).
GROUND_TRUTH_MONITORS: Final = ("ModelQuality", "ModelBias")

SCHEDULE_FORMS: Final = (
    "cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H, 0-23) or cron(0 H/N ? * * *) (every N "
    "hours from hour H, N 1-24); minute 0: Model Monitor runs at most hourly"
)
OFFSET_FORMS: Final = "a negative ISO-8601 duration of at most 15 characters, e.g. -P1D, -PT6H, -P1DT12H"
_CRON = re.compile(r"cron\(0 (?P<hours>\S+) \? \* \* \*\)")
_HOUR_STEP = re.compile(r"(?P<start>\d{1,2})/(?P<step>\d{1,2})")
MAX_RUNTIME_SECONDS: Final = 86_400
#: The hourly caps of ``MaxRuntimeInSeconds`` per monitor type (API reference of ``StoppingCondition``).
HOURLY_RUNTIME_LIMITS: Final[dict[MonitorType, int]] = {
    "DataQuality": 3600,
    "ModelExplainability": 3600,
    "ModelQuality": 1800,
    "ModelBias": 1800,
}


def schedule_period_hours(expression: str) -> int:
    """The period in hours of a schedule expression Model Monitor accepts; ValueError naming the forms."""
    match = _CRON.fullmatch(expression)
    problem = None if match else "not one of the accepted forms"
    period = 0
    if match:
        hours = match["hours"]
        step = _HOUR_STEP.fullmatch(hours)
        if hours == "*":
            period = 1
        elif hours.isdigit() and int(hours) <= 23:
            period = 24
        elif step and int(step["start"]) <= 23 and 1 <= int(step["step"]) <= 24:
            period = int(step["step"])
        else:
            problem = f"hour field {hours!r} is not *, H (0-23) or H/N (N 1-24)"
    if problem:
        raise ValueError(f"{expression!r}: {problem}; allowed: {SCHEDULE_FORMS}")
    return period


def max_runtime_limit(monitor_type: MonitorType, period_hours: int) -> int:
    """The largest ``MaxRuntimeInSeconds`` a ``monitor_type`` job on a ``period_hours`` schedule may have.

    The documented caps are per hour of schedule (1800 s for the two ground-truth monitors, 3600 s for the
    others), never beyond the API's 86,400 s.
    """
    return min(MAX_RUNTIME_SECONDS, HOURLY_RUNTIME_LIMITS[monitor_type] * period_hours)


_OFFSET = re.compile(r"-P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?)?")


def offset_seconds(offset: str) -> int:
    """``-P1D`` -> -86400: a negative ISO-8601 duration of days, hours and minutes (what the window
    offsets take; at most 15 characters, the API's limit)."""
    match = _OFFSET.fullmatch(offset)
    if not match or len(offset) > 15 or offset in ("-P", "-PT") or offset.endswith("T"):
        raise ValueError(f"{offset!r}: allowed: {OFFSET_FORMS}")
    days, hours, minutes = (int(match[k] or 0) for k in ("days", "hours", "minutes"))
    return -(days * 86_400 + hours * 3600 + minutes * 60)


# ---- model-quality metrics --------------------------------------------------------------------------

#: What Model Monitor's model-quality job publishes (``aws/sagemaker/Endpoints/model-metrics``), per
#: ``ProblemType`` (Developer Guide "Model quality metrics and Amazon CloudWatch monitoring").
MODEL_QUALITY_METRICS: Final[dict[str, tuple[str, ...]]] = {
    "BinaryClassification": (
        "accuracy",
        "precision",
        "recall",
        "f0_5",
        "f1",
        "f2",
        "auc",
        "au_prc",
        "true_positive_rate",
        "true_negative_rate",
        "false_positive_rate",
        "false_negative_rate",
    ),
    "MulticlassClassification": (
        "accuracy",
        "weighted_precision",
        "weighted_recall",
        "weighted_f0_5",
        "weighted_f1",
        "weighted_f2",
    ),
    "Regression": ("mae", "mse", "rmse", "r2"),
}
#: Metrics where larger is worse (an alarm fires above the threshold); every other one fires below it.
LOWER_IS_BETTER: Final = frozenset({"false_positive_rate", "false_negative_rate", "mae", "mse", "rmse"})


def metric_range(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: [0, 1] for classification scores and rates, [0, inf) for error
    metrics, (-inf, 1] for r2."""
    if metric in ("mae", "mse", "rmse"):
        return 0.0, math.inf
    if metric == "r2":
        return -math.inf, 1.0
    if any(metric in names for names in MODEL_QUALITY_METRICS.values()):
        return 0.0, 1.0
    known = sorted({m for names in MODEL_QUALITY_METRICS.values() for m in names})
    raise ValueError(f"metric {metric!r}: allowed: one of {', '.join(known)}")


def lower_is_better(metric: str) -> bool:
    metric_range(metric)  # refuses an unknown metric
    return metric in LOWER_IS_BETTER


def _shown(value: float) -> str:
    return {math.inf: "inf", -math.inf: "-inf"}.get(value, f"{value:g}")


def threshold_rule(metric: str) -> tuple[str, Callable[[float], bool]]:
    """What an alarm threshold of ``metric`` may be, as text, and a predicate for it.

    The threshold must lie in the metric's range *and* be crossable: a score alarms below it, so its lowest
    value could never fire (``low < t <= high``); an error metric alarms above it (``low <= t < high``).
    """
    low, high = metric_range(metric)
    if lower_is_better(metric):
        return (
            f"{_shown(low)} <= threshold < {_shown(high)} ({metric} alarms above the threshold)",
            lambda t: low <= t < high,
        )
    return (
        f"{_shown(low)} < threshold <= {_shown(high)} ({metric} alarms below the threshold)",
        lambda t: low < t <= high,
    )


def threshold_problem(metric: str, threshold: float) -> str | None:
    """``None`` if ``threshold`` is a crossable alarm threshold of ``metric``, else what is allowed."""
    allowed, accepts = threshold_rule(metric)
    if math.isfinite(threshold) and accepts(threshold):
        return None
    return allowed
