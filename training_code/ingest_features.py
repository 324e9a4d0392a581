"""SageMaker processing job: write one dataset version's processed features into the feature group.

Run as ``python ingest_features.py --input_dir DIR --feature_group_name NAME [options]`` (the whole
``training_code/`` directory is the job's code input). The job calls the Feature Store runtime API, so
it must run WITHOUT network isolation; it needs no other network access than the SageMaker endpoints.

This module is imported in two places and therefore has only stdlib imports at module level:

* inside the processing container as ``import ingest_features`` (``preprocess.py`` imports the shared
  names below, this script's ``main`` imports boto3 and ``common`` lazily);
* by the CDK stack at synth through ``from training_code import ingest_features`` (no numpy, torch or
  boto3 there) for :func:`schema_argument`; :data:`RECORDS_DIR`, :data:`RECORDS_FILE` and
  :data:`SCHEMA_FILE` come from :mod:`contract` (re-exported here).

Options
-------
``--input_dir`` (default ``/opt/ml/processing/input/feature_store``): ``preprocess.py``'s
``<output_dir>/feature_store/`` output, i.e. :data:`SCHEMA_FILE` + :data:`RECORDS_FILE`;
``--feature_group_name`` (required): name or ARN of the feature group;
``--region`` (default: the session's, e.g. ``AWS_REGION``);
``--max_workers`` (default 8): PutRecord calls in flight, never more;
``--max_attempts`` (default 8): attempts per record, including the first;
``--log_every`` (default 1000): a progress line every N written records.

Input
-----
``schema.json``: ``{"format_version": 1, "dataset", "version", "record_identifier",
"event_time_feature", "features": [{"name", "type"}], "record_count", "sources"}`` (``sources`` is
lineage for humans and ignored here). ``records.csv``: a header equal to the schema's feature names in
order, then one row per record; each cell is a feature's ``ValueAsString`` (an empty cell is a null:
the feature is left out of that record; the record identifier and event time are never empty).

What the job does
-----------------
1. Validates both files completely before any call: header, column count, ``Integral`` cells are
   integers, ``Fractional`` cells finite numbers, event times in the Feature Store format of their type
   (:func:`format_event_time`), record ids unique, row count equal to ``record_count``. Exit 2.
2. ``DescribeFeatureGroup`` (all pages of ``FeatureDefinitions``): the group must be ``Created`` and its
   record identifier, event-time feature and feature definitions (names and types, scalar) must equal
   the schema's; a difference fails the job naming both sides, before any record is written. Exit 2.
3. ``PutRecord`` per row, ``Record = [{"FeatureName", "ValueAsString"}, ...]`` in the schema's order, from
   a pool of ``--max_workers`` threads (records are handed to the pool through a bounded window, so
   memory stays flat). Errors in :data:`RETRYABLE_ERROR_CODES` (throttling, ``ServiceUnavailable``,
   ``InternalFailure``, timeouts), HTTP 429/500/502/503/504 and connection errors are retried with
   exponential backoff and jitter (:func:`backoff_delay`) up to ``--max_attempts`` attempts per record.
   botocore's own retries are switched off on the runtime client (``total_max_attempts=1``), so a
   record is sent at most ``--max_attempts`` times in all. Any other error (``ValidationError``,
   ``AccessForbidden``, ``ResourceNotFound``, ...) is not retried.
4. The first record that fails (not retryable, or retries exhausted) stops the job at once: no new
   record is started, in-flight retries are abandoned, and the job exits 1 with a message naming the
   record id, the error code and message, and how many records were written (SageMaker shows it as the
   job's ``ExitMessage``). Exit 0 only when every record was written.

Idempotence: the records of a dataset version carry deterministic record ids and event times (see
``preprocess.py``), so re-running the job (after a failure, or on purpose) sends the same records again
and the online store, which keeps one record per record id (the one with the latest event time), ends
in the same state: a record with the same id and event time carries the same values. The offline store
is append-only: a re-run appends a second copy of each row (same id and event time, later
``api_invocation_time``); readers deduplicate on (record id, event time) -- see the README section on
reading the offline store.

IAM (the processing job's execution role)
-----------------------------------------
* ``sagemaker:DescribeFeatureGroup`` and ``sagemaker:PutRecord`` on the one feature group's ARN,
  ``arn:${Partition}:sagemaker:${Region}:${Account}:feature-group/<name>`` (CDK:
  ``CfnFeatureGroup.arn_for_feature_group``). Assumption to verify on the first deploy: SageMaker
  lower-cases the names in some resource ARNs; compare with the ``FeatureGroupArn`` DescribeFeatureGroup
  returns when the name has upper-case letters;
* ``kms:Decrypt`` on the online store's customer-managed KMS key: the Feature Store API reference
  (``OnlineStoreSecurityConfig.KmsKeyId``) requires it of every caller of PutRecord/GetRecord/
  DeleteRecord. The offline store is written by Feature Store's own role, not by this job;
* read access to the job's input (``s3:GetObject``/``s3:ListBucket`` on the processed prefix, and
  ``kms:Decrypt`` on the lake key), as for every processing input.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from contract import INGEST_INPUT_DIR, RECORDS_DIR, RECORDS_FILE, SCHEMA_FILE

LOG = logging.getLogger("ingest_features")

# ---- the layout shared with preprocess.py and the CDK stack ---------------------------------------

# RECORDS_DIR (the preprocessing job's output folder and ProcessingOutput name), RECORDS_FILE and
# SCHEMA_FILE are defined in contract.py and re-exported here.
SCHEMA_FORMAT_VERSION: Final = 1
#: The keys of ``schema.json`` besides the schema itself.
SCHEMA_FILE_KEYS: Final = frozenset({"format_version", "dataset", "version", "record_count", "sources"})
DEFAULT_INPUT_DIR: Final = INGEST_INPUT_DIR

FEATURE_TYPES: Final = ("Integral", "Fractional", "String")
#: CreateFeatureGroup's FeatureName pattern.
FEATURE_NAME_PATTERN: Final = r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$"
#: Names Feature Store adds to the offline store and refuses as feature names.
RESERVED_FEATURE_NAMES: Final = frozenset({"is_deleted", "write_time", "api_invocation_time"})
#: The event-time formats Feature Store accepts for a String event time (seconds or milliseconds, UTC).
ISO_EVENT_TIME_PATTERN: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z")
_INTEGRAL = re.compile(r"[-+]?[0-9]+")

# ---- retries -------------------------------------------------------------------------------------

#: Error codes worth retrying: PutRecord's own retryable faults (ServiceUnavailable 503, InternalFailure
#: 500), the throttling codes AWS services return, and transient timeouts (the list botocore's
#: ``standard`` retry mode uses). Everything else (ValidationError, AccessForbidden, ResourceNotFound,
#: ...) fails at once.
RETRYABLE_ERROR_CODES: Final = frozenset(
    {
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
RETRYABLE_STATUS_CODES: Final = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE_SECONDS: Final = 0.25
BACKOFF_MAX_SECONDS: Final = 20.0


class FeatureStoreInputError(ValueError):
    """The schema, the records or the feature group do not fit together (a usage error: exit 2)."""


class IngestionError(RuntimeError):
    """A record could not be written (exit 1); the message names the record id and the error."""


# ---- the schema ------------------------------------------------------------------------------------


class FeatureLike(Protocol):
    """A feature's name and type (the stage config's FeatureDefinition, the construct's Feature)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...


@dataclass(frozen=True)
class Feature:
    name: str
    type: str


@dataclass(frozen=True)
class FeatureStoreSchema:
    """The feature group's schema as the stage config declares it (``feature_store`` section)."""

    record_identifier: str
    event_time_feature: str
    features: tuple[Feature, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def type_of(self, name: str) -> str:
        return next(f.type for f in self.features if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_identifier": self.record_identifier,
            "event_time_feature": self.event_time_feature,
            "features": [{"name": f.name, "type": f.type} for f in self.features],
        }


def _parse_feature(item: Any, where: str, index: int) -> Feature:
    """One ``{"name", "type"}`` entry of a schema: a Feature Store name that is not reserved, and a type."""
    entry = f"{where}: features[{index}]"
    if not isinstance(item, Mapping) or set(item) != {"name", "type"}:
        raise FeatureStoreInputError(f"{entry} must be an object with keys 'name' and 'type', got {item!r}")
    name, feature_type = item["name"], item["type"]
    if not isinstance(name, str) or not re.fullmatch(FEATURE_NAME_PATTERN, name):
        raise FeatureStoreInputError(
            f"{entry} name {name!r} is not a Feature Store feature name (pattern {FEATURE_NAME_PATTERN})"
        )
    if name.lower() in RESERVED_FEATURE_NAMES:
        reserved = ", ".join(sorted(RESERVED_FEATURE_NAMES))
        raise FeatureStoreInputError(f"{entry} name {name!r} is reserved by Feature Store ({reserved})")
    if feature_type not in FEATURE_TYPES:
        allowed = ", ".join(FEATURE_TYPES)
        raise FeatureStoreInputError(
            f"{where}: feature {name!r} has type {feature_type!r}; allowed: {allowed}"
        )
    return Feature(name, feature_type)


def parse_schema(
    data: Any, where: str = "--feature_store_schema", extra_keys: frozenset[str] = frozenset()
) -> FeatureStoreSchema:
    """Validate ``{"record_identifier", "event_time_feature", "features": [{"name", "type"}]}``.

    ``extra_keys`` are further keys allowed at the top level (``schema.json`` also holds the dataset,
    version and counts); any other key is refused. Errors name ``where``.
    """
    if not isinstance(data, Mapping):
        raise FeatureStoreInputError(f"{where}: must be a JSON object, got {data!r}")
    allowed = {"record_identifier", "event_time_feature", "features", *extra_keys}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise FeatureStoreInputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    for key in ("record_identifier", "event_time_feature", "features"):
        if key not in data:
            raise FeatureStoreInputError(f"{where}: missing required key {key!r}")
    record_identifier, event_time = data["record_identifier"], data["event_time_feature"]
    for key, value in (("record_identifier", record_identifier), ("event_time_feature", event_time)):
        if not isinstance(value, str) or not value:
            raise FeatureStoreInputError(f"{where}: {key!r} must be a feature name, got {value!r}")
    raw = data["features"]
    if not isinstance(raw, list) or len(raw) < 2:
        raise FeatureStoreInputError(
            f"{where}: 'features' must be a list of at least 2 features, got {raw!r}"
        )
    features = [_parse_feature(item, where, i) for i, item in enumerate(raw)]
    names = [f.name for f in features]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FeatureStoreInputError(f"{where}: duplicate feature name(s) {duplicates}")
    for key, value in (("record_identifier", record_identifier), ("event_time_feature", event_time)):
        if value not in names:
            raise FeatureStoreInputError(f"{where}: {key} {value!r} is not one of the features {names}")
    if record_identifier == event_time:
        raise FeatureStoreInputError(
            f"{where}: record_identifier and event_time_feature are both {event_time!r}"
        )
    event_type = next(f.type for f in features if f.name == event_time)
    if event_type not in ("Fractional", "String"):
        raise FeatureStoreInputError(
            f"{where}: event_time_feature {event_time!r} is {event_type}; allowed: Fractional (epoch "
            "seconds) or String (ISO-8601)"
        )
    return FeatureStoreSchema(record_identifier, event_time, tuple(features))


def schema_argument(
    record_identifier: str, event_time_feature: str, features: Sequence[FeatureLike | Mapping[str, str]]
) -> str:
    """The ``--feature_store_schema`` argument of ``preprocess.py``: compact, deterministic JSON.

    ``features`` are objects with ``name``/``type`` attributes or ``{"name", "type"}`` mappings, in the
    feature group's order. Raises :class:`FeatureStoreInputError` (a ValueError) on an invalid schema.
    """
    items = [
        {"name": f["name"], "type": f["type"]} if isinstance(f, Mapping) else {"name": f.name, "type": f.type}
        for f in features
    ]
    schema = parse_schema(
        {"record_identifier": record_identifier, "event_time_feature": event_time_feature, "features": items},
        "schema_argument",
    )
    return json.dumps(schema.to_dict(), separators=(",", ":"))


# ---- event times -----------------------------------------------------------------------------------


def parse_timestamp(text: str) -> datetime:
    """An ISO-8601 timestamp WITH a UTC offset (``2024-05-01T12:00:00Z``, ``...+02:00``), as aware UTC.

    Raises ValueError naming what is wrong; a timestamp without offset is refused (it would be ambiguous).
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp like 2024-05-01T12:00:00Z") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset; write it as e.g. 2024-05-01T12:00:00Z or +02:00")
    return moment.astimezone(UTC)


def format_event_time(moment: datetime, feature_type: str) -> str:
    """An event time as Feature Store accepts it for the event-time feature's type.

    ``Fractional``: Unix epoch seconds (``1714564800.0``, shortest round-trip float); ``String``: ISO-8601
    UTC ``yyyy-MM-dd'T'HH:mm:ssZ``, or ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` when there are sub-seconds
    (truncated to milliseconds).
    """
    moment = moment.astimezone(UTC)
    if feature_type == "Fractional":
        return repr(moment.timestamp())
    if feature_type == "String":
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        millis = moment.microsecond // 1000
        return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
    raise ValueError(f"an event time cannot be of type {feature_type!r}; allowed: Fractional, String")


def check_value(feature_type: str, value: str, *, event_time: bool = False) -> str | None:
    """Why ``value`` is not a valid ``ValueAsString`` of ``feature_type`` (None when it is)."""
    if feature_type == "Integral":
        return None if _INTEGRAL.fullmatch(value) else "is not an integer"
    if feature_type == "Fractional":
        try:
            number = float(value)
        except ValueError:
            return "is not a number"
        return None if math.isfinite(number) else "is not a finite number"
    if event_time and not ISO_EVENT_TIME_PATTERN.fullmatch(value):
        return "is not an event time like 2024-05-01T12:00:00Z or 2024-05-01T12:00:00.123Z"
    return None


# ---- the input files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordsInput:
    """A validated ``feature_store/`` directory."""

    schema: FeatureStoreSchema
    dataset: str
    version: str
    records_path: Path
    record_count: int

    def records(self) -> Iterator[tuple[str, list[dict[str, str]]]]:
        """``(record id, PutRecord Record)`` per row, in file order; empty cells are left out (null)."""
        names = self.schema.names
        id_position = names.index(self.schema.record_identifier)
        with self.records_path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if not row:
                    continue
                record = [
                    {"FeatureName": name, "ValueAsString": value}
                    for name, value in zip(names, row, strict=True)
                    if value != ""
                ]
                yield row[id_position], record


def _check_record(
    row: list[str], line: int, schema: FeatureStoreSchema, types: list[str], keys: tuple[int, int]
) -> None:
    """One row of records.csv: the right width, an id and an event time, every value of its type."""
    names = schema.names
    if len(row) != len(names):
        raise FeatureStoreInputError(
            f"{RECORDS_FILE} line {line}: {len(row)} values, expected {len(names)} ({names})"
        )
    for position in keys:
        if row[position] == "":
            raise FeatureStoreInputError(
                f"{RECORDS_FILE} line {line}: {names[position]!r} is empty; every record needs "
                "its record identifier and event time"
            )
    time_position = keys[1]
    for position, (name, feature_type, value) in enumerate(zip(names, types, row, strict=True)):
        if value == "":
            continue
        problem = check_value(feature_type, value, event_time=position == time_position)
        if problem:
            raise FeatureStoreInputError(
                f"{RECORDS_FILE} line {line}: {name!r} ({feature_type}) value {value!r} {problem}"
            )


def load_input(input_dir: Path) -> RecordsInput:
    """Read and fully validate ``schema.json`` + ``records.csv``; errors name file, line and feature."""
    schema_path, records_path = input_dir / SCHEMA_FILE, input_dir / RECORDS_FILE
    for path in (schema_path, records_path):
        if not path.is_file():
            raise FeatureStoreInputError(
                f"{path} not found: --input_dir must hold preprocess.py's {RECORDS_DIR}/ output "
                f"({SCHEMA_FILE} and {RECORDS_FILE})"
            )
    try:
        data = json.loads(schema_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FeatureStoreInputError(f"{schema_path} is not valid JSON: {error}") from None
    schema = parse_schema(data, SCHEMA_FILE, SCHEMA_FILE_KEYS)
    if data.get("format_version") != SCHEMA_FORMAT_VERSION:
        raise FeatureStoreInputError(
            f"{SCHEMA_FILE}: format_version {data.get('format_version')!r}; "
            f"this job reads {SCHEMA_FORMAT_VERSION}"
        )
    count = data.get("record_count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise FeatureStoreInputError(f"{SCHEMA_FILE}: 'record_count' must be a count, got {count!r}")
    names = schema.names
    types = [f.type for f in schema.features]
    id_position = names.index(schema.record_identifier)
    time_position = names.index(schema.event_time_feature)
    seen: dict[str, int] = {}
    rows = 0
    try:
        with records_path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header != names:
                raise FeatureStoreInputError(
                    f"{RECORDS_FILE}: header {header} differs from the features of {SCHEMA_FILE} {names}"
                )
            for row in reader:
                if not row:
                    continue
                line = reader.line_num
                rows += 1
                _check_record(row, line, schema, types, (id_position, time_position))
                record_id = row[id_position]
                if record_id in seen:
                    raise FeatureStoreInputError(
                        f"{RECORDS_FILE}: record id {record_id!r} appears on lines {seen[record_id]} and "
                        f"{line}; record ids must be unique"
                    )
                seen[record_id] = line
    except UnicodeDecodeError as error:
        raise FeatureStoreInputError(f"{records_path} is not UTF-8: {error}") from None
    if rows != count:
        raise FeatureStoreInputError(
            f"{RECORDS_FILE} holds {rows} records but {SCHEMA_FILE} says record_count {count} "
            "(an incomplete upload?)"
        )
    return RecordsInput(
        schema, str(data.get("dataset", "")), str(data.get("version", "")), records_path, rows
    )


# ---- the feature group -----------------------------------------------------------------------------


def describe_feature_group(client: Any, name: str) -> dict[str, Any]:
    """DescribeFeatureGroup, with every page of FeatureDefinitions concatenated."""
    from botocore.exceptions import ClientError

    try:
        description = dict(client.describe_feature_group(FeatureGroupName=name))
    except ClientError as error:
        info = error.response.get("Error", {})
        if info.get("Code") not in ("ResourceNotFound", "ValidationException"):
            raise
        region = client.meta.region_name
        raise FeatureStoreInputError(
            f"feature group {name!r} cannot be described in {region} ({info.get('Code')}: "
            f"{info.get('Message')}); check --feature_group_name and --region, and that the data stack "
            "is deployed"
        ) from None
    definitions = list(description.get("FeatureDefinitions", []))
    token = description.get("NextToken")
    while token:
        page = client.describe_feature_group(FeatureGroupName=name, NextToken=token)
        definitions.extend(page.get("FeatureDefinitions", []))
        token = page.get("NextToken")
    description["FeatureDefinitions"] = definitions
    return description


def check_feature_group(schema: FeatureStoreSchema, description: Mapping[str, Any], name: str) -> None:
    """Fail, naming both sides, unless the group is Created and defines exactly the schema's features."""
    group = f"feature group {description.get('FeatureGroupName', name)!r}"
    status = description.get("FeatureGroupStatus")
    if status is not None and status != "Created":
        reason = f" ({description['FailureReason']})" if description.get("FailureReason") else ""
        raise FeatureStoreInputError(
            f"{group} is {status}{reason}; records can be written once it is Created"
        )
    problems: list[str] = []
    for key, label, ours in (
        ("RecordIdentifierFeatureName", "record identifier", schema.record_identifier),
        ("EventTimeFeatureName", "event-time feature", schema.event_time_feature),
    ):
        theirs = description.get(key)
        if theirs != ours:
            problems.append(f"{label}: {group} has {theirs!r}, {SCHEMA_FILE} has {ours!r}")
    defined: dict[str, str] = {}
    for item in description.get("FeatureDefinitions", []):
        kind = item.get("FeatureType", "?")
        if item.get("CollectionType"):
            kind = f"{kind} {item['CollectionType']}"
        defined[item["FeatureName"]] = kind
    for feature in schema.features:
        if feature.name not in defined:
            problems.append(
                f"feature {feature.name!r} ({feature.type}) of {SCHEMA_FILE} is not defined in {group}"
            )
        elif defined[feature.name] != feature.type:
            problems.append(
                f"feature {feature.name!r}: {group} defines {defined[feature.name]}, "
                f"{SCHEMA_FILE} has {feature.type}"
            )
    extra = [n for n in defined if n not in set(schema.names)]
    if extra:
        problems.append(f"{group} defines feature(s) {extra} that {SCHEMA_FILE} lacks")
    if problems:
        raise FeatureStoreInputError(
            f"{SCHEMA_FILE} does not match {group} (the stage config and the deployed group differ; "
            f"redeploy or rerun preprocessing): " + "; ".join(problems)
        )


# ---- ingestion -------------------------------------------------------------------------------------


def backoff_delay(attempt: int, jitter: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): "equal jitter" exponential backoff.

    The ceiling doubles per attempt from :data:`BACKOFF_BASE_SECONDS` up to :data:`BACKOFF_MAX_SECONDS`;
    the delay is half the ceiling plus ``jitter`` (uniform in [0, 1)) times the other half, so retries of
    records throttled together spread out but never come back sooner than half the ceiling.
    """
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return ceiling / 2 + jitter * ceiling / 2


def classify_error(error: BaseException) -> tuple[str, str, bool]:
    """``(code, message, retryable)`` of an exception raised by a boto3 call."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retryable = code in RETRYABLE_ERROR_CODES or status in RETRYABLE_STATUS_CODES
        return code, str(info.get("Message", error)), retryable
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return type(error).__name__, str(error), True
    return type(error).__name__, str(error), False


class _RecordFailed(Exception):
    def __init__(self, record_id: str, code: str, message: str, attempts: int, retryable: bool) -> None:
        super().__init__(record_id)
        self.record_id, self.code, self.message = record_id, code, message
        self.attempts, self.retryable = attempts, retryable


class _Stopped(Exception):
    """A record abandoned because another record failed."""


@dataclass
class IngestionReport:
    feature_group: str
    records: int
    retries: int
    seconds: float


class _Progress:
    def __init__(self, total: int, log_every: int) -> None:
        self.total, self.log_every = total, log_every
        self.written = self.retries = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def record_written(self) -> None:
        with self._lock:
            self.written += 1
            written, retries = self.written, self.retries
        if written % self.log_every == 0 or written == self.total:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            LOG.info(
                "progress: %d/%d records written (%.1f%%), %.0f records/s, %d retries",
                written,
                self.total,
                100.0 * written / max(self.total, 1),
                written / elapsed,
                retries,
            )

    def retry(self) -> None:
        with self._lock:
            self.retries += 1


def ingest(  # noqa: C901 (the retry and collect closures share one stop flag and window; see docstring)
    input_dir: Path,
    feature_group_name: str,
    *,
    sagemaker_client: Any,
    runtime_client: Any,
    max_workers: int = 8,
    max_attempts: int = 8,
    log_every: int = 1000,
    sleep: Callable[[float], Any] | None = None,
    jitter: Callable[[], float] = random.random,
) -> IngestionReport:
    """Validate the input, check the feature group, then PutRecord every record (see the module doc).

    ``sleep`` waits between attempts (default: an interruptible wait that ends early once another record
    has failed); ``jitter`` draws the backoff jitter in [0, 1). Both are injectable for tests.
    """
    if max_workers < 1 or max_attempts < 1 or log_every < 1:
        raise FeatureStoreInputError(
            "max_workers, max_attempts and log_every must be >= 1, "
            f"got {max_workers}, {max_attempts}, {log_every}"
        )
    data = load_input(input_dir)
    LOG.info(
        "%d records of dataset %r version %r for feature group %r (%d features)",
        data.record_count,
        data.dataset,
        data.version,
        feature_group_name,
        len(data.schema.features),
    )
    check_feature_group(
        data.schema, describe_feature_group(sagemaker_client, feature_group_name), feature_group_name
    )
    LOG.info(
        "feature group %r matches %s; writing with %d workers", feature_group_name, SCHEMA_FILE, max_workers
    )

    stop = threading.Event()
    wait_between = sleep if sleep is not None else stop.wait
    progress = _Progress(data.record_count, log_every)

    def put(record_id: str, record: list[dict[str, str]]) -> None:
        attempt = 0
        while True:
            if stop.is_set():
                raise _Stopped
            attempt += 1
            try:
                runtime_client.put_record(FeatureGroupName=feature_group_name, Record=record)
            except Exception as error:
                code, message, retryable = classify_error(error)
                if not retryable or attempt >= max_attempts:
                    stop.set()
                    raise _RecordFailed(record_id, code, message, attempt, retryable) from error
                delay = backoff_delay(attempt, jitter())
                progress.retry()
                LOG.warning(
                    "record %r: %s (%s); attempt %d/%d, retrying in %.2f s",
                    record_id,
                    code,
                    message,
                    attempt,
                    max_attempts,
                    delay,
                )
                wait_between(delay)
                continue
            progress.record_written()
            return

    failure: _RecordFailed | None = None

    def collect(done: set[Future[None]]) -> None:
        nonlocal failure
        for future in done:
            error = future.exception()
            if isinstance(error, _RecordFailed) and failure is None:
                failure = error
            elif error is not None and not isinstance(error, _RecordFailed | _Stopped):
                stop.set()
                raise error

    window = 2 * max_workers  # records handed to the pool at a time: memory stays flat
    pending: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="put-record") as pool:
        for record_id, record in data.records():
            if stop.is_set():
                break
            if len(pending) >= window:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
                if stop.is_set():
                    break
            pending.add(pool.submit(put, record_id, record))
        done, _ = wait(pending)
        collect(done)
    if failure is not None:
        attempts = f"{failure.attempts} attempt{'' if failure.attempts == 1 else 's'}"
        outcome = f"still failing after {attempts}" if failure.retryable else "not retryable"
        raise IngestionError(
            f"PutRecord failed for record id {failure.record_id!r} of feature group {feature_group_name!r}: "
            f"{failure.code}: {failure.message} ({outcome}); {progress.written} of {data.record_count} "
            "records were written before the job stopped. Re-running the job is safe (same record ids "
            "and event times)."
        )
    seconds = time.monotonic() - progress.started
    LOG.info(
        "wrote all %d records to feature group %r in %.1f s (%d retries)",
        progress.written,
        feature_group_name,
        seconds,
        progress.retries,
    )
    return IngestionReport(feature_group_name, progress.written, progress.retries, seconds)


# ---- the job ---------------------------------------------------------------------------------------


def create_clients(region: str | None, max_workers: int) -> tuple[Any, Any]:
    """``(sagemaker, sagemaker-featurestore-runtime)`` clients.

    The runtime client has botocore's retries off (``total_max_attempts=1``): this module retries each
    PutRecord itself, so a record is sent at most ``--max_attempts`` times (not attempts x botocore's
    attempts), and a connection pool as large as the thread pool. The control-plane client keeps
    botocore's standard retries for its single DescribeFeatureGroup call.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    if not session.region_name:
        raise FeatureStoreInputError("no AWS region: pass --region or set AWS_REGION")
    runtime = session.client(
        "sagemaker-featurestore-runtime",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=max_workers,
            connect_timeout=10,
            read_timeout=30,
        ),
    )
    sagemaker = session.client(
        "sagemaker", config=Config(retries={"mode": "standard", "total_max_attempts": 5})
    )
    return sagemaker, runtime


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The job's arguments; argparse's errors raise common's ArgumentsError (exit 2, failure file)."""
    from common import ArgumentParser  # lazily: common imports numpy, this module must not

    parser = ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--input_dir", "--input-dir", default=DEFAULT_INPUT_DIR)
    parser.add_argument("--feature_group_name", "--feature-group-name", required=True)
    parser.add_argument("--region", default=None)
    parser.add_argument("--max_workers", "--max-workers", type=int, default=8)
    parser.add_argument("--max_attempts", "--max-attempts", type=int, default=8)
    parser.add_argument("--log_every", "--log-every", type=int, default=1000)
    args = parser.parse_args(argv)
    for option in ("max_workers", "max_attempts", "log_every"):
        if getattr(args, option) < 1:
            raise FeatureStoreInputError(f"--{option} must be >= 1, got {getattr(args, option)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from common import EXIT_OK, UsageError  # lazily: common imports numpy, this module must not

    try:
        args = parse_args(argv)
        sagemaker_client, runtime_client = create_clients(args.region, args.max_workers)
        ingest(
            Path(args.input_dir),
            args.feature_group_name,
            sagemaker_client=sagemaker_client,
            runtime_client=runtime_client,
            max_workers=args.max_workers,
            max_attempts=args.max_attempts,
            log_every=args.log_every,
        )
    except FeatureStoreInputError as error:
        raise UsageError(str(error)) from None
    return EXIT_OK


if __name__ == "__main__":
    from common import get_logger, run_entry_point

    sys.exit(run_entry_point(main, "processing", get_logger(LOG.name)))
