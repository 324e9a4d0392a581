"""The feature transform fitted by preprocess.py and shipped with the model as ``preprocessing.json``.

Raw tabular rows (strings, exactly as the dataset CSV and the endpoint receive them) become the model's
float feature vectors in three steps, each fitted on the **train split only**:

1. **impute** nulls: numeric columns (``float``/``int``) with the train median, ``category`` columns
   with the train mode (ties: lexicographically smallest);
2. **clip** numeric outliers to bounds fitted on train: ``iqr`` = ``[Q1 - k*IQR, Q3 + k*IQR]``,
   ``quantile`` = ``[q_low, q_high]`` quantiles, or ``none``;
3. **standardize** numeric columns with the train mean/std (after imputation and clipping; a constant
   column gets std 1); one-hot encode ``category`` columns over the train categories (an unseen
   category encodes as all zeros).

A cell is null when, stripped and lower-cased, it is one of :data:`NULL_TOKENS`.

Training and serving read ``preprocessing.json`` through :func:`read_preprocessing` only: it validates
the file and names the file and key of anything malformed (:class:`PreprocessingError`); the serving
code then applies ``transform(rows)``. This module depends on numpy only.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import contract
import numpy as np

NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
COLUMN_TYPES = ("float", "int", "category")
OUTLIER_METHODS = ("iqr", "quantile", "none")
_INT_PATTERN = re.compile(r"[-+]?[0-9]+")

ColumnType = Literal["float", "int", "category"]


class SchemaError(ValueError):
    """A value that does not match its column's declared type; the message names column and row.

    ``row`` is the 0-based position of the offending value in the parsed cells, when known.
    """

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


def is_null(cell: str) -> bool:
    return cell.strip().lower() in NULL_TOKENS


def parse_numeric(
    cells: Sequence[str], column: str, column_type: ColumnType, first_row: int = 1
) -> np.ndarray:
    """Parse one numeric column; nulls become NaN. ``first_row`` numbers the rows in error messages."""
    values = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        if is_null(cell):
            values[i] = np.nan
            continue
        text = cell.strip()
        if column_type == "int" and not _INT_PATTERN.fullmatch(text):
            raise SchemaError(
                f"column {column!r} is declared as int but row {first_row + i} holds {cell!r}", i
            )
        try:
            number = float(text)
        except ValueError:
            raise SchemaError(
                f"column {column!r} is declared as {column_type} but row {first_row + i} holds {cell!r}", i
            ) from None
        if not math.isfinite(number):
            raise SchemaError(f"column {column!r} row {first_row + i} holds a non-finite value {cell!r}", i)
        values[i] = number
    return values


@dataclass
class NumericColumn:
    name: str
    type: ColumnType
    impute: float
    clip_low: float | None
    clip_high: float | None
    mean: float
    std: float

    kind: Literal["numeric"] = field(default="numeric", init=False)

    def output_names(self) -> list[str]:
        return [self.name]

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Impute, clip and scale parsed values (NaN = null)."""
        filled = np.where(np.isnan(values), self.impute, values)
        low = -np.inf if self.clip_low is None else self.clip_low
        high = np.inf if self.clip_high is None else self.clip_high
        return (np.clip(filled, low, high) - self.mean) / self.std

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "impute": self.impute,
            "clip": [self.clip_low, self.clip_high],
            "mean": self.mean,
            "std": self.std,
        }


@dataclass
class CategoricalColumn:
    name: str
    impute: str
    categories: list[str]

    type: ColumnType = field(default="category", init=False)
    kind: Literal["categorical"] = field(default="categorical", init=False)

    def output_names(self) -> list[str]:
        return [f"{self.name}={category}" for category in self.categories]

    def apply(self, cells: Sequence[str]) -> np.ndarray:
        """One-hot encode raw cells (nulls imputed with the train mode; unseen categories -> zeros)."""
        index = {category: i for i, category in enumerate(self.categories)}
        out = np.zeros((len(cells), len(self.categories)), dtype=np.float64)
        for row, cell in enumerate(cells):
            value = self.impute if is_null(cell) else cell.strip()
            position = index.get(value)
            if position is not None:
                out[row, position] = 1.0
        return out

    def unknown_count(self, cells: Sequence[str]) -> int:
        known = set(self.categories)
        return sum(1 for cell in cells if not is_null(cell) and cell.strip() not in known)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "impute": self.impute,
            "categories": list(self.categories),
        }


Column = NumericColumn | CategoricalColumn


@dataclass
class OutlierPolicy:
    method: str = "iqr"
    iqr_factor: float = 3.0
    quantile_low: float = 0.001
    quantile_high: float = 0.999

    def __post_init__(self) -> None:
        if self.method not in OUTLIER_METHODS:
            raise ValueError(f"outlier method {self.method!r} is not one of {', '.join(OUTLIER_METHODS)}")
        if not self.iqr_factor > 0:
            raise ValueError(f"iqr_factor must be > 0, got {self.iqr_factor}")
        if not 0.0 <= self.quantile_low < self.quantile_high <= 1.0:
            raise ValueError(
                f"quantiles must satisfy 0 <= low < high <= 1, got {self.quantile_low}, {self.quantile_high}"
            )

    def bounds(self, values: np.ndarray) -> tuple[float | None, float | None]:
        """Clip bounds fitted on non-null train values."""
        if self.method == "none":
            return None, None
        if self.method == "quantile":
            low, high = np.quantile(values, [self.quantile_low, self.quantile_high])
            return float(low), float(high)
        q1, q3 = np.quantile(values, [0.25, 0.75])
        spread = float(q3 - q1)
        return float(q1 - self.iqr_factor * spread), float(q3 + self.iqr_factor * spread)

    def to_dict(self) -> dict[str, Any]:
        if self.method == "iqr":
            return {"method": "iqr", "iqr_factor": self.iqr_factor}
        if self.method == "quantile":
            return {"method": "quantile", "low": self.quantile_low, "high": self.quantile_high}
        return {"method": "none"}


@dataclass
class FeatureTransform:
    """Impute -> clip -> standardize (numeric) / one-hot (category), column by column in input order."""

    columns: list[Column]

    @property
    def input_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.output_names()]

    @classmethod
    def fit(
        cls,
        columns: Sequence[tuple[str, ColumnType]],
        train_cells: Sequence[Sequence[str]],
        outliers: OutlierPolicy,
    ) -> FeatureTransform:
        """Fit on the train split. ``train_cells[j]`` holds the raw cells of ``columns[j]``."""
        fitted: list[Column] = []
        for (name, column_type), cells in zip(columns, train_cells, strict=True):
            if column_type == "category":
                present = [cell.strip() for cell in cells if not is_null(cell)]
                if not present:
                    raise SchemaError(f"column {name!r} has no non-null value in the train split")
                counts = Counter(present)
                top = max(counts.values())
                mode = min(value for value, count in counts.items() if count == top)
                fitted.append(CategoricalColumn(name=name, impute=mode, categories=sorted(counts)))
                continue
            values = parse_numeric(cells, name, column_type)
            observed = values[~np.isnan(values)]
            if observed.size == 0:
                raise SchemaError(f"column {name!r} has no non-null value in the train split")
            median = float(np.median(observed))
            low, high = outliers.bounds(observed)
            column = NumericColumn(name, column_type, median, low, high, mean=0.0, std=1.0)
            processed = column.apply(values)  # imputed and clipped, not yet scaled (mean 0, std 1)
            std = float(processed.std())
            column.mean = float(processed.mean())
            column.std = std if std > 1e-12 else 1.0
            fitted.append(column)
        return cls(fitted)

    def transform_columns(self, cells: Sequence[Sequence[str]], first_row: int = 1) -> np.ndarray:
        """Transform column-major raw cells (``cells[j]`` = column j) into a float64 [n, d] matrix."""
        if len(cells) != len(self.columns):
            raise SchemaError(f"expected {len(self.columns)} input columns, got {len(cells)}")
        blocks: list[np.ndarray] = []
        for column, column_cells in zip(self.columns, cells, strict=True):
            if isinstance(column, CategoricalColumn):
                blocks.append(column.apply(column_cells))
            else:
                values = parse_numeric(column_cells, column.name, column.type, first_row)
                blocks.append(column.apply(values)[:, None])
        return np.concatenate(blocks, axis=1)

    def transform(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        """Transform raw rows (each in :attr:`input_names` order, as the endpoint receives them)."""
        for i, row in enumerate(rows):
            if len(row) != len(self.columns):
                raise SchemaError(f"row {i + 1} has {len(row)} values, expected {len(self.columns)}")
        columns = [[row[j] for row in rows] for j in range(len(self.columns))]
        if not rows:
            return np.zeros((0, len(self.feature_names)), dtype=np.float64)
        return self.transform_columns(columns)

    def clipped_counts(self, cells: Sequence[Sequence[str]]) -> dict[str, int]:
        """How many non-null numeric values per column fall outside the clip bounds."""
        counts: dict[str, int] = {}
        for column, column_cells in zip(self.columns, cells, strict=True):
            if isinstance(column, CategoricalColumn):
                continue
            values = parse_numeric(column_cells, column.name, column.type)
            low = -np.inf if column.clip_low is None else column.clip_low
            high = np.inf if column.clip_high is None else column.clip_high
            counts[column.name] = int(np.sum((values < low) | (values > high)))
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [column.to_dict() for column in self.columns]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "transform") -> FeatureTransform:
        """Rebuild a fitted transform from :meth:`to_dict` output, validating every field.

        A malformed value raises :class:`PreprocessingError` naming its key path (``where`` is the path
        of ``data`` itself, e.g. ``transform.columns[2].mean``).
        """
        items = _list(_field(data, "columns", where), f"{where}.columns")
        if not items:
            raise PreprocessingError(f"key '{where}.columns': expected at least one column, got []")
        columns: list[Column] = []
        for index, item in enumerate(items):
            at = f"{where}.columns[{index}]"
            name = _string(_field(item, "name", at), f"{at}.name")
            kind = _field(item, "kind", at)
            if kind == "categorical":
                categories = _list(_field(item, "categories", at), f"{at}.categories")
                columns.append(
                    CategoricalColumn(
                        name,
                        _string(_field(item, "impute", at), f"{at}.impute"),
                        [_string(c, f"{at}.categories[{i}]") for i, c in enumerate(categories)],
                    )
                )
            elif kind == "numeric":
                column_type = _field(item, "type", at)
                if column_type not in ("float", "int"):
                    raise PreprocessingError(
                        f'key \'{at}.type\': expected "float" or "int", got {_shown(column_type)}'
                    )
                clip = _list(_field(item, "clip", at), f"{at}.clip")
                if len(clip) != 2:
                    raise PreprocessingError(
                        f"key '{at}.clip': expected [low, high] (numbers or null), got {_shown(clip)}"
                    )
                low, high = (_number(v, f"{at}.clip[{i}]", nullable=True) for i, v in enumerate(clip))
                raw_std = _field(item, "std", at)
                std = _number(raw_std, f"{at}.std")
                if not std > 0:
                    raise PreprocessingError(f"key '{at}.std': expected a number > 0, got {_shown(raw_std)}")
                columns.append(
                    NumericColumn(
                        name,
                        column_type,
                        _number(_field(item, "impute", at), f"{at}.impute"),
                        low,
                        high,
                        _number(_field(item, "mean", at), f"{at}.mean"),
                        std,
                    )
                )
            else:
                raise PreprocessingError(
                    f'key \'{at}.kind\': expected "numeric" or "categorical", got {_shown(kind)}'
                )
        names = [column.name for column in columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise PreprocessingError(f"key '{where}.columns': duplicate column name(s) {duplicates}")
        return cls(columns)


# --------------------------------------------------------------------------------------------------
# preprocessing.json: the one reader shared by train.py and the serving code
# --------------------------------------------------------------------------------------------------

PREPROCESSING_FILE = contract.PREPROCESSING_FILE


class PreprocessingError(ValueError):
    """A ``preprocessing.json`` that cannot be used. The message names the key path (e.g.
    ``transform.columns[2].mean``) or, for invalid JSON, the line and column; :func:`read_preprocessing`
    prefixes the file."""


@dataclass(frozen=True)
class Preprocessing:
    """The validated parts of ``preprocessing.json`` that training and serving use."""

    path: Path
    classes: list[str]
    feature_names: list[str]
    transform: FeatureTransform


def read_preprocessing(path: Path) -> Preprocessing:
    """Read and validate ``preprocessing.json`` (as written by preprocess.py).

    Raises :class:`PreprocessingError` naming the file and the offending key, or the line and column of
    invalid JSON, instead of a bare ``KeyError``/``TypeError``/``JSONDecodeError`` traceback.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PreprocessingError(f"{path}: cannot be read: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PreprocessingError(f"{path}: not UTF-8 text (invalid byte at offset {error.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise PreprocessingError(
            f"{path}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise PreprocessingError(f"{path}: not valid JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer literal longer than Python's digit limit
        raise PreprocessingError(f"{path}: not valid JSON: {error}") from None
    try:
        if not isinstance(data, dict):
            raise PreprocessingError(f"the top level: expected a JSON object, got {_shown(data)}")
        label = _field(data, "label", "")
        classes = _list(_field(label, "classes", "label"), "label.classes")
        if not classes:
            raise PreprocessingError("key 'label.classes': expected at least one class, got []")
        class_labels = [_label(c, f"label.classes[{i}]") for i, c in enumerate(classes)]
        if len(set(class_labels)) != len(class_labels):
            raise PreprocessingError(f"key 'label.classes': duplicate class labels in {class_labels}")
        names = _list(_field(data, "feature_names", ""), "feature_names")
        feature_names = [_string(n, f"feature_names[{i}]") for i, n in enumerate(names)]
        transform = FeatureTransform.from_dict(_field(data, "transform", ""), "transform")
        if transform.feature_names != feature_names:
            raise PreprocessingError(
                f"key 'feature_names': {len(feature_names)} names that differ from the "
                f"{len(transform.feature_names)} features the transform produces"
            )
    except PreprocessingError as error:
        raise PreprocessingError(f"{path}: {error}") from None
    return Preprocessing(path, class_labels, feature_names, transform)


def _shown(value: Any) -> str:
    """A JSON value as an error message shows it: ``"abc" (string)``, ``3 (number)``, ``an object``."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    kind = {str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
    return f"{json.dumps(value)[:80]} ({kind})"


def _field(obj: Any, key: str, where: str) -> Any:
    """``obj[key]`` of a JSON object at key path ``where`` ("" = the top level)."""
    path = f"{where}.{key}" if where else key
    if not isinstance(obj, dict):
        raise PreprocessingError(f"key '{where or '(top level)'}': expected an object, got {_shown(obj)}")
    if key not in obj:
        raise PreprocessingError(f"key '{path}' is missing")
    return obj[key]


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise PreprocessingError(f"key '{path}': expected an array, got {_shown(value)}")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise PreprocessingError(f"key '{path}': expected a string, got {_shown(value)}")
    return value


def _label(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PreprocessingError(f"key '{path}': expected a string, got {_shown(value)}")
    return str(value)


@overload
def _number(value: Any, path: str, nullable: Literal[False] = False) -> float: ...
@overload
def _number(value: Any, path: str, nullable: Literal[True]) -> float | None: ...
def _number(value: Any, path: str, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        allowed = "a finite number or null" if nullable else "a finite number"
        raise PreprocessingError(f"key '{path}': expected {allowed}, got {_shown(value)}")
    return float(value)
