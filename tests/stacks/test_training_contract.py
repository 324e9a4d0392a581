"""The contract between the synthesized training pipeline and train.py, exercised for real.

train.py runs with exactly the hyperparameters the synthesized pipeline passes (decoded the way the
SageMaker training toolkit does: JSON values, ``sagemaker_*`` keys consumed by the toolkit, the rest
as ``--name value``), and the metric regexes *taken from the synthesized definition* must extract
the values train.py really computed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import SynthesizedStage
from tests.support.training_pipelines import definitions, steps
from tests.training_code.training_helpers import make_processed, run_train, subprocess_env
from training_code import metrics

# Small enough for the CPU test machine; every other hyperparameter comes from the pipeline.
OVERRIDES = {"epochs": 3}


def toolkit_arguments(hyperparameters: dict[str, str]) -> list[str]:
    """What the SageMaker training toolkit passes to the entry point for these HyperParameters."""
    args: list[str] = []
    for name, encoded in hyperparameters.items():
        if name.startswith("sagemaker_"):
            continue
        value = OVERRIDES.get(name, json.loads(encoded))
        args += [f"--{name}", str(value)]
    return args


@pytest.fixture(scope="module")
def pipeline_training(synthesized: dict[str, SynthesizedStage]) -> dict[str, Any]:
    return steps(definitions(synthesized["dev"])["training"])["TrainSpot"]["Arguments"]


@pytest.mark.slow
def test_pipeline_hyperparameters_run_train_py_and_its_metric_regexes_extract_real_values(
    pipeline_training: dict[str, Any], tmp_path: Path
) -> None:
    data = make_processed(tmp_path / "data", "breast_cancer")
    hyperparameters = pipeline_training["HyperParameters"]
    assert json.loads(hyperparameters["sagemaker_program"]) == "train.py"
    # run_train passes the test's reference arguments first; the pipeline's come last and win.
    run = run_train(
        data,
        tmp_path / "model",
        tmp_path / "checkpoints",
        *toolkit_arguments(hyperparameters),
        env=subprocess_env(),
    )
    assert run.returncode == 0, run.log
    definitions_in_pipeline = pipeline_training["AlgorithmSpecification"]["MetricDefinitions"]
    extracted = {
        d["Name"]: [float(v) for v in re.findall(d["Regex"], run.log)] for d in definitions_in_pipeline
    }
    # One value per epoch for every metric SageMaker will chart.
    assert {name: len(values) for name, values in extracted.items()} == dict.fromkeys(
        metrics.METRIC_NAMES, OVERRIDES["epochs"]
    )
    # The last validation accuracy is the real accuracy of the saved model on the validation split.
    import model as model_module  # training_code/ is on sys.path (pyproject.toml: pythonpath)
    from common import load_split_csv

    net, artifact = model_module.load_model(tmp_path / "model" / "model.pt")
    features, labels = load_split_csv(data.validation, "validation")
    with torch.no_grad():
        predicted = net(torch.as_tensor(features, dtype=torch.float32)).argmax(dim=1).numpy()
    accuracy = float((predicted == labels).mean())
    assert extracted[metrics.VALIDATION_ACCURACY][-1] == pytest.approx(accuracy, abs=1e-12)
    assert 0.85 < accuracy <= 1.0
    assert artifact["hyperparameters"]["hidden_units"] == json.loads(hyperparameters["hidden_units"])
