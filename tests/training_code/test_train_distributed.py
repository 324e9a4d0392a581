"""Data-parallel training: two CPU processes (gloo) under ``torch.distributed.run --standalone``.

Each rank gets 199 of breast cancer's 397 train rows per epoch (DistributedSampler pads to 398): 7 steps
of batch 32 per epoch, 21 steps in 3 epochs, a checkpoint every 4 steps.
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.training_code.training_helpers import (
    Processed,
    RunningTrain,
    pausing_train_command,
    subprocess_env,
    train_command,
)

pytestmark = pytest.mark.slow

DDP_ARGS = ["--epochs", "3", "--checkpoint_interval_steps", "4"]
TOTAL_STEPS = 21
CHECKPOINT = re.compile(r"checkpoint-rank(\d{5})-step(\d{12})\.pt")


def torchrun_command(data: Processed, base: Path) -> list[str]:
    """train_command's script and arguments, launched by torchrun with two processes."""
    _, *script_and_args = train_command(data, base / "model", base / "checkpoints", *DDP_ARGS)
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return [sys.executable, *launcher, *script_and_args]


def checkpoints_by_rank(directory: Path) -> dict[int, dict[int, Path]]:
    found: dict[int, dict[int, Path]] = {}
    for path in directory.iterdir():
        match = CHECKPOINT.fullmatch(path.name)
        if match:
            found.setdefault(int(match[1]), {})[int(match[2])] = path
    return found


def checkpoint_model(path: Path) -> dict[str, torch.Tensor]:
    from checkpointing import decode_checkpoint

    return decode_checkpoint(path.read_bytes())["model"]


def parameters_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return {name: tensor for name, tensor in state.items() if not name.endswith(buffers)}


def model_state(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / "model.pt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def ddp_run(breast_cancer: Processed, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("ddp")
    running = RunningTrain(torchrun_command(breast_cancer, base), base / "torchrun.log", subprocess_env())
    code = running.wait(timeout=300)
    assert code == 0, running.log()
    return base, running.log()


def test_two_ranks_train_one_model_with_per_rank_checkpoints(ddp_run: tuple[Path, str]) -> None:
    base, log = ddp_run
    assert "training on cpu x2" in log
    wrote = [line for line in log.splitlines() if "wrote the model" in line]
    assert len(wrote) == 1 and "train[rank 0]:" in wrote[0], wrote
    assert sorted(p.name for p in (base / "model").iterdir()) == [
        "code",
        "model.onnx",
        "model.pt",
        "preprocessing.json",
    ]
    assert len(re.findall(r"^METRIC validation:accuracy=", log, flags=re.MULTILINE)) == 3  # rank 0 only

    by_rank = checkpoints_by_rank(base / "checkpoints")
    assert sorted(by_rank) == [0, 1]
    assert sorted(by_rank[0]) == sorted(by_rank[1]) == [16, 20, TOTAL_STEPS]
    assert not {p.name for p in by_rank[0].values()} & {p.name for p in by_rank[1].values()}

    rank0 = checkpoint_model(by_rank[0][TOTAL_STEPS])
    rank1 = checkpoint_model(by_rank[1][TOTAL_STEPS])
    saved = model_state(base / "model")
    for name, tensor in parameters_only(rank0).items():
        assert torch.equal(tensor, rank1[name]), f"{name} differs between the ranks"
    for name, tensor in saved.items():
        assert torch.equal(tensor, rank0[name]), f"model.pt {name} is not rank 0's final state"


def test_sigterm_stops_all_ranks_at_one_step_and_they_resume_from_a_step_valid_on_every_rank(
    breast_cancer: Processed,
    ddp_run: tuple[Path, str],
    start_train: Callable[..., RunningTrain],
    tmp_path: Path,
) -> None:
    command = torchrun_command(breast_cancer, tmp_path)
    first = start_train(pausing_train_command(command, 14), "ddp-stopped", subprocess_env())
    first.wait_for("train[rank 0]: TEST HOOK: paused after global step 14")
    first.wait_for("train[rank 1]: TEST HOOK: paused after global step 14")
    first.process.send_signal(signal.SIGTERM)  # to torchrun only, which forwards it to its workers
    first.wait()
    # the ranks agree on the stop every 8 steps, so both checkpoint at step 16 and exit cleanly
    for rank in (0, 1):
        assert f"train[rank {rank}]: stop requested (SIGTERM): checkpoint at global step 16" in first.log()
    by_rank = checkpoints_by_rank(tmp_path / "checkpoints")
    assert sorted(by_rank[0]) == sorted(by_rank[1]) == [8, 12, 16]
    rank1_newest = by_rank[1][16]
    rank1_newest.write_bytes(rank1_newest.read_bytes()[:-100])  # rank 1's newest upload was cut short

    second = start_train(command, "ddp-resumed", subprocess_env())
    assert second.wait(timeout=300) == 0, second.log()
    log = second.log()
    assert re.search(r"train\[rank 1\]: skipping checkpoint \S+rank00001-step000000000016\.pt", log)
    for rank in (0, 1):  # both ranks resume from step 12, although rank 0's step 16 is intact
        assert re.search(
            rf"train\[rank {rank}\]: resumed from checkpoint \S+rank0000{rank}-step000000000012", log
        )
    resumed, reference = model_state(tmp_path / "model"), model_state(ddp_run[0] / "model")
    for name, tensor in reference.items():
        assert torch.equal(resumed[name], tensor), f"{name} differs from the uninterrupted distributed run"
