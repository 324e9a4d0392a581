"""Which model each endpoint variant serves: explicit ARNs, cached lookups, the lookup itself (stubbed)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from stacks.config import ServingConfig, load_app_config
from stacks.model_packages import (
    LookupFailed,
    Resolution,
    context_key,
    latest_approved,
    resolve,
    save_to_context_file,
)
from tests.conftest import CDK_JSON

GROUP = "mlplatform-prod-training-models"
ACCOUNT, REGION = "123456789012", "us-east-1"
ARN_1 = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1"
ARN_7 = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/7"


def serving(*models: str) -> ServingConfig:
    raw = copy.deepcopy(CDK_JSON["context"]["stages"]["prod"]["serving"])
    for variant, model in zip(raw["variants"], models, strict=True):
        variant["model"] = model
    return ServingConfig.model_validate_json(json.dumps(raw))


def run(
    config: ServingConfig, context: dict[str, Any] | None = None, lookup: Any = None, **env: Any
) -> Resolution:
    where = {"account": ACCOUNT, "region": REGION, **env}
    return resolve(config, stage="prod", group=GROUP, context=context or {}, lookup=lookup, **where)


def test_explicit_arns_of_the_stages_group_are_served_as_given() -> None:
    result = run(serving(ARN_1, ARN_7))
    assert result.complete and dict(result.arns) == {"champion": ARN_1, "challenger": ARN_7}
    assert not result.cache


@pytest.mark.parametrize(
    ("arn", "fragment"),
    [
        (ARN_1.replace(GROUP, "someone-elses-models"), "not this stage's group"),
        (ARN_1.replace(ACCOUNT, "210987654321"), "account is 210987654321"),
        (ARN_1.replace(REGION, "eu-west-1"), "region is eu-west-1"),
    ],
)
def test_an_arn_the_stage_cannot_serve_is_refused_with_the_reason(arn: str, fragment: str) -> None:
    result = run(serving(arn, ARN_7))
    assert not result.complete
    (problem,) = result.problems
    assert "stages.prod.serving.variants.0.model (variant 'champion')" in problem and fragment in problem


def test_a_cached_lookup_is_used_without_asking() -> None:
    def never(*_: str) -> str:
        raise AssertionError("the cache must be read first")

    result = run(serving("latest-approved", ARN_1), {context_key(ACCOUNT, REGION, GROUP): ARN_7}, never)
    assert dict(result.arns) == {"champion": ARN_7, "challenger": ARN_1} and not result.cache


def test_the_lookup_is_asked_once_and_its_result_cached() -> None:
    calls: list[tuple[str, ...]] = []

    def lookup(*args: str) -> str:
        calls.append(args)
        return ARN_7

    result = run(serving("latest-approved", "latest-approved"), lookup=lookup)
    assert calls == [(ACCOUNT, REGION, GROUP)]
    assert dict(result.arns) == {"champion": ARN_7, "challenger": ARN_7}
    assert dict(result.cache) == {context_key(ACCOUNT, REGION, GROUP): ARN_7}


@pytest.mark.parametrize(
    ("lookup", "env", "fragment"),
    [
        (lambda *_: None, {}, "has no Approved package yet"),
        (None, {}, "lookups are off"),
        (lambda *_: (_ for _ in ()).throw(LookupFailed("no AWS credentials")), {}, "no AWS credentials"),
        (lambda *_: ARN_1, {"account": None, "region": None}, "needs the stage's account and region"),
    ],
)
def test_no_model_says_what_to_do(lookup: Any, env: dict[str, Any], fragment: str) -> None:
    result = run(serving("latest-approved", ARN_1), lookup=lookup, **env)
    assert not result.complete and not result.cache
    (problem,) = result.problems
    assert fragment in problem
    assert "approve a model package" in problem
    assert "-c stages.prod.serving.variants.0.model=<model package ARN>" in problem


def test_latest_approved_asks_for_the_newest_approved_versioned_package() -> None:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    expected = {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "Approved",
        "ModelPackageType": "Versioned",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 1,
    }
    summary = {
        "ModelPackageArn": ARN_7,
        "CreationTime": "2026-11-01T00:00:00Z",
        "ModelPackageStatus": "Completed",
    }
    with Stubber(client) as stub:
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": [summary]}, expected)
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []}, expected)
        assert latest_approved(client, GROUP) == ARN_7
        assert latest_approved(client, GROUP) is None
        stub.assert_no_pending_responses()


def test_cached_results_merge_into_the_context_file(tmp_path: Path) -> None:
    path = tmp_path / "cdk.context.json"
    path.write_text(json.dumps({"availability-zones:account=1:region=r": ["a"]}))
    save_to_context_file(path, {context_key(ACCOUNT, REGION, GROUP): ARN_7})
    assert json.loads(path.read_text()) == {
        "availability-zones:account=1:region=r": ["a"],
        context_key(ACCOUNT, REGION, GROUP): ARN_7,
    }


def test_the_cache_key_is_a_cdk_style_key_the_config_does_not_mistake_for_its_own() -> None:
    context = {**CDK_JSON["context"], context_key(ACCOUNT, REGION, GROUP): ARN_7}
    assert load_app_config(context).stage.name == "dev"


def test_without_credentials_asking_aws_fails_with_the_reason_and_calls_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from stacks.model_packages import ask_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata call from the test

    def never(_: Any) -> None:
        raise AssertionError("no call without credentials")

    with pytest.raises(LookupFailed, match="no AWS credentials"):
        ask_aws(ACCOUNT, REGION, never)
