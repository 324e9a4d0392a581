"""The rendered pipeline definitions of a synthesized stage, by pipeline and step name (test helper).

Shared by the stack tests and the runtime-contract tests, so no test module imports another.
"""

from __future__ import annotations

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
