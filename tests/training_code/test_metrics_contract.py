"""The metric contract shared by train.py/evaluate.py and the CDK stack (training_code/metrics.py)."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import metrics
import pytest

from tests.training_code.training_helpers import CODE_DIR

RUNTIME_MODULES = sorted(p.stem for p in CODE_DIR.glob("*.py") if p.stem not in ("__init__", "local_run"))
SIBLINGS = {p.stem for p in CODE_DIR.glob("*.py")}


def test_metric_definitions_are_valid_sagemaker_metric_definitions() -> None:
    names = [d["Name"] for d in metrics.METRIC_DEFINITIONS]
    assert names == ["train:loss", "validation:loss", "validation:accuracy", "validation:f1"]
    for definition in metrics.METRIC_DEFINITIONS:
        assert set(definition) == {"Name", "Regex"}
        assert 1 <= len(definition["Regex"]) <= 500
        assert re.compile(definition["Regex"]).groups == 1
    assert metrics.OBJECTIVE_METRIC == "validation:accuracy" and metrics.OBJECTIVE_METRIC in names
    assert metrics.OBJECTIVE_TYPE == "Maximize"
    json.dumps(metrics.METRIC_DEFINITIONS)  # serializable into the CloudFormation template


@pytest.mark.parametrize(
    "value",
    [0.0, 1.0, 1e-05, 0.9647058823529412, -2.5e30, 123456789.0, 5e-324, 1.7976931348623157e308, -0.0, 3],
)
@pytest.mark.parametrize("name", metrics.METRIC_NAMES)
def test_format_metric_round_trips_through_its_regex(name: str, value: float) -> None:
    line = metrics.format_metric(name, value)
    (definition,) = [d for d in metrics.METRIC_DEFINITIONS if d["Name"] == name]
    found = re.findall(definition["Regex"], f"2026-01-01 12:00:00 INFO {line}\nnext line")
    assert [float(v) for v in found] == [float(value)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("METRIC validation:loss=1e-05", 1e-05),
        ("METRIC validation:loss=6.02E+23", 6.02e23),
        ("METRIC validation:loss=-.5", -0.5),
        ("METRIC validation:loss=2.", 2.0),
        ("METRIC validation:loss=+7e-3 trailing", 0.007),
    ],
)
def test_regexes_accept_every_float_spelling(text: str, expected: float) -> None:
    regex = metrics.metric_regex(metrics.VALIDATION_LOSS)
    match = re.search(regex, text)
    assert match is not None and float(match[1]) == expected


def test_regexes_match_only_their_own_metric_and_never_non_finite_values() -> None:
    log = "\n".join(metrics.format_metric(n, i + 0.5) for i, n in enumerate(metrics.METRIC_NAMES))
    for i, definition in enumerate(metrics.METRIC_DEFINITIONS):
        assert [float(v) for v in re.findall(definition["Regex"], log)] == [i + 0.5]
    for value in (float("nan"), float("inf"), float("-inf")):
        line = metrics.format_metric(metrics.TRAIN_LOSS, value)
        assert re.search(metrics.metric_regex(metrics.TRAIN_LOSS), line) is None


@pytest.mark.parametrize("bad", ["", "loss=x", "two\nlines", "x" * 256])
def test_format_metric_rejects_names_that_would_break_the_regex(bad: str) -> None:
    with pytest.raises(ValueError, match="metric name"):
        metrics.format_metric(bad, 1.0)


def test_evaluation_json_paths() -> None:
    assert (
        metrics.evaluation_json_path("accuracy", num_classes=2)
        == "binary_classification_metrics.accuracy.value"
    )
    assert metrics.evaluation_json_path(num_classes=10) == "multiclass_classification_metrics.accuracy.value"
    assert metrics.evaluation_json_path("weighted_f1", num_classes=3).endswith(".weighted_f1.value")
    with pytest.raises(ValueError, match="'weighted_f1' is not in the evaluation report"):
        metrics.evaluation_json_path("weighted_f1", num_classes=2)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        metrics.evaluation_json_path(num_classes=1)


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_metrics_module_imports_only_the_standard_library() -> None:
    imported = _imported_modules(CODE_DIR / "metrics.py")
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_container_code_needs_only_stdlib_numpy_and_torch(module: str) -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "numpy", "torch"} | SIBLINGS
    if module == "inference":  # the inference toolkit's error type, imported with a local fallback
        allowed.add("sagemaker_inference")
    if module == "ingest_features":  # the Feature Store runtime client, imported lazily in its main()
        allowed |= {"boto3", "botocore"}
    if module in ("serve", "predictors"):  # the serving image: its own requirements (torch only lazily,
        allowed |= {"onnxruntime", "gunicorn"}  # for the benchmark's eager backend; never in the image)
    imported = _imported_modules(CODE_DIR / f"{module}.py")
    assert imported <= allowed, f"{module}.py imports {sorted(imported - allowed)}"


def test_container_scripts_import_without_scikit_learn_pandas_or_onnx() -> None:
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in ("sklearn", "pandas", "onnx", "tqdm"))
    code = f"import sys; {blocked}; sys.path.insert(0, {str(CODE_DIR)!r}); " + "; ".join(
        f"import {m}" for m in [*RUNTIME_MODULES, "local_run"]
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_cdk_can_import_the_contract_as_a_package_module() -> None:
    packaged = importlib.import_module("training_code.metrics")
    assert packaged is metrics  # one module object, whichever way it is imported
    assert packaged.METRIC_DEFINITIONS == metrics.METRIC_DEFINITIONS
    assert packaged.evaluation_json_path(num_classes=2) == "binary_classification_metrics.accuracy.value"
