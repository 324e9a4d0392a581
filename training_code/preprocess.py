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
      ]
    }

The schema is enforced: each file's header must list exactly the declared columns in the declared
order, ``float`` cells must parse as finite numbers, ``int`` cells as integers (``[-+]?[0-9]+``). Any
mismatch fails the job (exit code 2) with a message naming the column (and file/row).

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
* ``train/preprocessing.json`` and ``preprocessing/preprocessing.json``: the fitted transform (feature
  names, imputation values, clip bounds, scaler mean/std), class labels, split sizes and a data report;
  the training job gets it through the train channel and ships it inside model.tar.gz;
* ``baseline/baseline.csv``: header + the raw (untransformed) feature cells of the train split, i.e.
  what the endpoint receives, for the Model Monitor data-quality baseline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from common import EXIT_OK, UsageError, dumps_json, get_logger, run_entry_point
from features import (
    COLUMN_TYPES,
    OUTLIER_METHODS,
    ColumnType,
    FeatureTransform,
    OutlierPolicy,
    SchemaError,
    is_null,
    parse_numeric,
)

LOG = get_logger("preprocess")

DEFAULT_INPUT_DIR = "/opt/ml/processing/input"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"
MANIFEST_FILE = "manifest.json"
PREPROCESSING_FILE = "preprocessing.json"
PREPROCESSING_FORMAT_VERSION = 1
SPLITS = ("train", "validation", "test")
SPLIT_FILES = {split: f"{split}/{split}.csv" for split in SPLITS}
BASELINE_FILE = "baseline/baseline.csv"


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

    @property
    def feature_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(column for column in self.columns if column.name != self.label)

    @property
    def label_type(self) -> ColumnType:
        return next(column.type for column in self.columns if column.name == self.label)


def _require(data: dict[str, Any], key: str, kind: type, where: str = MANIFEST_FILE) -> Any:
    if key not in data:
        raise UsageError(f"{where}: missing required key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is str and not value):
        raise UsageError(f"{where}: key {key!r} must be a non-empty {kind.__name__}, got {value!r}")
    return value


def parse_manifest(data: Any) -> Manifest:
    """Validate the manifest's structure; errors name the key or column."""
    if not isinstance(data, dict):
        raise UsageError(f"{MANIFEST_FILE}: must be a JSON object")
    known = {"dataset", "version", "files", "label", "columns", "classes", "description"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{MANIFEST_FILE}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    dataset = _require(data, "dataset", str)
    version = _require(data, "version", str)
    files = _require(data, "files", list)
    if not files or not all(isinstance(f, str) and f for f in files):
        raise UsageError(f"{MANIFEST_FILE}: 'files' must be a non-empty list of file names, got {files!r}")
    for name in files:
        path = Path(name)
        if path.is_absolute() or ".." in path.parts:
            raise UsageError(f"{MANIFEST_FILE}: file {name!r} must be relative to the input directory")
    label = _require(data, "label", str)
    raw_columns = _require(data, "columns", list)
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
    names = [column.name for column in columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"{MANIFEST_FILE}: duplicate column name(s) {duplicates}")
    if label not in names:
        raise UsageError(f"{MANIFEST_FILE}: label column {label!r} is not among the declared columns")
    if len(columns) < 2:
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
        dataset, version, tuple(files), label, tuple(columns), None if classes is None else tuple(classes)
    )


def read_manifest(input_dir: Path) -> Manifest:
    path = input_dir / MANIFEST_FILE
    if not path.is_file():
        raise UsageError(
            f"{path} not found: the input directory must hold {MANIFEST_FILE} and the data files"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
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
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--input_dir", "--input-dir", default=DEFAULT_INPUT_DIR)
    parser.add_argument("--output_dir", "--output-dir", default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--train_ratio", "--train-ratio", type=float, default=0.7)
    parser.add_argument("--validation_ratio", "--validation-ratio", type=float, default=0.15)
    parser.add_argument("--test_ratio", "--test-ratio", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--outlier_method", "--outlier-method", choices=OUTLIER_METHODS, default="iqr")
    parser.add_argument("--iqr_factor", "--iqr-factor", type=float, default=3.0)
    parser.add_argument("--quantile_low", "--quantile-low", type=float, default=0.001)
    parser.add_argument("--quantile_high", "--quantile-high", type=float, default=0.999)
    args = parser.parse_args(argv)
    ratios = {"train": args.train_ratio, "validation": args.validation_ratio, "test": args.test_ratio}
    for split, ratio in ratios.items():
        if not 0.0 < ratio < 1.0:
            raise UsageError(f"--{split}_ratio must be in (0, 1), got {ratio}")
    if abs(sum(ratios.values()) - 1.0) > 1e-9:
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
    input_dir: Path, output_dir: Path, ratios: dict[str, float], seed: int, outliers: OutlierPolicy
) -> dict[str, Any]:
    """Run the whole job; returns the preprocessing.json content."""
    manifest = read_manifest(input_dir)
    LOG.info("dataset %s version %s: files %s", manifest.dataset, manifest.version, list(manifest.files))
    rows, origins = read_rows(input_dir, manifest)
    names = [column.name for column in manifest.columns]
    columns = [[row[j] for row in rows] for j in range(len(names))]
    check_types(manifest, columns, origins)

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
    outputs[f"train/{PREPROCESSING_FILE}"] = dumps_json(spec)
    outputs[f"preprocessing/{PREPROCESSING_FILE}"] = dumps_json(spec)
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
    preprocess(Path(args.input_dir), Path(args.output_dir), args.ratios, args.seed, args.outliers)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_entry_point(main, "processing", LOG))
