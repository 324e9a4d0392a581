"""The baseline datasets the real training code writes for the monitoring checks (issue 9, item 1).

* Preprocess's ``labeled/labeled.csv`` (the Clarify checks' dataset): the header is the input columns,
  then the label column; each row is the matching row of ``scoring/scoring.csv`` (what the endpoint
  receives) followed by its ground-truth value, as a ground-truth record carries it.
* Evaluate's ``predictions/predictions.csv`` (the model-quality check's dataset): one row per test record
  with the prediction, the probability and the ground truth; it must agree with what the real serving
  code (predictors.py's ONNX backend, the endpoint's) answers for the same records, and its accuracy
  must be the evaluation report's.

Both are produced by a real local run (local_run.py: preprocess -> train -> evaluate) on scikit-learn's
breast cancer (binary) and wine (three classes) datasets.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import contract
import evaluate
import monitoring_contract as mc
import numpy as np
import predictors
import preprocess
import pytest
from common import UsageError

from tests.training_code.training_helpers import ROOT, subprocess_env

DATASETS = ("breast_cancer", "wine")
#: Epochs per dataset: enough for a model that is mostly right (the checks hold for any model).
EPOCHS = {"breast_cancer": "6", "wine": "12"}


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@dataclass
class LocalRun:
    """A finished local_run.py run and the files it wrote."""

    dataset: str
    workdir: Path

    @property
    def processing(self) -> Path:
        return self.workdir / "opt" / "ml" / "processing"

    def output(self, name: str) -> Path:
        return self.processing / "output" / name / contract.split_file(name)

    @property
    def predictions(self) -> Path:
        return self.processing / contract.PREDICTIONS_OUTPUT / mc.BASELINES_FILE

    @property
    def data_quality(self) -> Path:
        return self.processing / contract.DATA_QUALITY_OUTPUT / mc.DATA_QUALITY_BASELINE_FILE

    @property
    def spec(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.processing / "output" / contract.TRAIN / contract.PREPROCESSING_FILE).read_text()
        )
        return data

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.spec["label"]["classes"])

    @property
    def report_section(self) -> dict[str, Any]:
        report = json.loads((self.processing / "evaluation" / "evaluation.json").read_text())
        (section,) = report.values()
        result: dict[str, Any] = section
        return result


@pytest.fixture(scope="module", params=DATASETS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    dataset: str = request.param
    workdir = tmp_path_factory.mktemp(f"baseline_{dataset}")
    result = subprocess.run(
        [
            sys.executable,
            "training_code/local_run.py",
            *("--dataset", dataset),
            *("--workdir", str(workdir)),
            *("--epochs", EPOCHS[dataset]),
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return LocalRun(dataset, workdir)


@pytest.fixture(scope="module")
def served(run: LocalRun, tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    """The endpoint's CSV answer (``label,p0,p1,...`` per record) for the whole scoring file, computed by
    the serving code itself (predictors.py's ONNX backend) on the packaged model.tar.gz."""
    model_dir = tmp_path_factory.mktemp(f"served_{run.dataset}")
    evaluate.safe_extract(run.processing / "model" / "model.tar.gz", model_dir)
    backend = predictors.load("onnx", model_dir, intra_op_threads=1, max_rows=None)
    body = run.output(contract.SCORING).read_bytes()
    answer = backend.invoke(body, contract.CSV_CONTENT_TYPE, contract.CSV_CONTENT_TYPE)
    return [row for row in csv.reader(io.StringIO(answer.decode("utf-8"))) if row]


# ---- labeled.csv ----------------------------------------------------------------------------------


def test_labeled_rows_are_the_scoring_rows_with_their_ground_truth(run: LocalRun) -> None:
    spec = run.spec
    labeled = read_csv(run.output(contract.LABELED))
    scoring = read_csv(run.output(contract.SCORING))
    labels = run.output(contract.SCORING_LABELS).read_text(encoding="utf-8").splitlines()
    input_columns = [column["name"] for column in spec["input_columns"]]
    # The header: the raw input columns in request order, then the manifest's label column.
    assert labeled[0] == [*input_columns, spec["label"]["name"]] == [*input_columns, "target"]
    # The rows: scoring.csv's, cell for cell and in its order, each followed by its ground truth.
    assert len(labeled) - 1 == len(scoring) == len(labels) == spec["split"]["rows"]["test"] > 20
    assert [row[:-1] for row in labeled[1:]] == scoring
    truth = [row[-1] for row in labeled[1:]]
    monitoring = mc.MonitoringContract(run.classes)
    assert truth == [monitoring.ground_truth_value(label) for label in labels]
    # Spelled out, independently of the contract's method:
    if run.dataset == "breast_cancer":  # classes[1] (scikit-learn's "benign") is the positive class
        assert run.classes == ("malignant", "benign")
        assert truth == ["1" if label == "benign" else "0" for label in labels]
        assert set(truth) == {"0", "1"}
    else:  # multiclass: the class name itself
        assert truth == labels and set(truth) == set(run.classes)
    # Each labeled row is a raw row of the dataset with its raw label (label column moved last).
    raw = read_csv(run.processing / "input" / "data.csv")
    at = raw[0].index("target")
    raw_rows = {(*row[:at], *row[at + 1 :], row[at]) for row in raw[1:]}
    assert all((*row[:-1], label) in raw_rows for row, label in zip(labeled[1:], labels, strict=True))


# ---- predictions.csv ------------------------------------------------------------------------------


def test_predictions_header_and_values_follow_the_contract(run: LocalRun) -> None:
    rows = read_csv(run.predictions)
    assert rows[0] == list(mc.BASELINE_COLUMNS) == ["prediction", "probability", "label"]
    assert all(mc.check_baseline_column_name(name) == name for name in rows[0])
    labeled = read_csv(run.output(contract.LABELED))
    assert len(rows) == len(labeled)  # one row per test record
    # The ground truth is labeled.csv's, row for row.
    assert [row[2] for row in rows[1:]] == [row[-1] for row in labeled[1:]]
    probabilities = np.array([float(row[1]) for row in rows[1:]])
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    if run.dataset == "breast_cancer":
        # Binary: the prediction is the positive class's probability over the 0.5 threshold.
        assert [row[0] for row in rows[1:]] == ["1" if p > 0.5 else "0" for p in probabilities]
        assert {row[0] for row in rows[1:]} == {"0", "1"}
    else:
        # Multiclass: a class name, with the probability of that (the most probable) class.
        assert {row[0] for row in rows[1:]} <= set(run.classes)
        assert np.all(probabilities >= 1 / len(run.classes))


def test_predictions_agree_with_what_the_endpoint_serves(run: LocalRun, served: list[list[str]]) -> None:
    rows = read_csv(run.predictions)[1:]
    assert len(served) == len(rows)
    monitoring = mc.MonitoringContract(run.classes)
    answers = np.array([[float(v) for v in answer[1:]] for answer in served])
    served_labels = [answer[0] for answer in served]
    assert served_labels == [run.classes[i] for i in answers.argmax(axis=1)]
    if monitoring.binary:
        served_probability = answers[:, monitoring.positive_class_index]
    else:
        served_probability = answers.max(axis=1)
    expected = [
        monitoring.predicted_value(label, p)
        for label, p in zip(served_labels, answers[:, monitoring.positive_class_index], strict=True)
    ]
    # The same prediction as the endpoint's, and the same probability up to float32 (ONNX vs PyTorch).
    assert [row[0] for row in rows] == expected
    np.testing.assert_allclose([float(row[1]) for row in rows], served_probability, rtol=0, atol=1e-6)


def test_accuracy_of_the_predictions_is_the_reports(run: LocalRun) -> None:
    rows = read_csv(run.predictions)[1:]
    section = run.report_section
    accuracy = sum(row[0] == row[2] for row in rows) / len(rows)
    assert accuracy == pytest.approx(section["accuracy"]["value"], abs=1e-12)
    assert accuracy > 0.6  # a trained model, not a constant
    # The confusion matrix too: report true class -> predicted class; rows give ground truth -> prediction.
    monitoring = mc.MonitoringContract(run.classes)
    for true_class, predicted in section["confusion_matrix"].items():
        for predicted_class, count in predicted.items():
            pair = (
                monitoring.ground_truth_value(predicted_class),
                monitoring.ground_truth_value(true_class),
            )
            assert sum((row[0], row[2]) == pair for row in rows) == count, (true_class, predicted_class)


# ---- data_quality.csv -----------------------------------------------------------------------------


def test_data_quality_baseline_is_the_served_answer_then_the_raw_inputs(
    run: LocalRun, served: list[list[str]]
) -> None:
    """Header: the CSV response's columns, then the raw input columns (preprocessing.json, request order);
    each row: what the endpoint answers for a test record, then that record's cells from scoring.csv."""
    rows = read_csv(run.data_quality)
    input_columns = [column["name"] for column in run.spec["input_columns"]]
    classes = run.classes
    responses = ["predicted_label", *(f"probability_{i}" for i in range(len(classes)))]
    assert rows[0] == [*responses, *input_columns]
    assert rows[0] == mc.MonitoringContract(classes).data_quality_header(input_columns)
    if run.dataset == "breast_cancer":
        assert rows[0][:4] == ["predicted_label", "probability_0", "probability_1", "mean radius"]
    else:
        assert rows[0][:5] == [
            "predicted_label",
            "probability_0",
            "probability_1",
            "probability_2",
            "alcohol",
        ]
    scoring = read_csv(run.output(contract.SCORING))
    assert len(rows) - 1 == len(scoring) == len(served) == run.spec["split"]["rows"]["test"]
    width = len(responses)
    assert [row[width:] for row in rows[1:]] == scoring  # the raw inputs, cell for cell, in order
    # The output cells: the endpoint's answer (label; probabilities up to float32, ONNX vs PyTorch).
    assert [row[0] for row in rows[1:]] == [answer[0] for answer in served]
    np.testing.assert_allclose(
        [[float(v) for v in row[1:width]] for row in rows[1:]],
        [[float(v) for v in answer[1:]] for answer in served],
        rtol=0,
        atol=1e-6,
    )
    # The probabilities are the predictions baseline's (the report's), written as the server writes them.
    predictions = read_csv(run.predictions)[1:]
    positive = 1 if len(classes) == 2 else None
    for row, prediction in zip(rows[1:], predictions, strict=True):
        probabilities = [float(v) for v in row[1:width]]
        chosen = probabilities[positive] if positive is not None else max(probabilities)
        assert repr(chosen) == prediction[1]


def test_evaluate_refuses_scoring_records_that_are_not_the_test_splits(run: LocalRun, tmp_path: Path) -> None:
    test = run.processing / "test" / "test.csv"
    scoring = read_csv(run.output(contract.SCORING))
    model = run.processing / "model" / "model.tar.gz"
    short = tmp_path / "short.csv"
    short.write_text("".join(",".join(row) + "\n" for row in scoring[:-1]))
    with pytest.raises(
        UsageError, match=rf"{len(scoring) - 1} records but the test split has {len(scoring)}"
    ):
        evaluate.evaluate(model, test, tmp_path / "e", 0, 0, tmp_path / "p", (short, tmp_path / "dq"))
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("".join(",".join(row[:-1]) + "\n" for row in scoring))
    width = len(scoring[0])
    with pytest.raises(UsageError, match=rf"line 1 has {width - 1} cells; allowed: {width}, one per input"):
        evaluate.evaluate(model, test, tmp_path / "e", 0, 0, tmp_path / "p", (narrow, tmp_path / "dq"))
    for folder in ("e", "p", "dq"):  # refused before any output is written
        assert not (tmp_path / folder).exists()


def test_evaluate_reads_and_writes_the_data_quality_files_where_the_pipeline_puts_them() -> None:
    args = evaluate.parse_args([])
    assert args.data_quality_dir == contract.DATA_QUALITY_DIR == "/opt/ml/processing/data_quality"
    assert (
        contract.DATA_QUALITY_OUTPUT == "data_quality" and mc.DATA_QUALITY_BASELINE_FILE == "data_quality.csv"
    )
    assert args.scoring_path == f"{contract.EVALUATE_SCORING_DIR}/scoring.csv"
    assert contract.EVALUATE_SCORING_DIR == "/opt/ml/processing/scoring"
    assert evaluate.parse_args(["--scoring-path", "x", "--data-quality-dir", "y"]).data_quality_dir == "y"


# ---- refusals -------------------------------------------------------------------------------------


def _two_class_dataset(directory: Path, classes: tuple[str, str]) -> Path:
    directory.mkdir(parents=True)
    with (directory / "data.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["x", "y"])
        writer.writerows([repr(1.5 + i), classes[i % 2]] for i in range(60))
    manifest = {
        "dataset": "d",
        "version": "1",
        "files": ["data.csv"],
        "label": "y",
        "columns": [{"name": "x", "type": "float"}, {"name": "y", "type": "category"}],
    }
    (directory / contract.MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def test_preprocess_refuses_class_labels_a_ground_truth_record_cannot_carry(tmp_path: Path) -> None:
    raw = _two_class_dataset(tmp_path / "raw", ("no, never", "yes"))
    with pytest.raises(UsageError, match=r"label column 'y': class label 'no, never': allowed: .*commas"):
        preprocess.main(["--input_dir", str(raw), "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()  # nothing written: the job fails before its outputs
    # The same dataset with monitorable labels goes through.
    raw = _two_class_dataset(tmp_path / "raw2", ("no", "yes"))
    assert preprocess.main(["--input_dir", str(raw), "--output_dir", str(tmp_path / "out2")]) == 0
    labeled = read_csv(tmp_path / "out2" / contract.LABELED / contract.split_file(contract.LABELED))
    assert labeled[0] == ["x", "y"] and {row[1] for row in labeled[1:]} == {"0", "1"}  # "yes" is classes[1]


def test_labeled_csv_refuses_an_input_column_named_like_the_label() -> None:
    with pytest.raises(UsageError, match=r"label column 'y': headers \['y', 'y'\]: allowed: .*distinct"):
        preprocess.format_labeled_csv(["y"], "y", [["1.0"]], ["a", "b"], ["a"])


def _copied_model(run: LocalRun, target: Path) -> Path:
    shutil.copytree(run.workdir / "opt" / "ml" / "model", target)
    return target


def test_evaluate_refuses_classes_that_differ_from_the_models(run: LocalRun, tmp_path: Path) -> None:
    model_dir = _copied_model(run, tmp_path / "model")
    spec_path = model_dir / contract.PREPROCESSING_FILE
    spec = json.loads(spec_path.read_text())
    spec["label"]["classes"] = spec["label"]["classes"][::-1]  # same names, other order
    spec_path.write_text(json.dumps(spec))
    test = run.processing / "test" / "test.csv"
    with pytest.raises(UsageError, match=r"names the classes .* but model\.pt was trained with"):
        evaluate.evaluate(model_dir, test, tmp_path / "evaluation", 0, 0, tmp_path / "predictions")
    assert not (tmp_path / "predictions").exists() and not (tmp_path / "evaluation").exists()


def test_evaluate_needs_preprocessing_json_for_the_predictions(run: LocalRun, tmp_path: Path) -> None:
    model_dir = _copied_model(run, tmp_path / "model")
    (model_dir / contract.PREPROCESSING_FILE).unlink()
    test = run.processing / "test" / "test.csv"
    with pytest.raises(
        UsageError, match=r"no preprocessing\.json beside model\.pt; the predictions baseline"
    ):
        evaluate.evaluate(model_dir, test, tmp_path / "evaluation", 0, 0, tmp_path / "predictions")
    # The report alone still works (model.pt's own classes), as before the baseline existed.
    report = evaluate.evaluate(model_dir, test, tmp_path / "evaluation", 0, 0)
    assert set(next(iter(report.values()))["confusion_matrix"]) == set(run.classes)
    assert not (tmp_path / "predictions").exists()


def test_evaluate_writes_the_predictions_where_the_pipeline_collects_them(tmp_path: Path) -> None:
    assert evaluate.parse_args([]).predictions_dir == contract.PREDICTIONS_DIR
    assert f"{contract.PROCESSING_ROOT}/{contract.PREDICTIONS_OUTPUT}" == contract.PREDICTIONS_DIR
    assert evaluate.parse_args(["--predictions-dir", str(tmp_path)]).predictions_dir == str(tmp_path)
    assert contract.LABELED in contract.PREPROCESS_OUTPUTS
    assert preprocess.LABELED_FILE == "labeled/labeled.csv"


def test_baseline_row_refuses_what_no_model_answers() -> None:
    binary = mc.MonitoringContract(("malignant", "benign"))
    assert binary.baseline_row([0.25, 0.75], "benign") == ("1", "0.75", "1")
    assert binary.baseline_row([0.5, 0.5], "malignant") == ("0", "0.5", "0")  # a tie is class 0, as argmax
    three = mc.MonitoringContract(("a", "b", "c"))
    assert three.baseline_row([0.2, 0.5, 0.3], "c") == ("b", "0.5", "c")
    for probabilities, label, message in (
        ([0.5, 0.5, 0.0], "benign", r"allowed: 2 values in \[0, 1\]"),
        ([1.5, -0.5], "benign", r"allowed: 2 values in \[0, 1\]"),
        ([float("nan"), 1.0], "benign", r"allowed: 2 values in \[0, 1\]"),
        ([0.5, 0.5], "unknown", r"label 'unknown': allowed: one of \['malignant', 'benign'\]"),
    ):
        with pytest.raises(ValueError, match=message):
            binary.baseline_row(probabilities, label)


@pytest.mark.parametrize("name", ["Prediction", "pred-label", "label2", "_label", "label_", "a__b", ""])
def test_baseline_column_names_follow_model_monitors_rule(name: str) -> None:
    with pytest.raises(ValueError, match="allowed: lower-case letters with '_' as the only separator"):
        mc.check_baseline_column_name(name)
    assert mc.check_baseline_column_name("true_label") == "true_label"


def test_the_archive_holds_what_evaluate_reads(run: LocalRun) -> None:
    """Evaluate reads the classes from the preprocessing.json inside model.tar.gz (what the endpoint gets)."""
    with tarfile.open(run.processing / "model" / "model.tar.gz") as tar:
        names = tar.getnames()
        member = tar.extractfile(contract.PREPROCESSING_FILE)
        assert member is not None
        shipped = json.loads(member.read())
    assert contract.MODEL_FILE in names and tuple(shipped["label"]["classes"]) == run.classes
