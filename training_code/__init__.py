"""The synth side's view of the runtime code: the declarative modules only, one copy per process.

The runtime code is a folder of flat scripts that import their siblings by their own names
(``import contract``), as SageMaker runs them (``python train.py``: the script's folder is sys.path[0]).
The CDK app imports from here only the standard-library modules it shares with them::

    from training_code import contract, ingest_features, metrics, monitoring_contract

Each is loaded under its flat name (and aliased as ``training_code.<name>``), so a process that imports
both ways (the test session: the stack tests and the runtime tests) holds one module object, not two
copies whose constants could be patched apart. Nothing else of training_code/ is importable this way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

CODE_DIR = Path(__file__).resolve().parent
#: The modules the synth may import: standard library only (tests/training_code/test_contract.py).
SYNTH_MODULES = ("contract", "metrics", "ingest_features", "monitoring_contract")


def _load(name: str) -> ModuleType:
    path = CODE_DIR / f"{name}.py"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    elif Path(getattr(module, "__file__", "") or "").resolve() != path:
        raise ImportError(f"module {name!r} is already loaded from {module.__file__}, not from {path}")
    sys.modules[f"{__name__}.{name}"] = module
    return module


if TYPE_CHECKING:  # the type checker reads the files themselves
    from . import contract, ingest_features, metrics, monitoring_contract
else:
    contract = _load("contract")
    metrics = _load("metrics")
    ingest_features = _load("ingest_features")
    monitoring_contract = _load("monitoring_contract")  # imports contract: loaded after it
