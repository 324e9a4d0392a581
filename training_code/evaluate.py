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
  preprocess.py (no header, class index first), or a directory of such ``*.csv`` files.

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
    run_entry_point,
)
from features import PreprocessingError, read_preprocessing
from model import MODEL_FILE, load_model
from monitoring_contract import BASELINE_COLUMNS, BASELINES_FILE, MonitoringContract

LOG = get_logger("evaluate")

DEFAULT_MODEL_PATH = f"{contract.EVALUATE_MODEL_DIR}/model.tar.gz"
DEFAULT_TEST_PATH = f"{contract.EVALUATE_TEST_DIR}/{contract.split_file(contract.TEST)}"
DEFAULT_OUTPUT_DIR = contract.EVALUATION_DIR
DEFAULT_PREDICTIONS_DIR = contract.PREDICTIONS_DIR
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
) -> dict[str, Any]:
    """Write the report into ``output_dir`` and, given ``predictions_dir``, the predictions baseline there
    (the job always writes both; callers that only want the report leave it out). Returns the report."""
    x_test, y_test = load_split_csv(test_path, "test split")
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        directory = locate_model(model_path, Path(scratch))
        model, artifact = load_model(directory / MODEL_FILE)
        classes = model_classes(directory, artifact, required=predictions_dir is not None)
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
    path = output_dir / metrics.EVALUATION_FILE_NAME
    atomic_write_json(path, report)
    if predictions_dir is not None and predictions is not None:
        atomic_write_bytes(predictions_dir / BASELINES_FILE, predictions.encode("utf-8"))
        LOG.info("wrote %s: %d rows", predictions_dir / BASELINES_FILE, y_test.shape[0])
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
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_entry_point(main, "processing", LOG))
