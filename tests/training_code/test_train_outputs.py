"""What train.py leaves behind: metric log lines, model.pt, model.onnx, preprocessing.json; its guards
(argument errors: exit code 2 with the message on stderr and in the SageMaker failure file)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import metrics
import numpy as np
import onnxruntime
import pytest
import torch
import train
from common import EXIT_USAGE, load_split_csv
from model import load_model
from sklearn.metrics import accuracy_score, f1_score, log_loss

from tests.training_code.training_helpers import CODE_DIR, Processed, TrainRun, subprocess_env


@pytest.mark.slow
def test_metric_regexes_extract_the_values_the_saved_model_reproduces(
    breast_cancer: Processed, reference_run: TrainRun
) -> None:
    extracted = {
        definition["Name"]: [float(v) for v in re.findall(definition["Regex"], reference_run.log)]
        for definition in metrics.METRIC_DEFINITIONS
    }
    assert all(len(values) == 4 for values in extracted.values()), extracted  # one per epoch

    # the last epoch's validation metrics are those of the saved model
    model, _ = load_model(reference_run.model_dir / "model.pt")
    x_val, y_val = load_split_csv(breast_cancer.validation, "validation")
    with torch.no_grad():
        proba = torch.softmax(model(torch.from_numpy(x_val)).double(), dim=1).numpy()
    predicted = proba.argmax(axis=1)
    assert extracted["validation:accuracy"][-1] == accuracy_score(y_val, predicted)
    assert extracted["validation:f1"][-1] == pytest.approx(f1_score(y_val, predicted), abs=1e-12)
    assert extracted["validation:loss"][-1] == pytest.approx(log_loss(y_val, proba), rel=1e-5)
    assert extracted["validation:accuracy"][-1] > 0.85
    losses = extracted["train:loss"]
    assert losses[-1] < losses[0]  # it learned something


@pytest.mark.slow
def test_unknown_hyperparameters_are_logged_not_fatal(reference_run: TrainRun) -> None:
    """Only SageMaker's framework-reserved names (``sagemaker_*``): any other unknown name is refused
    (test_misspelled_hyperparameter_is_refused_naming_it_and_the_known_ones)."""
    assert "ignoring unrecognized arguments: --sagemaker_extra_setting surprise" in reference_run.log


@pytest.mark.slow
def test_model_artifact_carries_architecture_classes_and_preprocessing(
    breast_cancer: Processed, reference_run: TrainRun
) -> None:
    artifact = torch.load(reference_run.model_dir / "model.pt", weights_only=True)
    spec = json.loads((breast_cancer.train / "preprocessing.json").read_text())
    assert artifact["architecture"] == {
        "in_features": 30,
        "num_classes": 2,
        "hidden_units": 32,
        "num_layers": 2,
        "dropout": 0.2,
    }
    assert artifact["classes"] == spec["label"]["classes"] == ["malignant", "benign"]
    assert artifact["feature_names"] == spec["feature_names"]
    assert (reference_run.model_dir / "preprocessing.json").read_bytes() == (
        breast_cancer.train / "preprocessing.json"
    ).read_bytes()
    layers = [name for name in artifact["state_dict"] if name.endswith("running_mean")]
    assert layers == ["body.1.running_mean", "body.5.running_mean"]  # Linear, BatchNorm, ReLU, Dropout x2


@pytest.mark.slow
def test_onnx_export_matches_torch_on_real_data(breast_cancer: Processed, reference_run: TrainRun) -> None:
    model, _ = load_model(reference_run.model_dir / "model.pt")
    x_test, _ = load_split_csv(breast_cancer.test, "test")
    session = onnxruntime.InferenceSession(
        str(reference_run.model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]
    for batch in (x_test, x_test[:1], x_test[:7]):  # dynamic batch axis
        logits, probabilities = session.run(None, {"features": batch})
        with torch.no_grad():
            expected = model(torch.from_numpy(batch))
        assert logits.shape == (batch.shape[0], 2)
        assert np.max(np.abs(logits - expected.numpy())) <= 1e-5
        assert np.max(np.abs(probabilities - torch.softmax(expected, dim=1).numpy())) <= 1e-5


def test_checkpoint_dir_inside_model_dir_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "model"
    argv = ["--model_dir", str(model_dir), "--checkpoint_dir", str(model_dir / "checkpoints")]
    with pytest.raises(train.UsageError, match=r"checkpoint directory .* is inside the model directory"):
        train.parse_args(argv)
    # through the entry point: usage exit code, nothing written into the model dir
    assert train.run_entry_point(train.main, "training", train.LOG, argv) == EXIT_USAGE
    assert not model_dir.exists()


def test_checkpoint_dir_from_environment_inside_model_dir_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_CHECKPOINT_DIR", str(tmp_path / "model" / "nested" / ".."))
    with pytest.raises(train.UsageError, match="inside the model directory"):
        train.parse_args([])


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("--epochs", "0", "--epochs: got 0"),
        ("--dropout", "1.0", "--dropout: got 1.0"),
        ("--batch_size", "1", "--batch_size: got 1"),
        ("--checkpoint_interval_steps", "-1", "--checkpoint_interval_steps: got -1"),
    ],
)
def test_invalid_hyperparameters_name_the_argument(argument: str, value: str, message: str) -> None:
    with pytest.raises(train.UsageError, match=re.escape(message)):
        train.parse_args([argument, value, "--model_dir", "/tmp/m", "--checkpoint_dir", "/tmp/c"])


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("--learning_rate", "inf"),
        ("--learning_rate", "nan"),
        ("--learning_rate", "1e309"),  # overflows to inf when parsed
        ("--weight_decay", "inf"),
        ("--dropout", "nan"),
    ],
)
def test_non_finite_float_hyperparameters_are_refused_naming_them(argument: str, value: str) -> None:
    shown = repr(float(value))
    with pytest.raises(
        train.UsageError, match=re.escape(f"{argument}: got {shown}; allowed: a finite number")
    ):
        train.parse_args([argument, value, "--model_dir", "/tmp/m", "--checkpoint_dir", "/tmp/c"])


def test_every_float_hyperparameter_is_checked_for_finiteness() -> None:
    floats = [name for name, value in asdict(train.Hyperparameters()).items() if isinstance(value, float)]
    assert floats == ["learning_rate", "dropout", "weight_decay"]
    for name in floats:
        with pytest.raises(train.UsageError, match=f"--{name}: got inf; allowed: a finite number"):
            train.Hyperparameters(**{name: float("inf")})


def run_main(argv: list[str], out: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """train.py's entry point in-process, with the failure file going to ``out``."""
    monkeypatch.setenv("SM_OUTPUT_DIR", str(out))
    return train.run_entry_point(train.main, "training", train.LOG, argv)


def test_misspelled_hyperparameter_is_refused_naming_it_and_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--learnig_rate",
        "0.1",
        "--model_dir",
        str(tmp_path / "m"),
        "--checkpoint_dir",
        str(tmp_path / "c"),
    ]
    assert run_main(argv, tmp_path / "output", monkeypatch) == EXIT_USAGE
    reason = (tmp_path / "output" / "failure").read_text()
    assert "unknown argument(s): --learnig_rate (did you mean --learning_rate?)" in reason
    known = reason.split("known: ", 1)[1].split()
    assert known == train.known_arguments()
    assert {"--epochs", "--learning_rate", "--checkpoint_namespace", "--model_dir"} <= set(known)
    assert capsys.readouterr().err.splitlines()[-1] == reason  # the same message as on stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--epochs", "3", "--learning", "0.1"],  # an abbreviation is not a name either
        ["--epochs", "3", "stray"],
        ["--Epochs", "3"],
    ],
)
def test_other_unknown_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(train.UsageError, match=r"unknown argument\(s\): "):
        train.parse_args([*argv, "--model_dir", "/tmp/m", "--checkpoint_dir", "/tmp/c"])


def test_sagemaker_framework_arguments_are_ignored_not_refused() -> None:
    argv = ["--sagemaker_program", "train.py", "--_tuning_objective_metric", "validation:accuracy"]
    hp, _, ignored = train.parse_args([*argv, "--epochs", "2", "--model_dir", "/m", "--checkpoint_dir", "/c"])
    assert hp.epochs == 2 and ignored == argv


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
        (["--batch_size", "abc"], "argument --batch_size: invalid int value: 'abc'"),
        (["--learning_rate", "fast"], "argument --learning_rate: invalid float value: 'fast'"),
        (["--seed"], "argument --seed: expected one argument"),
    ],
)
def test_argument_type_errors_write_the_failure_file(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main(argv, tmp_path / "output", monkeypatch) == EXIT_USAGE
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.endswith(f": error: {message}")  # "<prog>: error: ...", as argparse prints it
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and err.splitlines()[-1] == reason


def test_argument_errors_of_the_script_exit_2_with_the_failure_file(tmp_path: Path) -> None:
    """As SageMaker runs it: ``python train.py --epochs 2.5`` exits 2; FailureReason = stderr's message."""
    result = subprocess.run(
        [sys.executable, str(CODE_DIR / "train.py"), "--epochs", "2.5"],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(SM_OUTPUT_DIR=str(tmp_path / "output")),
    )
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason == "train.py: error: argument --epochs: invalid int value: '2.5'"
    assert result.stderr.splitlines()[-1] == reason
    assert "Traceback" not in result.stderr
