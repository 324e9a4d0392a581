"""Training-loop throughput of training_code/train.py against a bare PyTorch floor, and checkpoint cost.

Usage (from the repository root)::

    python bench/train_throughput.py [--rows 8192] [--batch_size 64] [--repetitions 7] [--threads N]

What it measures, in one process on synthetic standardized data (preloaded tensors):

* **loop**: ``train.Trainer`` epochs exactly as train.py runs them (per-epoch sampler permutation and
  gather, cross-entropy, AdamW, per-step cosine LR schedule, loss accumulation, SIGTERM/checkpoint
  checks; periodic checkpoints off, validation excluded);
* **floor**: the same model and optimizer in a bare ``forward / backward / step`` loop over slices of
  the same preloaded tensors with the same batch boundaries;
* the two alternate epoch by epoch (order flipped every repetition); the report gives the median
  samples/s of each and **ratio = loop / floor** (goal >= 0.8);
* **checkpoint overhead**: the median time of a real checkpoint write (serialize, SHA-256, fsync,
  rename, prune) of the Trainer's full state, as a share of the time between two checkpoints at the
  default interval: ``save / (interval * step + save)`` (goal <= 2 %).

Benchmarks are not tests: nothing here asserts on time. Results and the machine go in bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_code"))

import train  # noqa: E402
from checkpointing import CheckpointManager  # noqa: E402


def make_data(rows: int, features: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=generator)
    weights = torch.randn(features, classes, generator=generator)
    y = (x @ weights + 0.5 * torch.randn(rows, classes, generator=generator)).argmax(dim=1)
    return x, y


def build_trainer(
    hp: train.Hyperparameters,
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    checkpoints: CheckpointManager | None,
) -> train.Trainer:
    torch.manual_seed(hp.seed)
    model = train.TabularClassifier(x.shape[1], classes, hp.hidden_units, hp.num_layers, hp.dropout)
    ctx = train.DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    return train.Trainer(model, hp, ctx, x, y, checkpoints, fingerprint={"bench": True})


def loop_epoch(trainer: train.Trainer) -> float:
    """One train.py epoch (without validation); returns seconds."""
    started = time.perf_counter()
    trainer.train_epoch()
    trainer.finish_epoch(None)
    return time.perf_counter() - started


class Floor:
    """The bare loop: same model/optimizer, preloaded tensors, same batch boundaries, nothing else."""

    def __init__(self, hp: train.Hyperparameters, x: torch.Tensor, y: torch.Tensor, classes: int) -> None:
        torch.manual_seed(hp.seed)
        self.model = train.TabularClassifier(x.shape[1], classes, hp.hidden_units, hp.num_layers, hp.dropout)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay, foreach=True
        )
        self.x, self.y = x, y
        self.bounds = train.batch_bounds(x.shape[0], hp.batch_size)

    def epoch(self) -> float:
        model, optimizer, x, y, bounds = self.model, self.optimizer, self.x, self.y, self.bounds
        model.train()
        started = time.perf_counter()
        for start, end in itertools.pairwise(bounds):
            loss = functional.cross_entropy(model(x[start:end]), y[start:end])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=train.Hyperparameters.batch_size)
    parser.add_argument("--hidden_units", type=int, default=train.Hyperparameters.hidden_units)
    parser.add_argument("--num_layers", type=int, default=train.Hyperparameters.num_layers)
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--checkpoint_saves", type=int, default=30)
    parser.add_argument(
        "--checkpoint_interval_steps", type=int, default=train.DEFAULT_CHECKPOINT_INTERVAL_STEPS
    )
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    parser.add_argument("--workdir", default=str(ROOT / "bench" / ".work"), help="where checkpoints go")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    hp = train.Hyperparameters(
        epochs=1000,
        batch_size=args.batch_size,
        hidden_units=args.hidden_units,
        num_layers=args.num_layers,
        checkpoint_interval_steps=0,  # measured separately below
    )
    x, y = make_data(args.rows, args.features, args.classes, seed=0)
    trainer = build_trainer(hp, x, y, args.classes, None)
    floor = Floor(hp, x, y, args.classes)
    loop_epoch(trainer), floor.epoch()  # warm-up (allocator, kernels, lazy imports)

    loop_times: list[float] = []
    floor_times: list[float] = []
    for repetition in range(args.repetitions):
        if repetition % 2 == 0:
            floor_times.append(floor.epoch())
            loop_times.append(loop_epoch(trainer))
        else:
            loop_times.append(loop_epoch(trainer))
            floor_times.append(floor.epoch())
    steps = trainer.batches_per_epoch
    loop_rate = args.rows / statistics.median(loop_times)
    floor_rate = args.rows / statistics.median(floor_times)
    step_seconds = statistics.median(loop_times) / steps

    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="checkpoints-") as directory:
        manager = CheckpointManager(Path(directory), rank=0, keep=hp.checkpoints_to_keep, logger=train.LOG)
        trainer.checkpoints = manager
        save_times = []
        for _ in range(args.checkpoint_saves):
            trainer.global_step += 1  # a new file each time, pruning included, as in training
            started = time.perf_counter()
            manager.save(trainer.state_dict(), trainer.global_step)
            save_times.append(time.perf_counter() - started)
        checkpoint_bytes = max(p.stat().st_size for p in Path(directory).iterdir())
    save_seconds = statistics.median(save_times)
    interval = args.checkpoint_interval_steps
    overhead = save_seconds / (interval * step_seconds + save_seconds)

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} "
        f"{platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "config": {
            "rows": args.rows,
            "features": args.features,
            "classes": args.classes,
            "batch_size": hp.batch_size,
            "hidden_units": hp.hidden_units,
            "num_layers": hp.num_layers,
            "steps_per_epoch": steps,
            "repetitions": args.repetitions,
        },
        "loop_samples_per_second": round(loop_rate),
        "floor_samples_per_second": round(floor_rate),
        "ratio_loop_to_floor": round(loop_rate / floor_rate, 3),
        "step_ms": round(step_seconds * 1e3, 4),
        "checkpoint_bytes": checkpoint_bytes,
        "checkpoint_save_ms_median": round(save_seconds * 1e3, 3),
        "checkpoint_save_ms_max": round(max(save_times) * 1e3, 3),
        "checkpoint_interval_steps": interval,
        "checkpoint_overhead_percent": round(100 * overhead, 3),
        "loop_epoch_seconds": [round(t, 4) for t in loop_times],
        "floor_epoch_seconds": [round(t, 4) for t in floor_times],
    }
    text = json.dumps(results, indent=2)
    print(text)
    print(
        f"\nloop {loop_rate:,.0f} samples/s vs floor {floor_rate:,.0f} samples/s: "
        f"ratio {loop_rate / floor_rate:.3f} (goal >= 0.8); "
        f"checkpoint {save_seconds * 1e3:.2f} ms every {interval} steps of "
        f"{step_seconds * 1e3:.3f} ms: overhead {100 * overhead:.2f} % (goal <= 2 %)"
    )
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
