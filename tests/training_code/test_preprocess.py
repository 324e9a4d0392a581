"""preprocess.py: schema enforcement, nulls, outliers, stratified deterministic splits, train-only fitting."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ingest_features
import numpy as np
import preprocess
import pytest
from common import UsageError, load_split_csv
from features import FeatureTransform

from tests.training_code.training_helpers import CODE_DIR, Processed

OUTPUT_FILES = [
    "baseline/baseline.csv",
    "labeled/labeled.csv",
    "scoring/scoring.csv",
    "scoring_labels/scoring_labels.csv",
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
    return json.loads((output_dir / "train" / "preprocessing.json").read_text())


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


@pytest.mark.parametrize("dataset", ["breast_cancer", "wine", "digits"])
def test_scoring_file_is_the_raw_test_split_with_its_labels_line_by_line(
    dataset: str, request: pytest.FixtureRequest
) -> None:
    """scoring.csv is what the endpoint and batch transform receive: raw cells, no header, no label."""
    data: Processed = request.getfixturevalue(dataset)
    spec = json.loads((data.train / "preprocessing.json").read_text())
    text = (data.output / "scoring" / "scoring.csv").read_text()
    lines = text.split("\n")
    assert lines[-1] == "" and "" not in lines[:-1] and "\r" not in text  # one record per line, no blank
    rows = read_csv(data.output / "scoring" / "scoring.csv")
    assert len(rows) == len(lines) - 1 == spec["split"]["rows"]["test"]
    names = [c["name"] for c in spec["input_columns"]]
    assert all(len(row) == len(names) for row in rows)  # no label column
    assert rows[0] != names  # no header
    # Each record is a raw row of the dataset (label dropped), cell for cell: untransformed.
    raw = read_csv(data.raw / "data.csv")
    label_at = raw[0].index(spec["label"]["name"])
    raw_label = {tuple(r[:label_at] + r[label_at + 1 :]): r[label_at] for r in raw[1:]}
    assert all(tuple(row) in raw_label for row in rows)
    # Line i is line i of test.csv: the shipped transform turns the records into its features...
    test = np.loadtxt(data.output / "test" / "test.csv", delimiter=",", ndmin=2)
    transform = FeatureTransform.from_dict(spec["transform"])
    np.testing.assert_array_equal(transform.transform(rows), test[:, 1:])
    # ... and scoring_labels.csv holds its label, as the raw data spells it.
    labels = (data.output / "scoring_labels" / "scoring_labels.csv").read_text().splitlines()
    classes = spec["label"]["classes"]
    assert labels == [classes[int(i)] for i in test[:, 0]]
    if len(set(raw_label)) == len(raw) - 1:  # rows unique: each label checked against its own raw row
        assert labels == [raw_label[tuple(row)] for row in rows]


def _categories(directory: Path, colours: list[str]) -> Path:
    """90 rows: x (float), c (category, one of ``colours``), y (label)."""
    rows = [[repr(1.5 + i), colours[i % len(colours)], "ab"[i % 2]] for i in range(90)]
    columns = [{"name": "x", "type": "float"}, {"name": "c", "type": "category"}, COLUMNS[2]]
    manifest = {"dataset": "d", "version": "1", "files": ["data.csv"], "label": "y", "columns": columns}
    return write_dataset(directory, ["x", "c", "y"], rows, manifest)


def test_scoring_cells_with_commas_and_quotes_are_quoted_only_where_csv_needs_it(tmp_path: Path) -> None:
    colours = ["red, dark", 'say "blue"', "green"]
    ratios = ("--train_ratio", "0.5", "--validation_ratio", "0.2", "--test_ratio", "0.3")
    run(_categories(tmp_path / "in", colours), tmp_path / "out", *ratios)
    text = (tmp_path / "out" / "scoring" / "scoring.csv").read_text()
    rows = read_csv(tmp_path / "out" / "scoring" / "scoring.csv")
    assert len(text.splitlines()) == len(rows)  # quoting never spans lines
    assert {row[1] for row in rows} == set(colours) and all(len(row) == 2 for row in rows)
    assert '"red, dark"' in text and '"say ""blue"""' in text
    assert any(line.endswith(",green") for line in text.splitlines())  # unquoted where not needed


def test_a_line_break_inside_a_feature_cell_fails_naming_the_column(tmp_path: Path) -> None:
    source = _categories(tmp_path / "in", ["red", "dark\nred"])
    with pytest.raises(UsageError, match=r"column 'c' holds a line break \('dark\\nred'\)"):
        preprocess.main(["--input_dir", str(source), "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


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


# ---- Feature Store records (--feature_store_schema) -------------------------------------------------

CDK_JSON = CODE_DIR.parent / "cdk.json"
BREAST_CANCER_ID = "breast-cancer-sklearn-bundled"


def stage_schema(stage: str) -> dict[str, Any]:
    section = json.loads(CDK_JSON.read_text())["context"]["stages"][stage]["feature_store"]
    return {key: section[key] for key in ("record_identifier", "event_time_feature", "features")}


def schema_json(schema: Mapping[str, Any]) -> str:
    return ingest_features.schema_argument(
        schema["record_identifier"], schema["event_time_feature"], schema["features"]
    )


def with_features(*features: tuple[str, str], event_time_type: str = "Fractional") -> dict[str, Any]:
    return {
        "record_identifier": "record_id",
        "event_time_feature": "event_time",
        "features": [
            {"name": "record_id", "type": "String"},
            {"name": "event_time", "type": event_time_type},
            *({"name": name, "type": kind} for name, kind in features),
        ],
    }


def copy_raw(source: Path, target: Path, **manifest_changes: Any) -> Path:
    """A copy of a raw dataset directory; manifest keys set (value None: removed)."""
    target.mkdir(parents=True)
    (target / "data.csv").write_bytes((source / "data.csv").read_bytes())
    manifest = json.loads((source / "manifest.json").read_text())
    for key, value in manifest_changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def fs_run(input_dir: Path, output_dir: Path, schema: Mapping[str, Any], *extra: str) -> list[list[str]]:
    run(input_dir, output_dir, "--feature_store_schema", schema_json(schema), *extra)
    return read_csv(output_dir / "feature_store" / "records.csv")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_feature_store_records_of_the_stage_config_on_breast_cancer(
    breast_cancer: Processed, tmp_path: Path, stage: str
) -> None:
    schema = stage_schema(stage)
    records = fs_run(breast_cancer.raw, tmp_path / "out", schema, "--seed", "3")
    names = [f["name"] for f in schema["features"]]
    assert records[0] == names
    rows = [dict(zip(names, row, strict=True)) for row in records[1:]]
    assert len(rows) == 569  # every row survives preprocessing, all splits
    assert [r["record_id"] for r in rows] == [f"{BREAST_CANCER_ID}-{n}" for n in range(1, 570)]
    assert {r["event_time"] for r in rows} == {"1704067200.0"}  # created_at 2024-01-01T00:00:00Z, epoch s

    # the values are what training sees: the shipped transform applied to the raw rows
    spec = json.loads((tmp_path / "out" / "train" / "preprocessing.json").read_text())
    raw = read_csv(breast_cancer.raw / "data.csv")
    transformed = FeatureTransform.from_dict(spec["transform"]).transform([row[:-1] for row in raw[1:]])
    for name in ("mean_radius", "mean_texture", "mean_perimeter", "mean_area", "mean_smoothness"):
        j = spec["feature_names"].index(name.replace("_", " "))
        assert [float(r[name]) for r in rows] == transformed[:, j].tolist(), name
        assert all(r[name] == repr(float(r[name])) for r in rows)  # shortest round-trip text
    classes = spec["label"]["classes"]
    assert [r["target"] for r in rows] == [str(classes.index(row[-1])) for row in raw[1:]]  # class index

    # the same values as the split files, row for row
    split_rows = {
        tuple(row)
        for split in ("train", "validation", "test")
        for row in read_csv(tmp_path / "out" / split / f"{split}.csv")
    }
    first = spec["feature_names"].index("mean radius")
    assert {(r["target"], r["mean_radius"]) for r in rows} == {(row[0], row[1 + first]) for row in split_rows}

    saved = json.loads((tmp_path / "out" / "feature_store" / "schema.json").read_text())
    assert saved["dataset"] == "breast-cancer" and saved["version"] == "sklearn-bundled"
    assert saved["record_count"] == 569 and saved["format_version"] == 1
    assert {k: saved[k] for k in ("record_identifier", "event_time_feature", "features")} == schema
    # every other output is byte for byte the run without the argument
    for name in OUTPUT_FILES:
        assert (tmp_path / "out" / name).read_bytes() == (breast_cancer.output / name).read_bytes(), name


def test_string_event_time_and_label_name_and_dropped_rows_keep_their_numbers(
    breast_cancer: Processed, tmp_path: Path
) -> None:
    source = copy_raw(breast_cancer.raw, tmp_path / "in", created_at="2024-05-01T14:30:00.250+02:00")
    lines = (source / "data.csv").read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",NA"  # data row 5: null label, dropped
    (source / "data.csv").write_text("\n".join(lines) + "\n")
    schema = with_features(("mean_radius", "Fractional"), ("target", "String"), event_time_type="String")
    records = fs_run(source, tmp_path / "out", schema)
    rows = records[1:]
    assert len(rows) == 568
    ids = [row[0] for row in rows]
    assert f"{BREAST_CANCER_ID}-5" not in ids
    assert ids[3:5] == [f"{BREAST_CANCER_ID}-4", f"{BREAST_CANCER_ID}-6"]
    assert {row[1] for row in rows} == {"2024-05-01T12:30:00.250Z"}  # ISO-8601 UTC, milliseconds
    assert {row[3] for row in rows} == {"malignant", "benign"}  # the class names


def test_declared_record_id_and_event_time_columns(breast_cancer: Processed, tmp_path: Path) -> None:
    """A manifest's own id and event-time columns are used (and kept out of the model's features)."""
    raw = read_csv(breast_cancer.raw / "data.csv")
    header = ["patient id", "measured at", *raw[0]]
    rows = [
        [f"{9000 + i:05d}", f"2024-03-{1 + i % 28:02d}T08:00:00-05:00", *row] for i, row in enumerate(raw[1:])
    ]
    rows[7][header.index("mean texture")] = ""  # a null feature: imputed
    manifest = json.loads((breast_cancer.raw / "manifest.json").read_text())
    manifest.pop("created_at")
    manifest["columns"] = [
        {"name": "patient id", "type": "int"},
        {"name": "measured at", "type": "category"},
        *manifest["columns"],
    ]
    manifest.update(record_id_column="patient id", event_time_column="measured at")
    source = write_dataset(tmp_path / "in", header, rows, manifest)
    schema = {
        "record_identifier": "patient_id",
        "event_time_feature": "measured_at",
        "features": [
            {"name": "measured_at", "type": "Fractional"},
            {"name": "mean_texture", "type": "Fractional"},
            {"name": "patient_id", "type": "Integral"},
        ],
    }
    records = fs_run(source, tmp_path / "out", schema)
    assert records[0] == ["measured_at", "mean_texture", "patient_id"]  # config order
    assert [row[2] for row in records[1:]] == [str(9000 + i) for i in range(569)]  # "09000" -> 9000
    assert records[1][0] == repr(1709298000.0)  # 2024-03-01T08:00:00-05:00 = 13:00Z, epoch seconds
    spec = json.loads((tmp_path / "out" / "train" / "preprocessing.json").read_text())
    assert len(spec["feature_names"]) == 30 and "patient id" not in spec["feature_names"]
    texture = next(c for c in spec["transform"]["columns"] if c["name"] == "mean texture")
    assert float(records[8][1]) == (texture["impute"] - texture["mean"]) / texture["std"]
    assert read_csv(tmp_path / "out" / "baseline" / "baseline.csv")[0] == raw[0][:-1]


def test_duplicate_declared_record_ids_fail_naming_both_lines(
    breast_cancer: Processed, tmp_path: Path
) -> None:
    raw = read_csv(breast_cancer.raw / "data.csv")
    rows = [[str(i if i != 9 else 3), *row] for i, row in enumerate(raw[1:], start=1)]
    manifest = json.loads((breast_cancer.raw / "manifest.json").read_text())
    manifest["columns"] = [{"name": "id", "type": "int"}, *manifest["columns"]]
    manifest["record_id_column"] = "id"
    source = write_dataset(tmp_path / "in", ["id", *raw[0]], rows, manifest)
    schema = with_features(("mean_radius", "Fractional"))
    schema["record_identifier"] = "id"
    schema["features"][0]["name"] = "id"
    with pytest.raises(UsageError, match=r"record id '3' appears in data.csv line 4 and data.csv line 10"):
        fs_run(source, tmp_path / "out", schema)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("schema", "manifest_changes", "message"),
    [
        (
            with_features(("mean_radiuss", "Fractional")),
            {},
            r"feature 'mean_radiuss' \(feature_store.features\) matches no manifest column \(did you mean "
            r"'mean_radius'\?\); .* manifest columns: 'mean radius' -> mean_radius \(float\), 'mean texture'",
        ),
        (
            with_features(("mean_radius", "Integral")),
            {},
            r"feature 'mean_radius' \(feature_store.features\) is Integral but manifest column 'mean radius' "
            r"is float: .*standardized.*; allowed: Fractional",
        ),
        (
            with_features(("target", "Fractional")),
            {},
            r"feature 'target' \(feature_store.features\) is Fractional but manifest column 'target' is the "
            r"label: .*allowed: Integral or String",
        ),
        (
            with_features(("mean_radius", "Fractional")),
            {"created_at": None},
            r"event-time feature 'event_time' \(feature_store.event_time_feature\) cannot be derived: "
            r"manifest.json declares neither 'event_time_column' .* nor 'created_at'",
        ),
        (
            {
                **with_features(),
                "features": [
                    {"name": "record_id", "type": "Integral"},
                    {"name": "event_time", "type": "Fractional"},
                ],
            },
            {},
            r"record identifier 'record_id' \(feature_store.record_identifier\) is Integral but the record "
            r"ids derived .* are strings",
        ),
        (
            {
                **with_features(("mean_texture", "Fractional")),
                "record_identifier": "mean_radius",
                "features": [
                    {"name": "mean_radius", "type": "String"},
                    {"name": "event_time", "type": "Fractional"},
                    {"name": "mean_texture", "type": "Fractional"},
                ],
            },
            {},
            r"manifest column 'mean radius' maps to feature 'mean_radius', which is "
            r"feature_store.record_identifier; declare the column as 'record_id_column'",
        ),
    ],
)
def test_feature_store_mismatch_fails_first_naming_both_sides(
    breast_cancer: Processed,
    tmp_path: Path,
    schema: dict[str, Any],
    manifest_changes: dict[str, Any],
    message: str,
) -> None:
    source = copy_raw(breast_cancer.raw, tmp_path / "in", **manifest_changes)
    (source / "data.csv").write_bytes(b"not, the, declared, header\n")  # checked before any data is read
    with pytest.raises(UsageError, match=message):
        fs_run(source, tmp_path / "out", schema)
    assert not (tmp_path / "out").exists()


def test_feature_store_mismatch_exits_2_with_the_message_for_sagemaker(
    breast_cancer: Processed, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(CODE_DIR / "preprocess.py"),
            "--input_dir",
            str(breast_cancer.raw),
            "--output_dir",
            str(tmp_path / "o"),
            "--feature_store_schema",
            schema_json(with_features(("mean_radiuss", "Fractional"))),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SM_OUTPUT_DIR": str(tmp_path / "sm-output")},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "feature 'mean_radiuss'" in (tmp_path / "sm-output" / "message").read_text()


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("{not json", r"--feature_store_schema is not valid JSON"),
        ('{"record_identifier": "a", "event_time_feature": "b"}', r"missing required key 'features'"),
        (
            json.dumps({**with_features(), "online_store": True}),
            r"unknown key\(s\) \['online_store'\]",
        ),
        (
            json.dumps(with_features(("mean radius", "Fractional"))),
            r"name 'mean radius' is not a Feature Store feature name",
        ),
        (json.dumps(with_features(("x", "Float"))), r"feature 'x' has type 'Float'; allowed: Integral"),
        (
            json.dumps(with_features(event_time_type="Integral")),
            r"event_time_feature 'event_time' is Integral",
        ),
    ],
)
def test_invalid_feature_store_schema_argument_is_named(argument: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        preprocess.parse_args(["--feature_store_schema", argument])


def test_non_utf8_byte_fails_naming_file_line_and_byte_offset(
    breast_cancer: Processed, tmp_path: Path
) -> None:
    source = copy_raw(breast_cancer.raw, tmp_path / "in")
    data = (source / "data.csv").read_bytes()
    lines = data.split(b"\n")
    lines[3] = lines[3].replace(b",", b"\xe9,", 1)  # a Latin-1 'é' in line 4
    corrupted = b"\n".join(lines)
    (source / "data.csv").write_bytes(corrupted)
    offset = corrupted.index(b"\xe9")
    expected = (
        rf"data.csv line 4: byte offset {offset} \(column \d+ of the line\) holds byte 0xe9, "
        r"which is not valid UTF-8"
    )
    with pytest.raises(UsageError, match=expected):
        preprocess.main(["--input_dir", str(source), "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()

    # a UTF-8 byte-order mark is still fine
    (source / "data.csv").write_bytes(b"\xef\xbb\xbf" + data)
    run(source, tmp_path / "bom", "--seed", "3")
    for name in OUTPUT_FILES:
        assert (tmp_path / "bom" / name).read_bytes() == (breast_cancer.output / name).read_bytes(), name


def test_the_schema_file_the_pipeline_passes_gives_the_same_records(
    breast_cancer: Processed, tmp_path: Path
) -> None:
    """The pipeline passes the schema as a file (a container argument holds at most 256 characters)."""
    schema = stage_schema("dev")
    schema_file = tmp_path / "feature_store_schema.json"
    schema_file.write_text(schema_json(schema))
    inline = fs_run(breast_cancer.raw, tmp_path / "inline", schema)
    run(breast_cancer.raw, tmp_path / "file", "--feature_store_schema_file", str(schema_file))
    assert read_csv(tmp_path / "file" / "feature_store" / "records.csv") == inline
    with pytest.raises(UsageError, match="give one, not both"):
        preprocess.parse_args(
            ["--feature_store_schema", schema_json(schema), "--feature_store_schema_file", str(schema_file)]
        )
    with pytest.raises(UsageError, match=r"--feature_store_schema_file .*missing.json: cannot read it"):
        preprocess.parse_args(["--feature_store_schema_file", str(tmp_path / "missing.json")])
