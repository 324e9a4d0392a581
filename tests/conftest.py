"""Shared fixtures: one synth of every stage per test session.

Synthesizing takes seconds, so every stack test reads the same in-process synth of
each stage (with the cdk-nag policy gates on, exactly as ``app.py`` runs it).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest
from aws_cdk import App, Stack

ROOT = Path(__file__).resolve().parents[1]
CDK_JSON: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())
STAGES: tuple[str, ...] = tuple(CDK_JSON["context"]["stages"])


def model_package_arn(
    stage: str, version: int, region: str = "us-east-1", account: str = "123456789012"
) -> str:
    """A versioned package ARN of the stage's own model package group (as the training pipelines register)."""
    group = f"mlplatform-{stage}-training-models"
    return f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/{version}"


#: The lake bucket's name as tests/support/sagemaker_api.py renders it (the baselines a pipeline registers
#: live in the stage's lake).
RENDERED_LAKE_BUCKET = "placeholder-bucket-datalakebucketef1cca5a"
#: The baseline kinds a pipeline registers (monitoring/baselines/<pipeline>/<execution>/<kind>/).
BASELINE_FILES = {
    ("ModelDataQuality", "Statistics"): "data-quality/statistics.json",
    ("ModelDataQuality", "Constraints"): "data-quality/constraints.json",
    ("ModelQuality", "Statistics"): "model-quality/statistics.json",
    ("ModelQuality", "Constraints"): "model-quality/constraints.json",
    ("Bias", "PreTrainingConstraints"): "data-bias/analysis.json",
    ("Bias", "PostTrainingConstraints"): "model-bias/analysis.json",
    ("Explainability", "Constraints"): "explainability/analysis.json",
}


def drift_check_baselines(
    stage: str, execution: str = "a1b2c3d4e5f6", omit: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    """``DriftCheckBaselines`` as DescribeModelPackage returns it for a package the stage's training pipeline
    registered (every kind, minus ``omit``)."""
    from ml_platform.model_pipelines import TrainingPipeline

    del stage  # every stage's training pipeline writes the same keys into its own lake
    base = f"s3://{RENDERED_LAKE_BUCKET}/monitoring/baselines/{TrainingPipeline.NAME}/{execution}"
    baselines: dict[str, Any] = {}
    for (section, member), file in BASELINE_FILES.items():
        if (section, member) not in omit:
            source = {"ContentType": "application/json", "S3Uri": f"{base}/{file}"}
            baselines.setdefault(section, {})[member] = source
    return baselines


def baselines_context_key(package_arn: str) -> str:
    from stacks.monitor_baselines import context_key

    return context_key(package_arn)


#: What the tests' synth of each stage serves, the two ways a user provides it (tests never touch the
#: network): dev (environment-agnostic) passes ARNs with -c; prod's champion follows 'latest-approved',
#: answered by a lookup cached in cdk.context.json, and its challenger is pinned with -c.
SERVING_CONTEXT: dict[str, dict[str, Any]] = {
    "dev": {
        "stages.dev.serving.variants.0.model": model_package_arn("dev", 3),
        "stages.dev.serving.variants.1.model": model_package_arn("dev", 4),
    },
    "prod": {
        "sagemaker-latest-approved-model-package:account=123456789012:region=us-east-1:"
        "group=mlplatform-prod-training-models": model_package_arn("prod", 12),
        "stages.prod.serving.variants.1.model": model_package_arn("prod", 11),
    },
}
# The drift-check baselines of each stage's champion package (variant 0, the larger weight), as a cached
# DescribeModelPackage lookup (stacks/monitor_baselines.py) leaves them in cdk.context.json.
SERVING_CONTEXT["dev"][baselines_context_key(model_package_arn("dev", 3))] = drift_check_baselines("dev")
SERVING_CONTEXT["prod"][baselines_context_key(model_package_arn("prod", 12))] = drift_check_baselines("prod")


# The keys the CDK CLI (2.1148) adds to the context of `cdk synth` (contextFromSettings in aws-cdk).
CLI_ADDED_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
    "@aws-cdk/core:failSynthOnValidationErrors": False,
}


def cli_context(*assignments: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The context `cdk synth -c <assignment>...` hands the app in CDK_CONTEXT_JSON.

    cdk.json's context (or ``context``), then each ``-c key=value`` split at the first ``=`` with the value
    kept as a string (the CLI never parses it: ``-c a.b=1800`` is ``"1800"``, ``-c stage=`` is ``""``), then
    the CLI's own keys. tests/stacks/test_cli_context.py checks this against the real CLI.
    """
    result = copy.deepcopy(CDK_JSON["context"] if context is None else context)
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        result[key] = value
    result.update(copy.deepcopy(CLI_ADDED_CONTEXT))
    return result


def feature_flags() -> dict[str, Any]:
    """cdk.json's context without the app's own keys: the feature flags every App of the tests gets."""
    return {k: v for k, v in CDK_JSON["context"].items() if k not in ("stages", "name_prefix")}


@dataclass(frozen=True)
class SynthesizedStage:
    stage: str
    config: Any
    stacks: dict[str, Stack]
    templates: dict[str, dict[str, Any]]  # by stack role: "data", "training", ...
    outdir: Path

    def template(self, role: str) -> dict[str, Any]:
        return self.templates[role]


def synth_stage(
    stage: str,
    outdir: Path,
    customize: Callable[[dict[str, Stack]], None] | None = None,
    context: dict[str, Any] | None = None,
) -> SynthesizedStage:
    """Build and synthesize one stage the way app.py does (policy gates on); ``customize`` may add to it.

    ``context`` (default: cdk.json's plus :data:`SERVING_CONTEXT`) is validated by the same
    ``load_app_config`` app.py runs.
    """
    from app import build_app
    from stacks.config import load_app_config
    from stacks.policy import add_policy_gates

    if context is None:
        context = {**CDK_JSON["context"], **SERVING_CONTEXT.get(stage, {})}
    context = {**context, "stage": stage}
    config = load_app_config(context)
    app = App(context=context, outdir=str(outdir))
    stacks = build_app(app, config.stage, name_prefix=config.name_prefix, context=context)
    if customize is not None:
        customize(stacks)
    add_policy_gates(app)
    assembly = app.synth()
    templates = {
        role: assembly.get_stack_by_name(stack.stack_name).template for role, stack in stacks.items()
    }
    return SynthesizedStage(stage, config.stage, stacks, templates, outdir)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthesizedStage]:
    """Every stage of cdk.json, synthesized once per session."""
    return {stage: synth_stage(stage, tmp_path_factory.mktemp(f"cdk.out.{stage}")) for stage in STAGES}


@pytest.fixture
def bare_stack() -> Iterator[Stack]:
    """A bare, environment-agnostic Stack in a fresh App, for per-construct tests."""
    app = App(context=feature_flags())
    yield Stack(app, "TestStack")
