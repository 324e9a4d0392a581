"""app.py run the way `cdk synth` runs it: context in CDK_CONTEXT_JSON, every `-c key=value` as a string.

The CDK CLI runs ``python app.py`` with cdk.json's context, its own ``aws:cdk:*`` keys and each ``-c``
assignment (split at the first ``=``; the value is always a string, so ``-c a.b=1800`` is ``"1800"`` and
``-c stage=`` is ``""``) in the environment variable CDK_CONTEXT_JSON, and the output folder in CDK_OUTDIR.
These tests run app.py as a subprocess with exactly that (``cli_context`` reproduces the CLI's encoding; the
first test checks it against the real CLI), and a few run the real ``cdk synth``.

A refusal is one line (or a few) on stderr starting with ``error:``, naming the key path, the value and what
is allowed; never a traceback. (The CDK App itself cannot see JSON nulls: jsii drops null-valued keys when
it hands context to Python, which is why app.py reads CDK_CONTEXT_JSON directly.)
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stacks.config import TrainingConfig
from tests.conftest import CDK_JSON, ROOT, cli_context
from tests.support.sagemaker_api import pipeline_definitions, template_exports

Context = dict[str, Any]
DEV: dict[str, Any] = CDK_JSON["context"]["stages"]["dev"]
DEFAULT_MAX_RUNTIME = TrainingConfig.model_fields["max_runtime_seconds"].default


def clean_env() -> dict[str, str]:
    """This process's environment without anything the CDK CLI would set for the app."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CDK_", "CONTEXT_OVERFLOW")) or k == "CDK_DISABLE_VERSION_CHECK"
    }


def run_app(context: Context, outdir: Path) -> subprocess.CompletedProcess[str]:
    """``python app.py`` as the CLI runs it."""
    env = clean_env() | {"CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir)}
    return subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def run_cdk(*args: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    """The real pinned CDK CLI, with the environment of scripts/env.sh, in the project root."""
    command = 'source scripts/env.sh && exec cdk "$@"'
    return subprocess.run(
        ["bash", "-c", command, "cdk", *args, "--output", str(outdir)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_refused(
    result: subprocess.CompletedProcess[str], *fragments: str, absent: tuple[str, ...] = ()
) -> str:
    """Non-zero exit, no traceback, a short ``error:`` message holding every fragment."""
    output = result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output and "Traceback" not in result.stdout, output
    start = output.index("error: ")
    message = output[start:]
    lines = [line for line in message.splitlines() if line.strip() and "Subprocess exited" not in line]
    assert len(lines) <= 4, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"
    for fragment in absent:
        assert fragment not in message, f"{fragment!r} present in:\n{message}"
    return message


def stages_with(change: Callable[[dict[str, Any]], None]) -> Context:
    """cdk.json's context with ``change`` applied to a copy of its ``stages``."""
    context = copy.deepcopy(CDK_JSON["context"])
    change(context["stages"])
    return context


def unused_stage_name() -> str:
    """A stage name that is guaranteed not to be in cdk.json."""
    name = "nosuchstage"
    while name in CDK_JSON["context"]["stages"]:
        name += "x"
    return name


# ---- the CLI's encoding -----------------------------------------------------------------------------


def test_cli_context_is_what_the_real_cli_passes(tmp_path: Path) -> None:
    """The real `cdk synth` with a stand-in app that records its environment: ``cli_context`` matches it."""
    dump = tmp_path / "dump.py"
    recorded = tmp_path / "recorded.json"
    dump.write_text(
        "import json, os, sys\n"
        f"open({str(recorded)!r}, 'w').write(json.dumps({{'context': os.environ['CDK_CONTEXT_JSON'], "
        "'outdir': os.environ['CDK_OUTDIR']}))\n"
        "sys.exit(3)\n"
    )
    assignments = ["stage=", "stages.dev.training.max_wait_seconds=1800", 'x={"a": 1}', "y=a=b"]
    cli_args = [arg for a in assignments for arg in ("-c", a)]
    run_cdk("synth", "--quiet", "--app", f"{sys.executable} {dump}", *cli_args, outdir=tmp_path / "out")
    seen = json.loads(recorded.read_text())
    context = json.loads(seen["context"])
    assert context["stage"] == "" and context["stages.dev.training.max_wait_seconds"] == "1800"
    assert context["x"] == '{"a": 1}' and context["y"] == "a=b"
    assert context == cli_context(*assignments)
    assert Path(seen["outdir"]) == tmp_path / "out"


# ---- refusals through app.py, as the CLI runs it ---------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(stages: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = stages
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _rename(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(stages: dict[str, Any]) -> None:
        stages[new] = stages.pop(old)

    return change


def _delete_all(*paths: str) -> Callable[[dict[str, Any]], None]:
    def change(stages: dict[str, Any]) -> None:
        for path in paths:
            _delete(path)(stages)

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(stages: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = stages
        for part in parents:
            node = node[part]
        del node[last]

    return change


ABSENT = unused_stage_name()

REFUSED: list[tuple[str, Callable[[dict[str, Any]], None] | None, list[str], list[str], list[str]]] = [
    # (id, change to cdk.json's stages, -c assignments, fragments of the message, fragments it must not have)
    (
        "null-instance-type",
        _set("dev.training.instance_type", None),
        [],
        [
            "stages.dev.training.instance_type: null is not allowed",
            'omit the key to use the default "ml.g5.xlarge"',
        ],
        [],
    ),
    (
        "null-max-runtime-blames-max-runtime",
        _set("dev.training.max_runtime_seconds", None),
        [],
        ["stages.dev.training.max_runtime_seconds: null is not allowed", f"default {DEFAULT_MAX_RUNTIME}"],
        ["max_wait_seconds"],
    ),
    (
        "null-account",
        _set("dev.account", None),
        [],
        ["stages.dev.account: null is not allowed"],
        [],
    ),
    (
        "null-stage-under-stages",
        _set(ABSENT, None),
        [f"stage={ABSENT}"],
        [f"stages.{ABSENT}: null is not allowed", "a stage is an object"],
        ["allowed: one of"],
    ),
    (
        "null-stage-under-stages-while-synthesizing-dev",
        _set(ABSENT, None),
        [],
        [f"stages.{ABSENT}: null is not allowed"],
        [],
    ),
    ("empty-stage", None, ["stage="], ["stage: got ''", "allowed: one of", "'dev'"], []),
    (
        "override-refused-value",
        None,
        ["stages.dev.training.max_wait_seconds=1800"],
        [
            "stages.dev.training.max_wait_seconds: got 1800;",
            f"at least max_runtime_seconds ({DEV['training']['max_runtime_seconds']})",
            "(from -c stages.dev.training.max_wait_seconds=1800)",
        ],
        [],
    ),
    (
        "override-null",
        None,
        ["stages.dev.training.instance_type=null"],
        [
            "stages.dev.training.instance_type: null is not allowed",
            "(from -c stages.dev.training.instance_type=null)",
        ],
        [],
    ),
    (
        "override-unknown-key",
        None,
        ["stages.dev.training.max_wait=1800"],
        ["stages.dev.training.max_wait: unknown key", "max_wait_seconds"],
        [],
    ),
    (
        "override-of-another-stage",
        None,
        ["stage=dev", "stages.prod.training.max_wait_seconds=30000"],
        ["-c stages.prod.training.max_wait_seconds=30000", "'prod'", "'dev'"],
        [],
    ),
    (
        "override-of-a-missing-stage",
        None,
        [f"stages.{ABSENT}.removal_policy=destroy"],
        [f"-c stages.{ABSENT}.removal_policy=destroy", f"{ABSENT!r}", "cdk.json"],
        [],
    ),
    ("unknown-context-key", None, ["stag=prod"], ["stag", "unknown", "stage"], []),
    (
        "unknown-region",
        _set("dev.region", "us-east-9"),
        ["stages.dev.account=111111111111"],
        ["stages.dev.region: got 'us-east-9'", "constructs/ml_platform/image_uris.json"],
        [],
    ),
    (
        "stage-name-with-hyphen",
        _rename("dev", "de-v"),
        ["stage=de-v"],
        ["stages.de-v", "'de-v'", "lowercase letters and digits"],
        [],
    ),
    (
        "retained-stage-without-account",
        _delete_all("prod.account", "prod.region"),
        ["stage=prod"],
        ["stages.prod.account", "removal_policy 'retain'"],
        [],
    ),
    ("empty-name-prefix", None, ["name_prefix="], ["name_prefix: got ''", "allowed:"], []),
    ("bad-name-prefix", None, ["name_prefix=ml-platform"], ["name_prefix: got 'ml-platform'"], []),
]


@pytest.mark.parametrize(
    ("change", "assignments", "fragments", "absent"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_app_refuses_with_one_message(
    tmp_path: Path,
    change: Callable[[dict[str, Any]], None] | None,
    assignments: list[str],
    fragments: list[str],
    absent: list[str],
) -> None:
    context = stages_with(change) if change else copy.deepcopy(CDK_JSON["context"])
    result = run_app(cli_context(*assignments, context=context), tmp_path)
    assert_refused(result, *fragments, absent=tuple(absent))
    assert not (tmp_path / "manifest.json").exists()


def test_unknown_stage_is_refused_listing_the_known_ones(tmp_path: Path) -> None:
    name = unused_stage_name()
    result = run_app(cli_context(f"stage={name}"), tmp_path)
    known = sorted(CDK_JSON["context"]["stages"])
    assert_refused(result, f"stage: got {name!r}; allowed: one of {known}")


def test_override_on_the_command_line_is_applied_with_its_json_type(tmp_path: Path) -> None:
    """`-c stages.dev.training.max_wait_seconds=10800` synthesizes, and the pipeline's default is the int."""
    result = run_app(cli_context("stages.dev.training.max_wait_seconds=10800"), tmp_path)
    assert result.returncode == 0, result.stderr
    data, training = (
        json.loads((tmp_path / f"MlPlatform-dev-{role}.template.json").read_text())
        for role in ("Data", "Training")
    )
    definitions = pipeline_definitions(training, template_exports(data))
    (training_pipeline,) = [d for lid, d in definitions.items() if lid.startswith("TrainingPipeline")]
    defaults = {p["Name"]: p["DefaultValue"] for p in training_pipeline["Parameters"]}
    assert defaults["MaxWaitSeconds"] == 10800
    assert defaults["MaxRuntimeSeconds"] == DEV["training"]["max_runtime_seconds"]


# ---- the real CLI ------------------------------------------------------------------------------------


def test_real_cdk_synth_refuses_an_empty_stage(tmp_path: Path) -> None:
    result = run_cdk("synth", "--quiet", "-c", "stage=", outdir=tmp_path)
    assert_refused(result, "stage: got ''", "allowed: one of")


def test_real_cdk_synth_refuses_a_bad_override_naming_it(tmp_path: Path) -> None:
    result = run_cdk("synth", "--quiet", "-c", "stages.dev.training.max_wait_seconds=1800", outdir=tmp_path)
    assert_refused(
        result,
        "stages.dev.training.max_wait_seconds: got 1800;",
        "(from -c stages.dev.training.max_wait_seconds=1800)",
    )
