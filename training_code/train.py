"""SageMaker training job: PyTorch tabular classifier with spot-safe checkpoints and optional DDP.

Run as ``python train.py --epochs 20 --batch_size 64 ...`` (SageMaker passes every hyperparameter as
``--name value``). The whole ``training_code/`` directory is the job's source dir (sibling imports).

This file is the platform machinery (channels, validation, fingerprint, seeding, checkpoints, resume,
distributed launch, the loop, ONNX export, serving files); what is specific to the model (architecture,
loss, validation metrics) is in :mod:`model_spec`, its hyperparameters in :mod:`contract`.

Hyperparameters (CLI, underscore names)
---------------------------------------
Names, types, defaults and bounds are :data:`contract.HYPERPARAMETERS` (the stage config derives its
defaults and checks from the same table): the model's (``contract.MODEL_HYPERPARAMETERS``: epochs,
batch_size (per process), learning_rate (AdamW, cosine-annealed per step to 0), dropout, hidden_units,
num_layers, weight_decay, seed) and the platform's (``checkpoint_interval_steps``, 0 = only on SIGTERM
and at the end; ``checkpoints_to_keep``; ``device`` auto|cpu|cuda; ``num_threads``, 0 = torch's default,
1 is often fastest for small MLPs on shared CPUs; ``checkpoint_namespace`` none|config).

Argument errors fail the job at once with exit code 2, argparse's message on stderr and the same message
in ``/opt/ml/output/failure`` (the job's ``FailureReason``): a value of the wrong type (``--epochs 2.5``),
a float hyperparameter that is not finite (``--learning_rate inf``/``nan``), a value out of range, and
an unknown argument (``--learnig_rate 0.1``: the message names it, suggests the closest known name and
lists the known ones). The SageMaker training toolkit passes only the user's hyperparameters as
``--name value`` (it consumes every ``sagemaker_*`` hyperparameter and ``_tuning_objective_metric``
itself), so an unknown name is a typo. Arguments in those framework-reserved names, should a launcher
pass them, are logged and ignored. Names must be spelled in full (no argparse abbreviations).

Paths (env, overridable on the CLI)
-----------------------------------
* ``--train`` = ``SM_CHANNEL_TRAIN`` (``/opt/ml/input/data/train``): ``train.csv`` (no header, class
  index first, then features) and ``preprocessing.json`` from preprocess.py;
* ``--validation`` = ``SM_CHANNEL_VALIDATION`` (``/opt/ml/input/data/validation``): ``validation.csv``;
* ``--model_dir`` = ``SM_MODEL_DIR`` (``/opt/ml/model``): ``model.pt``, ``model.onnx`` and a copy of
  ``preprocessing.json``; SageMaker tars it into ``model.tar.gz``. Only rank 0 writes it;
* ``--checkpoint_dir`` = ``SM_CHECKPOINT_DIR`` (``/opt/ml/checkpoints``, the default
  ``CheckpointConfig.LocalPath``): must not be inside the model dir (refused with exit code 2).

Checkpoints and spot interruptions
----------------------------------
Every ``checkpoint_interval_steps`` optimizer steps each rank writes ``checkpoint-rankRRRRR-stepS.pt``
(see :mod:`checkpointing`): model, optimizer, LR scheduler, epoch, batch within the epoch, global step,
the epoch's running loss, the data-order state (sampler seed/epoch/world size) and every RNG state
(python, numpy, torch CPU, CUDA). On start the newest valid checkpoint is restored (corrupt or
foreign ones are skipped with a warning; with several ranks, the newest step valid on *all* ranks).
The order of epoch ``e`` is a permutation drawn from a generator seeded with ``seed + e``
(``DistributedSampler``), so a resumed epoch skips exactly the batches already done and the result is
bitwise identical to an uninterrupted run on CPU. SIGTERM (SageMaker gives 120 s before SIGKILL) sets a
flag; at the next step boundary the process writes a checkpoint and exits with code 0 (with several
ranks, they agree on the flag by an all-reduce every :data:`STOP_SYNC_STEPS` steps, so all of them stop
and checkpoint at the same step; under torchrun, torchrun forwards the SIGTERM to its workers).

Distributed data parallel
-------------------------
Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) the
script joins a process group (nccl on GPU, gloo on CPU), wraps the model in DistributedDataParallel and
shards each epoch with a seeded ``DistributedSampler``. Rank 0 validates, prints metrics and writes the
model; all ranks checkpoint.

Divergence
----------
A loss that becomes non-finite (NaN/inf: a learning rate far too high, an overflow) fails the job with
exit code 1 and a failure reason naming the epoch, batch, global step and loss. Losses stay on the
device and are checked every :data:`STOP_SYNC_STEPS` steps (no per-step host sync); before every
checkpoint and at every epoch end the model and optimizer state are checked too. So no checkpoint
holding non-finite state is written (a retry resumes from the last finite one) and nothing is exported
to the model dir. With several ranks the check is agreed on by an all-reduce at the same steps on every
rank, and every rank fails with the same message. A checkpoint holding non-finite weights (written by an
older version) is skipped on restore.

Metrics: each epoch prints ``metrics.format_metric`` lines (train:loss and the validation metrics of
:data:`model_spec.VALIDATION_METRICS`) that ``metrics.METRIC_DEFINITIONS`` match.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import contract
import metrics
import model_spec
import numpy as np
import torch
import torch.distributed as dist
from checkpointing import CheckpointError, CheckpointManager
from common import (
    EXIT_OK,
    ArgumentParser,
    JobFailure,
    UsageError,
    get_logger,
    is_within,
    load_split_csv,
    run_entry_point,
)
from contract import MODEL_FILE, ONNX_FILE, PREPROCESSING_FILE
from features import Preprocessing, PreprocessingError, read_preprocessing
from model import TabularClassifier, export_onnx, model_artifact, save_model
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

LOG = get_logger("train")

DEFAULT_TRAIN_DIR = contract.channel_dir(contract.TRAIN)
DEFAULT_VALIDATION_DIR = contract.channel_dir(contract.VALIDATION)
DEFAULT_MODEL_DIR = contract.MODEL_DIR
DEFAULT_CHECKPOINT_DIR = contract.CHECKPOINT_DIR
DEFAULT_CHECKPOINT_INTERVAL_STEPS = contract.DEFAULT_CHECKPOINT_INTERVAL_STEPS
#: With several ranks the SIGTERM flag is agreed on (all-reduce) every this many steps; the recent losses
#: are checked for NaN/inf at the same steps.
STOP_SYNC_STEPS = 8
#: Hyperparameters the SageMaker framework reserves: its toolkit consumes them, so they are never
#: train.py's; if a launcher passes them anyway they are logged and ignored (not refused as typos).
FRAMEWORK_ARGUMENT_PREFIX = "sagemaker_"
FRAMEWORK_ARGUMENTS = ("_tuning_objective_metric",)
CHECKPOINT_NAMESPACES = contract.CHECKPOINT_NAMESPACES
#: Copied into <model dir>/code/: the serving entry point and the sibling modules it imports, transitively
#: (derived from the imports, so a new import of inference.py ships too).
SERVING_ENTRY_POINT = contract.SERVING_ENTRY_POINT


def serving_files(entry_point: str = SERVING_ENTRY_POINT, code_dir: Path | None = None) -> tuple[str, ...]:
    """``entry_point`` and every sibling module it imports, transitively (sorted, entry point first)."""
    import ast

    code_dir = code_dir or Path(__file__).resolve().parent
    siblings = {p.stem for p in code_dir.glob("*.py")}
    found: list[str] = []
    pending = [entry_point.removesuffix(".py")]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.append(name)
        for node in ast.walk(ast.parse((code_dir / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                pending += [a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in siblings]
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and node.module
                and node.module.split(".")[0] in siblings
            ):
                pending.append(node.module.split(".")[0])
    return (f"{found[0]}.py", *sorted(f"{n}.py" for n in found[1:]))


def _check_hyperparameters(self: Any) -> None:
    """Every value finite and within :data:`contract.HYPERPARAMETERS`' bounds (UsageError otherwise)."""
    for name, value in asdict(self).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"hyperparameter --{name}: got {value!r}; allowed: a finite number")
    for name, spec in contract.HYPERPARAMETERS.items():
        value = getattr(self, name)
        if not spec.accepts(value):
            raise UsageError(f"hyperparameter --{name}: got {value!r}; allowed: {spec.allowed()}")


if TYPE_CHECKING:

    @dataclass(frozen=True, init=False)
    class Hyperparameters:
        """Static view for type checkers: one attribute per :data:`contract.HYPERPARAMETERS` entry."""

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

else:
    #: A frozen dataclass with one field per :data:`contract.HYPERPARAMETERS` entry (its type and default),
    #: checked against the contract's bounds on construction.
    Hyperparameters = make_dataclass(
        "Hyperparameters",
        [(h.name, h.type, field(default=h.default)) for h in contract.HYPERPARAMETERS.values()],
        frozen=True,
        namespace={"__post_init__": _check_hyperparameters, "__module__": __name__},
    )


def checkpoint_directory(base: Path, namespace: str, fingerprint: dict[str, Any]) -> Path:
    """This run's checkpoint directory: ``base`` or ``base/config-<digest>`` (see Hyperparameters)."""
    if namespace == "none":
        return base
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()
    return base / f"config-{digest[:16]}"


@dataclass(frozen=True)
class Paths:
    train: Path
    validation: Path
    model_dir: Path
    checkpoint_dir: Path


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Train the tabular classifier (SageMaker script mode).", allow_abbrev=False
    )
    for name, spec in contract.HYPERPARAMETERS.items():
        parser.add_argument(f"--{name}", type=spec.type, default=spec.default, help=spec.help or None)
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", DEFAULT_TRAIN_DIR))
    parser.add_argument(
        "--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", DEFAULT_VALIDATION_DIR)
    )
    parser.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR))
    parser.add_argument(
        "--checkpoint_dir", default=os.environ.get("SM_CHECKPOINT_DIR", DEFAULT_CHECKPOINT_DIR)
    )
    return parser


def _is_option(token: str) -> bool:
    if not token.startswith("-"):
        return False
    try:
        float(token)  # a negative number is a value
    except ValueError:
        return True
    return False


def split_unknown(tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    """argparse's leftovers as (framework-reserved arguments with their values, everything else)."""
    framework: list[str] = []
    unknown: list[str] = []
    current = unknown
    for token in tokens:
        if _is_option(token):
            name = token.lstrip("-").split("=", 1)[0]
            reserved = name.startswith(FRAMEWORK_ARGUMENT_PREFIX) or name in FRAMEWORK_ARGUMENTS
            current = framework if reserved else unknown
        current.append(token)
    return framework, unknown


PATH_ARGUMENTS = ("train", "validation", "model_dir", "checkpoint_dir")


def known_arguments() -> list[str]:
    return [f"--{name}" for name in (*contract.HYPERPARAMETERS, *PATH_ARGUMENTS)]


def unknown_arguments_message(unknown: Sequence[str]) -> str:
    """Names the unknown arguments (with the closest known name) and lists the known ones."""
    known = known_arguments()
    named = []
    for token in unknown:
        if _is_option(token):
            name = token.split("=", 1)[0]
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            named.append(f"{name} (did you mean {close[0]}?)" if close else name)
    if not named:  # values without an option before them
        named = [f"value {unknown[0]!r} without an option before it"]
    return f"unknown argument(s): {', '.join(named)} (a misspelled hyperparameter?); known: {' '.join(known)}"


def parse_args(argv: Sequence[str] | None) -> tuple[Hyperparameters, Paths, list[str]]:
    """Hyperparameters, paths and the ignored framework-reserved arguments; refuses anything unknown."""
    parser = build_parser()
    args, leftovers = parser.parse_known_args(argv)
    framework, unknown = split_unknown(leftovers)
    if unknown:
        parser.error(unknown_arguments_message(unknown))
    values = vars(args)
    hp = Hyperparameters(**{name: values[name] for name in contract.HYPERPARAMETERS})
    model_dir = values["model_dir"]
    if str(model_dir).startswith("s3://"):  # some SageMaker estimators pass the S3 model location
        LOG.warning("ignoring --model_dir %s (an S3 URI); writing to SM_MODEL_DIR instead", model_dir)
        model_dir = os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR)
    paths = Paths(
        Path(values["train"]), Path(values["validation"]), Path(model_dir), Path(values["checkpoint_dir"])
    )
    if is_within(paths.checkpoint_dir, paths.model_dir):
        raise UsageError(
            f"checkpoint directory {paths.checkpoint_dir} is inside the model directory {paths.model_dir} "
            "(SM_MODEL_DIR): checkpoints would be packed into model.tar.gz. Use a directory outside it, "
            f"e.g. the default {DEFAULT_CHECKPOINT_DIR} (--checkpoint_dir or SM_CHECKPOINT_DIR)"
        )
    return hp, paths, framework


# --------------------------------------------------------------------------------------------------
# Process setup
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_process(device_preference: str) -> DistributedContext:
    """Pick the device and, under torchrun (WORLD_SIZE > 1), join the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_preference != "cpu"
    if device_preference == "cuda" and not torch.cuda.is_available():
        raise UsageError("hyperparameter --device: got 'cuda' but no GPU is available")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank, world_size, local_rank, device)


class StopSignal:
    """Set by SIGTERM (spot interruption / StopTrainingJob); polled at step boundaries."""

    def __init__(self) -> None:
        self.requested = False
        self.received_at: float | None = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.requested:
            self.received_at = time.monotonic()
        self.requested = True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        else:
            LOG.warning(
                "checkpoint has CUDA RNG states for %d devices; not restoring them", len(state["cuda"])
            )


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


class _RowIndex(Dataset[int]):
    """A dataset of ``n`` row indices; the sampler only needs its length."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


def batch_bounds(rows: int, batch_size: int) -> list[int]:
    """Batch boundaries for ``rows`` rows; a trailing 1-row batch (BatchNorm cannot train on it) is
    merged into the previous batch."""
    bounds = [*range(0, rows, batch_size), rows]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return bounds


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    validation: dict[str, float] = field(default_factory=dict)
    samples_per_second: float = 0.0


class Trainer:
    """The training loop over preloaded device tensors; owns model, optimizer, scheduler and position."""

    def __init__(
        self,
        model: TabularClassifier,
        hp: Hyperparameters,
        ctx: DistributedContext,
        features: torch.Tensor,
        labels: torch.Tensor,
        checkpoints: CheckpointManager | None = None,
        stop: StopSignal | None = None,
        fingerprint: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.hp = hp
        self.ctx = ctx
        self.features = features
        self.labels = labels
        self.checkpoints = checkpoints
        self.stop = stop or StopSignal()
        self.fingerprint = fingerprint or {}
        self.network: nn.Module = (
            DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
            if ctx.distributed
            else model
        )
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay, foreach=True
        )
        self.sampler: DistributedSampler[int] = DistributedSampler(
            _RowIndex(features.shape[0]),
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=hp.seed,
            drop_last=False,
        )
        local_rows = self.sampler.num_samples
        if local_rows < 2:
            raise UsageError(
                f"the train split has {features.shape[0]} rows, i.e. {local_rows} per process; need >= 2"
            )
        self.bounds = batch_bounds(local_rows, hp.batch_size)
        self.batches_per_epoch = len(self.bounds) - 1
        self.total_steps = hp.epochs * self.batches_per_epoch
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.total_steps)
        self.epoch = 0
        self.batch_in_epoch = 0
        self.global_step = 0
        self.epoch_loss_sum = torch.zeros((), dtype=torch.float32, device=ctx.device)
        self.epoch_samples = 0
        #: (epoch, batch, global step) of the newest checkpoint written or restored
        self.checkpointed_position: tuple[int, int, int] | None = None
        #: the losses of the steps since the last divergence check, on the device (no per-step sync)
        self.recent_losses = torch.zeros(STOP_SYNC_STEPS, dtype=torch.float32, device=ctx.device)
        self.recent_count = 0

    # --- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rank": self.ctx.rank,
            "world_size": self.ctx.world_size,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "batches_per_epoch": self.batches_per_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch_loss_sum": self.epoch_loss_sum.detach().cpu(),
            "epoch_samples": self.epoch_samples,
            "data_order": {
                "sampler_seed": self.hp.seed,
                "sampler_epoch": self.epoch,
                "num_replicas": self.ctx.world_size,
                "rank": self.ctx.rank,
                "batches_done": self.batch_in_epoch,
            },
            "rng": capture_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.global_step = int(state["global_step"])
        self.epoch_loss_sum = state["epoch_loss_sum"].to(self.ctx.device)
        self.epoch_samples = int(state["epoch_samples"])
        self.checkpointed_position = self.position
        restore_rng_state(state["rng"])

    @property
    def position(self) -> tuple[int, int, int]:
        return self.epoch, self.batch_in_epoch, self.global_step

    def _accept(self, state: dict[str, Any]) -> str | None:
        """Why a checkpoint does not belong to this run (None when it does)."""
        theirs = state.get("fingerprint", {})
        differing = sorted(
            k for k in set(theirs) | set(self.fingerprint) if theirs.get(k) != self.fingerprint.get(k)
        )
        if differing:
            shown = ", ".join(f"{k}={theirs.get(k)!r} (now {self.fingerprint.get(k)!r})" for k in differing)
            return f"written by a different configuration: {shown}"
        if state.get("rank") != self.ctx.rank or state.get("world_size") != self.ctx.world_size:
            return f"written by rank {state.get('rank')} of {state.get('world_size')}"
        if state.get("batches_per_epoch") != self.batches_per_epoch:
            return "batches per epoch differ"
        non_finite = non_finite_tensors(
            {"model": state.get("model", {}), "optimizer": state.get("optimizer", {})}
        )
        if non_finite:
            return f"holds non-finite values ({', '.join(non_finite[:3])}): written by a run that diverged"
        return None

    def restore(self) -> int | None:
        """Resume from the newest valid checkpoint (agreed on by all ranks); returns its global step."""
        if self.checkpoints is None:
            return None
        self.checkpoints.remove_stale_temp_files()
        found = self.checkpoints.valid(self._accept, "cpu", first_only=not self.ctx.distributed)
        steps = [file.step for file, _ in found]
        if self.ctx.distributed:
            gathered: list[list[int] | None] = [None] * self.ctx.world_size
            dist.all_gather_object(gathered, steps)
            common = set(steps).intersection(*(set(s or []) for s in gathered))
            if steps and not common:
                LOG.warning(
                    "rank %d: no checkpoint step is valid on every rank; starting fresh", self.ctx.rank
                )
            if not common:
                return None
            chosen = max(common)
        elif steps:
            chosen = steps[0]
        else:
            return None
        file, state = next((f, s) for f, s in found if f.step == chosen)
        if state is None:
            try:
                state = self.checkpoints.load(file, "cpu")
            except CheckpointError as error:  # vanished or changed since the scan: fail loudly
                raise RuntimeError(f"checkpoint {file.path} became unreadable: {error}") from error
        self.load_state_dict(state)
        LOG.info(
            "resumed from checkpoint %s: epoch %d, batch %d/%d, global step %d",
            file.path,
            self.epoch + 1,
            self.batch_in_epoch,
            self.batches_per_epoch,
            self.global_step,
        )
        return self.global_step

    def save_checkpoint(self, force: bool = False) -> None:
        """Checkpoint the current position (skipped when it is the one last written or restored, unless
        ``force``). The caller has checked the state for divergence (:meth:`poll`)."""
        if self.checkpoints is None or (self.checkpointed_position == self.position and not force):
            return
        path = self.checkpoints.save(self.state_dict(), self.global_step)
        self.checkpointed_position = self.position
        LOG.info(
            "checkpoint saved: %s (global step %d, epoch %d, batch %d/%d)",
            path,
            self.global_step,
            self.epoch + 1,
            self.batch_in_epoch,
            self.batches_per_epoch,
        )

    # --- loop ----------------------------------------------------------------------------------

    def poll(self, writes_state: bool) -> bool:
        """At a step boundary: whether to stop (SIGTERM), after checking that training has not diverged.

        The recent losses are checked every :data:`STOP_SYNC_STEPS` steps; when ``writes_state`` (a
        checkpoint is due or the epoch ends) and before a SIGTERM checkpoint, the model and optimizer
        state are checked too. A non-finite value raises :class:`JobFailure`, so nothing is written from
        that state. With several ranks both decisions are agreed on by one all-reduce, at steps that are
        the same on every rank (the stop flag only every STOP_SYNC_STEPS steps).
        """
        sync = self.global_step % STOP_SYNC_STEPS == 0
        full = self.recent_count == self.recent_losses.numel()
        if not self.ctx.distributed:
            stop = self.stop.requested
            if sync or full or writes_state or stop:
                problem = self.divergence(check_state=writes_state or stop)
                if problem is not None:
                    raise JobFailure(self.divergence_message([(self.ctx.rank, *problem)]))
            return stop
        if not (sync or full or writes_state):
            return False
        stop = self._agree(self.stop.requested and sync, check_state=writes_state)
        if stop and not writes_state:
            self._agree(False, check_state=True)  # the SIGTERM checkpoint must hold finite state
        return stop

    def _agree(self, stop: bool, check_state: bool) -> bool:
        """Collective: all-reduce (stop, diverged) over the ranks; every rank raises the same failure."""
        problem = self.divergence(check_state)
        flags = torch.tensor([int(stop), int(problem is not None)], dtype=torch.int32, device=self.ctx.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        if flags[1].item():
            gathered: list[tuple[int, int, str] | None] = [None] * self.ctx.world_size
            dist.all_gather_object(gathered, None if problem is None else (self.ctx.rank, *problem))
            raise JobFailure(self.divergence_message([p for p in gathered if p is not None]))
        return bool(flags[0].item())

    def divergence(self, check_state: bool) -> tuple[int, str] | None:
        """(global step, what) of the first non-finite loss since the last check or, with
        ``check_state``, of non-finite model/optimizer state now; None when everything is finite."""
        count, self.recent_count = self.recent_count, 0
        if count:
            losses = self.recent_losses[:count].cpu()
            bad = torch.nonzero(~torch.isfinite(losses)).flatten()
            if bad.numel():
                first = int(bad[0])
                return self.global_step - count + 1 + first, f"the loss is {float(losses[first])}"
        if check_state:
            state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
            non_finite = non_finite_tensors(state)
            if non_finite:
                return self.global_step, f"non-finite values in {', '.join(non_finite[:3])}"
        return None

    def divergence_message(self, problems: list[tuple[int, int, str]]) -> str:
        """One message for (rank, global step, what) reports: the earliest step wins."""
        rank, step, what = min(problems, key=lambda p: (p[1], p[0]))
        epoch, batch = (step - 1) // self.batches_per_epoch + 1, (step - 1) % self.batches_per_epoch + 1
        where = f" on rank {rank}" if self.ctx.distributed else ""
        return (
            f"training diverged at epoch {epoch}/{self.hp.epochs}, batch {batch}/{self.batches_per_epoch} "
            f"(global step {step}){where}: {what}. Stopped without exporting a model or writing a checkpoint "
            f"from that state. Lower --learning_rate (now {self.hp.learning_rate:g}) or check the data."
        )

    def epoch_order(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of ``epoch`` in training order (one gather per epoch, slices per step)."""
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long, device=self.features.device)
        return self.features.index_select(0, order), self.labels.index_select(0, order)

    def train_epoch(self) -> bool:
        """Run the rest of the current epoch; False when stopped by SIGTERM (checkpoint written)."""
        features, labels = self.epoch_order(self.epoch)
        network, optimizer, scheduler, bounds = self.network, self.optimizer, self.scheduler, self.bounds
        interval = self.hp.checkpoint_interval_steps
        loss_sum = self.epoch_loss_sum
        network.train()
        for batch in range(self.batch_in_epoch, self.batches_per_epoch):
            start, end = bounds[batch], bounds[batch + 1]
            loss = model_spec.loss(network(features[start:end]), labels[start:end])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum.add_(loss.detach(), alpha=end - start)
            self.recent_losses[self.recent_count].copy_(loss.detach())
            self.recent_count += 1
            self.epoch_samples += end - start
            self.batch_in_epoch = batch + 1
            self.global_step += 1
            checkpoint_due = bool(interval) and self.global_step % interval == 0
            stop = self.poll(writes_state=checkpoint_due or self.batch_in_epoch == self.batches_per_epoch)
            if stop or checkpoint_due:
                self.save_checkpoint()
            if stop:
                return False
        return True

    def finish_epoch(self, validation: tuple[torch.Tensor, torch.Tensor] | None) -> EpochResult:
        """Reduce the epoch's train loss over ranks, validate on rank 0, move to the next epoch."""
        totals = torch.stack(
            [
                self.epoch_loss_sum.detach().double().cpu(),
                torch.tensor(float(self.epoch_samples), dtype=torch.float64),
            ]
        ).to(self.ctx.device)
        if self.ctx.distributed:
            dist.all_reduce(totals)
        result = EpochResult(self.epoch, float(totals[0] / totals[1]))
        if validation is not None and self.ctx.is_main:
            result.validation = model_spec.evaluate(self.model, *validation)
            self.model.train()
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_loss_sum.zero_()
        self.epoch_samples = 0
        return result


def non_finite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Names (dotted paths) of the floating-point tensors in a nested state dict holding NaN or inf."""
    found: list[str] = []
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and not bool(torch.isfinite(state).all()):
            found.append(prefix)
    elif isinstance(state, dict):
        for key, value in state.items():
            found += non_finite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(state, list | tuple):
        for index, value in enumerate(state):
            found += non_finite_tensors(value, f"{prefix}[{index}]")
    return found


def log_epoch(result: EpochResult, trainer: Trainer, seconds: float, samples: int) -> None:
    """One human-readable line plus the metric lines SageMaker's MetricDefinitions match."""
    hp = trainer.hp
    rate = samples * trainer.ctx.world_size / seconds if seconds > 0 else 0.0
    validation = " ".join(f"validation_{k}={v:.6g}" for k, v in result.validation.items())
    LOG.info(
        "epoch %d/%d done: step %d/%d train_loss=%.6g %s lr=%.3g %.0f samples/s",
        result.epoch + 1,
        hp.epochs,
        trainer.global_step,
        trainer.total_steps,
        result.train_loss,
        validation,
        trainer.scheduler.get_last_lr()[0],
        rate,
    )
    lines = [metrics.format_metric(metrics.TRAIN_LOSS, result.train_loss)]
    if result.validation:
        lines += [
            metrics.format_metric(metric, result.validation[key])
            for key, metric in model_spec.VALIDATION_METRICS.items()
        ]
    print("\n".join(lines), flush=True)


# --------------------------------------------------------------------------------------------------
# Job
# --------------------------------------------------------------------------------------------------


def channel_preprocessing(train: Path) -> Preprocessing | None:
    """The train channel's validated preprocessing.json, or None when there is none."""
    directory = train if train.is_dir() else train.parent
    path = directory / PREPROCESSING_FILE
    if not path.is_file():
        return None
    try:
        return read_preprocessing(path)
    except PreprocessingError as error:  # names the file and the key (or line/column)
        raise UsageError(str(error)) from None


def data_digest(features: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(features).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()


def train(hp: Hyperparameters, paths: Paths, ctx: DistributedContext, stop: StopSignal) -> int:
    x_train, y_train = load_split_csv(paths.train, "train channel (SM_CHANNEL_TRAIN)")
    x_val, y_val = load_split_csv(paths.validation, "validation channel (SM_CHANNEL_VALIDATION)")
    if x_val.shape[1] != x_train.shape[1]:
        raise UsageError(f"validation has {x_val.shape[1]} features but train has {x_train.shape[1]}")
    spec = channel_preprocessing(paths.train)
    spec_path = spec.path if spec is not None else None
    if spec is not None:
        classes = spec.classes
        feature_names = spec.feature_names
        if len(feature_names) != x_train.shape[1]:
            raise UsageError(
                f"{spec_path} lists {len(feature_names)} features but the train data has {x_train.shape[1]}"
            )
    else:
        LOG.warning(
            "no %s in the train channel; the model will not ship the feature transform", PREPROCESSING_FILE
        )
        classes = [str(c) for c in range(int(max(y_train.max(), y_val.max())) + 1)]
        feature_names = []
    num_classes = max(len(classes), 2)
    top = int(max(y_train.max(), y_val.max()))
    if top >= num_classes:
        raise UsageError(f"label index {top} found but only {num_classes} classes are declared")

    fingerprint = {
        **{k: v for k, v in asdict(hp).items() if k not in contract.NOT_IN_FINGERPRINT},
        "in_features": int(x_train.shape[1]),
        "num_classes": num_classes,
        "train_rows": int(x_train.shape[0]),
        "train_sha256": data_digest(x_train, y_train),
        "world_size": ctx.world_size,
    }
    seed_everything(hp.seed)
    model = model_spec.build_model(int(x_train.shape[1]), num_classes, hp)
    model.to(ctx.device)
    seed_everything(hp.seed + ctx.rank)  # per-rank dropout streams; identical initial weights on every rank

    features = torch.from_numpy(x_train).to(ctx.device)
    labels = torch.from_numpy(y_train).to(ctx.device)
    validation = (torch.from_numpy(x_val).to(ctx.device), torch.from_numpy(y_val).to(ctx.device))
    checkpoint_dir = checkpoint_directory(paths.checkpoint_dir, hp.checkpoint_namespace, fingerprint)
    checkpoints = CheckpointManager(checkpoint_dir, ctx.rank, hp.checkpoints_to_keep, LOG)
    trainer = Trainer(model, hp, ctx, features, labels, checkpoints, stop, fingerprint)
    if ctx.is_main:
        LOG.info(
            "training on %s x%d: %d train rows, %d validation rows, %d features, %d classes, "
            "%d steps/epoch, %d steps total",
            ctx.device,
            ctx.world_size,
            x_train.shape[0],
            x_val.shape[0],
            x_train.shape[1],
            num_classes,
            trainer.batches_per_epoch,
            trainer.total_steps,
        )
    resumed = trainer.restore()
    if resumed is None and ctx.is_main:
        LOG.info("no usable checkpoint in %s; starting from scratch", checkpoint_dir)

    while trainer.epoch < hp.epochs:
        started, samples_before = time.perf_counter(), trainer.epoch_samples
        if not trainer.train_epoch():
            waited = time.monotonic() - (stop.received_at or time.monotonic())
            LOG.info(
                "stop requested (SIGTERM): checkpoint at global step %d is saved (%.1f s after the signal); "
                "exiting with code 0 so the job resumes from it",
                trainer.global_step,
                waited,
            )
            return EXIT_OK
        samples = trainer.epoch_samples - samples_before
        result = trainer.finish_epoch(validation)
        if ctx.is_main:
            log_epoch(result, trainer, time.perf_counter() - started, samples)
    trainer.save_checkpoint()  # the "complete" state: a retried job only re-exports the model

    if ctx.is_main:
        paths.model_dir.mkdir(parents=True, exist_ok=True)
        save_model(paths.model_dir / MODEL_FILE, model_artifact(model, classes, feature_names, asdict(hp)))
        export_onnx(model, paths.model_dir / ONNX_FILE)
        if spec_path is not None:
            shutil.copyfile(spec_path, paths.model_dir / PREPROCESSING_FILE)
        # The serving entry point and its imports, as the PyTorch inference container expects them.
        code_dir = paths.model_dir / contract.SERVING_CODE_DIR
        code_dir.mkdir(exist_ok=True)
        for name in serving_files():
            shutil.copyfile(Path(__file__).with_name(name), code_dir / name)
        LOG.info("rank 0 wrote the model to %s (%s, %s)", paths.model_dir, MODEL_FILE, ONNX_FILE)
    if ctx.distributed:
        dist.barrier()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    hp, paths, framework = parse_args(argv)
    stop = StopSignal()
    stop.install()  # before the slow setup, so a SIGTERM during startup is not lost
    if framework:
        LOG.warning(
            "ignoring unrecognized arguments: %s (SageMaker framework settings, not hyperparameters)",
            " ".join(framework),
        )
    if hp.num_threads:
        torch.set_num_threads(hp.num_threads)
    ctx = setup_process(hp.device)
    if ctx.distributed:
        for handler in LOG.handlers:
            handler.setFormatter(
                logging.Formatter(f"%(asctime)s %(levelname)s %(name)s[rank {ctx.rank}]: %(message)s")
            )
    LOG.info("hyperparameters: %s", json.dumps(asdict(hp), sort_keys=True))
    try:
        return train(hp, paths, ctx, stop)
    finally:
        if ctx.distributed and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(run_entry_point(main, "training", LOG))
