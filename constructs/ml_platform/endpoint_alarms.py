"""CloudWatch alarms and a dashboard for a SageMaker real-time endpoint, one set per production variant.

Per variant (dimensions ``EndpointName`` + ``VariantName``):

========================= ============================ ======================================= ========
alarm                     metric (namespace)           statistic / threshold                   rollback
========================= ============================ ======================================= ========
Invocation5XXErrors       Invocation5XXErrors          Sum per period > count                  yes
                          (AWS/SageMaker)
Invocation4XXErrorRate    100 * Invocation4XXErrors /  Sum / Sum, percent > rate               yes
                          Invocations (AWS/SageMaker)
ModelLatencyP99           ModelLatency (AWS/SageMaker) p99 > ms x 1000 (reported in µs)        yes
CPUUtilization            CPUUtilization               Average > percent x vCPUs               no
                          (/aws/sagemaker/Endpoints)
MemoryUtilization         MemoryUtilization            Average > percent                       no
DiskUtilization           DiskUtilization              Average > percent                       no
========================= ============================ ======================================= ========

Every alarm notifies the alert topic on ALARM and on OK.

The endpoint's ``DeploymentConfig.AutoRollbackConfiguration`` names the alarms that roll a blue/green
deployment back. The endpoint must not reference the alarm resources: the alarms reference the
endpoint (its name is their dimension), so a reference back would be a CloudFormation cycle. So the
alarms have explicit names computed by one pure function, :func:`rollback_alarm_names`, from a name
prefix (the stack name) and the variant names; the endpoint lists those strings and
:class:`EndpointAlarms` names exactly those alarms with the same function.

The rollback set is what a bad model version shows within a baking period: server errors, a jump in
rejected requests (a changed input contract) and a latency regression. Utilization is capacity, which
autoscaling answers; rolling back a good model because the fleet is busy would be wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from ml_platform.service_model import sagemaker_shapes

# Invocation metrics (per request): Invocations, Invocation4XXErrors, Invocation5XXErrors, ModelLatency.
INVOCATION_NAMESPACE = "AWS/SageMaker"
# Instance metrics (per instance, every minute): CPUUtilization, MemoryUtilization, DiskUtilization.
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
# CloudWatch's limits: alarm names (PutMetricAlarm AlarmName) and one alarm's whole evaluation range.
MAX_ALARM_NAME = 255
MAX_EVALUATION_SECONDS = 24 * 3600
# SageMaker publishes endpoint metrics at one-minute resolution: a period is a whole number of minutes.
METRIC_RESOLUTION_SECONDS = 60
# A real-time invocation times out after 60 s: a p99 threshold above it could never be crossed.
INVOCATION_TIMEOUT_MS = 60_000
# ModelLatency is reported in microseconds.
MICROSECONDS_PER_MS = 1000
# Alarm names join prefix, variant and alarm with '/', which neither a stack name nor a variant name holds,
# so distinct (prefix, variant, alarm) triples give distinct names. ('/' is valid in alarm names:
# Application Auto Scaling's own target-tracking alarms carry 'endpoint/<name>/variant/<name>'.)
NAME_SEPARATOR = "/"
NAME_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _variant_name_pattern() -> re.Pattern[str]:
    return re.compile(sagemaker_shapes()["VariantName"]["pattern"])


def max_rollback_alarms() -> int:
    """How many alarms ``AutoRollbackConfiguration.Alarms`` takes (SageMaker's API model: 10)."""
    return int(sagemaker_shapes()["AlarmList"]["max"])


class EndpointAlarm(Enum):
    """The alarms of one variant. The value is the last part of the alarm's name."""

    INVOCATION_5XX_ERRORS = "Invocation5XXErrors"
    INVOCATION_4XX_ERROR_RATE = "Invocation4XXErrorRate"
    MODEL_LATENCY_P99 = "ModelLatencyP99"
    CPU_UTILIZATION = "CPUUtilization"
    MEMORY_UTILIZATION = "MemoryUtilization"
    DISK_UTILIZATION = "DiskUtilization"


# The alarms that roll a deployment back, per variant (see the module docstring for why these).
ROLLBACK_ALARMS = (
    EndpointAlarm.INVOCATION_5XX_ERRORS,
    EndpointAlarm.INVOCATION_4XX_ERROR_RATE,
    EndpointAlarm.MODEL_LATENCY_P99,
)


def alarm_name(name_prefix: str, variant_name: str, alarm: EndpointAlarm) -> str:
    """``<name_prefix>/<variant_name>/<alarm>``, e.g. ``MlPlatform-dev-Serving/champion/ModelLatencyP99``."""
    _check_name_prefix(name_prefix)
    _check_variant_names([variant_name])
    name = NAME_SEPARATOR.join((name_prefix, variant_name, alarm.value))
    if len(name) > MAX_ALARM_NAME:
        raise ValueError(
            f"name_prefix: got {name_prefix!r}, which makes the alarm name {name!r} {len(name)} characters "
            f"long; allowed: a prefix short enough for alarm names of at most {MAX_ALARM_NAME} characters"
        )
    return name


def rollback_alarm_names(name_prefix: str, variant_names: Sequence[str]) -> tuple[str, ...]:
    """The names of the alarms that roll a deployment back, for the endpoint's ``AutoRollbackConfiguration``.

    For each variant in order: Invocation5XXErrors, Invocation4XXErrorRate, ModelLatencyP99. Pure: the
    endpoint's construct and :class:`EndpointAlarms` call it with the same arguments and get the same
    names. SageMaker takes at most 10 rollback alarms, so at most 3 variants.
    """
    _check_variant_names(variant_names)
    names = tuple(alarm_name(name_prefix, v, alarm) for v in variant_names for alarm in ROLLBACK_ALARMS)
    limit = max_rollback_alarms()
    if len(names) > limit:
        raise ValueError(
            f"variant_names: got {len(variant_names)} variants {list(variant_names)}; allowed: at most "
            f"{limit // len(ROLLBACK_ALARMS)} (SageMaker's AutoRollbackConfiguration takes at most {limit} "
            f"alarms, {len(ROLLBACK_ALARMS)} per variant)"
        )
    return names


# vCPUs per instance size, following EC2's naming (one "xlarge" unit is 4 vCPUs). CPUUtilization sums the
# utilization of every vCPU, so 100 % of an instance is 100 x vCPUs.
_SIZE_VCPUS = {"medium": 1, "large": 2, "xlarge": 4}
# The SageMaker instance types whose vCPU count breaks that rule.
_VCPU_EXCEPTIONS = {"ml.t2.medium": 2, "ml.c4.8xlarge": 36}
_SIZE = re.compile(r"(?P<units>\d+)xlarge")


def instance_vcpus(instance_type: str) -> int:
    """The vCPU count of a SageMaker instance type (``ml.m5.xlarge`` -> 4, ``ml.c5.9xlarge`` -> 36).

    From the size name, as EC2 defines it (medium 1, large 2, xlarge 4, Nxlarge 4 x N), with the
    exceptions in ``_VCPU_EXCEPTIONS``; a test checks every type of the API's
    ``ProductionVariantInstanceType`` enum parses.
    """
    if instance_type in _VCPU_EXCEPTIONS:
        return _VCPU_EXCEPTIONS[instance_type]
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[0] != "ml":
        raise ValueError(f"instance_type: got {instance_type!r}; allowed: an ml.<family>.<size> type")
    size = parts[2]
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    match = _SIZE.fullmatch(size)
    if match is None:
        raise ValueError(
            f"instance_type: got {instance_type!r}; allowed: a size of medium, large, xlarge or <N>xlarge"
        )
    return _SIZE_VCPUS["xlarge"] * int(match.group("units"))


@dataclass(frozen=True)
class EndpointAlarmThresholds:
    """When the endpoint alarms fire. The lead's stage config maps onto this one-to-one.

    All alarms compare with ``>`` and evaluate ``datapoints_to_alarm`` of ``evaluation_periods``
    periods of ``period_seconds``.
    """

    invocation_5xx_errors: int = 0  # count per period (0: any server error breaches)
    invocation_4xx_error_rate_percent: float = 5.0  # percent of invocations per period
    model_latency_p99_ms: float = 500.0  # milliseconds (the alarm converts to CloudWatch's microseconds)
    cpu_utilization_percent: float = 80.0  # percent of the instance (all vCPUs)
    memory_utilization_percent: float = 80.0
    disk_utilization_percent: float = 80.0
    period_seconds: int = 60
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 2

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            wanted = int if field.type in ("int", int) else (int, float)
            if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
                kind = "an integer" if wanted is int else "a finite number"
                raise ValueError(f"{field.name}: got {value!r}; allowed: {kind}")
        self._check_ranges()

    def _check_ranges(self) -> None:
        checks: tuple[tuple[str, bool, str], ...] = (
            ("invocation_5xx_errors", self.invocation_5xx_errors >= 0, "a count of at least 0"),
            (
                "invocation_4xx_error_rate_percent",
                0 <= self.invocation_4xx_error_rate_percent < 100,
                "a percentage, 0 <= rate < 100",
            ),
            (
                "model_latency_p99_ms",
                0 < self.model_latency_p99_ms < INVOCATION_TIMEOUT_MS,
                f"milliseconds, 0 < ms < {INVOCATION_TIMEOUT_MS} (the real-time invocation timeout)",
            ),
            *(
                (key, 0 < getattr(self, key) < 100, "a percentage of the instance, 0 < percent < 100")
                for key in (
                    "cpu_utilization_percent",
                    "memory_utilization_percent",
                    "disk_utilization_percent",
                )
            ),
            (
                "period_seconds",
                self.period_seconds >= METRIC_RESOLUTION_SECONDS
                and self.period_seconds % METRIC_RESOLUTION_SECONDS == 0,
                f"a multiple of {METRIC_RESOLUTION_SECONDS} (SageMaker publishes endpoint metrics every "
                "minute)",
            ),
            ("evaluation_periods", self.evaluation_periods >= 1, "at least 1"),
            (
                "datapoints_to_alarm",
                1 <= self.datapoints_to_alarm <= self.evaluation_periods,
                f"1 to evaluation_periods ({self.evaluation_periods})",
            ),
        )
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{key}: got {getattr(self, key)!r}; allowed: {allowed}")
        if self.period_seconds * self.evaluation_periods > MAX_EVALUATION_SECONDS:
            raise ValueError(
                f"evaluation_periods: got {self.evaluation_periods} (x period_seconds {self.period_seconds} "
                f"= {self.period_seconds * self.evaluation_periods} s); allowed: at most "
                f"{MAX_EVALUATION_SECONDS // self.period_seconds} (CloudWatch evaluates at most one day)"
            )

    @property
    def model_latency_p99_microseconds(self) -> float:
        """The latency threshold in CloudWatch's unit for ModelLatency."""
        return self.model_latency_p99_ms * MICROSECONDS_PER_MS


@dataclass(frozen=True)
class AlarmedVariant:
    """A production variant to alarm on: its name and instance type (the CPU threshold scales with vCPUs)."""

    name: str
    instance_type: str


class VariantMetrics:
    """The CloudWatch metrics of one production variant, shared by the alarms and the dashboard."""

    def __init__(self, endpoint_name: str, variant: AlarmedVariant, period: Duration) -> None:
        self.variant = variant
        self.period = period
        self.dimensions = {"EndpointName": endpoint_name, "VariantName": variant.name}
        self.vcpus = instance_vcpus(variant.instance_type)

    def _metric(self, namespace: str, name: str, statistic: str) -> cloudwatch.Metric:
        # No label: a labelled metric renders as a one-metric math query, an unlabelled one as the
        # alarm's own MetricName / Statistic (or ExtendedStatistic). The dashboard adds labels.
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map=self.dimensions,
            statistic=statistic,
            period=self.period,
        )

    def invocations(self) -> cloudwatch.Metric:
        return self._metric(INVOCATION_NAMESPACE, "Invocations", "Sum")

    def errors_5xx(self) -> cloudwatch.Metric:
        return self._metric(INVOCATION_NAMESPACE, "Invocation5XXErrors", "Sum")

    def errors_4xx(self) -> cloudwatch.Metric:
        return self._metric(INVOCATION_NAMESPACE, "Invocation4XXErrors", "Sum")

    def error_4xx_rate(self) -> cloudwatch.MathExpression:
        """Percent of invocations answered 4XX. No invocations: no value (the alarm treats it as OK)."""
        return cloudwatch.MathExpression(
            expression="100 * FILL(errors4xx, 0) / invocations",
            using_metrics={"errors4xx": self.errors_4xx(), "invocations": self.invocations()},
            label="4XX rate (%)",
            period=self.period,
        )

    def model_latency(self, statistic: str) -> cloudwatch.Metric:
        """ModelLatency in microseconds, CloudWatch's unit for it."""
        return self._metric(INVOCATION_NAMESPACE, "ModelLatency", statistic)

    def model_latency_ms(self, statistic: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=f"latency{statistic} / {MICROSECONDS_PER_MS}",
            using_metrics={f"latency{statistic}": self.model_latency(statistic)},
            label=f"ModelLatency {statistic} (ms)",
            period=self.period,
        )

    def cpu(self) -> cloudwatch.Metric:
        """CPUUtilization as CloudWatch reports it: the sum over vCPUs, 0 to 100 x vCPUs."""
        return self._metric(INSTANCE_NAMESPACE, "CPUUtilization", "Average")

    def cpu_percent_of_instance(self) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=f"cpu / {self.vcpus}",
            using_metrics={"cpu": self.cpu()},
            label="CPU (% of instance)",
            period=self.period,
        )

    def memory(self) -> cloudwatch.Metric:
        return self._metric(INSTANCE_NAMESPACE, "MemoryUtilization", "Average")

    def disk(self) -> cloudwatch.Metric:
        return self._metric(INSTANCE_NAMESPACE, "DiskUtilization", "Average")


class EndpointAlarms(Construct):
    """The alarms of every production variant of one endpoint, each notifying ``topic`` (ALARM and OK).

    ``endpoint_name`` is the endpoint's name (usually the token ``CfnEndpoint.attr_endpoint_name``);
    ``name_prefix`` (e.g. the stack name) and the variant names give the alarm names
    (:func:`alarm_name`). ``rollback_alarm_names`` equals :func:`rollback_alarm_names` of the same
    arguments, and those alarms exist here.

    Attributes: ``alarms`` (variant name -> :class:`EndpointAlarm` -> alarm), ``rollback_alarms``,
    ``rollback_alarm_names``, ``metrics`` (variant name -> :class:`VariantMetrics`), ``thresholds``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint_name: str,
        variants: Sequence[AlarmedVariant],
        name_prefix: str,
        thresholds: EndpointAlarmThresholds,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id_)
        if not variants:
            raise ValueError("variants: got none; allowed: one or more production variants")
        for variant in variants:
            instance_vcpus(variant.instance_type)  # refuses an unknown instance type early
        self.rollback_alarm_names = rollback_alarm_names(name_prefix, [v.name for v in variants])
        self.thresholds = thresholds
        self.name_prefix = name_prefix
        period = Duration.seconds(thresholds.period_seconds)
        self.metrics: dict[str, VariantMetrics] = {
            v.name: VariantMetrics(endpoint_name, v, period) for v in variants
        }
        action = cloudwatch_actions.SnsAction(topic)
        self.alarms: dict[str, dict[EndpointAlarm, cloudwatch.Alarm]] = {}
        for variant in variants:
            specs = self._specs(self.metrics[variant.name])
            self.alarms[variant.name] = {}
            for kind, spec in specs.items():
                alarm = self._alarm(variant.name, kind, spec)
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)
                self.alarms[variant.name][kind] = alarm
        self.rollback_alarms = tuple(self.alarms[v.name][kind] for v in variants for kind in ROLLBACK_ALARMS)

    @property
    def all_alarms(self) -> tuple[cloudwatch.Alarm, ...]:
        return tuple(alarm for by_kind in self.alarms.values() for alarm in by_kind.values())

    def _alarm(self, variant_name: str, kind: EndpointAlarm, spec: _AlarmSpec) -> cloudwatch.Alarm:
        t = self.thresholds
        rollback = " Rolls back a blue/green deployment." if kind in ROLLBACK_ALARMS else ""
        return cloudwatch.Alarm(
            self,
            f"{variant_name}{kind.value}",
            alarm_name=alarm_name(self.name_prefix, variant_name, kind),
            alarm_description=f"Variant {variant_name}: {spec.description}{rollback}",
            metric=spec.metric,
            threshold=spec.threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=t.evaluation_periods,
            datapoints_to_alarm=t.datapoints_to_alarm,
            treat_missing_data=spec.treat_missing_data,
            # Percentile alarms only: "ignore" would freeze the alarm whenever a period has fewer than
            # 10 / (1 - 0.99) = 1000 requests, so a canary or a quiet endpoint could never alarm on
            # latency. "evaluate" (explicit, CloudWatch's default) judges every period; M of N smooths.
            evaluate_low_sample_count_percentile="evaluate"
            if kind is EndpointAlarm.MODEL_LATENCY_P99
            else None,
        )

    def _specs(self, m: VariantMetrics) -> dict[EndpointAlarm, _AlarmSpec]:
        t = self.thresholds
        period = f"per {t.period_seconds} s"
        # No traffic means no invocation metrics: an idle endpoint is healthy. Instance metrics are
        # published every minute while instances run, so missing ones show as INSUFFICIENT_DATA.
        idle = cloudwatch.TreatMissingData.NOT_BREACHING
        return {
            EndpointAlarm.INVOCATION_5XX_ERRORS: _AlarmSpec(
                m.errors_5xx(),
                t.invocation_5xx_errors,
                f"Invocation5XXErrors (Sum {period}) above {t.invocation_5xx_errors}.",
                idle,
            ),
            EndpointAlarm.INVOCATION_4XX_ERROR_RATE: _AlarmSpec(
                m.error_4xx_rate(),
                t.invocation_4xx_error_rate_percent,
                f"4XX rate, 100 * Invocation4XXErrors / Invocations (Sums {period}), above "
                f"{t.invocation_4xx_error_rate_percent:g} %.",
                idle,
            ),
            EndpointAlarm.MODEL_LATENCY_P99: _AlarmSpec(
                m.model_latency("p99"),
                t.model_latency_p99_microseconds,
                f"ModelLatency p99 ({period}) above {t.model_latency_p99_ms:g} ms. CloudWatch reports "
                f"ModelLatency in microseconds: the threshold is {t.model_latency_p99_microseconds:g} us.",
                idle,
            ),
            EndpointAlarm.CPU_UTILIZATION: _AlarmSpec(
                m.cpu(),
                t.cpu_utilization_percent * m.vcpus,
                f"CPUUtilization (Average {period}) above {t.cpu_utilization_percent:g} % of the instance. "
                f"CPUUtilization sums every vCPU (0-100 % each): {m.variant.instance_type} has {m.vcpus} "
                f"vCPUs, so the threshold is {t.cpu_utilization_percent * m.vcpus:g}.",
                cloudwatch.TreatMissingData.MISSING,
            ),
            EndpointAlarm.MEMORY_UTILIZATION: _AlarmSpec(
                m.memory(),
                t.memory_utilization_percent,
                f"MemoryUtilization (Average {period}) above {t.memory_utilization_percent:g} %.",
                cloudwatch.TreatMissingData.MISSING,
            ),
            EndpointAlarm.DISK_UTILIZATION: _AlarmSpec(
                m.disk(),
                t.disk_utilization_percent,
                f"DiskUtilization (Average {period}) above {t.disk_utilization_percent:g} %.",
                cloudwatch.TreatMissingData.MISSING,
            ),
        }


@dataclass(frozen=True)
class _AlarmSpec:
    metric: cloudwatch.IMetric
    threshold: float
    description: str
    treat_missing_data: cloudwatch.TreatMissingData


class EndpointDashboard(Construct):
    """A CloudWatch dashboard of one endpoint: a row per variant and the status of every alarm.

    Per variant: invocations, 4XX/5XX errors, the 4XX rate, ModelLatency p50/p99 in milliseconds, and
    CPU (percent of the instance), memory and disk utilization, each with its alarm threshold drawn.
    The dashboard has no physical name (CloudFormation generates one), so two stacks never clash.
    """

    def __init__(self, scope: Construct, id_: str, *, alarms: EndpointAlarms) -> None:
        super().__init__(scope, id_)
        t = alarms.thresholds
        rows: list[list[cloudwatch.IWidget]] = [
            [
                cloudwatch.AlarmStatusWidget(
                    title="Alarms ("
                    + ", ".join(a.value for a in ROLLBACK_ALARMS)
                    + " roll deployments back)",
                    alarms=list(alarms.all_alarms),
                    width=24,
                )
            ]
        ]
        for name, m in alarms.metrics.items():
            rows.append(
                [
                    _graph(f"{name}: invocations", [m.invocations().with_(label="Invocations")], "Count"),
                    _graph(
                        f"{name}: errors",
                        [m.errors_4xx().with_(label="4XX errors"), m.errors_5xx().with_(label="5XX errors")],
                        "Count",
                        t.invocation_5xx_errors,
                    ),
                    _graph(
                        f"{name}: 4XX rate", [m.error_4xx_rate()], "%", t.invocation_4xx_error_rate_percent
                    ),
                    _graph(
                        f"{name}: ModelLatency",
                        [m.model_latency_ms("p50"), m.model_latency_ms("p99")],
                        "ms",
                        t.model_latency_p99_ms,
                    ),
                ]
            )
            rows.append(
                [
                    _graph(
                        f"{name}: CPU",
                        [m.cpu_percent_of_instance()],
                        "% of instance",
                        t.cpu_utilization_percent,
                    ),
                    _graph(
                        f"{name}: memory",
                        [m.memory().with_(label="Memory (%)")],
                        "%",
                        t.memory_utilization_percent,
                    ),
                    _graph(
                        f"{name}: disk", [m.disk().with_(label="Disk (%)")], "%", t.disk_utilization_percent
                    ),
                ]
            )
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", widgets=rows)


def _graph(
    title: str, metrics: Sequence[cloudwatch.IMetric], unit: str, threshold: float | None = None
) -> cloudwatch.GraphWidget:
    annotations = (
        [cloudwatch.HorizontalAnnotation(value=threshold, label="alarm threshold")]
        if threshold is not None
        else []
    )
    return cloudwatch.GraphWidget(
        title=title,
        left=list(metrics),
        left_y_axis=cloudwatch.YAxisProps(label=unit, show_units=False, min=0),
        left_annotations=annotations,
        width=6,
    )


def _check_name_prefix(name_prefix: str) -> None:
    if not isinstance(name_prefix, str) or not NAME_PREFIX_PATTERN.fullmatch(name_prefix):
        raise ValueError(
            f"name_prefix: got {name_prefix!r}; allowed: a letter or digit, then letters, digits, '.', '_' "
            "and '-' (no '/', which separates the parts of an alarm name), e.g. the stack name"
        )


def _check_variant_names(variant_names: Sequence[str]) -> None:
    if isinstance(variant_names, str) or not variant_names:
        raise ValueError(
            f"variant_names: got {variant_names!r}; allowed: a non-empty sequence of variant names"
        )
    pattern = _variant_name_pattern()
    for name in variant_names:
        if not isinstance(name, str) or not pattern.fullmatch(name) or len(name) > 63:
            raise ValueError(
                f"variant_names: got {name!r}; allowed: SageMaker variant names ({pattern.pattern}, at "
                "most 63 characters)"
            )
    duplicates = sorted({n for n in variant_names if list(variant_names).count(n) > 1})
    if duplicates:
        raise ValueError(f"variant_names: got {duplicates} more than once; allowed: unique variant names")
