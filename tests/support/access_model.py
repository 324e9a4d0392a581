"""What SageMaker does with a pipeline's execution role, derived offline from the pipeline definition.

A pipeline step's ``Arguments`` is a SageMaker API request. Running it, SageMaker uses the execution role
twice: SageMaker Pipelines calls the job API with it (create, describe, stop, tag, pass the role, read
property files), and the job itself assumes it to pull its image, read its inputs, write its outputs,
checkpoints and logs, and use the KMS keys of its volumes and outputs. :func:`derive_accesses` turns a
(rendered) pipeline definition into those calls as :class:`Access` records — (action, resource ARN,
request context) and the reason — and :func:`evaluate` decides each against the role's synthesized
identity policies plus the resource policy of the bucket or key (bucket policies and key policies from
the data stack), with the maintained IAM simulator ``@cloud-copilot/iam-simulate`` (pinned in
package.json; run by ``iam_simulate.mjs``). The simulator also validates each request: the action must
exist and the ARN must be of a resource type the action takes.

Run-time values are evaluated concretely (:class:`PipelineEvaluator`): parameters take their defaults or
the values a test passes, the execution id and job names get realistic placeholders, and step properties
resolve to what SageMaker reports for them (a processing output's URI is the one the step declared; a
training job's model is ``<S3OutputPath>/<job name>/output/model.tar.gz``; a model step's model name is
the one SageMaker Pipelines gives it).

A model created from a model package (``CreateModel`` with ``ModelPackageName``) serves the package's
image and artifact, which the pipeline definition does not name: a test passes what the packages hold
(:class:`ModelPackage`, e.g. derived from the RegisterModel steps that create them).

What is modelled (and what is not) is listed on each helper; images in AWS-owned framework repositories
live in another account, so their pulls are checked against the role's identity policy only (the
repositories' own policies allow SageMaker pulls and cannot be read offline).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.sagemaker_api import (
    iter_steps,
    render_template_value,
)

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR = Path(__file__).with_name("iam_simulate.mjs")
EXECUTION_ID = "abcd1234efgh"
BEST_TRAINING_JOB = "tune-abcd1234efgh-007-8f3c2d1a"
# The files a QualityCheck step's analyzer writes into its output, by the step property naming each (the
# baseline used for the drift check is the computed one in a run that registers new baselines).
QUALITY_CHECK_FILES = {
    "CalculatedBaselineStatistics": "statistics.json",
    "CalculatedBaselineConstraints": "constraints.json",
    "BaselineUsedForDriftCheckStatistics": "statistics.json",
    "BaselineUsedForDriftCheckConstraints": "constraints.json",
}
# What a ClarifyCheck step's Clarify job writes (analysis.json is its baseline; the report beside it).
CLARIFY_CHECK_FILES = {
    "CalculatedBaselineConstraints": "analysis.json",
    "BaselineUsedForDriftCheckConstraints": "analysis.json",
}
CLARIFY_OUTPUT_FILES = ("analysis.json", "report.pdf")
#: Clarify's ``predictor.endpoint_name_prefix`` when an analysis config sets none.
CLARIFY_DEFAULT_ENDPOINT_PREFIX = "sm-clarify"
#: Reads the analysis config a Clarify job mounts, from its ``analysis_config`` input's S3 URI (a CDK asset).
AnalysisConfigs = Callable[[str], Mapping[str, Any]]


def shadow_endpoint_names(prefix: str) -> tuple[str, str]:
    """The endpoint config and endpoint SageMaker Clarify creates for a model check, named from the analysis
    config's ``endpoint_name_prefix`` (``<prefix>-config-<id>``, ``<prefix>-<id>``)."""
    return f"{prefix}-config-123", f"{prefix}-1a2b3c4d"


#: The previous run whose baselines the latest approved package holds (drift checks against it).
PREVIOUS_EXECUTION_ID = "zyxw9876vuts"
PREVIOUS_PACKAGE_VERSION = 7
SAGEMAKER = "sagemaker.amazonaws.com"

# Job type -> (IAM resource type, the actions SageMaker Pipelines calls on it, CloudWatch log group).
JOB_KINDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "Processing": (
        "processing-job",
        ("CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob", "AddTags"),
        "/aws/sagemaker/ProcessingJobs",
    ),
    # A QualityCheck step runs a processing job (Model Monitor's analyzer), a ClarifyCheck one SageMaker
    # Clarify's.
    "QualityCheck": (
        "processing-job",
        ("CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob", "AddTags"),
        "/aws/sagemaker/ProcessingJobs",
    ),
    "ClarifyCheck": (
        "processing-job",
        ("CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob", "AddTags"),
        "/aws/sagemaker/ProcessingJobs",
    ),
    "Training": (
        "training-job",
        ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "AddTags"),
        "/aws/sagemaker/TrainingJobs",
    ),
    "Tuning": (
        "hyper-parameter-tuning-job",
        (
            "CreateHyperParameterTuningJob",
            "DescribeHyperParameterTuningJob",
            "StopHyperParameterTuningJob",
            "ListTrainingJobsForHyperParameterTuningJob",
            "AddTags",
        ),
        "/aws/sagemaker/TrainingJobs",
    ),
    "Transform": (
        "transform-job",
        ("CreateTransformJob", "DescribeTransformJob", "StopTransformJob", "AddTags"),
        "/aws/sagemaker/TransformJobs",
    ),
}


class EvaluationError(ValueError):
    """A pipeline expression the evaluator does not know how to evaluate."""


def job_name(step: str) -> str:
    """The name SageMaker Pipelines gives the job of ``step`` (``pipelines-<execution>-<step>-<suffix>``)."""
    return f"pipelines-{EXECUTION_ID}-{step}-x1y2z3"[:63]


def split_s3(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/(.*)", uri)
    if match is None:
        raise EvaluationError(f"not an s3:// URI with a key: {uri!r}")
    return match.group(1), match.group(2)


class PipelineEvaluator:
    """Evaluates pipeline expressions of a rendered definition to concrete values.

    ``parameters`` overrides parameter defaults (a parameter without a default must be given);
    ``property_value`` is what every ``Std:JsonGet`` of a property file reads (e.g. the accuracy).
    """

    def __init__(
        self,
        definition: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
        *,
        property_value: float = 1.0,
    ) -> None:
        self.definition = definition
        self.property_value = property_value
        self.steps = {s["Name"]: s for s in iter_steps(definition)}
        self.parameters: dict[str, Any] = {
            p["Name"]: p["DefaultValue"] for p in definition.get("Parameters", []) if "DefaultValue" in p
        }
        self.parameters.update(parameters or {})

    def value(self, expression: Any) -> Any:
        if isinstance(expression, list):
            return [self.value(v) for v in expression]
        if not isinstance(expression, dict):
            return expression
        if set(expression) == {"Get"}:
            return self.get(expression["Get"])
        if set(expression) == {"Std:Join"}:
            join = expression["Std:Join"]
            parts = [self.value(v) for v in join["Values"]]
            return join["On"].join(self._text(p) for p in parts)
        if set(expression) == {"Std:JsonGet"}:
            return self.property_value  # a number read from a property file at run time
        return {k: self.value(v) for k, v in expression.items()}

    @staticmethod
    def _text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def get(self, reference: str) -> Any:
        root, _, rest = reference.partition(".")
        if root == "Parameters":
            if rest not in self.parameters:
                raise EvaluationError(f"parameter {rest!r} has no value")
            return self.parameters[rest]
        if reference == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        if reference == "Execution.PipelineName":
            return "pipeline"
        if root == "Steps":
            step_name, _, path = rest.partition(".")
            step = self.steps.get(step_name)
            if step is None:
                raise EvaluationError(f"{reference}: no step {step_name!r}")
            return self.step_property(step, path, reference)
        raise EvaluationError(f"cannot evaluate {reference!r}")

    def step_property(self, step: Mapping[str, Any], path: str, reference: str) -> Any:
        args = step["Arguments"]
        output = re.fullmatch(r"ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri", path)
        if output and step["Type"] == "Processing":
            for o in args["ProcessingOutputConfig"]["Outputs"]:
                if o["OutputName"] == output.group(1):
                    return self.value(o["S3Output"]["S3Uri"])
        if path == "ModelArtifacts.S3ModelArtifacts" and step["Type"] == "Training":
            base = self.value(args["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
            return f"{base}/{job_name(step['Name'])}/output/model.tar.gz"
        if path == "BestTrainingJob.TrainingJobName" and step["Type"] == "Tuning":
            return BEST_TRAINING_JOB
        if path == "ModelName" and step["Type"] == "Model":
            return job_name(step["Name"])
        if path == "TransformOutput.S3OutputPath" and step["Type"] == "Transform":
            return self.value(args["TransformOutput"]["S3OutputPath"])
        files = {"QualityCheck": QUALITY_CHECK_FILES, "ClarifyCheck": CLARIFY_CHECK_FILES}.get(
            step["Type"], {}
        )
        if path in files:
            if (
                path.startswith("BaselineUsedForDriftCheck")
                and self.value(step["RegisterNewBaseline"]) is not True
            ):
                raise EvaluationError(
                    f"{reference}: with RegisterNewBaseline false it is the latest approved package's "
                    "baseline, which the definition does not name"
                )
            (output,) = args["ProcessingOutputConfig"]["Outputs"]
            # Exactly as SageMaker builds it: the output's S3Uri, '/', the file (the SDK's URIs end without
            # '/'; one that ends in '/' gives '//', which this keeps so a test can see it).
            return self.value(output["S3Output"]["S3Uri"]) + "/" + files[path]
        raise EvaluationError(f"cannot evaluate step property {reference!r}")

    def condition(self, condition: Mapping[str, Any]) -> bool:
        """A Condition step condition, evaluated the way SageMaker Pipelines does."""
        kind = condition["Type"]
        if kind == "Not":
            return not self.condition(condition["Expression"])
        if kind == "Or":
            return any(self.condition(c) for c in condition["Conditions"])
        if kind == "In":
            return self.value(condition["QueryValue"]) in self.value(condition["Values"])
        left, right = self.value(condition["LeftValue"]), self.value(condition["RightValue"])
        compare = {
            "Equals": lambda a, b: a == b,
            "GreaterThan": lambda a, b: a > b,
            "GreaterThanOrEqualTo": lambda a, b: a >= b,
            "LessThan": lambda a, b: a < b,
            "LessThanOrEqualTo": lambda a, b: a <= b,
        }
        return bool(compare[kind](left, right))

    def executed_steps(self) -> Iterator[dict[str, Any]]:
        """The steps an execution with these parameter values runs, in order, until a Fail step.

        Condition steps take the branch their conditions select; a Fail step ends the execution.
        Top-level steps run in document order (this platform's pipelines list them in dependency order).
        """

        def run(steps: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for step in steps:
                yield step
                if step["Type"] == "Fail":
                    raise _Stopped
                if step["Type"] == "Condition":
                    args = step["Arguments"]
                    chosen = all(self.condition(c) for c in args["Conditions"])
                    yield from run(args["IfSteps"] if chosen else args["ElseSteps"])

        try:
            yield from run(self.definition["Steps"])
        except _Stopped:
            return

    def fails_with(self) -> str | None:
        """The error message of the Fail step this execution ends in, or None if it runs to the end."""
        last = None
        for step in self.executed_steps():
            last = step
        if last is not None and last["Type"] == "Fail":
            return str(self.value(last["Arguments"]["ErrorMessage"]))
        return None


class _Stopped(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# What SageMaker does with the role
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """One call SageMaker makes with the role."""

    action: str
    resource: str
    why: str
    context: Mapping[str, str] = field(default_factory=dict)
    # True for resources in AWS-owned accounts (framework image repositories): identity policy only.
    identity_only: bool = False

    def __str__(self) -> str:
        context = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{context}  <- {self.why}"


@dataclass(frozen=True)
class Lake:
    """What the access model needs to know of the lake: its bucket and the key it encrypts with."""

    bucket: str
    key_arn: str

    @property
    def region(self) -> str:
        """The stage's region (the key's): the placeholder one for environment-agnostic stacks."""
        return self.key_arn.split(":")[3]

    @property
    def account(self) -> str:
        return self.key_arn.split(":")[4]

    def sagemaker_arn(self, resource: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{resource}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _s3_read(uri: str, why: str, lake: Lake, *, prefix: bool) -> list[Access]:
    """S3Prefix: SageMaker lists the prefix, then gets each object. S3Object-like: gets the one key."""
    bucket, key = split_s3(uri)
    accesses = [Access("s3:ListBucket", f"arn:aws:s3:::{bucket}", why, {"s3:prefix": key})] if prefix else []
    # An object under the prefix (a key prefix ending in '/' holds files; otherwise it is the object key).
    object_key = f"{key}part-00000.csv" if key.endswith("/") else key
    accesses.append(Access("s3:GetObject", object_arn(bucket, object_key), why))
    if bucket == lake.bucket:  # SSE-KMS with the stage key: reads decrypt
        accesses.append(Access("kms:Decrypt", lake.key_arn, why, {"kms:ViaService": "s3.amazonaws.com"}))
    return accesses


def _s3_write(uri: str, why: str, lake: Lake, kms_key: str | None, file_name: str) -> list[Access]:
    bucket, key = split_s3(uri)
    object_key = f"{key.rstrip('/')}/{file_name}" if key else file_name
    accesses = [
        Access("s3:PutObject", object_arn(bucket, object_key), why),
        # Large files go up as multipart uploads, which SageMaker aborts on failure.
        Access("s3:AbortMultipartUpload", object_arn(bucket, object_key), why),
    ]
    key_arn = kms_key or (lake.key_arn if bucket == lake.bucket else None)
    if key_arn:
        via = {"kms:ViaService": "s3.amazonaws.com"}
        # SSE-KMS uploads need a data key; multipart uploads also decrypt it for each part.
        accesses += [
            Access("kms:GenerateDataKey", key_arn, why, via),
            Access("kms:Decrypt", key_arn, why, via),
        ]
    return accesses


def _volume_key(key_arn: str | None, why: str) -> list[Access]:
    # SageMaker creates a grant for the instance's EBS volume on the caller's behalf.
    if not key_arn:
        return []
    return [Access("kms:CreateGrant", key_arn, why, {"kms:GrantIsForAWSResource": "true"})]


def _image(uri: str, why: str, lake: Lake) -> list[Access]:
    # Tagged, by digest, or untagged (Model Monitor's analyzer is pulled untagged, i.e. ``latest``).
    match = re.fullmatch(
        r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)(?:[:@].+)?", uri
    )
    if match is None:
        raise EvaluationError(f"{why}: not an ECR image URI: {uri!r}")
    account, region, repository = match.groups()
    repository_arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
    other_account = account != lake.account
    pulls = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
    return [
        Access("ecr:GetAuthorizationToken", "*", why),
        *(Access(a, repository_arn, why, identity_only=other_account) for a in pulls),
    ]


def _logs(group: str, job: str, why: str, lake: Lake) -> list[Access]:
    group_arn = f"arn:aws:logs:{lake.region}:{lake.account}:log-group:{group}"
    stream_arn = f"{group_arn}:log-stream:{job}/algo-1-1700000000"
    return [
        Access("logs:CreateLogGroup", group_arn, why),
        Access("logs:DescribeLogStreams", group_arn, why),
        Access("logs:CreateLogStream", stream_arn, why),
        Access("logs:PutLogEvents", stream_arn, why),
    ]


def _pipeline_calls(
    kind: str, step: str, role_arn: str, why: str, lake: Lake, *, passes_role: bool = True
) -> list[Access]:
    """The job API calls SageMaker Pipelines makes; ``passes_role``: the request names the role
    (a transform job takes none: it runs as its model's execution role)."""
    resource_type, actions, _ = JOB_KINDS[kind]
    # SageMaker writes job ARNs in lower case.
    arn = lake.sagemaker_arn(f"{resource_type}/{job_name(step).lower()}")
    calls = [Access(f"sagemaker:{a}", arn, why) for a in actions]
    if passes_role:
        calls.append(Access("iam:PassRole", role_arn, why, {"iam:PassedToService": SAGEMAKER}))
    return calls


@dataclass(frozen=True)
class ModelPackage:
    """What a registered model package serves: its container image and its model artifact."""

    image: str
    model_data_url: str


def _package_arn(name: str, lake: Lake) -> str:
    """A ``ModelPackageName`` as IAM sees it: an ARN as given, ``<group>/<version>`` in the stage."""
    return name if name.startswith("arn:") else lake.sagemaker_arn(f"model-package/{name}")


def _served_package(
    container: Mapping[str, Any], ev: PipelineEvaluator, packages: Mapping[str, ModelPackage], lake: Lake
) -> tuple[str, ModelPackage]:
    """The package ARN a model's primary container names, and what it serves (from ``packages``)."""
    if "ModelPackageName" not in container:
        raise EvaluationError(f"a model without ModelPackageName is not modelled: {dict(container)}")
    arn = _package_arn(str(ev.value(container["ModelPackageName"])), lake)
    if arn not in packages:
        raise EvaluationError(
            f"model package {arn!r}: pass what it serves (model_packages); known: {sorted(packages)}"
        )
    return arn, packages[arn]


def _serving(package: ModelPackage, why: str, lake: Lake) -> list[Access]:
    """What a model's execution role does to serve a package: pull its image, get (decrypt) its artifact."""
    return [
        *_image(package.image, f"{why}: serving image", lake),
        *_s3_read(package.model_data_url, f"{why}: model artifact", lake, prefix=False),
    ]


def _container_served(container: Mapping[str, Any], ev: PipelineEvaluator, why: str) -> ModelPackage:
    """What a model container naming its image and artifact (no package) serves."""
    if not {"Image", "ModelDataUrl"} <= set(container):
        raise EvaluationError(f"{why}: a container without Image and ModelDataUrl or a package: {container}")
    return ModelPackage(
        image=str(ev.value(container["Image"])), model_data_url=str(ev.value(container["ModelDataUrl"]))
    )


def _model_of(step: Mapping[str, Any], ev: PipelineEvaluator, why: str) -> dict[str, Any]:
    """The Model step whose ``ModelName`` ``step`` names (``{"Get": "Steps.<model step>.ModelName"}``)."""
    model_name = step.get("ModelName")
    reference = model_name.get("Get", "") if isinstance(model_name, dict) else ""
    match = re.fullmatch(r"Steps\.([^.]+)\.ModelName", reference)
    model = ev.steps.get(match.group(1)) if match else None
    if model is None or model["Type"] != "Model":
        raise EvaluationError(f"{why}: ModelName {model_name!r} is not the model of a Model step")
    return model


def _model_step(
    step: Mapping[str, Any], ev: PipelineEvaluator, lake: Lake, packages: Mapping[str, ModelPackage], why: str
) -> list[Access]:
    """CreateModel from a package: the API calls, and what SageMaker checks with the model's role.

    SageMaker reads the package with the caller's ``DescribeModelPackage`` and checks that the model's
    execution role can get the artifact (CreateModel fails otherwise); the image pull is checked here too,
    since every use of the model needs it.
    """
    args = step["Arguments"]
    model_arn = lake.sagemaker_arn(f"model/{job_name(step['Name']).lower()}")
    role = ev.value(args["ExecutionRoleArn"])
    accesses = [
        Access("sagemaker:CreateModel", model_arn, why),
        Access("sagemaker:DescribeModel", model_arn, why),
        Access("iam:PassRole", role, why, {"iam:PassedToService": SAGEMAKER}),
    ]
    if "ModelPackageName" not in args["PrimaryContainer"]:
        package = _container_served(args["PrimaryContainer"], ev, why)
    else:
        package_arn, package = _served_package(args["PrimaryContainer"], ev, packages, lake)
        accesses.append(
            Access("sagemaker:DescribeModelPackage", package_arn, f"{why}: the package the model serves")
        )
    if args.get("Tags"):
        accesses.append(Access("sagemaker:AddTags", model_arn, f"{why}: tags"))
    return accesses + _serving(package, f"{why} (execution role {role})", lake)


def _transform_step(
    step: Mapping[str, Any],
    ev: PipelineEvaluator,
    lake: Lake,
    packages: Mapping[str, ModelPackage],
    role_arn: str,
    why: str,
) -> list[Access]:
    """A transform job: Pipelines' job calls, then the job, as the role of the model it runs.

    The job pulls the model's image, gets its artifact, lists and gets the ``S3Prefix`` input, writes one
    ``<input file>.out`` per input file with the output key (SSE-KMS: a data key, plus ``kms:Encrypt``,
    which the API reference requires of the role for ``TransformOutput.KmsKeyId``), creates a grant on
    the volume key, and writes logs and instance metrics.
    """
    args = step["Arguments"]
    accesses = _pipeline_calls("Transform", step["Name"], role_arn, why, lake, passes_role=False)
    model_name = args["ModelName"]
    reference = model_name.get("Get", "") if isinstance(model_name, dict) else ""
    match = re.fullmatch(r"Steps\.([^.]+)\.ModelName", reference)
    model = ev.steps.get(match.group(1)) if match else None
    if model is None or model["Type"] != "Model":
        raise EvaluationError(f"{why}: ModelName {model_name!r} is not the model of a Model step")
    _, package = _served_package(model["Arguments"]["PrimaryContainer"], ev, packages, lake)
    job_why = f"{why} job (as the model's role)"
    accesses += _serving(package, job_why, lake)
    source = args["TransformInput"]["DataSource"]["S3DataSource"]
    accesses += _s3_read(
        ev.value(source["S3Uri"]), f"{job_why}: input", lake, prefix=source["S3DataType"] == "S3Prefix"
    )
    output = args["TransformOutput"]
    key = ev.value(output.get("KmsKeyId"))
    accesses += _s3_write(
        ev.value(output["S3OutputPath"]), f"{job_why}: predictions", lake, key, "scoring.csv.out"
    )
    if key:
        accesses.append(Access("kms:Encrypt", key, f"{job_why}: output key"))
    accesses += _volume_key(
        ev.value(args["TransformResources"].get("VolumeKmsKeyId")), f"{job_why}: volume key"
    )
    accesses += _logs(JOB_KINDS["Transform"][2], job_name(step["Name"]), job_why, lake)
    accesses.append(
        Access(
            "cloudwatch:PutMetricData",
            "*",
            f"{job_why}: instance metrics",
            {"cloudwatch:namespace": "/aws/sagemaker/TransformJobs"},
        )
    )
    return accesses


def _training_job(
    request: Mapping[str, Any], ev: PipelineEvaluator, lake: Lake, job: str, why: str
) -> list[Access]:
    """What a training job (or each training job of a tuning job) does with its role."""
    accesses = _image(ev.value(request["AlgorithmSpecification"]["TrainingImage"]), why, lake)
    for channel in request.get("InputDataConfig", []):
        source = channel["DataSource"]["S3DataSource"]
        accesses += _s3_read(
            ev.value(source["S3Uri"]),
            f"{why}: channel {channel['ChannelName']}",
            lake,
            prefix=source["S3DataType"] == "S3Prefix",
        )
    output = request["OutputDataConfig"]
    output_path = ev.value(output["S3OutputPath"]).rstrip("/") + f"/{job}/output/"
    accesses += _s3_write(
        output_path, f"{why}: model artifacts", lake, ev.value(output.get("KmsKeyId")), "model.tar.gz"
    )
    resources = request["ResourceConfig"]
    accesses += _volume_key(ev.value(resources.get("VolumeKmsKeyId")), f"{why}: volume key")
    checkpoint = request.get("CheckpointConfig")
    if checkpoint:
        uri = ev.value(checkpoint["S3Uri"])
        bucket, key = split_s3(uri)
        cwhy = f"{why}: checkpoints (synced both ways; local deletions are mirrored)"
        accesses += _s3_read(uri, cwhy, lake, prefix=True)
        accesses += _s3_write(uri, cwhy, lake, None, "checkpoint-rank00000-step1000.pt")
        accesses.append(Access("s3:DeleteObject", object_arn(bucket, f"{key}checkpoint-old.pt"), cwhy))
    accesses += _logs(JOB_KINDS["Training"][2], job, why, lake)
    if request["AlgorithmSpecification"].get("MetricDefinitions"):
        accesses.append(
            Access(
                "cloudwatch:PutMetricData",
                "*",
                f"{why}: metrics",
                {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"},
            )
        )
    return accesses


def processing_script(args: Mapping[str, Any]) -> str:
    """The script a processing step runs (the platform's entry point passes it as ``$0``)."""
    entrypoint = args["AppSpecification"].get("ContainerEntrypoint") or [""]
    return str(entrypoint[-1])


def script_calls(args: Mapping[str, Any], ev: PipelineEvaluator, lake: Lake, why: str) -> list[Access]:
    """The AWS API calls a processing script makes itself, with the job's role (from its arguments).

    ``ingest_features.py`` describes the feature group and puts records into it; the online store is
    encrypted with the stage key, and Feature Store requires ``kms:Decrypt`` of every PutRecord caller.
    """
    script = processing_script(args)
    if script != "ingest_features.py":
        return []
    arguments = [str(ev.value(a)) for a in args["AppSpecification"].get("ContainerArguments", [])]
    group = arguments[arguments.index("--feature_group_name") + 1]
    arn = lake.sagemaker_arn(f"feature-group/{group}")
    calls = f"{why}: {script}"
    return [
        Access("sagemaker:DescribeFeatureGroup", arn, calls),
        Access("sagemaker:PutRecord", arn, calls),
        Access("kms:Decrypt", lake.key_arn, calls),
    ]


def _processing_job(
    step: Mapping[str, Any],
    ev: PipelineEvaluator,
    lake: Lake,
    role_arn: str,
    why: str,
    output_files: Sequence[str] = ("result.csv",),
) -> list[Access]:
    """A processing job: Pipelines' job calls, the image pull, each input listed and read, each output
    written (one object per name in ``output_files``) with the output key, the script's own calls, the
    volume grant, logs and the property files SageMaker Pipelines reads back."""
    name, args = step["Name"], step["Arguments"]
    accesses = _pipeline_calls(step["Type"], name, role_arn, why, lake)
    accesses += _image(ev.value(args["AppSpecification"]["ImageUri"]), why, lake)
    for i in args.get("ProcessingInputs", []):
        s3 = i["S3Input"]
        accesses += _s3_read(
            ev.value(s3["S3Uri"]),
            f"{why}: input {i['InputName']}",
            lake,
            prefix=s3["S3DataType"] == "S3Prefix",
        )
    config = args.get("ProcessingOutputConfig", {"Outputs": []})
    for o in config["Outputs"]:
        for file_name in output_files:
            accesses += _s3_write(
                ev.value(o["S3Output"]["S3Uri"]),
                f"{why}: output {o['OutputName']}",
                lake,
                ev.value(config.get("KmsKeyId")),
                file_name,
            )
    accesses += script_calls(args, ev, lake, why)
    cluster = args["ProcessingResources"]["ClusterConfig"]
    accesses += _volume_key(ev.value(cluster.get("VolumeKmsKeyId")), f"{why}: volume key")
    accesses += _logs(JOB_KINDS["Processing"][2], job_name(name), why, lake)
    for pf in step.get("PropertyFiles", []):
        # SageMaker Pipelines reads property files from the output, with the pipeline's role.
        (output,) = [o for o in config["Outputs"] if o["OutputName"] == pf["OutputName"]]
        uri = ev.value(output["S3Output"]["S3Uri"]).rstrip("/") + "/" + pf["FilePath"]
        accesses += _s3_read(uri, f"{why}: property file {pf['PropertyFileName']}", lake, prefix=False)
    return accesses


def _previous_baselines(
    step: Mapping[str, Any], ev: PipelineEvaluator, lake: Lake, files: Sequence[str], why: str
) -> list[Access]:
    """A check against the group's latest approved package (SkipCheck or RegisterNewBaseline false):
    SageMaker Pipelines lists the group's packages, describes the latest approved one and reads the
    baseline files it registered (those of an earlier execution of the same pipeline, same layout)."""
    group = ev.value(step["ModelPackageGroupName"])
    (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    bucket, key = split_s3(ev.value(output["S3Output"]["S3Uri"]))
    if f"/{EXECUTION_ID}/" not in f"/{key}":
        raise EvaluationError(f"{why}: the output {key!r} is not per execution; its previous one is unknown")
    previous = key.replace(f"{EXECUTION_ID}/", f"{PREVIOUS_EXECUTION_ID}/", 1)
    pwhy = f"{why}: drift check against the latest approved package"
    accesses = [
        Access("sagemaker:ListModelPackages", lake.sagemaker_arn("model-package/*"), pwhy),
        Access(
            "sagemaker:DescribeModelPackage",
            lake.sagemaker_arn(f"model-package/{group}/{PREVIOUS_PACKAGE_VERSION}"),
            pwhy,
        ),
    ]
    for name in dict.fromkeys(files):
        accesses += _s3_read(f"s3://{bucket}/{previous}/{name}", pwhy, lake, prefix=False)
    return accesses


def _quality_check(
    step: Mapping[str, Any], ev: PipelineEvaluator, lake: Lake, role_arn: str, why: str
) -> list[Access]:
    """A QualityCheck step: its analyzer processing job, which writes statistics.json and constraints.json,
    and with SkipCheck or RegisterNewBaseline false the lookup of the latest approved package's baseline."""
    files = tuple(dict.fromkeys(QUALITY_CHECK_FILES.values()))
    accesses = _processing_job(step, ev, lake, role_arn, why, output_files=files)
    if ev.value(step["SkipCheck"]) is not True or ev.value(step["RegisterNewBaseline"]) is not True:
        accesses += _previous_baselines(step, ev, lake, files, why)
    return accesses


def shadow_endpoint_prefix_of(
    step: Mapping[str, Any], ev: PipelineEvaluator, analysis_configs: AnalysisConfigs | None, why: str
) -> str:
    """The ``endpoint_name_prefix`` of the analysis config a Clarify check step mounts (Clarify's default
    when the config sets none)."""
    if analysis_configs is None:
        raise EvaluationError(f"{why}: its shadow endpoint's name is in the analysis config; pass a reader")
    inputs = step["Arguments"]["ProcessingInputs"]
    (config_input,) = [i for i in inputs if i["InputName"] == "analysis_config"]
    config = analysis_configs(ev.value(config_input["S3Input"]["S3Uri"]))
    return str(config.get("predictor", {}).get("endpoint_name_prefix", CLARIFY_DEFAULT_ENDPOINT_PREFIX))


def _clarify_check(
    step: Mapping[str, Any],
    ev: PipelineEvaluator,
    lake: Lake,
    role_arn: str,
    why: str,
    analysis_configs: AnalysisConfigs | None = None,
) -> list[Access]:
    """A ClarifyCheck step: the Clarify processing job (its analysis.json and report), the previous baseline
    as for a QualityCheck, and for MODEL_BIAS / MODEL_EXPLAINABILITY the shadow endpoint of ``ModelName``.

    The shadow endpoint: the job (as the role) describes the model, creates an endpoint config and an
    endpoint named from the analysis config's ``endpoint_name_prefix`` (:func:`shadow_endpoint_names`),
    waits for it, invokes it and deletes both; SageMaker hosting then runs the model as the model's
    execution role (image pull, artifact, logs, metrics).
    """
    accesses = _processing_job(step, ev, lake, role_arn, why, output_files=CLARIFY_OUTPUT_FILES)
    if ev.value(step["SkipCheck"]) is not True or ev.value(step["RegisterNewBaseline"]) is not True:
        accesses += _previous_baselines(step, ev, lake, ("analysis.json",), why)
    if "ModelName" not in step:
        return accesses
    model = _model_of(step, ev, why)
    model_arn = lake.sagemaker_arn(f"model/{job_name(model['Name']).lower()}")
    config_name, endpoint_name = shadow_endpoint_names(
        shadow_endpoint_prefix_of(step, ev, analysis_configs, why)
    )
    config_arn = lake.sagemaker_arn(f"endpoint-config/{config_name}")
    endpoint_arn = lake.sagemaker_arn(f"endpoint/{endpoint_name}")
    swhy = f"{why}: shadow endpoint {endpoint_name}"
    accesses += [
        Access("sagemaker:DescribeModel", model_arn, swhy),
        Access("sagemaker:CreateEndpointConfig", config_arn, swhy),
        Access("sagemaker:DescribeEndpointConfig", config_arn, swhy),
        Access("sagemaker:CreateEndpoint", endpoint_arn, swhy),
        Access("sagemaker:CreateEndpoint", config_arn, swhy),
        Access("sagemaker:DescribeEndpoint", endpoint_arn, swhy),
        Access("sagemaker:InvokeEndpoint", endpoint_arn, swhy),
        Access("sagemaker:DeleteEndpoint", endpoint_arn, swhy),
        Access("sagemaker:DeleteEndpointConfig", config_arn, swhy),
    ]
    container = model["Arguments"]["PrimaryContainer"]
    model_role = ev.value(model["Arguments"]["ExecutionRoleArn"])
    hwhy = f"{swhy} hosting (as the model's role {model_role})"
    accesses += _serving(_container_served(container, ev, why), hwhy, lake)
    logs = f"arn:aws:logs:{lake.region}:{lake.account}:log-group:{ENDPOINT_LOG_GROUP_PREFIX}"
    group_arn = f"{logs}{endpoint_name}"
    stream_arn = f"{group_arn}:log-stream:AllTraffic/{HOSTING_INSTANCE}"
    accesses += [
        Access("logs:CreateLogGroup", group_arn, hwhy),
        Access("logs:CreateLogStream", stream_arn, hwhy),
        Access("logs:PutLogEvents", stream_arn, hwhy),
        Access("cloudwatch:PutMetricData", "*", hwhy, {"cloudwatch:namespace": ENDPOINT_METRICS_NAMESPACE}),
    ]
    return accesses


def derive_accesses(
    definition: Mapping[str, Any],
    *,
    role_arn: str,
    lake: Lake,
    parameters: Mapping[str, Any] | None = None,
    step_extras: Mapping[str, Any] | None = None,
    model_packages: Mapping[str, ModelPackage] | None = None,
    analysis_configs: AnalysisConfigs | None = None,
) -> list[Access]:
    """Every call SageMaker makes with the role when it runs ``definition`` (every step, every branch).

    ``analysis_configs`` reads a Clarify check's analysis config from its S3 URI: a model check's shadow
    endpoint is named from it (required when the definition has one).

    ``step_extras`` maps a step name to a function ``(step, evaluator) -> list[Access]`` for the calls a
    step's own code makes with the role (e.g. a script that writes to the Feature Store).
    ``model_packages`` maps a package ARN to what it serves, for the Model and Transform steps.
    """
    packages = model_packages or {}
    ev = PipelineEvaluator(definition, parameters)
    accesses: list[Access] = []
    for step in iter_steps(definition):
        name, kind, args = step["Name"], step["Type"], step.get("Arguments", {})
        why = f"step {name!r} ({kind})"
        if kind == "Processing":
            accesses += _processing_job(step, ev, lake, role_arn, why)
        elif kind == "QualityCheck":
            accesses += _quality_check(step, ev, lake, role_arn, why)
        elif kind == "ClarifyCheck":
            accesses += _clarify_check(step, ev, lake, role_arn, why, analysis_configs)
        elif kind == "Training":
            accesses += _pipeline_calls(kind, name, role_arn, why, lake)
            accesses += _training_job(args, ev, lake, job_name(name), why)
        elif kind == "Tuning":
            accesses += _pipeline_calls(kind, name, role_arn, why, lake)
            definition_ = args["TrainingJobDefinition"]
            accesses.append(
                Access(
                    "iam:PassRole", ev.value(definition_["RoleArn"]), why, {"iam:PassedToService": SAGEMAKER}
                )
            )
            accesses += _training_job(definition_, ev, lake, BEST_TRAINING_JOB, f"{why} training jobs")
        elif kind == "RegisterModel":
            group = ev.value(args["ModelPackageGroupName"])
            package_arn = lake.sagemaker_arn(f"model-package/{group}/1")
            accesses += [
                Access("sagemaker:CreateModelPackage", package_arn, why),
                Access("sagemaker:AddTags", package_arn, why),
            ]
        elif kind == "Model":
            accesses += _model_step(step, ev, lake, packages, why)
        elif kind == "Transform":
            accesses += _transform_step(step, ev, lake, packages, role_arn, why)
        elif kind in ("Condition", "Fail"):
            pass
        else:
            raise EvaluationError(f"{why}: the access model does not know step type {kind!r}")
        if step_extras and name in step_extras:
            accesses += step_extras[name](step, ev)
    return accesses


def registered_packages(
    definition: Mapping[str, Any], lake: Lake, parameters: Mapping[str, Any] | None = None
) -> dict[str, ModelPackage]:
    """What the packages a pipeline's RegisterModel steps create serve, by package ARN (version 1 of the
    group, one entry per step; steps of one group with different contents raise)."""
    ev = PipelineEvaluator(definition, parameters)
    packages: dict[str, ModelPackage] = {}
    for step in iter_steps(definition):
        if step["Type"] != "RegisterModel":
            continue
        args = step["Arguments"]
        (container,) = args["InferenceSpecification"]["Containers"]
        arn = lake.sagemaker_arn(f"model-package/{ev.value(args['ModelPackageGroupName'])}/1")
        package = ModelPackage(
            image=ev.value(container["Image"]), model_data_url=ev.value(container["ModelDataUrl"])
        )
        packages.setdefault(arn, package)
        if packages[arn].image != package.image:
            raise EvaluationError(f"{arn}: RegisterModel steps register different images")
    return packages


# --------------------------------------------------------------------------------------------------
# Policies from the synthesized templates, and the simulator
# --------------------------------------------------------------------------------------------------


def role_policies(
    template: Mapping[str, Any], role_logical_id: str, imports: Mapping[str, Any]
) -> tuple[str, list[dict[str, Any]]]:
    """The rendered ARN and every identity policy (inline, attached AWS::IAM::Policy) of one role."""
    resources = template["Resources"]
    role = resources[role_logical_id]
    arn = render_template_value(template, {"Fn::GetAtt": [role_logical_id, "Arn"]}, imports)
    policies = [
        {"name": p["PolicyName"], "policy": render_template_value(template, p["PolicyDocument"], imports)}
        for p in role["Properties"].get("Policies", [])
    ]
    if role["Properties"].get("ManagedPolicyArns"):
        raise EvaluationError(f"{role_logical_id}: managed policies are not modelled")
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role_logical_id} in resource["Properties"].get("Roles", []):
            document = render_template_value(template, resource["Properties"]["PolicyDocument"], imports)
            policies.append({"name": lid, "policy": document})
    return arn, policies


def resource_policies(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Rendered bucket policies (by bucket ARN) and key policies (by key ARN) of ``template``."""
    policies: dict[str, dict[str, Any]] = {}
    for lid, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::S3::BucketPolicy":
            bucket = render_template_value(template, props["Bucket"])
            policies[f"arn:aws:s3:::{bucket}"] = render_template_value(template, props["PolicyDocument"])
        elif resource["Type"] == "AWS::KMS::Key":
            arn = render_template_value(template, {"Fn::GetAtt": [lid, "Arn"]})
            policies[arn] = render_template_value(template, props["KeyPolicy"])
    return policies


def _resource_policy_for(resource: str, policies: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    if resource.startswith("arn:aws:s3:::"):
        bucket = resource.split("/", 1)[0]
        return policies.get(bucket)
    return policies.get(resource)


@dataclass(frozen=True)
class Decision:
    access: Access
    allowed: bool
    detail: str


def evaluate(
    accesses: Sequence[Access],
    *,
    principal: str,
    identity_policies: Sequence[Mapping[str, Any]],
    resource_policies: Mapping[str, dict[str, Any]] | None = None,
) -> list[Decision]:
    """Decide every access with the IAM simulator (one Node process for the whole batch).

    Requests carry ``aws:SecureTransport`` (SageMaker calls S3 over TLS) and the principal's account.
    """
    principal_account = principal.split(":")[4]
    seen: dict[tuple[Any, ...], Access] = {}
    for access in accesses:
        key = (access.action, access.resource, tuple(sorted(access.context.items())), access.identity_only)
        seen.setdefault(key, access)
    unique = list(seen.values())
    cases = []
    for access in unique:
        context = {
            "aws:SecureTransport": "true",
            "aws:PrincipalAccount": principal_account,
            **access.context,
        }
        account_match = re.match(r"arn:aws[a-z-]*:[^:]*:[^:]*:(\d{12}):", access.resource)
        cases.append(
            {
                "identityPolicies": list(identity_policies),
                "resourcePolicy": None
                if access.identity_only
                else _resource_policy_for(access.resource, resource_policies or {}),
                "request": {
                    "principal": principal,
                    "action": access.action,
                    "resource": {
                        "resource": access.resource,
                        "accountId": account_match.group(1) if account_match else principal_account,
                    },
                    "contextVariables": context,
                },
            }
        )
    results = run_simulator(cases)
    decisions = []
    for access, result in zip(unique, results, strict=True):
        if result["errors"]:
            decisions.append(Decision(access, False, f"invalid request: {json.dumps(result['errors'])}"))
            continue
        verdict = result["identity"] if access.identity_only else result["overall"]
        decisions.append(Decision(access, verdict == "Allowed", str(verdict)))
    return decisions


def run_simulator(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    process = subprocess.run(
        ["node", str(SIMULATOR)],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"iam_simulate.mjs failed ({process.returncode}): {process.stderr[-2000:]}")
    results: list[dict[str, Any]] = json.loads(process.stdout)
    return results


def denied(decisions: Sequence[Decision]) -> list[str]:
    """Human-readable lines for every access that is not allowed."""
    return [f"{d.detail}: {d.access}" for d in decisions if not d.allowed]


# --------------------------------------------------------------------------------------------------
# Serving: what SageMaker hosting does with a model's execution role
# --------------------------------------------------------------------------------------------------

#: Where SageMaker hosting writes an endpoint's container logs (one group per endpoint, named after it)
#: and the namespace of its instance metrics (CPU, memory, disk).
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
#: A hosting instance's id: a variant's log stream is ``<variant>/<instance id>``.
HOSTING_INSTANCE = "i-0123456789abcdef0"
#: The hour folder and file name of one data-capture file (``.../<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl``).
CAPTURE_HOUR = "2025/01/31/23"
CAPTURE_FILE = "59-59-999-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b.jsonl"
#: The suffix CloudFormation adds to a logical id when it generates an endpoint's name.
GENERATED_NAME_SUFFIX = "a1B2c3D4e5F6"


@dataclass(frozen=True)
class HostedVariant:
    """One production variant: the package its model serves, and the role SageMaker hosts it with."""

    name: str
    model_package_arn: str
    execution_role_arn: str


@dataclass(frozen=True)
class HostedEndpoint:
    """An endpoint as a (rendered) template declares it: what decides the calls hosting makes with the role.

    ``name`` is the name CloudFormation generates (a placeholder shaped like one); ``capture_uri`` and
    ``capture_key`` come from the config's ``DataCaptureConfig``, ``volume_key`` from its ``KmsKeyId``,
    ``rollback_alarms`` (names) from the endpoint's ``AutoRollbackConfiguration``.
    """

    logical_id: str
    name: str
    variants: tuple[HostedVariant, ...]
    capture_uri: str | None
    capture_key: str | None
    volume_key: str | None
    rollback_alarms: tuple[str, ...]


def _referenced(
    template: Mapping[str, Any], value: Any, attribute: str, kind: str, what: str
) -> dict[str, Any]:
    """The resource of type ``kind`` that ``value`` (``Fn::GetAtt [lid, attribute]``) names."""
    target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if not (isinstance(target, list) and len(target) == 2 and target[1] == attribute):
        raise EvaluationError(
            f"{what}: got {value!r}; allowed: Fn::GetAtt [<{kind} in the template>, {attribute}]"
        )
    resource = template["Resources"].get(target[0])
    if resource is None or resource["Type"] != kind:
        raise EvaluationError(f"{what}: {target[0]!r} is not an {kind} of the template")
    return dict(resource)


def _hosted_variant(
    template: Mapping[str, Any], variant: Mapping[str, Any], imports: Mapping[str, Any], where: str
) -> HostedVariant:
    model = _referenced(
        template, variant["ModelName"], "ModelName", "AWS::SageMaker::Model", f"{where}.ModelName"
    )["Properties"]
    containers = model.get("Containers") or [model.get("PrimaryContainer", {})]
    if len(containers) != 1 or "ModelPackageName" not in containers[0]:
        raise EvaluationError(
            f"{where}: a model without exactly one ModelPackageName container is not modelled"
        )
    return HostedVariant(
        name=variant["VariantName"],
        model_package_arn=str(render_template_value(template, containers[0]["ModelPackageName"], imports)),
        execution_role_arn=str(render_template_value(template, model["ExecutionRoleArn"], imports)),
    )


def _rendered(template: Mapping[str, Any], value: Any, imports: Mapping[str, Any]) -> str | None:
    return None if value is None else str(render_template_value(template, value, imports))


def hosted_endpoints(template: Mapping[str, Any], imports: Mapping[str, Any]) -> list[HostedEndpoint]:
    """Every ``AWS::SageMaker::Endpoint`` of ``template`` with its config and models, rendered.

    The config and models must be resources of the same template (``Fn::GetAtt``); ``imports`` resolves
    ``Fn::ImportValue`` (the lake's bucket and key from the data stack, :func:`template_exports`).
    """
    endpoints = []
    for lid, resource in template["Resources"].items():
        if resource["Type"] != "AWS::SageMaker::Endpoint":
            continue
        props = resource["Properties"]
        config = _referenced(
            template,
            props["EndpointConfigName"],
            "EndpointConfigName",
            "AWS::SageMaker::EndpointConfig",
            f"{lid}.EndpointConfigName",
        )["Properties"]
        capture = config.get("DataCaptureConfig") or {}
        capturing = capture.get("EnableCapture", True) and "DestinationS3Uri" in capture
        alarms = (props.get("DeploymentConfig") or {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
        endpoints.append(
            HostedEndpoint(
                logical_id=lid,
                name=f"{lid}-{GENERATED_NAME_SUFFIX}",
                variants=tuple(
                    _hosted_variant(template, v, imports, f"{lid} variant {i}")
                    for i, v in enumerate(config["ProductionVariants"])
                ),
                capture_uri=_rendered(template, capture["DestinationS3Uri"], imports) if capturing else None,
                capture_key=_rendered(template, capture.get("KmsKeyId"), imports) if capturing else None,
                volume_key=_rendered(template, config.get("KmsKeyId"), imports),
                rollback_alarms=tuple(str(render_template_value(template, a["AlarmName"])) for a in alarms),
            )
        )
    return endpoints


def package_group(package_arn: str) -> str:
    """The model package group of a versioned package ARN (``.../model-package/<group>/<version>``)."""
    match = re.fullmatch(r"arn:aws[a-z-]*:sagemaker:[^:]+:\d{12}:model-package/([^/]+)/\d+", package_arn)
    if match is None:
        raise EvaluationError(f"not a versioned model package ARN: {package_arn!r}")
    return match.group(1)


def served_packages(
    registered: Mapping[str, ModelPackage], served_arns: Sequence[str]
) -> dict[str, ModelPackage]:
    """What each served package version holds: what a pipeline registers into its group (any version).

    ``registered`` is :func:`registered_packages` of one pipeline. A served ARN of a group that the
    pipeline does not register into raises: nothing says what it serves.
    """
    by_group = {package_group(arn): package for arn, package in registered.items()}
    packages = {}
    for arn in served_arns:
        group = package_group(arn)
        if group not in by_group:
            raise EvaluationError(
                f"model package {arn!r}: group {group!r} is not one the pipeline registers into "
                f"({sorted(by_group)})"
            )
        packages[arn] = by_group[group]
    return packages


def endpoint_accesses(
    endpoint: HostedEndpoint, *, lake: Lake, model_packages: Mapping[str, ModelPackage]
) -> list[Access]:
    """Every call SageMaker hosting makes with the models' execution role(s) to run ``endpoint``.

    Per variant: pull the package's image (``ecr:GetAuthorizationToken`` and the layer pulls on its
    repository), get and decrypt its artifact (CreateModel checks this too), write the container's logs to
    ``/aws/sagemaker/Endpoints/<endpoint>`` (stream ``<variant>/<instance id>``) and its instance metrics to
    the ``/aws/sagemaker/Endpoints`` namespace, and write data capture as SSE-KMS objects
    ``<destination>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl`` with the capture key (a data
    key through S3, plus ``kms:Encrypt``, which SageMaker's docs ask of the role for its output keys).
    Per endpoint: a grant on the instance volumes' key (``KmsKeyId``) for the instances, and
    ``cloudwatch:DescribeAlarms`` on each auto-rollback alarm, which deployment guardrails poll with the
    role. Not modelled: anything the container itself calls (it runs network-isolated, without credentials).
    """
    accesses: list[Access] = []
    group_arn = (
        f"arn:aws:logs:{lake.region}:{lake.account}:log-group:{ENDPOINT_LOG_GROUP_PREFIX}{endpoint.name}"
    )
    for variant in endpoint.variants:
        if variant.model_package_arn not in model_packages:
            raise EvaluationError(
                f"model package {variant.model_package_arn!r}: pass what it serves (model_packages); "
                f"known: {sorted(model_packages)}"
            )
        why = f"endpoint {endpoint.name!r} variant {variant.name!r} (role {variant.execution_role_arn})"
        accesses += _serving(model_packages[variant.model_package_arn], why, lake)
        stream_arn = f"{group_arn}:log-stream:{variant.name}/{HOSTING_INSTANCE}"
        accesses += [
            Access("logs:CreateLogGroup", group_arn, f"{why}: container logs"),
            Access("logs:DescribeLogStreams", group_arn, f"{why}: container logs"),
            Access("logs:CreateLogStream", stream_arn, f"{why}: container logs"),
            Access("logs:PutLogEvents", stream_arn, f"{why}: container logs"),
            Access(
                "cloudwatch:PutMetricData",
                "*",
                f"{why}: instance metrics",
                {"cloudwatch:namespace": ENDPOINT_METRICS_NAMESPACE},
            ),
        ]
        if endpoint.capture_uri:
            folder = f"{endpoint.capture_uri.rstrip('/')}/{endpoint.name}/{variant.name}/{CAPTURE_HOUR}/"
            accesses += _s3_write(folder, f"{why}: data capture", lake, endpoint.capture_key, CAPTURE_FILE)
            key = endpoint.capture_key or (lake.key_arn if split_s3(folder)[0] == lake.bucket else None)
            if key:
                accesses.append(Access("kms:Encrypt", key, f"{why}: data capture key"))
    why = f"endpoint {endpoint.name!r}"
    accesses += _volume_key(endpoint.volume_key, f"{why}: instance volume key (KmsKeyId)")
    accesses += [
        Access(
            "cloudwatch:DescribeAlarms",
            f"arn:aws:cloudwatch:{lake.region}:{lake.account}:alarm:{name}",
            f"{why}: auto-rollback alarm watched during blue/green deployments",
        )
        for name in endpoint.rollback_alarms
    ]
    return accesses


def assume_role_access(role_arn: str, service: str = SAGEMAKER) -> Access:
    """``service`` assuming ``role_arn`` (evaluate with ``principal=service`` against the trust policy).

    The request carries ``aws:SourceAccount`` (the role's account), as AWS services send it, so a trust
    policy with a confused-deputy condition on it still allows the service.
    """
    return Access(
        "sts:AssumeRole",
        role_arn,
        f"{service} assumes the role",
        {"aws:SourceAccount": role_arn.split(":")[4]},
    )


def trust_policy(template: Mapping[str, Any], role_logical_id: str) -> dict[str, Any]:
    """A role's rendered trust policy (``AssumeRolePolicyDocument``)."""
    role = template["Resources"][role_logical_id]
    return dict(render_template_value(template, role["Properties"]["AssumeRolePolicyDocument"]))


def without_statements(
    policies: Sequence[Mapping[str, Any]], drop: Callable[[Mapping[str, Any]], bool]
) -> list[dict[str, Any]]:
    """``policies`` (as :func:`role_policies` returns them) without every statement ``drop`` selects."""
    return [
        {**p, "policy": {**p["policy"], "Statement": [s for s in p["policy"]["Statement"] if not drop(s)]}}
        for p in policies
    ]


def statement_resources(statement: Mapping[str, Any]) -> list[str]:
    resource = statement.get("Resource", [])
    return list(resource) if isinstance(resource, list) else [resource]


@dataclass(frozen=True)
class Evaluation:
    """The inputs of one :func:`evaluate` call, for :func:`evaluate_together`.

    ``principal`` may be a service principal (``sagemaker.amazonaws.com``) for trust-policy checks: then
    ``identity_policies`` is empty, ``resource_policies`` maps the role ARN to its trust policy, and the
    request carries no ``aws:PrincipalAccount``.
    """

    accesses: Sequence[Access]
    principal: str
    identity_policies: Sequence[Mapping[str, Any]] = ()
    resource_policies: Mapping[str, dict[str, Any]] | None = None


def _unique(accesses: Sequence[Access]) -> list[Access]:
    seen: dict[tuple[Any, ...], Access] = {}
    for access in accesses:
        key = (access.action, access.resource, tuple(sorted(access.context.items())), access.identity_only)
        seen.setdefault(key, access)
    return list(seen.values())


def _case(access: Access, evaluation: Evaluation) -> dict[str, Any]:
    """The simulator request of ``access`` (what :func:`evaluate` builds, service principals allowed)."""
    principal = evaluation.principal
    principal_account = principal.split(":")[4] if principal.startswith("arn:") else None
    account_match = re.match(r"arn:aws[a-z-]*:[^:]*:[^:]*:(\d{12}):", access.resource)
    account = account_match.group(1) if account_match else principal_account
    if account is None:
        raise EvaluationError(f"{access}: the resource names no account and the principal {principal!r} none")
    context = {"aws:SecureTransport": "true"}  # SageMaker calls S3 over TLS
    if principal_account:
        context["aws:PrincipalAccount"] = principal_account
    context.update(access.context)
    return {
        "identityPolicies": list(evaluation.identity_policies),
        "resourcePolicy": None
        if access.identity_only
        else _resource_policy_for(access.resource, evaluation.resource_policies or {}),
        "request": {
            "principal": principal,
            "action": access.action,
            "resource": {"resource": access.resource, "accountId": account},
            "contextVariables": context,
        },
    }


K = TypeVar("K")


def evaluate_keyed(evaluations: Mapping[K, Evaluation]) -> dict[K, list[Decision]]:
    """:func:`evaluate_together` for evaluations by key (e.g. ``(stage, label)``): one simulator run,
    decisions by the same keys."""
    keys = list(evaluations)
    results = evaluate_together([evaluations[key] for key in keys])
    return dict(zip(keys, results, strict=True))


def evaluate_together(evaluations: Sequence[Evaluation]) -> list[list[Decision]]:
    """:func:`evaluate` for several principals or policy sets at once, in one simulator (Node) run.

    Returns one list of decisions per evaluation (each access once, in first-seen order, as
    :func:`evaluate` does): a test that checks the real policies, policies with a grant removed and the
    trust policy pays for one process start.
    """
    batches = [(evaluation, _unique(evaluation.accesses)) for evaluation in evaluations]
    results = run_simulator([_case(a, evaluation) for evaluation, unique in batches for a in unique])
    decisions: list[list[Decision]] = []
    position = 0
    for _, unique in batches:
        batch = []
        for access, result in zip(unique, results[position : position + len(unique)], strict=True):
            if result["errors"]:
                batch.append(Decision(access, False, f"invalid request: {json.dumps(result['errors'])}"))
                continue
            verdict = result["identity"] if access.identity_only else result["overall"]
            batch.append(Decision(access, verdict == "Allowed", str(verdict)))
        decisions.append(batch)
        position += len(unique)
    return decisions
