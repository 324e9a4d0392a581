"""Every argument the synthesized pipelines pass to train.py and evaluate.py is one the scripts know.

train.py and evaluate.py refuse unknown arguments (a misspelled hyperparameter must not be ignored), so
this walks every step of every stage's pipelines: training jobs' HyperParameters and the tuning job's
static hyperparameters plus each tuned range (at both ends), decoded the way the SageMaker training
toolkit decodes them, and the evaluation jobs' ContainerArguments. Parsing only: nothing trains here
(tests/stacks/test_training_contract.py runs train.py with the training step's values).
"""

from __future__ import annotations

import json
from typing import Any

import evaluate
import pytest
import train

from tests.conftest import STAGES, SynthesizedStage
from tests.support.training_pipelines import definitions, steps

pytestmark = pytest.mark.slow  # one synth per session (shared with the stack tests)

#: Hyperparameters the training toolkit consumes itself (sagemaker_training.params): never CLI arguments.
TOOLKIT_ONLY = ("_tuning_objective_metric",)


def toolkit_arguments(hyperparameters: dict[str, str]) -> list[str]:
    """``--name value`` as the SageMaker training toolkit builds them for the entry point."""
    args: list[str] = []
    for name, encoded in hyperparameters.items():
        if name.startswith("sagemaker_") or name in TOOLKIT_ONLY:
            continue
        try:
            value = json.loads(encoded)
        except json.JSONDecodeError:
            value = encoded
        args += [f"--{name}", str(value)]
    return args


def train_argument_lists(step: dict[str, Any]) -> list[list[str]]:
    arguments = step["Arguments"]
    if step["Type"] == "Training":
        return [toolkit_arguments(arguments["HyperParameters"])]
    static = arguments["TrainingJobDefinition"]["StaticHyperParameters"]
    ranges = [
        r for kind in arguments["HyperParameterTuningJobConfig"]["ParameterRanges"].values() for r in kind
    ]
    assert ranges, "the tuning job tunes nothing"
    return [
        toolkit_arguments({**static, **{r["Name"]: r[end] for r in ranges}})
        for end in ("MinValue", "MaxValue")
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_every_pipeline_argument_is_known_to_the_scripts(
    synthesized: dict[str, SynthesizedStage], stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SM_MODEL_DIR", "SM_CHECKPOINT_DIR", "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION"):
        monkeypatch.delenv(name, raising=False)
    checked = {"train.py": 0, "evaluate.py": 0}
    for pipeline, definition in definitions(synthesized[stage]).items():
        for name, step in steps(definition).items():
            if step["Type"] in ("Training", "Tuning"):
                for args in train_argument_lists(step):
                    _, _, ignored = train.parse_args(args)  # raises on an unknown or invalid argument
                    assert ignored == [], (pipeline, name, ignored)
                    checked["train.py"] += 1
            elif step["Type"] == "Processing":
                specification = step["Arguments"]["AppSpecification"]
                if specification.get("ContainerEntrypoint", [])[-1:] == ["evaluate.py"]:
                    evaluate.parse_args(specification.get("ContainerArguments", []))
                    checked["evaluate.py"] += 1
    # the training pipeline: TrainSpot + TrainOnDemand; the tuning pipeline: Tune at both range ends
    assert checked == {"train.py": 4, "evaluate.py": 3}, checked


def test_the_tuning_trials_get_the_config_namespace(synthesized: dict[str, SynthesizedStage]) -> None:
    tune = steps(definitions(synthesized["dev"])["tuning"])["Tune"]
    for args in train_argument_lists(tune):
        hp, _, _ = train.parse_args(args)
        assert hp.checkpoint_namespace == "config"
