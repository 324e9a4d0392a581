"""The tabular classifier and its artifact formats (``model.pt``, ``model.onnx``).

Architecture: ``num_layers`` blocks of ``Linear -> BatchNorm1d -> ReLU -> Dropout`` with
``hidden_units`` units each, then a ``Linear`` head producing one logit per class.

``model.pt`` is a ``torch.save`` dict loadable with ``torch.load(..., weights_only=True)``::

    {"format_version": 1,
     "architecture": {"in_features": 30, "num_classes": 2, "hidden_units": 64, "num_layers": 2,
                      "dropout": 0.1},
     "state_dict": {...},                 # TabularClassifier.state_dict() (CPU tensors)
     "classes": ["benign", "malignant"],  # class index -> label (from preprocessing.json, else "0".."K-1")
     "feature_names": [...],              # model input order (from preprocessing.json, else [])
     "hyperparameters": {...}}

``model.onnx``: input ``features`` float32 ``[batch, in_features]`` (dynamic batch axis), outputs
``logits`` and ``probabilities`` (softmax), both float32 ``[batch, num_classes]``; exported in eval mode.
"""

from __future__ import annotations

import copy
import inspect
import io
import tempfile
import warnings
from pathlib import Path
from typing import Any

import contract
import torch
from common import atomic_write_bytes
from torch import nn

MODEL_FILE = contract.MODEL_FILE
ONNX_FILE = contract.ONNX_FILE
MODEL_FORMAT_VERSION = 1
ONNX_OPSET = 17
ONNX_INPUT = "features"
ONNX_OUTPUTS = ("logits", "probabilities")


class TabularClassifier(nn.Module):
    """MLP for standardized tabular features; returns logits ``[batch, num_classes]``."""

    def __init__(
        self, in_features: int, num_classes: int, hidden_units: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.architecture: dict[str, Any] = {
            "in_features": in_features,
            "num_classes": num_classes,
            "hidden_units": hidden_units,
            "num_layers": num_layers,
            "dropout": dropout,
        }
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers):
            layers += [
                nn.Linear(width, hidden_units),
                nn.BatchNorm1d(hidden_units),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = hidden_units
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(features))


class _WithProbabilities(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(features)
        return logits, torch.softmax(logits, dim=1)


def model_artifact(
    model: TabularClassifier, classes: list[str], feature_names: list[str], hyperparameters: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format_version": MODEL_FORMAT_VERSION,
        "architecture": dict(model.architecture),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "classes": list(classes),
        "feature_names": list(feature_names),
        "hyperparameters": dict(hyperparameters),
    }


def save_model(path: Path, artifact: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(artifact, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[TabularClassifier, dict[str, Any]]:
    """Load ``model.pt`` (safe ``weights_only`` unpickling); returns the model in eval mode and the dict."""
    artifact = torch.load(path, map_location=device, weights_only=True)
    version = artifact.get("format_version") if isinstance(artifact, dict) else None
    if version != MODEL_FORMAT_VERSION:
        raise ValueError(
            f"{path}: unsupported model format version {version!r} (expected {MODEL_FORMAT_VERSION})"
        )
    model = TabularClassifier(**artifact["architecture"]).to(device)
    model.load_state_dict(artifact["state_dict"])
    model.eval()
    return model, artifact


def export_onnx(model: TabularClassifier, path: Path) -> None:
    """Export an eval-mode CPU copy with a dynamic batch axis (TorchScript-based exporter, no onnxscript)."""
    wrapper = _WithProbabilities(copy.deepcopy(model).cpu().eval()).eval()
    example = torch.zeros(2, model.architecture["in_features"], dtype=torch.float32)
    kwargs: dict[str, Any] = {
        "input_names": [ONNX_INPUT],
        "output_names": list(ONNX_OUTPUTS),
        "dynamic_axes": {ONNX_INPUT: {0: "batch"}, **{name: {0: "batch"} for name in ONNX_OUTPUTS}},
        "opset_version": ONNX_OPSET,
    }
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the dynamo exporter needs onnxscript, which the DLC may lack
    with tempfile.TemporaryDirectory(prefix="onnx-export-") as scratch:
        exported = Path(scratch) / ONNX_FILE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(wrapper, (example,), exported, **kwargs)
        atomic_write_bytes(path, exported.read_bytes())
