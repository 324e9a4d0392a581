"""Classification metrics in numpy only (no scikit-learn in the containers).

The definitions follow scikit-learn's defaults, and the tests cross-check them against it:

* precision / recall / F1 of a class use ``zero_division=0`` (an undefined ratio counts as 0);
* binary problems report the positive class (index 1);
* multiclass ``precision``/``recall``/``f1`` are macro averages over the classes present in the true
  or predicted labels, ``weighted_*`` weight each class by its support;
* ROC-AUC is the Mann-Whitney statistic with average ranks for ties; multiclass AUC is the macro
  average of one-vs-rest AUCs over the classes present in the true labels. An AUC that is undefined
  (only one class present) is NaN.
"""

from __future__ import annotations

import numpy as np
from metrics import evaluation_metrics


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[true, predicted]`` counts, shape ``[num_classes, num_classes]``."""
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix (zero_division=0)."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denominator = 2 * tp + (predicted - tp) + (support - tp)
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return precision, recall, f1, support


def binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of boolean labels ``positive`` against ``scores``; NaN when a class is absent."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    _, inverse, counts = np.unique(scores[order], return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    average_ranks = ends - (counts - 1) / 2.0
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = average_ranks[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary AUC of class 1, or macro one-vs-rest AUC over the classes present in ``y_true``."""
    num_classes = proba.shape[1]
    if num_classes == 2:
        return binary_auc(y_true == 1, proba[:, 1])
    values = [binary_auc(y_true == c, proba[:, c]) for c in np.unique(y_true)]
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def classification_scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """The report's metrics (names as in :func:`metrics.evaluation_metrics`) for class probabilities.

    ``y_true``: int class indices ``[n]``; ``proba``: ``[n, K]`` scores (the prediction is the argmax).
    """
    num_classes = proba.shape[1]
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.argmax(proba, axis=1).astype(np.int64)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1, support = per_class_scores(cm)
    scores: dict[str, float] = {"accuracy": float(np.mean(y_true == y_pred))}
    if num_classes == 2:
        scores.update(precision=float(precision[1]), recall=float(recall[1]), f1=float(f1[1]))
    else:
        present = (support > 0) | (cm.sum(axis=0) > 0)
        weights = support / support.sum()
        scores.update(
            precision=float(precision[present].mean()),
            recall=float(recall[present].mean()),
            f1=float(f1[present].mean()),
            weighted_precision=float(np.sum(precision * weights)),
            weighted_recall=float(np.sum(recall * weights)),
            weighted_f1=float(np.sum(f1 * weights)),
        )
    scores["auc"] = roc_auc(y_true, proba)
    return {name: scores[name] for name in evaluation_metrics(num_classes)}


def bootstrap_standard_deviations(
    y_true: np.ndarray, proba: np.ndarray, samples: int, seed: int
) -> dict[str, float]:
    """Standard deviation (ddof=1) of each metric over ``samples`` bootstrap resamples of the rows.

    Resamples where a metric is undefined (e.g. AUC with one class) are left out for that metric;
    a metric with fewer than two defined resamples gets NaN.
    """
    rng = np.random.default_rng(seed)
    n = y_true.shape[0]
    collected: dict[str, list[float]] = {}
    for _ in range(samples):
        rows = rng.integers(0, n, size=n)
        for name, value in classification_scores(y_true[rows], proba[rows]).items():
            collected.setdefault(name, []).append(value)
    result: dict[str, float] = {}
    for name, values in collected.items():
        finite = np.array([v for v in values if not np.isnan(v)], dtype=np.float64)
        result[name] = float(finite.std(ddof=1)) if finite.size >= 2 else float("nan")
    return result
