"""The inference server's backends: what turns a request body into a response body.

serve.py (the HTTP transport) imports this module in each worker process, after the fork, so the master
process never loads numpy or a model and no session or thread pool crosses a fork.

* ``onnx`` (the product): ``model.onnx`` in an onnxruntime session (CPU), with a fixed number of
  intra-op threads per worker (serve.py's default: the CPUs divided among the workers, so several
  workers never oversubscribe the cores) and no spinning thread pool;
* ``torch`` (benchmark reference only): the same model in eager PyTorch, loaded through inference.py's
  :func:`inference.model_fn`, as a user of the stock PyTorch container gets it. torch is imported only when
  this backend is chosen; the image has neither torch nor inference.py;
* ``noop`` (benchmark reference only): the transport floor: a fixed, valid one-record response, without
  parsing the body or running a model.

Both model backends parse requests with :mod:`payload` and apply the fitted feature transform from
``preprocessing.json`` (:mod:`features`) before the model, exactly as training did.

The transform has fast paths (:class:`NumericFastPath`) for an all-``float`` schema (every input column a
``float`` column), where imputation (nothing to impute), clipping and scaling run as whole-matrix numpy
operations:

* a CSV body of at least :data:`VECTOR_MIN_BYTES` that holds only plain decimal numbers is parsed by
  :func:`parse_decimal_csv`, in numpy, without a Python object per cell (CPython's ``float()`` takes
  ~0.2 µs per number: ~0.6 ms for a batch of 100 breast-cancer records; this takes ~0.2 ms);
* any other request is parsed by :mod:`payload`, and rows whose cells are all plain finite numbers are
  converted in one pass (``np.array`` for JSON numbers, ``float()`` for CSV strings).

Anything else (a null, a non-numeric or non-finite cell, a row of another width, more rows than allowed,
an ``int`` or ``category`` column) takes the exact column-by-column path of
:class:`features.FeatureTransform`, which also words every refusal. Every path gives bit-identical
features (tests/training_code/test_serve.py checks it on real rows and on fuzzed numbers).

Memory: once onnxruntime is imported, glibc's malloc hands freed blocks of a few hundred KB back to the
kernel instead of keeping them, so every request's temporary arrays fault their pages in again (~100
page faults and ~2x the time of a 100-record batch: bench/README.md, "Serving"). :func:`load` therefore
sets glibc's mmap and trim thresholds (:func:`keep_freed_memory`): a worker keeps up to
:data:`MALLOC_TRIM_THRESHOLD` of freed heap for its next request instead of returning it.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import contract
import numpy as np
import payload
from features import FeatureTransform, NumericColumn, PreprocessingError, read_preprocessing

LOG = logging.getLogger("serve")

#: model.onnx's class-probability output (model.py's ONNX_OUTPUTS; model.py imports torch, so the name is
#: repeated here and tests/training_code/test_serve.py checks that they agree).
ONNX_PROBABILITIES = "probabilities"


class ModelLoadError(RuntimeError):
    """The model dir cannot be served; the message names the file and what is wrong."""


class Backend(ABC):
    """Turns a request body into a response body; one instance per worker process."""

    name: str
    classes: list[str]

    @abstractmethod
    def invoke(self, body: bytes, content_type: str | None, response_type: str) -> bytes:
        """The response body; raises :class:`payload.BadRequest` for a request that cannot be scored."""

    def describe(self) -> str:
        return f"{self.name} backend, {len(self.classes)} classes"


class NoopBackend(Backend):
    """The transport floor: a fixed valid response (one record of class 0), no parsing, no model."""

    name = "noop"

    def __init__(self, model_dir: Path) -> None:
        self.classes = _read_spec(model_dir).classes
        certain = [[1.0] + [0.0] * (len(self.classes) - 1)]
        self._responses = {
            media: payload.format_predictions(certain, self.classes, media, [0])
            for media in payload.RESPONSE_TYPES
        }

    def invoke(self, body: bytes, content_type: str | None, response_type: str) -> bytes:
        return self._responses[response_type]


class NumericFastPath:
    """The feature transform of an all-``float`` schema as whole-matrix operations (see the module doc)."""

    def __init__(self, columns: Sequence[NumericColumn]) -> None:
        self.width = len(columns)
        self.low = np.array([-np.inf if c.clip_low is None else c.clip_low for c in columns])
        self.high = np.array([np.inf if c.clip_high is None else c.clip_high for c in columns])
        self.mean = np.array([c.mean for c in columns])
        self.std = np.array([c.std for c in columns])

    @classmethod
    def of(cls, transform: FeatureTransform) -> NumericFastPath | None:
        columns = transform.columns
        if all(isinstance(c, NumericColumn) and c.type == "float" for c in columns):
            return cls(columns)
        return None

    def scale(self, values: np.ndarray) -> np.ndarray:
        """Clip and standardize parsed finite values ``[n, width]`` (nothing to impute)."""
        return (np.clip(values, self.low, self.high) - self.mean) / self.std

    def transform(self, rows: Sequence[Sequence[payload.Cell]]) -> np.ndarray | None:
        """The features of rows of plain finite numbers (``width`` cells each); None for anything else."""
        values = _numbers(rows, self.width)
        if values is None or not np.isfinite(values).all():  # NaN is a null, an infinity a refusal
            return None
        return self.scale(values)


def _numbers(rows: Sequence[Sequence[payload.Cell]], width: int) -> np.ndarray | None:
    """Rows of numbers (or of strings ``float()`` reads) as a float64 ``[n, width]`` matrix, else None.

    JSON rows hold ``int``/``float``/``str``/``None`` cells (payload refused the rest): when ``np.array``
    infers a numeric dtype, every cell is a number, converted in C as ``float(str(cell))`` would (ints are
    correctly rounded either way). Strings go through ``float()``, which accepts what the exact path's
    ``float(cell.strip())`` accepts; nulls (``None``, ``""``) raise there.
    """
    if rows and rows[0] and not isinstance(rows[0][0], str):
        try:
            array = np.array(rows)
        except (ValueError, TypeError, OverflowError):  # rows of different widths, a huge integer
            return None
        if array.dtype.kind in "fiu" and array.shape == (len(rows), width):
            return array.astype(np.float64, copy=False)
        if array.dtype.kind != "U":  # a null (object dtype) or anything else: the exact path
            return None
    count = len(rows) * width
    try:
        values = np.fromiter(map(float, itertools.chain.from_iterable(rows)), np.float64, count)
    except (TypeError, ValueError):  # a null (None, ""), a non-numeric string, a row of another width
        return None
    return values.reshape(len(rows), width)


# ---- CSV of plain decimal numbers, parsed in numpy --------------------------------------------------

#: The bytes :func:`parse_decimal_csv` reads: digits, ``.``, signs, exponent letters, ``,`` and ``\n``. Any
#: other byte (a quote, a space, a letter, ``\r``, NUL, non-ASCII, a byte order mark) leaves the body to
#: the csv module.
DECIMAL_CSV_BYTES: Final = b"0123456789.+-eE,\n"
#: Below this body size the per-cell ``float()`` path is faster than the vectorized one (~10 records).
VECTOR_MIN_BYTES: Final = 2048
#: Clinger's fast path: a decimal ``m * 10**e`` with ``m < 2**53`` (at most 15 digits) and ``|e| <= 22`` is
#: one multiplication or division of two exact doubles, so IEEE arithmetic rounds it correctly: the
#: double that ``float()`` returns. Other numbers are left to ``float()``.
MAX_MANTISSA_DIGITS: Final = 15
MAX_DECIMAL_EXPONENT: Final = 22
MAX_EXPONENT_DIGITS: Final = 3
#: Longest cell read here, in bytes.
MAX_CELL_BYTES: Final = 40
#: Cells per vectorized step (bounds the temporary arrays of a 6 MB batch-transform body to a few MB).
CHUNK_CELLS: Final = 1 << 16
_POW10 = 10.0 ** np.arange(MAX_DECIMAL_EXPONENT + 1)  # exact doubles
_PLUS, _MINUS, _COMMA, _DOT, _NEWLINE, _ZERO, _E = (ord(c) for c in "+-,.\n0e")


def parse_decimal_csv(body: bytes, width: int, max_rows: int | None) -> np.ndarray | None:
    """The numbers of a CSV body of plain decimals as a float64 ``[rows, width]`` matrix, or None.

    Returns values only for a body that the csv module and ``float()`` read as the same rows of the same
    numbers, with nothing the exact path treats specially: bytes from :data:`DECIMAL_CSV_BYTES` only
    (so no quoting, no whitespace, no null token, no ``inf``/``nan``), lines separated by ``\n`` (blank
    lines skipped, as csv.reader does), exactly ``width`` non-empty cells per line, at most ``max_rows``
    lines (``None``: no limit), and every cell ``[+-]digits[.digits][(e|E)[+-]digits]`` within Clinger's
    bounds (see :data:`MAX_MANTISSA_DIGITS`). For anything else it returns None and the caller takes the
    exact path, which parses or refuses the body with its reason. The values are bit-identical to
    ``float(cell)`` (tests/training_code/test_serve.py fuzzes it).
    """
    if body.translate(None, DECIMAL_CSV_BYTES):
        return None
    if not body.endswith(b"\n"):
        body += b"\n"
    data = np.frombuffer(body, np.uint8)
    cells = _csv_cells(data, width, max_rows)
    if cells is None:
        return None
    starts, lengths = cells
    if int(lengths.max()) > MAX_CELL_BYTES:
        return None
    padded = np.concatenate([data, np.zeros(MAX_CELL_BYTES, np.uint8)])  # a cell's window never runs out
    values = np.empty(len(starts))
    for first in range(0, len(starts), CHUNK_CELLS):
        part = _decimals(padded, starts[first : first + CHUNK_CELLS], lengths[first : first + CHUNK_CELLS])
        if part is None:
            return None
        values[first : first + CHUNK_CELLS] = part
    return values.reshape(-1, width)


def _csv_cells(data: np.ndarray, width: int, max_rows: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Start and length of every cell of a body ending in ``\n``, if every non-blank line holds ``width``
    non-empty cells and there are 1 to ``max_rows`` lines; else None."""
    newline = data == _NEWLINE
    ends = np.flatnonzero(newline | (data == _COMMA))
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    ends_line = newline[ends]
    empty = lengths == 0
    if empty.any():
        after_line = np.ones_like(ends_line)
        after_line[1:] = ends_line[:-1]
        if (empty & ~(ends_line & after_line)).any():  # an empty cell (a null): the exact path imputes it
            return None
        keep = ~empty  # blank lines
        starts, lengths, ends_line = starts[keep], lengths[keep], ends_line[keep]
    rows, extra = divmod(len(starts), width)
    if rows == 0 or extra or (max_rows is not None and rows > max_rows):
        return None
    if not (ends_line.reshape(rows, width) == (np.arange(width) == width - 1)).all():
        return None  # a line of another width (the exact path names it)
    return starts, lengths


def _decimals(padded: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
    """The values of cells of digits, dots, signs and exponent letters (see :func:`parse_decimal_csv`)."""
    size = int(lengths.max())
    column = np.arange(size, dtype=np.int8)[:, None]
    length = lengths.astype(np.int8)
    chars = padded[starts + column]  # [size, cells]: row k holds the k-th byte of every cell
    chars[column >= length] = 0  # past a cell's end (its separator and the next cells)
    digits = chars - np.uint8(_ZERO)  # a digit's value; > 9 for any other byte
    is_dot = chars == _DOT
    is_exp = (chars | 0x20) == _E
    dots = is_dot.sum(0, dtype=np.int8)
    exps = is_exp.sum(0, dtype=np.int8)
    if dots.max() > 1 or exps.max() > 1:
        return None
    has_dot, has_exp = dots.astype(bool), exps.astype(bool)
    exp_at = np.where(has_exp, (is_exp * column).sum(0, dtype=np.int8), length)
    dot_at = np.where(has_dot, (is_dot * column).sum(0, dtype=np.int8), np.int8(-1))
    first = chars[0]
    signs = (chars == _PLUS) | (chars == _MINUS)
    signs[0] = False  # a leading sign is allowed; any other sign only right after the exponent letter
    if (dot_at >= exp_at).any() or (signs & (column != exp_at + 1)).any():
        return None
    # Now every byte before the exponent letter is a digit, but for a leading sign and one dot.
    mantissa_digits = exp_at - ((first == _PLUS) | (first == _MINUS)) - has_dot
    if mantissa_digits.min() < 1 or mantissa_digits.max() > MAX_MANTISSA_DIGITS:
        return None
    in_mantissa = (digits < 10) & (column < exp_at)
    factor = np.where(in_mantissa, 10.0, 1.0)
    added = digits * in_mantissa
    mantissa = np.zeros(len(starts))
    for k in range(size):  # Horner's rule over the digits: an exact integer below 10**15
        mantissa *= factor[k]
        mantissa += added[k]
    power = -np.where(has_dot, exp_at - dot_at - 1, 0).astype(np.int64)  # minus the fraction digits
    if has_exp.any():
        exponent = _exponents(chars, digits, column, length, exp_at, has_exp)
        if exponent is None:
            return None
        power += exponent
    if np.abs(power).max() > MAX_DECIMAL_EXPONENT:
        return None
    scaled = np.where(
        power >= 0, mantissa * _POW10[np.maximum(power, 0)], mantissa / _POW10[np.maximum(-power, 0)]
    )
    scaled[first == _MINUS] *= -1.0  # after the rounding, as float() does (-0.0 included)
    return scaled


def _exponents(
    chars: np.ndarray,
    digits: np.ndarray,
    column: np.ndarray,
    length: np.ndarray,
    exp_at: np.ndarray,
    has_exp: np.ndarray,
) -> np.ndarray | None:
    """The signed exponent of each cell (0 without one); None if one has no digit or too many."""
    cells = np.arange(chars.shape[1])
    after = chars[np.minimum(exp_at + 1, chars.shape[0] - 1).astype(np.intp), cells]
    signed = has_exp & ((after == _PLUS) | (after == _MINUS))
    count = np.where(has_exp, length - exp_at - 1 - signed, 0)
    if (has_exp & (count < 1)).any() or count.max() > MAX_EXPONENT_DIGITS:
        return None
    in_exponent = (digits < 10) & (column > exp_at)
    value = np.zeros(len(cells), np.int64)
    for k in range(chars.shape[0]):
        value = np.where(in_exponent[k], value * 10 + digits[k], value)
    return np.where(signed & (after == _MINUS), -value, value)


class ModelBackend(Backend):
    """Parse (payload) -> transform (features) -> class probabilities (:meth:`probabilities`) -> format."""

    def __init__(self, model_dir: Path, max_rows: int | None = payload.MAX_ROWS) -> None:
        spec = _read_spec(model_dir)
        self.transform = spec.transform
        self.classes = spec.classes
        self.input_names = spec.transform.input_names
        self.feature_count = len(spec.feature_names)
        self.fast_path = NumericFastPath.of(spec.transform)
        self.max_rows = max_rows

    @abstractmethod
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (``[n, classes]``, class-index order) of float32 features ``[n, d]``."""

    def features(self, rows: Sequence[Sequence[payload.Cell]]) -> np.ndarray:
        """The model's input for raw rows (float32 ``[n, d]``), transformed as in training."""
        fast = self.fast_path.transform(rows) if self.fast_path is not None else None
        if fast is not None:
            return fast.astype(np.float32)
        try:
            return self.transform.transform(payload.as_text(rows)).astype(np.float32)
        except ValueError as error:  # a non-numeric or non-finite cell: the message names column and row
            raise payload.BadRequest(str(error)) from None

    def csv_features(self, body: bytes, content_type: str | None) -> np.ndarray | None:
        """The features of a CSV body of plain decimals (:func:`parse_decimal_csv`), or None: then the
        caller parses the body with :mod:`payload` (which refuses what the fast path only declines)."""
        if self.fast_path is None or not isinstance(body, bytes) or len(body) < VECTOR_MIN_BYTES:
            return None
        if payload.request_type(content_type) != payload.CSV:  # the same 415 as payload's
            return None
        payload.check_body_size(len(body))
        values = parse_decimal_csv(body, self.fast_path.width, self.max_rows)
        return None if values is None else self.fast_path.scale(values).astype(np.float32)

    def invoke(self, body: bytes, content_type: str | None, response_type: str) -> bytes:
        features = self.csv_features(body, content_type)
        if features is None:
            rows = payload.parse_request(body, content_type, self.input_names, max_rows=self.max_rows)
            features = self.features(rows)
        probabilities = self.probabilities(features)
        return payload.format_predictions(
            probabilities.tolist(), self.classes, response_type, probabilities.argmax(axis=1).tolist()
        )

    def describe(self) -> str:
        return f"{self.name} backend, {len(self.input_names)} input columns, {len(self.classes)} classes"

    def warm_up(self) -> None:
        """One prediction on an all-zero row: proves the model and the transform agree before serving."""
        output = self.probabilities(np.zeros((1, self.feature_count), dtype=np.float32))
        if output.shape != (1, len(self.classes)):
            raise ModelLoadError(
                f"the model returns {output.shape[1:]} class probabilities per record; "
                f"{contract.PREPROCESSING_FILE} names {len(self.classes)} classes {self.classes}"
            )


class OnnxBackend(ModelBackend):
    """``model.onnx`` in an onnxruntime CPU session (the product)."""

    name = "onnx"

    def __init__(
        self, model_dir: Path, intra_op_threads: int, max_rows: int | None = payload.MAX_ROWS
    ) -> None:
        super().__init__(model_dir, max_rows)
        import onnxruntime  # only in the worker process, after the fork

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: with several workers per host, spinning threads
        # would take CPU from the other workers' requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = model_dir / contract.ONNX_FILE
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            raise ModelLoadError(f"{path}: onnxruntime cannot load it: {error}") from None
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if len(inputs) != 1 or ONNX_PROBABILITIES not in outputs:
            raise ModelLoadError(
                f"{path}: inputs {[i.name for i in inputs]} and outputs {outputs}; expected one input and "
                f"an output {ONNX_PROBABILITIES!r}"
            )
        self.input_name = inputs[0].name
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != self.feature_count:
            raise ModelLoadError(
                f"{path}: takes {width} features per record; {contract.PREPROCESSING_FILE}'s transform "
                f"produces {self.feature_count}"
            )
        self.intra_op_threads = intra_op_threads

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        (output,) = self.session.run([ONNX_PROBABILITIES], {self.input_name: features})
        return np.asarray(output)

    def describe(self) -> str:
        return f"{super().describe()}, intra-op threads {self.intra_op_threads}"


class TorchBackend(ModelBackend):
    """The same model in eager PyTorch through inference.py (benchmark reference; not in the image)."""

    name = "torch"

    def __init__(
        self, model_dir: Path, intra_op_threads: int, max_rows: int | None = payload.MAX_ROWS
    ) -> None:
        super().__init__(model_dir, max_rows)
        try:
            import inference
            import torch
        except ImportError as error:
            raise ModelLoadError(
                f"the torch backend needs torch and inference.py ({error}); it is a benchmark reference, "
                "not part of the serving image"
            ) from None
        torch.set_num_threads(intra_op_threads)
        self._inference = inference
        self.served = inference.model_fn(str(model_dir))
        if list(self.served.classes) != self.classes:
            raise ModelLoadError(
                f"{model_dir / contract.MODEL_FILE}: classes {self.served.classes}; "
                f"{contract.PREPROCESSING_FILE} names {self.classes}"
            )
        self.intra_op_threads = intra_op_threads

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        result: np.ndarray = self._inference.probabilities(self.served, features)
        return result

    def describe(self) -> str:
        return f"{super().describe()}, torch threads {self.intra_op_threads}"


#: glibc ``mallopt`` parameters and the values :func:`keep_freed_memory` sets. Blocks below the mmap
#: threshold come from the heap (reused after free); the heap is trimmed only when more than the trim
#: threshold is free at its top. 32 MiB is glibc's own ceiling for its dynamic mmap threshold (64-bit), and
#: twice that its dynamic trim threshold; a worker's request is bounded by the 6 MB body.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MALLOC_MMAP_THRESHOLD: Final = 32 * 1024 * 1024
MALLOC_TRIM_THRESHOLD: Final = 64 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse (see the module doc); False where the C library
    has no ``mallopt`` (not glibc: nothing to do) or refuses the values."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    )


def _read_spec(model_dir: Path) -> Any:
    try:
        return read_preprocessing(model_dir / contract.PREPROCESSING_FILE)
    except PreprocessingError as error:  # names the file and the key
        raise ModelLoadError(str(error)) from None


def load(
    backend: str, model_dir: Path, intra_op_threads: int, max_rows: int | None = payload.MAX_ROWS
) -> Backend:
    """Load ``backend`` for the model in ``model_dir`` and prove it answers (else :class:`ModelLoadError`).

    ``max_rows`` is the record limit of a request (``None``: none, for batch transform).
    """
    started = time.perf_counter()
    loaded: Backend
    if backend == "noop":
        loaded = NoopBackend(model_dir)
    elif backend == "torch":
        loaded = TorchBackend(model_dir, intra_op_threads, max_rows)
    elif backend == "onnx":
        loaded = OnnxBackend(model_dir, intra_op_threads, max_rows)
    else:
        raise ModelLoadError(f"backend {backend!r}; allowed: onnx, torch, noop")
    if isinstance(loaded, ModelBackend):
        loaded.warm_up()
    keep_freed_memory()  # after the imports (see the module doc); the same for every backend
    LOG.info(
        "worker %d: model loaded from %s (%s) in %.2f s",
        os.getpid(),
        model_dir,
        loaded.describe(),
        time.perf_counter() - started,
    )
    return loaded
