"""The monitoring stack: what tells the platform team that something needs them, and what it costs.

It only wires constructs: EventBridge notifications of failed or stopped jobs, failed pipeline executions
and model approval changes (``ml_platform.notifications``) and the stage's cost budget
(``ml_platform.budget``), all into the stage's alert topic (the data stack's ``AlertTopic``, whose topic and
key policies let EventBridge and AWS Budgets publish). Model Monitor schedules and drift alarms join it in
the next slice of the monitoring issue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Fn, Stack
from constructs import Construct

from ml_platform.alerts import AlertTopic, AlertTopicExports
from ml_platform.budget import StageBudget
from ml_platform.notifications import PlatformNotifications
from stacks.config import MonitoringConfig, StageConfig


class MonitoringStack(Stack):
    """Notifications and the cost budget of one stage."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        monitoring: MonitoringConfig,
        alerts_exports: AlertTopicExports,
        job_role_arn_export: str,
        pipeline_names: Sequence[str],
        model_package_group_name: str,
        cost_allocation_tags: Mapping[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        topic = AlertTopic.from_exports(self, "Alerts", alerts_exports)
        self.notifications = PlatformNotifications(
            self,
            "Notifications",
            topic=topic,
            job_role_arns=[Fn.import_value(job_role_arn_export)],
            pipeline_names=list(pipeline_names),
            model_package_group_name=model_package_group_name,
            label=f"ML platform ({config.name})",
        )
        budget = monitoring.budget
        self.budget = StageBudget(
            self,
            "Budget",
            topic=topic,
            monthly_limit_usd=budget.monthly_limit_usd,
            cost_allocation_tags=cost_allocation_tags,
            actual_thresholds_percent=(budget.actual_alert_percent,),
            forecasted_thresholds_percent=(budget.forecast_alert_percent,),
            name_prefix=self.stack_name,
        )
