"""Fixtures for the runtime-code tests; the helpers live in training_helpers.py.

training_code/ is on sys.path through pytest's ``pythonpath`` (pyproject.toml): the container scripts
import their siblings as top-level modules (``import metrics``), as they do when SageMaker runs
``python train.py``, and the tests import them by those names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.training_code.training_helpers import Processed, RunningTrain, TrainRun, make_processed, run_train


@pytest.fixture(scope="session")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> Processed:
    return make_processed(tmp_path_factory.mktemp("breast_cancer"), "breast_cancer")


@pytest.fixture(scope="session")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Processed:
    return make_processed(tmp_path_factory.mktemp("wine"), "wine")


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Processed:
    return make_processed(tmp_path_factory.mktemp("digits"), "digits")


@pytest.fixture
def start_train(tmp_path: Path) -> Iterator[Callable[..., RunningTrain]]:
    started: list[RunningTrain] = []

    def start(command: list[str], name: str, env: dict[str, str]) -> RunningTrain:
        running = RunningTrain(command, tmp_path / f"{name}.log", env)
        started.append(running)
        return running

    yield start
    for running in started:  # never leave a paused process (or a torchrun worker) behind
        running.kill_group()
        running.process.wait()


@pytest.fixture(scope="session")
def reference_run(breast_cancer: Processed, tmp_path_factory: pytest.TempPathFactory) -> TrainRun:
    """One uninterrupted training run of the reference configuration, with an extra argument in the SageMaker
    framework's reserved ``sagemaker_*`` names (ignored with a warning; any other unknown one is refused)."""
    base = tmp_path_factory.mktemp("reference")
    run = run_train(
        breast_cancer, base / "model", base / "checkpoints", "--sagemaker_extra_setting", "surprise"
    )
    assert run.returncode == 0, run.log
    return run
