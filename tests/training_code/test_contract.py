"""One source of truth (training_code/contract.py) for what the infrastructure and the runtime share.

Each test fails when one side stops deriving a value from the contract: the stage config
(stacks/config.py: hyperparameter defaults and bounds, tuning-range checks, split ratios), train.py
(parser, defaults, checks), preprocess.py (splits, ratios), local_run.py (the hyperparameters of a
local run) and the synthesized pipeline.
"""

from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import contract
import local_run
import preprocess
import pytest
import train
from pydantic import ValidationError

from stacks.config import HyperParameters, ProcessingConfig, TuningRanges, load_app_config
from tests.conftest import STAGES, SynthesizedStage, cli_context
from tests.support.training_pipelines import definitions, steps
from tests.training_code.training_helpers import CODE_DIR, ROOT

SYNTH_MODULES = ("contract", "metrics", "ingest_features", "monitoring_contract")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


# ---- importable at synth ---------------------------------------------------------------------------


def test_the_contract_imports_only_the_standard_library() -> None:
    assert _imports(CODE_DIR / "contract.py") <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_synth_imports_the_declarative_modules_without_torch_or_numpy_as_one_copy_each() -> None:
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in ("numpy", "torch"))
    probe = (
        f"import sys; {blocked}; "
        "from training_code import contract, ingest_features, metrics; "
        "import training_code.contract, training_code.metrics, training_code.ingest_features; "
        "assert training_code.contract is contract is sys.modules['contract']; "
        "assert training_code.metrics is metrics is sys.modules['metrics']; "
        "assert training_code.ingest_features is ingest_features is sys.modules['ingest_features']; "
        "assert not {'boto3', 'botocore'} & set(sys.modules); "
        "import stacks.config; print(contract.PREPROCESSING_FILE)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "preprocessing.json", result.stderr


def test_the_test_process_holds_one_copy_of_each_synth_module() -> None:
    import training_code

    for name in SYNTH_MODULES:
        assert getattr(training_code, name) is sys.modules[name] is sys.modules[f"training_code.{name}"]
    assert training_code.contract is contract


def test_the_stack_imports_only_the_synth_modules_of_training_code() -> None:
    for path in (ROOT / "stacks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "training_code":
                assert {a.name for a in node.names} <= set(SYNTH_MODULES), path
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("training_code."):
                pytest.fail(f"{path}: import {node.module}: use `from training_code import <module>`")


# ---- hyperparameters -------------------------------------------------------------------------------


def test_train_py_parser_and_dataclass_are_the_contract() -> None:
    parser = train.build_parser()
    defaults = {name: parser.get_default(name) for name in contract.HYPERPARAMETERS}
    assert defaults == contract.hyperparameter_defaults()
    assert train.Hyperparameters().__dict__ == contract.hyperparameter_defaults()
    for name, spec in contract.HYPERPARAMETERS.items():
        (action,) = [a for a in parser._actions if a.dest == name]
        assert action.type is spec.type, name
    assert train.known_arguments()[: len(contract.HYPERPARAMETERS)] == [
        f"--{n}" for n in contract.HYPERPARAMETERS
    ]


def test_the_stage_config_defaults_are_the_contract() -> None:
    model = {h.name: h.default for h in contract.MODEL_HYPERPARAMETERS}
    assert list(HyperParameters.model_fields) == list(model)
    assert HyperParameters().model_dump() == model
    processing = ProcessingConfig()
    assert {s: getattr(processing, f"{s}_ratio") for s in contract.SPLITS} == contract.SPLIT_RATIOS
    assert processing.seed == contract.DEFAULT_SPLIT_SEED
    config = load_app_config(cli_context()).stages
    assert all(
        stage.training.checkpoint_interval_steps == contract.DEFAULT_CHECKPOINT_INTERVAL_STEPS
        for stage in config.values()
    )


def _edges(spec: contract.Hyperparameter) -> list[Any]:
    """Values at and just beyond each bound of ``spec`` (and the default)."""
    values: list[Any] = [spec.default]
    step = 1 if spec.type is int else 1e-9
    for bound in (spec.minimum, spec.maximum):
        if bound is not None:
            values += [spec.type(bound), spec.type(bound - step), spec.type(bound + step)]
    return values


def _train_accepts(name: str, value: Any) -> bool:
    try:
        train.parse_args([f"--{name}", str(value), "--model_dir", "/tmp/m", "--checkpoint_dir", "/tmp/c"])
    except train.UsageError:
        return False
    return True


def _config_accepts(name: str, value: Any) -> bool:
    try:
        HyperParameters.model_validate_json(json.dumps({name: value}))
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", [h.name for h in contract.MODEL_HYPERPARAMETERS])
def test_the_stage_config_and_train_py_accept_the_same_values_up_to_the_stage_cap(name: str) -> None:
    spec = contract.HYPERPARAMETERS[name]
    for value in _edges(spec):
        within_cap = spec.stage_maximum is None or value <= spec.stage_maximum
        assert _train_accepts(name, value) == spec.accepts(value), (name, value)
        assert _config_accepts(name, value) == (spec.accepts(value) and within_cap), (name, value)
    if spec.stage_maximum is not None:  # the cap itself: the config allows it, train.py too
        cap = spec.type(spec.stage_maximum)
        assert _config_accepts(name, cap) and _train_accepts(name, cap)


@pytest.mark.parametrize("name", list(TuningRanges.model_fields))
def test_tuning_ranges_are_checked_against_the_contract_bounds(name: str) -> None:
    spec = contract.HYPERPARAMETERS[name]
    default = getattr(TuningRanges(), name)
    for end in (default.min, default.max):  # the default ranges are accepted by train.py at both ends
        assert _train_accepts(name, end), (name, end)
    if spec.minimum is None:
        return
    below = spec.type(spec.minimum - (1 if spec.type is int else 0.05))
    if spec.exclusive_minimum:
        below = spec.type(spec.minimum)
    assert not spec.accepts(below)
    ranges = TuningRanges().model_dump()
    ranges[name] = {**ranges[name], "min": below}
    with pytest.raises(ValidationError, match=r"min: got|: got \["):
        TuningRanges.model_validate_json(json.dumps(ranges))


# ---- splits, files, paths --------------------------------------------------------------------------


def test_preprocess_writes_the_contract_splits_with_the_contract_defaults() -> None:
    assert preprocess.SPLITS == contract.SPLITS
    assert preprocess.PREPROCESSING_FILE == contract.PREPROCESSING_FILE
    args = preprocess.parse_args([])
    assert args.ratios == contract.SPLIT_RATIOS and args.seed == contract.DEFAULT_SPLIT_SEED
    assert args.input_dir == contract.PREPROCESS_INPUT_DIR
    assert args.output_dir == contract.PREPROCESS_OUTPUT_DIR
    assert set(contract.TRAINING_CHANNELS) <= set(contract.SPLITS)


def test_no_runtime_module_hard_codes_a_container_path_or_a_shared_file_name() -> None:
    shared = {
        contract.PREPROCESSING_FILE, contract.MODEL_FILE, contract.ONNX_FILE, contract.MANIFEST_FILE,
        contract.RECORDS_FILE, contract.SCHEMA_FILE,
    }  # fmt: skip
    for path in sorted(CODE_DIR.glob("*.py")):
        if path.name == "contract.py":
            continue
        constants = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not {c for c in constants if c.startswith(contract.OPT_ML)}, path.name
        assert not constants & shared, (path.name, constants & shared)


# ---- serving files ---------------------------------------------------------------------------------


def test_the_serving_files_are_the_entry_point_and_its_transitive_sibling_imports(tmp_path: Path) -> None:
    files = train.serving_files()
    assert files[0] == contract.SERVING_ENTRY_POINT
    assert set(files) == {"inference.py", "common.py", "contract.py", "features.py", "model.py", "payload.py"}
    # Only those files, in a folder of their own, import (as in the inference container's code dir).
    for name in files:
        shutil.copyfile(CODE_DIR / name, tmp_path / name)
    probe = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import inference"
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_serving_files_follow_a_new_import(tmp_path: Path) -> None:
    for path in CODE_DIR.glob("*.py"):
        shutil.copyfile(path, tmp_path / path.name)
    entry = tmp_path / "inference.py"
    entry.write_text("import scoring\n" + entry.read_text())
    assert {"scoring.py", "metrics.py"} <= set(train.serving_files(code_dir=tmp_path))


# ---- a local run trains what the pipeline trains ---------------------------------------------------


def _parsed(args: list[str]) -> dict[str, Any]:
    hp, _, ignored = train.parse_args([*args, "--model_dir", "/tmp/m", "--checkpoint_dir", "/tmp/c"])
    assert ignored == []
    return dict(hp.__dict__)


@pytest.mark.parametrize("stage", STAGES)
def test_a_local_run_trains_with_the_stage_config_hyperparameters(stage: str) -> None:
    config = load_app_config(cli_context(f"stage={stage}")).stage
    expected = {
        **config.training.hyperparameters.model_dump(),
        "checkpoint_interval_steps": config.training.checkpoint_interval_steps,
    }
    local = _parsed(local_run.train_arguments(stage, None, None, []))
    assert {k: local[k] for k in expected} == expected
    # everything else is train.py's (contract) default, as in the pipeline
    assert {k: v for k, v in local.items() if k not in expected} == {
        k: v for k, v in contract.hyperparameter_defaults().items() if k not in expected
    }
    split = local_run.stage_split(stage)
    assert split == {
        "train_ratio": config.processing.train_ratio,
        "validation_ratio": config.processing.validation_ratio,
        "test_ratio": config.processing.test_ratio,
        "seed": config.processing.seed,
    }


@pytest.mark.slow
def test_a_local_run_and_the_dev_pipeline_pass_train_py_the_same_hyperparameters(
    synthesized: dict[str, SynthesizedStage],
) -> None:
    arguments = steps(definitions(synthesized["dev"])["training"])["TrainSpot"]["Arguments"]
    passed = {
        name: json.loads(value)
        for name, value in arguments["HyperParameters"].items()
        if not name.startswith("sagemaker_")
    }
    pipeline_args = [item for name, value in passed.items() for item in (f"--{name}", str(value))]
    local = _parsed(local_run.train_arguments("dev", None, None, []))
    pipeline = _parsed(pipeline_args)
    assert local == pipeline
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in local.values())
