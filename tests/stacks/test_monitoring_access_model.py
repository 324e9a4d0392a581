"""What SageMaker Model Monitor does with the monitoring role (and Clarify's shadow endpoint with the
explainer model's role), for every stage's monitoring stack.

Each job definition of the monitoring template decides what its executions do with ``RoleArn``: pull the
analyzer or Clarify image, list and read the endpoint's capture (every variant, one hour's folder), list and
read the ground truth (model quality, model bias), read the registered baselines and the Clarify
configuration asset, write the report with the output key, grant the volume the stage key, write the
processing job's logs and publish the monitor's metrics; the explainability run also describes the explainer
model and creates, invokes and deletes its shadow endpoint. The explainer model's role must serve the
champion package on that endpoint (image, artifact, logs, metrics: tests/support/access_model.py). The IAM
simulator decides every call against the synthesized policies and the lake's bucket and key policies; the
same run checks calls the role must not make (the production endpoint, other zones, deleting reports ...),
the trust policy, and the policies with one grant removed. One simulator run for all stages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from ml_platform.model_monitor import REPORT_FOLDERS
from ml_platform.monitor_role import MONITOR_METRIC_NAMESPACES, PROCESSING_LOG_GROUP
from ml_platform.monitor_rules import MONITOR_TYPES
from tests.conftest import STAGES, SynthesizedStage
from tests.support.access_model import (
    CAPTURE_FILE,
    CAPTURE_HOUR,
    Access,
    Decision,
    Evaluation,
    HostedEndpoint,
    HostedVariant,
    Lake,
    assume_role_access,
    denied,
    endpoint_accesses,
    evaluate_keyed,
    hosted_endpoints,
    object_arn,
    registered_packages,
    resource_policies,
    role_policies,
    served_packages,
    split_s3,
    statement_resources,
    trust_policy,
    without_statements,
)
from tests.support.sagemaker_api import render_template_value, template_exports
from tests.support.training_pipelines import definitions

#: Metric namespace of each monitor type (Developer Guide, the CloudWatch pages of each monitor).
NAMESPACES = {
    "DataQuality": "aws/sagemaker/Endpoints/data-metrics",
    "ModelQuality": "aws/sagemaker/Endpoints/model-metrics",
    "ModelBias": "aws/sagemaker/Endpoints/bias-metrics",
    "ModelExplainability": "aws/sagemaker/Endpoints/explainability-metrics",
}
JOB = "model-monitoring-202501312300-0123456789abcdef01234567"
REPORT_FILE = "constraint_violations.json"
SHADOW_SUFFIX = "1738364400-a1b2"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
#: What the derived calls must include, so a green run means something.
MONITOR_ACTIONS = {
    "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "s3:ListBucket", "s3:GetObject", "kms:Decrypt",
    "s3:PutObject", "s3:AbortMultipartUpload", "kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant",
    "logs:CreateLogGroup", "logs:PutLogEvents", "cloudwatch:PutMetricData", "sagemaker:DescribeModel",
    "sagemaker:CreateEndpointConfig", "sagemaker:CreateEndpoint", "sagemaker:InvokeEndpoint",
    "sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig",
}  # fmt: skip


def _reads(uri: str, why: str, lake: Lake, *, file: str = "") -> list[Access]:
    """List ``uri`` (a folder, or exactly one object's key), get ``uri + file``; a lake object is decrypted
    with the stage key through S3."""
    bucket, key = split_s3(uri)
    accesses = [Access("s3:ListBucket", f"arn:aws:s3:::{bucket}", why, {"s3:prefix": key})]
    accesses.append(Access("s3:GetObject", object_arn(bucket, key + file), why))
    if bucket == lake.bucket:
        accesses.append(Access("kms:Decrypt", lake.key_arn, why, {"kms:ViaService": "s3.amazonaws.com"}))
    return accesses


def _image(uri: str, why: str) -> list[Access]:
    match = re.fullmatch(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)(?:[:@].+)?", uri)
    assert match, uri
    account, region, repository = match.groups()
    arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
    pulls = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
    # AWS-owned repositories in another account: their own policies allow SageMaker; identity policy only.
    return [
        Access("ecr:GetAuthorizationToken", "*", why),
        *(Access(a, arn, why, identity_only=True) for a in pulls),
    ]


def monitor_accesses(
    kind: str,
    props: Mapping[str, Any],
    *,
    lake: Lake,
    endpoint: HostedEndpoint,
    schedule: str,
    explainer: str,
    shadow_prefix: str,
) -> list[Access]:
    """Every call one execution of the job definition ``props`` (rendered) makes with its role."""
    why = f"{kind} job"
    region, account = lake.region, lake.account
    accesses = _image(props[f"{kind}AppSpecification"]["ImageUri"], why)
    assert endpoint.capture_uri is not None
    for variant in endpoint.variants:
        folder = f"{endpoint.capture_uri}/{endpoint.name}/{variant.name}/{CAPTURE_HOUR}/"
        accesses += _reads(folder, f"{why}: capture of {variant.name}", lake, file=CAPTURE_FILE)
    job_input = props[f"{kind}JobInput"]
    if "GroundTruthS3Input" in job_input:
        folder = job_input["GroundTruthS3Input"]["S3Uri"] + f"{CAPTURE_HOUR}/"
        accesses += _reads(folder, f"{why}: ground truth", lake, file="labels.jsonl")
    baseline = props[f"{kind}BaselineConfig"]
    for resource in ("ConstraintsResource", "StatisticsResource"):
        if resource in baseline:
            accesses += _reads(baseline[resource]["S3Uri"], f"{why}: baseline", lake)
    config = props[f"{kind}AppSpecification"].get("ConfigUri")
    if config:
        accesses += _reads(config, f"{why}: analysis configuration", lake)
    outputs = props[f"{kind}JobOutputConfig"]
    (output,) = outputs["MonitoringOutputs"]
    report = f"{output['S3Output']['S3Uri']}/{endpoint.name}/{schedule}/{CAPTURE_HOUR}/{REPORT_FILE}"
    bucket, key = split_s3(report)
    via = {"kms:ViaService": "s3.amazonaws.com"}
    if "GroundTruthS3Input" in job_input:
        # the merge job's joined records, read back by the analysis job of the same execution
        merged = f"{output['S3Output']['S3Uri']}/merge/{schedule}/{CAPTURE_HOUR}/"
        accesses += _reads(merged, f"{why}: merged ground truth", lake, file="part-0000.jsonl")
        merged_bucket, merged_key = split_s3(merged + "part-0000.jsonl")
        accesses.append(Access("s3:PutObject", object_arn(merged_bucket, merged_key), f"{why}: merge"))
    accesses += [
        Access("s3:PutObject", object_arn(bucket, key), f"{why}: report"),
        Access("s3:AbortMultipartUpload", object_arn(bucket, key), f"{why}: report"),
        Access("kms:GenerateDataKey", outputs["KmsKeyId"], f"{why}: report", via),
        Access("kms:Decrypt", outputs["KmsKeyId"], f"{why}: report (multipart)", via),
        Access("kms:Encrypt", outputs["KmsKeyId"], f"{why}: output key"),
    ]
    volume_key = props["JobResources"]["ClusterConfig"].get("VolumeKmsKeyId")
    if volume_key:
        accesses.append(
            Access("kms:CreateGrant", volume_key, f"{why}: volume", {"kms:GrantIsForAWSResource": "true"})
        )
    group = f"arn:aws:logs:{region}:{account}:log-group:{PROCESSING_LOG_GROUP}"
    stream = f"{group}:log-stream:{JOB}/algo-1-1700000000"
    accesses += [
        Access("logs:CreateLogGroup", group, f"{why}: logs"),
        Access("logs:DescribeLogStreams", group, f"{why}: logs"),
        Access("logs:CreateLogStream", stream, f"{why}: logs"),
        Access("logs:PutLogEvents", stream, f"{why}: logs"),
        Access(
            "cloudwatch:PutMetricData",
            "*",
            f"{why}: drift metrics",
            {"cloudwatch:namespace": NAMESPACES[kind]},
        ),
        Access(
            "cloudwatch:PutMetricData",
            "*",
            f"{why}: instance metrics",
            {"cloudwatch:namespace": "/aws/sagemaker/ProcessingJobs"},
        ),
    ]
    if kind == "ModelExplainability":
        shadow = f"{shadow_prefix}-{SHADOW_SUFFIX}"
        accesses.append(
            Access(
                "sagemaker:DescribeModel", lake.sagemaker_arn(f"model/{explainer}"), f"{why}: explainer model"
            )
        )
        for action in ("CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig"):
            accesses.append(
                Access(
                    f"sagemaker:{action}", lake.sagemaker_arn(f"endpoint-config/{shadow}"), f"{why}: shadow"
                )
            )
        for action in ("CreateEndpoint", "DescribeEndpoint", "InvokeEndpoint", "DeleteEndpoint"):
            accesses.append(
                Access(f"sagemaker:{action}", lake.sagemaker_arn(f"endpoint/{shadow}"), f"{why}: shadow")
            )
    return accesses


def _actions(statement: Mapping[str, Any]) -> set[str]:
    action = statement.get("Action", [])
    return set(action) if isinstance(action, list) else {action}


def _grants(action: str, resource_part: str = "") -> Callable[[Mapping[str, Any]], bool]:
    def selects(statement: Mapping[str, Any]) -> bool:
        on = any(resource_part in r for r in statement_resources(statement))
        return action in _actions(statement) and on

    return selects


#: A grant removed -> the calls that it alone allows.
REMOVED_GRANTS: dict[str, tuple[Callable[[Mapping[str, Any]], bool], set[str]]] = {
    "capture reads": (_grants("s3:GetObject", "/capture/"), {"s3:GetObject"}),
    "ground-truth reads": (_grants("s3:GetObject", "/ground-truth/"), {"s3:GetObject"}),
    "baseline reads": (_grants("s3:GetObject", "/monitoring/baselines/"), {"s3:GetObject"}),
    "report writes": (_grants("s3:PutObject"), {"s3:PutObject", "s3:AbortMultipartUpload"}),
    "stage key": (_grants("kms:Decrypt"), {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"}),
    "volume grants": (_grants("kms:CreateGrant"), {"kms:CreateGrant"}),
    "image pull": (
        _grants("ecr:BatchGetImage"),
        {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"},
    ),
    "metrics": (_grants("cloudwatch:PutMetricData"), {"cloudwatch:PutMetricData"}),
    "log streams": (_grants("logs:PutLogEvents"), {"logs:CreateLogStream", "logs:PutLogEvents"}),
    "shadow endpoints": (
        _grants("sagemaker:CreateEndpoint"),
        {
            f"sagemaker:{a}"
            for a in (
                "CreateEndpointConfig",
                "DescribeEndpointConfig",
                "DeleteEndpointConfig",
                "CreateEndpoint",
                "DescribeEndpoint",
                "InvokeEndpoint",
                "DeleteEndpoint",
            )
        },
    ),
    "explainer model": (_grants("sagemaker:DescribeModel"), {"sagemaker:DescribeModel"}),
}


@dataclass(frozen=True)
class StageMonitoring:
    lake: Lake
    endpoint: HostedEndpoint
    role_arn: str
    policies: list[dict[str, Any]]
    trust: dict[str, Any]
    resource_policies: dict[str, dict[str, Any]]
    accesses: dict[str, list[Access]]  # by monitor type
    explainer_role_arn: str
    explainer_policies: list[dict[str, Any]]
    explainer_accesses: list[Access]


def _stage(synth: SynthesizedStage) -> StageMonitoring:
    template = synth.template("monitoring")
    data = synth.template("data")
    data_imports = template_exports(data)
    (bucket,) = [v for k, v in data_imports.items() if k.endswith(":LakeBucketName")]
    (key,) = [v for k, v in data_imports.items() if k.endswith(":LakeKeyArn")]
    lake = Lake(bucket=bucket, key_arn=key)
    (endpoint,) = hosted_endpoints(synth.template("serving"), data_imports)
    imports = {**data_imports, f"{synth.stacks['serving'].stack_name}:EndpointName": endpoint.name}

    def render(value: Any) -> Any:
        return render_template_value(template, value, imports)

    definitions_ = {
        r["Type"].removeprefix("AWS::SageMaker::").removesuffix("JobDefinition"): render(r["Properties"])
        for r in template["Resources"].values()
        if r["Type"].endswith("JobDefinition")
    }
    schedules = {
        r["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]: r["Properties"][
            "MonitoringScheduleName"
        ]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SageMaker::MonitoringSchedule"
    }
    (role_ref,) = {
        str(r["Properties"]["RoleArn"]["Fn::GetAtt"][0])
        for r in template["Resources"].values()
        if r["Type"].endswith("JobDefinition")
    }
    role_arn, policies = role_policies(template, role_ref, imports)
    ((model_lid, model),) = [
        (lid, r) for lid, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::Model"
    ]
    explainer = model["Properties"]["ModelName"]
    explainer_role_lid = model["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    explainer_role_arn, explainer_policies = role_policies(template, explainer_role_lid, imports)
    monitor = synth.stacks["monitoring"].monitor  # type: ignore[attr-defined]
    accesses = {
        kind: monitor_accesses(
            kind,
            props,
            lake=lake,
            endpoint=endpoint,
            schedule=schedules[kind],
            explainer=explainer,
            shadow_prefix=monitor.shadow_endpoint_prefix,
        )
        for kind, props in definitions_.items()
    }
    # Clarify's shadow endpoint serves the champion package with the explainer model's role.
    package = model["Properties"]["Containers"][0]["ModelPackageName"]
    shadow = HostedEndpoint(
        logical_id=model_lid,
        name=f"{monitor.shadow_endpoint_prefix}-{SHADOW_SUFFIX}",
        variants=(HostedVariant("AllTraffic", package, explainer_role_arn),),
        capture_uri=None,
        capture_key=None,
        volume_key=None,
        rollback_alarms=(),
    )
    packages = served_packages(registered_packages(definitions(synth)["training"], lake), [package])
    return StageMonitoring(
        lake=lake,
        endpoint=endpoint,
        role_arn=role_arn,
        policies=policies,
        trust=trust_policy(template, role_ref),
        resource_policies=resource_policies(data),
        accesses=accesses,
        explainer_role_arn=explainer_role_arn,
        explainer_policies=explainer_policies,
        explainer_accesses=endpoint_accesses(shadow, lake=lake, model_packages=packages),
    )


def _out_of_bounds(given: StageMonitoring) -> list[Access]:
    """Calls the monitoring role must not make."""
    lake, bucket, endpoint = given.lake, given.lake.bucket, given.endpoint
    why = "out of bounds"
    production = lake.sagemaker_arn(f"endpoint/{endpoint.name.lower()}")
    logs = f"arn:aws:logs:{lake.region}:{lake.account}:log-group:/aws/sagemaker/TrainingJobs:log-stream:x"
    written = ("capture", "ground-truth", "monitoring/baselines", "models", "raw")
    read = (
        "raw", "processed", "models", "features", "checkpoints", "monitoring/reports",
        "monitoring/baselines/other-pipeline", "capture/endpoint/other-endpoint", "ground-truth/other-prefix",
    )  # fmt: skip
    report = object_arn(bucket, f"monitoring/reports/data-quality/{endpoint.name}/x")
    # reports are write-only; only the ground-truth monitors read their own merge folder back
    unread_reports = [
        object_arn(bucket, f"monitoring/reports/{folder}/{endpoint.name}/x")
        for folder in ("data-quality", "model-quality", "model-bias", "explainability")
    ] + [
        object_arn(bucket, f"monitoring/reports/{folder}/merge/x")
        for folder in ("data-quality", "explainability")
    ]
    other_namespace = {"cloudwatch:namespace": "AWS/SageMaker"}
    return [
        *(Access("s3:PutObject", object_arn(bucket, f"{z}/x/file"), f"{why}: write {z}") for z in written),
        *(Access("s3:GetObject", object_arn(bucket, f"{z}/x/file"), f"{why}: read {z}") for z in read),
        Access("s3:ListBucket", f"arn:aws:s3:::{bucket}", f"{why}: list the lake", {"s3:prefix": ""}),
        Access("s3:ListBucket", f"arn:aws:s3:::{bucket}", f"{why}: list raw", {"s3:prefix": "raw/"}),
        Access("s3:DeleteObject", report, f"{why}: delete a report"),
        *(Access("s3:GetObject", arn, f"{why}: read a report") for arn in unread_reports),
        Access("sagemaker:InvokeEndpoint", production, f"{why}: the production endpoint"),
        Access("sagemaker:DeleteEndpoint", production, f"{why}: the production endpoint"),
        Access("sagemaker:DescribeModel", lake.sagemaker_arn("model/other-model"), why),
        Access("sagemaker:CreateModel", lake.sagemaker_arn("model/other-model"), why),
        Access("iam:PassRole", given.role_arn, why, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        Access("ecr:BatchGetImage", f"arn:aws:ecr:{lake.region}:{lake.account}:repository/other-team", why),
        Access("cloudwatch:PutMetricData", "*", f"{why}: other namespace", other_namespace),
        Access("logs:PutLogEvents", logs, f"{why}: other log groups"),
        Access("kms:Decrypt", OTHER_KEY, why),
    ]


def _evaluations(given: StageMonitoring) -> dict[str, Evaluation]:
    def as_role(accesses: list[Access], policies: list[dict[str, Any]]) -> Evaluation:
        return Evaluation(accesses, given.role_arn, policies, given.resource_policies)

    every = [a for accesses in given.accesses.values() for a in accesses]
    evaluations = {f"monitor/{kind}": as_role(a, given.policies) for kind, a in given.accesses.items()}
    evaluations["out of bounds"] = as_role(_out_of_bounds(given), given.policies)
    evaluations["explainer"] = Evaluation(
        given.explainer_accesses, given.explainer_role_arn, given.explainer_policies, given.resource_policies
    )
    for service in ("sagemaker.amazonaws.com", "ec2.amazonaws.com"):
        evaluations[f"assumed by {service}"] = Evaluation(
            [assume_role_access(given.role_arn, service)], service, (), {given.role_arn: given.trust}
        )
    for grant, (drop, _) in REMOVED_GRANTS.items():
        evaluations[f"without {grant}"] = as_role(every, without_statements(given.policies, drop))
    evaluations["all"] = as_role(every, given.policies)
    return evaluations


@pytest.fixture(scope="module")
def monitoring(synthesized: dict[str, SynthesizedStage]) -> dict[str, StageMonitoring]:
    return {stage: _stage(synthesized[stage]) for stage in STAGES}


@pytest.fixture(scope="module")
def verdicts(monitoring: dict[str, StageMonitoring]) -> dict[tuple[str, str], list[Decision]]:
    return evaluate_keyed(
        {(stage, label): e for stage in STAGES for label, e in _evaluations(monitoring[stage]).items()}
    )


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("kind", MONITOR_TYPES)
def test_the_monitoring_role_allows_everything_each_job_does(
    verdicts: dict[tuple[str, str], list[Decision]], stage: str, kind: str
) -> None:
    decisions = verdicts[(stage, f"monitor/{kind}")]
    problems = denied(decisions)
    assert not problems, f"{stage}/{kind}: the monitoring role does not allow\n" + "\n".join(problems)


@pytest.mark.parametrize("stage", STAGES)
def test_the_derived_calls_cover_every_kind_of_access(
    monitoring: dict[str, StageMonitoring], stage: str
) -> None:
    """A green run means something: every kind of call is derived, the capture of every variant, the
    reports under monitoring/reports/<type>/, the namespaces the role's condition lists."""
    given = monitoring[stage]
    every = [a for accesses in given.accesses.values() for a in accesses]
    assert {a.action for a in every} >= MONITOR_ACTIONS
    captured = {a.resource for a in every if a.action == "s3:GetObject" and "/capture/" in a.resource}
    assert len(captured) == len(given.endpoint.variants)
    folders: dict[str, str] = {str(k): v for k, v in REPORT_FOLDERS.items()}
    for kind, accesses in given.accesses.items():
        puts = {a.resource for a in accesses if a.action == "s3:PutObject"}
        (report,) = {p for p in puts if "/merge/" not in p}
        assert f"/monitoring/reports/{folders[kind]}/{given.endpoint.name}/" in report
        merged = {a.resource for a in accesses if a.action == "s3:GetObject" and "/merge/" in a.resource}
        if kind in ("ModelQuality", "ModelBias"):
            (read_back,) = merged
            assert f"/monitoring/reports/{folders[kind]}/merge/" in read_back
        else:
            assert not merged and len(puts) == 1
    namespaces = {
        a.context.get("cloudwatch:namespace") for a in every if a.action == "cloudwatch:PutMetricData"
    }
    assert namespaces == set(MONITOR_METRIC_NAMESPACES)


@pytest.mark.parametrize("stage", STAGES)
def test_the_explainer_role_serves_the_champion_package_on_the_shadow_endpoint(
    verdicts: dict[tuple[str, str], list[Decision]], stage: str
) -> None:
    decisions = verdicts[(stage, "explainer")]
    assert {d.access.action for d in decisions} >= {"ecr:BatchGetImage", "s3:GetObject", "logs:PutLogEvents"}
    assert not denied(decisions), "\n".join(denied(decisions))


@pytest.mark.parametrize("stage", STAGES)
def test_sagemaker_and_only_sagemaker_may_assume_the_monitoring_role(
    verdicts: dict[tuple[str, str], list[Decision]], stage: str
) -> None:
    (sagemaker,) = verdicts[(stage, "assumed by sagemaker.amazonaws.com")]
    (ec2,) = verdicts[(stage, "assumed by ec2.amazonaws.com")]
    assert sagemaker.allowed and not ec2.allowed


@pytest.mark.parametrize("stage", STAGES)
def test_nothing_beyond_the_jobs_needs_is_allowed(
    monitoring: dict[str, StageMonitoring], verdicts: dict[tuple[str, str], list[Decision]], stage: str
) -> None:
    """Not the production endpoint, other zones, other endpoints' capture, other baselines, reports read
    back or deleted, other models, passing roles, other images, namespaces, log groups or keys."""
    decisions = verdicts[(stage, "out of bounds")]
    assert len(decisions) == len(_out_of_bounds(monitoring[stage]))
    allowed = [str(d.access) for d in decisions if d.allowed]
    assert not allowed, f"{stage}: the monitoring role allows\n" + "\n".join(allowed)
    assert not [d for d in decisions if d.detail.startswith("invalid request")]


def _denied_calls(decisions: list[Decision]) -> set[tuple[str, str]]:
    return {(d.access.action, d.access.resource) for d in decisions if not d.allowed}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("grant", REMOVED_GRANTS)
def test_the_check_fails_when_a_grant_is_removed(
    verdicts: dict[tuple[str, str], list[Decision]], stage: str, grant: str
) -> None:
    """Without one grant, exactly the calls that need it are newly denied."""
    baseline = _denied_calls(verdicts[(stage, "all")])
    assert not baseline
    newly = _denied_calls(verdicts[(stage, f"without {grant}")]) - baseline
    assert {action for action, _ in newly} == REMOVED_GRANTS[grant][1]
