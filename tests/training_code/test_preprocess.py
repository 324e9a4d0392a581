"""preprocess.py: schema enforcement, nulls, outliers, stratified deterministic splits, train-only fitting."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import preprocess
import pytest
from common import UsageError, load_split_csv
from features import FeatureTransform
from training_helpers import CODE_DIR, Processed

OUTPUT_FILES = [
    "baseline/baseline.csv",
    "preprocessing/preprocessing.json",
    "test/test.csv",
    "train/preprocessing.json",
    "train/train.csv",
    "validation/validation.csv",
]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def write_dataset(
    directory: Path, header: list[str], rows: list[list[str]], manifest: Mapping[str, Any]
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "data.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def run(input_dir: Path, output_dir: Path, *extra: str) -> dict[str, Any]:
    assert preprocess.main(["--input_dir", str(input_dir), "--output_dir", str(output_dir), *extra]) == 0
    return json.loads((output_dir / "preprocessing" / "preprocessing.json").read_text())


def test_outputs_layout_and_encoding(breast_cancer: Processed) -> None:
    files = sorted(
        str(p.relative_to(breast_cancer.output)) for p in breast_cancer.output.rglob("*") if p.is_file()
    )
    assert files == OUTPUT_FILES
    spec = json.loads((breast_cancer.train / "preprocessing.json").read_text())
    rows = {
        split: load_split_csv(breast_cancer.output / split, split)
        for split in ("train", "validation", "test")
    }
    assert sum(len(y) for _, y in rows.values()) == 569
    assert {split: len(y) for split, (_, y) in rows.items()} == spec["split"]["rows"]
    for x, y in rows.values():
        assert x.shape[1] == len(spec["feature_names"]) == 30
        assert set(np.unique(y)) == {0, 1}  # class indices, not label strings
    assert spec["label"]["classes"] == ["malignant", "benign"]  # the manifest's declared order
    first_line = (breast_cancer.train / "train.csv").read_text().splitlines()[0]
    assert not first_line.startswith(("mean", "target"))  # no header


def test_stratification_keeps_class_ratios(breast_cancer: Processed) -> None:
    ratios = {}
    for split in ("train", "validation", "test"):
        _, y = load_split_csv(breast_cancer.output / split, split)
        ratios[split] = float(np.mean(y == 1))
    _, y_all = zip(
        *(load_split_csv(breast_cancer.output / s, s) for s in ("train", "validation", "test")), strict=True
    )
    overall = float(np.mean(np.concatenate(y_all) == 1))
    for split, ratio in ratios.items():
        assert ratio == pytest.approx(overall, abs=0.01), split


def test_scaling_imputation_and_clipping_are_fitted_on_train_only(breast_cancer: Processed) -> None:
    spec = json.loads((breast_cancer.train / "preprocessing.json").read_text())
    x_train, _ = load_split_csv(breast_cancer.train, "train")
    x_val, _ = load_split_csv(breast_cancer.validation, "validation")
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0), 1.0, atol=1e-5)
    assert np.abs(x_val.mean(axis=0)).max() > 0.05  # validation is transformed, not re-fitted

    baseline = read_csv(breast_cancer.output / "baseline" / "baseline.csv")
    names = [c["name"] for c in spec["input_columns"]]
    assert baseline[0] == names
    raw_train = np.array(baseline[1:], dtype=np.float64)
    all_raw = np.array([row[:-1] for row in read_csv(breast_cancer.raw / "data.csv")[1:]], dtype=np.float64)
    for j, column in enumerate(spec["transform"]["columns"]):
        values = raw_train[:, j]
        assert column["impute"] == np.median(values)
        q1, q3 = np.quantile(values, [0.25, 0.75])
        assert column["clip"] == [q1 - 3.0 * (q3 - q1), q3 + 3.0 * (q3 - q1)]
        clipped = np.clip(values, *column["clip"])
        assert column["mean"] == pytest.approx(clipped.mean(), rel=1e-12)
        assert column["std"] == pytest.approx(clipped.std(), rel=1e-12)
    full_means = np.clip(all_raw, *np.array([c["clip"] for c in spec["transform"]["columns"]]).T).mean(axis=0)
    assert not np.allclose([c["mean"] for c in spec["transform"]["columns"]], full_means, rtol=1e-9)


def test_baseline_is_the_raw_train_split_and_the_shipped_transform_reproduces_train_csv(
    breast_cancer: Processed,
) -> None:
    spec = json.loads((breast_cancer.train / "preprocessing.json").read_text())
    baseline_rows = read_csv(breast_cancer.output / "baseline" / "baseline.csv")[1:]
    raw_rows = {tuple(row[:-1]) for row in read_csv(breast_cancer.raw / "data.csv")[1:]}
    assert len(baseline_rows) == spec["split"]["rows"]["train"]
    assert all(tuple(row) in raw_rows for row in baseline_rows)  # unscaled, exactly as the endpoint gets them
    transform = FeatureTransform.from_dict(spec["transform"])
    expected = np.loadtxt(breast_cancer.train / "train.csv", delimiter=",")[:, 1:]
    np.testing.assert_array_equal(transform.transform(baseline_rows), expected)


def test_same_seed_same_bytes_other_seed_other_split(breast_cancer: Processed, tmp_path: Path) -> None:
    run(breast_cancer.raw, tmp_path / "again", "--seed", "3")
    for name in OUTPUT_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (breast_cancer.output / name).read_bytes(), name
    run(breast_cancer.raw, tmp_path / "other", "--seed", "4")
    assert (tmp_path / "other" / "train/train.csv").read_bytes() != (
        breast_cancer.train / "train.csv"
    ).read_bytes()


def _synthetic(directory: Path) -> Path:
    """60 rows: x (float, nulls, one huge outlier), n (int), c (category), y (label, two nulls)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        x = "" if i % 10 == 3 else repr(round(float(rng.normal(10, 2)), 3))
        if i == 7:
            x = "1e9"
        label = "NULL" if i in (13, 41) else "ab"[i % 2]
        rows.append([x, str(int(rng.integers(0, 5))), ["red", "blue", "NA"][i % 3], label])
    manifest = {
        "dataset": "synthetic",
        "version": "v1",
        "files": ["data.csv"],
        "label": "y",
        "columns": [
            {"name": "x", "type": "float"},
            {"name": "n", "type": "int"},
            {"name": "c", "type": "category"},
            {"name": "y", "type": "category"},
        ],
    }
    return write_dataset(directory, ["x", "n", "c", "y"], rows, manifest)


def test_nulls_are_imputed_with_train_statistics_and_null_labels_dropped(tmp_path: Path) -> None:
    source = _synthetic(tmp_path / "in")
    spec = run(
        source, tmp_path / "out", "--train_ratio", "0.6", "--validation_ratio", "0.2", "--test_ratio", "0.2"
    )
    report = spec["report"]
    raw = read_csv(source / "data.csv")[1:]
    null_labels = sum(1 for row in raw if row[3] == "NULL")
    assert null_labels == 2
    assert report["rows_read"] == 60 and report["rows_dropped_null_label"] == null_labels
    assert sum(spec["split"]["rows"].values()) == 60 - null_labels
    assert report["null_counts"]["x"] == sum(1 for row in raw if row[3] != "NULL" and row[0] == "")

    baseline = read_csv(tmp_path / "out" / "baseline" / "baseline.csv")
    train_x = [float(r[0]) for r in baseline[1:] if r[0] != ""]
    x_column, n_column, c_column = spec["transform"]["columns"]
    assert x_column["impute"] == np.median(train_x)
    assert n_column["type"] == "int" and n_column["impute"] == np.median([int(r[1]) for r in baseline[1:]])
    q1, q3 = np.quantile(train_x, [0.25, 0.75])
    assert x_column["clip"][1] == q3 + 3.0 * (q3 - q1) < 1e9  # the outlier is clipped
    assert c_column["categories"] == ["blue", "red"] and c_column["impute"] in ("blue", "red")
    assert spec["feature_names"] == ["x", "n", "c=blue", "c=red"]
    for split in ("train", "validation", "test"):
        x, _ = load_split_csv(tmp_path / "out" / split, split)
        assert np.isfinite(x).all()
        assert set(np.unique(x[:, 2:].sum(axis=1))) <= {1.0}  # one-hot, nulls imputed with the mode
    transform = FeatureTransform.from_dict(spec["transform"])
    [[x_scaled, *_]] = transform.transform([["", "2", "green"]]).tolist()
    assert x_scaled == (x_column["impute"] - x_column["mean"]) / x_column["std"]
    assert transform.transform([["1", "2", "green"]])[0, 2:].tolist() == [0.0, 0.0]  # unseen category


def _schema_case(tmp_path: Path, header: list[str], row: list[str], columns: list[dict[str, str]]) -> Path:
    rows = [["1.5", "2", "a"], ["2.5", "3", "b"], ["3.5", "4", "a"], ["4.5", "5", "b"]]
    manifest = {"dataset": "d", "version": "1", "files": ["data.csv"], "label": "y", "columns": columns}
    return write_dataset(tmp_path / "in", header, [*rows, row], manifest)


COLUMNS = [{"name": "x", "type": "float"}, {"name": "n", "type": "int"}, {"name": "y", "type": "category"}]


@pytest.mark.parametrize(
    ("header", "row", "columns", "message"),
    [
        (["x", "y"], ["1", "a"], COLUMNS, r"data.csv: column 'n' declared in manifest.json is missing"),
        (["x", "n", "y", "z"], ["1", "2", "a", "0"], COLUMNS, r"column 'z' is not declared in manifest.json"),
        (
            ["n", "x", "y"],
            ["1", "2", "a"],
            COLUMNS,
            r"column 'n' is at position 1, but manifest.json declares 'x'",
        ),
        (
            ["x", "n", "y"],
            ["abc", "2", "a"],
            COLUMNS,
            r"data.csv line 6: column 'x' is declared as float but holds 'abc'",
        ),
        (
            ["x", "n", "y"],
            ["1", "2.5", "a"],
            COLUMNS,
            r"data.csv line 6: column 'n' is declared as int but holds '2.5'",
        ),
        (
            ["x", "n", "y"],
            ["1", "2", "a"],
            [*COLUMNS[:2], {"name": "y", "type": "text"}],
            r"column 'y' has type 'text'; allowed: float, int, category",
        ),
    ],
)
def test_schema_mismatch_fails_naming_the_column(
    tmp_path: Path, header: list[str], row: list[str], columns: list[dict[str, str]], message: str
) -> None:
    source = _schema_case(tmp_path, header, row, columns)
    with pytest.raises(UsageError, match=message):
        preprocess.main(["--input_dir", str(source), "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_schema_mismatch_exits_non_zero_as_a_script(tmp_path: Path) -> None:
    source = _schema_case(tmp_path, ["x", "n", "y"], ["oops", "2", "a"], COLUMNS)
    result = subprocess.run(
        [
            sys.executable,
            str(CODE_DIR / "preprocess.py"),
            "--input_dir",
            str(source),
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SM_OUTPUT_DIR": str(tmp_path / "sm-output")},
    )
    assert result.returncode == 2
    assert "column 'x' is declared as float but holds 'oops'" in result.stdout
    # SageMaker surfaces /opt/ml/output/message as the processing job's ExitMessage
    assert "column 'x'" in (tmp_path / "sm-output" / "message").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train_ratio", "0.5"], "must be 1"),
        (["--test_ratio", "0"], r"--test_ratio must be in \(0, 1\)"),
        (["--outlier_method", "quantile", "--quantile_low", "0.9", "--quantile_high", "0.1"], "quantiles"),
    ],
)
def test_invalid_arguments_are_named(args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        preprocess.parse_args(args)
