"""evaluate.py and scoring.py: every metric cross-checked against scikit-learn on real data."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import evaluate
import metrics
import numpy as np
import pytest
import scoring
import torch
from common import EXIT_USAGE, UsageError, load_split_csv, run_entry_point
from model import load_model
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from tests.training_code.training_helpers import CODE_DIR, Processed, TrainRun, run_train, subprocess_env


def sklearn_scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    predicted = proba.argmax(axis=1)
    if proba.shape[1] == 2:
        return {
            "accuracy": skm.accuracy_score(y, predicted),
            "precision": skm.precision_score(y, predicted, zero_division=0),
            "recall": skm.recall_score(y, predicted, zero_division=0),
            "f1": skm.f1_score(y, predicted, zero_division=0),
            "auc": skm.roc_auc_score(y, proba[:, 1]),
        }
    return {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted, average="macro", zero_division=0),
        "recall": skm.recall_score(y, predicted, average="macro", zero_division=0),
        "f1": skm.f1_score(y, predicted, average="macro", zero_division=0),
        "auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "weighted_precision": skm.precision_score(y, predicted, average="weighted", zero_division=0),
        "weighted_recall": skm.recall_score(y, predicted, average="weighted", zero_division=0),
        "weighted_f1": skm.f1_score(y, predicted, average="weighted", zero_division=0),
    }


def logistic_probabilities(data: Processed) -> tuple[np.ndarray, np.ndarray]:
    x_train, y_train = load_split_csv(data.train, "train")
    x_test, y_test = load_split_csv(data.test, "test")
    classifier = LogisticRegression(max_iter=2000, C=0.05).fit(x_train, y_train)
    return y_test, classifier.predict_proba(x_test)


@pytest.mark.parametrize("dataset", ["breast_cancer", "wine", "digits"])
@pytest.mark.parametrize("ties", [False, True])
def test_scores_equal_scikit_learn(dataset: str, ties: bool, request: pytest.FixtureRequest) -> None:
    data: Processed = request.getfixturevalue(dataset)
    y, proba = logistic_probabilities(data)
    if ties:  # coarse, duplicated scores: many ties, which the AUC must rank as scikit-learn does
        proba = np.round(proba, 1) + 1e-3
        proba /= proba.sum(axis=1, keepdims=True)
        y, proba = np.concatenate([y, y[::2]]), np.concatenate([proba, proba[::2]])
    ours = scoring.classification_scores(y, proba)
    expected = sklearn_scores(y, proba)
    assert ours.keys() == expected.keys() == set(metrics.evaluation_metrics(proba.shape[1]))
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_scores_with_a_never_predicted_class_equal_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, size=200)
    proba = rng.dirichlet(np.ones(4), size=200)
    proba[:, 3] = 0.0  # class 3 is never predicted: precision 0/0 -> 0 (zero_division=0)
    proba /= proba.sum(axis=1, keepdims=True)
    ours = scoring.classification_scores(y, proba)
    for name, value in sklearn_scores(y, proba).items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_auc_is_nan_when_the_test_set_has_one_class() -> None:
    assert np.isnan(scoring.binary_auc(np.ones(5, dtype=bool), np.linspace(0, 1, 5)))


def test_bootstrap_standard_deviation_is_seeded_and_plausible(breast_cancer: Processed) -> None:
    y, proba = logistic_probabilities(breast_cancer)
    first = scoring.bootstrap_standard_deviations(y, proba, samples=300, seed=5)
    assert first == scoring.bootstrap_standard_deviations(y, proba, samples=300, seed=5)
    assert first != scoring.bootstrap_standard_deviations(y, proba, samples=300, seed=6)
    accuracy = skm.accuracy_score(y, proba.argmax(axis=1))
    binomial = np.sqrt(accuracy * (1 - accuracy) / len(y))
    assert first["accuracy"] == pytest.approx(binomial, rel=0.35)
    assert all(value >= 0 for value in first.values()) and first["f1"] > 0, first


def test_report_layout_matches_the_json_path_contract(wine: Processed) -> None:
    y, proba = logistic_probabilities(wine)
    report = evaluate.build_report(y, proba, ["class_0", "class_1", "class_2"], bootstrap_samples=0, seed=0)
    node = report
    for key in metrics.evaluation_json_path(num_classes=3).split("."):
        node = node[key]
    assert node == skm.accuracy_score(y, proba.argmax(axis=1))
    section = report["multiclass_classification_metrics"]
    assert section["f1"]["standard_deviation"] == "NaN"  # bootstrapping disabled
    matrix = skm.confusion_matrix(y, proba.argmax(axis=1))
    assert section["confusion_matrix"]["class_1"] == {f"class_{p}": int(matrix[1, p]) for p in range(3)}
    json.dumps(report, allow_nan=False)  # strict JSON


def _model_archive(model_dir: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def _model_probabilities(model_dir: Path, test: Path) -> tuple[np.ndarray, np.ndarray]:
    model, _ = load_model(model_dir / "model.pt")
    x, y = load_split_csv(test, "test")
    with torch.no_grad():
        return y, torch.softmax(model(torch.from_numpy(x)).double(), dim=1).numpy()


@pytest.mark.slow
def test_evaluate_script_on_model_tar_gz_binary(
    breast_cancer: Processed, reference_run: TrainRun, tmp_path: Path
) -> None:
    archive = _model_archive(reference_run.model_dir, tmp_path / "model.tar.gz")
    result = subprocess.run(
        [
            sys.executable,
            str(CODE_DIR / "evaluate.py"),
            "--model_path",
            str(archive),
            "--test_path",
            str(breast_cancer.test),
            "--output_dir",
            str(tmp_path / "evaluation"),
            # The job's other input and outputs (their defaults are the container paths).
            *("--predictions_dir", str(tmp_path / "predictions")),
            *("--scoring_path", str(breast_cancer.output / "scoring")),
            *("--data_quality_dir", str(tmp_path / "data_quality")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "predictions" / "predictions.csv").is_file()
    assert (tmp_path / "data_quality" / "data_quality.csv").is_file()
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert list(report) == ["binary_classification_metrics"]
    section = report["binary_classification_metrics"]
    y, proba = _model_probabilities(reference_run.model_dir, breast_cancer.test)
    for name, value in sklearn_scores(y, proba).items():
        assert section[name]["value"] == pytest.approx(value, abs=1e-9), name
        assert (
            isinstance(section[name]["standard_deviation"], float) and section[name]["standard_deviation"] > 0
        )
    assert section["accuracy"]["value"] > 0.85
    assert sum(sum(row.values()) for row in section["confusion_matrix"].values()) == len(y)
    assert set(section["confusion_matrix"]) == {"malignant", "benign"}


@pytest.mark.slow
def test_evaluate_multiclass_model_from_an_extracted_directory(wine: Processed, tmp_path: Path) -> None:
    run = run_train(
        wine, tmp_path / "model", tmp_path / "checkpoints", "--epochs", "12", "--batch_size", "16"
    )
    assert run.returncode == 0, run.log
    report = evaluate.evaluate(
        tmp_path / "model", wine.test, tmp_path / "evaluation", bootstrap_samples=50, seed=1
    )
    section = report["multiclass_classification_metrics"]
    y, proba = _model_probabilities(tmp_path / "model", wine.test)
    for name, value in sklearn_scores(y, proba).items():
        assert section[name]["value"] == pytest.approx(value, abs=1e-9), name
    assert section["accuracy"]["value"] > 0.8
    # a directory holding model.tar.gz is accepted too, with the same result
    archived = tmp_path / "archived"
    archived.mkdir()
    _model_archive(tmp_path / "model", archived / "model.tar.gz")
    again = evaluate.evaluate(archived, wine.test, tmp_path / "evaluation2", bootstrap_samples=50, seed=1)
    assert again == report


def test_unsafe_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(UsageError, match=r"unsafe archive member '\.\./escape\.txt'"):
        evaluate.locate_model(archive, tmp_path / "scratch")
    assert not (tmp_path / "escape.txt").exists()


def test_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"holds neither model\.pt nor model\.tar\.gz"):
        evaluate.locate_model(tmp_path, tmp_path / "scratch")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--bootstrap_samples", "abc"],
            "argument --bootstrap_samples/--bootstrap-samples: invalid int value: 'abc'",
        ),
        (["--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
        (["--test_pth", "x"], "unrecognized arguments: --test_pth x"),
    ],
)
def test_argument_errors_exit_2_with_the_processing_exit_message(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    assert run_entry_point(evaluate.main, "processing", evaluate.LOG, argv) == EXIT_USAGE
    reason = (tmp_path / "output" / "message").read_text()  # the processing job's ExitMessage
    assert reason.endswith(f": error: {message}")
    assert capsys.readouterr().err.splitlines()[-1] == reason
