"""SageMaker processing job: validate a raw tabular dataset, split it, fit the feature transform.

Run as ``python preprocess.py [options]`` (the whole ``training_code/`` directory must be the job's code
input, because this script imports its siblings ``common`` and ``features``).

Input (``--input_dir``, default ``/opt/ml/processing/input``)
--------------------------------------------------------------
``manifest.json`` plus the CSV file(s) it lists. Manifest format::

    {
      "dataset": "breast-cancer",          # name, free text (required)
      "version": "v1",                     # dataset version, free text (required)
      "files": ["data.csv"],               # CSV files relative to the input dir, read in this order;
                                           # each has a header row equal to the declared columns
      "label": "target",                   # the label column (type "int" or "category")
      "classes": ["malignant", "benign"],  # optional: label values in class-index order; default:
                                           # sorted (numerically for int labels, else as strings)
      "columns": [                         # every column of the CSV, in file order
        {"name": "mean radius", "type": "float"},   # "float" | "int" | "category"
        {"name": "target", "type": "category"}
      ],
      # optional, for the Feature Store (see "Feature Store records" below):
      "created_at": "2024-05-01T12:00:00Z",  # when this dataset version was created (ISO-8601 + offset)
      "record_id_column": "patient_id",      # a declared int/category column of unique row ids
      "event_time_column": "measured_at"     # a declared column: ISO-8601 (category) or epoch seconds
    }

The schema is enforced: each file's header must list exactly the declared columns in the declared
order, ``float`` cells must parse as finite numbers, ``int`` cells as integers (``[-+]?[0-9]+``). Any
mismatch fails the job (exit code 2) with a message naming the column (and file/row). Files must be
UTF-8 (a byte-order mark is allowed); a byte that is not fails naming the file, line and byte offset.
The ``record_id_column`` and ``event_time_column`` are row metadata, not model features: they are
left out of the transform, the split files and the baseline.

Nulls are the cells :data:`features.NULL_TOKENS` (empty, NA, N/A, NaN, null, None; case-insensitive).
Rows with a null label are dropped (counted in the report); null features are imputed (train median
for numbers, train mode for categories). Outliers are clipped to bounds fitted on the train split
(``--outlier_method iqr|quantile|none``). Numeric features are standardized with train mean/std,
categories one-hot encoded over the train categories. See :mod:`features`.

Split: stratified by class, ``--train_ratio/--validation_ratio/--test_ratio`` (sum 1) with ``--seed``;
within a split, rows keep their input order. The output is a deterministic function of input + args.

Output (``--output_dir``, default ``/opt/ml/processing/output``; one ProcessingOutput per subdirectory)
-------------------------------------------------------------------------------------------------------
* ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv``: no header, first column the
  class index 0..K-1, then the transformed features (float, shortest round-trip text);
* ``train/preprocessing.json``: the fitted transform (feature names, imputation values, clip bounds,
  scaler mean/std), class labels, split sizes and a data report; the training job gets it through the
  train channel and ships it inside model.tar.gz;
* ``baseline/baseline.csv``: header + the raw (untransformed) feature cells of the train split, i.e.
  what the endpoint receives, for the Model Monitor data-quality baseline;
* ``scoring/scoring.csv``: the raw feature cells of the test split, no header, no label, one record per
  line, columns in the manifest's feature order: exactly what the endpoint and batch transform receive
  (the batch-transform pipeline scores this folder). Rows are those of ``test/test.csv``, in its order;
  cells are CSV-quoted only where CSV needs it (a comma or a quote inside a category). A feature or
  label cell holding a line break fails the job (exit 2): batch transform splits records at line breaks;
* ``scoring_labels/scoring_labels.csv``: the test split's label (the class name, as in
  ``preprocessing.json``'s ``label.classes``), one per line, line i belonging to line i of
  ``scoring.csv``: the ground truth to compare its scores with;
* ``labeled/labeled.csv``: the dataset of the Clarify checks (data bias, model bias, explainability): a
  header row (the input columns in the manifest's feature order, raw names, then the manifest's label
  column), then row i of ``scoring.csv`` followed by its ground-truth value, as a ground-truth record
  carries it (:meth:`monitoring_contract.MonitoringContract.ground_truth_value`: ``1``/``0`` for two
  classes, 1 meaning the second class of ``label.classes``; the class name for more). Class labels must
  be monitorable (no comma, quote or line break: a ground-truth value is one CSV cell), else the job
  fails (exit 2) naming the label;
* only with ``--feature_store_schema``: ``feature_store/records.csv`` and ``feature_store/schema.json``
  (below); :mod:`ingest_features` writes them into the feature group. Without the argument the outputs
  are exactly the ones above.

Feature Store records (``--feature_store_schema '<json>'`` or ``--feature_store_schema_file <path>``)
-----------------------------------------------------------
The JSON is the stage config's ``feature_store`` schema, ``{"record_identifier": ..., "event_time_feature":
..., "features": [{"name": ..., "type": "Integral|Fractional|String"}, ...]}``, as built by
:func:`ingest_features.schema_argument`. Before any data is read, every configured feature is matched
against the manifest; a mismatch fails the job (exit 2) naming the feature and the manifest side.

* **Names**: a manifest column's feature name is its name with every character outside
  ``[A-Za-z0-9_-]`` replaced by ``_`` (``"mean radius"`` -> ``mean_radius``). A configured feature must
  match exactly one column; manifest columns that no feature names are simply not ingested.
* **Values** (what training sees), per type:
  ``float``/``int`` feature columns land as their processed value (imputed, clipped, standardized; the
  exact floats of the split files) and must be ``Fractional``; ``category`` columns, which training
  one-hot encodes, land as the category itself (stripped, nulls imputed with the train mode; a category
  unseen in train lands as it is, though the model sees all zeros) and must be ``String``; the label
  lands as its class index (``Integral``) or class name (``String``).
* **Record identifier**: the manifest's ``record_id_column`` (not null, unique over the dataset;
  ``Integral`` needs an ``int`` column) or, without one, ``<dataset>-<version>-<n>``: n is the 1-based
  position of the row among all data rows of the dataset version, files in manifest order (rows later
  dropped for a null label keep their numbers). ``String`` then.
* **Event time**: each row's ``event_time_column`` value or, without one, the manifest's ``created_at``
  (the same for every row); neither fails the job. Written as the event-time feature's type wants it:
  ``Fractional`` = Unix epoch seconds (``1714564800.0``), ``String`` = ISO-8601 UTC
  ``2024-05-01T12:00:00Z`` (``.SSS`` milliseconds when there are sub-seconds).
* **Idempotence**: ids and event times depend only on the dataset version's files and manifest, so a
  re-run of the same version writes the same records, and the online store (one record per id, the
  latest event time) ends in the same state; the feature values also depend on the split arguments
  (``--seed``, ratios) and the outlier policy, like training's.

``feature_store/records.csv``: header = the configured feature names in config order, then one row per
row that survives preprocessing (all splits, input order), values as Feature Store ``ValueAsString``.
``feature_store/schema.json``: ``format_version``, ``dataset``, ``version``, the schema,
``record_count`` and ``sources`` (where each feature's values come from, for humans).
"""

from __future__ import annotations

import argparse
import codecs
import csv
import difflib
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import contract
import numpy as np
from common import EXIT_OK, ArgumentParser, UsageError, dumps_json, get_logger, run_entry_point
from features import (
    COLUMN_TYPES,
    OUTLIER_METHODS,
    CategoricalColumn,
    ColumnType,
    FeatureTransform,
    OutlierPolicy,
    SchemaError,
    is_null,
    parse_numeric,
)
from ingest_features import (
    RECORDS_DIR,
    RECORDS_FILE,
    SCHEMA_FILE,
    SCHEMA_FORMAT_VERSION,
    FeatureStoreInputError,
    FeatureStoreSchema,
    format_event_time,
    parse_schema,
    parse_timestamp,
)
from monitoring_contract import MonitoringContract

LOG = get_logger("preprocess")

DEFAULT_INPUT_DIR = contract.PREPROCESS_INPUT_DIR
DEFAULT_OUTPUT_DIR = contract.PREPROCESS_OUTPUT_DIR
MANIFEST_FILE = contract.MANIFEST_FILE
PREPROCESSING_FILE = contract.PREPROCESSING_FILE
PREPROCESSING_FORMAT_VERSION = 1
SPLITS = contract.SPLITS
SPLIT_FILES = {split: f"{split}/{contract.split_file(split)}" for split in SPLITS}
BASELINE_FILE = f"{contract.BASELINE}/{contract.split_file(contract.BASELINE)}"
SCORING_FILE = f"{contract.SCORING}/{contract.split_file(contract.SCORING)}"
SCORING_LABELS_FILE = f"{contract.SCORING_LABELS}/{contract.split_file(contract.SCORING_LABELS)}"
LABELED_FILE = f"{contract.LABELED}/{contract.split_file(contract.LABELED)}"
FEATURE_STORE_RECORDS = f"{RECORDS_DIR}/{RECORDS_FILE}"
FEATURE_STORE_SCHEMA = f"{RECORDS_DIR}/{SCHEMA_FILE}"
#: The one mapping rule from a manifest column name to a Feature Store feature name.
_NOT_IN_FEATURE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def feature_name(column: str) -> str:
    """The feature name of a manifest column: every character outside ``[A-Za-z0-9_-]`` becomes ``_``."""
    return _NOT_IN_FEATURE_NAME.sub("_", column)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class Manifest:
    dataset: str
    version: str
    files: tuple[str, ...]
    label: str
    columns: tuple[ColumnSpec, ...]
    classes: tuple[str, ...] | None
    record_id_column: str | None = None
    event_time_column: str | None = None
    created_at: datetime | None = None

    @property
    def identity_columns(self) -> tuple[str, ...]:
        """The record-id and event-time columns: metadata of a row, never model features."""
        return tuple(c for c in (self.record_id_column, self.event_time_column) if c is not None)

    @property
    def feature_columns(self) -> tuple[ColumnSpec, ...]:
        excluded = {self.label, *self.identity_columns}
        return tuple(column for column in self.columns if column.name not in excluded)

    @property
    def label_type(self) -> ColumnType:
        return self.column(self.label).type

    def column(self, name: str) -> ColumnSpec:
        return next(column for column in self.columns if column.name == name)


def _require(data: dict[str, Any], key: str, kind: type, where: str = MANIFEST_FILE) -> Any:
    if key not in data:
        raise UsageError(f"{where}: missing required key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is str and not value):
        raise UsageError(f"{where}: key {key!r} must be a non-empty {kind.__name__}, got {value!r}")
    return value


def _parse_files(files: list[Any]) -> list[str]:
    if not files or not all(isinstance(f, str) and f for f in files):
        raise UsageError(f"{MANIFEST_FILE}: 'files' must be a non-empty list of file names, got {files!r}")
    for name in files:
        path = Path(name)
        if path.is_absolute() or ".." in path.parts:
            raise UsageError(f"{MANIFEST_FILE}: file {name!r} must be relative to the input directory")
    return list(files)


def _parse_columns(raw_columns: list[Any]) -> list[ColumnSpec]:
    columns: list[ColumnSpec] = []
    for i, item in enumerate(raw_columns):
        where = f"{MANIFEST_FILE} columns[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "type", "description"}:
            raise UsageError(f"{where}: must be an object with keys 'name' and 'type', got {item!r}")
        name = _require(item, "name", str, where)
        column_type = _require(item, "type", str, where)
        if column_type not in COLUMN_TYPES:
            raise UsageError(
                f"{where}: column {name!r} has type {column_type!r}; allowed: {', '.join(COLUMN_TYPES)}"
            )
        columns.append(ColumnSpec(name, cast(ColumnType, column_type)))
    return columns


def _parse_identity_columns(
    data: dict[str, Any], columns: list[ColumnSpec], label: str
) -> dict[str, str | None]:
    """The optional record-id and event-time columns: declared columns, not the label, of a fitting type."""
    names = [column.name for column in columns]
    identity: dict[str, str | None] = {}
    for key, allowed_types in (
        ("record_id_column", ("int", "category")),
        ("event_time_column", COLUMN_TYPES),
    ):
        name = data.get(key)
        if name is not None:
            if not isinstance(name, str) or name not in names:
                raise UsageError(f"{MANIFEST_FILE}: {key} {name!r} is not among the declared columns")
            if name == label or name in identity.values():
                raise UsageError(
                    f"{MANIFEST_FILE}: {key} {name!r} is already the label or the record-id/event-time column"
                )
            column_type = next(c.type for c in columns if c.name == name)
            if column_type not in allowed_types:
                raise UsageError(
                    f"{MANIFEST_FILE}: {key} {name!r} has type {column_type}; "
                    f"allowed: {', '.join(allowed_types)}"
                )
        identity[key] = name
    return identity


def parse_manifest(data: Any) -> Manifest:
    """Validate the manifest's structure; errors name the key or column."""
    if not isinstance(data, dict):
        raise UsageError(f"{MANIFEST_FILE}: must be a JSON object")
    known = {
        "dataset",
        "version",
        "files",
        "label",
        "columns",
        "classes",
        "description",
        "record_id_column",
        "event_time_column",
        "created_at",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{MANIFEST_FILE}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    dataset = _require(data, "dataset", str)
    version = _require(data, "version", str)
    files = _parse_files(_require(data, "files", list))
    label = _require(data, "label", str)
    columns = _parse_columns(_require(data, "columns", list))
    names = [column.name for column in columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"{MANIFEST_FILE}: duplicate column name(s) {duplicates}")
    if label not in names:
        raise UsageError(f"{MANIFEST_FILE}: label column {label!r} is not among the declared columns")
    identity = _parse_identity_columns(data, columns, label)
    created_at = data.get("created_at")
    if created_at is not None:
        if not isinstance(created_at, str):
            raise UsageError(f"{MANIFEST_FILE}: 'created_at' must be an ISO-8601 string, got {created_at!r}")
        try:
            created_at = parse_timestamp(created_at)
        except ValueError as error:
            raise UsageError(f"{MANIFEST_FILE}: 'created_at' {error}") from None
    if len(columns) - 1 - sum(1 for name in identity.values() if name) < 1:
        raise UsageError(f"{MANIFEST_FILE}: declare at least one feature column besides the label {label!r}")
    label_type = next(column.type for column in columns if column.name == label)
    if label_type == "float":
        raise UsageError(
            f"{MANIFEST_FILE}: label column {label!r} must be of type int or category, not float"
        )
    classes = data.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or len(classes) < 2:
            raise UsageError(
                f"{MANIFEST_FILE}: 'classes' must be a list of at least 2 labels, got {classes!r}"
            )
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise UsageError(f"{MANIFEST_FILE}: 'classes' has duplicates: {classes!r}")
    return Manifest(
        dataset,
        version,
        tuple(files),
        label,
        tuple(columns),
        None if classes is None else tuple(classes),
        identity["record_id_column"],
        identity["event_time_column"],
        created_at,
    )


def read_utf8(path: Path, name: str) -> str:
    """A file's text (a UTF-8 byte-order mark is dropped); non-UTF-8 bytes fail naming line and offset."""
    data = path.read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        line = data.count(b"\n", 0, offset) + 1
        column = offset - data.rfind(b"\n", 0, offset)
        raise UsageError(
            f"{name} line {line}: byte offset {offset} (column {column} of the line) holds byte "
            f"0x{data[offset]:02x}, which is not valid UTF-8 ({error.reason}); save the file as UTF-8"
        ) from None


def read_manifest(input_dir: Path) -> Manifest:
    path = input_dir / MANIFEST_FILE
    if not path.is_file():
        raise UsageError(
            f"{path} not found: the input directory must hold {MANIFEST_FILE} and the data files"
        )
    try:
        data = json.loads(read_utf8(path, MANIFEST_FILE))
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON: {error}") from error
    return parse_manifest(data)


def read_rows(input_dir: Path, manifest: Manifest) -> tuple[list[list[str]], list[str]]:
    """Read every listed file, checking its header against the declared columns (names and order).

    Returns the rows and, per row, where it came from (``"data.csv line 17"``) for error messages.
    """
    declared = [column.name for column in manifest.columns]
    rows: list[list[str]] = []
    origins: list[str] = []
    for name in manifest.files:
        path = input_dir / name
        if not path.is_file():
            raise UsageError(f"{MANIFEST_FILE} lists {name!r} but {path} does not exist")
        reader = csv.reader(io.StringIO(read_utf8(path, name), newline=""))
        header = next(reader, None)
        if header is None:
            raise UsageError(f"{name}: file is empty; expected a header row {declared}")
        header = [h.strip() for h in header]
        missing = [c for c in declared if c not in header]
        if missing:
            raise UsageError(f"{name}: column {missing[0]!r} declared in {MANIFEST_FILE} is missing")
        extra = [c for c in header if c not in declared]
        if extra:
            raise UsageError(f"{name}: column {extra[0]!r} is not declared in {MANIFEST_FILE}")
        if header != declared:
            position = next(i for i, (a, b) in enumerate(zip(header, declared, strict=True)) if a != b)
            raise UsageError(
                f"{name}: column {header[position]!r} is at position {position + 1}, but {MANIFEST_FILE} "
                f"declares {declared[position]!r} there (columns must be in the declared order)"
            )
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(declared):
                raise UsageError(f"{name} line {line}: {len(row)} values, expected {len(declared)}")
            rows.append(row)
            origins.append(f"{name} line {line}")
    if not rows:
        raise UsageError(f"the dataset {list(manifest.files)} has no data rows")
    return rows, origins


def check_types(manifest: Manifest, columns: list[list[str]], origins: Sequence[str]) -> None:
    """Fail on the first cell that does not match its column's declared type, naming column and line."""
    for spec, cells in zip(manifest.columns, columns, strict=True):
        if spec.type == "category":
            continue
        try:
            parse_numeric(cells, spec.name, spec.type)
        except SchemaError as error:
            where = origins[error.row] if error.row is not None else "data"
            value = cells[error.row] if error.row is not None else "?"
            raise UsageError(
                f"{where}: column {spec.name!r} is declared as {spec.type} but holds {value!r}"
            ) from None


SourceKind = Literal["record_id", "event_time", "label", "numeric", "category"]
_ALLOWED_TYPES: dict[SourceKind, tuple[str, ...]] = {
    "label": ("Integral", "String"),
    "numeric": ("Fractional",),
    "category": ("String",),
}
_TYPE_REASONS: dict[SourceKind, str] = {
    "label": "the label lands as its class index (Integral) or its class name (String)",
    "numeric": "what lands is its processed value (imputed, clipped, standardized: what training sees), "
    "a float",
    "category": "training one-hot encodes it; what lands is the category itself (stripped, nulls "
    "imputed with the train mode), a String",
}


@dataclass(frozen=True)
class FeatureSource:
    """Where the values of one configured feature come from."""

    feature: str
    type: str
    kind: SourceKind
    column: str | None  # the manifest column; None for a derived record id / event time

    def describe(self, manifest: Manifest) -> str:
        if self.kind == "record_id":
            if self.column is None:
                return f"record id '{manifest.dataset}-{manifest.version}-<row number>' (derived)"
            return f"manifest column {self.column!r} (record_id_column)"
        if self.kind == "event_time":
            if self.column is None:
                return f"manifest created_at ({self.type})"
            return f"manifest column {self.column!r} (event_time_column, as {self.type})"
        if self.kind == "label":
            return (
                f"label column {self.column!r} ({'class index' if self.type == 'Integral' else 'class name'})"
            )
        if self.kind == "numeric":
            return f"column {self.column!r} (processed: imputed, clipped, standardized)"
        return f"column {self.column!r} (category, nulls imputed with the train mode)"


def _listing(manifest: Manifest) -> str:
    return ", ".join(
        f"{c.name!r} -> {feature_name(c.name)} ({c.type})"
        for c in manifest.columns
        if c.name not in manifest.identity_columns
    )


def plan_feature_store(manifest: Manifest, schema: FeatureStoreSchema) -> tuple[FeatureSource, ...]:
    """Match every configured feature to its source (manifest only: runs before any data is read).

    Fails (UsageError) naming the feature, its config key and the manifest side on: a feature matching no
    column or several, a type that cannot hold the processed value, a record id or event time that
    cannot be derived, and a manifest column that would shadow the record-id or event-time feature.
    """
    where = "feature_store.features"
    record_id, event_time = schema.record_identifier, schema.event_time_feature
    sources: list[FeatureSource] = []

    id_type = schema.type_of(record_id)
    if manifest.record_id_column is not None:
        column = manifest.column(manifest.record_id_column)
        allowed: tuple[str, ...] = ("Integral", "String") if column.type == "int" else ("String",)
        if id_type not in allowed:
            raise UsageError(
                f"record identifier {record_id!r} (feature_store.record_identifier) is {id_type} but "
                f"{MANIFEST_FILE}'s record_id_column {column.name!r} is {column.type}; allowed: "
                f"{' or '.join(allowed)}"
            )
    elif id_type != "String":
        raise UsageError(
            f"record identifier {record_id!r} (feature_store.record_identifier) is {id_type} but the record "
            f"ids derived for a manifest without record_id_column ('<dataset>-<version>-<row number>') are "
            f"strings: make it String, or declare an int record_id_column in {MANIFEST_FILE}"
        )
    sources.append(FeatureSource(record_id, id_type, "record_id", manifest.record_id_column))

    if manifest.event_time_column is None and manifest.created_at is None:
        raise UsageError(
            f"event-time feature {event_time!r} (feature_store.event_time_feature) cannot be derived: "
            f"{MANIFEST_FILE} declares neither 'event_time_column' (a column of ISO-8601 timestamps or epoch "
            "seconds) nor 'created_at' (when this dataset version was created, e.g. \"2024-05-01T12:00:00Z\")"
        )
    sources.append(
        FeatureSource(event_time, schema.type_of(event_time), "event_time", manifest.event_time_column)
    )

    data_columns = [c for c in manifest.columns if c.name not in manifest.identity_columns]
    by_feature: dict[str, list[ColumnSpec]] = {}
    for column in data_columns:
        by_feature.setdefault(feature_name(column.name), []).append(column)
    for reserved, key in ((record_id, "record_identifier"), (event_time, "event_time_feature")):
        if reserved in by_feature:
            column = by_feature[reserved][0]
            identity_key = "record_id_column" if key == "record_identifier" else "event_time_column"
            raise UsageError(
                f"manifest column {column.name!r} maps to feature {reserved!r}, which is "
                f"feature_store.{key}; declare the column as {identity_key!r} in {MANIFEST_FILE} or rename it"
            )
    for feature in schema.features:
        if feature.name in (record_id, event_time):
            continue
        matches = by_feature.get(feature.name, [])
        identity = [c for c in manifest.identity_columns if feature_name(c) == feature.name]
        if identity:
            raise UsageError(
                f"feature {feature.name!r} ({where}) matches manifest column {identity[0]!r}, the manifest's "
                "record-id/event-time column, which is not a feature; drop the feature or the declaration"
            )
        if not matches:
            close = difflib.get_close_matches(feature.name, list(by_feature), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(
                f"feature {feature.name!r} ({where}) matches no manifest column{hint}; a column's feature "
                f"name is its name with every character outside [A-Za-z0-9_-] replaced by '_'; manifest "
                f"columns: {_listing(manifest)}"
            )
        if len(matches) > 1:
            raise UsageError(
                f"feature {feature.name!r} ({where}) matches several manifest columns "
                f"{[c.name for c in matches]}; rename one of them in the dataset"
            )
        column = matches[0]
        kind: SourceKind = (
            "label"
            if column.name == manifest.label
            else "numeric"
            if column.type in ("float", "int")
            else "category"
        )
        if feature.type not in _ALLOWED_TYPES[kind]:
            what = "the label" if kind == "label" else column.type
            raise UsageError(
                f"feature {feature.name!r} ({where}) is {feature.type} but manifest column "
                f"{column.name!r} is {what}: {_TYPE_REASONS[kind]}; "
                f"allowed: {' or '.join(_ALLOWED_TYPES[kind])}"
            )
        sources.append(FeatureSource(feature.name, feature.type, kind, column.name))
    order = {name: i for i, name in enumerate(schema.names)}
    return tuple(sorted(sources, key=lambda source: order[source.feature]))


def identity_values(
    manifest: Manifest, schema: FeatureStoreSchema, rows: Sequence[Sequence[str]], origins: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Each raw row's record id and event time (as Feature Store strings), validated for every row.

    Record id: the record_id_column's value (unique, not null) or ``<dataset>-<version>-<n>``, n = the
    1-based position of the row among all data rows of the dataset (files in manifest order).
    Event time: the event_time_column's value (ISO-8601 with offset, or epoch seconds) or created_at.
    """
    names = [column.name for column in manifest.columns]
    id_type = schema.type_of(schema.record_identifier)
    if manifest.record_id_column is None:
        record_ids = [f"{manifest.dataset}-{manifest.version}-{n}" for n in range(1, len(rows) + 1)]
    else:
        position = names.index(manifest.record_id_column)
        record_ids = []
        seen: dict[str, str] = {}
        for row, origin in zip(rows, origins, strict=True):
            cell = row[position]
            if is_null(cell):
                raise UsageError(f"{origin}: record_id_column {manifest.record_id_column!r} is null")
            value = cell.strip()
            if id_type == "Integral":
                value = str(int(value))  # check_types has verified the int column
            if value in seen:
                raise UsageError(
                    f"record_id_column {manifest.record_id_column!r}: record id {value!r} appears in "
                    f"{seen[value]} and {origin}; record ids must be unique"
                )
            seen[value] = origin
            record_ids.append(value)
    time_type = schema.type_of(schema.event_time_feature)
    if manifest.event_time_column is None:
        assert manifest.created_at is not None  # plan_feature_store has checked
        event_times = [format_event_time(manifest.created_at, time_type)] * len(rows)
    else:
        column = manifest.column(manifest.event_time_column)
        position = names.index(column.name)
        event_times = []
        for row, origin in zip(rows, origins, strict=True):
            cell = row[position]
            try:
                if is_null(cell):
                    raise ValueError("is null")
                if column.type == "category":
                    moment = parse_timestamp(cell)
                else:
                    moment = datetime.fromtimestamp(float(cell.strip()), UTC)
            except (ValueError, OverflowError, OSError) as error:
                raise UsageError(
                    f"{origin}: event_time_column {column.name!r} value {cell!r}: {error}"
                ) from None
            event_times.append(format_event_time(moment, time_type))
    return record_ids, event_times


def feature_store_records(
    sources: Sequence[FeatureSource],
    rows: Sequence[Sequence[str]],
    names: Sequence[str],
    record_ids: Sequence[str],
    event_times: Sequence[str],
    classes: Sequence[str],
    labels: np.ndarray,
    transform: FeatureTransform,
    features: np.ndarray,
) -> str:
    """``records.csv``: header = feature names in config order, one row per surviving row in input order.

    ``rows``/``record_ids``/``event_times``/``labels`` are the surviving rows; ``features`` their
    transformed matrix (what training sees).
    """
    offsets: dict[str, int] = {}
    categorical: dict[str, CategoricalColumn] = {}
    offset = 0
    for column in transform.columns:
        offsets[column.name] = offset
        offset += len(column.output_names())
        if isinstance(column, CategoricalColumn):
            categorical[column.name] = column
    columns: list[list[str]] = []
    for source in sources:
        if source.kind == "record_id":
            columns.append(list(record_ids))
        elif source.kind == "event_time":
            columns.append(list(event_times))
        elif source.kind == "label":
            index = labels.tolist()
            columns.append(
                [str(i) for i in index] if source.type == "Integral" else [classes[i] for i in index]
            )
        elif source.kind == "numeric":
            assert source.column is not None
            columns.append([repr(v) for v in features[:, offsets[source.column]].tolist()])
        else:
            assert source.column is not None
            category = categorical[source.column]
            position = names.index(source.column)
            columns.append(
                [category.impute if is_null(row[position]) else row[position].strip() for row in rows]
            )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([source.feature for source in sources])
    writer.writerows(zip(*columns, strict=True))
    return out.getvalue()


def encode_labels(manifest: Manifest, cells: list[str]) -> tuple[list[str], np.ndarray]:
    """Class labels (strings, class-index order) and each row's class index."""
    values = [cell.strip() for cell in cells]
    if manifest.label_type == "int":
        normalized = []
        for row, value in enumerate(values, start=1):
            try:
                normalized.append(str(int(value)))
            except ValueError:
                raise UsageError(
                    f"label column {manifest.label!r} is declared as int but row {row} holds {value!r}"
                ) from None
        values = normalized
    if manifest.classes is not None:
        classes = list(manifest.classes)
        if manifest.label_type == "int":
            classes = [str(int(c)) for c in classes]
        unknown = sorted(set(values) - set(classes))
        if unknown:
            raise UsageError(
                f"label column {manifest.label!r} holds {unknown[0]!r}, which is not in the declared classes"
            )
    elif manifest.label_type == "int":
        classes = [str(v) for v in sorted({int(v) for v in values})]
    else:
        classes = sorted(set(values))
    if len(classes) < 2:
        raise UsageError(f"label column {manifest.label!r} has a single class {classes}; need at least 2")
    index = {label: i for i, label in enumerate(classes)}
    return classes, np.array([index[v] for v in values], dtype=np.int64)


def stratified_split(
    labels: np.ndarray, num_classes: int, ratios: dict[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Row indices per split, stratified by class; within a split the indices are sorted (input order).

    Per class (in class order, one RNG seeded with ``seed``): shuffle its rows, give round(n*ratio) to
    validation and test and the rest to train.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for cls in range(num_classes):
        rows = np.flatnonzero(labels == cls)
        rows = rows[rng.permutation(rows.size)]
        n_val = math.floor(rows.size * ratios["validation"] + 0.5)
        n_test = math.floor(rows.size * ratios["test"] + 0.5)
        if rows.size - n_val - n_test < 1 and rows.size > 0:
            n_val, n_test = max(0, n_val - 1), n_test
        if rows.size - n_val - n_test < 1 and rows.size > 0:
            n_test = max(0, n_test - 1)
        parts["validation"].append(rows[:n_val])
        parts["test"].append(rows[n_val : n_val + n_test])
        parts["train"].append(rows[n_val + n_test :])
    return {split: np.sort(np.concatenate(chunks)) for split, chunks in parts.items()}


def format_split_csv(labels: np.ndarray, features: np.ndarray) -> str:
    """No header; class index, then features as shortest round-trip floats. Deterministic bytes."""
    out = io.StringIO()
    for label, row in zip(labels.tolist(), features.tolist(), strict=True):
        out.write(str(label))
        for value in row:
            out.write(",")
            out.write(repr(value))
        out.write("\n")
    return out.getvalue()


def format_baseline_csv(names: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rows)
    return out.getvalue()


def format_scoring_csv(rows: Sequence[Sequence[str]]) -> str:
    """No header, one record per line, cells as read (CSV-quoted only where needed). Deterministic bytes.

    A one-column record whose cell is empty is written as ``""`` (the csv module's way of keeping it a
    record rather than a blank line, which batch transform would skip).
    """
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def format_labeled_csv(
    input_columns: Sequence[str],
    label_column: str,
    rows: Sequence[Sequence[str]],
    classes: Sequence[str],
    labels: Sequence[str],
) -> str:
    """The labeled dataset of the Clarify checks: header (input columns, then the label column), then each
    raw row followed by the ground-truth value of its class label (see the module doc).

    Refuses (exit 2) class labels that a ground-truth record cannot carry and a header Clarify cannot
    read (an input column named like the label): the checks would fail later, in a pipeline run.
    """
    try:
        monitoring = MonitoringContract(tuple(classes))
        header = MonitoringContract.clarify_headers(input_columns, label_column)
    except ValueError as error:
        raise UsageError(f"label column {label_column!r}: {error}") from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row, label in zip(rows, labels, strict=True):
        writer.writerow([*row, monitoring.ground_truth_value(label)])
    return out.getvalue()


def check_single_line_cells(
    names: Sequence[str], rows: Sequence[Sequence[str]], origins: Sequence[str]
) -> None:
    """Refuse a feature or label cell holding a line break: batch transform (``SplitType`` Line) would cut
    the record there, and the labels file would no longer match the scoring file line by line.
    ``names`` are the checked columns, ``rows`` their cells, ``origins`` each row's file and line."""
    for row, origin in zip(rows, origins, strict=True):
        for name, cell in zip(names, row, strict=True):
            if "\n" in cell or "\r" in cell:
                raise UsageError(
                    f"{origin}: column {name!r} holds a line break ({cell!r}); allowed: values on one line "
                    "(batch transform and the endpoint's CSV take one record per line)"
                )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--input_dir", "--input-dir", default=DEFAULT_INPUT_DIR)
    parser.add_argument("--output_dir", "--output-dir", default=DEFAULT_OUTPUT_DIR)
    for split, ratio in contract.SPLIT_RATIOS.items():
        parser.add_argument(f"--{split}_ratio", f"--{split}-ratio", type=float, default=ratio)
    parser.add_argument("--seed", type=int, default=contract.DEFAULT_SPLIT_SEED)
    parser.add_argument("--outlier_method", "--outlier-method", choices=OUTLIER_METHODS, default="iqr")
    parser.add_argument("--iqr_factor", "--iqr-factor", type=float, default=3.0)
    parser.add_argument("--quantile_low", "--quantile-low", type=float, default=0.001)
    parser.add_argument("--quantile_high", "--quantile-high", type=float, default=0.999)
    parser.add_argument(
        "--feature_store_schema",
        "--feature-store-schema",
        default=None,
        help="JSON {record_identifier, event_time_feature, features: [{name, type}]}: also write "
        f"{RECORDS_DIR}/ for the feature group",
    )
    parser.add_argument(
        "--feature_store_schema_file",
        "--feature-store-schema-file",
        default=None,
        help="the same JSON in a file (what the pipeline passes: a container argument holds 256 characters)",
    )
    args = parser.parse_args(argv)
    args.feature_store = None
    if args.feature_store_schema is not None and args.feature_store_schema_file is not None:
        raise UsageError("--feature_store_schema and --feature_store_schema_file: give one, not both")
    schema_text, schema_source = args.feature_store_schema, "--feature_store_schema"
    if args.feature_store_schema_file is not None:
        schema_source = f"--feature_store_schema_file {args.feature_store_schema_file}"
        try:
            schema_text = Path(args.feature_store_schema_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"{schema_source}: cannot read it: {error}") from None
    if schema_text is not None:
        try:
            schema_data = json.loads(schema_text)
        except json.JSONDecodeError as error:
            raise UsageError(f"{schema_source} is not valid JSON: {error}") from None
        try:
            args.feature_store = parse_schema(schema_data, schema_source)
        except FeatureStoreInputError as error:
            raise UsageError(str(error)) from None
    ratios = {split: getattr(args, f"{split}_ratio") for split in contract.SPLIT_RATIOS}
    for split, ratio in ratios.items():
        if not contract.ratio_in_range(ratio):
            raise UsageError(f"--{split}_ratio must be in (0, 1), got {ratio}")
    if not contract.ratios_sum_to_one(ratios):
        raise UsageError(
            f"--train_ratio + --validation_ratio + --test_ratio must be 1, got {sum(ratios.values())}"
        )
    args.ratios = ratios
    try:
        args.outliers = OutlierPolicy(
            args.outlier_method, args.iqr_factor, args.quantile_low, args.quantile_high
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    return args


def preprocess(
    input_dir: Path,
    output_dir: Path,
    ratios: dict[str, float],
    seed: int,
    outliers: OutlierPolicy,
    feature_store: FeatureStoreSchema | None = None,
) -> dict[str, Any]:
    """Run the whole job; returns the preprocessing.json content.

    With ``feature_store``, the configured features are checked against the manifest first, and the
    records for the feature group are written to ``feature_store/`` as well.
    """
    manifest = read_manifest(input_dir)
    sources = plan_feature_store(manifest, feature_store) if feature_store is not None else None
    LOG.info("dataset %s version %s: files %s", manifest.dataset, manifest.version, list(manifest.files))
    rows, origins = read_rows(input_dir, manifest)
    names = [column.name for column in manifest.columns]
    columns = [[row[j] for row in rows] for j in range(len(names))]
    check_types(manifest, columns, origins)
    model_columns = [spec.name for spec in manifest.feature_columns] + [manifest.label]
    check_single_line_cells(
        model_columns, [[row[names.index(n)] for n in model_columns] for row in rows], origins
    )
    if feature_store is not None:
        record_ids, event_times = identity_values(manifest, feature_store, rows, origins)

    label_position = names.index(manifest.label)
    keep = [i for i, cell in enumerate(columns[label_position]) if not is_null(cell)]
    dropped = len(rows) - len(keep)
    if dropped:
        LOG.warning("dropped %d of %d rows with a null label %r", dropped, len(rows), manifest.label)
    rows = [rows[i] for i in keep]
    if not rows:
        raise UsageError(f"every row has a null label {manifest.label!r}")
    feature_specs = manifest.feature_columns
    feature_positions = [names.index(spec.name) for spec in feature_specs]
    classes, labels = encode_labels(manifest, [row[label_position] for row in rows])

    null_counts = {
        spec.name: sum(1 for row in rows if is_null(row[position]))
        for spec, position in zip(feature_specs, feature_positions, strict=True)
    }
    for name, count in null_counts.items():
        if count:
            LOG.info("column %r: %d null value(s) will be imputed", name, count)

    splits = stratified_split(labels, len(classes), ratios, seed)
    for split, indices in splits.items():
        if indices.size == 0:
            raise UsageError(
                f"the {split} split is empty: the dataset has too few rows for the ratios {ratios}"
            )
        missing = sorted(set(range(len(classes))) - set(labels[indices].tolist()))
        if missing:
            LOG.warning("the %s split has no row of class(es) %s", split, [classes[m] for m in missing])

    def split_cells(indices: np.ndarray) -> list[list[str]]:
        return [[rows[i][position] for i in indices] for position in feature_positions]

    cells = {split: split_cells(indices) for split, indices in splits.items()}
    try:
        transform = FeatureTransform.fit(
            [(spec.name, spec.type) for spec in feature_specs], cells["train"], outliers
        )
        matrices = {split: transform.transform_columns(cells[split]) for split in SPLITS}
    except SchemaError as error:
        raise UsageError(str(error)) from None

    report = {
        "rows_read": len(keep) + dropped,
        "rows_dropped_null_label": dropped,
        "null_counts": null_counts,
        "clipped_counts": {split: transform.clipped_counts(cells[split]) for split in SPLITS},
        "unknown_categories": {
            split: {
                column.name: column.unknown_count(cells[split][j])
                for j, column in enumerate(transform.columns)
                if column.kind == "categorical"
            }
            for split in SPLITS
        },
    }
    spec: dict[str, Any] = {
        "format_version": PREPROCESSING_FORMAT_VERSION,
        "dataset": manifest.dataset,
        "version": manifest.version,
        "label": {"name": manifest.label, "type": manifest.label_type, "classes": classes},
        "input_columns": [{"name": s.name, "type": s.type} for s in feature_specs],
        "feature_names": transform.feature_names,
        "transform": transform.to_dict(),
        "outliers": outliers.to_dict(),
        "split": {
            "seed": seed,
            "ratios": ratios,
            "rows": {split: int(splits[split].size) for split in SPLITS},
            "class_counts": {
                split: {classes[c]: int(np.sum(labels[splits[split]] == c)) for c in range(len(classes))}
                for split in SPLITS
            },
        },
        "report": report,
    }

    outputs: dict[str, str] = {
        SPLIT_FILES[split]: format_split_csv(labels[splits[split]], matrices[split]) for split in SPLITS
    }
    baseline_rows = [[rows[i][p] for p in feature_positions] for i in splits["train"]]
    outputs[BASELINE_FILE] = format_baseline_csv([s.name for s in feature_specs], baseline_rows)
    test_rows = [[rows[i][p] for p in feature_positions] for i in splits["test"]]
    outputs[SCORING_FILE] = format_scoring_csv(test_rows)
    test_labels = [classes[c] for c in labels[splits["test"]].tolist()]
    outputs[SCORING_LABELS_FILE] = format_scoring_csv([[label] for label in test_labels])
    outputs[LABELED_FILE] = format_labeled_csv(
        [s.name for s in feature_specs], manifest.label, test_rows, classes, test_labels
    )
    # Only in the train split: it reaches train.py through the train channel and ships in model.tar.gz.
    outputs[f"{contract.TRAIN}/{PREPROCESSING_FILE}"] = dumps_json(spec)
    if feature_store is not None and sources is not None:
        features = np.empty((len(rows), len(transform.feature_names)), dtype=np.float64)
        for split in SPLITS:
            features[splits[split]] = matrices[split]  # exactly the values of the split files
        outputs[FEATURE_STORE_RECORDS] = feature_store_records(
            sources,
            rows,
            names,
            [record_ids[i] for i in keep],
            [event_times[i] for i in keep],
            classes,
            labels,
            transform,
            features,
        )
        outputs[FEATURE_STORE_SCHEMA] = dumps_json(
            {
                "format_version": SCHEMA_FORMAT_VERSION,
                "dataset": manifest.dataset,
                "version": manifest.version,
                **feature_store.to_dict(),
                "record_count": len(rows),
                "sources": {source.feature: source.describe(manifest) for source in sources},
            }
        )
        LOG.info("feature store: %d records of %d features", len(rows), len(sources))
    for relative, text in outputs.items():
        path = output_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    LOG.info(
        "wrote %s: rows %s, %d features, classes %s",
        output_dir,
        {split: int(splits[split].size) for split in SPLITS},
        len(transform.feature_names),
        classes,
    )
    return spec


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    preprocess(
        Path(args.input_dir), Path(args.output_dir), args.ratios, args.seed, args.outliers, args.feature_store
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_entry_point(main, "processing", LOG))
