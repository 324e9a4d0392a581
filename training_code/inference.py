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
(413 for a body over :data:`MAX_BODY_BYTES`, 415 for an unsupported content type or charset, 406 for
an unsupported accept type); the server keeps serving. ``input_fn`` accepts:

* the body as ``str`` (the toolkit decodes bodies sent as exactly ``text/csv`` or ``application/json``)
  or as ``bytes``/``bytearray`` (under TorchServe every other body arrives as a ``bytearray``);
* content types with parameters (``text/csv; charset=utf-8``); a charset other than UTF-8 (or its ASCII
  subset) is 415;
* limits checked before the parsing work: at most :data:`MAX_BODY_BYTES` (SageMaker's 6 MB real-time
  payload limit), at most :data:`MAX_ROWS` rows (CSV parsing stops at row ``MAX_ROWS + 1``; a JSON
  body's ``instances`` are counted before any row is built);
* every parse failure is a 400 with its reason: invalid UTF-8, invalid or too deeply nested JSON, a CSV
  field over the csv module's ``field_size_limit``.

A limit of the toolkit, not of these handlers: a body sent as exactly ``text/csv`` or
``application/json`` (no parameters) is decoded as UTF-8 by the toolkit *before* ``input_fn`` runs, so
invalid UTF-8 there is the toolkit's own HTTP 500.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from features import PREPROCESSING_FILE, FeatureTransform, read_preprocessing
from model import MODEL_FILE, TabularClassifier, load_model

MAX_ROWS = 10_000
#: SageMaker's payload limit for real-time inference (InvokeEndpoint): 6 MB.
MAX_BODY_BYTES = 6 * 1024 * 1024
#: Charsets a content type may name (UTF-8 and its ASCII subset).
CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")

try:  # present in the SageMaker inference containers; absent on a plain machine
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - exercised only outside the container

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
            super().__init__(message)
            self.status_code = status_code
            self.message = message
            self.phrase = phrase


_PHRASES = {
    400: "Bad Request",
    406: "Not Acceptable",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
}


class BadRequest(_ToolkitError):
    """A request the model cannot score: the toolkit answers with this status code and message."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code, message, _PHRASES[status_code])
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
    spec = read_preprocessing(directory / PREPROCESSING_FILE)  # names the file and key if malformed
    served = ServingModel(model, spec.transform, list(artifact["classes"]))
    _EXPECTED["names"] = served.input_names
    return served


def _cell(value: Any, column: str, row: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"row {row}, column {column!r}: got {value!r}; allowed: a number, a string or null")
    return str(value)


def _check_row_count(rows: int, counted_all: bool = True) -> None:
    if rows > MAX_ROWS:
        found = str(rows) if counted_all else f"over {MAX_ROWS}"
        raise BadRequest(f"{found} rows; allowed: at most {MAX_ROWS} per request (use batch transform)")


def _rows_from_json(body: Any, names: list[str]) -> list[list[str]]:
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise BadRequest('JSON body: allowed: {"instances": [[...], ...]} or {"instances": [{...}, ...]}')
    instances = body["instances"]
    _check_row_count(len(instances))  # before any row is built
    rows = []
    for index, instance in enumerate(instances, start=1):
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


def _rows_from_csv(text: str) -> list[list[str]]:
    """The non-empty rows of a CSV body; parsing stops at row ``MAX_ROWS + 1``."""
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(itertools.islice((row for row in reader if row), MAX_ROWS + 1))
    except csv.Error as error:  # a field over csv.field_size_limit(), a NUL byte, ...
        raise BadRequest(f"CSV body, line {reader.line_num}: {error}") from None
    _check_row_count(len(rows), counted_all=False)  # parsing stopped at MAX_ROWS + 1
    return rows


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``'text/csv; charset="UTF-8"'`` -> ``("text/csv", {"charset": "utf-8"})``."""
    media_type, *parameters = (content_type or "").split(";")
    parsed = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        parsed[name.strip().lower()] = value.strip().strip('"').lower()
    return media_type.strip().lower(), parsed


def _text(request_body: object, charset: str | None) -> str:
    """The body as text: the size limit first (before any decoding), then strict UTF-8."""
    if isinstance(request_body, str):
        size = len(request_body) if request_body.isascii() else len(request_body.encode("utf-8", "replace"))
    elif isinstance(request_body, bytes | bytearray):
        size = len(request_body)
    else:
        raise BadRequest(f"request body of type {type(request_body).__name__}; allowed: bytes or text")
    if size > MAX_BODY_BYTES:
        raise BadRequest(f"request body of {size} bytes; allowed: at most {MAX_BODY_BYTES} (6 MB)", 413)
    if charset is not None and charset not in CHARSETS:
        raise BadRequest(f"charset {charset!r}; allowed: utf-8", 415)
    if isinstance(request_body, str):
        text = request_body
    else:
        try:
            text = request_body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRequest(f"the body is not valid UTF-8 (byte {error.start}: {error.reason})") from None
    return text.removeprefix("\ufeff")  # a byte order mark is not data


def input_fn(request_body: str | bytes | bytearray, content_type: str | None) -> list[list[str]]:
    """Parse a request into raw rows (strings, one per input column); refuse what cannot be scored."""
    media_type, parameters = _media_type(content_type)
    if media_type not in ("text/csv", "application/json"):
        raise BadRequest(f"content type {content_type!r}; allowed: text/csv, application/json", 415)
    text = _text(request_body, parameters.get("charset"))
    if media_type == "text/csv":
        rows = _rows_from_csv(text)
    else:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            raise BadRequest(f"JSON body is not valid JSON: {error}") from None
        except RecursionError:
            raise BadRequest("JSON body is not valid JSON: nested too deeply") from None
        except ValueError as error:  # e.g. an integer literal over Python's digit limit
            raise BadRequest(f"JSON body is not valid JSON: {error}") from None
        rows = _rows_from_json(body, _expected_names())
    if not rows:
        raise BadRequest("the request holds no rows")
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


def output_fn(predictions: list[dict[str, Any]], accept: str | None) -> tuple[str, str]:
    accepted = {_media_type(part)[0] for part in (accept or "application/json").split(",")}
    if not accepted & {"application/json", "application/*", "*/*"}:
        raise BadRequest(f"accept type {accept!r}; allowed: application/json", 406)
    return json.dumps({"predictions": predictions}), "application/json"
