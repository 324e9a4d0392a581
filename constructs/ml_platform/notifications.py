"""EventBridge notifications of the platform's SageMaker events to the stage's alert topic.

What is notified (one rule each, on the account's default event bus, no physical names):

======================================  ==========================================================
Rule (:class:`Notification`)             Event (source ``aws.sagemaker``) and match
======================================  ==========================================================
``TRAINING_JOB_FAILED``                  Training Job State Change, ``TrainingJobStatus`` Failed
``TRAINING_JOB_STOPPED``                 ... Stopped (MaxRuntime/MaxWait exceeded, or stopped by hand);
                                         not the trials a tuning job stops early (see below)
``PROCESSING_JOB_FAILED`` / ``_STOPPED`` Processing Job State Change, ``ProcessingJobStatus``
``TUNING_JOB_FAILED_OR_STOPPED``         HyperParameter Tuning Job State Change,
                                         ``HyperParameterTuningJobStatus`` Failed or Stopped
``MONITORING_JOB_FAILED`` / ``_STOPPED`` Processing Job State Change of a Model Monitor job
``MONITORING_VIOLATIONS``                ... of a Model Monitor job that ended ``Completed`` with an
                                         ``ExitMessage`` starting ``CompletedWithViolations``
``PIPELINE_EXECUTION_FAILED``            Model Building Pipeline Execution Status Change,
                                         ``currentPipelineExecutionStatus`` Failed or CompletedWithFailures
``MODEL_APPROVAL_CHANGED``               Model Package State Change whose ``UpdatedModelPackageFields``
                                         lists ``ModelApprovalStatus``
``MODEL_PACKAGE_REGISTERED``             Model Package State Change of a new package awaiting approval
======================================  ==========================================================

Event shapes, field names and values: "Events that Amazon SageMaker AI sends to Amazon EventBridge",
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html (the list of
detail-types: https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-sagemaker.html). Status values
are those of botocore's SageMaker model (``TrainingJobStatus``, ``ProcessingJobStatus``,
``HyperParameterTuningJobStatus``, ``PipelineExecutionStatus``, ``ModelApprovalStatus``); a test checks each
matched value against it.

Scoping: no rule is account-wide.

* Jobs are matched by the IAM role they run as (``detail.RoleArn``; for tuning jobs
  ``detail.TrainingJobDefinition.RoleArn``): the platform's jobs run as its own roles, and nothing else
  does. Job names cannot scope them: SageMaker Pipelines names every job it starts
  ``pipelines-<execution id>-<step>-<random>``, whatever pipeline it belongs to.
* Model Monitor executions are processing jobs (there is no dedicated execution event: the "SageMaker
  Monitoring Schedule State Change" event is about the schedule, not its runs). They are told apart by
  their role: ``monitoring_role_arns`` must not overlap ``job_role_arns``. A run that finds violations
  ends ``Completed`` and its exit message (``ExitMessage``, the first 1 KB of the container's
  ``/opt/ml/output/message``) starts with ``CompletedWithViolations``: ``MONITORING_VIOLATIONS`` notifies
  every kind of violation (data types, completeness, missing columns, bias and attribution drift), which
  the CloudWatch alarms cannot (Model Monitor publishes metrics for feature drift and model quality only).
  The exit message in the event is inferred from the event's documented shape (the detail is the
  DescribeProcessingJob description); check it on the first violating run.
* Pipeline executions by ``detail.pipelineArn``, model packages by ``detail.ModelPackageGroupName``.
* Identifiers are compared with ``equals-ignore-case``: SageMaker reports some ARNs in lower case
  (boto/boto3#4606), IAM role names and SageMaker names are unique regardless of case, so nothing else can
  match.

Tuning trials: a tuning job with early stopping stops the trials that do not look promising, and a stopped
trial is a ``Stopped`` training job. Those are not failures, so the stopped-training rule skips training jobs
that carry ``TuningJobArn`` or the ``_tuning_objective_metric`` hyperparameter SageMaker gives a trial (an
``exists: false`` exclusion can only drop events that carry a marker: if SageMaker stops sending either, the
rule notifies more, never less). A *failed* trial is notified.

Model packages: an approval change is an event whose ``UpdatedModelPackageFields`` lists
``ModelApprovalStatus`` (the documented sample shows the field and names the value), so a metadata or
lifecycle update of an approved package, which repeats ``ModelApprovalStatus: Approved``, is not notified. A
*new* package is inferred, not documented: ``PendingManualApproval``, ``ModelPackageStatus`` Completed (a
package also passes Pending and InProgress) and no ``UpdatedModelPackageFields`` (nothing was updated);
``notify_registration=False`` drops that rule.

Messages: each target has an input transformer whose template is a JSON object (rendered on one line by
EventBridge) with a constant ``alert`` sentence first, then the event's identifiers, status and reason. A JSON
object rather than a sentence because EventBridge inserts a variable *outside* quotes as the JSON value
from the event (escaped), but inside a quoted string it pastes the raw text unescaped; failure reasons
routinely hold quotes and line breaks (Python tracebacks), which would break a string template. Only fields
the documentation shows on every matched event are mapped (a variable whose path is missing from an
event is not created); so failed and stopped jobs are separate rules, since only failures carry
``FailureReason``.

Delivery: the target is the stage's alert topic, imported into the consumer stack (an ``sns.ITopic``).
The SNS target of an imported topic writes no topic policy (CDK cannot extend an imported topic's policy)
and uses no IAM role: EventBridge publishes with the topic's resource policy, which the data stack's
``AlertTopic`` writes with ``Publisher.EVENTBRIDGE``, together with the key-policy statement that lets
``events.amazonaws.com`` use the stage key (``ml_platform.alerts``). No role may be set on the target: the
EventBridge documentation warns that role-based delivery to KMS-encrypted SNS topics can fail. A topic of
the *same* stack would get a topic-policy statement from the target; the platform always imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from aws_cdk import Annotations, Aws, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

SOURCE = "aws.sagemaker"


class DetailType(StrEnum):
    """The ``detail-type`` of the SageMaker events the platform is notified of (exact strings)."""

    TRAINING_JOB = "SageMaker Training Job State Change"
    PROCESSING_JOB = "SageMaker Processing Job State Change"
    TUNING_JOB = "SageMaker HyperParameter Tuning Job State Change"
    PIPELINE_EXECUTION = "SageMaker Model Building Pipeline Execution Status Change"
    MODEL_PACKAGE = "SageMaker Model Package State Change"


# Statuses matched (each a value of the botocore enums named: TrainingJobStatus, ProcessingJobStatus,
# HyperParameterTuningJobStatus; FAILED also of PipelineExecutionStatus).
FAILED = "Failed"
STOPPED = "Stopped"
COMPLETED = "Completed"
#: How a Model Monitor run that found violations starts its exit message (its execution status).
VIOLATIONS_EXIT_MESSAGE = "CompletedWithViolations"
# PipelineExecutionStatus: an execution that ran to its end with failed steps is a failure too.
PIPELINE_FAILURE_STATUSES = (FAILED, "CompletedWithFailures")
# ModelApprovalStatus
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
PENDING_APPROVAL = "PendingManualApproval"
# ModelPackageStatus: a package is registered once it is Completed.
PACKAGE_COMPLETED = "Completed"
# What SageMaker puts in UpdatedModelPackageFields when the approval status changed.
APPROVAL_FIELD = "ModelApprovalStatus"
# The hyperparameter SageMaker gives every training job a tuning job starts (a trial).
TUNING_TRIAL_HYPERPARAMETER = "_tuning_objective_metric"

# SageMaker's name patterns (botocore: PipelineName, EntityName) and IAM role ARNs (botocore: RoleArn).
PIPELINE_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
GROUP_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
# The label leads every alert sentence. '<' and '>' delimit template variables and cannot be escaped.
LABEL_PATTERN = re.compile(r"[^<>\x00-\x1f]{1,64}")


@dataclass(frozen=True)
class _Spec:
    construct_id: str
    detail_type: DetailType
    description: str


class Notification(Enum):
    """One EventBridge rule of :class:`PlatformNotifications`."""

    TRAINING_JOB_FAILED = _Spec(
        "TrainingJobFailed", DetailType.TRAINING_JOB, "A training job of the platform failed"
    )
    TRAINING_JOB_STOPPED = _Spec(
        "TrainingJobStopped",
        DetailType.TRAINING_JOB,
        "A training job of the platform was stopped (run time or spot wait exceeded, or by hand); "
        "not tuning trials stopped early",
    )
    PROCESSING_JOB_FAILED = _Spec(
        "ProcessingJobFailed", DetailType.PROCESSING_JOB, "A processing job of the platform failed"
    )
    PROCESSING_JOB_STOPPED = _Spec(
        "ProcessingJobStopped", DetailType.PROCESSING_JOB, "A processing job of the platform was stopped"
    )
    TUNING_JOB_FAILED_OR_STOPPED = _Spec(
        "TuningJobFailedOrStopped",
        DetailType.TUNING_JOB,
        "A hyperparameter tuning job of the platform failed or was stopped",
    )
    MONITORING_JOB_FAILED = _Spec(
        "MonitoringJobFailed", DetailType.PROCESSING_JOB, "A Model Monitor job of the platform failed"
    )
    MONITORING_JOB_STOPPED = _Spec(
        "MonitoringJobStopped",
        DetailType.PROCESSING_JOB,
        "A Model Monitor job of the platform was stopped (its stopping condition)",
    )
    MONITORING_VIOLATIONS = _Spec(
        "MonitoringViolations",
        DetailType.PROCESSING_JOB,
        "A Model Monitor run of the platform found violations of its baseline",
    )
    PIPELINE_EXECUTION_FAILED = _Spec(
        "PipelineExecutionFailed",
        DetailType.PIPELINE_EXECUTION,
        "An execution of a platform pipeline failed",
    )
    MODEL_APPROVAL_CHANGED = _Spec(
        "ModelApprovalChanged",
        DetailType.MODEL_PACKAGE,
        "The approval status of a model package of the platform's registry changed",
    )
    MODEL_PACKAGE_REGISTERED = _Spec(
        "ModelPackageRegistered",
        DetailType.MODEL_PACKAGE,
        "A new model package of the platform's registry awaits approval",
    )

    @property
    def construct_id(self) -> str:
        return self.value.construct_id

    @property
    def detail_type(self) -> DetailType:
        return self.value.detail_type

    @property
    def description(self) -> str:
        return self.value.description


class PlatformNotifications(Construct):
    """EventBridge rules sending the platform's failed jobs and pipelines and approval changes to ``topic``.

    Props:

    * ``topic``: the stage's alert topic (``AlertTopic.from_exports(...)``); its owner must have enabled
      ``Publisher.EVENTBRIDGE`` (topic and key policy).
    * ``job_role_arns``: the roles the platform's training, processing and tuning jobs run as (the
      pipelines' execution role); at least one.
    * ``pipeline_names``: the platform's SageMaker pipelines; at least one. Their ARNs are built in this
      stack's account and region.
    * ``model_package_group_name``: the platform's model registry.
    * ``monitoring_role_arns``: the roles Model Monitor jobs run as (none: no monitoring-job rules);
      disjoint from ``job_role_arns``.
    * ``notify_registration``: also notify each new package awaiting approval (default on).
    * ``label``: prefixed to every alert sentence (e.g. the stage), at most 64 characters, no ``<``/``>``.

    Attributes: ``rules`` (:class:`Notification` -> ``events.Rule``), ``pipeline_arns``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        job_role_arns: Sequence[str],
        pipeline_names: Sequence[str],
        model_package_group_name: str,
        monitoring_role_arns: Sequence[str] = (),
        notify_registration: bool = True,
        label: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        job_roles = _check_role_arns("job_role_arns", job_role_arns, required=True)
        monitoring_roles = _check_role_arns("monitoring_role_arns", monitoring_role_arns, required=False)
        shared = sorted(set(job_roles) & set(monitoring_roles))
        if shared:
            raise ValueError(
                f"monitoring_role_arns: got {shared}, also in job_role_arns; allowed: roles only Model "
                "Monitor jobs use (the rules tell monitoring jobs from the pipelines' jobs by their role)"
            )
        names = _check_names(
            "pipeline_names", pipeline_names, PIPELINE_NAME_PATTERN, "SageMaker pipeline names"
        )
        (group,) = _check_names(
            "model_package_group_name",
            [model_package_group_name],
            GROUP_NAME_PATTERN,
            "a model package group name",
        )
        if label is not None and not (Token.is_unresolved(label) or LABEL_PATTERN.fullmatch(label)):
            raise ValueError(
                f"label: got {label!r}; allowed: 1-64 characters without '<', '>' or control characters "
                "('<' and '>' delimit EventBridge template variables)"
            )
        stack = Stack.of(self)
        self.pipeline_arns = tuple(
            stack.format_arn(service="sagemaker", resource="pipeline", resource_name=n) for n in names
        )
        self._topic = topic
        self._prefix = f"[{label}] " if label else ""
        self.rules: dict[Notification, events.Rule] = {}

        job_role = _any_of(job_roles)
        self._add(Notification.TRAINING_JOB_FAILED, {"TrainingJobStatus": [FAILED], "RoleArn": job_role})
        self._add(
            Notification.TRAINING_JOB_STOPPED,
            {
                "TrainingJobStatus": [STOPPED],
                "RoleArn": job_role,
                "TuningJobArn": [{"exists": False}],
                "HyperParameters": {TUNING_TRIAL_HYPERPARAMETER: [{"exists": False}]},
            },
        )
        self._add(Notification.PROCESSING_JOB_FAILED, {"ProcessingJobStatus": [FAILED], "RoleArn": job_role})
        self._add(
            Notification.PROCESSING_JOB_STOPPED, {"ProcessingJobStatus": [STOPPED], "RoleArn": job_role}
        )
        self._add(
            Notification.TUNING_JOB_FAILED_OR_STOPPED,
            {
                "HyperParameterTuningJobStatus": [FAILED, STOPPED],
                "TrainingJobDefinition": {"RoleArn": job_role},
            },
        )
        if monitoring_roles:
            monitoring_role = _any_of(monitoring_roles)
            self._add(
                Notification.MONITORING_JOB_FAILED,
                {"ProcessingJobStatus": [FAILED], "RoleArn": monitoring_role},
            )
            self._add(
                Notification.MONITORING_JOB_STOPPED,
                {"ProcessingJobStatus": [STOPPED], "RoleArn": monitoring_role},
            )
            self._add(
                Notification.MONITORING_VIOLATIONS,
                {
                    "ProcessingJobStatus": [COMPLETED],
                    "ExitMessage": [{"prefix": VIOLATIONS_EXIT_MESSAGE}],
                    "RoleArn": monitoring_role,
                },
            )
        self._add(
            Notification.PIPELINE_EXECUTION_FAILED,
            {
                "currentPipelineExecutionStatus": list(PIPELINE_FAILURE_STATUSES),
                "pipelineArn": _any_of(self.pipeline_arns),
            },
        )
        registry = _any_of([group])
        self._add(
            Notification.MODEL_APPROVAL_CHANGED,
            {
                "ModelPackageGroupName": registry,
                "UpdatedModelPackageFields": [APPROVAL_FIELD],
                "ModelApprovalStatus": list(APPROVAL_STATUSES),
            },
        )
        if notify_registration:
            # A new package: no UpdatedModelPackageFields (nothing was updated), once it is Completed (the
            # package also passes Pending and InProgress, each with an event).
            self._add(
                Notification.MODEL_PACKAGE_REGISTERED,
                {
                    "ModelPackageGroupName": registry,
                    "ModelApprovalStatus": [PENDING_APPROVAL],
                    "ModelPackageStatus": [PACKAGE_COMPLETED],
                    "UpdatedModelPackageFields": [{"exists": False}],
                },
            )

    def _add(self, notification: Notification, detail: dict[str, Any]) -> None:
        rule = events.Rule(
            self,
            notification.construct_id,
            description=notification.description,
            event_pattern=events.EventPattern(
                source=[SOURCE], detail_type=[notification.detail_type.value], detail=detail
            ),
        )
        # No role (resource-policy delivery) and no topic policy (the topic is imported).
        rule.add_target(targets.SnsTopic(self._topic, message=self._message(notification)))
        # CDK warns when it cannot tell whether rule and target share an environment (an imported topic in
        # an environment-agnostic stack). They do: the alert topic is the stage's, in this stack's account
        # and region, and an EventBridge rule can only target an SNS topic in its own region anyway.
        Annotations.of(rule).acknowledge_warning(
            "@aws-cdk/aws-events:ruleUnresolvedEnvironment",
            "The alert topic is the stage's own, in this stack's account and region.",
        )
        self.rules[notification] = rule

    def _message(self, notification: Notification) -> events.RuleTargetInput:
        alert = self._prefix + _ALERTS[notification]
        body: dict[str, Any] = {"alert": alert, **_MESSAGE_FIELDS[notification]()}
        return events.RuleTargetInput.from_object(body)


def _field(path: str) -> str:
    return events.EventField.from_path(path)


def _console(fragment: str) -> str:
    """The regional SageMaker console page (a constant: no variable can go inside a quoted string)."""
    return f"https://{Aws.REGION}.console.aws.amazon.com/sagemaker/home?region={Aws.REGION}#/{fragment}"


def _envelope() -> dict[str, str]:
    return {"account": _field("$.account"), "region": _field("$.region"), "time": _field("$.time")}


def _training(*, failed: bool) -> dict[str, Any]:
    body = {
        "job": _field("$.detail.TrainingJobName"),
        "status": _field("$.detail.TrainingJobStatus"),
        "secondaryStatus": _field("$.detail.SecondaryStatus"),
    }
    if failed:
        body["reason"] = _field("$.detail.FailureReason")
    return {**body, "arn": _field("$.detail.TrainingJobArn"), **_envelope(), "console": _console("jobs")}


def _processing(*, failed: bool) -> dict[str, Any]:
    body = {"job": _field("$.detail.ProcessingJobName"), "status": _field("$.detail.ProcessingJobStatus")}
    if failed:
        body["reason"] = _field("$.detail.FailureReason")
    return {
        **body,
        "arn": _field("$.detail.ProcessingJobArn"),
        **_envelope(),
        "console": _console("processing-jobs"),
    }


def _violations() -> dict[str, Any]:
    """The run's exit message says how many violations; the report (constraint_violations.json) is in the
    job's output, under ``monitoring/reports/<type>/``."""
    return {
        "job": _field("$.detail.ProcessingJobName"),
        "status": _field("$.detail.ProcessingJobStatus"),
        "violations": _field("$.detail.ExitMessage"),
        "arn": _field("$.detail.ProcessingJobArn"),
        **_envelope(),
        "console": _console("processing-jobs"),
    }


def _tuning() -> dict[str, Any]:
    return {
        "job": _field("$.detail.HyperParameterTuningJobName"),
        "status": _field("$.detail.HyperParameterTuningJobStatus"),
        "trainingJobs": _field("$.detail.TrainingJobStatusCounters"),
        "objectives": _field("$.detail.ObjectiveStatusCounters"),
        "arn": _field("$.detail.HyperParameterTuningJobArn"),
        **_envelope(),
        "console": _console("hyper-tuning-jobs"),
    }


def _pipeline() -> dict[str, Any]:
    return {
        "pipeline": _field("$.detail.pipelineArn"),
        "execution": _field("$.detail.pipelineExecutionArn"),
        "status": _field("$.detail.currentPipelineExecutionStatus"),
        **_envelope(),
        "next": "aws sagemaker list-pipeline-execution-steps --pipeline-execution-arn EXECUTION (the failed "
        "step's FailureReason)",
    }


def _package(*, next_step: str) -> dict[str, Any]:
    return {
        "modelPackageGroup": _field("$.detail.ModelPackageGroupName"),
        "version": _field("$.detail.ModelPackageVersion"),
        "approvalStatus": _field("$.detail.ModelApprovalStatus"),
        "arn": _field("$.detail.ModelPackageArn"),
        **_envelope(),
        "next": next_step,
    }


_ALERTS: Mapping[Notification, str] = {
    Notification.TRAINING_JOB_FAILED: "SageMaker training job failed",
    Notification.TRAINING_JOB_STOPPED: "SageMaker training job stopped",
    Notification.PROCESSING_JOB_FAILED: "SageMaker processing job failed",
    Notification.PROCESSING_JOB_STOPPED: "SageMaker processing job stopped",
    Notification.TUNING_JOB_FAILED_OR_STOPPED: "SageMaker hyperparameter tuning job failed or stopped",
    Notification.MONITORING_JOB_FAILED: "Model Monitor job failed",
    Notification.MONITORING_JOB_STOPPED: "Model Monitor job stopped",
    Notification.MONITORING_VIOLATIONS: "Model Monitor found violations",
    Notification.PIPELINE_EXECUTION_FAILED: "SageMaker pipeline execution failed",
    Notification.MODEL_APPROVAL_CHANGED: "Model package approval status changed",
    Notification.MODEL_PACKAGE_REGISTERED: "New model package awaits approval",
}

_MESSAGE_FIELDS: Mapping[Notification, Callable[[], dict[str, Any]]] = {
    Notification.TRAINING_JOB_FAILED: lambda: _training(failed=True),
    Notification.TRAINING_JOB_STOPPED: lambda: _training(failed=False),
    Notification.PROCESSING_JOB_FAILED: lambda: _processing(failed=True),
    Notification.PROCESSING_JOB_STOPPED: lambda: _processing(failed=False),
    Notification.TUNING_JOB_FAILED_OR_STOPPED: _tuning,
    Notification.MONITORING_JOB_FAILED: lambda: _processing(failed=True),
    Notification.MONITORING_JOB_STOPPED: lambda: _processing(failed=False),
    Notification.MONITORING_VIOLATIONS: lambda: _violations(),
    Notification.PIPELINE_EXECUTION_FAILED: _pipeline,
    Notification.MODEL_APPROVAL_CHANGED: lambda: _package(
        next_step="serving follows the newest Approved package at the next deployment (cdk deploy)"
    ),
    Notification.MODEL_PACKAGE_REGISTERED: lambda: _package(
        next_step="review its metrics, then: aws sagemaker update-model-package --model-package-arn ARN "
        "--model-approval-status Approved (or Rejected)"
    ),
}


def _any_of(values: Sequence[str]) -> list[dict[str, str]]:
    """An EventBridge filter list matching any of ``values``, ignoring case."""
    return [{"equals-ignore-case": value} for value in values]


def _check_role_arns(prop: str, values: Sequence[str], *, required: bool) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{prop}: got the string {values!r}; allowed: a sequence of IAM role ARNs")
    arns = tuple(values)
    if required and not arns:
        raise ValueError(
            f"{prop}: got no role; allowed: at least one IAM role ARN (the rules are scoped by role)"
        )
    for arn in arns:
        if not isinstance(arn, str) or not (Token.is_unresolved(arn) or ROLE_ARN_PATTERN.fullmatch(arn)):
            raise ValueError(
                f"{prop}: got {arn!r}; allowed: IAM role ARNs (arn:aws:iam::<account>:role/<name>)"
            )
    _check_unique(prop, arns)
    return arns


def _check_names(prop: str, values: Sequence[str], pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{prop}: got the string {values!r}; allowed: a sequence of {what}")
    names = tuple(values)
    if not names:
        raise ValueError(f"{prop}: got none; allowed: at least one of {what}")
    for name in names:
        if not isinstance(name, str) or not (Token.is_unresolved(name) or pattern.fullmatch(name)):
            raise ValueError(f"{prop}: got {name!r}; allowed: {what} (pattern {pattern.pattern})")
    _check_unique(prop, names)
    return names


def _check_unique(prop: str, values: Sequence[str]) -> None:
    folded = [v.lower() for v in values]
    twice = sorted({v for v in values if folded.count(v.lower()) > 1})
    if twice:
        raise ValueError(f"{prop}: got {twice} more than once (ignoring case); allowed: each once")
