"""The monitoring stack on the shared synth: notifications and the budget reach the stage's alert topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ml_platform.budget import budget_name
from stacks.config import platform_tags
from tests.conftest import STAGES, SynthesizedStage


def of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def export_names(template: dict[str, Any]) -> set[str]:
    return {o["Export"]["Name"] for o in template.get("Outputs", {}).values() if "Export" in o}


@pytest.mark.parametrize("stage", STAGES)
def test_every_rule_publishes_to_the_data_stacks_alert_topic_without_a_role(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    template = synth.template("monitoring")
    rules = of_type(template, "AWS::Events::Rule")
    assert rules
    topic_export = f"MlPlatform-{stage}-Data:AlertTopicArn"
    assert topic_export in export_names(synth.template("data"))
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::ImportValue": topic_export}
        assert "RoleArn" not in target
    # The only roles: Model Monitor's jobs and the explainer model (none for the rules' delivery).
    roles = {lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert {lid.rstrip("0123456789ABCDEF") for lid in roles} == {"MonitorRole", "ExplainerRole"}


@pytest.mark.parametrize("stage", STAGES)
def test_job_rules_match_the_training_stacks_execution_role_and_pipelines(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    text = json.dumps(synth.template("monitoring"))
    role_export = f"MlPlatform-{stage}-Training:ExecutionRoleArn"
    assert role_export in export_names(synth.template("training"))
    assert json.dumps({"Fn::ImportValue": role_export}) in text
    training = synth.stacks["training"]
    for name in training.pipeline_names:  # type: ignore[attr-defined]
        assert name in text, name
    assert training.model_package_group_name in text  # type: ignore[attr-defined]


@pytest.mark.parametrize("stage", STAGES)
def test_the_budget_is_the_stage_config_on_the_platforms_cost_allocation_tags(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    budget_cfg = synth.config.monitoring.budget
    (budget,) = of_type(synth.template("monitoring"), "AWS::Budgets::Budget")
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": budget_cfg.monthly_limit_usd, "Unit": "USD"}
    assert props["Budget"]["BudgetName"] == budget_name(f"MlPlatform-{stage}-Monitoring")
    assert (props["Budget"]["BudgetType"], props["Budget"]["TimeUnit"]) == ("COST", "MONTHLY")
    tags = json.dumps(props["Budget"]["FilterExpression"])
    for key, value in platform_tags(stage).items():
        assert f'"{key}"' in tags and f'"{value}"' in tags, (key, value)
    thresholds = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"]): n["Subscribers"]
        for n in props["NotificationsWithSubscribers"]
    }
    assert set(thresholds) == {
        ("ACTUAL", budget_cfg.actual_alert_percent),
        ("FORECASTED", budget_cfg.forecast_alert_percent),
    }
    for subscribers in thresholds.values():
        assert subscribers == [
            {
                "SubscriptionType": "SNS",
                "Address": {"Fn::ImportValue": f"MlPlatform-{stage}-Data:AlertTopicArn"},
            }
        ]


@pytest.mark.parametrize("stage", STAGES)
def test_the_alert_topic_lets_cloudwatch_eventbridge_and_budgets_publish(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    data = synthesized[stage].template("data")
    (key,) = of_type(data, "AWS::KMS::Key")
    key_principals = {
        s["Principal"].get("Service")
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if isinstance(s.get("Principal"), dict)
    }
    (policy,) = of_type(data, "AWS::SNS::TopicPolicy")
    topic_principals = {
        s["Principal"].get("Service")
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and isinstance(s.get("Principal"), dict)
    }
    services = {"cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com"}
    assert services <= key_principals and services <= topic_principals


@pytest.mark.parametrize("stage", STAGES)
def test_failed_stopped_and_violating_monitoring_jobs_notify_by_the_monitoring_role(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """Model Monitor executions are processing jobs told apart by their role: the job definitions' role.
    Failed, stopped, and completed with violations (by the exit message) each notify."""
    synth = synthesized[stage]
    template = synth.template("monitoring")
    definitions = [r for r in template["Resources"].values() if r["Type"].endswith("JobDefinition")]
    assert definitions
    (role,) = {json.dumps(r["Properties"]["RoleArn"]) for r in definitions}
    patterns = {}
    for rule in of_type(template, "AWS::Events::Rule"):
        detail = rule["Properties"]["EventPattern"]["detail"]
        if "ProcessingJobStatus" in detail and role in json.dumps(detail.get("RoleArn")):
            patterns[tuple(detail["ProcessingJobStatus"])] = detail
    assert set(patterns) == {("Failed",), ("Stopped",), ("Completed",)}
    assert patterns[("Completed",)]["ExitMessage"] == [{"prefix": "CompletedWithViolations"}]
    job_role = json.dumps({"Fn::ImportValue": f"MlPlatform-{stage}-Training:ExecutionRoleArn"})
    assert all(job_role not in json.dumps(d) for d in patterns.values())


@pytest.mark.parametrize("stage", STAGES)
def test_model_monitor_alarms_watch_the_schedules_and_alert_the_topic(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """Helper A's drift and model-quality alarms are wired to the schedules this stack declares."""
    synth = synthesized[stage]
    template = synth.template("monitoring")
    schedules = {
        r["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]: r["Properties"][
            "MonitoringScheduleName"
        ]
        for r in of_type(template, "AWS::SageMaker::MonitoringSchedule")
    }
    alarms = json.dumps(of_type(template, "AWS::CloudWatch::Alarm"))
    assert schedules["DataQuality"] in alarms and "feature_baseline_drift_" in alarms
    assert schedules["ModelQuality"] in alarms
    assert synth.config.monitoring.model_quality.metric in alarms
    for alarm in of_type(template, "AWS::CloudWatch::Alarm"):
        topic = {"Fn::ImportValue": f"MlPlatform-{stage}-Data:AlertTopicArn"}
        assert alarm["Properties"]["AlarmActions"] == [topic] and alarm["Properties"]["OKActions"] == [topic]
