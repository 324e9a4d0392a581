"""Unit tests of the checkpoint files (checkpointing.py) and of Trainer's resume rules (in-process)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import train
from checkpointing import CheckpointError, CheckpointManager, checkpoint_name, decode_checkpoint


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, ListHandler]]:
    logger = logging.getLogger("test-checkpoints")
    handler = ListHandler()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def steps(manager: CheckpointManager) -> list[int]:
    return [f.step for f in manager.files()]


def accept_all(state: dict[str, object]) -> str | None:
    return None


def test_save_is_atomic_and_prunes_to_the_newest(
    tmp_path: Path, log: tuple[logging.Logger, ListHandler]
) -> None:
    manager = CheckpointManager(tmp_path, rank=0, keep=2, logger=log[0])
    for step in (5, 10, 15):
        manager.save({"step": step, "weights": torch.full((3,), float(step))}, step)
    assert steps(manager) == [15, 10]
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint_name(0, 10), checkpoint_name(0, 15)]
    state = decode_checkpoint((tmp_path / checkpoint_name(0, 15)).read_bytes())
    assert state["step"] == 15 and torch.equal(state["weights"], torch.full((3,), 15.0))


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temp_file(
    tmp_path: Path, log: tuple[logging.Logger, ListHandler], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = CheckpointManager(tmp_path, rank=0, keep=1, logger=log[0])
    manager.save({"step": 5}, 5)

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        manager.save({"step": 10}, 10)
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_name(0, 5)]  # keep=1 and still there
    assert decode_checkpoint((tmp_path / checkpoint_name(0, 5)).read_bytes())["step"] == 5


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 3], "truncated"),
        (lambda data: data[:100] + bytes([data[100] ^ 0x01]) + data[101:], "SHA-256 mismatch"),
        (lambda data: b"", "truncated"),
    ],
)
def test_damaged_checkpoints_are_detected(
    tmp_path: Path, damage: Callable[[bytes], bytes], reason: str
) -> None:
    manager = CheckpointManager(tmp_path, rank=0, keep=3, logger=logging.getLogger("x"))
    path = manager.save({"weights": torch.arange(1000.0)}, 1)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=reason):
        decode_checkpoint(path.read_bytes())


def test_newest_valid_is_found_and_invalid_ones_are_skipped_with_a_warning(
    tmp_path: Path, log: tuple[logging.Logger, ListHandler]
) -> None:
    logger, handler = log
    manager = CheckpointManager(tmp_path, rank=0, keep=5, logger=logger)
    for step in (5, 10, 15):
        manager.save({"step": step}, step)
    newest = tmp_path / checkpoint_name(0, 15)
    newest.write_bytes(newest.read_bytes()[:-10])
    (tmp_path / checkpoint_name(0, 99)).write_bytes(b"garbage from some other attempt")

    found = manager.valid(accept_all, "cpu", first_only=True)
    assert [(f.step, s["step"] if s else None) for f, s in found] == [(10, 10)]
    warnings = [m for m in handler.messages if m.startswith("WARNING skipping checkpoint")]
    assert len(warnings) == 2 and "step000000000099" in warnings[0] and "step000000000015" in warnings[1]

    every = manager.valid(lambda s: "foreign" if s["step"] == 10 else None, "cpu", first_only=False)
    assert [f.step for f, _ in every] == [5]

    # pruning after the next save never touches files with a higher step than the one written
    manager.save({"step": 20}, 20)
    assert 99 in steps(manager)


def test_ranks_never_see_or_clean_each_others_files(
    tmp_path: Path, log: tuple[logging.Logger, ListHandler]
) -> None:
    rank0 = CheckpointManager(tmp_path, rank=0, keep=1, logger=log[0])
    rank1 = CheckpointManager(tmp_path, rank=1, keep=1, logger=log[0])
    rank0.save({"rank": 0}, 5)
    rank1.save({"rank": 1}, 5)
    rank1.save({"rank": 1}, 10)
    assert steps(rank0) == [5] and steps(rank1) == [10]
    own_temp = tmp_path / ".checkpoint-rank00000-step000000000010.pt.abc.tmp"
    other_temp = tmp_path / ".checkpoint-rank00001-step000000000015.pt.abc.tmp"
    own_temp.write_bytes(b"partial")
    other_temp.write_bytes(b"partial")
    rank0.remove_stale_temp_files()
    assert not own_temp.exists() and other_temp.exists()


def _trainer(
    hp: train.Hyperparameters, checkpoints: CheckpointManager, fingerprint: dict[str, object]
) -> train.Trainer:
    torch.manual_seed(0)
    features = torch.randn(40, 5)
    labels = (features[:, 0] > 0).long()
    model = train.TabularClassifier(5, 2, 8, 1, 0.0)
    ctx = train.DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    return train.Trainer(model, hp, ctx, features, labels, checkpoints, fingerprint=fingerprint)


def test_trainer_ignores_checkpoints_of_another_configuration(
    tmp_path: Path, log: tuple[logging.Logger, ListHandler], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, handler = log
    monkeypatch.setattr(train, "LOG", logger)
    hp = train.Hyperparameters(epochs=2, batch_size=8, checkpoint_interval_steps=3)
    manager = CheckpointManager(tmp_path, rank=0, keep=3, logger=logger)
    first = _trainer(hp, manager, {"epochs": 2, "train_sha256": "abc"})
    assert first.train_epoch()
    assert steps(manager) == [3]

    same = _trainer(hp, manager, {"epochs": 2, "train_sha256": "abc"})
    assert same.restore() == 3 and (same.epoch, same.batch_in_epoch) == (0, 3)

    other = _trainer(hp, manager, {"epochs": 3, "train_sha256": "abc"})
    assert other.restore() is None and other.global_step == 0
    assert any("different configuration: epochs=2 (now 3)" in m for m in handler.messages)


def test_batch_bounds_never_leave_a_single_row_batch() -> None:
    assert train.batch_bounds(10, 4) == [0, 4, 8, 10]
    assert train.batch_bounds(9, 4) == [0, 4, 9]  # 1-row tail merged into the previous batch
    assert train.batch_bounds(5, 8) == [0, 5]


def test_only_checkpoints_this_process_wrote_are_pruned_or_overwritten(
    tmp_path: Path, log: tuple[logging.Logger, ListHandler]
) -> None:
    """Another run's files (another configuration, or a predecessor) survive byte for byte, even where
    this run checkpoints the same steps; this run's own files are pruned to ``keep``."""
    other = CheckpointManager(tmp_path, rank=0, keep=2, logger=log[0])
    for step in (5, 10, 15):
        other.save({"run": "A", "step": step}, step)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == [checkpoint_name(0, 10), checkpoint_name(0, 15)]

    this = CheckpointManager(tmp_path, rank=0, keep=2, logger=log[0])
    written = [this.save({"run": "B", "step": step}, step) for step in (5, 10, 15, 20)]
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {name: after[name] for name in before} == before  # A's files: intact and byte-identical
    assert written[0].name == checkpoint_name(0, 5)  # a free name is used as is
    assert written[1].name != checkpoint_name(0, 10) and written[1].name.startswith(
        "checkpoint-rank00000-step"
    )
    assert [p for p in written if p.exists()] == written[2:]  # B keeps its newest 2 of its own
    # B's alternative names are found (a retried B resumes from them); A's files are found too
    assert [f.step for f in this.files()] == [20, 15, 15, 10]
    assert {f.path for f in this.files()} == {*written[2:], *(tmp_path / name for name in before)}
    assert decode_checkpoint(written[2].read_bytes())["run"] == "B"
    # the same process saving the same step again replaces its own file, not A's
    assert this.save({"run": "B", "step": 20, "again": True}, 20) == written[3]
    assert decode_checkpoint(written[3].read_bytes())["again"] is True


def test_a_resumed_run_keeps_its_predecessors_files(
    tmp_path: Path, log: tuple[logging.Logger, ListHandler]
) -> None:
    first = CheckpointManager(tmp_path, rank=0, keep=1, logger=log[0])
    first.save({"step": 5}, 5)
    resumed = CheckpointManager(tmp_path, rank=0, keep=1, logger=log[0])
    resumed.save({"step": 10}, 10)
    resumed.save({"step": 15}, 15)
    assert steps(resumed) == [15, 5]  # its own step 10 is pruned, the predecessor's step 5 is not
