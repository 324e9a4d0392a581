"""The monitoring stack: what tells the platform team that something needs them, and what it costs.

It only wires constructs: EventBridge notifications of failed or stopped jobs (the pipelines' and the
Model Monitor executions'), failed pipeline executions and model approval changes
(``ml_platform.notifications``), the stage's cost budget (``ml_platform.budget``), all into the stage's
alert topic (the data stack's ``AlertTopic``, whose topic and key policies let EventBridge and AWS Budgets
publish); and, when the stage serves an endpoint, Model Monitor for it (``ml_platform.model_monitor``: job
definitions and schedules, the jobs' role ``ml_platform.monitor_role``, the explainer model of the
explainability schedule) with the drift and model-quality alarms (``ml_platform.monitor_alarms``).

Which monitors exist is decided in app.py (stacks/monitor_baselines.py): the scheduled ones whose baseline
the champion variant's package registered; the others are reported there and left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Fn, Stack
from constructs import Construct

from ml_platform.alerts import AlertTopic, AlertTopicExports
from ml_platform.budget import StageBudget
from ml_platform.data_lake import LakeAccess, LakeExports
from ml_platform.model_monitor import (
    ExplainerModel,
    ModelMonitor,
    MonitorBaselines,
    MonitorResources,
    MonitorSchedule,
    capture_prefix,
)
from ml_platform.model_role import ModelExecutionRole
from ml_platform.monitor_alarms import DataQualityAlarmProps, ModelMonitorAlarms, ModelQualityAlarmProps
from ml_platform.monitor_role import MonitoringJobRole
from ml_platform.monitor_rules import MonitorType, schedule_period_hours
from ml_platform.notifications import PlatformNotifications
from ml_platform.serving_image import ServingImage
from stacks.config import MonitoringConfig, StageConfig
from stacks.training_stack import TRAINING_CODE_DIR


@dataclass(frozen=True)
class MonitoredEndpoint:
    """The serving stack's endpoint as the monitoring stack sees it.

    ``endpoint_name_export``: the export of its name (the serving stack's ``EndpointName`` output);
    ``capture_folder``: its data capture's folder under ``capture/``; ``baselines``: what the champion
    variant's package registered; ``monitors``: the scheduled monitors that package has baselines for;
    ``shadow_instance_type``: the champion's instance type (Clarify's shadow endpoint of the explainer).
    """

    endpoint_name_export: str
    capture_folder: str
    baselines: MonitorBaselines
    monitors: tuple[MonitorType, ...]
    shadow_instance_type: str


def monitor_schedules(monitoring: MonitoringConfig) -> dict[MonitorType, MonitorSchedule]:
    """The config's scheduled monitors as the construct's props."""
    return {
        kind: MonitorSchedule(
            schedule=s.schedule,
            max_runtime_seconds=s.max_runtime_seconds,
            start_time_offset=getattr(s, "start_time_offset", None),
            end_time_offset=getattr(s, "end_time_offset", None),
        )
        for kind, s in monitoring.schedules().items()
    }


class MonitoringStack(Stack):
    """Notifications, the cost budget and (with an endpoint) Model Monitor of one stage."""

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
        lake_exports: LakeExports | None = None,
        endpoint: MonitoredEndpoint | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        topic = AlertTopic.from_exports(self, "Alerts", alerts_exports)
        self.monitor: ModelMonitor | None = None
        self.monitor_role: MonitoringJobRole | None = None
        self.explainer: ExplainerModel | None = None
        self.monitor_alarms: ModelMonitorAlarms | None = None
        if endpoint is not None and endpoint.monitors:
            if lake_exports is None:
                raise ValueError(
                    "lake_exports: got None; allowed: the lake's exports (Model Monitor reads it)"
                )
            self._monitor(config, monitoring, endpoint, lake_exports, topic)
        self.notifications = PlatformNotifications(
            self,
            "Notifications",
            topic=topic,
            job_role_arns=[Fn.import_value(job_role_arn_export)],
            pipeline_names=list(pipeline_names),
            model_package_group_name=model_package_group_name,
            monitoring_role_arns=[self.monitor_role.role_arn] if self.monitor_role else [],
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

    def _monitor(
        self,
        config: StageConfig,
        monitoring: MonitoringConfig,
        endpoint: MonitoredEndpoint,
        lake_exports: LakeExports,
        topic: Any,
    ) -> None:
        lake = LakeAccess.from_exports(self, "Lake", lake_exports)
        endpoint_name = Fn.import_value(endpoint.endpoint_name_export)
        schedules = {k: v for k, v in monitor_schedules(monitoring).items() if k in endpoint.monitors}
        self.monitor_role = MonitoringJobRole(self, "MonitorRole", lake=lake)
        if "ModelExplainability" in schedules:
            # The explainer model serves the champion package like the endpoint's model does: same image
            # (the serving image asset, one build and repository), same artifact.
            image = ServingImage(self, "ServingImage", directory=TRAINING_CODE_DIR)
            explainer_role = ModelExecutionRole(
                self,
                "ExplainerRole",
                lake=lake,
                repositories=[image.repository],
                description="Clarify's shadow endpoint of the explainer model: pull its image, read it",
            )
            self.explainer = ExplainerModel(
                self,
                "Explainer",
                package_arn=endpoint.baselines.package_arn,
                role=explainer_role,
                name_prefix=self.stack_name,
            )
        self.monitor = ModelMonitor(
            self,
            "ModelMonitor",
            endpoint_name=endpoint_name,
            capture_prefix=capture_prefix(endpoint.capture_folder, endpoint_name),
            lake=lake,
            role=self.monitor_role,
            resources=MonitorResources(
                instance_type=monitoring.instance_type, volume_size_gb=monitoring.volume_size_gb
            ),
            schedules=schedules,
            baselines=endpoint.baselines,
            clarify=config.clarify,
            name_prefix=self.stack_name,
            tags=config.resource_tags,
            ground_truth_prefix=monitoring.ground_truth_prefix,
            explainer=self.explainer,
            shadow_instance_type=endpoint.shadow_instance_type,
        )
        self._alarms(config, monitoring, schedules, endpoint_name, topic)

    def _alarms(
        self,
        config: StageConfig,
        monitoring: MonitoringConfig,
        schedules: Mapping[MonitorType, MonitorSchedule],
        endpoint_name: str,
        topic: Any,
    ) -> None:
        assert self.monitor is not None
        names = self.monitor.schedule_names
        data_quality = quality = None
        dq, mq = monitoring.data_quality, monitoring.model_quality
        if "DataQuality" in schedules and dq is not None:
            data_quality = DataQualityAlarmProps(
                schedule_name=names["DataQuality"],
                features=config.dataset_schema.input_columns,
                drift_threshold=dq.drift_threshold,
                period_hours=schedule_period_hours(dq.schedule),
            )
        if "ModelQuality" in schedules and mq is not None:
            quality = ModelQualityAlarmProps(
                schedule_name=names["ModelQuality"],
                metric=mq.metric,
                threshold=mq.threshold,
                period_hours=schedule_period_hours(mq.schedule),
                problem_type=config.dataset_schema.contract.problem_type,
            )
        if data_quality is not None or quality is not None:
            self.monitor_alarms = ModelMonitorAlarms(
                self,
                "MonitorAlarms",
                topic=topic,
                endpoint_name=endpoint_name,
                data_quality=data_quality,
                model_quality=quality,
            )
