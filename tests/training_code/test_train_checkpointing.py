"""Spot-interruption safety of train.py: interrupted + resumed runs equal the uninterrupted run bitwise.

Every test interrupts the reference configuration (conftest.TRAIN_ARGS: 13 steps/epoch, 52 steps,
checkpoint every 5 steps) in the middle of an epoch. The process is paused deterministically at a known
global step by the test-only launcher ``train_paused_at_step.py`` (train.py itself has no test hook) and
then receives a real SIGTERM or SIGKILL from the test.
"""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.training_code.training_helpers import (
    CHECKPOINT_INTERVAL,
    STEPS_PER_EPOCH,
    TOTAL_STEPS,
    Processed,
    RunningTrain,
    TrainRun,
    pausing_train_command,
    run_train,
    subprocess_env,
    train_command,
)

pytestmark = pytest.mark.slow
Starter = Callable[..., RunningTrain]

RESUMED = re.compile(r"resumed from checkpoint (\S+): epoch (\d+), batch (\d+)/(\d+), global step (\d+)")
CHECKPOINT_FILE = re.compile(r"checkpoint-rank00000-step(\d{12})\.pt")


def model_state(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / "model.pt", weights_only=True)["state_dict"]


def assert_bitwise_equal(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), f"{name} differs from the uninterrupted run"


def metric_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("METRIC ")]


def checkpoint_steps(directory: Path) -> list[int]:
    return sorted(int(m[1]) for p in directory.iterdir() if (m := CHECKPOINT_FILE.fullmatch(p.name)))


def resumed_step(log: str) -> int:
    match = RESUMED.search(log)
    assert match, f"the restarted run did not resume from a checkpoint:\n{log}"
    return int(match[5])


def interrupt_at(
    start_train: Callable[..., RunningTrain],
    data: Processed,
    tmp_path: Path,
    step: int,
    sig: signal.Signals,
) -> RunningTrain:
    """Start training, wait until it has completed global step ``step``, then deliver ``sig``."""
    command = pausing_train_command(train_command(data, tmp_path / "model", tmp_path / "checkpoints"), step)
    running = start_train(command, "interrupted", subprocess_env())
    running.wait_for(f"TEST HOOK: paused after global step {step}")
    running.process.send_signal(sig)
    running.wait()
    return running


def test_reference_run_keeps_only_the_newest_checkpoints(reference_run: TrainRun) -> None:
    # checkpoints_to_keep=3: the last two periodic ones and the final "training complete" one
    assert checkpoint_steps(reference_run.checkpoint_dir) == [45, 50, TOTAL_STEPS]
    assert not [p for p in reference_run.checkpoint_dir.iterdir() if p.name.endswith(".tmp")]
    assert sorted(p.name for p in reference_run.model_dir.iterdir()) == [
        "code",
        "model.onnx",
        "model.pt",
        "preprocessing.json",
    ]


def test_sigterm_mid_epoch_checkpoints_exits_cleanly_and_resumes_bitwise(
    breast_cancer: Processed, reference_run: TrainRun, start_train: Starter, tmp_path: Path
) -> None:
    stop_step = STEPS_PER_EPOCH + 5  # epoch 2, batch 5 of 13: not a multiple of the checkpoint interval
    first = interrupt_at(start_train, breast_cancer, tmp_path, stop_step, signal.SIGTERM)

    assert first.process.returncode == 0, first.log()
    assert f"stop requested (SIGTERM): checkpoint at global step {stop_step} is saved" in first.log()
    assert checkpoint_steps(tmp_path / "checkpoints")[-1] == stop_step
    assert not (tmp_path / "model" / "model.pt").exists()

    second = run_train(breast_cancer, tmp_path / "model", tmp_path / "checkpoints")
    assert second.returncode == 0, second.log
    resumed = resumed_step(second.log)
    assert resumed == stop_step  # SIGTERM loses no work at all
    assert f"epoch 2, batch 5/{STEPS_PER_EPOCH}, global step {stop_step}" in second.log
    assert_bitwise_equal(model_state(tmp_path / "model"), model_state(reference_run.model_dir))
    # the metrics of the interrupted epoch are identical too (its running loss is checkpointed)
    assert metric_lines(first.log()) + metric_lines(second.log) == metric_lines(reference_run.log)


def test_sigkill_mid_epoch_redoes_at_most_one_interval_and_resumes_bitwise(
    breast_cancer: Processed, reference_run: TrainRun, start_train: Starter, tmp_path: Path
) -> None:
    kill_step = STEPS_PER_EPOCH + 10  # epoch 2, batch 10; last checkpoint at step 20
    first = interrupt_at(start_train, breast_cancer, tmp_path, kill_step, signal.SIGKILL)
    assert first.process.returncode == -signal.SIGKILL

    second = run_train(breast_cancer, tmp_path / "model", tmp_path / "checkpoints")
    assert second.returncode == 0, second.log
    resumed = resumed_step(second.log)
    assert resumed == 20
    assert 0 <= kill_step - resumed <= CHECKPOINT_INTERVAL  # redone work: at most one interval
    assert_bitwise_equal(model_state(tmp_path / "model"), model_state(reference_run.model_dir))
    assert metric_lines(first.log()) + metric_lines(second.log) == metric_lines(reference_run.log)


def test_corrupt_newest_checkpoint_is_skipped_with_a_warning(
    breast_cancer: Processed, reference_run: TrainRun, start_train: Starter, tmp_path: Path
) -> None:
    kill_step = 2 * STEPS_PER_EPOCH + 7  # step 33: checkpoints 20, 25, 30 exist
    first = interrupt_at(start_train, breast_cancer, tmp_path, kill_step, signal.SIGKILL)
    assert first.process.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "checkpoints"
    assert checkpoint_steps(checkpoints) == [20, 25, 30]

    newest = checkpoints / "checkpoint-rank00000-step000000000030.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # a truncated upload/download of the newest checkpoint
    stale_temp = checkpoints / ".checkpoint-rank00000-step000000000035.pt.x1y2z3.tmp"
    stale_temp.write_bytes(b"partial write of a killed process")

    second = run_train(breast_cancer, tmp_path / "model", checkpoints)
    assert second.returncode == 0, second.log
    assert re.search(r"WARNING train: skipping checkpoint \S+step000000000030\.pt: .*truncated", second.log)
    assert resumed_step(second.log) == 25
    assert not stale_temp.exists()
    assert_bitwise_equal(model_state(tmp_path / "model"), model_state(reference_run.model_dir))
    assert metric_lines(reference_run.log)[-len(metric_lines(second.log)) :] == metric_lines(second.log)


def test_rerun_after_completion_only_reexports_the_model(
    breast_cancer: Processed, reference_run: TrainRun, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    final = f"checkpoint-rank00000-step{TOTAL_STEPS:012d}.pt"
    (checkpoints / final).write_bytes((reference_run.checkpoint_dir / final).read_bytes())

    rerun = run_train(breast_cancer, tmp_path / "model", checkpoints)
    assert rerun.returncode == 0, rerun.log
    assert resumed_step(rerun.log) == TOTAL_STEPS
    assert not re.search(r"epoch \d+/\d+ done", rerun.log)  # no epoch was trained again
    assert_bitwise_equal(model_state(tmp_path / "model"), model_state(reference_run.model_dir))


@pytest.mark.slow
def test_config_namespaces_keep_runs_sharing_a_checkpoint_prefix_apart(
    breast_cancer: Processed, reference_run: TrainRun, tmp_path: Path
) -> None:
    """Tuning trials share one checkpoint S3 prefix: with --checkpoint_namespace config, a trial never
    reads, overwrites or prunes another configuration's checkpoints, and still resumes its own."""
    shared = tmp_path / "checkpoints"
    first = run_train(breast_cancer, tmp_path / "a", shared, "--checkpoint_namespace", "config")
    assert first.returncode == 0, first.log
    (first_dir,) = [p for p in shared.iterdir() if p.is_dir()]
    assert first_dir.name.startswith("config-") and not list(shared.glob("checkpoint-*"))
    before = {p.name: p.read_bytes() for p in first_dir.iterdir()}
    # Same interval and step count as the first, so a shared namespace would collide file by file.
    other = run_train(
        breast_cancer, tmp_path / "b", shared, "--checkpoint_namespace", "config", "--learning_rate", "0.01"
    )
    assert other.returncode == 0, other.log
    assert "resumed from checkpoint" not in other.log
    assert len([p for p in shared.iterdir() if p.is_dir()]) == 2
    assert {p.name: p.read_bytes() for p in first_dir.iterdir()} == before
    # The first configuration, run again, finds its own final checkpoint: same weights, nothing retrained.
    again = run_train(breast_cancer, tmp_path / "c", shared, "--checkpoint_namespace", "config")
    assert again.returncode == 0 and resumed_step(again.log) == TOTAL_STEPS, again.log
    assert_bitwise_equal(model_state(tmp_path / "c"), model_state(reference_run.model_dir))


def test_unknown_checkpoint_namespace_is_refused(breast_cancer: Processed, tmp_path: Path) -> None:
    run = run_train(breast_cancer, tmp_path / "m", tmp_path / "c", "--checkpoint_namespace", "trial")
    assert run.returncode == 2
    assert "--checkpoint_namespace: got 'trial'; allowed: none or config" in run.log


@pytest.mark.slow
def test_another_configuration_in_the_same_folder_leaves_the_previous_checkpoints_intact(
    breast_cancer: Processed, reference_run: TrainRun, tmp_path: Path
) -> None:
    """Namespace "none": configuration B runs in the folder holding configuration A's checkpoints (the
    reference run's 45, 50 and 52). B checkpoints exactly those steps too, yet never overwrites or prunes
    A's files; a rerun of B resumes from B's own final checkpoint."""
    shared = tmp_path / "checkpoints"
    shutil.copytree(reference_run.checkpoint_dir, shared)
    a_files = {p.name: p.read_bytes() for p in shared.iterdir()}
    assert checkpoint_steps(shared) == [45, 50, TOTAL_STEPS]

    b = run_train(breast_cancer, tmp_path / "b", shared, "--learning_rate", "0.01")
    assert b.returncode == 0, b.log
    assert "resumed from checkpoint" not in b.log
    assert "written by a different configuration: learning_rate=0.003 (now 0.01)" in b.log
    assert {name: (shared / name).read_bytes() for name in a_files} == a_files
    b_files = sorted(set(p.name for p in shared.iterdir()) - set(a_files))
    assert sorted(int(name[25:37]) for name in b_files) == [45, 50, TOTAL_STEPS]  # B's newest 3, pruned

    again = run_train(breast_cancer, tmp_path / "b-again", shared, "--learning_rate", "0.01")
    assert again.returncode == 0, again.log
    assert resumed_step(again.log) == TOTAL_STEPS and not re.search(r"epoch \d+/\d+ done", again.log)
    assert_bitwise_equal(model_state(tmp_path / "b-again"), model_state(tmp_path / "b"))
    assert {name: (shared / name).read_bytes() for name in a_files} == a_files
    assert sorted(set(p.name for p in shared.iterdir()) - set(a_files)) == b_files  # nothing rewritten
