"""ModelMonitorAlarms on a bare Stack: metrics, dimensions, thresholds, directions, actions; bad props."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

from ml_platform.alerts import AlertTopic, Publisher
from ml_platform.data_lake import PlatformKey
from ml_platform.monitor_alarms import (
    DATA_METRICS_NAMESPACE,
    DATAPOINTS_TO_ALARM,
    EVALUATION_PERIODS,
    MAX_METRICS_PER_ALARM,
    MODEL_METRICS_NAMESPACE,
    DataQualityAlarmProps,
    ModelMonitorAlarms,
    ModelQualityAlarmProps,
)
from ml_platform.monitor_rules import MODEL_QUALITY_METRICS
from stacks.policy import add_policy_gates
from tests.conftest import feature_flags

# 23 features (two groups of 10 and one of 3), names as the breast-cancer dataset spells them.
FEATURES = (*(f"mean feature {i}" for i in range(20)), "worst radius", "worst area", "label_free")
DATA_QUALITY = DataQualityAlarmProps(
    schedule_name="dev-data-quality", features=FEATURES, drift_threshold=0.2, period_hours=6
)
MODEL_QUALITY = ModelQualityAlarmProps(
    schedule_name="dev-model-quality", metric="f1", threshold=0.8, period_hours=24
)
ENDPOINT = {"Fn::GetAtt": ["Endpoint", "EndpointName"]}


def build(
    stack: Stack,
    data_quality: DataQualityAlarmProps | None = DATA_QUALITY,
    model_quality: ModelQualityAlarmProps | None = MODEL_QUALITY,
) -> tuple[ModelMonitorAlarms, AlertTopic]:
    key = PlatformKey(stack, "PlatformKey", description="test", removal_policy=RemovalPolicy.DESTROY).key
    alerts = AlertTopic(stack, "Alerts", key=key, publishers=list(Publisher))
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="config")
    alarms = ModelMonitorAlarms(
        stack,
        "MonitorAlarms",
        topic=alerts.topic,
        endpoint_name=endpoint.attr_endpoint_name,
        data_quality=data_quality,
        model_quality=model_quality,
    )
    return alarms, alerts


def metric_alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template.find_resources("AWS::CloudWatch::Alarm").items()}


def topic_ref(template: Template) -> dict[str, Any]:
    (topic_id,) = template.find_resources("AWS::SNS::Topic")
    return {"Ref": topic_id}


def drift_group_alarms(template: Template) -> list[dict[str, Any]]:
    """The group alarms in feature order (their logical ids end DriftGroup<n><hash>)."""
    alarms = {k: v for k, v in metric_alarms(template).items() if "DriftGroup" in k}
    return [alarms[k] for k in sorted(alarms, key=lambda k: int(k.split("DriftGroup")[1][:-8]))]


# ---- data quality -------------------------------------------------------------------------------


def test_features_are_grouped_by_ten_in_order() -> None:
    groups = DATA_QUALITY.feature_groups
    assert [len(g) for g in groups] == [10, 10, 3]
    assert sum(groups, ()) == FEATURES
    assert MAX_METRICS_PER_ALARM == 10


def test_drift_group_alarms_watch_max_of_their_features(bare_stack: Stack) -> None:
    build(bare_stack)
    template = Template.from_stack(bare_stack)
    groups = drift_group_alarms(template)
    assert len(groups) == 3
    for alarm, features in zip(groups, DATA_QUALITY.feature_groups, strict=True):
        queries = alarm["Metrics"]
        (expression,) = [q for q in queries if "Expression" in q]
        ids = [f"d{i}" for i in range(len(features))]
        assert expression["Expression"] == f"MAX([{', '.join(ids)}])"
        assert expression["ReturnData"] is True
        stats = {q["Id"]: q["MetricStat"] for q in queries if "MetricStat" in q}
        assert sorted(stats) == sorted(ids)
        for metric_id, feature in zip(ids, features, strict=True):
            stat = stats[metric_id]
            assert stat["Metric"] == {
                "Namespace": DATA_METRICS_NAMESPACE,
                "MetricName": f"feature_baseline_drift_{feature}",
                "Dimensions": [
                    {"Name": "Endpoint", "Value": ENDPOINT},
                    {"Name": "MonitoringSchedule", "Value": "dev-data-quality"},
                ],
            }
            assert stat["Stat"] == "Maximum"
            assert stat["Period"] == 6 * 3600  # the schedule's period
        assert alarm["Threshold"] == 0.2
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (2, 1)
        assert "AlarmName" not in alarm  # CloudFormation names it
        assert alarm["AlarmActions"] == [topic_ref(template)]
        assert alarm["OKActions"] == [topic_ref(template)]
        assert "InsufficientDataActions" not in alarm
        assert all(f in alarm["AlarmDescription"] for f in features)


def test_attributes_list_every_alarm(bare_stack: Stack) -> None:
    alarms, _ = build(bare_stack)
    assert len(alarms.drift_alarms) == 3
    assert alarms.all_alarms == (*alarms.drift_alarms, alarms.model_quality_alarm)
    assert len(metric_alarms(Template.from_stack(bare_stack))) == 4


def test_one_feature_is_one_group(bare_stack: Stack) -> None:
    props = DataQualityAlarmProps(
        schedule_name="s", features=("mean radius",), drift_threshold=1, period_hours=1
    )
    build(bare_stack, data_quality=props, model_quality=None)
    template = Template.from_stack(bare_stack)
    (group,) = drift_group_alarms(template)
    assert [q["Expression"] for q in group["Metrics"] if "Expression" in q] == ["MAX([d0])"]
    (stat,) = [q["MetricStat"] for q in group["Metrics"] if "MetricStat" in q]
    assert stat["Metric"]["MetricName"] == "feature_baseline_drift_mean radius"
    assert stat["Period"] == 3600


# ---- model quality ------------------------------------------------------------------------------


def model_quality_alarm(template: Template) -> dict[str, Any]:
    (alarm,) = [v for k, v in metric_alarms(template).items() if "ModelQuality" in k]
    return alarm


def test_model_quality_alarm_fires_below_a_score(bare_stack: Stack) -> None:
    build(bare_stack)
    template = Template.from_stack(bare_stack)
    alarm = model_quality_alarm(template)
    assert alarm["Namespace"] == MODEL_METRICS_NAMESPACE
    assert alarm["MetricName"] == "f1"
    assert alarm["Dimensions"] == [
        {"Name": "Endpoint", "Value": ENDPOINT},
        {"Name": "MonitoringSchedule", "Value": "dev-model-quality"},
    ]
    assert alarm["Statistic"] == "Minimum"
    assert alarm["Period"] == 24 * 3600
    assert alarm["Threshold"] == 0.8
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        EVALUATION_PERIODS,
        DATAPOINTS_TO_ALARM,
    )
    assert alarm["AlarmActions"] == [topic_ref(template)]
    assert alarm["OKActions"] == [topic_ref(template)]
    assert "AlarmName" not in alarm


@pytest.mark.parametrize(
    ("metric", "threshold", "operator", "statistic"),
    [
        ("mae", 3.5, "GreaterThanThreshold", "Maximum"),
        ("rmse", 0, "GreaterThanThreshold", "Maximum"),
        ("false_positive_rate", 0.1, "GreaterThanThreshold", "Maximum"),
        ("weighted_f1", 1, "LessThanThreshold", "Minimum"),
        ("r2", -0.5, "LessThanThreshold", "Minimum"),
        ("auc", 0.75, "LessThanThreshold", "Minimum"),
    ],
)
def test_model_quality_direction_comes_from_the_metric(
    bare_stack: Stack, metric: str, threshold: float, operator: str, statistic: str
) -> None:
    props = ModelQualityAlarmProps(schedule_name="mq", metric=metric, threshold=threshold, period_hours=2)
    build(bare_stack, data_quality=None, model_quality=props)
    template = Template.from_stack(bare_stack)
    alarm = model_quality_alarm(template)
    assert (alarm["MetricName"], alarm["ComparisonOperator"], alarm["Statistic"]) == (
        metric,
        operator,
        statistic,
    )
    assert alarm["Period"] == 7200


def test_only_model_quality_gives_one_alarm(bare_stack: Stack) -> None:
    alarms, _ = build(bare_stack, data_quality=None)
    assert alarms.drift_alarms == ()
    assert alarms.all_alarms == (alarms.model_quality_alarm,)
    assert len(metric_alarms(Template.from_stack(bare_stack))) == 1


# ---- bad props ----------------------------------------------------------------------------------


DQ: dict[str, Any] = {"schedule_name": "s", "features": ("a",), "drift_threshold": 0.1, "period_hours": 1}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"drift_threshold": 0}, r"drift_threshold: got 0; allowed: a distance 0 < threshold <= 1"),
        ({"drift_threshold": 1.5}, r"drift_threshold: got 1.5; allowed: a distance"),
        ({"drift_threshold": -0.1}, r"drift_threshold: got -0.1"),
        ({"drift_threshold": math.nan}, r"drift_threshold: got nan; allowed: a finite number"),
        ({"drift_threshold": True}, r"drift_threshold: got True; allowed: a finite number"),
        ({"drift_threshold": "0.1"}, r"drift_threshold: got '0.1'; allowed: a finite number"),
        ({"features": ()}, r"features: got \(\); allowed: a non-empty sequence"),
        ({"features": "mean radius"}, r"features: got 'mean radius'; allowed: a non-empty sequence"),
        ({"features": ("a", "b", "a")}, r"features: got \['a'\] more than once; allowed: unique"),
        ({"features": ("  ",)}, r"features: got '  '; allowed: a column name of printable ASCII"),
        ({"features": ("a\tb",)}, r"features: got 'a\\tb'; allowed"),
        ({"features": ("\u00fcber",)}, r"features: got '\u00fcber'; allowed"),
        ({"features": ("x" * 233,)}, r"features: got 'x+'; allowed: .*at most 232 characters"),
        ({"features": (7,)}, r"features: got 7; allowed"),
        (
            {"period_hours": 0},
            r"period_hours: got 0; allowed: the schedule's period, an integer from 1 to 24",
        ),
        ({"period_hours": 25}, r"period_hours: got 25"),
        ({"period_hours": 1.5}, r"period_hours: got 1.5"),
        ({"schedule_name": "bad_name"}, r"schedule_name: got 'bad_name'; allowed: a SageMaker name"),
        ({"schedule_name": "x" * 64}, r"schedule_name: got 'x+'; allowed: a SageMaker name"),
    ],
)
def test_bad_data_quality_props_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataQualityAlarmProps(**{**DQ, **overrides})


def test_longest_feature_name_is_accepted() -> None:
    props = DataQualityAlarmProps(**{**DQ, "features": ["x" * 232]})
    assert len("feature_baseline_drift_" + props.features[0]) == 255
    assert isinstance(props.features, tuple)


MQ: dict[str, Any] = {"schedule_name": "s", "metric": "f1", "threshold": 0.5, "period_hours": 1}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"threshold": 0}, r"threshold: got 0; allowed: 0 < threshold <= 1 \(f1 alarms below"),
        ({"threshold": 1.01}, r"threshold: got 1.01; allowed: 0 < threshold <= 1"),
        ({"metric": "accuracy", "threshold": -0.2}, r"threshold: got -0.2; allowed: 0 < threshold <= 1"),
        ({"metric": "false_negative_rate", "threshold": 1}, r"threshold: got 1; allowed: 0 <= threshold < 1"),
        ({"metric": "mae", "threshold": -1}, r"threshold: got -1; allowed: 0 <= threshold < inf"),
        ({"metric": "mse", "threshold": math.inf}, r"threshold: got inf; allowed: a finite number"),
        ({"metric": "r2", "threshold": 1.2}, r"threshold: got 1.2; allowed: -inf < threshold <= 1"),
        ({"threshold": None}, r"threshold: got None; allowed: a finite number"),
        ({"metric": "F1"}, r"metric: got 'F1'; allowed: BinaryClassification: accuracy"),
        ({"metric": "weighted_f1", "problem_type": "BinaryClassification"}, r"allowed for Binary"),
        (
            {"metric": "f1", "problem_type": "MulticlassClassification"},
            r"metric: got 'f1'; allowed for Multi",
        ),
        ({"problem_type": "Binary"}, r"problem_type: got 'Binary'; allowed: BinaryClassification"),
        ({"period_hours": 48}, r"period_hours: got 48"),
        ({"schedule_name": "-x"}, r"schedule_name: got '-x'"),
    ],
)
def test_bad_model_quality_props_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelQualityAlarmProps(**{**MQ, **overrides})


def test_every_published_metric_has_a_valid_threshold() -> None:
    for problem_type, metrics in MODEL_QUALITY_METRICS.items():
        for metric in metrics:
            props = ModelQualityAlarmProps(
                schedule_name="s", metric=metric, threshold=0.5, period_hours=1, problem_type=problem_type
            )
            errors = {"mae", "mse", "rmse", "false_positive_rate", "false_negative_rate"}
            assert props.lower_is_better == (metric in errors)


def test_construct_refuses_no_props_and_a_bad_endpoint_name(bare_stack: Stack) -> None:
    key = PlatformKey(bare_stack, "Key", description="t", removal_policy=RemovalPolicy.DESTROY).key
    topic = AlertTopic(bare_stack, "Alerts", key=key, publishers=[Publisher.CLOUDWATCH]).topic
    with pytest.raises(ValueError, match=r"data_quality, model_quality: got None for both"):
        ModelMonitorAlarms(
            bare_stack, "A", topic=topic, endpoint_name="ep", data_quality=None, model_quality=None
        )
    with pytest.raises(ValueError, match=r"endpoint_name: got 'my_endpoint'; allowed: a SageMaker name"):
        ModelMonitorAlarms(
            bare_stack,
            "B",
            topic=topic,
            endpoint_name="my_endpoint",
            data_quality=DATA_QUALITY,
            model_quality=None,
        )


# ---- cdk-nag and cfn-lint -----------------------------------------------------------------------


def test_the_policy_gates_and_cfn_lint_pass(tmp_path: Path) -> None:
    app = App(context=feature_flags(), outdir=str(tmp_path))
    build(Stack(app, "TestStack"))
    add_policy_gates(app)
    app.synth()  # raises on any finding
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    template = (tmp_path / "TestStack.template.json").read_text()
    assert [str(m) for m in lint(template, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))] == []
