"""Training that turns non-finite stops with a clear failure: nothing exported, no bad checkpoint.

Two deterministic ways to diverge: the issue's ``--learning_rate 1e30`` (the loss is NaN at step 2),
and one train row whose first feature is 3e38 (finite, so the data is accepted; the batch holding it
overflows BatchNorm's running variance to inf) at a position the test picks from the sampler's order.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import train
from checkpointing import CheckpointManager, decode_checkpoint, encode_checkpoint
from common import JobFailure
from torch.utils.data.distributed import DistributedSampler

from tests.training_code.training_helpers import (
    STEPS_PER_EPOCH,
    TRAIN_ARGS,
    Processed,
    RunningTrain,
    run_train,
    subprocess_env,
    train_command,
)

CHECKPOINT = re.compile(r"checkpoint-rank(\d{5})-step(\d{12})(?:\.[0-9a-f]{8})?\.pt")
SEED = int(TRAIN_ARGS[TRAIN_ARGS.index("--seed") + 1])
BATCH = int(TRAIN_ARGS[TRAIN_ARGS.index("--batch_size") + 1])


def checkpoints(directory: Path) -> dict[Path, int]:
    if not directory.is_dir():
        return {}
    return {p: int(m[2]) for p in directory.iterdir() if (m := CHECKPOINT.fullmatch(p.name))}


def assert_every_checkpoint_is_finite(directory: Path) -> None:
    for path in checkpoints(directory):
        state = decode_checkpoint(path.read_bytes())
        assert train.non_finite_tensors({"model": state["model"], "optimizer": state["optimizer"]}) == [], (
            path
        )


def assert_nothing_exported(model_dir: Path) -> None:
    assert not (model_dir / "model.pt").exists() and not (model_dir / "model.onnx").exists()


def with_overflowing_row(data: Processed, base: Path, world_size: int, rank: int, position: int) -> Processed:
    """A copy of ``data`` whose train row at ``position`` of ``rank``'s epoch-1 order holds 3e38."""
    # DistributedSampler with the run's seed is exactly how train.py orders epoch 1
    lines = (data.train / "train.csv").read_text().splitlines()
    rows: Any = range(len(lines))  # the sampler only needs the length
    sampler: DistributedSampler[int] = DistributedSampler(
        rows, num_replicas=world_size, rank=rank, shuffle=True, seed=SEED
    )
    sampler.set_epoch(0)
    row = list(sampler)[position]
    cells = lines[row].split(",")
    cells[1] = "3e38"
    lines[row] = ",".join(cells)
    copy = Processed(data.raw, base / "processed")
    shutil.copytree(data.train, copy.train)
    shutil.copytree(data.validation, copy.validation)
    (copy.train / "train.csv").write_text("\n".join(lines) + "\n")
    return copy


def test_a_learning_rate_of_1e30_fails_the_job_and_a_retry_resumes_only_from_finite_state(
    breast_cancer: Processed, tmp_path: Path
) -> None:
    """Step 1 is finite (and checkpointed: a checkpoint every step), step 2's loss is NaN."""
    output = tmp_path / "output"
    env = subprocess_env(SM_OUTPUT_DIR=str(output))
    args = ("--learning_rate", "1e30", "--checkpoint_interval_steps", "1")
    first = run_train(breast_cancer, tmp_path / "model", tmp_path / "checkpoints", *args, env=env)
    assert first.returncode == 1, first.log
    reason = (output / "failure").read_text()
    assert reason == (
        f"training diverged at epoch 1/4, batch 2/{STEPS_PER_EPOCH} (global step 2): the loss is nan. "
        "Stopped without exporting a model or writing a checkpoint from that state. "
        "Lower --learning_rate (now 1e+30) or check the data."
    )
    assert f"ERROR train: {reason}" in first.log and "Traceback" not in first.log
    assert "METRIC" not in first.log  # no epoch finished, so no NaN metric reached the tuner
    assert_nothing_exported(tmp_path / "model")
    assert sorted(checkpoints(tmp_path / "checkpoints").values()) == [1]
    assert_every_checkpoint_is_finite(tmp_path / "checkpoints")

    (output / "failure").unlink()
    retry = run_train(breast_cancer, tmp_path / "model", tmp_path / "checkpoints", *args, env=env)
    assert retry.returncode == 1, retry.log
    assert re.search(r"resumed from checkpoint \S+: epoch 1, batch 1/13, global step 1", retry.log), retry.log
    assert (output / "failure").read_text() == reason
    assert sorted(checkpoints(tmp_path / "checkpoints").values()) == [1]
    assert_nothing_exported(tmp_path / "model")


@pytest.mark.slow
def test_when_one_rank_diverges_all_ranks_stop_with_the_same_failure(
    breast_cancer: Processed, tmp_path: Path
) -> None:
    """Only rank 1's state turns non-finite: its batch 3 holds the overflowing row, which makes its
    BatchNorm running variance inf (the loss stays finite). Step 3 is a checkpoint step, so only rank 1
    sees it; the ranks agree (all-reduce), so rank 0 stops too instead of checkpointing and waiting for
    rank 1 in the next step, and both report rank 1's problem (gathered)."""
    data = with_overflowing_row(breast_cancer, tmp_path, world_size=2, rank=1, position=2 * BATCH + 5)
    _, *script_and_args = train_command(
        data,
        tmp_path / "model",
        tmp_path / "checkpoints",
        "--epochs",
        "3",
        "--checkpoint_interval_steps",
        "3",
    )
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    output = tmp_path / "output"
    running = RunningTrain(
        [sys.executable, *launcher, *script_and_args],
        tmp_path / "torchrun.log",
        subprocess_env(SM_OUTPUT_DIR=str(output)),
    )
    try:
        code = running.wait(timeout=240)
    finally:
        running.kill_group()
    log = running.log()
    assert code != 0, log
    expected = (
        "training diverged at epoch 1/3, batch 3/7 (global step 3) on rank 1: "
        "non-finite values in model.body.1.running_var."
    )
    for rank in (0, 1):
        assert f"ERROR train[rank {rank}]: {expected}" in log, log
    assert (output / "failure").read_text().startswith(expected)
    assert_nothing_exported(tmp_path / "model")
    assert checkpoints(tmp_path / "checkpoints") == {}  # the first checkpoint was due at step 3


# --- in-process: the state check and the restore rule ----------------------------------------------------


def _trainer(tmp_path: Path, **overrides: object) -> train.Trainer:
    torch.manual_seed(0)
    features = torch.randn(48, 5)
    labels = (features[:, 0] > 0).long()
    hp = train.Hyperparameters(**{"epochs": 2, "batch_size": 8, "checkpoint_interval_steps": 3, **overrides})
    model = train.TabularClassifier(5, 2, 8, 1, 0.0)
    ctx = train.DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    manager = CheckpointManager(tmp_path, rank=0, keep=5, logger=logging.getLogger("test-divergence"))
    return train.Trainer(model, hp, ctx, features, labels, manager, fingerprint={"test": 1})


def test_non_finite_weights_after_a_finite_loss_are_caught_before_the_checkpoint(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)

    def overflow(optimizer: object, args: object, kwargs: object) -> None:
        if trainer.global_step == 5:  # the update of global step 6 (a checkpoint step) overflows
            with torch.no_grad():
                trainer.model.head.weight.fill_(float("inf"))

    trainer.optimizer.register_step_post_hook(overflow)
    with pytest.raises(JobFailure, match=r"global step 6\): non-finite values in model\.head\.weight"):
        trainer.train_epoch()
    assert [f.step for f in trainer.checkpoints.files()] == [3]
    assert_every_checkpoint_is_finite(tmp_path)


def test_a_checkpoint_holding_non_finite_weights_is_not_resumed_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _trainer(tmp_path)
    assert first.train_epoch()
    manager = first.checkpoints
    assert manager is not None and [f.step for f in manager.files()] == [6, 3]
    newest = manager.files()[0].path  # as an older version could have written it
    state = decode_checkpoint(newest.read_bytes())
    state["model"]["body.0.weight"][0, 0] = float("nan")
    newest.write_bytes(encode_checkpoint(state))

    second = _trainer(tmp_path)
    second_log = logging.getLogger("test-divergence")
    with caplog.at_level(logging.WARNING, logger=second_log.name):
        assert second.restore() == 3
    assert any("holds non-finite values (model.body.0.weight)" in m for m in caplog.messages), caplog.messages
