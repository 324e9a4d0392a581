"""Crash-safe training checkpoints for managed spot training.

SageMaker syncs the checkpoint directory (``/opt/ml/checkpoints`` by default) with the job's
``CheckpointConfig.S3Uri`` and restores it when an interrupted job restarts. This module writes and
reads that directory:

* file names ``checkpoint-rank{RANK:05d}-step{GLOBAL_STEP:012d}.pt``: the rank keeps distributed ranks
  from colliding (every rank writes its own file at the same steps), the zero-padded step makes the
  newest one easy to find. When that name is taken by a file this process did not write (a previous
  attempt's, or another configuration's sharing the folder), the checkpoint goes to
  ``checkpoint-rank{RANK:05d}-step{GLOBAL_STEP:012d}.{TOKEN}.pt`` instead (8 hex digits, one token per
  process), so no file of another run is ever overwritten;
* each file is ``torch.save`` bytes followed by an integrity footer (8-byte magic + SHA-256 of the
  payload), so truncated or bit-flipped files are detected before unpickling;
* writes are atomic: temporary file in the same directory, fsync, ``os.replace``, directory fsync;
* retention: after a checkpoint is durably written, the older checkpoints *this process wrote* beyond
  the newest ``keep`` are deleted, so the newest valid checkpoint is never removed before a newer one
  exists. A checkpoint this process did not write is never deleted or overwritten: another
  configuration's in the same folder stays intact, and so do a resumed run's predecessor's files
  (a retried job keeps up to ``keep`` files per attempt).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from common import atomic_write_bytes

CHECKPOINT_FORMAT_VERSION = 1
FOOTER_MAGIC = b"TCKPT\x00v1"
_DIGEST_SIZE = hashlib.sha256().digest_size
_FOOTER_SIZE = len(FOOTER_MAGIC) + _DIGEST_SIZE
_NAME = re.compile(r"checkpoint-rank(?P<rank>\d{5})-step(?P<step>\d{12})(?:\.(?P<token>[0-9a-f]{8}))?\.pt")


class CheckpointError(Exception):
    """A checkpoint file that cannot be used (truncated, corrupt, or written by another configuration)."""


def checkpoint_name(rank: int, step: int, token: str | None = None) -> str:
    """The file name of ``rank``'s checkpoint at ``step`` (``token``: the alternative name, see above)."""
    return f"checkpoint-rank{rank:05d}-step{step:012d}{f'.{token}' if token else ''}.pt"


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    return payload + FOOTER_MAGIC + hashlib.sha256(payload).digest()


def decode_checkpoint(data: bytes, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify the integrity footer and unpickle safely (``weights_only=True``)."""
    if len(data) < _FOOTER_SIZE or data[-_FOOTER_SIZE:-_DIGEST_SIZE] != FOOTER_MAGIC:
        raise CheckpointError("missing integrity footer (file truncated or not a checkpoint)")
    payload, digest = data[:-_FOOTER_SIZE], data[-_DIGEST_SIZE:]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError("SHA-256 mismatch (file corrupt)")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as error:  # any unpickling failure makes the file unusable, never fatal
        raise CheckpointError(f"cannot be loaded: {error}") from error
    if not isinstance(state, dict) or state.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"unsupported checkpoint format (expected version {CHECKPOINT_FORMAT_VERSION})")
    return state


@dataclass(frozen=True)
class CheckpointFile:
    path: Path
    rank: int
    step: int


class CheckpointManager:
    """Save, prune and find the newest valid checkpoint of one rank in ``directory``."""

    def __init__(self, directory: Path, rank: int, keep: int, logger: logging.Logger) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = directory
        self.rank = rank
        self.keep = keep
        self.log = logger
        #: the checkpoints this process wrote (the only ones it may prune or overwrite), by step
        self.written: dict[int, Path] = {}
        self._token = secrets.token_hex(4)

    def files(self) -> list[CheckpointFile]:
        """This rank's checkpoint files, newest (highest step) first (same step: by name)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME.fullmatch(path.name)
            if match and int(match["rank"]) == self.rank and path.is_file():
                found.append(CheckpointFile(path, self.rank, int(match["step"])))
        found.sort(key=lambda f: f.path.name)
        return sorted(found, key=lambda f: f.step, reverse=True)

    def remove_stale_temp_files(self) -> None:
        """Delete temporary files of this rank left by a write that was killed before ``os.replace``."""
        if not self.directory.is_dir():
            return
        prefix = f".checkpoint-rank{self.rank:05d}-"
        for path in self.directory.iterdir():
            if path.name.startswith(prefix) and path.name.endswith(".tmp"):
                self.log.warning("removing incomplete checkpoint write %s", path)
                path.unlink(missing_ok=True)

    def _target(self, step: int) -> Path:
        """Where the checkpoint of ``step`` goes: never over a file this process did not write."""
        if step in self.written:
            return self.written[step]
        path = self.directory / checkpoint_name(self.rank, step)
        while path.exists():  # another run's file (or, astronomically rarely, a token collision)
            path = self.directory / checkpoint_name(self.rank, step, self._token)
            if path.exists():
                self._token = secrets.token_hex(4)
        return path

    def save(self, state: dict[str, Any], step: int) -> Path:
        """Write atomically and durably, then prune the older checkpoints this process wrote."""
        path = self._target(step)
        atomic_write_bytes(path, encode_checkpoint({"format_version": CHECKPOINT_FORMAT_VERSION, **state}))
        self.written[step] = path
        older = sorted((s for s in self.written if s < step), reverse=True)
        for stale in older[self.keep - 1 :]:
            self.written.pop(stale).unlink(missing_ok=True)
        return path

    def load(self, file: CheckpointFile, map_location: str | torch.device) -> dict[str, Any]:
        return decode_checkpoint(file.path.read_bytes(), map_location)

    def valid(
        self,
        accept: Callable[[dict[str, Any]], str | None],
        map_location: str | torch.device,
        first_only: bool,
    ) -> list[tuple[CheckpointFile, dict[str, Any] | None]]:
        """Usable checkpoints, newest first; each invalid one is skipped with a warning.

        ``accept(state)`` returns ``None`` or the reason the state does not fit this run. With
        ``first_only`` the scan stops at the newest valid checkpoint (its state is returned);
        otherwise every file is checked and only the newest one's state is kept in memory.
        """
        usable: list[tuple[CheckpointFile, dict[str, Any] | None]] = []
        for file in self.files():
            try:
                state = self.load(file, map_location)
                reason = accept(state)
                if reason is not None:
                    raise CheckpointError(reason)
            except (CheckpointError, OSError) as error:
                self.log.warning("skipping checkpoint %s: %s", file.path, error)
                continue
            usable.append((file, state if not usable else None))
            if first_only:
                break
        return usable
