"""A malformed preprocessing.json is refused naming the file and the key (or the line and column).

The one reader (features.read_preprocessing) serves train.py and the serving entry point
(inference.model_fn); each case starts from the real file preprocess.py wrote for breast cancer.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import inference
import pytest
import train
from common import EXIT_USAGE
from features import PreprocessingError, read_preprocessing

from tests.training_code.training_helpers import Processed, TrainRun

#: the parsed file -> the document to write instead
Mutation = Callable[[dict[str, Any]], object]


def _set(path: list[str | int], value: object) -> Mutation:
    def mutate(spec: dict[str, Any]) -> object:
        node: Any = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return spec

    return mutate


def _delete(path: list[str | int]) -> Mutation:
    def mutate(spec: dict[str, Any]) -> object:
        node: Any = spec
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return spec

    return mutate


# (mutation of the parsed file, the message after "<file>: ")
MALFORMED: dict[str, tuple[Mutation, str]] = {
    "missing label": (_delete(["label"]), "key 'label' is missing"),
    "missing classes": (_delete(["label", "classes"]), "key 'label.classes' is missing"),
    "classes not a list": (
        _set(["label", "classes"], "benign"),
        "key 'label.classes': expected an array, got \"benign\" (string)",
    ),
    "class not a string": (
        _set(["label", "classes", 1], {"name": "benign"}),
        "key 'label.classes[1]': expected a string, got an object",
    ),
    "feature name not a string": (
        _set(["feature_names", 3], 7.5),
        "key 'feature_names[3]': expected a string, got 7.5 (number)",
    ),
    "missing transform": (_delete(["transform"]), "key 'transform' is missing"),
    "columns not a list": (
        _set(["transform", "columns"], {"a": 1}),
        "key 'transform.columns': expected an array, got an object",
    ),
    "column not an object": (
        _set(["transform", "columns", 0], 3),
        "key 'transform.columns[0]': expected an object, got 3 (number)",
    ),
    "missing mean": (
        _delete(["transform", "columns", 2, "mean"]),
        "key 'transform.columns[2].mean' is missing",
    ),
    "mean not a number": (
        _set(["transform", "columns", 2, "mean"], "0.5"),
        "key 'transform.columns[2].mean': expected a finite number, got \"0.5\" (string)",
    ),
    "std zero": (
        _set(["transform", "columns", 4, "std"], 0),
        "key 'transform.columns[4].std': expected a number > 0, got 0 (number)",
    ),
    "clip of one bound": (
        _set(["transform", "columns", 1, "clip"], [0.0]),
        "key 'transform.columns[1].clip': expected [low, high] (numbers or null), got an array",
    ),
    "unknown kind": (
        _set(["transform", "columns", 5, "kind"], "ordinal"),
        'key \'transform.columns[5].kind\': expected "numeric" or "categorical", got "ordinal" (string)',
    ),
    "top level not an object": (lambda spec: [spec], "the top level: expected a JSON object, got an array"),
}


def write_malformed(source: Path, target: Path, case: str) -> Path:
    mutate, _ = MALFORMED[case]
    document = mutate(json.loads(source.read_text()))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2))
    return target


@pytest.fixture
def spec_file(breast_cancer: Processed) -> Path:
    return breast_cancer.train / "preprocessing.json"


def test_the_real_file_reads(spec_file: Path) -> None:
    spec = read_preprocessing(spec_file)
    raw = json.loads(spec_file.read_text())
    assert spec.classes == raw["label"]["classes"] and spec.feature_names == raw["feature_names"]
    assert spec.transform.to_dict() == raw["transform"]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_names_the_file_and_the_key(spec_file: Path, tmp_path: Path, case: str) -> None:
    path = write_malformed(spec_file, tmp_path / "preprocessing.json", case)
    with pytest.raises(PreprocessingError) as raised:
        read_preprocessing(path)
    assert str(raised.value) == f"{path}: {MALFORMED[case][1]}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"label": {"classes": ["a", "b"]},\n  "feature_names": [1, 2,]}',
            "Expecting value at line 2 column 26",
        ),
        ("", "Expecting value at line 1 column 1"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_invalid_json_names_the_file_and_the_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "preprocessing.json"
    path.write_text(text)
    with pytest.raises(PreprocessingError, match=re.escape(f"{path}: not valid JSON: ")) as raised:
        read_preprocessing(path)
    assert message in str(raised.value)


def test_feature_names_must_match_the_transform(spec_file: Path, tmp_path: Path) -> None:
    spec = json.loads(spec_file.read_text())
    spec["feature_names"] = spec["feature_names"][:-1]
    path = tmp_path / "preprocessing.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(PreprocessingError, match=r"key 'feature_names': 29 names that differ from the 30"):
        read_preprocessing(path)


@pytest.mark.parametrize("case", ["missing classes", "mean not a number", "invalid JSON"])
def test_train_refuses_a_malformed_file_with_a_usage_error_naming_file_and_key(
    breast_cancer: Processed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    channel = tmp_path / "train"
    shutil.copytree(breast_cancer.train, channel)
    if case == "invalid JSON":
        (channel / "preprocessing.json").write_text('{"label": {"classes": ["malignant" "benign"]}}')
        expected = "not valid JSON: Expecting ',' delimiter at line 1 column 36"
    else:
        write_malformed(breast_cancer.train / "preprocessing.json", channel / "preprocessing.json", case)
        expected = MALFORMED[case][1]
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setattr(train.StopSignal, "install", lambda self: None)  # keep pytest's SIGTERM handler
    argv = ["--train", str(channel), "--validation", str(breast_cancer.validation)]
    argv += ["--model_dir", str(tmp_path / "model"), "--checkpoint_dir", str(tmp_path / "checkpoints")]
    assert train.run_entry_point(train.main, "training", train.LOG, argv) == EXIT_USAGE
    assert (tmp_path / "output" / "failure").read_text() == f"{channel / 'preprocessing.json'}: {expected}"
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_serving_refuses_a_malformed_file_naming_file_and_key(
    reference_run: TrainRun, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(reference_run.model_dir, model_dir)
    spec = write_malformed(model_dir / "preprocessing.json", model_dir / "preprocessing.json", "missing mean")
    with pytest.raises(PreprocessingError) as raised:
        inference.model_fn(str(model_dir))
    assert str(raised.value) == f"{spec}: key 'transform.columns[2].mean' is missing"
    shutil.copyfile(reference_run.model_dir / "preprocessing.json", spec)  # the shipped file loads
    columns = json.loads(spec.read_text())["transform"]["columns"]
    assert inference.model_fn(str(model_dir)).input_names == [column["name"] for column in columns]
