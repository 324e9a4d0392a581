"""Serving handlers for the SageMaker PyTorch inference container: the eager-PyTorch reference.

The product serves with its own image (serve.py: ONNX Runtime, no torch). This module stays for two
reasons: it is what a user of the stock PyTorch container runs (the model.tar.gz that train.py writes
still works there unchanged), and it is the eager-PyTorch reference of the serving benchmark
(``serve.py --backend torch`` loads the model through :func:`model_fn` and scores with
:func:`probabilities`).

train.py copies this file and the modules it imports into ``<model dir>/code/``; a model that sets
``SAGEMAKER_PROGRAM=inference.py`` and ``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code`` makes the
inference toolkit call the four handlers below.

The wire format (requests of raw feature values as ``text/csv`` or ``application/json``, responses as
``application/json`` or ``text/csv``, the limits and every refusal) is :mod:`payload`'s, shared with the
ONNX server. A malformed request raises :class:`BadRequest`, which the toolkit turns into the HTTP status
(400, 406, 413 or 415) with the reason; the server keeps serving. ``input_fn`` accepts the body as
``str`` (the toolkit decodes bodies sent as exactly ``text/csv`` or ``application/json``) or as
``bytes``/``bytearray`` (under TorchServe every other body arrives as a ``bytearray``).

A limit of the toolkit, not of these handlers: a body sent as exactly ``text/csv`` or
``application/json`` (no parameters) is decoded as UTF-8 by the toolkit *before* ``input_fn`` runs, so
invalid UTF-8 there is the toolkit's own HTTP 500 (the ONNX server answers 400).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import payload
import torch
from features import PREPROCESSING_FILE, FeatureTransform, read_preprocessing
from model import MODEL_FILE, TabularClassifier, load_model

MAX_ROWS = payload.MAX_ROWS
MAX_BODY_BYTES = payload.MAX_BODY_BYTES

try:  # present in the SageMaker inference containers; absent on a plain machine
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - exercised only outside the container

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
            super().__init__(message)
            self.status_code = status_code
            self.message = message
            self.phrase = phrase


class BadRequest(_ToolkitError):
    """A request the model cannot score: the toolkit answers with this status code and message."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code, message, payload.PHRASES[status_code])
        self.status_code = status_code
        self.message = message

    @classmethod
    def of(cls, error: payload.BadRequest) -> BadRequest:
        return cls(error.message, error.status_code)


@dataclass(frozen=True)
class ServingModel:
    model: TabularClassifier
    transform: FeatureTransform
    classes: list[str]

    @property
    def input_names(self) -> list[str]:
        return self.transform.input_names


@dataclass(frozen=True)
class Predictions:
    """Class probabilities (one row per record, class-index order) and the class names."""

    probabilities: np.ndarray
    classes: list[str]


def model_fn(model_dir: str) -> ServingModel:
    directory = Path(model_dir)
    model, artifact = load_model(directory / MODEL_FILE)
    spec = read_preprocessing(directory / PREPROCESSING_FILE)  # names the file and key if malformed
    served = ServingModel(model, spec.transform, list(artifact["classes"]))
    _EXPECTED["names"] = served.input_names
    return served


def input_fn(request_body: str | bytes | bytearray, content_type: str | None) -> list[list[payload.Cell]]:
    """Parse a request into raw rows (one cell per input column); refuse what cannot be scored."""
    try:  # the widths are checked against the model in predict_fn
        return payload.parse_request(request_body, content_type, _expected_names(), check_width=False)
    except payload.BadRequest as error:
        raise BadRequest.of(error) from None


# input_fn has no access to the model; model_fn records the input columns (for JSON objects) here.
_EXPECTED: dict[str, list[str]] = {}


def _expected_names() -> list[str]:
    return _EXPECTED.get("names", [])


def probabilities(served: ServingModel, features: np.ndarray) -> np.ndarray:
    """The model's class probabilities (float32 ``[n, classes]``) for transformed features ``[n, d]``."""
    with torch.no_grad():
        logits = served.model(torch.as_tensor(np.asarray(features, dtype=np.float32)))
        return torch.softmax(logits, dim=1).numpy()


def predict_fn(rows: Sequence[Sequence[payload.Cell]], served: ServingModel) -> Predictions:
    try:
        payload.check_widths(rows, served.input_names)
        features = served.transform.transform(payload.as_text(rows))
    except payload.BadRequest as error:
        raise BadRequest.of(error) from None
    except ValueError as error:  # a cell that is not a number / a non-finite value
        raise BadRequest(str(error)) from None
    return Predictions(probabilities(served, features), served.classes)


def output_fn(predictions: Predictions, accept: str | None) -> tuple[str, str]:
    """The response body (text, as the toolkit has always received it) and its content type."""
    try:
        media = payload.response_type(accept)
    except payload.BadRequest as error:
        raise BadRequest.of(error) from None
    probabilities = predictions.probabilities
    body = payload.format_predictions(
        probabilities.tolist(), predictions.classes, media, probabilities.argmax(axis=1).tolist()
    )
    return body.decode("utf-8"), media
