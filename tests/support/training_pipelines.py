"""The rendered pipeline definitions of a synthesized stage, by pipeline and step name (test helper).

Shared by the stack tests and the runtime-contract tests, so no test module imports another.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import SynthesizedStage
from tests.support.sagemaker_api import iter_steps, pipeline_definitions, template_exports

#: Pipeline name -> the logical-ID prefix of its AWS::SageMaker::Pipeline in the training stack.
PIPELINES = {"training": "TrainingPipeline", "tuning": "TuningPipeline"}


def definitions(synth: SynthesizedStage) -> dict[str, dict[str, Any]]:
    """Pipeline name ('training'/'tuning') -> definition with every CloudFormation value rendered."""
    imports = template_exports(synth.template("data"))
    rendered = pipeline_definitions(synth.template("training"), imports)
    by_name = {}
    for name, prefix in PIPELINES.items():
        (logical_id,) = [lid for lid in rendered if lid.startswith(prefix)]
        by_name[name] = rendered[logical_id]
    return by_name


def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in iter_steps(definition)}
