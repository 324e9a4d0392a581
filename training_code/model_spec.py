"""The model-specific parts of training: what a team bringing its own model replaces.

train.py is the platform machinery (channels, checkpoints, resume, distributed launch, the loop, ONNX
export, serving files) and calls only the names below. The model's hyperparameters (names, types,
defaults, bounds) are :data:`contract.MODEL_HYPERPARAMETERS`; the architecture and its artifact format
are in :mod:`model`; the metric names SageMaker parses from the log are in :mod:`metrics`.

* :func:`build_model`: the network for ``in_features`` inputs and ``num_classes`` outputs (logits);
* :func:`loss`: the training loss of a batch (a scalar tensor);
* :func:`evaluate`: the validation metrics of the model, keyed as :data:`VALIDATION_METRICS`.
"""

from __future__ import annotations

from typing import Any

import metrics
import scoring
import torch
from model import TabularClassifier
from torch import nn
from torch.nn import functional

#: Key of :func:`evaluate`'s result -> the metric name train.py prints it under (metrics.METRIC_DEFINITIONS).
VALIDATION_METRICS = {
    "loss": metrics.VALIDATION_LOSS,
    "accuracy": metrics.VALIDATION_ACCURACY,
    "f1": metrics.VALIDATION_F1,
}


def build_model(in_features: int, num_classes: int, hp: Any) -> TabularClassifier:
    """The network, from the run's hyperparameters (``hp``: train.Hyperparameters)."""
    return TabularClassifier(in_features, num_classes, hp.hidden_units, hp.num_layers, hp.dropout)


def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return functional.cross_entropy(logits, labels)


@torch.no_grad()
def evaluate(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Loss, accuracy and F1 (binary: class 1; multiclass: macro) of ``model`` in eval mode."""
    model.eval()
    logits = torch.cat([model(features[i : i + 8192]) for i in range(0, features.shape[0], 8192)])
    mean_loss = float(functional.cross_entropy(logits, labels, reduction="mean"))
    proba = torch.softmax(logits.double(), dim=1).cpu().numpy()
    scores = scoring.classification_scores(labels.cpu().numpy(), proba)
    return {"loss": mean_loss, "accuracy": scores["accuracy"], "f1": scores["f1"]}
