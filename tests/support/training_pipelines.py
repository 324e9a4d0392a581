"""The rendered pipeline definitions of a synthesized stage, by pipeline and step name (test helper).

Shared by the stack tests and the runtime-contract tests, so no test module imports another.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import SynthesizedStage
from tests.support.sagemaker_api import iter_steps, pipeline_definitions, template_exports

#: Pipeline name -> the logical-ID prefix of its AWS::SageMaker::Pipeline in the training stack: the
#: pipelines that preprocess, train and register.
PIPELINES = {"training": "TrainingPipeline", "tuning": "TuningPipeline"}
#: The batch-transform pipeline (scores with a registered package).
BATCH_PIPELINE = "batch-transform"
ALL_PIPELINES = {**PIPELINES, BATCH_PIPELINE: "BatchTransformPipeline"}


def definitions(synth: SynthesizedStage, pipelines: dict[str, str] = PIPELINES) -> dict[str, dict[str, Any]]:
    """Pipeline name ('training'/'tuning', or those of ``pipelines``) -> definition with every CloudFormation
    value rendered."""
    imports = template_exports(synth.template("data"))
    rendered = pipeline_definitions(synth.template("training"), imports)
    by_name = {}
    for name, prefix in pipelines.items():
        (logical_id,) = [lid for lid in rendered if lid.startswith(prefix)]
        by_name[name] = rendered[logical_id]
    return by_name


def batch_definition(synth: SynthesizedStage) -> dict[str, Any]:
    """The rendered batch-transform pipeline definition."""
    return definitions(synth, ALL_PIPELINES)[BATCH_PIPELINE]


def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in iter_steps(definition)}


def asset_text(synth: SynthesizedStage, uri: str) -> str:
    """The file a CDK file asset URI (``s3://<assets bucket>/<hash>.json``) ships, from the cloud assembly."""
    match = re.fullmatch(r"s3://cdk-hnb659fds-assets-[^/]+/([0-9a-f]{64}\.json)", uri)
    if match is None:
        raise ValueError(
            f"uri: got {uri!r}; allowed: s3://cdk-hnb659fds-assets-<account>-<region>/<sha256>.json"
        )
    return (Path(synth.outdir) / f"asset.{match.group(1)}").read_text(encoding="utf-8")


def asset_json(synth: SynthesizedStage, uri: str) -> Any:
    """The JSON document an asset URI ships (e.g. a Clarify analysis config)."""
    return json.loads(asset_text(synth, uri))
