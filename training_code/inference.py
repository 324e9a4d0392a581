"""Serving handlers for the SageMaker PyTorch inference container (the registered model's entry point).

train.py copies this file and the modules it imports into ``<model dir>/code/``; the registered model
package sets ``SAGEMAKER_PROGRAM=inference.py`` and ``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``,
so the inference toolkit calls the four handlers below.

Requests carry *raw* feature values, exactly as the data arrived in the lake (the feature transform
fitted by preprocess.py, shipped as ``preprocessing.json``, is applied here):

* ``text/csv``: one row per line, no header, the columns in ``input_names`` order;
* ``application/json``: ``{"instances": [[...], ...]}`` (lists in ``input_names`` order) or
  ``{"instances": [{"<input name>": value, ...}, ...]}``.

The response (``application/json``) is ``{"predictions": [{"label", "class_index", "probabilities"}]}``.

A malformed request raises :class:`BadRequest`, which the toolkit turns into HTTP 400 with the reason
(415 for an unsupported content type, 406 for an unsupported accept type); the server keeps serving.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from features import FeatureTransform
from model import MODEL_FILE, TabularClassifier, load_model

PREPROCESSING_FILE = "preprocessing.json"
MAX_ROWS = 10_000

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
        phrase = {400: "Bad Request", 406: "Not Acceptable", 415: "Unsupported Media Type"}[status_code]
        super().__init__(status_code, message, phrase)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class ServingModel:
    model: TabularClassifier
    transform: FeatureTransform
    classes: list[str]

    @property
    def input_names(self) -> list[str]:
        return self.transform.input_names


def model_fn(model_dir: str) -> ServingModel:
    directory = Path(model_dir)
    model, artifact = load_model(directory / MODEL_FILE)
    spec = json.loads((directory / PREPROCESSING_FILE).read_text())
    served = ServingModel(model, FeatureTransform.from_dict(spec["transform"]), list(artifact["classes"]))
    _EXPECTED["names"] = served.input_names
    return served


def _cell(value: Any, column: str, row: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"row {row}, column {column!r}: got {value!r}; allowed: a number, a string or null")
    return str(value)


def _rows_from_json(body: Any, names: list[str]) -> list[list[str]]:
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise BadRequest('JSON body: allowed: {"instances": [[...], ...]} or {"instances": [{...}, ...]}')
    rows = []
    for index, instance in enumerate(body["instances"], start=1):
        if isinstance(instance, dict):
            unknown = sorted(set(instance) - set(names))
            if unknown:
                raise BadRequest(f"row {index}: unknown feature(s) {unknown}; allowed: {names}")
            rows.append([_cell(instance.get(name), name, index) for name in names])
        elif isinstance(instance, list):
            rows.append(
                [_cell(v, names[i] if i < len(names) else f"#{i}", index) for i, v in enumerate(instance)]
            )
        else:
            raise BadRequest(f"row {index}: got {type(instance).__name__}; allowed: a list or an object")
    return rows


def input_fn(request_body: str | bytes, content_type: str) -> list[list[str]]:
    """Parse a request into raw rows (strings, one per input column); refuse what cannot be scored."""
    text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "text/csv":
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    elif media_type == "application/json":
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            raise BadRequest(f"JSON body is not valid JSON: {error}") from None
        rows = _rows_from_json(body, _expected_names())
    else:
        raise BadRequest(f"content type {content_type!r}; allowed: text/csv, application/json", 415)
    if not rows:
        raise BadRequest("the request holds no rows")
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"{len(rows)} rows; allowed: at most {MAX_ROWS} per request (use batch transform)")
    return rows


# input_fn has no access to the model; model_fn records the input columns (for JSON objects) here.
_EXPECTED: dict[str, list[str]] = {}


def _expected_names() -> list[str]:
    return _EXPECTED.get("names", [])


def predict_fn(rows: list[list[str]], served: ServingModel) -> list[dict[str, Any]]:
    names = served.input_names
    for index, row in enumerate(rows, start=1):
        if len(row) != len(names):
            raise BadRequest(f"row {index}: {len(row)} values; allowed: {len(names)} in the order {names}")
    try:
        features = served.transform.transform(rows)
    except ValueError as error:  # a cell that is not a number / an unknown category
        raise BadRequest(str(error)) from None
    with torch.no_grad():
        logits = served.model(torch.as_tensor(np.asarray(features, dtype=np.float32)))
        probabilities = torch.softmax(logits, dim=1).numpy()
    predictions = []
    for row in probabilities:
        index = int(row.argmax())
        predictions.append(
            {
                "label": served.classes[index],
                "class_index": index,
                "probabilities": {c: float(p) for c, p in zip(served.classes, row, strict=True)},
            }
        )
    return predictions


def output_fn(predictions: list[dict[str, Any]], accept: str) -> tuple[str, str]:
    media_type = (accept or "application/json").split(";")[0].strip().lower()
    if media_type not in ("application/json", "*/*"):
        raise BadRequest(f"accept type {accept!r}; allowed: application/json", 406)
    return json.dumps({"predictions": predictions}), "application/json"
