"""CloudWatch alarms on what SageMaker Model Monitor publishes: feature drift and model quality.

Model Monitor's jobs publish one datapoint per execution (when the job definition enables CloudWatch
metrics; data quality also needs ``"emit_metrics": "Enabled"`` in the baseline's ``constraints.json``):

- data quality: namespace ``aws/sagemaker/Endpoints/data-metrics``, metric
  ``feature_baseline_drift_<feature>`` (the distance, 0 to 1, of the feature's distribution from the
  baseline's), dimensions ``Endpoint``, ``MonitoringSchedule``;
- model quality: namespace ``aws/sagemaker/Endpoints/model-metrics``, the metric itself (``f1``, ``auc``,
  ``weighted_f1``, ``mae``, ...), dimensions ``Endpoint``, ``MonitoringSchedule``.

Sources: Developer Guide "CloudWatch Metrics" (model-monitor-interpreting-cloudwatch: the metric names) and
"Model quality metrics" (model-monitor-model-quality-metrics); the dimensions ``Endpoint`` +
``MonitoringSchedule`` as the two AWS samples that alarm on Model Monitor's drift metric use them
(aws-samples/amazon-sagemaker-drift-detection ``deployment_pipeline/infra/sagemaker_stack.py``,
aws-samples/amazon-sagemaker-safe-deployment-pipeline ``assets/deploy-model-prd.yml``) and as the
Developer Guide's bring-your-own-container page recommends them. **Unverified**: the SageMaker Python SDK's
``AutomaticDataQualityDashboard`` searches the data metrics with the schema
``{aws/sagemaker/Endpoints/data-metrics,Endpoint,Feature,MonitoringSchedule}``, i.e. with a third
dimension ``Feature``. An alarm whose dimensions differ from the published ones never receives data and
stays OK. After the first data-quality execution run
``aws cloudwatch list-metrics --namespace aws/sagemaker/Endpoints/data-metrics`` and, if the metrics carry
``Feature``, add it in :meth:`ModelMonitorAlarms._drift_metric` (one line).

**Feature names.** The metric name is ``feature_baseline_drift_`` + the column name as the baseline's
``statistics.json`` names it. How Model Monitor names the metric of a column whose name holds spaces
(``mean radius``) is not documented, and the Developer Guide's FAQ asks for baseline column names of
lowercase letters and ``_`` only; such names are accepted here as given, unverified.

**Feature drift.** A metric-math alarm watches at most 10 metrics (CloudWatch "Alarm limits": a hard
limit), so the features are split into groups of at most 10, in order, and each group has one alarm on
``MAX([drift of each feature])`` above ``drift_threshold``: it fires when any of its features drifts, and
its description names the features. One alarm per feature would cost one alarm (and one email) per
feature; the ``MAX`` keeps the worst feature's distance, which is what the drift check compares with its
threshold. (A composite alarm over the groups would send one email instead of one per group, but a group
alarm without actions fails cdk-nag's HIPAA and NIST CloudWatchAlarmAction rules; 30 features are 3
alarms.) The statistic is ``Maximum`` (the Developer Guide queries ``Sum``; with two executions'
datapoints in one period a sum would double the distance).

**Constraint violations.** No metric counts violations. Model Monitor's drift check reports a violation
when a feature's distance exceeds the constraints' ``comparison_threshold``; with ``drift_threshold`` equal
to that threshold the drift alarms fire exactly on drift violations. Violations without a metric
(data type, completeness, missing or extra columns) end the execution ``CompletedWithViolations`` (the
processing job ends ``Completed`` with that exit message); they are not alarmed here.

**Model quality.** One alarm on the configured metric: below the threshold for scores (accuracy, F-scores,
AUC, ...; statistic ``Minimum``), above it for error metrics and error rates (mae, mse, rmse, false
positive/negative rate; statistic ``Maximum``), the direction taken from ``monitor_rules``.

**Evaluation.** Periods equal the schedule's period (one execution, one datapoint per period). Missing
data is not breaching: no execution means no datapoint, and a monitor that did not run is not drift
(failed runs notify through EventBridge). An alarm fires on 1 of 2 periods: Model Monitor starts a run up
to 20 minutes after its scheduled time and publishes when it ends, so a breach stays in the evaluation
range until the next run's datapoint arrives, instead of flapping to OK in between (it also returns to OK
one period late). Every alarm sends ALARM and OK to the topic. No alarm has a physical name
(CloudFormation names them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from ml_platform.monitor_rules import MODEL_QUALITY_METRICS, lower_is_better, metric_range, threshold_problem

DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
DRIFT_METRIC_PREFIX = "feature_baseline_drift_"
ENDPOINT_DIMENSION = "Endpoint"
SCHEDULE_DIMENSION = "MonitoringSchedule"
#: CloudWatch "Alarm limits": an alarm based on metric math references at most 10 metrics (hard limit).
MAX_METRICS_PER_ALARM = 10
#: CloudWatch metric names are 1 to 255 characters; alarm descriptions at most 1024.
MAX_METRIC_NAME = 255
MAX_ALARM_DESCRIPTION = 1024
#: Model Monitor runs at most hourly and at least daily (``monitor_rules.schedule_period_hours``).
MIN_PERIOD_HOURS = 1
MAX_PERIOD_HOURS = 24
#: An alarm fires on 1 of the last 2 periods (module docstring: runs start late and publish when they end).
EVALUATION_PERIODS = 2
DATAPOINTS_TO_ALARM = 1
#: SageMaker names (endpoints, monitoring schedules): the API's pattern, at most 63 characters.
SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


def _check_sagemaker_name(key: str, value: object) -> None:
    """A literal SageMaker name, or a token (e.g. ``CfnEndpoint.attr_endpoint_name``) resolved at deploy."""
    if isinstance(value, str) and Token.is_unresolved(value):
        return
    if not isinstance(value, str) or not SAGEMAKER_NAME.fullmatch(value):
        raise ValueError(
            f"{key}: got {value!r}; allowed: a SageMaker name ({SAGEMAKER_NAME.pattern}, at most 63 "
            "characters) or a CDK token"
        )


def _check_period_hours(value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_PERIOD_HOURS <= value <= MAX_PERIOD_HOURS
    ):
        raise ValueError(
            f"period_hours: got {value!r}; allowed: the schedule's period, an integer from "
            f"{MIN_PERIOD_HOURS} to {MAX_PERIOD_HOURS} (monitor_rules.schedule_period_hours)"
        )


def _check_number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key}: got {value!r}; allowed: a finite number")
    return float(value)


@dataclass(frozen=True)
class DataQualityAlarmProps:
    """The drift alarms of one data-quality monitoring schedule.

    ``features`` are the monitored columns (the dataset's input columns, as the baseline names them);
    ``drift_threshold`` the distance (0, 1] above which a feature has drifted (use the constraints'
    ``comparison_threshold`` so the alarm agrees with the run's violations; 1 never fires, as the
    distance is at most 1); ``period_hours`` the schedule's period.
    """

    schedule_name: str
    features: tuple[str, ...]
    drift_threshold: float
    period_hours: int

    def __post_init__(self) -> None:
        _check_sagemaker_name("schedule_name", self.schedule_name)
        if isinstance(self.features, str) or not isinstance(self.features, Sequence) or not self.features:
            raise ValueError(
                f"features: got {self.features!r}; allowed: a non-empty sequence of feature (column) names"
            )
        object.__setattr__(self, "features", tuple(self.features))
        for feature in self.features:
            _check_feature(feature)
        duplicates = sorted({f for f in self.features if self.features.count(f) > 1})
        if duplicates:
            raise ValueError(f"features: got {duplicates} more than once; allowed: unique feature names")
        threshold = _check_number("drift_threshold", self.drift_threshold)
        if not 0 < threshold <= 1:
            raise ValueError(
                f"drift_threshold: got {self.drift_threshold!r}; allowed: a distance 0 < threshold <= 1"
            )
        _check_period_hours(self.period_hours)

    @property
    def feature_groups(self) -> tuple[tuple[str, ...], ...]:
        """The features in order, in groups of at most ``MAX_METRICS_PER_ALARM``: one alarm each."""
        n = MAX_METRICS_PER_ALARM
        return tuple(self.features[i : i + n] for i in range(0, len(self.features), n))


def _check_feature(feature: object) -> None:
    if (
        not isinstance(feature, str)
        or not feature.strip()
        or not feature.isprintable()
        or not feature.isascii()
        or len(DRIFT_METRIC_PREFIX + feature) > MAX_METRIC_NAME
    ):
        raise ValueError(
            f"features: got {feature!r}; allowed: a column name of printable ASCII characters, not blank, "
            f"at most {MAX_METRIC_NAME - len(DRIFT_METRIC_PREFIX)} characters (the metric name "
            f"{DRIFT_METRIC_PREFIX}<feature> has at most {MAX_METRIC_NAME})"
        )


@dataclass(frozen=True)
class ModelQualityAlarmProps:
    """The alarm of one model-quality monitoring schedule on one of Model Monitor's metrics.

    ``threshold`` must be crossable: for scores (alarm below it) ``low < threshold <= high``, for error
    metrics (alarm above it) ``low <= threshold < high``, with (low, high) = ``metric_range(metric)``.
    ``problem_type`` (optional) checks that the schedule's problem type publishes ``metric``.
    """

    schedule_name: str
    metric: str
    threshold: float
    period_hours: int
    problem_type: str | None = None

    def __post_init__(self) -> None:
        _check_sagemaker_name("schedule_name", self.schedule_name)
        try:
            low, high = metric_range(self.metric)
        except (ValueError, TypeError) as error:
            raise ValueError(f"metric: got {self.metric!r}; allowed: {_metric_choices()}") from error
        if self.problem_type is not None:
            published = MODEL_QUALITY_METRICS.get(self.problem_type)
            if published is None:
                raise ValueError(
                    f"problem_type: got {self.problem_type!r}; allowed: {', '.join(MODEL_QUALITY_METRICS)}"
                )
            if self.metric not in published:
                raise ValueError(
                    f"metric: got {self.metric!r}; allowed for {self.problem_type}: {', '.join(published)}"
                )
        threshold = _check_number("threshold", self.threshold)
        problem = threshold_problem(self.metric, threshold)
        if problem is not None:
            raise ValueError(
                f"threshold: got {self.threshold!r}; allowed: {problem}; a value at the end of its range "
                f"{_fmt(low)}..{_fmt(high)} could never be crossed"
            )
        _check_period_hours(self.period_hours)

    @property
    def lower_is_better(self) -> bool:
        """Error metrics and error rates: the alarm fires above the threshold."""
        return lower_is_better(self.metric)


def _fmt(value: float) -> str:
    return {math.inf: "inf", -math.inf: "-inf"}.get(value, f"{value:g}")


def _metric_choices() -> str:
    return "; ".join(f"{problem}: {', '.join(names)}" for problem, names in MODEL_QUALITY_METRICS.items())


class ModelMonitorAlarms(Construct):
    """Alarms on the Model Monitor schedules of one endpoint, notifying ``topic`` on ALARM and OK.

    ``data_quality``: one metric-math alarm per group of at most 10 features (``MAX`` of their drift above
    the threshold). ``model_quality``: one alarm on the configured metric in its direction. Either may be
    ``None`` (no schedule of that type); at least one must be given.

    Attributes: ``drift_alarms`` (one per feature group, in feature order), ``model_quality_alarm`` (or
    None), ``all_alarms`` (every alarm, e.g. for an alarm-status widget).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        endpoint_name: str,
        data_quality: DataQualityAlarmProps | None,
        model_quality: ModelQualityAlarmProps | None,
    ) -> None:
        super().__init__(scope, id_)
        _check_sagemaker_name("endpoint_name", endpoint_name)
        if data_quality is None and model_quality is None:
            raise ValueError(
                "data_quality, model_quality: got None for both; allowed: the props of at least one schedule"
            )
        self.endpoint_name = endpoint_name
        action = cloudwatch_actions.SnsAction(topic)
        self.drift_alarms: tuple[cloudwatch.Alarm, ...] = ()
        self.model_quality_alarm: cloudwatch.Alarm | None = None
        if data_quality is not None:
            self.drift_alarms = tuple(
                self._drift_group_alarm(data_quality, index, group)
                for index, group in enumerate(data_quality.feature_groups, start=1)
            )
        if model_quality is not None:
            self.model_quality_alarm = self._model_quality_alarm(model_quality)
        for alarm in self.all_alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    @property
    def all_alarms(self) -> tuple[cloudwatch.Alarm, ...]:
        quality = (self.model_quality_alarm,) if self.model_quality_alarm is not None else ()
        return (*self.drift_alarms, *quality)

    def _dimensions(self, schedule_name: str) -> dict[str, str]:
        return {ENDPOINT_DIMENSION: self.endpoint_name, SCHEDULE_DIMENSION: schedule_name}

    def _drift_metric(self, props: DataQualityAlarmProps, feature: str) -> cloudwatch.Metric:
        # If the first execution shows a third dimension Feature (module docstring), add it here:
        # dimensions_map={**self._dimensions(props.schedule_name), "Feature": feature}.
        return cloudwatch.Metric(
            namespace=DATA_METRICS_NAMESPACE,
            metric_name=DRIFT_METRIC_PREFIX + feature,
            dimensions_map=self._dimensions(props.schedule_name),
            statistic=cloudwatch.Stats.MAXIMUM,
            period=Duration.hours(props.period_hours),
            label=feature,
        )

    def _drift_group_alarm(
        self, props: DataQualityAlarmProps, index: int, group: tuple[str, ...]
    ) -> cloudwatch.Alarm:
        ids = [f"d{i}" for i in range(len(group))]
        expression = cloudwatch.MathExpression(
            expression=f"MAX([{', '.join(ids)}])",
            using_metrics={i: self._drift_metric(props, f) for i, f in zip(ids, group, strict=True)},
            label=f"max drift, features group {index}",
            period=Duration.hours(props.period_hours),
        )
        description = (
            f"Model Monitor data quality (schedule {props.schedule_name}): the largest baseline drift "
            f"distance of features group {index} (Maximum per {props.period_hours} h) above "
            f"{props.drift_threshold:g}. Details: the run's constraint_violations.json. Features: "
        )
        return cloudwatch.Alarm(
            self,
            f"DriftGroup{index}",
            alarm_description=_clip(description + ", ".join(group)),
            metric=expression,
            threshold=props.drift_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=EVALUATION_PERIODS,
            datapoints_to_alarm=DATAPOINTS_TO_ALARM,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _model_quality_alarm(self, props: ModelQualityAlarmProps) -> cloudwatch.Alarm:
        if props.lower_is_better:
            statistic, operator, word = (
                cloudwatch.Stats.MAXIMUM,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "above",
            )
        else:
            statistic, operator, word = (
                cloudwatch.Stats.MINIMUM,
                cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                "below",
            )
        metric = cloudwatch.Metric(
            namespace=MODEL_METRICS_NAMESPACE,
            metric_name=props.metric,
            dimensions_map=self._dimensions(props.schedule_name),
            statistic=statistic,
            period=Duration.hours(props.period_hours),
        )
        return cloudwatch.Alarm(
            self,
            "ModelQuality",
            alarm_description=_clip(
                f"Model Monitor model quality (schedule {props.schedule_name}): {props.metric} "
                f"({statistic} per {props.period_hours} h) {word} {props.threshold:g}."
            ),
            metric=metric,
            threshold=props.threshold,
            comparison_operator=operator,
            evaluation_periods=EVALUATION_PERIODS,
            datapoints_to_alarm=DATAPOINTS_TO_ALARM,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


def _clip(description: str) -> str:
    if len(description) <= MAX_ALARM_DESCRIPTION:
        return description
    return description[: MAX_ALARM_DESCRIPTION - 3] + "..."
