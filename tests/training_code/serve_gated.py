"""Test-only launcher of serve.py: each worker waits for a gate file before it loads the model.

Usage: python serve_gated.py GATE_FILE <serve.py arguments>. A worker logs ``TEST HOOK: waiting for the
gate`` once it is inside the model load, so a test can probe the server while no worker has a model yet,
then create the gate file. serve.py itself is unchanged: the hook replaces predictors.load in the master,
before the workers are forked (they import the patched module).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training_code"))

import predictors
import serve

gate = Path(sys.argv[1])
real_load = predictors.load


def gated_load(*args: Any, **kwargs: Any) -> predictors.Backend:
    print("TEST HOOK: waiting for the gate", flush=True)
    while not gate.exists():
        time.sleep(0.02)
    return real_load(*args, **kwargs)


predictors.load = gated_load
sys.exit(serve.main(sys.argv[2:]))
