"""The metric contracts between the runtime code and the SageMaker pipeline (stdlib only).

This module is imported in two places and must therefore stay free of third-party imports:

* inside the training container, as ``import metrics`` (``train.py`` prints its per-epoch metrics with
  :func:`format_metric`, ``evaluate.py`` writes the evaluation report with the constants below);
* by the CDK stack, as ``training_code.metrics``, to build the training job's ``MetricDefinitions``,
  the tuning objective, and the pipeline condition step's ``JsonGet`` path.

Training metrics (CloudWatch / SageMaker ``MetricDefinitions``)
---------------------------------------------------------------
SageMaker scans the training job's stdout/stderr with each ``Regex`` of :data:`METRIC_DEFINITIONS`; the
first capture group is the value. ``train.py`` emits one line per metric and epoch, e.g.::

    METRIC train:loss=0.23591648042201996
    METRIC validation:accuracy=0.9647058823529412

The value is Python's shortest round-trip ``repr`` of the float, so a value parsed from the log equals
the logged float exactly. The regexes accept signs, decimals and exponents (``1e-05``, ``-2.5E+03``).
Non-finite values (``nan``, ``inf``) are printed as such and deliberately *not* matched: SageMaker
cannot store them, so such an epoch simply has no data point.

Evaluation report (``evaluation.json``)
---------------------------------------
``evaluate.py`` writes SageMaker's model-quality metrics format::

    {"binary_classification_metrics": {            # or "multiclass_classification_metrics"
        "accuracy": {"value": 0.95, "standard_deviation": 0.012},
        "precision": {...}, "recall": {...}, "f1": {...}, "auc": {...},
        "confusion_matrix": {"0": {"0": 40, "1": 2}, "1": {"0": 1, "1": 43}}}}

The section is :data:`BINARY_SECTION` for two classes and :data:`MULTICLASS_SECTION` otherwise, so the
JSON path of a metric depends on the problem; :func:`evaluation_json_path` returns it
(``binary_classification_metrics.accuracy.value``) for the pipeline's ``JsonGet`` condition.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal

# --------------------------------------------------------------------------------------------------
# Training metrics
# --------------------------------------------------------------------------------------------------

#: Prefix of every metric line; keeps the regexes from matching unrelated log text.
METRIC_LINE_PREFIX: Final = "METRIC "

#: A decimal float with optional sign, fraction and exponent: 3, -0.5, .5, 2., 1e-05, 6.02E+23.
FLOAT_REGEX: Final = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"

TRAIN_LOSS: Final = "train:loss"
VALIDATION_LOSS: Final = "validation:loss"
VALIDATION_ACCURACY: Final = "validation:accuracy"
VALIDATION_F1: Final = "validation:f1"

#: Every metric train.py reports, in the order it reports them each epoch.
METRIC_NAMES: Final[tuple[str, ...]] = (TRAIN_LOSS, VALIDATION_LOSS, VALIDATION_ACCURACY, VALIDATION_F1)

#: The hyperparameter-tuning / model-selection objective and its direction.
OBJECTIVE_METRIC: Final = VALIDATION_ACCURACY
OBJECTIVE_TYPE: Final[Literal["Maximize", "Minimize"]] = "Maximize"

# SageMaker's limits on a metric definition (CreateTrainingJob MetricDefinition).
_MAX_NAME_LENGTH: Final = 255
_MAX_REGEX_LENGTH: Final = 500
_NAME_PATTERN: Final = re.compile(r"[^\r\n=]+")


_REGEX_SPECIALS: Final = frozenset(".^$*+?{}[]()|\\")


def _escape(text: str) -> str:
    """Escape only regex metacharacters (re.escape also escapes spaces, which not every engine accepts)."""
    return "".join("\\" + c if c in _REGEX_SPECIALS else c for c in text)


def metric_regex(name: str) -> str:
    """The regex that captures the value of metric ``name`` from a line printed by :func:`format_metric`."""
    _check_name(name)
    return _escape(METRIC_LINE_PREFIX + name + "=") + "(" + FLOAT_REGEX + ")"


def format_metric(name: str, value: float) -> str:
    """The log line for one metric value, e.g. ``METRIC validation:accuracy=0.95``.

    The value is written with ``repr`` (shortest string that round-trips), so parsing the line with the
    metric's regex gives back exactly ``float(value)``.
    """
    _check_name(name)
    number = float(value)
    text = repr(number) if math.isfinite(number) else str(number)
    return f"{METRIC_LINE_PREFIX}{name}={text}"


def _check_name(name: str) -> None:
    if len(name) > _MAX_NAME_LENGTH or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"metric name {name!r} is invalid: it must be 1..{_MAX_NAME_LENGTH} characters on one line "
            "and contain no '='"
        )


#: SageMaker ``AlgorithmSpecification.MetricDefinitions`` for the training job.
METRIC_DEFINITIONS: Final[list[dict[str, str]]] = [
    {"Name": name, "Regex": metric_regex(name)} for name in METRIC_NAMES
]

for _definition in METRIC_DEFINITIONS:  # a broken contract must fail at import, not at job creation
    if len(_definition["Regex"]) > _MAX_REGEX_LENGTH:
        raise AssertionError(f"metric regex for {_definition['Name']} exceeds {_MAX_REGEX_LENGTH} characters")
    if re.compile(_definition["Regex"]).groups != 1:
        raise AssertionError(f"metric regex for {_definition['Name']} must have exactly one capture group")

# --------------------------------------------------------------------------------------------------
# Evaluation report
# --------------------------------------------------------------------------------------------------

#: File name evaluate.py writes into its output directory (/opt/ml/processing/evaluation).
EVALUATION_FILE_NAME: Final = "evaluation.json"
#: The processing output name the pipeline should give that directory (PropertyFile output_name).
EVALUATION_OUTPUT_NAME: Final = "evaluation"

BINARY_SECTION: Final = "binary_classification_metrics"
MULTICLASS_SECTION: Final = "multiclass_classification_metrics"

VALUE_KEY: Final = "value"
STANDARD_DEVIATION_KEY: Final = "standard_deviation"
CONFUSION_MATRIX_KEY: Final = "confusion_matrix"
#: Written instead of a number when a value is undefined (e.g. AUC with a single class in the test set,
#: or standard_deviation with bootstrapping disabled), as in SageMaker's own reports.
UNDEFINED_VALUE: Final = "NaN"

#: Metrics of a binary report. precision/recall/f1 are those of the positive class (index 1).
BINARY_METRICS: Final[tuple[str, ...]] = ("accuracy", "precision", "recall", "f1", "auc")
#: Metrics of a multiclass report. precision/recall/f1/auc are macro averages (auc: one-vs-rest);
#: the weighted_* ones weight each class by its support.
MULTICLASS_METRICS: Final[tuple[str, ...]] = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
)

#: The metric the pipeline's quality gate compares against its threshold.
EVALUATION_GATE_METRIC: Final = "accuracy"


def evaluation_section(num_classes: int) -> str:
    """The top-level key of evaluation.json for a problem with ``num_classes`` classes."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return BINARY_SECTION if num_classes == 2 else MULTICLASS_SECTION


def evaluation_metrics(num_classes: int) -> tuple[str, ...]:
    """The metric names evaluation.json holds for a problem with ``num_classes`` classes."""
    return BINARY_METRICS if evaluation_section(num_classes) == BINARY_SECTION else MULTICLASS_METRICS


def evaluation_json_path(metric: str = EVALUATION_GATE_METRIC, *, num_classes: int) -> str:
    """The JSON path (``JsonGet``/``PropertyFile`` syntax) of a metric's value in evaluation.json.

    >>> evaluation_json_path("accuracy", num_classes=2)
    'binary_classification_metrics.accuracy.value'
    >>> evaluation_json_path("accuracy", num_classes=3)
    'multiclass_classification_metrics.accuracy.value'
    """
    allowed = evaluation_metrics(num_classes)
    if metric not in allowed:
        raise ValueError(f"metric {metric!r} is not in the evaluation report; allowed: {', '.join(allowed)}")
    return f"{evaluation_section(num_classes)}.{metric}.{VALUE_KEY}"
