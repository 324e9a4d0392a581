"""The local runner: preprocess -> train -> evaluate end to end in a SageMaker-like directory layout."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import local_run
import pytest

from tests.training_code.training_helpers import ROOT, subprocess_env


@pytest.mark.slow
def test_local_run_breast_cancer_end_to_end(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "training_code/local_run.py",
            "--dataset",
            "breast_cancer",
            "--workdir",
            str(workdir),
            "--epochs",
            "8",
            "--checkpoint_interval_steps",
            "10",
            "--feature_store_stage",
            "dev",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ml = workdir / "opt" / "ml"
    report = json.loads((ml / "processing" / "evaluation" / "evaluation.json").read_text())
    section = report["binary_classification_metrics"]
    assert section["accuracy"]["value"] > 0.85
    assert section["auc"]["value"] > 0.9
    assert f"accuracy             {section['accuracy']['value']}" in result.stdout  # the printed summary

    # the SageMaker-like layout
    manifest = json.loads((ml / "processing" / "input" / "manifest.json").read_text())
    assert manifest["dataset"] == "breast-cancer" and manifest["files"] == ["data.csv"]
    for channel, name in (("train", "train.csv"), ("validation", "validation.csv")):
        assert (ml / "input" / "data" / channel / name).is_file()
    assert (ml / "processing" / "output" / "baseline" / "baseline.csv").is_file()
    with tarfile.open(ml / "processing" / "model" / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == [
            "code", "code/common.py", "code/contract.py", "code/features.py", "code/inference.py",
            "code/model.py", "code/payload.py",
            "model.onnx", "model.pt", "preprocessing.json",
        ]  # fmt: skip
    assert any(p.name.startswith("checkpoint-rank00000-") for p in (ml / "checkpoints").iterdir())
    train_log = (workdir / "logs" / "train.log").read_text()
    assert 'checkpoint_interval_steps": 10' in train_log  # extra arguments reach train.py
    assert "train: 100%" in result.stderr and "pipeline: 100%" in result.stderr  # progress bars

    # the Feature Store records of the dev stage's schema (built, not ingested: no AWS here)
    records_dir = ml / "processing" / "output" / "feature_store"
    schema = json.loads((records_dir / "schema.json").read_text())
    with (records_dir / "records.csv").open(newline="") as handle:
        records = list(csv.reader(handle))
    assert records[0] == [f["name"] for f in schema["features"]] and len(records) == 1 + 569
    assert manifest["created_at"] == local_run.BUNDLED_CREATED_AT
    assert f"feature store records (not ingested locally): {records_dir}" in result.stdout


def test_feature_store_schema_is_the_stage_config_and_unknown_stages_are_named() -> None:
    config = json.loads((ROOT / "cdk.json").read_text())["context"]["stages"]["prod"]["feature_store"]
    assert json.loads(local_run.feature_store_schema("prod")) == {
        key: config[key] for key in ("record_identifier", "event_time_feature", "features")
    }
    with pytest.raises(SystemExit, match=r"--feature_store_stage 'qa' is not a stage of .*cdk.json"):
        local_run.feature_store_schema("qa")
