"""Shared fixtures: one synth of every stage per test session.

Synthesizing takes seconds, so every stack test reads the same in-process synth of
each stage (with the cdk-nag policy gates on, exactly as ``app.py`` runs it).
"""

from __future__ import annotations

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


def app_context(stage: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The cdk.json context (feature flags + stages), optionally selecting a stage."""
    context = dict(CDK_JSON["context"])
    if stage is not None:
        context["stage"] = stage
    context.update(overrides)
    return context


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
    stage: str, outdir: Path, customize: Callable[[dict[str, Stack]], None] | None = None
) -> SynthesizedStage:
    """Build and synthesize one stage the way app.py does (policy gates on); ``customize`` may add to it."""
    from app import build_app
    from stacks.config import load_stage
    from stacks.policy import add_policy_gates

    context = app_context(stage)
    app = App(context=context, outdir=str(outdir))
    config = load_stage(context["stages"], stage)
    stacks = build_app(app, config)
    if customize is not None:
        customize(stacks)
    add_policy_gates(app)
    assembly = app.synth()
    templates = {
        role: assembly.get_stack_by_name(stack.stack_name).template for role, stack in stacks.items()
    }
    return SynthesizedStage(stage, config, stacks, templates, outdir)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthesizedStage]:
    """Every stage of cdk.json, synthesized once per session."""
    return {stage: synth_stage(stage, tmp_path_factory.mktemp(f"cdk.out.{stage}")) for stage in STAGES}


@pytest.fixture
def bare_stack() -> Iterator[Stack]:
    """A bare, environment-agnostic Stack in a fresh App, for per-construct tests."""
    app = App(context={k: v for k, v in CDK_JSON["context"].items() if k != "stages"})
    yield Stack(app, "TestStack")
