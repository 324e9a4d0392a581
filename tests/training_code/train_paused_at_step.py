"""Test-only launcher of train.py: pauses every rank after a given global step until SIGTERM arrives.

``python train_paused_at_step.py <step> <train.py arguments...>`` (also as torchrun's script). It imports
train.py as the container does (its folder on the path: PYTHONPATH, see training_helpers.subprocess_env),
wraps :meth:`train.Trainer.poll` (called at every step boundary, right after the global step advances) so
that at ``<step>`` it logs ``TEST HOOK: paused after global step <step>`` and waits for the stop flag,
then runs train.py's entry point unchanged. The tests then deliver SIGTERM or SIGKILL at a known step.
Production code has no test hook: nothing here ships or runs in a job.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import train
from common import run_entry_point

#: Never pause longer than this (a test that forgot to signal still ends).
MAX_PAUSE_SECONDS = 600


def pause_after(step: int) -> None:
    original = train.Trainer.poll

    def poll(self: Any, writes_state: bool) -> bool:
        if self.global_step == step:
            train.LOG.info("TEST HOOK: paused after global step %d", self.global_step)
            deadline = time.monotonic() + MAX_PAUSE_SECONDS
            while not self.stop.requested and time.monotonic() < deadline:
                time.sleep(0.02)
        return original(self, writes_state)

    train.Trainer.poll = poll  # type: ignore[method-assign,unused-ignore]


if __name__ == "__main__":
    pause_after(int(sys.argv[1]))
    sys.exit(run_entry_point(train.main, "training", train.LOG, sys.argv[2:]))
