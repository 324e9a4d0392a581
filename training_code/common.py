"""Helpers shared by the container entry points (stdlib + numpy only).

The SageMaker contract these helpers implement:

* logs go to stdout, which SageMaker ships to CloudWatch (``/aws/sagemaker/TrainingJobs`` or
  ``/aws/sagemaker/ProcessingJobs``);
* a failing job writes a one-paragraph reason to ``/opt/ml/output/failure`` (training jobs: it becomes
  ``FailureReason``) or ``/opt/ml/output/message`` (processing jobs: it becomes ``ExitMessage``), and
  exits non-zero. Usage errors (bad arguments, schema mismatches) exit with 2, anything else with 1.

Command-line errors go through the same contract: :class:`ArgumentParser` prints argparse's usage and
message to stderr as usual, then raises :class:`ArgumentsError` (a :class:`UsageError`) instead of
exiting, so :func:`run_entry_point` writes that message to the failure file and exits with 2.
:class:`JobFailure` is an expected failure whose message says everything (e.g. training diverged):
logged and written without a traceback, exit code 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn

import contract
import numpy as np

OPT_ML_OUTPUT = Path(contract.OUTPUT_DIR)
#: Where SageMaker reads the failure reason of a training job / the exit message of a processing job.
FAILURE_FILES = {"training": "failure", "processing": "message"}

_UMASK = os.umask(0)
os.umask(_UMASK)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the job's inputs or arguments; the message names the offending item."""


class ArgumentsError(UsageError):
    """Command-line arguments argparse refused; the message was already printed to stderr."""


class JobFailure(Exception):
    """The job cannot succeed, for a reason its message states in full (no traceback helps); exit 1."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`ArgumentsError` instead of exiting, so the failure file is written.

    Everything argparse refuses (an unknown option, ``--epochs 2.5``, a missing value) ends here; the
    stderr output is argparse's own (usage line, then ``<prog>: error: <message>``).
    """

    def error(self, message: str) -> NoReturn:
        text = f"{self.prog}: error: {message}"
        self.print_usage(sys.stderr)
        print(text, file=sys.stderr, flush=True)
        raise ArgumentsError(text)


def get_logger(name: str) -> logging.Logger:
    """A stdout logger with timestamps (CloudWatch keeps the line order; the timestamp helps humans)."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return logger


def write_failure_reason(message: str, kind: Literal["training", "processing"]) -> None:
    """Best effort: put ``message`` where SageMaker surfaces it (only inside a SageMaker container).

    The output directory is ``SM_OUTPUT_DIR`` when set, else ``/opt/ml/output`` when ``/opt/ml`` exists;
    outside SageMaker (no ``/opt/ml``) nothing is written.
    """
    configured = os.environ.get("SM_OUTPUT_DIR")
    out_dir = Path(configured) if configured else OPT_ML_OUTPUT
    if not configured and not OPT_ML_OUTPUT.parent.is_dir():
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / FAILURE_FILES[kind]).write_text(message[:1024], encoding="utf-8")
    except OSError:
        pass


def run_entry_point(
    main: Callable[[Sequence[str] | None], int],
    kind: Literal["training", "processing"],
    logger: logging.Logger,
    argv: Sequence[str] | None = None,
) -> int:
    """Run ``main`` and turn exceptions into the SageMaker failure contract (message file + exit code)."""
    try:
        return main(argv)
    except UsageError as error:
        if not isinstance(error, ArgumentsError):  # argparse already printed it to stderr
            logger.error("%s", error)
        write_failure_reason(str(error), kind)
        return EXIT_USAGE
    except JobFailure as error:
        logger.error("%s", error)
        write_failure_reason(str(error), kind)
        return EXIT_ERROR
    except Exception as error:
        logger.error("unexpected error: %s\n%s", error, traceback.format_exc())
        write_failure_reason(f"{type(error).__name__}: {error}", kind)
        return EXIT_ERROR


def fsync_dir(path: Path) -> None:
    """Make a rename/creation in ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the complete new one, never a prefix.

    The bytes go to a temporary file in the same directory, are fsynced, renamed over ``path`` with
    ``os.replace`` (atomic on POSIX), and the directory is fsynced so the rename survives a crash.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def dumps_json(data: Any) -> str:
    """Deterministic, human-readable JSON (keys keep their insertion order, which is part of the layout)."""
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, dumps_json(data).encode("utf-8"))


def resolve_csv_files(location: Path, what: str) -> list[Path]:
    """The CSV files of a SageMaker channel: ``location`` itself, or every ``*.csv`` in it (sorted)."""
    if location.is_file():
        return [location]
    if location.is_dir():
        files = sorted(p for p in location.iterdir() if p.is_file() and p.suffix == ".csv")
        if files:
            return files
        raise UsageError(f"{what}: no .csv file in directory {location}")
    raise UsageError(f"{what}: {location} does not exist")


def load_split_csv(location: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a preprocessed split: CSV without header, label (class index 0..K-1) first, then features.

    ``location`` is a file or a channel directory (all its ``*.csv`` files, concatenated in name order).
    Returns ``(features float32 [n, d], labels int64 [n])``.
    """
    blocks: list[np.ndarray] = []
    for file in resolve_csv_files(location, what):
        try:
            block = np.loadtxt(file, delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError as error:
            raise UsageError(f"{what}: {file} is not a numeric CSV without header: {error}") from error
        if block.size == 0:
            continue
        if blocks and block.shape[1] != blocks[0].shape[1]:
            raise UsageError(
                f"{what}: {file} has {block.shape[1]} columns but earlier files have {blocks[0].shape[1]}"
            )
        blocks.append(block)
    if not blocks:
        raise UsageError(f"{what}: {location} holds no rows")
    data = np.concatenate(blocks, axis=0)
    if data.shape[1] < 2:
        raise UsageError(f"{what}: expected a label column and at least one feature column")
    labels = data[:, 0]
    if not np.all(np.isfinite(data)):
        raise UsageError(f"{what}: contains non-finite values (preprocessing should have imputed them)")
    if np.any(labels < 0) or np.any(labels != np.round(labels)):
        bad = labels[(labels < 0) | (labels != np.round(labels))][0]
        raise UsageError(f"{what}: the first column must be a class index 0..K-1, found {bad!r}")
    return np.ascontiguousarray(data[:, 1:], dtype=np.float32), labels.astype(np.int64)


def is_within(child: Path, parent: Path) -> bool:
    """Whether ``child`` is ``parent`` or inside it (after resolving symlinks and ``..``)."""
    child_real = Path(os.path.realpath(child))
    parent_real = Path(os.path.realpath(parent))
    return child_real == parent_real or parent_real in child_real.parents
