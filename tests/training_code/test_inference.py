"""The serving handlers, loaded the way the inference container loads them: from <model dir>/code only."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from training_helpers import Processed, TrainRun, subprocess_env

DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/code")
import inference
served = inference.model_fn(sys.argv[1])
results = []
for content_type, body in json.loads(sys.stdin.read()):
    try:
        rows = inference.input_fn(body, content_type)
        out, _ = inference.output_fn(inference.predict_fn(rows, served), "application/json")
        results.append({"status": 200, "body": json.loads(out)})
    except inference.BadRequest as error:
        results.append({"status": error.status_code, "reason": error.message})
print(json.dumps({"results": results, "modules": sorted(m for m in sys.modules if m in
      ("train", "preprocess", "evaluate", "metrics", "scoring", "checkpointing"))}))
"""


def serve(model_dir: Path, requests: list[tuple[str, str]]) -> dict[str, Any]:
    """One serving process answering ``requests`` in order (a failure must not stop the next one)."""
    result = subprocess.run(
        [sys.executable, "-I", "-c", DRIVER, str(model_dir)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def baseline_rows(data: Processed, count: int) -> tuple[list[str], list[list[str]]]:
    with (data.output / "baseline" / "baseline.csv").open() as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for _, row in zip(range(count), reader, strict=False)]


def test_model_ships_its_serving_code_and_scores_raw_rows(
    reference_run: TrainRun, breast_cancer: Processed
) -> None:
    code = reference_run.model_dir / "code"
    assert sorted(p.name for p in code.iterdir()) == ["common.py", "features.py", "inference.py", "model.py"]
    header, rows = baseline_rows(breast_cancer, 5)
    as_csv = "\n".join(",".join(r) for r in rows)
    as_objects = json.dumps({"instances": [dict(zip(header, r, strict=True)) for r in rows]})
    out = serve(reference_run.model_dir, [("text/csv", as_csv), ("application/json", as_objects)])
    by_csv, by_json = (r["body"]["predictions"] for r in out["results"])
    assert by_csv == by_json and len(by_csv) == 5
    for prediction in by_csv:
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
    assert out["modules"] == []  # only the shipped modules were needed


def test_bad_requests_get_4xx_with_a_reason_and_the_server_keeps_serving(
    reference_run: TrainRun, breast_cancer: Processed
) -> None:
    _, rows = baseline_rows(breast_cancer, 1)
    good = ",".join(rows[0])
    out = serve(
        reference_run.model_dir,
        [
            ("text/csv", "1,2,3"),
            ("text/csv", good.replace(rows[0][0], "abc", 1)),
            ("application/json", "{not json"),
            ("application/json", json.dumps({"instances": [{"no such feature": 1}]})),
            ("application/xml", "<x/>"),
            ("text/csv", ""),
            ("text/csv", good),
        ],
    )
    statuses = [r["status"] for r in out["results"]]
    assert statuses == [400, 400, 400, 400, 415, 400, 200]
    reasons = [r.get("reason", "") for r in out["results"]]
    assert "3 values; allowed: 30" in reasons[0]
    assert "abc" in reasons[1]
    assert "not valid JSON" in reasons[2]
    assert "unknown feature(s) ['no such feature']" in reasons[3]
    assert "allowed: text/csv, application/json" in reasons[4]
