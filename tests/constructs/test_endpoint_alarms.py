"""EndpointAlarms and EndpointDashboard on a bare Stack; rollback_alarm_names; the cdk-nag gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

from ml_platform.alerts import AlertTopic, Publisher
from ml_platform.data_lake import PlatformKey
from ml_platform.endpoint_alarms import (
    INSTANCE_NAMESPACE,
    INVOCATION_NAMESPACE,
    ROLLBACK_ALARMS,
    AlarmedVariant,
    EndpointAlarm,
    EndpointAlarms,
    EndpointAlarmThresholds,
    EndpointDashboard,
    alarm_name,
    instance_vcpus,
    rollback_alarm_names,
)
from ml_platform.service_model import enum
from stacks.policy import add_policy_gates
from tests.conftest import feature_flags

VARIANTS = (AlarmedVariant("champion", "ml.m5.xlarge"), AlarmedVariant("challenger", "ml.c5.2xlarge"))
THRESHOLDS = EndpointAlarmThresholds(
    invocation_5xx_errors=2,
    invocation_4xx_error_rate_percent=7.5,
    model_latency_p99_ms=250,
    cpu_utilization_percent=70,
    memory_utilization_percent=85,
    disk_utilization_percent=90,
    period_seconds=120,
    evaluation_periods=5,
    datapoints_to_alarm=3,
)


def build(stack: Stack, thresholds: EndpointAlarmThresholds = THRESHOLDS) -> tuple[EndpointAlarms, Any]:
    """Topic, an endpoint listing the rollback alarms by name, the alarms and the dashboard."""
    key = PlatformKey(stack, "PlatformKey", description="test", removal_policy=RemovalPolicy.DESTROY).key
    alerts = AlertTopic(stack, "Alerts", key=key, publishers=list(Publisher))
    endpoint = sagemaker.CfnEndpoint(
        stack,
        "Endpoint",
        endpoint_config_name="config",
        deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name)
                    for name in rollback_alarm_names(stack.stack_name, [v.name for v in VARIANTS])
                ]
            )
        ),
    )
    alarms = EndpointAlarms(
        stack,
        "EndpointAlarms",
        endpoint_name=endpoint.attr_endpoint_name,
        variants=VARIANTS,
        name_prefix=stack.stack_name,
        thresholds=thresholds,
        topic=alerts.topic,
    )
    EndpointDashboard(stack, "Dashboard", alarms=alarms)
    return alarms, alerts


def alarms_by_name(template: Template) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def dimensions(stack: Stack, variant: str) -> list[dict[str, Any]]:
    return [
        {"Name": "EndpointName", "Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}},
        {"Name": "VariantName", "Value": variant},
    ]


# ---- names ----------------------------------------------------------------------------------------


def test_rollback_alarm_names() -> None:
    assert rollback_alarm_names("MlPlatform-dev-Serving", ["champion", "challenger"]) == (
        "MlPlatform-dev-Serving/champion/Invocation5XXErrors",
        "MlPlatform-dev-Serving/champion/Invocation4XXErrorRate",
        "MlPlatform-dev-Serving/champion/ModelLatencyP99",
        "MlPlatform-dev-Serving/challenger/Invocation5XXErrors",
        "MlPlatform-dev-Serving/challenger/Invocation4XXErrorRate",
        "MlPlatform-dev-Serving/challenger/ModelLatencyP99",
    )


def test_alarm_names_are_unique_across_prefixes_variants_and_alarms() -> None:
    """'-' may be in both a prefix and a variant name; '/' (in neither) keeps the joins apart."""
    names = [
        alarm_name(prefix, variant, alarm)
        for prefix in ("MlPlatform-dev", "MlPlatform", "MlPlatform-prod-Serving")
        for variant in ("a", "dev-a", "champion")
        for alarm in EndpointAlarm
    ]
    assert len(set(names)) == len(names)


def test_at_most_three_variants_roll_back() -> None:
    """SageMaker's AutoRollbackConfiguration takes at most 10 alarms (3 per variant)."""
    assert len(rollback_alarm_names("P", ["a", "b", "c"])) == 9
    with pytest.raises(ValueError, match=r"variant_names: got 4 variants .*allowed: at most 3 .*at most 10"):
        rollback_alarm_names("P", ["a", "b", "c", "d"])


@pytest.mark.parametrize(
    ("prefix", "variants", "message"),
    [
        ("a/b", ["v"], "name_prefix: got 'a/b'; allowed: a letter or digit"),
        ("", ["v"], "name_prefix: got ''"),
        ("P", [], r"variant_names: got \[\]; allowed: a non-empty sequence"),
        ("P", "champion", "variant_names: got 'champion'; allowed: a non-empty sequence"),
        ("P", ["under_score"], "variant_names: got 'under_score'; allowed: SageMaker variant names"),
        ("P", ["-x"], "variant_names: got '-x'"),
        ("P", ["v" * 64], "at most 63 characters"),
        ("P", ["a", "b", "a"], r"variant_names: got \['a'\] more than once"),
        ("P" * 200, ["v" * 63], r"name_prefix: got 'P+', which makes the alarm name .* 284 characters long"),
    ],
)
def test_bad_names_are_refused(prefix: str, variants: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rollback_alarm_names(prefix, variants)


# ---- alarms ---------------------------------------------------------------------------------------


def test_the_rollback_names_are_the_alarms_that_exist(bare_stack: Stack) -> None:
    alarms, _ = build(bare_stack)
    names = rollback_alarm_names("TestStack", ["champion", "challenger"])
    assert alarms.rollback_alarm_names == names
    assert tuple(a.node.default_child.alarm_name for a in alarms.rollback_alarms) == names  # type: ignore[union-attr]
    rendered = alarms_by_name(Template.from_stack(bare_stack))
    assert set(names) <= set(rendered)
    assert len(rendered) == len(VARIANTS) * len(EndpointAlarm)
    for name, props in rendered.items():
        rolls_back = "Rolls back a blue/green deployment." in props["AlarmDescription"]
        assert rolls_back == (name in names)
    endpoint = next(iter(Template.from_stack(bare_stack).find_resources("AWS::SageMaker::Endpoint").values()))
    listed = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in listed] == list(names)


def test_no_cycle_the_alarms_reference_the_endpoint_not_back(bare_stack: Stack) -> None:
    build(bare_stack)
    resources = Template.from_stack(bare_stack).to_json()["Resources"]
    alarm_ids = [k for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    endpoint = json.dumps(resources["Endpoint"])
    assert not [a for a in alarm_ids if a in endpoint]
    assert all(
        "Endpoint" in json.dumps(resources[a]["Properties"]["Dimensions"])
        for a in alarm_ids
        if "Dimensions" in resources[a]["Properties"]
    )


def common(props: dict[str, Any], stack: Stack, topic_ref: Any) -> None:
    """What every alarm has: the thresholds' periods, '>' and both actions to the topic."""
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["EvaluationPeriods"] == 5
    assert props["DatapointsToAlarm"] == 3
    assert props["AlarmActions"] == [topic_ref]
    assert props["OKActions"] == [topic_ref]
    assert "InsufficientDataActions" not in props


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_simple_metric_alarms(bare_stack: Stack, variant: AlarmedVariant) -> None:
    _, alerts = build(bare_stack)
    rendered = alarms_by_name(Template.from_stack(bare_stack))
    topic_ref = bare_stack.resolve(alerts.topic.topic_arn)
    vcpus = {"ml.m5.xlarge": 4, "ml.c5.2xlarge": 8}[variant.instance_type]
    expected = {
        EndpointAlarm.INVOCATION_5XX_ERRORS: (
            INVOCATION_NAMESPACE,
            "Invocation5XXErrors",
            "Sum",
            2,
            "notBreaching",
        ),
        EndpointAlarm.CPU_UTILIZATION: (
            INSTANCE_NAMESPACE,
            "CPUUtilization",
            "Average",
            70 * vcpus,
            "missing",
        ),
        EndpointAlarm.MEMORY_UTILIZATION: (INSTANCE_NAMESPACE, "MemoryUtilization", "Average", 85, "missing"),
        EndpointAlarm.DISK_UTILIZATION: (INSTANCE_NAMESPACE, "DiskUtilization", "Average", 90, "missing"),
    }
    for kind, (namespace, metric, statistic, threshold, missing) in expected.items():
        props = rendered[f"TestStack/{variant.name}/{kind.value}"]
        common(props, bare_stack, topic_ref)
        assert props["Namespace"] == namespace
        assert props["MetricName"] == metric
        assert props["Dimensions"] == dimensions(bare_stack, variant.name)
        assert props["Statistic"] == statistic
        assert props["Period"] == 120
        assert props["Threshold"] == threshold
        assert props["TreatMissingData"] == missing


def test_cpu_alarm_explains_the_vcpu_scaling(bare_stack: Stack) -> None:
    build(bare_stack)
    props = alarms_by_name(Template.from_stack(bare_stack))["TestStack/challenger/CPUUtilization"]
    assert props["Threshold"] == 560
    assert "ml.c5.2xlarge has 8 vCPUs, so the threshold is 560" in props["AlarmDescription"]


def test_latency_alarm_is_p99_in_microseconds(bare_stack: Stack) -> None:
    _, alerts = build(bare_stack)
    props = alarms_by_name(Template.from_stack(bare_stack))["TestStack/champion/ModelLatencyP99"]
    common(props, bare_stack, bare_stack.resolve(alerts.topic.topic_arn))
    assert props["Namespace"] == INVOCATION_NAMESPACE
    assert props["MetricName"] == "ModelLatency"
    assert props["Dimensions"] == dimensions(bare_stack, "champion")
    assert props["ExtendedStatistic"] == "p99"
    assert "Statistic" not in props
    assert props["Threshold"] == 250_000  # 250 ms
    assert "250 ms" in props["AlarmDescription"] and "microseconds" in props["AlarmDescription"]
    assert props["TreatMissingData"] == "notBreaching"
    # "ignore" would freeze a p99 alarm below 1000 requests per period (canaries, quiet endpoints).
    assert props["EvaluateLowSampleCountPercentile"] == "evaluate"


def test_only_the_percentile_alarm_sets_low_sample_evaluation(bare_stack: Stack) -> None:
    build(bare_stack)
    setting = {
        n: "EvaluateLowSampleCountPercentile" in p
        for n, p in alarms_by_name(Template.from_stack(bare_stack)).items()
    }
    assert {n for n, present in setting.items() if present} == {
        "TestStack/champion/ModelLatencyP99",
        "TestStack/challenger/ModelLatencyP99",
    }


def test_4xx_rate_alarm_is_metric_math(bare_stack: Stack) -> None:
    _, alerts = build(bare_stack)
    props = alarms_by_name(Template.from_stack(bare_stack))["TestStack/challenger/Invocation4XXErrorRate"]
    common(props, bare_stack, bare_stack.resolve(alerts.topic.topic_arn))
    assert props["Threshold"] == 7.5
    assert props["TreatMissingData"] == "notBreaching"
    assert "MetricName" not in props
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "100 * FILL(errors4xx, 0) / invocations"
    assert expression["ReturnData"] is True
    stats = {m["Id"]: m for m in props["Metrics"] if "MetricStat" in m}
    assert set(stats) == {"errors4xx", "invocations"}
    for metric_id, name in (("errors4xx", "Invocation4XXErrors"), ("invocations", "Invocations")):
        stat = stats[metric_id]
        assert stat["ReturnData"] is False
        assert stat["MetricStat"]["Stat"] == "Sum"
        assert stat["MetricStat"]["Period"] == 120
        assert stat["MetricStat"]["Metric"] == {
            "Namespace": INVOCATION_NAMESPACE,
            "MetricName": name,
            "Dimensions": dimensions(bare_stack, "challenger"),
        }


def test_default_thresholds_are_valid_and_any_5xx_alarms() -> None:
    defaults = EndpointAlarmThresholds()
    assert defaults.invocation_5xx_errors == 0
    assert defaults.model_latency_p99_microseconds == defaults.model_latency_p99_ms * 1000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"invocation_5xx_errors": -1}, "invocation_5xx_errors: got -1; allowed: a count of at least 0"),
        ({"invocation_5xx_errors": 1.5}, "invocation_5xx_errors: got 1.5; allowed: an integer"),
        ({"invocation_5xx_errors": True}, "invocation_5xx_errors: got True; allowed: an integer"),
        (
            {"invocation_4xx_error_rate_percent": 100},
            "invocation_4xx_error_rate_percent: got 100; allowed: a percentage",
        ),
        ({"model_latency_p99_ms": 0}, r"model_latency_p99_ms: got 0; allowed: milliseconds, 0 < ms < 60000"),
        ({"model_latency_p99_ms": 60_000}, "model_latency_p99_ms: got 60000"),
        ({"model_latency_p99_ms": float("nan")}, "model_latency_p99_ms: got nan; allowed: a finite number"),
        ({"model_latency_p99_ms": "500"}, "model_latency_p99_ms: got '500'; allowed: a finite number"),
        (
            {"cpu_utilization_percent": 0},
            "cpu_utilization_percent: got 0; allowed: a percentage of the instance",
        ),
        ({"memory_utilization_percent": 100}, "memory_utilization_percent: got 100"),
        ({"disk_utilization_percent": 150}, "disk_utilization_percent: got 150"),
        ({"period_seconds": 30}, "period_seconds: got 30; allowed: a multiple of 60"),
        ({"period_seconds": 90}, "period_seconds: got 90"),
        ({"evaluation_periods": 0}, "evaluation_periods: got 0; allowed: at least 1"),
        ({"datapoints_to_alarm": 4}, r"datapoints_to_alarm: got 4; allowed: 1 to evaluation_periods \(3\)"),
        ({"datapoints_to_alarm": 0}, "datapoints_to_alarm: got 0"),
        (
            {"period_seconds": 3600, "evaluation_periods": 25},
            r"evaluation_periods: got 25 .*allowed: at most 24 \(CloudWatch evaluates at most one day\)",
        ),
    ],
)
def test_bad_thresholds_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EndpointAlarmThresholds(**overrides)


def test_bad_variants_are_refused(bare_stack: Stack) -> None:
    key = PlatformKey(bare_stack, "K", description="t", removal_policy=RemovalPolicy.DESTROY).key
    topic = AlertTopic(bare_stack, "Alerts", key=key).topic
    common_props: dict[str, Any] = {
        "endpoint_name": "ep",
        "name_prefix": "P",
        "thresholds": THRESHOLDS,
        "topic": topic,
    }
    with pytest.raises(ValueError, match="variants: got none"):
        EndpointAlarms(bare_stack, "A", variants=[], **common_props)
    with pytest.raises(
        ValueError, match=r"instance_type: got 'm5\.xlarge'; allowed: an ml\.<family>\.<size> type"
    ):
        EndpointAlarms(bare_stack, "B", variants=[AlarmedVariant("v", "m5.xlarge")], **common_props)
    with pytest.raises(ValueError, match="variant_names: got 'bad name'"):
        EndpointAlarms(bare_stack, "C", variants=[AlarmedVariant("bad name", "ml.m5.large")], **common_props)


# ---- vCPUs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "vcpus"),
    [
        ("ml.t2.medium", 2),
        ("ml.r8g.medium", 1),
        ("ml.m5.large", 2),
        ("ml.m5.xlarge", 4),
        ("ml.g4dn.xlarge", 4),
        ("ml.c5.9xlarge", 36),
        ("ml.c4.8xlarge", 36),
        ("ml.m4.10xlarge", 40),
        ("ml.p4d.24xlarge", 96),
        ("ml.p6-b200.48xlarge", 192),
    ],
)
def test_instance_vcpus(instance_type: str, vcpus: int) -> None:
    assert instance_vcpus(instance_type) == vcpus


def test_every_real_time_instance_type_has_a_vcpu_count() -> None:
    for instance_type in enum("ProductionVariantInstanceType"):
        assert instance_vcpus(instance_type) >= 1


@pytest.mark.parametrize("instance_type", ["ml.m5", "m5.large", "ml.m5.huge", "ml.m5.metal"])
def test_unknown_sizes_are_refused(instance_type: str) -> None:
    with pytest.raises(ValueError, match=f"instance_type: got '{instance_type}'"):
        instance_vcpus(instance_type)


# ---- dashboard ------------------------------------------------------------------------------------


def render(node: Any) -> str:
    """A dashboard body as text: literal parts joined, each CloudFormation token as a placeholder."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return str(separator).join(render(p) for p in parts)
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return f"<{'.'.join(node['Fn::GetAtt'])}>"
    if isinstance(node, dict) and "Ref" in node:
        return f"<{node['Ref']}>"
    raise AssertionError(f"unexpected node {node!r}")


def dashboard_body(stack: Stack) -> dict[str, Any]:
    (dashboard,) = Template.from_stack(stack).find_resources("AWS::CloudWatch::Dashboard").values()
    assert "DashboardName" not in dashboard["Properties"]
    body: dict[str, Any] = json.loads(render(dashboard["Properties"]["DashboardBody"]))
    return body


def widget(body: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [w for w in body["widgets"] if w["properties"].get("title") == title]
    return found["properties"]


def test_dashboard_alarm_status_widget_lists_every_alarm(bare_stack: Stack) -> None:
    build(bare_stack)
    body = dashboard_body(bare_stack)
    (status,) = [w["properties"] for w in body["widgets"] if w["type"] == "alarm"]
    assert len(status["alarms"]) == len(VARIANTS) * len(EndpointAlarm)
    assert all(a.startswith("<EndpointAlarms") and a.endswith(".Arn>") for a in status["alarms"])
    assert all(a.value in status["title"] for a in ROLLBACK_ALARMS)


@pytest.mark.parametrize("variant", [v.name for v in VARIANTS])
def test_dashboard_graphs_per_variant(bare_stack: Stack, variant: str) -> None:
    build(bare_stack)
    body = dashboard_body(bare_stack)
    dims = ["EndpointName", "<Endpoint.EndpointName>", "VariantName", variant]

    invocations = widget(body, f"{variant}: invocations")["metrics"]
    assert invocations == [
        [INVOCATION_NAMESPACE, "Invocations", *dims, {"label": "Invocations", "stat": "Sum", "period": 120}]
    ]

    errors = widget(body, f"{variant}: errors")
    assert [m[1] for m in errors["metrics"]] == ["Invocation4XXErrors", "Invocation5XXErrors"]
    assert errors["annotations"]["horizontal"] == [{"value": 2, "label": "alarm threshold", "yAxis": "left"}]

    rate = widget(body, f"{variant}: 4XX rate")["metrics"]
    assert rate[0][0]["expression"] == "100 * FILL(errors4xx, 0) / invocations"

    latency = widget(body, f"{variant}: ModelLatency")
    expressions = [m[0]["expression"] for m in latency["metrics"] if isinstance(m[0], dict)]
    assert expressions == ["latencyp50 / 1000", "latencyp99 / 1000"]
    raw = [m for m in latency["metrics"] if m[0] == INVOCATION_NAMESPACE]
    assert sorted(m[-1]["stat"] for m in raw) == ["p50", "p99"]
    assert latency["yAxis"]["left"]["label"] == "ms"
    assert latency["annotations"]["horizontal"][0]["value"] == 250

    vcpus = {"champion": 4, "challenger": 8}[variant]
    cpu = widget(body, f"{variant}: CPU")
    assert cpu["metrics"][0][0]["expression"] == f"cpu / {vcpus}"
    assert cpu["annotations"]["horizontal"][0]["value"] == 70
    for title, metric in (("memory", "MemoryUtilization"), ("disk", "DiskUtilization")):
        (graph,) = widget(body, f"{variant}: {title}")["metrics"]
        assert graph[:2] == [INSTANCE_NAMESPACE, metric]
        assert graph[2:6] == dims


# ---- cdk-nag --------------------------------------------------------------------------------------


def test_the_policy_gates_and_cfn_lint_pass_on_topic_alarms_and_dashboard(tmp_path: Path) -> None:
    """All three cdk-nag packs without a single acknowledgment, and cfn-lint without a finding."""
    app = App(context=feature_flags(), outdir=str(tmp_path))
    build(Stack(app, "TestStack"))
    add_policy_gates(app)
    app.synth()  # raises on any finding
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    template = (tmp_path / "TestStack.template.json").read_text()
    assert [str(m) for m in lint(template, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))] == []
