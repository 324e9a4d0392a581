"""Whole-app tests on the one shared synth of every stage: snapshots, logical-ID locks, cfn-lint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import STAGES, SynthesizedStage
from tests.support.sagemaker_api import pipeline_definitions, template_exports

LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
ASSET_HASH = re.compile(r"[0-9a-f]{64}")

# Stateful resources whose logical IDs must never change: a new logical ID makes CloudFormation
# create a new resource and delete (or, with RETAIN, orphan) the old one with its data. The endpoint and the
# alert topic hold no data, but their identity is state: clients invoke the endpoint by its (generated)
# name, and the topic's subscribers confirmed their subscriptions to it.
STATEFUL_TYPES = {
    "AWS::KMS::Key",
    "AWS::S3::Bucket",
    "AWS::SageMaker::FeatureGroup",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::SageMaker::Endpoint",
    "AWS::SNS::Topic",
}
LOCKED_LOGICAL_IDS: dict[str, dict[str, str]] = {
    "data": {
        "PlatformKey1C4A1A63": "AWS::KMS::Key",
        "DataLakeAccessLogs1DA51325": "AWS::S3::Bucket",
        "DataLakeBucketEF1CCA5A": "AWS::S3::Bucket",
        "FeatureGroup7D08801D": "AWS::SageMaker::FeatureGroup",
        "AlertsTopicCF7C81C9": "AWS::SNS::Topic",
    },
    "training": {
        "ModelPackageGroup": "AWS::SageMaker::ModelPackageGroup",
    },
    "serving": {
        "Endpoint8024A810": "AWS::SageMaker::Endpoint",
    },
    "monitoring": {},
}


# Each pipeline's definition has its own pretty-printed snapshot, so a change to one step reads as a diff
# of that step, not of one long JSON string inside the template.
PIPELINES = ("TrainingPipeline", "TuningPipeline", "BatchTransformPipeline")
DEFINITION_SNAPSHOT = "<see the pipeline definition's own snapshot>"


def neutralized(template: dict[str, Any]) -> Any:
    """The template with asset hashes replaced (snapshots only change when the infrastructure does) and
    each pipeline definition body replaced by a pointer to its own snapshot."""
    copy = json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))
    for resource in copy.get("Resources", {}).values():
        if resource["Type"] == "AWS::SageMaker::Pipeline":
            resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"] = DEFINITION_SNAPSHOT
    return copy


def stage_roles() -> list[tuple[str, str]]:
    return [(stage, role) for stage in STAGES for role in LOCKED_LOGICAL_IDS]


@pytest.fixture
def json_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize(("stage", "role"), stage_roles())
def test_stack_matches_snapshot(
    synthesized: dict[str, SynthesizedStage], json_snapshot: SnapshotAssertion, stage: str, role: str
) -> None:
    assert neutralized(synthesized[stage].template(role)) == json_snapshot


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_definition_matches_snapshot(
    synthesized: dict[str, SynthesizedStage], json_snapshot: SnapshotAssertion, stage: str, pipeline: str
) -> None:
    """The definition as SageMaker receives it (CloudFormation values rendered), pretty-printed."""
    synth = synthesized[stage]
    rendered = pipeline_definitions(synth.template("training"), template_exports(synth.template("data")))
    (definition,) = [d for lid, d in rendered.items() if lid.startswith(pipeline)]
    assert json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(definition))) == json_snapshot


@pytest.mark.parametrize(("stage", "role"), stage_roles())
def test_stateful_logical_ids_are_locked(
    synthesized: dict[str, SynthesizedStage], stage: str, role: str
) -> None:
    resources = synthesized[stage].template(role)["Resources"]
    stateful = {lid: r["Type"] for lid, r in resources.items() if r["Type"] in STATEFUL_TYPES}
    assert stateful == LOCKED_LOGICAL_IDS[role]


@pytest.mark.parametrize("stage", STAGES)
def test_stateful_resources_follow_the_stage_removal_policy(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """retain: every stateful resource survives deletion and replacement, nothing auto-deletes objects;
    destroy: they are deleted with the stack. Termination protection is the stage's."""
    synth = synthesized[stage]
    cfg = synth.config
    resources = synth.template("data")["Resources"]
    retained = cfg.removal_policy == "retain"
    for lid in LOCKED_LOGICAL_IDS["data"]:
        assert resources[lid]["DeletionPolicy"] == ("Retain" if retained else "Delete"), lid
        assert resources[lid]["UpdateReplacePolicy"] == ("Retain" if retained else "Delete"), lid
    auto_delete = any(r["Type"] == "Custom::S3AutoDeleteObjects" for r in resources.values())
    assert auto_delete == cfg.auto_delete_objects
    assert not (retained and auto_delete)
    assert synth.stacks["data"].termination_protection is cfg.termination_protection


@pytest.mark.parametrize("stage", STAGES)
def test_a_retained_stage_is_deployable_only_to_its_own_account_and_region(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """Environment-specific stacks: CloudFormation deploys them to that account and region only."""
    synth = synthesized[stage]
    if synth.config.removal_policy != "retain":
        assert synth.config.account is None or synth.stacks["data"].account == synth.config.account
        return
    for stack in synth.stacks.values():
        assert (stack.account, stack.region) == (synth.config.account, synth.config.region), stack.stack_name
        assert stack.environment == f"aws://{synth.config.account}/{synth.config.region}"


@pytest.mark.parametrize("stage", STAGES)
def test_lake_lifecycle_comes_from_the_stage_config(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    lake_cfg = synth.config.data_lake
    bucket = synth.template("data")["Resources"]["DataLakeBucketEF1CCA5A"]["Properties"]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Transitions"][0]["TransitionInDays"] == lake_cfg.intelligent_tiering_after_days
    assert (
        rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == lake_cfg.noncurrent_version_expiration_days
    )
    assert (
        rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        == lake_cfg.abort_incomplete_multipart_upload_days
    )


@pytest.mark.parametrize("stage", STAGES)
def test_stateful_resources_carry_the_stage_tags(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    expected = synth.config.resource_tags
    for role, locked in LOCKED_LOGICAL_IDS.items():
        resources = synth.template(role)["Resources"]
        for lid in locked:
            tags = {t["Key"]: t["Value"] for t in resources[lid]["Properties"].get("Tags", [])}
            assert tags.items() >= expected.items(), lid


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_is_clean_on_every_template(synthesized: dict[str, SynthesizedStage], stage: str) -> None:
    templates = sorted(Path(synthesized[stage].outdir).glob("*.template.json"))
    assert len(templates) == len(synthesized[stage].stacks)
    for path in templates:
        # Zero errors and zero warnings, in the regions a platform team is most likely to deploy to.
        matches = lint(path.read_text(), config=ManualArgs(regions=LINT_REGIONS))
        assert [str(m) for m in matches] == [], path.name
