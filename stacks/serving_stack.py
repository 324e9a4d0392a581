"""The serving stack: the real-time endpoint of one stage with its models, scaling, alarms and dashboard.

It only wires constructs: models, endpoint config, endpoint and scaling live in ``ml_platform.endpoint``,
the model role in ``ml_platform.model_role``, alarms and dashboard in ``ml_platform.endpoint_alarms``. The
stage config gives the variants (which model package each serves is resolved by app.py,
stacks/model_packages.py), the capture sampling, the deployment, the scaling and the alarm thresholds;
the data stack gives the lake, the stage key and the alert topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from ml_platform.alerts import AlertTopic, AlertTopicExports
from ml_platform.data_lake import LakeAccess, LakeExports, Zone
from ml_platform.endpoint import CaptureProps, DeploymentProps, ScalingProps, ServingEndpoint, VariantProps
from ml_platform.endpoint_alarms import (
    AlarmedVariant,
    EndpointAlarms,
    EndpointAlarmThresholds,
    EndpointDashboard,
    rollback_alarm_names,
)
from ml_platform.model_role import ModelExecutionRole
from ml_platform.serving_image import ServingImage
from stacks.config import ServingConfig, StageConfig
from stacks.deployed_endpoint import ENDPOINT_NAME_OUTPUT
from stacks.training_stack import TRAINING_CODE_DIR

#: Where the endpoint's data capture lands: SageMaker appends /<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/.
CAPTURE_FOLDER = "endpoint"


def variant_props(serving: ServingConfig, model_package_arns: Mapping[str, str]) -> list[VariantProps]:
    """The config's variants as the endpoint construct's props, each with its resolved model package."""
    target = serving.autoscaling.target_invocations_per_instance
    return [
        VariantProps(
            name=v.name,
            model_package_arn=model_package_arns[v.name],
            instance_type=v.instance_type,
            initial_instance_count=v.initial_instance_count,
            initial_weight=v.weight,
            min_capacity=v.min_capacity,
            max_capacity=v.max_capacity,
            target_invocations_per_instance=target,
            autoscaling=v.autoscaling,
        )
        for v in serving.variants
    ]


def alarm_thresholds(serving: ServingConfig) -> EndpointAlarmThresholds:
    alarms = serving.alarms
    return EndpointAlarmThresholds(
        invocation_5xx_errors=alarms.errors_5xx,
        invocation_4xx_error_rate_percent=alarms.rate_4xx_percent,
        model_latency_p99_ms=alarms.latency_p99_ms,
        cpu_utilization_percent=alarms.cpu_percent,
        memory_utilization_percent=alarms.memory_percent,
        disk_utilization_percent=alarms.disk_percent,
        period_seconds=alarms.period_seconds,
        evaluation_periods=alarms.evaluation_periods,
        datapoints_to_alarm=alarms.datapoints_to_alarm,
    )


class ServingStack(Stack):
    """Models, endpoint (blue/green, autoscaled, capturing), alarms and dashboard of one stage."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        serving: ServingConfig,
        model_package_arns: Mapping[str, str],
        lake_exports: LakeExports,
        alerts_exports: AlertTopicExports,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        lake = LakeAccess.from_exports(self, "Lake", lake_exports)
        topic = AlertTopic.from_exports(self, "Alerts", alerts_exports)
        # The image the registered packages name (the same asset as the training stack's: one build, one
        # repository); the models' role may pull from its repository.
        self.image = ServingImage(self, "ServingImage", directory=TRAINING_CODE_DIR)
        self.model_role = ModelExecutionRole(
            self, "ModelRole", lake=lake, repositories=[self.image.repository]
        )
        self.variants = variant_props(serving, model_package_arns)
        variant_names = [v.name for v in self.variants]
        deployment = serving.deployment
        self.endpoint = ServingEndpoint(
            self,
            "Endpoint",
            variants=self.variants,
            role=self.model_role,
            key=lake.key,
            capture=CaptureProps(
                destination_s3_uri=lake.s3_uri(Zone.CAPTURE, CAPTURE_FOLDER),
                sampling_percentage=serving.capture_sampling_percentage,
            ),
            deployment=DeploymentProps(
                canary_percent=deployment.canary_percent,
                canary_wait_seconds=deployment.canary_wait_seconds,
                baking_seconds=deployment.baking_seconds,
                max_execution_seconds=deployment.max_execution_seconds,
                rollback_alarm_names=rollback_alarm_names(self.stack_name, variant_names),
                traffic_routing="CANARY" if deployment.traffic_routing == "canary" else "ALL_AT_ONCE",
            ),
            scaling=ScalingProps(
                scale_in_cooldown_seconds=serving.autoscaling.scale_in_cooldown_seconds,
                scale_out_cooldown_seconds=serving.autoscaling.scale_out_cooldown_seconds,
            ),
        )
        self.alarms = EndpointAlarms(
            self,
            "Alarms",
            endpoint_name=self.endpoint.endpoint_name,
            variants=[AlarmedVariant(v.name, v.instance_type) for v in self.variants],
            name_prefix=self.stack_name,
            thresholds=alarm_thresholds(serving),
            topic=topic,
        )
        self.dashboard = EndpointDashboard(self, "Dashboard", alarms=self.alarms)
        #: The endpoint's name, exported for the monitoring stack's schedules (``<stack>:EndpointName``).
        self.endpoint_name_export = f"{self.stack_name}:{ENDPOINT_NAME_OUTPUT}"
        CfnOutput(
            self,
            ENDPOINT_NAME_OUTPUT,
            value=self.endpoint.endpoint_name,
            export_name=self.endpoint_name_export,
        )
