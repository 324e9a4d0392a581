"""The endpoint's wire format: request parsing and response formatting, one implementation for the ONNX
server (serve.py) and the eager-PyTorch handlers of the stock container (inference.py).

Standard library only (plus :mod:`contract`), so the server's transport and the handlers share every rule
below and neither can drift from the other. The names of the shape live in :mod:`contract` (section
"serving"), where the monitoring jobs' definitions read them.

Requests carry *raw* feature values, exactly as the data arrived in the lake, in the order of the
dataset's input columns (``preprocessing.json``'s ``input_columns``; the server applies the fitted
transform):

* ``text/csv``: one record per line, no header, no label column::

      17.99,10.38,122.8,1001.0,...

* ``application/json``: ``{"instances": [...]}`` with each instance a list in input-column order or an
  object keyed by input column (a missing key is a null)::

      {"instances": [[17.99, 10.38, 122.8, 1001.0, ...]]}
      {"instances": [{"mean radius": 17.99, "mean texture": 10.38, ...}]}

  A cell is a number, a string or ``null``. Nulls (``null``, an empty cell, ``NA``, ``NaN``, ...: the
  training's null tokens) are imputed exactly as in training; ``Infinity`` and other non-finite numbers
  are refused (training never saw them, and clipping would silently turn them into the clip bound).

Content types may carry parameters (``text/csv; charset=utf-8``); the charset must be UTF-8 (or its
ASCII subset). One record or a batch of up to :data:`MAX_ROWS` records per request; the parsers take the
limit as ``max_rows`` (``None``: no row limit, for batch transform, where the 6 MB body limit bounds each
request: see serve.py's ``SAGEMAKER_BATCH``).

Responses (``Accept``: ``application/json`` (default; also ``*/*``, ``application/*`` or no header) or
``text/csv``; anything else is 406), one prediction per record, in request order:

* ``application/json``: ``probabilities`` is a list in class-index order (``classes`` names them)::

      {"predictions": [{"label": "benign", "class_index": 1, "probabilities": [0.03, 0.97]}],
       "classes": ["malignant", "benign"]}

  JMESPath for the monitoring jobs: ``predictions[*].label``, ``predictions[*].probabilities[1]``
  (:func:`contract.json_probability_path`).
* ``text/csv``: one line per record, no header: the label, then the probability of each class in
  class-index order (column 0 = label, column ``1 + i`` = probability of class ``i``)::

      benign,0.03,0.97

A request that cannot be scored raises :class:`BadRequest` with an HTTP status and a reason naming the
offending value and what is allowed: 400 (malformed body: invalid UTF-8, invalid or too deeply nested
JSON, a CSV field over the csv module's ``field_size_limit``, a wrong number of values, a non-numeric
cell, no rows), 406 (accept type), 413 (over :data:`MAX_BODY_BYTES`, SageMaker's 6 MB real-time payload
limit), 415 (content type or charset). The limits are checked before the parsing work: the size before
decoding, the rows while parsing (CSV parsing stops at row ``MAX_ROWS + 1``; a JSON body's instances are
counted before any row is built).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import contract

MAX_ROWS = contract.MAX_ROWS
#: SageMaker's payload limit for real-time inference (InvokeEndpoint): 6 MB.
MAX_BODY_BYTES = contract.MAX_PAYLOAD_BYTES
#: Charsets a content type may name (UTF-8 and its ASCII subset).
CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")
CSV = contract.CSV_CONTENT_TYPE
JSON = contract.JSON_CONTENT_TYPE
#: What a request may be, and what a response may be (the first is the default).
REQUEST_TYPES = contract.REQUEST_CONTENT_TYPES
RESPONSE_TYPES = contract.RESPONSE_CONTENT_TYPES

PHRASES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

#: A parsed cell: CSV cells are strings; JSON cells are whatever JSON scalar the client sent.
Cell = str | int | float | None


class BadRequest(ValueError):
    """A request the model cannot score: the server answers ``status_code`` with ``message``."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    @property
    def phrase(self) -> str:
        return PHRASES[self.status_code]


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``'text/csv; charset="UTF-8"'`` -> ``("text/csv", {"charset": "utf-8"})``."""
    media, *parameters = (content_type or "").split(";")
    parsed = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        parsed[name.strip().lower()] = value.strip().strip('"').lower()
    return media.strip().lower(), parsed


def request_type(content_type: str | None) -> str:
    """The request's media type (:data:`CSV` or :data:`JSON`); 415 for any other type or charset."""
    media, parameters = media_type(content_type)
    if media not in REQUEST_TYPES:
        raise BadRequest(f"content type {content_type!r}; allowed: {', '.join(REQUEST_TYPES)}", 415)
    charset = parameters.get("charset")
    if charset is not None and charset not in CHARSETS:
        raise BadRequest(f"charset {charset!r}; allowed: utf-8", 415)
    return media


#: What each media range of an Accept header selects.
_ACCEPT_RANGES = {
    "*/*": JSON,
    "application/*": JSON,
    "application/json": JSON,
    "text/*": CSV,
    "text/csv": CSV,
}


def response_type(accept: str | None) -> str:
    """The response's media type for an ``Accept`` header: the client's most preferred (highest ``q``,
    then first listed) of :data:`RESPONSE_TYPES`; no header means JSON; 406 when none is acceptable."""
    if accept is None or not accept.strip():
        return RESPONSE_TYPES[0]
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, parameters = media_type(part)
        try:
            quality = float(parameters.get("q", "1"))
        except ValueError:
            quality = 0.0  # a malformed weight counts as "not acceptable" (RFC 9110 12.4.2 allows no other)
        chosen = _ACCEPT_RANGES.get(media)
        if chosen is not None and quality > 0:
            ranked.append((-quality, position, chosen))
    if not ranked:
        raise BadRequest(f"accept type {accept!r}; allowed: {', '.join(RESPONSE_TYPES)}", 406)
    return min(ranked)[2]


def check_body_size(size: int) -> None:
    """413 for a body over :data:`MAX_BODY_BYTES` (checked before reading or decoding it)."""
    if size > MAX_BODY_BYTES:
        raise BadRequest(
            f"request body of {size} bytes; allowed: at most {MAX_BODY_BYTES} ({contract.MAX_PAYLOAD_MB} MB)",
            413,
        )


def decode_body(body: object) -> str:
    """The body as text: the size limit first (before any decoding), then strict UTF-8, minus a BOM."""
    if isinstance(body, str):
        check_body_size(len(body) if body.isascii() else len(body.encode("utf-8", "replace")))
        text = body
    elif isinstance(body, bytes | bytearray | memoryview):
        check_body_size(len(body))
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRequest(f"the body is not valid UTF-8 (byte {error.start}: {error.reason})") from None
    else:
        raise BadRequest(f"request body of type {type(body).__name__}; allowed: bytes or text")
    return text.removeprefix("\ufeff")  # a byte order mark is not data


def check_row_count(rows: int, counted_all: bool = True, max_rows: int | None = MAX_ROWS) -> None:
    """400 for more than ``max_rows`` records (``None``: no limit). ``counted_all`` is False when counting
    stopped at ``max_rows + 1`` (the message then says "over")."""
    if max_rows is not None and rows > max_rows:
        found = str(rows) if counted_all else f"over {max_rows}"
        raise BadRequest(f"{found} rows; allowed: at most {max_rows} per request (use batch transform)")


def check_widths(rows: Sequence[Sequence[Cell]], names: Sequence[str]) -> None:
    """Every row holds one value per input column."""
    for index, row in enumerate(rows, start=1):
        _check_width(row, index, names)


def _check_width(row: Sequence[Cell], index: int, names: Sequence[str]) -> None:
    if len(row) != len(names):
        raise BadRequest(f"row {index}: {len(row)} values; allowed: {len(names)} in the order {list(names)}")


def rows_from_csv(text: str, names: Sequence[str] = (), max_rows: int | None = MAX_ROWS) -> list[list[Cell]]:
    """The non-empty rows of a CSV body; parsing stops at row ``max_rows + 1``, or at the first row whose
    width is not ``len(names)`` (when ``names`` is given), so no request builds more than that."""
    reader = csv.reader(io.StringIO(text))
    rows: list[list[Cell]] = []
    limit = None if max_rows is None else max_rows + 1
    try:
        for row in itertools.islice((row for row in reader if row), limit):
            if names:
                _check_width(row, len(rows) + 1, names)
            rows.append(row)  # type: ignore[arg-type]  # list[str] is a list[Cell] here
    except csv.Error as error:  # a field over csv.field_size_limit(), a NUL byte, ...
        raise BadRequest(f"CSV body, line {reader.line_num}: {error}") from None
    check_row_count(len(rows), counted_all=False, max_rows=max_rows)  # parsing stopped at max_rows + 1
    return rows


def _cell(value: Any, column: str, row: int) -> Cell:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(
            f"row {row}, column {column!r}: got {_shown(value)}; allowed: a number, a string or null"
        )
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


#: The JSON scalars a cell may be (``bool`` is refused: ``type(True)`` is not ``int``).
_CELL_TYPES = frozenset({str, int, float, type(None)})


def rows_from_json(
    body: Any, names: Sequence[str] = (), check_width: bool = True, max_rows: int | None = MAX_ROWS
) -> list[list[Cell]]:
    """The rows of a parsed JSON body. ``names`` are the input columns: they place an object's keys (a
    missing key is a null) and, with ``check_width``, refuse a list of another length.

    Each row's cell types are checked in one pass over the row (a batch of 100 records costs tens of
    microseconds, not a function call per cell); only a row that fails is walked cell by cell, to name the
    offending cell.
    """
    instances = body.get(contract.JSON_INSTANCES_KEY) if isinstance(body, dict) else None
    if not isinstance(instances, list):
        raise BadRequest('JSON body: allowed: {"instances": [[...], ...]} or {"instances": [{...}, ...]}')
    check_row_count(len(instances), max_rows=max_rows)  # before any row is built
    known = frozenset(names)
    rows: list[list[Cell]] = []
    for index, instance in enumerate(instances, start=1):
        if isinstance(instance, dict):
            if not known.issuperset(instance):
                unknown = sorted(set(instance) - known)
                raise BadRequest(f"row {index}: unknown feature(s) {unknown}; allowed: {list(names)}")
            row = [instance.get(name) for name in names]
        elif isinstance(instance, list):
            if names and check_width:
                _check_width(instance, index, names)
            row = instance
        else:
            raise BadRequest(f"row {index}: got {type(instance).__name__}; allowed: a list or an object")
        if not _CELL_TYPES.issuperset(map(type, row)):
            for position, value in enumerate(row):
                _cell(value, names[position] if position < len(names) else f"#{position}", index)
        rows.append(row)
    return rows


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(f"JSON body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequest("JSON body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer literal over Python's digit limit
        raise BadRequest(f"JSON body is not valid JSON: {error}") from None


def parse_request(
    body: object,
    content_type: str | None,
    names: Sequence[str] = (),
    check_width: bool = True,
    max_rows: int | None = MAX_ROWS,
) -> list[list[Cell]]:
    """Parse a request into rows of cells; refuse what cannot be scored (:class:`BadRequest`).

    ``names`` are the input columns: they place a JSON object's keys and, with ``check_width``, refuse a
    row of another width as soon as it is parsed (so a malformed request builds no more than one row).
    ``max_rows`` is the record limit (``None``: none; the body size still bounds the work).
    """
    media = request_type(content_type)
    text = decode_body(body)
    if media == CSV:
        rows = rows_from_csv(text, names if check_width else (), max_rows)
    else:
        rows = rows_from_json(parse_json(text), names, check_width, max_rows)
    if not rows:
        raise BadRequest("the request holds no rows")
    return rows


def as_text(rows: Sequence[Sequence[Cell]]) -> list[list[str]]:
    """Rows of cells as the feature transform reads them: strings, a null as the empty string."""
    return [
        ["" if cell is None else cell if isinstance(cell, str) else str(cell) for cell in row] for row in rows
    ]


# ---- responses -------------------------------------------------------------------------------------

_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def format_predictions(
    probabilities: Sequence[Sequence[float]],
    classes: Sequence[str],
    media: str,
    class_indices: Sequence[int] | None = None,
) -> bytes:
    """The response body for one row of class probabilities per record (in class-index order).

    ``class_indices`` (the argmax of each row) may be passed when already computed; ties go to the lowest
    index either way. Each probability is written as Python's ``repr`` of the float (the shortest decimal
    that reads back as the same number).

    The body is built from per-class row templates and one ``%`` formatting of all the probabilities (a
    batch of 100 records costs half of what a JSON encoder or csv writer takes). The output is byte for
    byte the one of :func:`_format_generic` (the plain encoder and csv writer), which still writes
    whatever the templates do not cover: rows of different lengths, and non-finite probabilities in JSON
    (which the encoder refuses: a model that returns NaN is a bug, answered with a 500 and logged).
    """
    if class_indices is None:
        class_indices = [max(range(len(row)), key=row.__getitem__) for row in probabilities]
    widths = set(map(len, probabilities))
    flat = list(map(float, itertools.chain.from_iterable(probabilities)))
    if len(widths) != 1 or (media != CSV and not all(map(math.isfinite, flat))):
        return _format_generic(probabilities, classes, media, class_indices)
    head, rows, separator, tail = _templates(tuple(classes), media, widths.pop())
    template = separator.join(map(rows.__getitem__, class_indices))
    return (head + template % tuple(flat) + tail).encode("utf-8")


@functools.lru_cache(maxsize=16)
def _templates(classes: tuple[str, ...], media: str, width: int) -> tuple[str, list[str], str, str]:
    """(head, one row template per class, row separator, tail) of a response: each row template has
    ``width`` ``%r`` fields, and every literal ``%`` of a label in it is escaped (head and tail are not
    formatted)."""
    fields = ",".join(["%r"] * width)
    if media == CSV:
        rows = []
        for label in classes:  # the label exactly as the csv writer quotes it in a row
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow([label, "0"])
            quoted = line.getvalue().removesuffix(",0\n")
            rows.append(quoted.replace("%", "%%") + "," + fields + "\n")
        return "", rows, "", ""
    rows = [
        (
            "{"
            + f"{_JSON_ENCODER.encode(contract.LABEL_KEY)}:{_JSON_ENCODER.encode(label)},"
            + f"{_JSON_ENCODER.encode(contract.CLASS_INDEX_KEY)}:{index},"
            + f"{_JSON_ENCODER.encode(contract.PROBABILITIES_KEY)}:["
        ).replace("%", "%%")
        + fields
        + "]}"
        for index, label in enumerate(classes)
    ]
    head = "{" + _JSON_ENCODER.encode(contract.PREDICTIONS_KEY) + ":["
    tail = "]," + _JSON_ENCODER.encode(contract.CLASSES_KEY) + ":" + _JSON_ENCODER.encode(list(classes)) + "}"
    return head, rows, ",", tail


def _format_generic(
    probabilities: Sequence[Sequence[float]],
    classes: Sequence[str],
    media: str,
    class_indices: Sequence[int],
) -> bytes:
    """:func:`format_predictions` with the plain JSON encoder and csv writer (the reference)."""
    if media == CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for index, row in zip(class_indices, probabilities, strict=True):
            writer.writerow([classes[index], *(repr(float(p)) for p in row)])
        return out.getvalue().encode("utf-8")
    predictions = [
        {
            contract.LABEL_KEY: classes[index],
            contract.CLASS_INDEX_KEY: index,
            contract.PROBABILITIES_KEY: [float(p) for p in row],
        }
        for index, row in zip(class_indices, probabilities, strict=True)
    ]
    document = {contract.PREDICTIONS_KEY: predictions, contract.CLASSES_KEY: list(classes)}
    return _JSON_ENCODER.encode(document).encode("utf-8")


def error_body(status: int, message: str) -> bytes:
    """The body of an error response (always JSON): ``{"status": 400, "error": "Bad Request",
    "message": "<reason>"}``."""
    document = {"status": status, "error": PHRASES.get(status, "Error"), "message": message}
    return json.dumps(document).encode("utf-8")
