"""The serving handlers, loaded the way the inference container loads them: from <model dir>/code only,
and called the way it calls them: through the sagemaker-inference toolkit's Transformer."""

from __future__ import annotations

import base64
import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import inference
import numpy as np
import payload
import pytest

from tests.training_code.training_helpers import Processed, TrainRun, subprocess_env

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
    assert sorted(p.name for p in code.iterdir()) == [
        "common.py", "contract.py", "features.py", "inference.py", "model.py", "payload.py"
    ]  # fmt: skip
    header, rows = baseline_rows(breast_cancer, 5)
    as_csv = "\n".join(",".join(r) for r in rows)
    as_objects = json.dumps({"instances": [dict(zip(header, r, strict=True)) for r in rows]})
    out = serve(reference_run.model_dir, [("text/csv", as_csv), ("application/json", as_objects)])
    by_csv, by_json = (r["body"] for r in out["results"])
    assert by_csv == by_json and len(by_csv["predictions"]) == 5
    classes = by_csv["classes"]
    for prediction in by_csv["predictions"]:
        probabilities = prediction["probabilities"]  # a list in class-index order
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-6)
        assert prediction["class_index"] == probabilities.index(max(probabilities))
        assert prediction["label"] == classes[prediction["class_index"]]
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


# --- the request edge cases, behind the real inference toolkit ------------------------------------------

#: Serves requests the way the SageMaker PyTorch inference container does: sagemaker_inference's
#: Transformer (SAGEMAKER_PROGRAM=inference.py from <model dir>/code) with TorchServe's request shapes:
#: the body is a bytearray, the headers are the request's; the Transformer decodes exactly "text/csv" and
#: "application/json" bodies itself and maps exceptions to HTTP status codes.
TOOLKIT_DRIVER = r"""
import base64, json, os, sys
sys.path.insert(0, sys.argv[1] + "/code")
os.environ["SAGEMAKER_PROGRAM"] = "inference.py"
from sagemaker_inference.transformer import Transformer

class RequestProcessor:
    def __init__(self, headers):
        self.headers = headers
    def get_request_properties(self):
        return self.headers

class Context:
    def __init__(self, headers):
        self.system_properties = {"model_dir": sys.argv[1]}
        self.request_processor = [RequestProcessor(headers)]
        self.status, self.phrase, self.content_type = 200, "OK", None
    def set_response_status(self, code, phrase):
        self.status, self.phrase = code, phrase
    def set_response_content_type(self, index, content_type):
        self.content_type = content_type

transformer = Transformer()
results = []
for headers, body in json.loads(sys.stdin.read()):
    context = Context(headers)
    (response,) = transformer.transform([{"body": bytearray(base64.b64decode(body))}], context)
    results.append({"status": context.status, "phrase": context.phrase, "body": response})
print(json.dumps(results))
"""


def serve_with_toolkit(model_dir: Path, requests: list[tuple[dict[str, str], bytes]]) -> list[dict[str, Any]]:
    if importlib.util.find_spec("sagemaker_inference") is None:
        pytest.fail("the sagemaker-inference toolkit is missing: pip install -r requirements-dev.txt")
    payload = [(headers, base64.b64encode(body).decode()) for headers, body in requests]
    result = subprocess.run(
        [sys.executable, "-I", "-c", TOOLKIT_DRIVER, str(model_dir)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_toolkit_answers_4xx_with_a_reason_for_each_edge_case(
    reference_run: TrainRun, breast_cancer: Processed
) -> None:
    _, rows = baseline_rows(breast_cancer, 3)
    good = "\n".join(",".join(r) for r in rows).encode()
    csv_utf8 = {"Content-Type": "text/csv; charset=utf-8", "Accept": "application/json"}
    cases: list[tuple[str, dict[str, str], bytes, int, str]] = [
        ("exact text/csv", {"Content-Type": "text/csv"}, good, 200, ""),
        ("csv with a charset", csv_utf8, good, 200, ""),
        ("csv, quoted charset", {"content-type": 'Text/CSV; Charset="UTF-8"'}, good, 200, ""),
        (
            "json with a charset",
            {"Content-Type": "application/json; charset=utf-8"},
            json.dumps({"instances": [r for r in rows]}).encode(),
            200,
            "",
        ),
        ("field over csv's limit", csv_utf8, b"1," + b"9" * 200_000, 400, "field larger than field limit"),
        (
            "deeply nested JSON",
            {"Content-Type": "application/json"},
            b"[" * 200_000,
            400,
            "nested too deeply",
        ),
        ("too many rows", csv_utf8, b"1,2\n" * 10_001, 400, "over 10000 rows; allowed: at most 10000"),
        ("over 6 MB", csv_utf8, b"1" * (6 * 1024 * 1024 + 1), 413, "allowed: at most 6291456 (6 MB)"),
        ("invalid UTF-8", csv_utf8, good + b"\xff\xfe", 400, "not valid UTF-8"),
        ("another charset", {"Content-Type": "text/csv; charset=latin-1"}, good, 415, "allowed: utf-8"),
        ("unsupported accept", {"Content-Type": "text/csv", "Accept": "text/html"}, good, 406, "accept type"),
        # The toolkit decodes exactly "text/csv" itself before input_fn: its own 500 (see inference.py).
        ("invalid UTF-8, exact text/csv", {"Content-Type": "text/csv"}, good + b"\xff", 500, "utf-8"),
    ]
    out = serve_with_toolkit(reference_run.model_dir, [(headers, body) for _, headers, body, _, _ in cases])
    for (name, _, _, status, reason), result in zip(cases, out, strict=True):
        assert result["status"] == status, (name, result["body"][:300])
        if status == 200:
            assert len(json.loads(result["body"])["predictions"]) == 3, name
        else:
            assert reason in result["body"].splitlines()[0], (name, result["body"][:300])
    assert out[0]["body"] == out[1]["body"] == out[2]["body"] == out[3]["body"]


def test_input_fn_accepts_bytes_bytearray_and_str_bodies_with_content_type_parameters() -> None:
    expected = [["1", "2"], ["3", "4"]]
    for body in (b"1,2\n3,4\n", bytearray(b"1,2\r\n3,4"), "1,2\n3,4", "\ufeff1,2\n3,4"):
        for content_type in ("text/csv", "text/csv; charset=utf-8", " TEXT/CSV ;charset=US-ASCII"):
            assert inference.input_fn(body, content_type) == expected, (body, content_type)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (bytearray(b"1,2\n\xc3\x28"), "text/csv; charset=utf-8", 400, "not valid UTF-8 (byte 4"),
        (b"1,2", "text/csv; charset=utf-16", 415, "charset 'utf-16'; allowed: utf-8"),
        (b"1,2", None, 415, "allowed: text/csv, application/json"),
        (b'{"instances": [[1]]', "application/json", 400, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "nested too deeply"),
        (b'{"instances": [[' + b"9" * 5000 + b"]]}", "application/json", 400, "digits"),
        (b"1," + b"9" * 131_073, "text/csv", 400, "CSV body, line 1: field larger than field limit"),
        (b"1,2\n" + b"3,4\n" * 10_000, "text/csv", 400, "over 10000 rows"),
        (b"\n\r\n\n", "text/csv", 400, "the request holds no rows"),
        (b" " * (6 * 1024 * 1024 + 1), "text/csv", 413, "request body of 6291457 bytes"),
        ("é" * (3 * 1024 * 1024 + 1), "text/csv", 413, "request body of 6291458 bytes"),  # 2 bytes each
        (12, "text/csv", 400, "request body of type int"),
    ],
)
def test_input_fn_refuses_with_a_status_and_a_reason(
    body: object, content_type: str | None, status: int, reason: str
) -> None:
    with pytest.raises(inference.BadRequest) as raised:
        inference.input_fn(body, content_type)
    assert raised.value.status_code == status and reason in raised.value.message, raised.value.message


def test_limits_are_checked_before_the_parsing_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # over 6 MB of invalid JSON: refused by size (413), never parsed
    monkeypatch.setattr(payload.json, "loads", lambda *_: pytest.fail("parsed an oversized body"))
    with pytest.raises(inference.BadRequest) as raised:
        inference.input_fn(b"{" * (6 * 1024 * 1024 + 1), "application/json")
    assert raised.value.status_code == 413
    monkeypatch.undo()
    # CSV parsing stops after row MAX_ROWS + 1: the broken line after it is never read
    body = b"1,2\n" * (inference.MAX_ROWS + 1) + b"1," + b"9" * 200_000
    with pytest.raises(inference.BadRequest, match="over 10000 rows"):
        inference.input_fn(body, "text/csv")
    # a JSON body's instances are counted before any row is built (row 1 would be refused otherwise)
    body = json.dumps({"instances": [[True]] * (inference.MAX_ROWS + 1)}).encode()
    with pytest.raises(inference.BadRequest, match="10001 rows; allowed: at most 10000"):
        inference.input_fn(body, "application/json")


def test_output_fn_negotiates_json_or_csv() -> None:
    predictions = inference.Predictions(np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32), ["a", "b"])
    for accept in ("application/json", "*/*", "text/html, application/json;q=0.9", None, "application/*"):
        body, content_type = inference.output_fn(predictions, accept)
        assert content_type == "application/json", accept
        assert json.loads(body)["predictions"][0] == {
            "label": "b",
            "class_index": 1,
            "probabilities": [0.25, 0.75],
        }
    for accept in ("text/csv", "text/*", "application/json;q=0.5, text/csv"):
        assert inference.output_fn(predictions, accept) == ("b,0.25,0.75\na,0.5,0.5\n", "text/csv"), accept
    with pytest.raises(inference.BadRequest) as raised:
        inference.output_fn(predictions, "text/html")
    assert raised.value.status_code == 406
