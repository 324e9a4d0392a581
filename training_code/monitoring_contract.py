"""What the endpoint captures and what the monitoring jobs read: one source.

Standard library only, like ``contract.py``: the CDK app imports it at synth (to build the Model Monitor job
definitions and the Clarify analysis configuration) where neither numpy nor jmespath is needed, and the
tests import it by its flat name. tests/training_code/test_capture_contract.py drives the real serving
container, builds the capture record SageMaker writes for each real response, and checks that every
attribute below extracts exactly what the server computed.

The formats, as the SageMaker documentation and AWS's own samples give them:

* **Capture record** (one JSON line per invocation, under
  ``<DestinationS3Uri>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl``)::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "17.99,10.38,...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "benign,0.03,0.97\\n", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid SageMaker generates>", "inferenceId": "<the caller's InferenceId>",
                       "inferenceTime": "2024-01-19T19:27:57Z"},
     "eventVersion": "0"}

  Sources: Developer Guide "Capture data from real-time endpoint" (View Captured Data), "Preprocessing and
  Postprocessing" (the ``inference_record`` class: ``eventMetadata.eventId`` / ``inferenceTime`` /
  ``customAttributes``), and ``inferenceId`` in ``eventMetadata`` in the captured records of
  aws/amazon-sagemaker-examples ``sm-clarify_model_bias_monitor_for_endpoint_json``. ``data`` is the body as
  text when the content type is listed in ``DataCaptureConfig.CaptureContentTypeHeader`` (``encoding`` CSV
  or JSON) and base64 otherwise ("If no headers are specified SageMaker AI will by default base64 encode",
  the API reference of ``CaptureContentTypeHeader``); content-type parameters do not matter (the guide's
  sample has ``"observedContentType": "text/csv; charset=utf-8", "encoding": "CSV"``).
* **Ground-truth record** (Developer Guide, "Ingest Ground Truth labels and merge them with predictions"),
  one JSON line per inference, uploaded under ``<prefix>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl`` where the
  date is when the label was collected (not when the inference ran)::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<inference id>"},
     "eventVersion": "0"}

  Model Monitor joins it to the capture record whose ``inferenceId`` equals ``eventId``; a capture record
  without ``inferenceId`` is joined on its own ``eventId``. Records without a partner are not merged.

What the jobs read (the choices, and why):

* **One record per request for model quality.** The ground-truth record holds one label ("we assume
  'data' only consists of label"), so one inference id can only be graded against one prediction; AWS's
  model-quality sample invokes the endpoint row by row, one ``InferenceId`` per row. The model-quality
  attributes therefore address the single record: column ``"0"`` / ``"2"`` of the CSV line, or
  ``predictions[0].label`` / ``predictions[0].probabilities[1]`` in JSON (a scalar, as the CSV index gives).
  On a batched capture ``[0]`` would silently grade the first record only: :func:`require_single_record`
  refuses such a record, and batched traffic is for Clarify only.
* **Batches are fine for Clarify.** Clarify reads every record of a capture: the rows of a CSV payload
  ("The rows in the response payload must match the records in the request payload", "Endpoint response
  for tabular data"), and JMESPath over the whole JSON document, so its attributes use ``[*]``
  (``predictions[*].label``, as AWS's JSON bias-monitor sample uses ``predictions[*].predicted_label``).
* **Binary: class index 1 is the positive class, and both jobs use its probability with a 0.5 threshold.**
  Model Monitor's binary metrics (confusion matrix "0"/"1", precision, recall, AUC) and Clarify's
  ``label_values_or_threshold`` treat the value 1 as positive; both turn a probability into a label with
  "greater than the threshold predicts 1" (``ProbabilityThresholdAttribute``: "the threshold for the class
  probability to be evaluated as a positive result"). The server's label is the argmax of two softmax
  probabilities, so ``p[1] > 0.5`` is "the served label is class 1" (ties go to class 0 in both; float32
  rounding could only disagree within ~1e-7 of 0.5). The ground truth of
  a binary model is therefore ``"1"`` (the actual label is ``classes[1]``) or ``"0"``, the same record
  serving model quality and bias monitoring. For breast cancer (``classes = ["malignant", "benign"]``,
  scikit-learn's target order) the positive class is "benign". ``positive_class_index=0`` flips it.
* **Multiclass: the predicted label.** ``MulticlassClassification`` compares the predicted label with the
  ground truth, which is then the class name itself.
* **CSV is the monitored wire format** (:data:`MONITORED_CONTENT_TYPE`): the data-quality monitor reads
  tabular CSV captures natively (JSON needs flattening, "Preprocessing and Postprocessing"), the documented
  ground-truth encoding is CSV, and with CSV one ground-truth record serves model quality and Clarify
  alike. The JSON attributes are given too (and tested) for a team that monitors JSON traffic; note that
  AWS's JSON bias-monitor sample uploads JSON-encoded ground truth (``{"label": 1}``) for Clarify, while the
  model-quality merge documents CSV only, so JSON traffic may need one ground-truth prefix per job type.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Final

import contract

# ---- data capture ----------------------------------------------------------------------------------

#: ``eventVersion`` of capture and ground-truth records.
EVENT_VERSION: Final = "0"
INPUT_MODE: Final = "INPUT"
OUTPUT_MODE: Final = "OUTPUT"
CSV_ENCODING: Final = "CSV"
JSON_ENCODING: Final = "JSON"
BASE64_ENCODING: Final = "BASE64"
CAPTURE_ENCODINGS: Final = (CSV_ENCODING, JSON_ENCODING, BASE64_ENCODING)
#: ``CaptureContentTypeHeader``: the serving container's content types, captured as text (not base64).
CAPTURE_CSV_CONTENT_TYPES: Final = (contract.CSV_CONTENT_TYPE,)
CAPTURE_JSON_CONTENT_TYPES: Final = (contract.JSON_CONTENT_TYPE,)
#: The capture record's keys.
CAPTURE_DATA_KEY: Final = "captureData"
ENDPOINT_INPUT_KEY: Final = "endpointInput"
ENDPOINT_OUTPUT_KEY: Final = "endpointOutput"
EVENT_METADATA_KEY: Final = "eventMetadata"
EVENT_ID_KEY: Final = "eventId"
INFERENCE_ID_KEY: Final = "inferenceId"
INFERENCE_TIME_KEY: Final = "inferenceTime"
CUSTOM_ATTRIBUTES_KEY: Final = "customAttributes"
EVENT_VERSION_KEY: Final = "eventVersion"
GROUND_TRUTH_DATA_KEY: Final = "groundTruthData"
#: InvokeEndpoint's ``InferenceId`` (sagemaker-runtime API model): 1 to 64 characters, ``\A\S[\p{Print}]*\z``
#: (Java's classes: a first character that is not ASCII whitespace, then printable ASCII).
INFERENCE_ID_MAX_LENGTH: Final = 64
_INFERENCE_ID = re.compile(r"\S[\x20-\x7e]*", re.ASCII)
#: How SageMaker writes ``inferenceTime`` (e.g. ``2024-01-19T19:27:57Z``).
INFERENCE_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def capture_content_type_header() -> dict[str, list[str]]:
    """``DataCaptureConfig.CaptureContentTypeHeader`` for the serving container's content types."""
    return {
        "CsvContentTypes": list(CAPTURE_CSV_CONTENT_TYPES),
        "JsonContentTypes": list(CAPTURE_JSON_CONTENT_TYPES),
    }


def media_type(content_type: str) -> str:
    """``'text/csv; charset=utf-8'`` -> ``'text/csv'`` (lower case, parameters dropped)."""
    return content_type.split(";", 1)[0].strip().lower()


def capture_encoding(content_type: str) -> str:
    """The ``encoding`` SageMaker writes for a payload of ``content_type`` under
    :func:`capture_content_type_header`: CSV or JSON when its media type is listed, BASE64 otherwise."""
    media = media_type(content_type)
    if media in CAPTURE_CSV_CONTENT_TYPES:
        return CSV_ENCODING
    if media in CAPTURE_JSON_CONTENT_TYPES:
        return JSON_ENCODING
    return BASE64_ENCODING


def check_inference_id(value: object, key: str = "InferenceId") -> str:
    """``value`` if InvokeEndpoint accepts it as an ``InferenceId`` (the id a ground-truth record names)."""
    if not isinstance(value, str) or not 1 <= len(value) <= INFERENCE_ID_MAX_LENGTH:
        raise ValueError(
            f"{key} {value!r}: allowed: a string of 1 to {INFERENCE_ID_MAX_LENGTH} characters "
            "(InvokeEndpoint's InferenceId)"
        )
    if not _INFERENCE_ID.fullmatch(value):
        raise ValueError(
            f"{key} {value!r}: allowed: printable ASCII characters not starting with whitespace "
            r"(InvokeEndpoint's InferenceId pattern \A\S[\p{Print}]*\z)"
        )
    return value


@dataclass(frozen=True)
class CapturedPayload:
    """``captureData.endpointInput`` or ``captureData.endpointOutput`` of a capture record."""

    observed_content_type: str
    mode: str
    data: str
    encoding: str

    @property
    def media_type(self) -> str:
        return media_type(self.observed_content_type)

    def text(self) -> str:
        """The body as text: ``data`` itself for CSV and JSON, base64-decoded UTF-8 for BASE64."""
        if self.encoding != BASE64_ENCODING:
            return self.data
        try:
            return base64.b64decode(self.data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ValueError(f"captured {self.mode} data: not base64 of UTF-8 text ({error})") from None

    def as_dict(self) -> dict[str, str]:
        return {
            "observedContentType": self.observed_content_type,
            "mode": self.mode,
            "data": self.data,
            "encoding": self.encoding,
        }


@dataclass(frozen=True)
class CaptureRecord:
    """One line of a data-capture file."""

    endpoint_input: CapturedPayload | None
    endpoint_output: CapturedPayload | None
    event_id: str
    inference_time: datetime
    inference_id: str | None = None
    custom_attributes: str | None = None
    event_version: str = EVENT_VERSION

    @property
    def join_key(self) -> str:
        """What a ground-truth record's ``eventId`` must equal: the caller's ``inferenceId`` when the capture
        has one, else SageMaker's ``eventId`` (Model Monitor's merge rule)."""
        return self.inference_id if self.inference_id is not None else self.event_id

    def as_dict(self) -> dict[str, Any]:
        data = {}
        if self.endpoint_input is not None:
            data[ENDPOINT_INPUT_KEY] = self.endpoint_input.as_dict()
        if self.endpoint_output is not None:
            data[ENDPOINT_OUTPUT_KEY] = self.endpoint_output.as_dict()
        metadata = {EVENT_ID_KEY: self.event_id}
        if self.inference_id is not None:
            metadata[INFERENCE_ID_KEY] = self.inference_id
        metadata[INFERENCE_TIME_KEY] = format_inference_time(self.inference_time)
        if self.custom_attributes is not None:
            metadata[CUSTOM_ATTRIBUTES_KEY] = self.custom_attributes
        return {CAPTURE_DATA_KEY: data, EVENT_METADATA_KEY: metadata, EVENT_VERSION_KEY: self.event_version}

    def to_line(self) -> str:
        """The record as SageMaker writes it: one compact JSON line, newline-terminated."""
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False) + "\n"


def format_inference_time(moment: datetime) -> str:
    return _utc(moment, INFERENCE_TIME_KEY).strftime(INFERENCE_TIME_FORMAT)


def captured_payload(body: bytes, content_type: str, mode: str) -> CapturedPayload:
    """What SageMaker records for one request or response body (:func:`capture_encoding` decides)."""
    if mode not in (INPUT_MODE, OUTPUT_MODE):
        raise ValueError(f"mode {mode!r}: allowed: {INPUT_MODE} or {OUTPUT_MODE}")
    encoding = capture_encoding(content_type)
    if encoding == BASE64_ENCODING:
        data = base64.b64encode(body).decode("ascii")
    else:
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{mode} body of {content_type!r}: not UTF-8 ({error})") from None
    return CapturedPayload(content_type, mode, data, encoding)


def capture_record(
    request_body: bytes,
    request_content_type: str,
    response_body: bytes,
    response_content_type: str,
    *,
    event_id: str,
    inference_time: datetime,
    inference_id: str | None = None,
) -> CaptureRecord:
    """The capture record of one invocation (``CaptureMode`` Input and Output), as SageMaker writes it."""
    check_inference_id(event_id, EVENT_ID_KEY)
    if inference_id is not None:
        check_inference_id(inference_id)
    return CaptureRecord(
        endpoint_input=captured_payload(request_body, request_content_type, INPUT_MODE),
        endpoint_output=captured_payload(response_body, response_content_type, OUTPUT_MODE),
        event_id=event_id,
        inference_time=_utc(inference_time, INFERENCE_TIME_KEY),
        inference_id=inference_id,
    )


def capture_prefix(destination: str, endpoint_name: str, variant_name: str, moment: datetime) -> str:
    """``<destination>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>``: where SageMaker puts the capture files of
    the hour of ``moment`` (UTC); ``destination`` is ``DataCaptureConfig.DestinationS3Uri``."""
    _check_prefix(destination, "destination")
    for key, name in (("endpoint_name", endpoint_name), ("variant_name", variant_name)):
        if not name or "/" in name:
            raise ValueError(f"{key} {name!r}: allowed: a non-empty name without '/'")
    return f"{destination}/{endpoint_name}/{variant_name}/{_utc(moment, 'moment'):%Y/%m/%d/%H}"


def parse_capture_record(line: str | Mapping[str, Any]) -> CaptureRecord:
    """A capture record from one JSON line (or its decoded object), checked against the documented format.

    Raises ``ValueError`` naming the key path, the value and what is allowed.
    """
    record = _object(json.loads(line) if isinstance(line, str) else line, "the capture record")
    version = record.get(EVENT_VERSION_KEY)
    if version != EVENT_VERSION:
        raise ValueError(f"key {EVENT_VERSION_KEY!r}: {version!r}; allowed: {EVENT_VERSION!r}")
    data = _object(record.get(CAPTURE_DATA_KEY), f"key {CAPTURE_DATA_KEY!r}")
    unknown = set(data) - {ENDPOINT_INPUT_KEY, ENDPOINT_OUTPUT_KEY}
    if unknown or not data:
        raise ValueError(
            f"key {CAPTURE_DATA_KEY!r}: keys {sorted(data)}; allowed: {ENDPOINT_INPUT_KEY!r} and/or "
            f"{ENDPOINT_OUTPUT_KEY!r}"
        )
    metadata = _object(record.get(EVENT_METADATA_KEY), f"key {EVENT_METADATA_KEY!r}")
    event_id = check_inference_id(metadata.get(EVENT_ID_KEY), f"{EVENT_METADATA_KEY}.{EVENT_ID_KEY}")
    inference_id = metadata.get(INFERENCE_ID_KEY)
    if inference_id is not None:
        check_inference_id(inference_id, f"{EVENT_METADATA_KEY}.{INFERENCE_ID_KEY}")
    custom = metadata.get(CUSTOM_ATTRIBUTES_KEY)
    if custom is not None and not isinstance(custom, str):
        raise ValueError(f"key '{EVENT_METADATA_KEY}.{CUSTOM_ATTRIBUTES_KEY}': {custom!r}; allowed: a string")
    return CaptureRecord(
        endpoint_input=_payload(data, ENDPOINT_INPUT_KEY, INPUT_MODE),
        endpoint_output=_payload(data, ENDPOINT_OUTPUT_KEY, OUTPUT_MODE),
        event_id=event_id,
        inference_time=_parse_time(metadata.get(INFERENCE_TIME_KEY)),
        inference_id=inference_id,
        custom_attributes=custom,
    )


def read_capture_file(text: str) -> list[CaptureRecord]:
    """Every record of a capture file (JSON Lines; blank lines skipped). Errors name the line number."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(parse_capture_record(line))
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"capture line {number}: {error}") from None
    return records


def record_count(payload: CapturedPayload) -> int:
    """How many records a captured request or response of the serving container holds (CSV lines, or the
    JSON ``instances`` / ``predictions`` list)."""
    text = payload.text()
    if payload.media_type == contract.CSV_CONTENT_TYPE:
        return sum(1 for row in csv.reader(io.StringIO(text)) if row)
    if payload.media_type != contract.JSON_CONTENT_TYPE:
        raise ValueError(
            f"captured {payload.mode} of {payload.observed_content_type!r}: allowed: "
            f"{contract.CSV_CONTENT_TYPE} or {contract.JSON_CONTENT_TYPE}"
        )
    key = contract.JSON_INSTANCES_KEY if payload.mode == INPUT_MODE else contract.PREDICTIONS_KEY
    document = json.loads(text)
    items = document.get(key) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"captured {payload.mode}: no {key!r} list in {text[:80]!r}")
    return len(items)


def require_single_record(record: CaptureRecord) -> CaptureRecord:
    """``record`` if it holds exactly one inference, as the model-quality job needs (one ground-truth label
    per inference id); a batched capture would be graded on its first record only."""
    if record.endpoint_output is None:
        raise ValueError(f"capture {record.join_key!r}: no endpointOutput (capture the Output mode too)")
    count = record_count(record.endpoint_output)
    if count != 1:
        raise ValueError(
            f"capture {record.join_key!r}: {count} records in one request; allowed for model quality: 1 "
            "(one ground-truth label per inference id; send monitored traffic one record per request)"
        )
    return record


# ---- ground truth ----------------------------------------------------------------------------------

#: The lake zone ground-truth labels are uploaded to: ``s3://<lake>/ground-truth/<prefix>/yyyy/mm/dd/hh/``,
#: ``<prefix>`` being the stage config's ``monitoring.ground_truth_prefix``.
GROUND_TRUTH_PREFIX: Final = "ground-truth"
#: The documented encoding ("only CSV supported at launch, we assume 'data' only consists of label").
GROUND_TRUTH_ENCODING: Final = CSV_ENCODING
GROUND_TRUTH_SUFFIX: Final = ".jsonl"
_FILE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class GroundTruthRecord:
    """One line of a ground-truth file: the label ``data`` of the inference ``event_id`` names."""

    event_id: str
    data: str
    encoding: str = GROUND_TRUTH_ENCODING
    event_version: str = EVENT_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            GROUND_TRUTH_DATA_KEY: {"data": self.data, "encoding": self.encoding},
            EVENT_METADATA_KEY: {EVENT_ID_KEY: self.event_id},
            EVENT_VERSION_KEY: self.event_version,
        }

    def to_line(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False) + "\n"


def ground_truth_record(inference_id: str, data: str) -> GroundTruthRecord:
    """The ground truth of one inference: ``inference_id`` is the ``InferenceId`` the caller passed to
    InvokeEndpoint (or the capture's ``eventId`` when it passed none); ``data`` the label as the job compares
    it (:meth:`MonitoringContract.ground_truth_value`)."""
    check_inference_id(inference_id)
    _check_csv_value(data, "ground-truth data")
    return GroundTruthRecord(inference_id, data)


def write_ground_truth(handle: IO[str], records: Iterable[GroundTruthRecord]) -> int:
    """Write ``records`` as JSON Lines to ``handle``; the number written."""
    count = 0
    for record in records:
        handle.write(record.to_line())
        count += 1
    return count


def parse_ground_truth_record(line: str | Mapping[str, Any]) -> GroundTruthRecord:
    record = _object(json.loads(line) if isinstance(line, str) else line, "the ground-truth record")
    version = record.get(EVENT_VERSION_KEY)
    if version != EVENT_VERSION:
        raise ValueError(f"key {EVENT_VERSION_KEY!r}: {version!r}; allowed: {EVENT_VERSION!r}")
    truth = _object(record.get(GROUND_TRUTH_DATA_KEY), f"key {GROUND_TRUTH_DATA_KEY!r}")
    if truth.get("encoding") != GROUND_TRUTH_ENCODING:
        raise ValueError(
            f"key '{GROUND_TRUTH_DATA_KEY}.encoding': {truth.get('encoding')!r}; "
            f"allowed: {GROUND_TRUTH_ENCODING!r}"
        )
    data = truth.get("data")
    if not isinstance(data, str):
        raise ValueError(f"key '{GROUND_TRUTH_DATA_KEY}.data': {data!r}; allowed: the label as a string")
    metadata = _object(record.get(EVENT_METADATA_KEY), f"key {EVENT_METADATA_KEY!r}")
    event_id = check_inference_id(metadata.get(EVENT_ID_KEY), f"{EVENT_METADATA_KEY}.{EVENT_ID_KEY}")
    return GroundTruthRecord(event_id, data)


def read_ground_truth_file(text: str) -> list[GroundTruthRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(parse_ground_truth_record(line))
        except ValueError as error:
            raise ValueError(f"ground-truth line {number}: {error}") from None
    return records


def ground_truth_key(prefix: str, collected_at: datetime, file_stem: str) -> str:
    """``<prefix>/<yyyy>/<mm>/<dd>/<hh>/<file_stem>.jsonl``: the S3 key of a ground-truth file whose labels
    were collected at ``collected_at`` (UTC; Model Monitor reads the hours of its window from this path)."""
    _check_prefix(prefix, "prefix")
    if not _FILE_STEM.fullmatch(file_stem):
        raise ValueError(
            f"file_stem {file_stem!r}: allowed: 1 to 200 of A-Z a-z 0-9 . _ -, starting with a letter or "
            "digit"
        )
    return f"{prefix}/{_utc(collected_at, 'collected_at'):%Y/%m/%d/%H}/{file_stem}{GROUND_TRUTH_SUFFIX}"


@dataclass(frozen=True)
class MergedRecord:
    """A capture record joined with its ground truth (what the merge job hands to the analysis)."""

    capture: CaptureRecord
    ground_truth: GroundTruthRecord

    def as_dict(self) -> dict[str, Any]:
        captured = self.capture.as_dict()
        return {
            EVENT_VERSION_KEY: EVENT_VERSION,
            GROUND_TRUTH_DATA_KEY: self.ground_truth.as_dict()[GROUND_TRUTH_DATA_KEY],
            CAPTURE_DATA_KEY: captured[CAPTURE_DATA_KEY],
            EVENT_METADATA_KEY: captured[EVENT_METADATA_KEY],
        }


def merge(
    captures: Iterable[CaptureRecord], ground_truths: Iterable[GroundTruthRecord]
) -> list[MergedRecord]:
    """Join captures and ground truth as Model Monitor documents it: a ground-truth ``eventId`` matches the
    capture's ``inferenceId`` if it has one, else its ``eventId``. Unmatched records on either side are left
    out (an inner join), in capture order. Two records with the same id on one side are refused: the label
    of an inference must be unambiguous ("there must be a unique identifier for each record")."""
    by_id: dict[str, GroundTruthRecord] = {}
    for truth in ground_truths:
        if truth.event_id in by_id:
            raise ValueError(
                f"ground truth: eventId {truth.event_id!r} twice; allowed: one label per inference"
            )
        by_id[truth.event_id] = truth
    merged, seen = [], set()
    for capture in captures:
        key = capture.join_key
        if key in seen:
            raise ValueError(f"captures: {key!r} twice; allowed: a unique InferenceId per invocation")
        seen.add(key)
        if key in by_id:
            merged.append(MergedRecord(capture, by_id[key]))
    return merged


# ---- what the monitoring jobs read -----------------------------------------------------------------

BINARY_CLASSIFICATION: Final = "BinaryClassification"
MULTICLASS_CLASSIFICATION: Final = "MulticlassClassification"
#: The positive class of a binary model (see the module docstring), and the threshold that reproduces the
#: served label from its probability.
POSITIVE_CLASS_INDEX: Final = 1
PROBABILITY_THRESHOLD: Final = 0.5
#: Ground truth of a binary model: the positive class, or not.
POSITIVE_VALUE: Final = "1"
NEGATIVE_VALUE: Final = "0"
#: The wire format of monitored traffic (requests and responses; see the module docstring).
MONITORED_CONTENT_TYPE: Final = contract.CSV_CONTENT_TYPE
#: The request format Clarify's shadow endpoint (explainability, bias baselines) sends: CSV needs no
#: content template and is what the serving container parses fastest.
CLARIFY_CONTENT_TYPE: Final = contract.CSV_CONTENT_TYPE
#: JSON requests whose ``instances`` are lists in input-column order: the feature rows (Clarify's
#: ``FeaturesAttribute``). Objects keyed by column name cannot be monitored this way.
JSON_FEATURES_PATH: Final = contract.JSON_INSTANCES_KEY
_SINGLE: Final = f"{contract.PREDICTIONS_KEY}[0]"
_CSV_UNSAFE = re.compile(r'[,"\r\n]')


def json_single_label_path() -> str:
    """JMESPath of the one record's predicted label in a single-record JSON response."""
    return f"{_SINGLE}.{contract.LABEL_KEY}"


def json_single_probability_path(class_index: int) -> str:
    """JMESPath of the one record's probability of class ``class_index`` in a single-record JSON response."""
    return f"{_SINGLE}.{contract.PROBABILITIES_KEY}[{class_index}]"


@dataclass(frozen=True)
class MonitoringContract:
    """The monitoring settings for a classification model with ``classes`` (``preprocessing.json`` →
    ``label.classes``, in class-index order) whose monitored traffic is ``content_type``.

    Attribute values are what the job definitions take: strings (a column index such as ``"2"``, or a
    JMESPath) and a float threshold. The Clarify analysis-config values use ints for CSV columns, as its
    examples do.
    """

    classes: tuple[str, ...]
    content_type: str = MONITORED_CONTENT_TYPE
    positive_class_index: int = POSITIVE_CLASS_INDEX
    probability_threshold: float = PROBABILITY_THRESHOLD

    def __post_init__(self) -> None:
        classes = tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"classes {list(classes)}: allowed: two or more distinct class labels")
        for label in classes:
            _check_csv_value(label, "class label")
        if self.content_type not in contract.RESPONSE_CONTENT_TYPES:
            raise ValueError(
                f"content_type {self.content_type!r}: allowed: {' or '.join(contract.RESPONSE_CONTENT_TYPES)}"
            )
        if not 0 <= self.positive_class_index < len(classes):
            raise ValueError(
                f"positive_class_index {self.positive_class_index}: allowed: 0 to {len(classes) - 1} (the "
                f"index of a class in {list(classes)})"
            )
        if not 0.0 < self.probability_threshold < 1.0:
            raise ValueError(f"probability_threshold {self.probability_threshold!r}: allowed: in (0, 1)")

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    @property
    def problem_type(self) -> str:
        """``ModelQualityAppSpecification.ProblemType``."""
        return BINARY_CLASSIFICATION if self.binary else MULTICLASS_CLASSIFICATION

    @property
    def positive_class(self) -> str:
        return self.classes[self.positive_class_index]

    @property
    def csv(self) -> bool:
        return self.content_type == contract.CSV_CONTENT_TYPE

    # -- where the values are in a captured response --

    def label_attribute(self, *, batch: bool) -> str:
        """The predicted label: a CSV column index, or JMESPath (``[*]`` over a batch, ``[0]`` for one
        record)."""
        if self.csv:
            return str(contract.CSV_LABEL_COLUMN)
        return contract.JSON_LABEL_PATH if batch else json_single_label_path()

    def probability_attribute(self, class_index: int | None = None, *, batch: bool) -> str:
        """The probability of ``class_index`` (default: the positive class), same rules as the label."""
        index = self.positive_class_index if class_index is None else class_index
        if not 0 <= index < len(self.classes):
            raise ValueError(f"class_index {index}: allowed: 0 to {len(self.classes) - 1}")
        if self.csv:
            return str(contract.csv_probability_column(index))
        return contract.json_probability_path(index) if batch else json_single_probability_path(index)

    # -- the job definitions --

    def model_quality_endpoint_input(self) -> dict[str, str | float]:
        """The ``EndpointInput`` attributes of ``CreateModelQualityJobDefinition`` (one record per request).

        Binary: ``ProbabilityAttribute`` (the positive class's probability) and
        ``ProbabilityThresholdAttribute``; no ``InferenceAttribute``, whose class name could not equal the
        ground truth's "1"/"0". Multiclass: ``InferenceAttribute`` (the predicted class name).
        """
        if self.binary:
            return {
                "ProbabilityAttribute": self.probability_attribute(batch=False),
                "ProbabilityThresholdAttribute": self.probability_threshold,
            }
        return {"InferenceAttribute": self.label_attribute(batch=False)}

    def clarify_endpoint_input(self) -> dict[str, str | float]:
        """The ``EndpointInput`` attributes of the model-bias and model-explainability job definitions (over
        every record of a capture). Binary: the positive class's probability and the threshold, so the
        predicted label is 1/0 like the ground truth; multiclass: the predicted class name."""
        attributes: dict[str, str | float] = {}
        if not self.csv:
            attributes["FeaturesAttribute"] = JSON_FEATURES_PATH
        if self.binary:
            attributes["ProbabilityAttribute"] = self.probability_attribute(batch=True)
            attributes["ProbabilityThresholdAttribute"] = self.probability_threshold
        else:
            attributes["InferenceAttribute"] = self.label_attribute(batch=True)
        return attributes

    def clarify_predictor(self) -> dict[str, Any]:
        """The analysis configuration's ``predictor`` section (minus ``model_name`` and the instance
        settings): how Clarify's shadow endpoint is asked (CSV rows) and where it finds the scores.

        Binary: a CSV answer and the positive class's probability column. Multiclass: a JSON answer and every
        class's probability (``predictions[*].probabilities``, named by ``label_headers``): a CSV line holds
        the label in column 0, and Clarify's CSV ``probability`` is one column.
        """
        if self.binary:
            return {
                "content_type": CLARIFY_CONTENT_TYPE,
                "accept_type": contract.CSV_CONTENT_TYPE,
                "probability": contract.csv_probability_column(self.positive_class_index),
            }
        return {
            "content_type": CLARIFY_CONTENT_TYPE,
            "accept_type": contract.JSON_CONTENT_TYPE,
            "probability": contract.JSON_PROBABILITIES_PATH,
            "label_headers": list(self.classes),
        }

    def clarify_label_values(self, positive_labels: Sequence[str] = ()) -> list[int | str]:
        """``label_values_or_threshold``: ``[1]`` for a binary model (the ground truth's positive value);
        for a multiclass one, the class names of the favourable outcome (``positive_labels``, checked)."""
        if self.binary:
            if positive_labels and list(positive_labels) != [self.positive_class]:
                raise ValueError(
                    f"positive_labels {list(positive_labels)}: a binary model's positive outcome is "
                    f"{self.positive_class!r} (positive_class_index {self.positive_class_index})"
                )
            return [int(POSITIVE_VALUE)]
        unknown = [label for label in positive_labels if label not in self.classes]
        if not positive_labels or unknown:
            raise ValueError(
                f"positive_labels {list(positive_labels)}: allowed: one or more of {list(self.classes)}"
            )
        return list(positive_labels)

    @staticmethod
    def clarify_headers(input_columns: Sequence[str], label_column: str) -> list[str]:
        """The bias analysis ``headers``: the input columns in request order, then the label (last)."""
        headers = [*input_columns, label_column]
        if not input_columns or len(set(headers)) != len(headers):
            raise ValueError(
                f"headers {headers}: allowed: one or more input columns and a label, all distinct"
            )
        return headers

    # -- ground truth --

    def ground_truth_value(self, label: str) -> str:
        """The ground-truth ``data`` for an actual class ``label``: "1"/"0" (the positive class or not) for a
        binary model, the class name for a multiclass one."""
        if label not in self.classes:
            raise ValueError(f"label {label!r}: allowed: one of {list(self.classes)}")
        if self.binary:
            return POSITIVE_VALUE if label == self.positive_class else NEGATIVE_VALUE
        return label

    def predicted_value(self, label: str, positive_probability: float) -> str:
        """What the model-quality job takes as the prediction of a record (compared with
        :meth:`ground_truth_value`): for a binary model, "1" when the positive class's probability is above
        the threshold; for a multiclass one, the predicted class name ``label``."""
        if self.binary:
            return POSITIVE_VALUE if positive_probability > self.probability_threshold else NEGATIVE_VALUE
        if label not in self.classes:
            raise ValueError(f"label {label!r}: allowed: one of {list(self.classes)}")
        return label

    # -- the model-quality baseline dataset --

    def baseline_row(self, probabilities: Sequence[float], true_label: str) -> tuple[str, str, str]:
        """One row of the model-quality baseline dataset (:data:`BASELINE_COLUMNS`) for a record whose class
        probabilities (class-index order) are ``probabilities`` and whose actual class is ``true_label``.

        The prediction is the served label (the first class of highest probability, as the server's
        argmax) as :meth:`predicted_value` turns it into what the job compares; the probability is the
        positive class's for a binary model (what ``ProbabilityAttribute`` and the threshold read), the
        predicted class's for a multiclass one (informative: the multiclass job reads the prediction);
        the label is :meth:`ground_truth_value`, the value a ground-truth record carries.
        """
        values = [float(p) for p in probabilities]
        if len(values) != len(self.classes) or not all(0.0 <= p <= 1.0 for p in values):
            raise ValueError(
                f"probabilities {values}: allowed: {len(self.classes)} values in [0, 1], one per class of "
                f"{list(self.classes)}"
            )
        predicted = max(range(len(values)), key=values.__getitem__)  # the first maximum, as np.argmax
        probability = values[self.positive_class_index] if self.binary else values[predicted]
        return (
            self.predicted_value(self.classes[predicted], probability),
            repr(probability),
            self.ground_truth_value(true_label),
        )

    # -- the data-quality baseline dataset --

    @property
    def response_columns(self) -> tuple[str, ...]:
        """The names of the CSV response's columns, in column order: :data:`RESPONSE_LABEL_COLUMN` at
        ``contract.CSV_LABEL_COLUMN``, ``probability_<i>`` at ``contract.csv_probability_column(i)``
        (``predicted_label,probability_0,probability_1`` for two classes). Indices, not class names: a class
        name may hold characters a baseline column name may not."""
        names = [""] * (len(self.classes) + 1)
        names[contract.CSV_LABEL_COLUMN] = RESPONSE_LABEL_COLUMN
        for index in range(len(self.classes)):
            names[contract.csv_probability_column(index)] = f"{RESPONSE_PROBABILITY_PREFIX}_{index}"
        return tuple(check_response_column_name(name) for name in names)

    def data_quality_header(self, input_columns: Sequence[str]) -> list[str]:
        """The data-quality baseline's header: :attr:`response_columns`, then the input columns (raw names, in
        request order), the names Model Monitor gives, by position, to the columns of a captured record
        flattened as :func:`data_quality_row` does."""
        header = [*self.response_columns, *input_columns]
        if not input_columns or not all(isinstance(c, str) and c for c in input_columns):
            raise ValueError(f"input_columns {list(input_columns)}: allowed: one or more non-empty names")
        if len(set(header)) != len(header):
            clashes = sorted({name for name in header if header.count(name) > 1})
            raise ValueError(
                f"input_columns {list(input_columns)}: {clashes} appear twice in the data-quality header "
                f"{header}; allowed: input columns named apart from the response columns and each other"
            )
        return header


# ---- the model-quality baseline dataset ------------------------------------------------------------
# What Evaluate writes (contract.PREDICTIONS_OUTPUT) and the model-quality QualityCheck step reads: a CSV
# with a header row, one row per test record; the step's attributes name the columns. Model Monitor
# allows only lower-case letters and "_" in a baseline dataset's column names (Developer Guide, Model
# Monitor FAQ), which BASELINE_COLUMN_NAME checks.

BASELINE_PREDICTION_COLUMN: Final = "prediction"
BASELINE_PROBABILITY_COLUMN: Final = "probability"
BASELINE_LABEL_COLUMN: Final = "label"
#: The header of the model-quality baseline dataset, in column order.
BASELINE_COLUMNS: Final = (BASELINE_PREDICTION_COLUMN, BASELINE_PROBABILITY_COLUMN, BASELINE_LABEL_COLUMN)
#: The file Evaluate writes into its predictions output folder.
BASELINES_FILE: Final = "predictions.csv"
BASELINE_COLUMN_NAME: Final = re.compile(r"[a-z]+(_[a-z]+)*")


def check_baseline_column_name(name: str) -> str:
    """``name`` if Model Monitor accepts it as a baseline dataset's column name, else ``ValueError``."""
    if not BASELINE_COLUMN_NAME.fullmatch(name):
        raise ValueError(
            f"baseline column {name!r}: allowed: lower-case letters with '_' as the only separator "
            "(Model Monitor's rule for baseline dataset column names)"
        )
    return name


# ---- the data-quality baseline dataset -------------------------------------------------------------
# Model Monitor's data-quality job reads a captured record of a real-time endpoint as the endpoint's OUTPUT
# columns followed by its INPUT columns (Developer Guide, "Preprocessing and Postprocessing": the default
# record is ``output_data + "," + input_data``; AWS's introductory sample baselines on a CSV whose first
# column is the prediction) and names them, by position, after the baseline dataset's header (the
# baselining job's ``dataset_format`` ``{"csv": {"header": true, "output_columns_position": "START"}}``).
# So the baseline dataset Evaluate writes (contract.DATA_QUALITY_OUTPUT) has the same layout: the CSV
# response's columns (``label,p_0,...,p_<n-1>``), then the raw inputs.

#: The file Evaluate writes into its data-quality output folder (contract.DATA_QUALITY_DIR).
DATA_QUALITY_BASELINE_FILE: Final = "data_quality.csv"
#: The header names of the CSV response's columns: the served label, then ``probability_<class index>``.
RESPONSE_LABEL_COLUMN: Final = "predicted_label"
RESPONSE_PROBABILITY_PREFIX: Final = "probability"
#: Lower-case words joined by "_" (a word after the first may be a number, the class index).
RESPONSE_COLUMN_NAME: Final = re.compile(r"[a-z]+(_[a-z0-9]+)*")


def check_response_column_name(name: str) -> str:
    """``name`` if it is lower-case words joined by ``_`` (the last may be a class index), else
    ``ValueError``."""
    if not RESPONSE_COLUMN_NAME.fullmatch(name):
        raise ValueError(
            f"response column {name!r}: allowed: lower-case words with '_' as the only separator (a class "
            "index may follow the last '_')"
        )
    return name


def data_quality_row(record: CaptureRecord) -> list[str]:
    """The cells Model Monitor's data-quality job analyses for a captured record: the response's CSV line,
    ``","``, the request's CSV line (``output_data + "," + input_data``), read as one CSV row.

    One record per request, both sides captured as CSV: a batched capture's lines would be concatenated
    into one row that matches no baseline column, and JSON needs a preprocessing script to be flattened.
    """
    texts = []
    for payload in (record.endpoint_output, record.endpoint_input):
        if payload is None:
            raise ValueError(
                f"capture {record.join_key!r}: endpointInput and endpointOutput are needed (capture "
                "both modes)"
            )
        if payload.media_type != contract.CSV_CONTENT_TYPE:
            raise ValueError(
                f"capture {record.join_key!r}: {payload.mode} of {payload.observed_content_type!r}; allowed: "
                f"{contract.CSV_CONTENT_TYPE} (the data-quality job reads CSV captures as they are)"
            )
        count = record_count(payload)
        if count != 1:
            raise ValueError(
                f"capture {record.join_key!r}: {count} records in the {payload.mode}; allowed for data "
                "quality: 1 (send monitored traffic one record per request)"
            )
        texts.append(payload.text().strip("\r\n"))
    (row,) = csv.reader(io.StringIO(",".join(texts)))
    return row


# ---- helpers ---------------------------------------------------------------------------------------


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        shown = "missing" if value is None else repr(value)[:80]
        raise ValueError(f"{where}: {shown}; allowed: a JSON object")
    return value


def _payload(data: Mapping[str, Any], key: str, mode: str) -> CapturedPayload | None:
    if key not in data:
        return None
    payload = _object(data[key], f"key '{CAPTURE_DATA_KEY}.{key}'")
    where = f"{CAPTURE_DATA_KEY}.{key}"
    if payload.get("mode") != mode:
        raise ValueError(f"key '{where}.mode': {payload.get('mode')!r}; allowed: {mode!r}")
    if payload.get("encoding") not in CAPTURE_ENCODINGS:
        raise ValueError(
            f"key '{where}.encoding': {payload.get('encoding')!r}; allowed: one of {list(CAPTURE_ENCODINGS)}"
        )
    for field in ("observedContentType", "data"):
        if not isinstance(payload.get(field), str):
            raise ValueError(f"key '{where}.{field}': {payload.get(field)!r}; allowed: a string")
    return CapturedPayload(payload["observedContentType"], mode, payload["data"], payload["encoding"])


def _parse_time(value: object) -> datetime:
    where = f"key '{EVENT_METADATA_KEY}.{INFERENCE_TIME_KEY}'"
    if not isinstance(value, str):
        raise ValueError(f"{where}: {value!r}; allowed: a UTC time such as '2024-01-19T19:27:57Z'")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r}; allowed: a UTC time such as '2024-01-19T19:27:57Z'") from None
    offset = moment.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(f"{where}: {value!r}; allowed: a UTC time ending in 'Z'")
    return moment.astimezone(UTC)


def _utc(moment: datetime, key: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{key} {moment!r}: allowed: a timezone-aware datetime (it is written in UTC)")
    return moment.astimezone(UTC)


def _check_prefix(prefix: str, key: str) -> None:
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix.split("://", 1)[-1]:
        raise ValueError(
            f"{key} {prefix!r}: allowed: a non-empty S3 prefix or URI without a trailing '/' or '//' "
            "(SageMaker refuses keys with '//')"
        )


def _check_csv_value(value: object, key: str) -> None:
    if not isinstance(value, str) or not value or _CSV_UNSAFE.search(value):
        raise ValueError(
            f"{key} {value!r}: allowed: a non-empty string without commas, quotes or line breaks (the "
            "ground truth is one CSV value, and the CSV response writes the label unquoted only then)"
        )
