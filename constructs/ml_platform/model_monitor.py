"""SageMaker Model Monitor for one real-time endpoint: job definitions and schedules of the four monitors.

One :class:`ModelMonitor` declares, per scheduled monitor type, an ``AWS::SageMaker::<Type>JobDefinition``
and an ``AWS::SageMaker::MonitoringSchedule`` that runs it on the endpoint's data capture:

============================ ================ ===================================== ======================
type                         image            reads (besides the capture)           baseline (registered)
============================ ================ ===================================== ======================
``DataQuality``              Model Monitor    --                                    ModelDataQuality
                             analyzer                                               statistics+constraints
``ModelQuality``             analyzer         ground truth                          ModelQuality constraints
``ModelBias``                Clarify          ground truth, bias analysis config    Bias post-training
``ModelExplainability``      Clarify          SHAP analysis config (shadow endpoint) Explainability
============================ ================ ===================================== ======================

What every job definition gets (the rules no schema shows are in monitor_api.md, section 3):

* the stage key as the output's ``KmsKeyId`` and as ``VolumeKmsKeyId`` (left out for instance types with
  local instance storage, which SageMaker refuses a volume key for: ``instance_types``);
* ``EnableNetworkIsolation`` and ``EnableInterContainerTrafficEncryption`` on. **The one exception is
  explainability**: Clarify computes SHAP values by calling a temporary shadow endpoint of the model, which
  a network-isolated job cannot reach ("The network isolation option of both the SageMaker Clarify job and
  the model must be disabled", Developer Guide clarify-vpc); so its job definition *and* the explainer
  model it serves run without network isolation. Traffic encryption stays on;
* ``publish_cloudwatch_metrics`` ``Enabled`` (the drift alarms read those metrics);
* one output, ``monitoring/reports/<type folder>`` of the lake (Model Monitor adds
  ``/<endpoint>/<schedule>/<yyyy>/<mm>/<dd>/<hh>/``);
* ``StoppingCondition`` from config, capped by ``monitor_rules.max_runtime_limit`` for the schedule's period.

**Names.** Every property of a job definition is create-only in CloudFormation (tags included), so any
change replaces it, create-before-delete: a fixed name would collide with the old resource. The name is
``<prefix>-<type>-<10 hex digits of a SHA-256 of every other property, tags included>`` (lower case): a
changed
definition is a new name, an unchanged one keeps its name. The schedule's name is stable
(``<prefix>-<type>``, lower case: it is create-only and unique per account and region) and it refers to
its job definition *by name* (CloudFormation returns only the ARN): each change of a definition updates
the schedule in place to the new one. Since the properties are hashed as written, job definitions are
declared from plain dicts (``CfnResource``): the dict that is hashed is the dict that is deployed, and the
tags are part of it (not added later by the app's tag aspect, which would change them after hashing).

**Baselines** are those of the model package the endpoint's champion variant serves (its
``DriftCheckBaselines``, :class:`MonitorBaselines`); a monitor whose baseline the package lacks is left
out by the caller (:meth:`MonitorBaselines.missing` says what is missing).

**Explainer model.** The explainability configuration must name the model Clarify's shadow endpoint
serves (``predictor.model_name``), and it is a file shipped at synth, so the name must be a literal:
:class:`ExplainerModel` is a ``CfnModel`` of the champion package with a physical name that carries a hash
of the package ARN (a new package is a new model with a new name, never a collision).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aws_cdk import CfnResource, Stack, Token
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_platform.clarify_config import ClarifyConfigs, config_asset, shadow_endpoint_prefix
from ml_platform.data_lake import LakeAccess, Zone
from ml_platform.images import Image, image_uri
from ml_platform.instance_types import has_instance_storage
from ml_platform.model_pipelines import (
    DATA_QUALITY_FOLDER,
    EXPLAINABILITY_FOLDER,
    MODEL_BIAS_FOLDER,
    MODEL_QUALITY_FOLDER,
)
from ml_platform.model_role import ModelExecutionRole
from ml_platform.monitor_role import MonitoringJobRole
from ml_platform.monitor_rules import (
    GROUND_TRUTH_MONITORS,
    MONITOR_TYPES,
    MonitorType,
    max_runtime_limit,
    offset_seconds,
    schedule_period_hours,
)

#: ``monitoring/reports/<type folder>/``: where each schedule's reports land.
REPORTS_FOLDER: Final = "reports"
REPORT_FOLDERS: Final[dict[MonitorType, str]] = {
    "DataQuality": DATA_QUALITY_FOLDER,
    "ModelQuality": MODEL_QUALITY_FOLDER,
    "ModelBias": MODEL_BIAS_FOLDER,
    "ModelExplainability": EXPLAINABILITY_FOLDER,
}
#: The type part of job definition and schedule names.
NAME_PARTS: Final[dict[MonitorType, str]] = {
    "DataQuality": "data-quality",
    "ModelQuality": "model-quality",
    "ModelBias": "model-bias",
    "ModelExplainability": "explainability",
}
#: Which image runs each monitor type.
IMAGES: Final[dict[MonitorType, Image]] = {
    "DataQuality": Image.MODEL_MONITOR_ANALYZER,
    "ModelQuality": Image.MODEL_MONITOR_ANALYZER,
    "ModelBias": Image.CLARIFY,
    "ModelExplainability": Image.CLARIFY,
}
#: The one job definition that runs without network isolation (its Clarify run calls a shadow endpoint).
NETWORK_ISOLATION_EXCEPTIONS: Final[frozenset[MonitorType]] = frozenset({"ModelExplainability"})
#: Container paths of the endpoint input and the output (the SDK's defaults).
ENDPOINT_INPUT_PATH: Final = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH: Final = "/opt/ml/processing/output"
#: SageMaker names: job definitions, schedules, models, endpoint name prefixes.
NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
MAX_NAME_LENGTH: Final = 63
HASH_LENGTH: Final = 10
#: Where the ground-truth monitors' merge job leaves the captures joined with their labels, for the
#: analysis job that follows (``<output>/merge/<schedule>/yyyy/mm/dd/hh/*.jsonl``: AWS's bias-monitor
#: samples, "saved to JSON Lines files under the 'merge' folder of monitor_output_s3_uri").
MERGE_FOLDER: Final = "merge"
#: The CloudFormation resource type of each monitor's job definition.
RESOURCE_TYPES: Final[dict[MonitorType, str]] = {
    kind: f"AWS::SageMaker::{kind}JobDefinition" for kind in MONITOR_TYPES
}


def content_hash(value: Any, length: int = HASH_LENGTH) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``value`` as canonical JSON (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def check_name(key: str, name: str) -> str:
    """``name`` if it is a SageMaker name (pattern, at most 63 characters); ValueError naming ``key``."""
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{key}: got {name!r} ({len(name)} characters); allowed: at most {MAX_NAME_LENGTH} characters "
            f"matching {NAME_PATTERN.pattern} (a shorter name_prefix or stack name)"
        )
    return name


def job_definition_name(prefix: str, monitor_type: MonitorType, properties: Mapping[str, Any]) -> str:
    """``<prefix>-<type>-<hash of properties>``: a new name whenever a (create-only) property changes."""
    name = f"{prefix}-{NAME_PARTS[monitor_type]}-{content_hash(dict(properties))}"
    return check_name("job definition name", name.lower())


def schedule_name(prefix: str, monitor_type: MonitorType) -> str:
    """``<prefix>-<type>`` in lower case: stable, so the schedule is updated in place, never replaced."""
    return check_name("monitoring schedule name", f"{prefix}-{NAME_PARTS[monitor_type]}".lower())


# ---- baselines ---------------------------------------------------------------------------------------------

#: Where each monitor's baseline files sit in ``DescribeModelPackage``'s ``DriftCheckBaselines``.
BASELINE_PATHS: Final[dict[MonitorType, tuple[tuple[str, str], ...]]] = {
    "DataQuality": (("ModelDataQuality", "Statistics"), ("ModelDataQuality", "Constraints")),
    "ModelQuality": (("ModelQuality", "Constraints"),),
    "ModelBias": (("Bias", "PostTrainingConstraints"),),
    "ModelExplainability": (("Explainability", "Constraints"),),
}


@dataclass(frozen=True)
class MonitorBaselines:
    """The drift-check baselines a model package registered (``DriftCheckBaselines`` of
    ``DescribeModelPackage``), as the S3 URIs each monitor needs."""

    package_arn: str
    drift_check_baselines: Mapping[str, Any] = field(default_factory=dict)

    def uri(self, section: str, member: str) -> str | None:
        value = (self.drift_check_baselines.get(section) or {}).get(member) or {}
        uri = value.get("S3Uri") if isinstance(value, Mapping) else None
        return str(uri) if uri else None

    def missing(self, monitor_type: MonitorType) -> tuple[str, ...]:
        """The ``DriftCheckBaselines`` members ``monitor_type`` needs and the package lacks."""
        return tuple(
            f"DriftCheckBaselines.{section}.{member}"
            for section, member in BASELINE_PATHS[monitor_type]
            if self.uri(section, member) is None
        )

    def uris(self, monitor_type: MonitorType) -> tuple[str, ...]:
        """The baseline files of ``monitor_type`` (ValueError if one is missing)."""
        missing = self.missing(monitor_type)
        if missing:
            raise ValueError(
                f"baselines: model package {self.package_arn} has no {', '.join(missing)}; allowed: a "
                f"package whose pipeline registered the {monitor_type} baseline"
            )
        return tuple(str(self.uri(s, m)) for s, m in BASELINE_PATHS[monitor_type])


# ---- props -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorSchedule:
    """One scheduled monitor: its cron expression, its jobs' stopping condition and (model quality and
    model bias) the capture window whose ground truth has arrived."""

    schedule: str
    max_runtime_seconds: int
    start_time_offset: str | None = None
    end_time_offset: str | None = None


@dataclass(frozen=True)
class MonitorResources:
    """The cluster of every monitoring job (one instance: the analyzer and Clarify run on one)."""

    instance_type: str
    volume_size_gb: int
    instance_count: int = 1


def _check_schedule(monitor_type: MonitorType, s: MonitorSchedule) -> None:
    where = f"schedules[{monitor_type!r}]"
    try:
        period = schedule_period_hours(s.schedule)
    except ValueError as error:
        raise ValueError(f"{where}.schedule: {error}") from None
    limit = max_runtime_limit(monitor_type, period)
    if not 1 <= s.max_runtime_seconds <= limit:
        raise ValueError(
            f"{where}.max_runtime_seconds: got {s.max_runtime_seconds}; allowed: 1 to {limit} for a "
            f"{monitor_type} job every {period} hour(s)"
        )
    windowed = monitor_type in GROUND_TRUTH_MONITORS
    offsets = (s.start_time_offset, s.end_time_offset)
    if windowed and None in offsets:
        raise ValueError(
            f"{where}: start_time_offset and end_time_offset: got {offsets}; allowed: both set "
            f"({monitor_type} grades a window of captures whose ground truth has arrived)"
        )
    if not windowed and offsets != (None, None):
        raise ValueError(f"{where}: offsets: got {offsets}; allowed: none ({monitor_type} takes no window)")
    if windowed:
        start, end = (offset_seconds(o) for o in offsets if o is not None)
        if not start < end < 0:
            raise ValueError(
                f"{where}.start_time_offset: got {s.start_time_offset}; allowed: before end_time_offset "
                f"({s.end_time_offset}), itself before the run"
            )


# ---- the explainer model -----------------------------------------------------------------------------------


class ExplainerModel(Construct):
    """The model Clarify's shadow endpoint serves for explainability: the champion package, not isolated.

    Network isolation is off (explicit exception, see the module docstring): Clarify's job must reach the
    shadow endpoint, and "the network isolation option of both the SageMaker Clarify job and the model must
    be disabled". The physical name ``<prefix>-explainer-<hash>`` hashes every create-only property (the
    package ARN, the role's construct path, the isolation setting): the explainability configuration file
    holds it as a literal, and a new package is a new model and a new configuration.
    """

    ENABLE_NETWORK_ISOLATION: Final = False

    def __init__(
        self, scope: Construct, id_: str, *, package_arn: str, role: ModelExecutionRole, name_prefix: str
    ) -> None:
        super().__init__(scope, id_)
        if Token.is_unresolved(package_arn):
            raise ValueError("package_arn: got a token; allowed: a literal model package ARN")
        digest = content_hash(
            {"package": package_arn, "role": role.node.path, "isolation": self.ENABLE_NETWORK_ISOLATION}
        )
        self.model_name = check_name("explainer model name", f"{name_prefix}-explainer-{digest}".lower())
        self.package_arn = package_arn
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            model_name=self.model_name,
            execution_role_arn=role.role_arn,
            containers=[sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=package_arn)],
            enable_network_isolation=self.ENABLE_NETWORK_ISOLATION,
        )
        policy = role.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.model.node.add_dependency(policy)


# ---- the monitors ------------------------------------------------------------------------------------------


class ModelMonitor(Construct):
    """The Model Monitor job definitions and schedules of one endpoint (module docstring).

    Props:

    * ``endpoint_name``: the monitored endpoint (a token from the serving stack is fine);
    * ``capture_prefix``: the key prefix of the endpoint's data capture in the lake
      (``capture/<folder>/<endpoint>/``, ends in '/');
    * ``schedules``: the monitors to declare, by type (all need their baselines in ``baselines``);
    * ``baselines``: what the served (champion) package registered;
    * ``clarify``: the Clarify analysis configurations (bias, explainability);
    * ``ground_truth_prefix``: the key prefix under ``ground-truth/`` (model quality, model bias);
    * ``explainer``: the model of the explainability shadow endpoint, and ``shadow_instance_type`` its
      instance type (required with an explainability schedule);
    * ``name_prefix``: the prefix of every name (job definitions, schedules, shadow endpoints);
    * ``tags``: the tags of every job definition (part of the hashed name, see the module docstring).

    Attributes: ``job_definitions`` / ``schedules`` (by type), ``job_definition_names``,
    ``schedule_names``, ``config_assets`` (by type, bias and explainability).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint_name: str,
        capture_prefix: str,
        lake: LakeAccess,
        role: MonitoringJobRole,
        resources: MonitorResources,
        schedules: Mapping[MonitorType, MonitorSchedule],
        baselines: MonitorBaselines,
        clarify: ClarifyConfigs,
        name_prefix: str,
        tags: Mapping[str, str],
        ground_truth_prefix: str | None = None,
        explainer: ExplainerModel | None = None,
        shadow_instance_type: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if not schedules:
            raise ValueError(f"schedules: got none; allowed: one or more of {', '.join(MONITOR_TYPES)}")
        for kind, schedule in schedules.items():
            if kind not in MONITOR_TYPES:
                raise ValueError(f"schedules: got {kind!r}; allowed: {', '.join(MONITOR_TYPES)}")
            _check_schedule(kind, schedule)
            baselines.uris(kind)  # refuses a monitor without its baseline
        if ground_truth_prefix is None and set(schedules) & set(GROUND_TRUTH_MONITORS):
            raise ValueError(
                "ground_truth_prefix: got None; allowed: a key prefix under ground-truth/ when model quality "
                "or model bias is scheduled"
            )
        if "ModelExplainability" in schedules and (explainer is None or shadow_instance_type is None):
            raise ValueError(
                "explainer, shadow_instance_type: allowed: both set when explainability is scheduled (the "
                "model and instance type of Clarify's shadow endpoint)"
            )
        if not capture_prefix.endswith("/"):
            raise ValueError(f"capture_prefix: got {capture_prefix!r}; allowed: a key prefix ending in '/'")
        self.endpoint_name = endpoint_name
        self.lake, self.role, self.resources = lake, role, resources
        self.baselines, self.clarify, self.contract = baselines, clarify, clarify.contract
        self.name_prefix = name_prefix
        self.tags = dict(tags)
        self.ground_truth_prefix = ground_truth_prefix
        self.explainer, self.shadow_instance_type = explainer, shadow_instance_type
        self.shadow_endpoint_prefix = shadow_endpoint_prefix(name_prefix, "shap")
        self.job_definitions: dict[MonitorType, CfnResource] = {}
        self.job_definition_names: dict[MonitorType, str] = {}
        self.schedules: dict[MonitorType, sagemaker.CfnMonitoringSchedule] = {}
        self.schedule_names: dict[MonitorType, str] = {}
        self.config_assets: dict[MonitorType, Any] = {}
        self.properties: dict[MonitorType, dict[str, Any]] = {}

        role.grant_read_prefix(
            capture_prefix, "Model Monitor reads the endpoint's data capture of the analysed hours."
        )
        for kind in MONITOR_TYPES:  # a fixed order: stable logical ids and grants
            if kind in schedules:
                self._monitor(kind, schedules[kind])

    # ---- pieces ------------------------------------------------------------------------------------------

    @property
    def volume_key_omitted(self) -> bool:
        return has_instance_storage(self.resources.instance_type)

    def _report_uri(self, kind: MonitorType) -> str:
        # No trailing '/': Model Monitor appends /<endpoint>/<schedule>/..., and "//" breaks downloads.
        return self.lake.s3_uri(Zone.MONITORING, REPORTS_FOLDER, REPORT_FOLDERS[kind])

    def _ground_truth_uri(self) -> str:
        return self.lake.s3_uri(Zone.GROUND_TRUTH, f"{self.ground_truth_prefix}/")

    def _endpoint_input(self, kind: MonitorType, schedule: MonitorSchedule) -> dict[str, Any]:
        endpoint_input: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "LocalPath": ENDPOINT_INPUT_PATH,
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        }
        if kind == "ModelQuality":
            endpoint_input.update(self.contract.model_quality_endpoint_input())
        elif kind == "ModelBias":
            endpoint_input.update(self.contract.clarify_endpoint_input())
        elif kind == "ModelExplainability":
            # CloudFormation's explainability EndpointInput has no threshold (nor offsets): the SHAP run
            # reads the captured features and asks the shadow endpoint, it grades nothing.
            attributes = self.contract.clarify_endpoint_input()
            attributes.pop("ProbabilityThresholdAttribute", None)
            endpoint_input.update(attributes)
        if kind in GROUND_TRUTH_MONITORS:
            endpoint_input["StartTimeOffset"] = schedule.start_time_offset
            endpoint_input["EndTimeOffset"] = schedule.end_time_offset
        return endpoint_input

    def _clarify_config(self, kind: MonitorType) -> dict[str, Any]:
        if kind == "ModelBias":
            return self.clarify.bias_monitoring()
        assert self.explainer is not None and self.shadow_instance_type is not None
        # Clarify names its shadow endpoint from this prefix: the role's grant names exactly these endpoints.
        return self.clarify.explainability_monitoring(
            self.shadow_instance_type, self.explainer.model_name, self.shadow_endpoint_prefix
        )

    def _properties(self, kind: MonitorType, schedule: MonitorSchedule) -> dict[str, Any]:
        """The job definition's CloudFormation properties, all but its name."""
        key = self.lake.key.key_arn
        image = image_uri(self, IMAGES[kind])
        app: dict[str, Any] = {"ImageUri": image, "Environment": {"publish_cloudwatch_metrics": "Enabled"}}
        if kind == "ModelQuality":
            app["ProblemType"] = self.contract.problem_type
        if kind in ("ModelBias", "ModelExplainability"):
            asset = config_asset(self, f"{kind}Config", self._clarify_config(kind))
            self.config_assets[kind] = asset
            self.role.grant_read_asset(asset)
            app["ConfigUri"] = asset.s3_object_url
        uris = self.baselines.uris(kind)
        baseline: dict[str, Any] = {"ConstraintsResource": {"S3Uri": uris[-1]}}
        if kind == "DataQuality":
            baseline["StatisticsResource"] = {"S3Uri": uris[0]}
        job_input: dict[str, Any] = {"EndpointInput": self._endpoint_input(kind, schedule)}
        if kind in GROUND_TRUTH_MONITORS:
            job_input["GroundTruthS3Input"] = {"S3Uri": self._ground_truth_uri()}
        cluster: dict[str, Any] = {
            "InstanceCount": self.resources.instance_count,
            "InstanceType": self.resources.instance_type,
            "VolumeSizeInGB": self.resources.volume_size_gb,
        }
        if not self.volume_key_omitted:
            cluster["VolumeKmsKeyId"] = key
        return {
            f"{kind}AppSpecification": app,
            f"{kind}BaselineConfig": baseline,
            f"{kind}JobInput": job_input,
            f"{kind}JobOutputConfig": {
                "MonitoringOutputs": [
                    {
                        "S3Output": {
                            "S3Uri": self._report_uri(kind),
                            "LocalPath": OUTPUT_PATH,
                            "S3UploadMode": "EndOfJob",
                        }
                    }
                ],
                "KmsKeyId": key,
            },
            "JobResources": {"ClusterConfig": cluster},
            "NetworkConfig": {
                "EnableInterContainerTrafficEncryption": True,
                "EnableNetworkIsolation": kind not in NETWORK_ISOLATION_EXCEPTIONS,
            },
            "RoleArn": self.role.role_arn,
            "StoppingCondition": {"MaxRuntimeInSeconds": schedule.max_runtime_seconds},
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())],
        }

    def _grant(self, kind: MonitorType) -> None:
        role = self.role
        role.grant_pull(image_uri(self, IMAGES[kind]))
        role.grant_read_objects(self.baselines.uris(kind))
        reports = f"{Zone.MONITORING.prefix}{REPORTS_FOLDER}/{REPORT_FOLDERS[kind]}/"
        role.grant_write_reports(reports)
        if kind in GROUND_TRUTH_MONITORS:
            role.grant_read_prefix(
                f"{reports}{MERGE_FOLDER}/",
                "The merge job writes the captures joined with their ground truth here and the analysis job "
                "of the same execution reads them back (file names are per schedule and hour).",
            )
            role.grant_read_prefix(
                f"{Zone.GROUND_TRUTH.prefix}{self.ground_truth_prefix}/",
                "Model Monitor merges the captured predictions with the ground truth uploaded under this "
                "prefix (one folder per collection hour).",
            )
        if kind == "ModelExplainability":
            assert self.explainer is not None
            role.grant_shadow_endpoints(
                model_name=self.explainer.model_name, endpoint_name_prefix=self.shadow_endpoint_prefix
            )

    def _monitor(self, kind: MonitorType, schedule: MonitorSchedule) -> None:
        self._grant(kind)
        properties = self._properties(kind, schedule)
        stack = Stack.of(self)
        # Hash what CloudFormation receives: the resolved properties (tokens as their intrinsics).
        name = job_definition_name(self.name_prefix, kind, stack.resolve(properties))
        definition = CfnResource(
            self,
            f"{kind}JobDefinition",
            type=RESOURCE_TYPES[kind],
            properties={"JobDefinitionName": name, **properties},
        )
        # Create the definition only once the role can do its job (the schedule's first run may be soon);
        # RoleArn already orders it after the role itself.
        policy = self.role.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            definition.node.add_dependency(policy)
        if self.explainer is not None and kind == "ModelExplainability":
            definition.node.add_dependency(self.explainer.model)
        scheduled = schedule_name(self.name_prefix, kind)
        monitoring_schedule = sagemaker.CfnMonitoringSchedule(
            self,
            f"{kind}Schedule",
            monitoring_schedule_name=scheduled,
            endpoint_name=self.endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                monitoring_job_definition_name=name,
                monitoring_type=kind,
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                    schedule_expression=schedule.schedule
                ),
            ),
        )
        # The schedule names its definition (no reference CloudFormation could order by).
        monitoring_schedule.node.add_dependency(definition)
        self.properties[kind] = properties
        self.job_definitions[kind] = definition
        self.job_definition_names[kind] = name
        self.schedules[kind] = monitoring_schedule
        self.schedule_names[kind] = scheduled


def capture_prefix(capture_folder: str, endpoint_name: str) -> str:
    """``capture/<folder>/<endpoint>/``: the key prefix of one endpoint's data capture in the lake."""
    return f"{Zone.CAPTURE.prefix}{capture_folder}/{endpoint_name}/"


def champion(variants: Sequence[tuple[str, float]]) -> str:
    """The name of the variant with the largest weight (the first on ties): the one monitors baseline."""
    if not variants:
        raise ValueError("variants: got none; allowed: one or more (name, weight) pairs")
    best = max(weight for _, weight in variants)
    return next(name for name, weight in variants if weight == best)
