"""Shared helpers for the runtime-code tests (imported as ``tests.training_code.training_helpers``).

The container scripts import their siblings as top-level modules (``import metrics``), exactly as
they run in SageMaker (``python train.py``: sys.path[0] is the script directory); pytest puts
training_code/ on sys.path once (pyproject.toml, ``pythonpath``). Scripts that must behave as processes
(signals, torchrun, exit codes) run as subprocesses with ``OMP_NUM_THREADS=1``: the 2-core test machine
is shared, and single-threaded kernels keep them fast and their floating point identical from run to run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import local_run
import preprocess

ROOT = Path(__file__).resolve().parents[2]
CODE_DIR = ROOT / "training_code"
#: A test-only launcher of train.py that pauses after a given global step (see pausing_train_command).
PAUSING_TRAIN = Path(__file__).resolve().with_name("train_paused_at_step.py")

#: The reference training configuration of the checkpoint tests: breast cancer's 397 train rows in
#: batches of 32 give 13 steps per epoch, 52 steps in all, a checkpoint every 5 steps.
TRAIN_ARGS = [
    "--epochs",
    "4",
    "--batch_size",
    "32",
    "--hidden_units",
    "32",
    "--num_layers",
    "2",
    "--dropout",
    "0.2",
    "--learning_rate",
    "0.003",
    "--checkpoint_interval_steps",
    "5",
    "--seed",
    "7",
]
STEPS_PER_EPOCH = 13
TOTAL_STEPS = 52
CHECKPOINT_INTERVAL = 5


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "TRAIN_TEST_"))}
    # PYTHONPATH: the test-only launcher (tests/training_code/) imports train.py's folder as its siblings.
    env.update(
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(CODE_DIR), **extra
    )
    return env


@dataclass
class Processed:
    """A dataset written by local_run.write_dataset and preprocessed into ``output``."""

    raw: Path
    output: Path

    @property
    def train(self) -> Path:
        return self.output / "train"

    @property
    def validation(self) -> Path:
        return self.output / "validation"

    @property
    def test(self) -> Path:
        return self.output / "test" / "test.csv"


def make_processed(base: Path, dataset: str) -> Processed:
    raw = base / "raw"
    local_run.write_dataset(dataset, raw)
    output = base / "processed"
    assert preprocess.main(["--input_dir", str(raw), "--output_dir", str(output), "--seed", "3"]) == 0
    return Processed(raw, output)


@dataclass
class TrainRun:
    """A finished (or stopped) train.py process."""

    returncode: int
    log: str
    model_dir: Path
    checkpoint_dir: Path


def train_command(data: Processed, model_dir: Path, checkpoint_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(CODE_DIR / "train.py"),
        "--train",
        str(data.train),
        "--validation",
        str(data.validation),
        "--model_dir",
        str(model_dir),
        "--checkpoint_dir",
        str(checkpoint_dir),
        *TRAIN_ARGS,
        *extra,
    ]


def pausing_train_command(command: list[str], step: int) -> list[str]:
    """``command`` (a train_command, possibly under torchrun) with train.py replaced by the test-only
    launcher that pauses every rank after global step ``step`` until SIGTERM (logging ``TEST HOOK: paused
    after global step <step>``), so a test can interrupt training at a known step."""
    script = command.index(str(CODE_DIR / "train.py"))
    return [*command[:script], str(PAUSING_TRAIN), str(step), *command[script + 1 :]]


def run_train(
    data: Processed, model_dir: Path, checkpoint_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> TrainRun:
    result = subprocess.run(
        train_command(data, model_dir, checkpoint_dir, *extra),
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return TrainRun(result.returncode, result.stdout + result.stderr, model_dir, checkpoint_dir)


class RunningTrain:
    """A train.py process whose output goes to a file that the test can poll."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        # own session: a test can signal the whole process group (torchrun and its workers)
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, text: str, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"process exited ({self.process.returncode}) before {text!r}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"timed out waiting for {text!r}:\n{self.log()}")
            time.sleep(0.05)

    def kill_group(self) -> None:
        """SIGKILL the process and every child it started (as when a spot instance disappears)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def wait(self, timeout: float = 240.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code
