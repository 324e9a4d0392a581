"""What SageMaker hosting does with the models' execution role, for every stage's serving stack.

The endpoint of the serving template (its config, its models, its deployment config) decides what
SageMaker does with the role the models name (tests/support/access_model.py, :func:`endpoint_accesses`):
pull each package's image, get and decrypt its artifact, write logs, instance metrics and encrypted data
capture, grant the instance volumes the stage key, and read the auto-rollback alarms while a blue/green
deployment shifts traffic. What each served package holds comes from the RegisterModel steps of the
training and tuning pipelines (both register into the group the variants serve from), so both are checked.
The IAM simulator decides every call against the role's synthesized identity policies and the lake's
bucket and key policies; the same run checks the trust policy, calls the role must not be able to make,
and the policies with one grant removed (the check is not vacuous). One simulator run for all stages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from ml_platform.data_lake import Zone
from stacks.serving_stack import CAPTURE_FOLDER
from tests.conftest import STAGES, SynthesizedStage
from tests.support.access_model import (
    ENDPOINT_LOG_GROUP_PREFIX,
    Access,
    Decision,
    Evaluation,
    HostedEndpoint,
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
    statement_resources,
    trust_policy,
    without_statements,
)
from tests.support.sagemaker_api import template_exports
from tests.support.training_pipelines import PIPELINES, definitions

#: What the derived calls must include, so a green run means something.
HOSTING_ACTIONS = {
    "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability", "s3:GetObject", "kms:Decrypt", "s3:PutObject", "kms:GenerateDataKey",
    "kms:Encrypt", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
    "logs:DescribeLogStreams", "cloudwatch:PutMetricData", "cloudwatch:DescribeAlarms", "kms:CreateGrant",
}  # fmt: skip
#: The CDK bootstrap's container-asset repository, where the serving image asset is published.
ASSET_REPOSITORY = re.compile(
    r"arn:aws:ecr:[a-z0-9-]+:\d{12}:repository/cdk-hnb659fds-container-assets-\d{12}-[a-z0-9-]+"
)


def _actions(statement: Mapping[str, Any]) -> set[str]:
    action = statement.get("Action", [])
    return set(action) if isinstance(action, list) else {action}


def _grants(action: str, resource_suffix: str = "") -> Callable[[Mapping[str, Any]], bool]:
    """Selects the statements that allow ``action`` (on a resource ending in ``resource_suffix``)."""

    def selects(statement: Mapping[str, Any]) -> bool:
        on = any(r.endswith(resource_suffix) for r in statement_resources(statement))
        return action in _actions(statement) and on

    return selects


#: A grant removed -> the calls that it alone allows (the rest of the policies stay).
REMOVED_GRANTS: dict[str, tuple[Callable[[Mapping[str, Any]], bool], set[str]]] = {
    "capture writes": (_grants("s3:PutObject", "/capture/*"), {"s3:PutObject", "s3:AbortMultipartUpload"}),
    "model reads": (_grants("s3:GetObject", "/models/*"), {"s3:GetObject"}),
    "stage key": (_grants("kms:Decrypt"), {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"}),
    "image pull": (
        _grants("ecr:BatchGetImage"),
        {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"},
    ),
    "registry login": (_grants("ecr:GetAuthorizationToken"), {"ecr:GetAuthorizationToken"}),
    "log groups": (_grants("logs:CreateLogGroup"), {"logs:CreateLogGroup", "logs:DescribeLogStreams"}),
    "log streams": (_grants("logs:PutLogEvents"), {"logs:CreateLogStream", "logs:PutLogEvents"}),
    "metrics": (_grants("cloudwatch:PutMetricData"), {"cloudwatch:PutMetricData"}),
    "rollback alarms": (_grants("cloudwatch:DescribeAlarms"), {"cloudwatch:DescribeAlarms"}),
}
OTHER_SERVICES = ("ec2.amazonaws.com", "lambda.amazonaws.com")


@dataclass(frozen=True)
class StageServing:
    """A stage's endpoint, the role hosting uses, its policies, and what hosting does with it."""

    lake: Lake
    endpoint: HostedEndpoint
    role_arn: str
    policies: list[dict[str, Any]]
    trust: dict[str, Any]
    resource_policies: dict[str, dict[str, Any]]
    accesses: dict[str, list[Access]]  # by the pipeline that registered the served package versions
    other_alarms: tuple[str, ...]  # alarms of the stack that do not roll a deployment back


def _role_logical_id(template: dict[str, Any]) -> str:
    """The role every model of the template names as ``ExecutionRoleArn`` (the one hosting uses)."""
    roles = {
        r["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Model"
    }
    (lid,) = roles
    return str(lid)


def _stage_serving(synth: SynthesizedStage) -> StageServing:
    template = synth.template("serving")
    data = synth.template("data")
    imports = template_exports(data)
    (bucket,) = [v for k, v in imports.items() if k.endswith(":LakeBucketName")]
    (key,) = [v for k, v in imports.items() if k.endswith(":LakeKeyArn")]
    lake = Lake(bucket=bucket, key_arn=key)
    (endpoint,) = hosted_endpoints(template, imports)
    lid = _role_logical_id(template)
    role_arn, policies = role_policies(template, lid, imports)
    served = [v.model_package_arn for v in endpoint.variants]
    pipelines = definitions(synth, PIPELINES)
    accesses = {
        source: endpoint_accesses(
            endpoint,
            lake=lake,
            model_packages=served_packages(registered_packages(pipelines[source], lake), served),
        )
        for source in PIPELINES
    }
    alarm_names = {
        r["Properties"]["AlarmName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    return StageServing(
        lake=lake,
        endpoint=endpoint,
        role_arn=role_arn,
        policies=policies,
        trust=trust_policy(template, lid),
        resource_policies=resource_policies(data),
        accesses=accesses,
        other_alarms=tuple(sorted(alarm_names - set(endpoint.rollback_alarms))),
    )


def _out_of_bounds(given: StageServing) -> list[Access]:
    """Calls the model role must not be able to make: write any zone but capture/, read any zone but models/
    and capture/, list the lake, delete captured data, other repositories, log groups, namespaces, keys and
    the alarms that do not roll a deployment back."""
    lake, bucket = given.lake, given.lake.bucket
    account, region = lake.account, lake.region
    capture = next(a.resource for a in given.accesses["training"] if a.action == "s3:PutObject")
    why = "out of bounds"
    writes = [z for z in Zone if z is not Zone.CAPTURE]
    reads = [z for z in Zone if z not in (Zone.MODELS, Zone.CAPTURE)]
    return [
        *(
            Access("s3:PutObject", object_arn(bucket, f"{z.prefix}x/file"), f"{why}: write {z}")
            for z in writes
        ),
        *(Access("s3:GetObject", object_arn(bucket, f"{z.prefix}x/file"), f"{why}: read {z}") for z in reads),
        *(
            Access("s3:ListBucket", f"arn:aws:s3:::{bucket}", f"{why}: list {z}", {"s3:prefix": z.prefix})
            for z in reads
        ),
        Access("s3:ListBucket", f"arn:aws:s3:::{bucket}", f"{why}: list the lake", {"s3:prefix": ""}),
        Access("s3:DeleteObject", capture, f"{why}: delete captured data"),
        Access(
            "ecr:BatchGetImage",
            f"arn:aws:ecr:{region}:{account}:repository/other-team",
            f"{why}: other images",
        ),
        Access(
            "logs:PutLogEvents",
            f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs:log-stream:job/algo-1",
            f"{why}: other log groups",
        ),
        Access(
            "logs:CreateLogGroup",
            f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/x",
            f"{why}: lambda logs",
        ),
        Access(
            "cloudwatch:PutMetricData",
            "*",
            f"{why}: other namespace",
            {"cloudwatch:namespace": "AWS/SageMaker"},
        ),
        Access("cloudwatch:PutMetricData", "*", f"{why}: no namespace"),
        Access(
            "kms:Decrypt", f"arn:aws:kms:{region}:{account}:key/00000000-0000-4000-8000-000000000000", why
        ),
        *(
            Access("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}", why)
            for name in given.other_alarms
        ),
    ]


def _evaluations(given: StageServing) -> dict[str, Evaluation]:
    def as_role(accesses: list[Access], policies: list[dict[str, Any]]) -> Evaluation:
        return Evaluation(accesses, given.role_arn, policies, given.resource_policies)

    evaluations = {f"hosting/{source}": as_role(a, given.policies) for source, a in given.accesses.items()}
    evaluations["out of bounds"] = as_role(_out_of_bounds(given), given.policies)
    for service in (*OTHER_SERVICES, "sagemaker.amazonaws.com"):
        evaluations[f"assumed by {service}"] = Evaluation(
            [assume_role_access(given.role_arn, service)], service, (), {given.role_arn: given.trust}
        )
    for grant, (drop, _) in REMOVED_GRANTS.items():
        evaluations[f"without {grant}"] = as_role(
            given.accesses["training"], without_statements(given.policies, drop)
        )
    return evaluations


@pytest.fixture(scope="module")
def serving(synthesized: dict[str, SynthesizedStage]) -> dict[str, StageServing]:
    return {stage: _stage_serving(synthesized[stage]) for stage in STAGES}


@pytest.fixture(scope="module")
def verdicts(serving: dict[str, StageServing]) -> dict[tuple[str, str], list[Decision]]:
    """(stage, evaluation) -> decisions, from one simulator run for every stage and evaluation."""
    return evaluate_keyed(
        {(stage, label): e for stage in STAGES for label, e in _evaluations(serving[stage]).items()}
    )


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("source", PIPELINES)
def test_the_model_role_allows_everything_hosting_does_with_it(
    verdicts: dict[tuple[str, str], list[Decision]], stage: str, source: str
) -> None:
    """Every call but the volume-key grant (its own test below), for packages either pipeline registers."""
    decisions = verdicts[(stage, f"hosting/{source}")]
    problems = denied([d for d in decisions if d.access.action != "kms:CreateGrant"])
    assert not problems, f"{stage}/{source}: the model role does not allow\n" + "\n".join(problems)
    assert {d.access.action for d in decisions} >= HOSTING_ACTIONS  # a green run means something


def _resources(accesses: list[Access]) -> dict[str, set[str]]:
    by_action: dict[str, set[str]] = {}
    for access in accesses:
        by_action.setdefault(access.action, set()).add(access.resource)
    return by_action


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("source", PIPELINES)
def test_the_derived_calls_are_the_ones_the_serving_template_implies(
    serving: dict[str, StageServing], stage: str, source: str
) -> None:
    """The models' role is the one evaluated; the image is the CDK asset repository's, the artifact a
    ``model.tar.gz`` the pipeline wrote under models/; one capture file per variant under
    ``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/``; the endpoint's log group; every rollback alarm;
    and the volume-key grant exactly when the config sets ``KmsKeyId``."""
    given = serving[stage]
    endpoint, lake = given.endpoint, given.lake
    by_action = _resources(given.accesses[source])
    assert {v.execution_role_arn for v in endpoint.variants} == {given.role_arn}
    images = by_action["ecr:BatchGetImage"]
    assert images and all(ASSET_REPOSITORY.fullmatch(r) for r in images), images
    artifacts = by_action["s3:GetObject"]
    assert artifacts and all(
        a.startswith(f"arn:aws:s3:::{lake.bucket}/{Zone.MODELS.prefix}{source}/")
        and a.endswith("/model.tar.gz")
        for a in artifacts
    ), artifacts
    assert (endpoint.capture_uri, endpoint.capture_key) == (
        f"s3://{lake.bucket}/{Zone.CAPTURE.prefix}{CAPTURE_FOLDER}",
        lake.key_arn,
    )
    capture = re.compile(
        rf"arn:aws:s3:::{lake.bucket}/{Zone.CAPTURE.prefix}{CAPTURE_FOLDER}/{endpoint.name}/(?P<variant>[^/]+)"
        r"/\d{4}/\d{2}/\d{2}/\d{2}/[^/]+\.jsonl"
    )
    written = [capture.fullmatch(r) for r in by_action["s3:PutObject"]]
    assert all(written), by_action["s3:PutObject"]
    assert sorted(m.group("variant") for m in written if m) == sorted(v.name for v in endpoint.variants)
    group = f"arn:aws:logs:{lake.region}:{lake.account}:log-group:{ENDPOINT_LOG_GROUP_PREFIX}{endpoint.name}"
    assert by_action["logs:CreateLogGroup"] == {group}
    alarms = {r.rsplit(":alarm:", 1)[1] for r in by_action["cloudwatch:DescribeAlarms"]}
    assert alarms == set(endpoint.rollback_alarms) and len(alarms) >= len(endpoint.variants)
    expected_grants = {endpoint.volume_key} if endpoint.volume_key else set()
    assert by_action.get("kms:CreateGrant", set()) == expected_grants


@pytest.mark.parametrize("stage", STAGES)
def test_the_model_role_may_grant_the_instance_volumes_the_stage_key(
    serving: dict[str, StageServing], verdicts: dict[tuple[str, str], list[Decision]], stage: str
) -> None:
    if serving[stage].endpoint.volume_key is None:
        pytest.skip(f"{stage}: the endpoint config sets no KmsKeyId (instance storage): no grant is made")
    grants = [d for d in verdicts[(stage, "hosting/training")] if d.access.action == "kms:CreateGrant"]
    assert grants
    assert not denied(grants), "\n".join(denied(grants))


@pytest.mark.parametrize("stage", STAGES)
def test_sagemaker_and_only_sagemaker_may_assume_the_model_role(
    verdicts: dict[tuple[str, str], list[Decision]], stage: str
) -> None:
    (sagemaker,) = verdicts[(stage, "assumed by sagemaker.amazonaws.com")]
    assert sagemaker.allowed, sagemaker
    for service in OTHER_SERVICES:
        (other,) = verdicts[(stage, f"assumed by {service}")]
        assert not other.allowed, other


@pytest.mark.parametrize("stage", STAGES)
def test_the_model_role_writes_only_capture_and_reads_only_models(
    serving: dict[str, StageServing], verdicts: dict[tuple[str, str], list[Decision]], stage: str
) -> None:
    """Out of bounds: other zones (raw/, processed/, models/ written, checkpoints/ read ...), deleting
    captured data, other repositories, log groups, metric namespaces, keys and the alarms that do not roll
    a deployment back."""
    decisions = verdicts[(stage, "out of bounds")]
    assert len(decisions) == len(_out_of_bounds(serving[stage]))
    assert serving[stage].other_alarms  # the CPU/memory/disk alarms alert but do not roll back
    allowed = [str(d.access) for d in decisions if d.allowed]
    assert not allowed, f"{stage}: the model role allows\n" + "\n".join(allowed)
    assert not [d for d in decisions if d.detail.startswith("invalid request")]


def _denied_calls(decisions: list[Decision]) -> set[tuple[str, str]]:
    return {(d.access.action, d.access.resource) for d in decisions if not d.allowed}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("grant", REMOVED_GRANTS)
def test_the_serving_access_check_fails_when_a_grant_is_removed(
    verdicts: dict[tuple[str, str], list[Decision]], stage: str, grant: str
) -> None:
    """Without one grant, exactly the calls that need it are newly denied."""
    baseline = _denied_calls(verdicts[(stage, "hosting/training")])
    newly = _denied_calls(verdicts[(stage, f"without {grant}")]) - baseline
    assert {action for action, _ in newly} == REMOVED_GRANTS[grant][1]
