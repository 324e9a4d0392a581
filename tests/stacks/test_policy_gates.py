"""The cdk-nag gates: every stage passes all three packs, and the gate really fails on a finding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint

from ml_platform.compliance import acknowledge, finding_ref
from ml_platform.data_lake import DataLake, PlatformKey, Zone
from stacks.policy import add_policy_gates
from tests.conftest import STAGES, SynthesizedStage, feature_flags, synth_stage

PACKS = {"AwsSolutions", "HIPAA.Security", "NIST.800.53.R5"}


def gated_app(outdir: Path) -> App:
    app = App(context=feature_flags(), outdir=str(outdir))
    add_policy_gates(app)
    return app


def report(outdir: Path) -> dict[str, Any]:
    return json.loads((outdir / "validation-report.json").read_text())


def violations(outdir: Path) -> set[str]:
    return {v["ruleName"] for plugin in report(outdir)["pluginReports"] for v in plugin["violations"]}


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_synthesizes_with_no_finding(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """The shared synth ran app.py's gates (a finding would have raised); the report lists no violation."""
    assert report(synthesized[stage].outdir)["pluginReports"] == []


def test_the_stage_app_is_gated(tmp_path: Path) -> None:
    """app.py's own wiring: one non-compliant resource in a real stage fails its synth in all three packs."""

    def add_bad_bucket(stacks: dict[str, Stack]) -> None:
        s3.Bucket(stacks["data"], "Unencrypted", encryption=s3.BucketEncryption.UNENCRYPTED)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_stage("dev", tmp_path, customize=add_bad_bucket)
    plugins = {p["pluginName"] for p in report(tmp_path)["pluginReports"]}
    assert plugins == PACKS


def test_an_unencrypted_bucket_fails_synth_in_every_pack(tmp_path: Path) -> None:
    app = gated_app(tmp_path)
    s3.Bucket(Stack(app, "NonCompliant"), "Plain", encryption=s3.BucketEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    found = violations(tmp_path)
    assert {
        "AwsSolutions-S10",
        "HIPAA.Security-S3DefaultEncryptionKMS",
        "NIST.800.53.R5-S3DefaultEncryptionKMS",
    } <= found


def lake_with_reader(app: App) -> tuple[DataLake, iam.Role]:
    stack = Stack(app, "Lake")
    key = PlatformKey(stack, "Key", description="t", removal_policy=RemovalPolicy.DESTROY).key
    lake = DataLake(
        stack,
        "Lake",
        key=key,
        intelligent_tiering_after_days=0,
        noncurrent_version_expiration_days=1,
        abort_incomplete_multipart_upload_days=7,
        access_log_expiration_days=1,
        removal_policy=RemovalPolicy.DESTROY,
        auto_delete_objects=False,
    )
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    lake.grant_read(role, Zone.RAW)
    return lake, role


def test_narrow_acknowledgments_pass(tmp_path: Path) -> None:
    app = gated_app(tmp_path)
    lake, role = lake_with_reader(app)
    policy = role.node.find_child("DefaultPolicy")
    lake.acknowledge_zone_objects(policy, Zone.RAW)
    acknowledge(
        policy, "Test role: grant-generated policy of one role only.", "HIPAA.Security-IAMNoInlinePolicy"
    )
    acknowledge(
        policy, "Test role: grant-generated policy of one role only.", "NIST.800.53.R5-IAMNoInlinePolicy"
    )
    app.synth()  # would raise on any finding
    assert report(tmp_path)["pluginReports"] == []


def test_an_acknowledgment_for_another_finding_does_not_suppress(tmp_path: Path) -> None:
    """Acknowledging the wrong zone leaves the real raw/* finding standing: acknowledgments are exact."""
    app = gated_app(tmp_path)
    lake, role = lake_with_reader(app)
    policy = role.node.find_child("DefaultPolicy")
    lake.acknowledge_zone_objects(policy, Zone.MODELS)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert f"AwsSolutions-IAM5[Resource::{finding_ref(lake.bucket)}/raw/*]" in violations(tmp_path)


def test_acknowledgment_needs_a_real_reason() -> None:
    app = App()
    bucket = s3.Bucket(Stack(app, "S"), "B")
    with pytest.raises(ValueError, match="reason: got 'ok'"):
        acknowledge(bucket, "ok", "AwsSolutions-S1")


def test_cfn_lint_gate_reports_a_broken_template() -> None:
    """The cfn-lint check used on every stack finds real problems (so a clean result means something)."""
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": {"State": 1}}}
        }
    }
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
    assert {m.rule.id for m in matches} >= {"E3002", "E3003"}
