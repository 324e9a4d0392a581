"""The stateful data stack: the stage's KMS key, the S3 data lake, the feature group and the alert topic."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from constructs import Construct

from ml_platform.alerts import AlertTopic, Publisher
from ml_platform.data_lake import DataLake, PlatformKey, Zone
from ml_platform.feature_store import Feature, FeatureGroup
from stacks.config import StageConfig


class DataStack(Stack):
    """Key, lake and feature group of one stage. Termination protection and RETAIN come from config."""

    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, termination_protection=config.termination_protection, **kwargs)
        removal = RemovalPolicy.RETAIN if config.removal_policy == "retain" else RemovalPolicy.DESTROY
        self.key = PlatformKey(
            self,
            "PlatformKey",
            description=f"ML platform ({config.name}): data at rest",
            removal_policy=removal,
        ).key
        lake_cfg = config.data_lake
        self.lake = DataLake(
            self,
            "DataLake",
            key=self.key,
            intelligent_tiering_after_days=lake_cfg.intelligent_tiering_after_days,
            noncurrent_version_expiration_days=lake_cfg.noncurrent_version_expiration_days,
            abort_incomplete_multipart_upload_days=lake_cfg.abort_incomplete_multipart_upload_days,
            access_log_expiration_days=lake_cfg.access_log_expiration_days,
            removal_policy=removal,
            auto_delete_objects=config.auto_delete_objects,
        )
        fs = config.feature_store
        self.feature_group = FeatureGroup(
            self,
            "FeatureGroup",
            key=self.key,
            bucket=self.lake.bucket,
            offline_prefix=Zone.FEATURES.prefix,
            record_identifier=fs.record_identifier,
            event_time_feature=fs.event_time_feature,
            features=[Feature(f.name, f.type) for f in fs.features],
            description=fs.description,
            online_store=fs.online_store,
            offline_table_format=fs.offline_table_format,
            removal_policy=removal,
        )
        # The stage's alerts (endpoint and drift alarms, job/pipeline/approval events, the cost budget) go to
        # one topic encrypted with the stage key, whose policies let exactly those services publish.
        self.alerts = AlertTopic(
            self,
            "Alerts",
            key=self.key,
            publishers=(Publisher.CLOUDWATCH, Publisher.EVENTBRIDGE, Publisher.BUDGETS),
            emails=config.alert_emails,
            display_name=f"ML platform ({config.name}) alerts",
        )
        self.alerts.topic.apply_removal_policy(removal)  # its subscribers confirmed this topic
        # What the other stacks of the stage import (explicit exports, see LakeAccess.from_exports).
        self.lake_exports = self.lake.export(self.stack_name)
        self.alerts_exports = self.alerts.export(self.stack_name)
