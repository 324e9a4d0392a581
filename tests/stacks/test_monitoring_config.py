"""Issue 9 item 7: the monitoring config refuses what Model Monitor, Clarify or the dataset would refuse.

Each bad value fails synth with one message naming the key, the value and what is allowed; the rules
themselves (``ml_platform.monitor_rules``) are tested on their edges here too.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from ml_platform.monitor_rules import (
    MODEL_QUALITY_METRICS,
    lower_is_better,
    max_runtime_limit,
    metric_range,
    offset_seconds,
    schedule_period_hours,
)
from stacks.config import ConfigError, load_stage
from tests.conftest import STAGES
from tests.stacks.test_config import BASE, with_change

M = "monitoring"

REFUSED: list[tuple[str, Any, list[str]]] = [
    # schedules: not cron, more often than hourly, odd fields
    (
        f"{M}.data_quality.schedule",
        "rate(1 hour)",
        ["data_quality.schedule", "'rate(1 hour)'", "cron(0 * ? * * *)"],
    ),
    (f"{M}.data_quality.schedule", "cron(*/30 * ? * * *)", ["'cron(*/30 * ? * * *)'", "at most hourly"]),
    (f"{M}.data_quality.schedule", "cron(15 * ? * * *)", ["'cron(15 * ? * * *)'", "minute 0"]),
    (f"{M}.model_quality.schedule", "cron(0 24 ? * * *)", ["model_quality.schedule", "'cron(0 24 ? * * *)'"]),
    (f"{M}.model_bias.schedule", "cron(0 0/25 ? * * *)", ["model_bias.schedule", "N 1-24"]),
    (f"{M}.model_explainability.schedule", "cron(0 0 1 * ? *)", ["model_explainability.schedule"]),
    (f"{M}.data_quality.schedule", "Hourly: cron(0 * ? * * *)", ["'Hourly: cron(0 * ? * * *)'"]),
    (f"{M}.data_quality.schedule", "NOW", ["'NOW'"]),
    # stopping conditions beyond the schedule's period (hourly: 3600 s / 1800 s for ground-truth monitors)
    (
        f"{M}.data_quality.max_runtime_seconds",
        3601,
        ["data_quality.max_runtime_seconds", "3601", "at most 3600"],
    ),
    (
        f"{M}.data_quality.max_runtime_seconds",
        0,
        ["data_quality.max_runtime_seconds", "greater than or equal to 1"],
    ),
    # ground truth
    (f"{M}.ground_truth_prefix", ..., ["ground_truth_prefix", "model_quality is scheduled"]),
    (f"{M}.ground_truth_prefix", "Ground/Truth", ["ground_truth_prefix", "'Ground/Truth'"]),
    (
        f"{M}.model_quality.start_time_offset",
        "-PT1H",
        ["start_time_offset", "'-PT1H'", "before end_time_offset"],
    ),
    (f"{M}.model_quality.end_time_offset", "P1D", ["end_time_offset", "'P1D'", "negative ISO-8601"]),
    (f"{M}.model_bias.end_time_offset", "-P", ["model_bias.end_time_offset", "'-P'"]),
    # facet, label values, SHAP baseline against the dataset's manifest
    (f"{M}.bias.facet", "target", ["monitoring.bias.facet", "'target'", "an input column", "mean radius"]),
    (f"{M}.bias.facet", "mean_radius", ["monitoring.bias.facet", "'mean_radius'", "an input column"]),
    (f"{M}.bias.facet_values_or_threshold", [10, 20], ["facet_values_or_threshold", "one number"]),
    (f"{M}.bias.facet_values_or_threshold", ["big"], ["facet_values_or_threshold", "one number"]),
    (f"{M}.bias.positive_labels", ["malignant"], ["positive_labels", "'benign'"]),
    (f"{M}.explainability.shap_baseline", [1.0, 2.0], ["shap_baseline", "got 2 value(s)", "30"]),
    (f"{M}.explainability.num_samples", 0, ["num_samples", "greater than or equal to 1"]),
    (f"{M}.explainability.agg_method", "max", ["agg_method", "'max'", "'mean_abs'"]),
    # thresholds outside their metric's range; a metric of the wrong problem type
    (f"{M}.model_quality.threshold", 1.5, ["model_quality.threshold", "1.5", "0 < threshold <= 1"]),
    (f"{M}.model_quality.threshold", -0.1, ["model_quality.threshold", "-0.1"]),
    (f"{M}.model_quality.threshold", 0, ["model_quality.threshold", "got 0", "can cross"]),
    (
        f"{M}.model_quality.metric",
        "weighted_f1",
        ["model_quality.metric", "'weighted_f1'", "BinaryClassification"],
    ),
    (f"{M}.model_quality.metric", "f1_score", ["model_quality.metric", "'f1_score'", "auc"]),
    (f"{M}.data_quality.drift_threshold", 0, ["drift_threshold", "greater than 0"]),
    (f"{M}.data_quality.drift_threshold", 1.5, ["drift_threshold", "less than or equal to 1"]),
    # budget (item 6) and the dataset itself
    (f"{M}.budget.monthly_limit_usd", 0, ["monthly_limit_usd", "a positive amount"]),
    (f"{M}.budget.monthly_limit_usd", -5, ["monthly_limit_usd", "-5"]),
    ("dataset.num_classes", 3, ["dataset.num_classes", "3", "the number of classes its manifest declares"]),
    ("dataset.name", "no-such-dataset", ["dataset.name", "'no-such-dataset'", "committed manifest"]),
    (f"{M}.instance_type", "ml.m5.huge", ["monitoring.instance_type", "'ml.m5.huge'"]),
]


@pytest.mark.parametrize(("path", "value", "fragments"), REFUSED, ids=[f"{c[0]}={c[1]!r}" for c in REFUSED])
def test_bad_monitoring_values_are_refused_naming_key_value_and_allowed(
    path: str, value: Any, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as error:
        load_stage(with_change(path, value), "dev")
    message = str(error.value)
    assert "stages.dev." in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_hourly_ground_truth_monitors_are_capped_at_1800_seconds() -> None:
    stages = with_change(f"{M}.model_quality.schedule", "cron(0 * ? * * *)")
    with pytest.raises(ConfigError, match=r"model_quality\.max_runtime_seconds: got 1801.*at most 1800"):
        stages["dev"][M]["model_quality"]["max_runtime_seconds"] = 1801
        load_stage(stages, "dev")
    stages["dev"][M]["model_quality"]["max_runtime_seconds"] = 1800
    assert load_stage(stages, "dev").monitoring.model_quality is not None


def test_a_monitor_left_out_is_not_scheduled_and_needs_no_ground_truth() -> None:
    stages = with_change(f"{M}.model_quality", ...)
    del stages["dev"][M]["model_bias"]
    del stages["dev"][M]["ground_truth_prefix"]
    config = load_stage(stages, "dev")
    assert set(config.monitoring.schedules()) == {"DataQuality", "ModelExplainability"}


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_schedules_all_four_monitors_within_their_limits(stage: str) -> None:
    config = load_stage(BASE, stage)
    schedules = config.monitoring.schedules()
    assert set(schedules) == {"DataQuality", "ModelQuality", "ModelBias", "ModelExplainability"}
    for kind, monitor in schedules.items():
        period = schedule_period_hours(monitor.schedule)
        assert monitor.max_runtime_seconds <= max_runtime_limit(kind, period)
    assert config.monitoring.ground_truth_prefix


# ---- the rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "hours"),
    [("cron(0 * ? * * *)", 1), ("cron(0 0 ? * * *)", 24), ("cron(0 23 ? * * *)", 24),
     ("cron(0 0/6 ? * * *)", 6), ("cron(0 3/1 ? * * *)", 1), ("cron(0 0/24 ? * * *)", 24)],
)  # fmt: skip
def test_accepted_schedules_have_their_period(expression: str, hours: int) -> None:
    assert schedule_period_hours(expression) == hours


@pytest.mark.parametrize(
    "expression",
    ["cron(0 * * * * *)", "cron(0 * ? * MON *)", "cron(0 0/0 ? * * *)", "cron(0 24/2 ? * * *)",
     "cron(0 1,2 ? * * *)", "cron(0 * ? * * *) ", "cron(0 */2 ? * * *)"],
)  # fmt: skip
def test_other_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="allowed: cron"):
        schedule_period_hours(expression)


def test_runtime_limits_scale_with_the_period_up_to_a_day() -> None:
    assert max_runtime_limit("DataQuality", 1) == 3600
    assert max_runtime_limit("ModelQuality", 1) == 1800
    assert max_runtime_limit("ModelBias", 6) == 10800
    assert max_runtime_limit("ModelExplainability", 24) == 86400


@pytest.mark.parametrize(
    ("offset", "seconds"), [("-P1D", -86400), ("-PT1H", -3600), ("-P1DT12H", -129600), ("-PT90M", -5400)]
)
def test_offsets_are_negative_durations(offset: str, seconds: int) -> None:
    assert offset_seconds(offset) == seconds


@pytest.mark.parametrize("offset", ["P1D", "-P", "-PT", "-P1DT", "-P1W", "-PT1S", "-P1234567890123D", "+P1D"])
def test_other_offsets_are_refused(offset: str) -> None:
    with pytest.raises(ValueError, match="negative ISO-8601"):
        offset_seconds(offset)


def test_metric_ranges_and_directions() -> None:
    assert metric_range("auc") == (0.0, 1.0)
    assert metric_range("rmse") == (0.0, math.inf)
    assert metric_range("r2") == (-math.inf, 1.0)
    assert lower_is_better("false_positive_rate") and lower_is_better("mae")
    assert not lower_is_better("f1") and not lower_is_better("weighted_recall")
    with pytest.raises(ValueError, match="'f1_score'"):
        metric_range("f1_score")
    assert set(MODEL_QUALITY_METRICS) == {"BinaryClassification", "MulticlassClassification", "Regression"}
