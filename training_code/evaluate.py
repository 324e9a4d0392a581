"""SageMaker processing job: score the trained model on the test split and write ``evaluation.json``.

Run as ``python evaluate.py [options]`` with the whole ``training_code/`` directory as the code input
(it imports ``model``, ``scoring``, ``metrics``, ``features``, ``monitoring_contract`` and ``common``).

Inputs
------
* ``--model_path`` (default ``/opt/ml/processing/model/model.tar.gz``): the training job's
  ``model.tar.gz`` (extracted to a temporary directory, rejecting absolute paths and ``..``), or a
  directory holding either ``model.tar.gz`` or an extracted ``model.pt``, with the ``preprocessing.json``
  training shipped beside it (its ``label.classes`` name the classes; they must equal ``model.pt``'s);
* ``--test_path`` (default ``/opt/ml/processing/test/test.csv``): the test split written by
  preprocess.py (no header, class index first), or a directory of such ``*.csv`` files;
* ``--scoring_path`` (default ``/opt/ml/processing/scoring/scoring.csv``, ``contract.EVALUATE_SCORING_DIR``):
  Preprocess's ``scoring.csv`` (the same test records as the endpoint receives them: raw cells, request
  order, no header; line i is row i of the test split), or its directory. Read for the data-quality
  baseline only.

Outputs
-------
``--predictions_dir`` (default ``/opt/ml/processing/predictions``) / ``predictions.csv``: the
model-quality baseline dataset (Model Monitor's QualityCheck step reads it): a header row
``prediction,probability,label`` (:data:`monitoring_contract.BASELINE_COLUMNS`), then one row per test
record, in test-split order (the order of Preprocess's ``scoring.csv``)::

    prediction,probability,label        # binary (breast cancer: 1 = "benign", classes[1])
    0,0.03347001041093705,0
    1,0.8025435097389816,1
    prediction,probability,label        # multiclass (wine)
    class_0,0.5147692100831356,class_0

``prediction`` is :meth:`~monitoring_contract.MonitoringContract.predicted_value` of the served label
(``1``/``0`` for two classes: the positive class's probability above 0.5; the class name for more),
``probability`` the positive class's probability (binary) or the predicted class's (multiclass), and
``label`` the actual class as a ground-truth record carries it
(:meth:`~monitoring_contract.MonitoringContract.ground_truth_value`). The probabilities are those the
report is computed from, so the accuracy of these rows is the report's accuracy.

``--data_quality_dir`` (default ``/opt/ml/processing/data_quality``, ``contract.DATA_QUALITY_DIR``) /
``data_quality.csv`` (:data:`monitoring_contract.DATA_QUALITY_BASELINE_FILE`): the data-quality baseline
dataset, laid out as Model Monitor's data-quality job reads a captured record (the response's columns
first, then the request's: ``output_data + "," + input_data``). The header is
:attr:`~monitoring_contract.MonitoringContract.response_columns` then the input columns of the model's
``preprocessing.json`` (raw names, request order); each row is, for one test record, the CSV line the
endpoint answers (:func:`payload.format_predictions`: the served label, then each class's probability as
``repr``) followed by the record's raw cells from ``scoring.csv``::

    predicted_label,probability_0,probability_1,mean radius,mean texture,...,worst fractal dimension
    malignant,0.9665271639823914,0.03347283601760864,20.57,17.77,...,0.08902

The probabilities are the report's (PyTorch, float64 softmax); the endpoint's (ONNX, float32) differ by
float rounding only.

``--output_dir`` (default ``/opt/ml/processing/evaluation``) / ``evaluation.json`` in SageMaker's
model-quality format (see :mod:`metrics` for the layout and :func:`metrics.evaluation_json_path`)::

    {"binary_classification_metrics": {
        "accuracy":  {"value": 0.9651, "standard_deviation": 0.0197},
        "precision": {...}, "recall": {...}, "f1": {...}, "auc": {...},
        "confusion_matrix": {"benign": {"benign": 53, "malignant": 1}, "malignant": {...}}}}

For more than two classes the section is ``multiclass_classification_metrics`` with macro
``precision``/``recall``/``f1``/``auc`` (one-vs-rest) plus ``weighted_precision``/``weighted_recall``/
``weighted_f1``. ``standard_deviation`` is a bootstrap estimate: the metric's standard deviation over
``--bootstrap_samples`` (default 200) resamples of the test rows drawn with ``--seed``; it is the
string ``"NaN"`` when bootstrapping is disabled (``--bootstrap_samples 0``) or undefined, and so is a
``value`` that is undefined (AUC when the test split has a single class). The confusion matrix maps
true label -> predicted label -> count, with the class labels from the model.

Argument errors (``--bootstrap_samples abc``, an unknown option) exit with code 2 and their message goes
to stderr and to ``/opt/ml/output/message`` (the processing job's ``ExitMessage``), like every usage
error (see :mod:`common`).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import contract
import metrics
import numpy as np
import payload
import scoring
import torch
from common import (
    EXIT_OK,
    ArgumentParser,
    UsageError,
    atomic_write_bytes,
    atomic_write_json,
    get_logger,
    load_split_csv,
    resolve_csv_files,
    run_entry_point,
)
from features import PreprocessingError, read_preprocessing
from model import MODEL_FILE, load_model
from monitoring_contract import (
    BASELINE_COLUMNS,
    BASELINES_FILE,
    DATA_QUALITY_BASELINE_FILE,
    MonitoringContract,
)

LOG = get_logger("evaluate")

DEFAULT_MODEL_PATH = f"{contract.EVALUATE_MODEL_DIR}/model.tar.gz"
DEFAULT_TEST_PATH = f"{contract.EVALUATE_TEST_DIR}/{contract.split_file(contract.TEST)}"
DEFAULT_OUTPUT_DIR = contract.EVALUATION_DIR
DEFAULT_PREDICTIONS_DIR = contract.PREDICTIONS_DIR
DEFAULT_SCORING_PATH = f"{contract.EVALUATE_SCORING_DIR}/{contract.split_file(contract.SCORING)}"
DEFAULT_DATA_QUALITY_DIR = contract.DATA_QUALITY_DIR
MODEL_ARCHIVE = "model.tar.gz"


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract a tar archive, refusing members that would land outside ``destination``."""
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            target = (destination / member.name).resolve()
            if not target.is_relative_to(destination.resolve()) or member.issym() or member.islnk():
                raise UsageError(f"{archive}: refusing unsafe archive member {member.name!r}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:  # pragma: no cover - Python without extraction filters; members were checked above
            tar.extractall(destination)


def locate_model(model_path: Path, scratch: Path) -> Path:
    """The directory holding ``model.pt``, extracting ``model.tar.gz`` into ``scratch`` if needed."""
    if model_path.is_file():
        safe_extract(model_path, scratch)
        directory = scratch
    elif model_path.is_dir():
        if (model_path / MODEL_FILE).is_file():
            return model_path
        if not (model_path / MODEL_ARCHIVE).is_file():
            raise UsageError(f"--model_path {model_path} holds neither {MODEL_FILE} nor {MODEL_ARCHIVE}")
        safe_extract(model_path / MODEL_ARCHIVE, scratch)
        directory = scratch
    else:
        raise UsageError(f"--model_path {model_path} does not exist")
    if not (directory / MODEL_FILE).is_file():
        raise UsageError(f"the model archive {model_path} does not contain {MODEL_FILE} at its top level")
    return directory


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else metrics.UNDEFINED_VALUE


def build_report(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], bootstrap_samples: int, seed: int
) -> dict[str, Any]:
    """The evaluation.json content for true class indices and predicted class probabilities."""
    num_classes = proba.shape[1]
    values = scoring.classification_scores(y_true, proba)
    if bootstrap_samples > 0:
        deviations = scoring.bootstrap_standard_deviations(y_true, proba, bootstrap_samples, seed)
    else:
        deviations = {name: float("nan") for name in values}
    section: dict[str, Any] = {
        name: {
            metrics.VALUE_KEY: _number(values[name]),
            metrics.STANDARD_DEVIATION_KEY: _number(deviations[name]),
        }
        for name in metrics.evaluation_metrics(num_classes)
    }
    cm = scoring.confusion_matrix(y_true, np.argmax(proba, axis=1), num_classes)
    section[metrics.CONFUSION_MATRIX_KEY] = {
        classes[t]: {classes[p]: int(cm[t, p]) for p in range(num_classes)} for t in range(num_classes)
    }
    return {metrics.evaluation_section(num_classes): section}


def model_classes(directory: Path, artifact: dict[str, Any], *, required: bool) -> list[str]:
    """The model's class labels, in class-index order: ``label.classes`` of the ``preprocessing.json``
    shipped beside ``model.pt`` (what the endpoint answers with), which must equal the classes ``model.pt``
    was trained with. Without the file (a model trained without preprocess.py's transform, which cannot
    be served) ``model.pt``'s own classes, unless ``required``: the predictions baseline speaks in the
    served classes, so it needs the file."""
    path = directory / contract.PREPROCESSING_FILE
    stored = artifact.get("classes")
    if not path.is_file():
        if required:
            raise UsageError(
                f"the model has no {contract.PREPROCESSING_FILE} beside {MODEL_FILE}; the predictions "
                "baseline needs its label classes (the classes the endpoint answers with)"
            )
        num_classes = artifact["architecture"]["num_classes"]
        return [str(c) for c in stored] if stored else [str(i) for i in range(num_classes)]
    try:
        classes = list(read_preprocessing(path).classes)
    except PreprocessingError as error:  # names the file and the key
        raise UsageError(str(error)) from None
    if stored is not None and [str(c) for c in stored] != classes:
        raise UsageError(
            f"{contract.PREPROCESSING_FILE} names the classes {classes} but {MODEL_FILE} was trained with "
            f"{list(stored)}; allowed: the same classes in the same order"
        )
    return classes


def format_predictions_csv(proba: np.ndarray, y_true: np.ndarray, classes: Sequence[str]) -> str:
    """The model-quality baseline dataset (see the module doc): header, then one row per test record."""
    try:
        monitoring = MonitoringContract(tuple(classes))
    except ValueError as error:
        raise UsageError(f"the model's classes: {error}") from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BASELINE_COLUMNS)
    for probabilities, true_class in zip(proba.tolist(), y_true.tolist(), strict=True):
        writer.writerow(monitoring.baseline_row(probabilities, classes[true_class]))
    return out.getvalue()


def model_input_columns(directory: Path) -> list[str]:
    """The raw input columns the endpoint takes, in request order: the transform's input columns in the
    ``preprocessing.json`` shipped beside ``model.pt`` (what the server reads requests with)."""
    path = directory / contract.PREPROCESSING_FILE
    if not path.is_file():
        raise UsageError(
            f"the model has no {contract.PREPROCESSING_FILE} beside {MODEL_FILE}; the data-quality baseline "
            "needs its input columns (the columns the endpoint receives)"
        )
    try:
        return read_preprocessing(path).transform.input_names
    except PreprocessingError as error:
        raise UsageError(str(error)) from None


def read_scoring_rows(location: Path, input_columns: Sequence[str], records: int) -> list[list[str]]:
    """The raw test records (``scoring.csv``, or every ``*.csv`` of a directory in name order), checked
    against the model's input columns and the test split's row count (the same records, line for line)."""
    rows: list[list[str]] = []
    for file in resolve_csv_files(location, "--scoring_path"):
        with file.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row:
                    continue
                if len(row) != len(input_columns):
                    raise UsageError(
                        f"--scoring_path {file}: line {number} has {len(row)} cells; allowed: "
                        f"{len(input_columns)}, one per input column of the model "
                        f"({', '.join(input_columns)})"
                    )
                rows.append(row)
    if len(rows) != records:
        raise UsageError(
            f"--scoring_path {location}: {len(rows)} records but the test split has {records}; allowed: the "
            "same records (Preprocess's scoring output of the same run)"
        )
    return rows


def format_data_quality_csv(
    proba: np.ndarray, classes: Sequence[str], input_columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> str:
    """The data-quality baseline dataset (see the module doc): per record, the endpoint's CSV answer line,
    then the record's raw input cells, under :meth:`MonitoringContract.data_quality_header`."""
    try:
        header = MonitoringContract(tuple(classes)).data_quality_header(input_columns)
    except ValueError as error:
        raise UsageError(f"the data-quality baseline: {error}") from None
    answer = payload.format_predictions(proba.tolist(), classes, contract.CSV_CONTENT_TYPE)
    answered = [line for line in csv.reader(io.StringIO(answer.decode("utf-8"))) if line]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for line, row in zip(answered, rows, strict=True):
        writer.writerow([*line, *row])
    return out.getvalue()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description="Evaluate the model on the test split (SageMaker processing).")
    parser.add_argument("--model_path", "--model-path", default=DEFAULT_MODEL_PATH)
    parser.add_argument("--test_path", "--test-path", default=DEFAULT_TEST_PATH)
    parser.add_argument("--output_dir", "--output-dir", default=DEFAULT_OUTPUT_DIR)
    parser.add_argument(
        "--predictions_dir",
        "--predictions-dir",
        default=DEFAULT_PREDICTIONS_DIR,
        help=f"where {BASELINES_FILE} (the model-quality baseline dataset) goes",
    )
    parser.add_argument(
        "--scoring_path",
        "--scoring-path",
        default=DEFAULT_SCORING_PATH,
        help="Preprocess's scoring.csv (the raw test records), or its directory",
    )
    parser.add_argument(
        "--data_quality_dir",
        "--data-quality-dir",
        default=DEFAULT_DATA_QUALITY_DIR,
        help=f"where {DATA_QUALITY_BASELINE_FILE} (the data-quality baseline dataset) goes",
    )
    parser.add_argument("--bootstrap_samples", "--bootstrap-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.bootstrap_samples < 0:
        raise UsageError(f"--bootstrap_samples must be >= 0, got {args.bootstrap_samples}")
    return args


def evaluate(
    model_path: Path,
    test_path: Path,
    output_dir: Path,
    bootstrap_samples: int,
    seed: int,
    predictions_dir: Path | None = None,
    data_quality: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """Write the report into ``output_dir``; given ``predictions_dir``, the predictions baseline there; given
    ``data_quality`` = ``(scoring_path, data_quality_dir)``, the data-quality baseline built from the raw
    records of ``scoring_path`` into ``data_quality_dir`` (the job always writes all three; callers that
    only want the report leave them out). Everything is checked before anything is written. Returns the
    report."""
    x_test, y_test = load_split_csv(test_path, "test split")
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        directory = locate_model(model_path, Path(scratch))
        model, artifact = load_model(directory / MODEL_FILE)
        served = predictions_dir is not None or data_quality is not None
        classes = model_classes(directory, artifact, required=served)
        input_columns = model_input_columns(directory) if data_quality is not None else []
    in_features = artifact["architecture"]["in_features"]
    num_classes = artifact["architecture"]["num_classes"]
    if x_test.shape[1] != in_features:
        raise UsageError(f"the test split has {x_test.shape[1]} features but the model expects {in_features}")
    if int(y_test.max()) >= num_classes:
        raise UsageError(f"the test split has class index {int(y_test.max())}; the model knows {num_classes}")
    if len(classes) != num_classes:
        raise UsageError(f"the model has {num_classes} outputs but names {len(classes)} classes {classes}")
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test))
    proba = torch.softmax(logits.double(), dim=1).numpy()
    report = build_report(y_test, proba, classes, bootstrap_samples, seed)
    predictions = format_predictions_csv(proba, y_test, classes) if predictions_dir is not None else None
    quality = None
    if data_quality is not None:
        rows = read_scoring_rows(data_quality[0], input_columns, y_test.shape[0])
        quality = format_data_quality_csv(proba, classes, input_columns, rows)
    path = output_dir / metrics.EVALUATION_FILE_NAME
    atomic_write_json(path, report)
    if predictions_dir is not None and predictions is not None:
        atomic_write_bytes(predictions_dir / BASELINES_FILE, predictions.encode("utf-8"))
        LOG.info("wrote %s: %d rows", predictions_dir / BASELINES_FILE, y_test.shape[0])
    if data_quality is not None and quality is not None:
        atomic_write_bytes(data_quality[1] / DATA_QUALITY_BASELINE_FILE, quality.encode("utf-8"))
        LOG.info("wrote %s: %d rows", data_quality[1] / DATA_QUALITY_BASELINE_FILE, y_test.shape[0])
    section = report[metrics.evaluation_section(num_classes)]
    LOG.info(
        "wrote %s: %d test rows, %s",
        path,
        y_test.shape[0],
        ", ".join(
            f"{name}={section[name][metrics.VALUE_KEY]}" for name in metrics.evaluation_metrics(num_classes)
        ),
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    evaluate(
        Path(args.model_path),
        Path(args.test_path),
        Path(args.output_dir),
        args.bootstrap_samples,
        args.seed,
        Path(args.predictions_dir),
        (Path(args.scoring_path), Path(args.data_quality_dir)),
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_entry_point(main, "processing", LOG))
