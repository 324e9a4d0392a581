"""The inference server (training_code/serve.py): the real server process on loopback, a model the training
code produced, a real HTTP client.

Covered: the container contract (ping only once loaded, ping while a slow client holds a request,
invocations, execution parameters, SAGEMAKER_BIND_TO_PORT / SAGEMAKER_MODEL_SERVER_WORKERS, graceful
SIGTERM), the wire format (JSON and CSV in and out, single records and batches of 100, content-type
parameters, accept negotiation), predictions equal to onnxruntime on the features transformed as in training
(and to the eager torch model within tolerance), every bad input answered with a 4xx and its reason while the
workers keep serving, and the image: its files, its requirements (a clean venv from requirements-serve.txt
alone serves the model, and has no torch), and, when podman and a base image are available, the image
itself.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import importlib.metadata
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import contract
import httpx
import numpy as np
import onnxruntime
import payload
import predictors
import pytest
import serve
import torch
from features import FeatureTransform, read_preprocessing
from model import ONNX_OUTPUTS, load_model

from tests.training_code.serve_helpers import (
    GATED_SERVE,
    RunningServer,
    children,
    free_port,
    open_connection,
    read_response,
    request_head,
)
from tests.training_code.training_helpers import CODE_DIR, ROOT, Processed, TrainRun, subprocess_env

CSV_TYPE = "text/csv"
JSON_TYPE = "application/json"


# ---- fixtures --------------------------------------------------------------------------------------


@dataclass
class Reference:
    """What the server must answer, computed here without the server: the fitted transform, then the
    model in onnxruntime (exact) and in eager torch (within float tolerance)."""

    model_dir: Path
    transform: FeatureTransform
    classes: list[str]
    session: onnxruntime.InferenceSession
    model: torch.nn.Module

    def features(self, rows: list[list[str]]) -> np.ndarray:
        return self.transform.transform(rows).astype(np.float32)

    def onnx(self, rows: list[list[str]]) -> np.ndarray:
        (probabilities,) = self.session.run([ONNX_OUTPUTS[1]], {"features": self.features(rows)})
        return np.asarray(probabilities)

    def torch(self, rows: list[list[str]]) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.model(torch.as_tensor(self.features(rows))), dim=1).numpy()


@pytest.fixture(scope="module")
def reference(reference_run: TrainRun) -> Reference:
    model_dir = reference_run.model_dir
    spec = read_preprocessing(model_dir / contract.PREPROCESSING_FILE)
    session = onnxruntime.InferenceSession(
        str(model_dir / contract.ONNX_FILE), providers=["CPUExecutionProvider"]
    )
    model, _ = load_model(model_dir / contract.MODEL_FILE)
    return Reference(model_dir, spec.transform, spec.classes, session, model)


@pytest.fixture(scope="module")
def raw(breast_cancer: Processed) -> tuple[list[str], list[list[str]]]:
    """The input column names and 100 raw records (the baseline: train rows as they arrived in the lake)."""
    with (breast_cancer.output / "baseline" / "baseline.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for _, row in zip(range(100), reader, strict=False)]


def start(tmp_path: Path, model_dir: Path, name: str, *extra: str, **options: Any) -> RunningServer:
    port = free_port()
    command = [*serve.command(model_dir, port=port, **options), *extra]
    return RunningServer(command, port, tmp_path / f"{name}.log")


@pytest.fixture(scope="module")
def server(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The shared server: 2 workers of 4 threads."""
    running = start(tmp_path_factory.mktemp("server"), reference.model_dir, "server", workers=2, threads=4)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def as_csv(rows: list[list[str]]) -> bytes:
    return "\n".join(",".join(row) for row in rows).encode()


def as_json_lists(rows: list[list[str]]) -> bytes:
    return json.dumps({"instances": [[float(v) for v in row] for row in rows]}).encode()


def as_json_objects(header: list[str], rows: list[list[str]]) -> bytes:
    return json.dumps({"instances": [dict(zip(header, row, strict=True)) for row in rows]}).encode()


def as_response(headers: dict[str, str], body: bytes) -> httpx.Response:
    """A response read from a raw connection, as the httpx client would have returned it."""
    return httpx.Response(200, headers={"content-type": headers["content-type"]}, content=body)


def predictions_of(response: httpx.Response) -> tuple[list[str], np.ndarray]:
    """Labels and probabilities of a response, in either format (checking the format's own rules)."""
    assert response.status_code == 200, response.text
    if response.headers["content-type"] == CSV_TYPE:
        lines = list(csv.reader(io.StringIO(response.text)))
        labels = [line[contract.CSV_LABEL_COLUMN] for line in lines]
        probabilities = np.array([[float(v) for v in line[1:]] for line in lines])
    else:
        assert response.headers["content-type"] == JSON_TYPE
        document = response.json()
        predictions = document[contract.PREDICTIONS_KEY]
        labels = [p[contract.LABEL_KEY] for p in predictions]
        probabilities = np.array([p[contract.PROBABILITIES_KEY] for p in predictions])
        classes = document[contract.CLASSES_KEY]
        for prediction in predictions:
            assert classes[prediction[contract.CLASS_INDEX_KEY]] == prediction[contract.LABEL_KEY]
    return labels, probabilities


def assert_predicts(response: httpx.Response, reference: Reference, rows: list[list[str]]) -> None:
    labels, probabilities = predictions_of(response)
    expected = reference.onnx(rows)
    # float32 -> the shortest repr of its double -> float32 is exact: the served values are onnxruntime's
    assert np.array_equal(probabilities.astype(np.float32), expected)
    assert labels == [reference.classes[i] for i in expected.argmax(axis=1)]
    assert np.allclose(probabilities, reference.torch(rows), atol=1e-5)


# ---- the container contract ------------------------------------------------------------------------


def test_ping_answers_200_only_once_the_model_is_loaded(reference: Reference, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    port = free_port()
    command = [
        sys.executable, str(GATED_SERVE), str(gate), "serve", "--model-dir", str(reference.model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    running = RunningServer(command, port, tmp_path / "gated.log")
    try:
        running.wait_for_log("TEST HOOK: waiting for the gate")  # the port is bound, the worker is loading
        for _ in range(3):
            with pytest.raises(httpx.TransportError):  # waits in the backlog: no answer, never a 200
                httpx.get(f"{running.url}/ping", timeout=0.3)
        gate.touch()
        running.wait_ready(timeout=30)
        assert "model loaded" in running.log()
    finally:
        running.stop()


def test_ping_is_answered_while_a_slow_client_holds_an_invocation_open(
    reference: Reference, raw: tuple[list[str], list[list[str]]], tmp_path: Path
) -> None:
    """One worker: the slow client's request holds one of its threads, not the worker."""
    _, rows = raw
    body = as_csv(rows[:3])
    running = start(tmp_path, reference.model_dir, "slow", workers=1, threads=2)
    try:
        running.wait_ready()
        with open_connection(running.port) as slow:
            head = request_head("/invocations", {"Content-Type": CSV_TYPE, "Content-Length": str(len(body))})
            slow.sendall(head + body[: len(body) // 2])
            for _ in range(5):
                assert httpx.get(f"{running.url}/ping", timeout=5).status_code == 200
            slow.sendall(body[len(body) // 2 :])
            status, headers, answer = read_response(slow)
        assert status == 200
        assert_predicts(as_response(headers, answer), reference, rows[:3])
    finally:
        running.stop()


def test_execution_parameters_announce_the_batch_transform_settings(server: RunningServer) -> None:
    response = server.client.get("/execution-parameters")
    assert response.status_code == 200
    assert response.json() == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_the_workers_start_without_telemetry_or_a_blas_thread_per_cpu(
    reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() sets the workers' environment (they import onnxruntime and numpy after the fork)."""
    seen: dict[str, str | None] = {}

    class Stub:
        def run(self) -> None:
            seen.update({name: os.environ.get(name) for name in serve.RUNTIME_ENVIRONMENT})

    for name in serve.RUNTIME_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(serve, "_application", lambda settings: Stub())
    assert serve.main(["serve", "--model-dir", str(reference.model_dir)]) == 0
    assert seen == {"OPENBLAS_NUM_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1"}


@pytest.mark.parametrize("size", [1, 100])
@pytest.mark.parametrize("encoding", ["csv", "json lists", "json objects"])
@pytest.mark.parametrize("accept", [JSON_TYPE, CSV_TYPE])
def test_records_are_transformed_as_in_training_and_scored_by_the_model(
    server: RunningServer,
    reference: Reference,
    raw: tuple[list[str], list[list[str]]],
    size: int,
    encoding: str,
    accept: str,
) -> None:
    header, rows = raw
    rows = rows[:size]
    body = {
        "csv": as_csv(rows),
        "json lists": as_json_lists(rows),
        "json objects": as_json_objects(header, rows),
    }[encoding]
    content_type = CSV_TYPE if encoding == "csv" else JSON_TYPE
    response = server.client.post(
        "/invocations", content=body, headers={"Content-Type": content_type, "Accept": accept}
    )
    assert response.headers["content-type"] == accept
    assert_predicts(response, reference, rows)
    labels, _ = predictions_of(response)
    assert len(labels) == size


def test_csv_responses_put_the_label_in_column_0_and_class_i_in_column_1_plus_i(
    server: RunningServer, reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    _, rows = raw
    response = server.client.post(
        "/invocations", content=as_csv(rows[:5]), headers={"Content-Type": CSV_TYPE, "Accept": CSV_TYPE}
    )
    lines = response.text.splitlines()
    assert len(lines) == 5 and not response.text.startswith("label")  # no header
    expected = reference.onnx(rows[:5])
    for line, probabilities in zip(lines, expected, strict=True):
        cells = line.split(",")
        assert cells[contract.CSV_LABEL_COLUMN] == reference.classes[int(probabilities.argmax())]
        for index, probability in enumerate(probabilities):
            assert np.float32(cells[contract.csv_probability_column(index)]) == probability


@pytest.mark.parametrize(
    ("content_type", "accept", "expected"),
    [
        ("text/csv; charset=utf-8", None, JSON_TYPE),
        ('Text/CSV; Charset="UTF-8"', "*/*", JSON_TYPE),
        ("text/csv;charset=us-ascii", "application/*", JSON_TYPE),
        ("application/json; charset=utf-8", "text/csv", CSV_TYPE),
        ("text/csv", "text/html, text/csv;q=0.5", CSV_TYPE),
        ("text/csv", "application/json;q=0.1, text/csv", CSV_TYPE),
        ("text/csv", "text/csv;q=0, application/json", JSON_TYPE),
    ],
)
def test_content_type_parameters_and_accept_negotiation(
    server: RunningServer,
    reference: Reference,
    raw: tuple[list[str], list[list[str]]],
    content_type: str,
    accept: str | None,
    expected: str,
) -> None:
    _, rows = raw
    body = as_json_lists(rows[:2]) if content_type.startswith("application/json") else as_csv(rows[:2])
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    response = server.client.post("/invocations", content=body, headers=headers)
    assert response.headers["content-type"] == expected
    assert_predicts(response, reference, rows[:2])


def test_nulls_and_nan_are_imputed_as_in_training(
    server: RunningServer, reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    """Nulls (the training's null tokens, JSON null, a missing key, NaN) get the train median."""
    header, rows = raw
    row = list(rows[0])
    row[0], row[1], row[2], row[3] = "", "NA", "nan", "null"
    response = server.client.post("/invocations", content=as_csv([row]), headers={"Content-Type": CSV_TYPE})
    assert_predicts(response, reference, [row])
    instance: dict[str, Any] = dict(zip(header, (float(v) for v in rows[0]), strict=True))
    instance[header[0]] = None
    del instance[header[1]]
    instance[header[2]] = float("nan")  # json.dumps writes NaN
    response = server.client.post(
        "/invocations",
        content=json.dumps({"instances": [instance]}).encode(),
        headers={"Content-Type": JSON_TYPE},
    )
    sent = ["" if instance.get(name) is None else str(instance[name]) for name in header]
    assert sent[:3] == ["", "", "nan"]
    assert_predicts(response, reference, [sent])
    assert not np.array_equal(reference.onnx([sent]), reference.onnx([[str(float(v)) for v in rows[0]]]))


# ---- bad input: a 4xx with a reason, and the server keeps serving ----------------------------------

FIELD_LIMIT = 131_072  # csv.field_size_limit()'s default


def bad_requests(header: list[str], row: list[str]) -> list[tuple[str, dict[str, str], bytes, int, str]]:
    good = ",".join(row)
    csv_headers = {"Content-Type": CSV_TYPE}
    json_headers = {"Content-Type": JSON_TYPE}
    numbers = [float(v) for v in row]
    return [
        ("too few features", csv_headers, b"1,2,3", 400, "row 1: 3 values; allowed: 30 in the order"),
        ("too many features", csv_headers, (good + ",1").encode(), 400, "row 1: 31 values; allowed: 30"),
        (
            "a short second row",
            csv_headers,
            (good + "\n1,2").encode(),
            400,
            "row 2: 2 values; allowed: 30",
        ),
        (
            "too few JSON values",
            json_headers,
            json.dumps({"instances": [numbers[:29]]}).encode(),
            400,
            "row 1: 29 values; allowed: 30",
        ),
        (
            "non-numeric cell",
            csv_headers,
            good.replace(row[0], "abc", 1).encode(),
            400,
            "column 'mean radius' is declared as float but row 1 holds 'abc'",
        ),
        (
            "a header row",
            csv_headers,
            (",".join(header) + "\n" + good).encode(),
            400,
            "holds 'mean radius'",
        ),
        (
            "infinity in CSV",
            csv_headers,
            good.replace(row[0], "inf", 1).encode(),
            400,
            "column 'mean radius' row 1 holds a non-finite value 'inf'",
        ),
        (
            "Infinity in JSON",
            json_headers,
            json.dumps({"instances": [[float("inf"), *numbers[1:]]]}).encode(),
            400,
            "non-finite value 'inf'",
        ),
        (
            "a number too large for a float",
            csv_headers,
            good.replace(row[0], "1e400", 1).encode(),
            400,
            "non-finite value '1e400'",
        ),
        (
            "a boolean cell",
            json_headers,
            json.dumps({"instances": [[True, *numbers[1:]]]}).encode(),
            400,
            "row 1, column 'mean radius': got true; allowed: a number, a string or null",
        ),
        (
            "a nested cell",
            json_headers,
            json.dumps({"instances": [[[1], *numbers[1:]]]}).encode(),
            400,
            "got [1]; allowed: a number",
        ),
        (
            "an unknown feature",
            json_headers,
            json.dumps({"instances": [{"no such feature": 1}]}).encode(),
            400,
            "unknown feature(s) ['no such feature']",
        ),
        ("a bare JSON list", json_headers, b"[[1, 2]]", 400, 'allowed: {"instances": [[...], ...]}'),
        ("an instance that is a number", json_headers, b'{"instances": [1]}', 400, "row 1: got int"),
        ("empty CSV body", csv_headers, b"", 400, "the request holds no rows"),
        ("blank lines only", csv_headers, b"\n\r\n\n", 400, "the request holds no rows"),
        ("no instances", json_headers, b'{"instances": []}', 400, "the request holds no rows"),
        ("empty JSON body", json_headers, b"", 400, "not valid JSON"),
        ("malformed JSON", json_headers, b'{"instances": [[1, 2]', 400, "not valid JSON"),
        ("deeply nested JSON", json_headers, b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
        (
            "a JSON integer over Python's digit limit",
            json_headers,
            b'{"instances": [[' + b"9" * 5000 + b"]]}",
            400,
            "digits",
        ),
        ("invalid UTF-8", csv_headers, good.encode() + b"\xff\xfe", 400, "not valid UTF-8"),
        (
            "invalid UTF-8 with a charset",
            {"Content-Type": "text/csv; charset=utf-8"},
            b"\xc3\x28",
            400,
            "not valid UTF-8 (byte 0",
        ),
        (
            "a CSV field over the parser's limit",
            csv_headers,
            b"1," + b"9" * (FIELD_LIMIT + 1),
            400,
            "CSV body, line 1: field larger than field limit (131072)",
        ),
        (
            "a NUL byte in a cell",
            csv_headers,
            good.replace(row[0], "1\x00", 1).encode(),
            400,
            "column 'mean radius' is declared as float but row 1 holds '1\\x00'",
        ),
        (
            "CSV rows over the limit",
            csv_headers,
            b"1,2\n" * (contract.MAX_ROWS + 1),
            400,
            "row 1: 2 values",  # refused at its first row, before counting
        ),
        (
            "CSV rows of the right width over the limit",
            csv_headers,
            (good + "\n").encode() * (contract.MAX_ROWS + 1),
            400,
            "over 10000 rows; allowed: at most 10000 per request (use batch transform)",
        ),
        (
            "JSON instances over the limit",
            json_headers,
            json.dumps({"instances": [[True]] * (contract.MAX_ROWS + 1)}).encode(),
            400,
            "10001 rows; allowed: at most 10000",  # counted before row 1 (a boolean) is looked at
        ),
        (
            "unsupported content type",
            {"Content-Type": "application/xml"},
            b"<x/>",
            415,
            "content type 'application/xml'",
        ),
        ("no content type", {}, good.encode(), 415, "allowed: text/csv, application/json"),
        (
            "another charset",
            {"Content-Type": "text/csv; charset=latin-1"},
            good.encode(),
            415,
            "allowed: utf-8",
        ),
        (
            "unsupported accept type",
            {"Content-Type": CSV_TYPE, "Accept": "text/html"},
            good.encode(),
            406,
            "accept type 'text/html'; allowed: application/json, text/csv",
        ),
        (
            "only refused accept types",
            {"Content-Type": CSV_TYPE, "Accept": "application/json;q=0, text/csv;q=0"},
            good.encode(),
            406,
            "accept type",
        ),
    ]


def test_bad_input_gets_a_4xx_with_its_reason_and_the_workers_keep_serving(
    server: RunningServer, reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    header, rows = raw
    workers = server.workers()
    assert len(workers) == 2
    good = as_csv(rows[:1])
    for name, headers, body, status, reason in bad_requests(header, rows[0]):
        response = server.client.post("/invocations", content=body, headers=headers)
        assert response.status_code == status, (name, response.text[:300])
        assert response.headers["content-type"] == JSON_TYPE, name
        error = response.json()
        assert error["status"] == status and error["error"] == payload.PHRASES[status], name
        assert reason in error["message"], (name, error["message"][:300])
        answer = server.client.post("/invocations", content=good, headers={"Content-Type": CSV_TYPE})
        assert answer.status_code == 200, name
    assert server.workers() == workers  # no worker died or was replaced
    assert "Traceback" not in server.log() and "internal error" not in server.log()


def test_wrong_paths_and_methods_are_refused(server: RunningServer) -> None:
    assert server.client.get("/nowhere").status_code == 404
    response = server.client.get("/invocations")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert server.client.post("/ping").status_code == 405
    assert server.client.head("/ping").status_code == 200


def test_a_body_over_6_mb_is_refused_from_its_content_length_before_it_is_read(server: RunningServer) -> None:
    """The body is never sent: a server that read it would wait (and answer 408 after 20 s)."""
    with open_connection(server.port, timeout=5) as connection:
        length = contract.MAX_PAYLOAD_BYTES + 1
        connection.sendall(
            request_head("/invocations", {"Content-Type": CSV_TYPE, "Content-Length": str(length)})
        )
        status, _, body = read_response(connection)
    assert status == 413
    assert f"request body of {length} bytes; allowed: at most 6291456 (6 MB)" in json.loads(body)["message"]
    assert server.client.get("/ping").status_code == 200


def test_a_chunked_body_over_6_mb_is_refused_once_over_the_limit_without_waiting_for_its_end(
    server: RunningServer,
) -> None:
    """The body never ends (no last chunk): the answer comes once the server has read past the limit."""
    with open_connection(server.port, timeout=10) as connection:
        head = request_head("/invocations", {"Content-Type": CSV_TYPE, "Transfer-Encoding": "chunked"})
        piece = b"1" * (64 * 1024)
        chunks = [piece] * (contract.MAX_PAYLOAD_BYTES // len(piece) + 1)
        connection.sendall(head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks))
        status, _, body = read_response(connection)
    assert status == 413
    assert f"request body of {contract.MAX_PAYLOAD_BYTES + 1} bytes" in json.loads(body)["message"]


def test_a_chunked_body_under_the_limit_is_served(
    server: RunningServer, reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    _, rows = raw

    def pieces() -> Iterator[bytes]:
        for row in rows[:10]:
            yield (",".join(row) + "\n").encode()

    response = server.client.post("/invocations", content=pieces(), headers={"Content-Type": CSV_TYPE})
    assert_predicts(response, reference, rows[:10])


# ---- the WSGI app's own refusals (in-process: timeouts and faults a live client cannot time exactly) ----


class EchoBackend(predictors.Backend):
    """Answers the body's length; raises what it is told to."""

    name = "echo"

    def __init__(self, error: Exception | None = None) -> None:
        self.classes = ["a", "b"]
        self.error = error

    def invoke(self, body: bytes, content_type: str | None, response_type: str) -> bytes:
        if self.error is not None:
            raise self.error
        return str(len(body)).encode()


class Stream:
    """A wsgi.input that hands out ``data`` and then raises ``error`` (if any)."""

    def __init__(self, data: bytes, error: Exception | None = None) -> None:
        self.data = io.BytesIO(data)
        self.error = error

    def read(self, size: int) -> bytes:
        chunk = self.data.read(size)
        if not chunk and self.error is not None:
            raise self.error
        return chunk


def call(app: serve.App, stream: Stream, length: int | None) -> tuple[int, dict[str, str], dict[str, Any]]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/invocations",
        "CONTENT_TYPE": CSV_TYPE,
        "wsgi.input": stream,
    }
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started.update(status=int(status.split()[0]), headers=dict(headers))

    body = b"".join(app(environ, start_response))
    return started["status"], started["headers"], json.loads(body) if started["status"] != 200 else {}


def test_the_app_answers_408_413_400_503_and_500_with_their_reasons(caplog: pytest.LogCaptureFixture) -> None:
    app = serve.App(EchoBackend(), workers=1)
    assert call(app, Stream(b"1,2"), 3)[0] == 200
    status, _, error = call(app, Stream(b"", TimeoutError()), 10)  # a socket read timed out
    assert status == 408 and "did not arrive within 20 s" in error["message"]
    status, _, error = call(serve.App(EchoBackend(), workers=1, body_timeout=0), Stream(b"1,2"), 3)
    assert status == 408  # the body's deadline passed
    status, _, error = call(app, Stream(b"12345"), 10)
    assert status == 400 and error["message"] == "the request body ended after 5 of 10 bytes"
    status, _, error = call(app, Stream(b"", ValueError("Invalid chunk size")), None)
    assert status == 400 and error["message"] == "the request body could not be read: Invalid chunk size"
    status, _, error = call(app, Stream(b"1" * (contract.MAX_PAYLOAD_BYTES + 10)), None)  # no Content-Length
    assert status == 413 and f"{contract.MAX_PAYLOAD_BYTES + 1} bytes" in error["message"]
    busy = serve.App(EchoBackend(), workers=1, queue_timeout=0.01)
    busy._lock.acquire()  # another request is computing
    status, headers, error = call(busy, Stream(b"1,2"), 3)
    assert status == 503 and headers["Retry-After"] == "1" and "busy for 0.01 s" in error["message"]
    broken = serve.App(EchoBackend(RuntimeError("a bug")), workers=1)
    with caplog.at_level("ERROR", logger="serve"):
        status, _, error = call(broken, Stream(b"1,2"), 3)
    assert status == 500 and error["message"] == "internal server error (logged)"
    assert "a bug" in caplog.text  # the traceback is logged, not sent
    assert broken._lock.acquire(blocking=False)  # released after the failure


def test_a_malformed_accept_weight_counts_as_not_acceptable() -> None:
    assert payload.response_type("text/csv;q=high, application/json") == JSON_TYPE
    with pytest.raises(payload.BadRequest):
        payload.response_type("text/csv;q=high")


# ---- process behaviour -----------------------------------------------------------------------------


def _connection_accepted_by(pids: list[int], client_port: int) -> bool:
    """Whether one of ``pids`` holds the server side of the TCP connection from ``client_port``."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == client_port and fields[9] in inodes:
            return True
    return False


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(
    reference: Reference, raw: tuple[list[str], list[list[str]]], tmp_path: Path
) -> None:
    _, rows = raw
    body = as_csv(rows[:3])
    running = start(tmp_path, reference.model_dir, "sigterm", workers=1, threads=2)
    try:
        running.wait_ready()
        with open_connection(running.port) as in_flight:
            head = request_head("/invocations", {"Content-Type": CSV_TYPE, "Content-Length": str(len(body))})
            in_flight.sendall(head + body[:100])
            deadline = time.monotonic() + 10
            while not _connection_accepted_by(running.workers(), in_flight.getsockname()[1]):
                assert time.monotonic() < deadline, "the worker never accepted the connection"
                time.sleep(0.02)
            running.process.send_signal(signal.SIGTERM)
            running.wait_for_log("Handling signal: term")
            time.sleep(0.3)  # the worker is stopping now, with the request half received
            in_flight.sendall(body[100:])
            status, headers, answer = read_response(in_flight)
        assert status == 200
        labels, _ = predictions_of(as_response(headers, answer))
        assert len(labels) == 3
        assert running.wait(timeout=30) == 0
    finally:
        if running.process.poll() is None:
            running.stop()


def test_the_sagemaker_environment_sets_the_port_and_the_worker_count(
    reference: Reference, tmp_path: Path
) -> None:
    port = free_port()
    command = [sys.executable, str(CODE_DIR / "serve.py"), "serve", "--model-dir", str(reference.model_dir),
               "--host", "127.0.0.1"]  # fmt: skip
    env = subprocess_env(SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_MODEL_SERVER_WORKERS="3")
    running = RunningServer(command, port, tmp_path / "environment.log", env)
    try:
        running.wait_ready()
        deadline = time.monotonic() + 30
        while len(running.workers()) != 3 or running.log().count("model loaded") != 3:
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.05)
        assert len(children(running.process.pid)) == 3
        assert running.client.get("/execution-parameters").json()["MaxConcurrentTransforms"] == 3
    finally:
        running.stop()


def test_one_worker_per_cpu_by_default_and_the_cpus_are_shared_among_workers() -> None:
    cpus = serve.cpu_count()
    settings = serve.parse_args(["serve"], environ={})
    assert settings.workers == cpus and settings.port == contract.SERVING_PORT
    assert settings.model_dir == Path(contract.MODEL_DIR) and settings.host == "0.0.0.0"
    assert settings.intra_op_threads == 1  # cpus // cpus
    one = serve.parse_args(["serve", "--workers", "1"], environ={})
    assert one.intra_op_threads == cpus
    assert (
        serve.parse_args(["serve", "--port", "9000"], environ={contract.SERVING_PORT_ENV: "8001"}).port
        == 9000
    )


@pytest.mark.parametrize(
    ("value", "batch"), [(None, False), ("", False), ("false", False), ("true", True), (" TRUE ", True)]
)
def test_sagemaker_batch_true_lifts_the_row_limit(value: str | None, batch: bool) -> None:
    environ = {} if value is None else {serve.BATCH_ENV: value}
    settings = serve.parse_args(["serve"], environ=environ)
    assert settings.batch is batch
    assert settings.max_rows == (None if batch else 10_000)


@pytest.fixture(scope="module")
def batch_server(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server as SageMaker starts it in a batch transform job (SAGEMAKER_BATCH=true)."""
    port = free_port()
    command = serve.command(reference.model_dir, port=port, workers=1)
    log = tmp_path_factory.mktemp("batch") / "batch.log"
    running = RunningServer(command, port, log, subprocess_env(SAGEMAKER_BATCH="true"))
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("null_in_last_row", [False, True], ids=["plain numbers", "a null (exact path)"])
def test_a_batch_transform_request_of_20000_records_is_refused_real_time_and_served_in_batch(
    server: RunningServer,
    batch_server: RunningServer,
    reference: Reference,
    raw: tuple[list[str], list[list[str]]],
    null_in_last_row: bool,
) -> None:
    """SplitType Line + MultiRecord packs up to MaxPayloadInMB (6 MB) of records into one request: ~30 000
    breast-cancer records. A real-time endpoint refuses more than 10 000 (400); the batch container
    (SAGEMAKER_BATCH=true) serves them. Both parsing paths lift the limit (a null takes the exact one)."""
    _, rows = raw
    records = [rows[i % len(rows)] for i in range(20_000)]
    if null_in_last_row:
        records[-1] = ["NA", *records[-1][1:]]
    body = as_csv(records) + b"\n"
    assert len(body) < contract.MAX_PAYLOAD_BYTES
    headers = {"Content-Type": CSV_TYPE, "Accept": CSV_TYPE}
    refused = server.client.post("/invocations", content=body, headers=headers)
    assert refused.status_code == 400
    assert "over 10000 rows; allowed: at most 10000 per request" in refused.json()["message"]
    served = batch_server.client.post("/invocations", content=body, headers=headers, timeout=60)
    assert served.status_code == 200, served.text[:300]
    labels, probabilities = predictions_of(served)
    assert len(labels) == 20_000
    expected = reference.onnx(records)
    assert np.array_equal(probabilities.astype(np.float32), expected)
    assert labels == [reference.classes[i] for i in expected.argmax(axis=1)]


def test_batch_transform_keeps_the_6_mb_body_limit(batch_server: RunningServer) -> None:
    with open_connection(batch_server.port, timeout=5) as connection:
        length = contract.MAX_PAYLOAD_BYTES + 1
        connection.sendall(
            request_head("/invocations", {"Content-Type": CSV_TYPE, "Content-Length": str(length)})
        )
        status, _, body = read_response(connection)
    assert status == 413 and "allowed: at most 6291456 (6 MB)" in json.loads(body)["message"]
    assert batch_server.client.get("/execution-parameters").json()["MaxPayloadInMB"] == 6
    assert "batch transform (SAGEMAKER_BATCH=true): no record limit per request" in batch_server.log()


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["serve"], {"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS='0'; allowed:"),
        (["serve"], {"SAGEMAKER_MODEL_SERVER_WORKERS": "two"}, "SAGEMAKER_MODEL_SERVER_WORKERS='two'"),
        (["serve"], {"SAGEMAKER_BIND_TO_PORT": "70000"}, "='70000'; allowed: a whole number >= 1 and <= 65535"),  # noqa: E501
        (["serve", "--threads", "0"], {}, "--threads='0'"),
        (["train"], {}, "invalid choice: 'train'"),
        (["serve", "--backend", "tensorflow"], {}, "invalid choice: 'tensorflow'"),
        (["serve"], {"SAGEMAKER_BATCH": "yes"}, "SAGEMAKER_BATCH='yes'; allowed: true or false"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_with_their_name_and_what_is_allowed(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        serve.parse_args(argv, environ)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_a_model_dir_without_the_model_fails_before_binding(reference: Reference, tmp_path: Path) -> None:
    shutil.copyfile(reference.model_dir / contract.PREPROCESSING_FILE, tmp_path / contract.PREPROCESSING_FILE)
    port = free_port()
    result = subprocess.run(
        serve.command(tmp_path, port=port), capture_output=True, text=True, env=subprocess_env(), timeout=60
    )
    assert result.returncode == 2
    assert (
        f"{tmp_path}: missing model.onnx (the onnx backend loads model.onnx, preprocessing.json)"
        in result.stderr
    )
    assert "Listening at" not in result.stderr


def test_a_model_that_onnxruntime_cannot_load_stops_the_server_with_the_reason(
    reference: Reference, tmp_path: Path
) -> None:
    shutil.copyfile(reference.model_dir / contract.PREPROCESSING_FILE, tmp_path / contract.PREPROCESSING_FILE)
    (tmp_path / contract.ONNX_FILE).write_bytes(b"not a model")
    result = subprocess.run(
        serve.command(tmp_path, port=free_port(), workers=1),
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert result.returncode == 4, result.stderr  # gunicorn's "App failed to load"
    assert (
        f"cannot serve the model: {tmp_path / contract.ONNX_FILE}: onnxruntime cannot load it"
        in result.stderr
    )


def test_a_model_whose_classes_disagree_with_the_transform_is_refused(
    reference: Reference, tmp_path: Path
) -> None:
    for name in (contract.ONNX_FILE, contract.PREPROCESSING_FILE):
        shutil.copyfile(reference.model_dir / name, tmp_path / name)
    spec = json.loads((tmp_path / contract.PREPROCESSING_FILE).read_text())
    spec["label"]["classes"].append("a third class")
    (tmp_path / contract.PREPROCESSING_FILE).write_text(json.dumps(spec))
    with pytest.raises(predictors.ModelLoadError, match=r"returns \(2,\) class probabilities per record"):
        predictors.load("onnx", tmp_path, 1)


# ---- scripts/serve.sh ------------------------------------------------------------------------------


def serve_sh_checkout(tmp_path: Path) -> Path:
    """A checkout with the real serve.sh and training code, a no-op bootstrap and an env.sh that puts this
    project's venv on PATH (the script's own work: unpacking, arguments, signals, cleanup)."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "serve.sh", root / "scripts" / "serve.sh")
    (root / "scripts" / "bootstrap.sh").write_text("exit 0\n")
    (root / "scripts" / "env.sh").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    (root / "training_code").symlink_to(CODE_DIR)
    return root


@pytest.mark.parametrize("packed", [True, False], ids=["model.tar.gz", "model folder"])
def test_serve_sh_serves_a_tarball_or_a_folder_and_stops_cleanly(
    reference: Reference, raw: tuple[list[str], list[list[str]]], tmp_path: Path, packed: bool
) -> None:
    root = serve_sh_checkout(tmp_path)
    model = reference.model_dir
    if packed:
        model = tmp_path / "model.tar.gz"
        with tarfile.open(model, "w:gz") as tar:
            for path in sorted(reference.model_dir.iterdir()):
                tar.add(path, arcname=path.name)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    port = free_port()
    command = ["bash", str(root / "scripts" / "serve.sh"), str(model), "--port", str(port), "--workers", "1"]
    running = RunningServer(command, port, tmp_path / "serve-sh.log", subprocess_env(TMPDIR=str(scratch)))
    try:
        running.wait_ready()
        assert [p.name.startswith("serve-model.") for p in scratch.iterdir()] == ([True] if packed else [])
        _, rows = raw
        response = running.client.post(
            "/invocations", content=as_csv(rows[:3]), headers={"Content-Type": CSV_TYPE}
        )
        assert_predicts(response, reference, rows[:3])
        assert running.terminate() == 0  # forwarded to the server, which stops gracefully
        assert "Shutting down: Master" in running.log()
        assert list(scratch.iterdir()) == []  # the unpacked model is gone
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (None, "usage: scripts/serve.sh MODEL [--port N]"),
        ("missing.tar.gz", "missing.tar.gz: no such file or folder"),
        ("not-a-tarball.tar.gz", "is not a readable gzipped tarball"),
    ],
)
def test_serve_sh_refuses_what_is_not_a_model(tmp_path: Path, argument: str | None, message: str) -> None:
    root = serve_sh_checkout(tmp_path)
    (tmp_path / "not-a-tarball.tar.gz").write_text("plain text")
    args = [] if argument is None else [argument]
    result = subprocess.run(
        ["bash", str(root / "scripts" / "serve.sh"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(TMPDIR=str(tmp_path)),
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr


# ---- backends and the transform's fast path --------------------------------------------------------


def test_the_fast_path_gives_exactly_the_features_of_the_exact_transform(
    reference: Reference, breast_cancer: Processed
) -> None:
    with (breast_cancer.output / "baseline" / "baseline.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    fast = predictors.NumericFastPath.of(reference.transform)
    assert fast is not None
    expected = reference.transform.transform(rows)
    for cells in (rows, [[float(v) for v in row] for row in rows], [[f" {v} " for v in row] for row in rows]):
        assert np.array_equal(fast.transform(cells), expected)
    # far outside the clip bounds: clipped the same way
    wild = [[str(float(v) * 1e6) for v in row] for row in rows[:20]]
    assert np.array_equal(fast.transform(wild), reference.transform.transform(wild))
    # anything the exact path treats specially is left to it
    for special in ("", "NA", "nan", "-nan", "inf", "abc", None):
        row: list[payload.Cell] = list(rows[0])
        row[3] = special
        assert fast.transform([row]) is None, special


def test_the_fast_path_reads_json_numbers_as_the_exact_path_does(reference: Reference) -> None:
    """JSON cells are numbers: converted in one numpy call, to what float(str(cell)) gives."""
    fast = predictors.NumericFastPath.of(reference.transform)
    assert fast is not None
    numbers: list[list[payload.Cell]] = [
        [(i * 7919 + j * 104729) % 1000 for j in range(30)] for i in range(5)
    ]
    numbers[1][2] = 2**63 + 1  # beyond int64: numpy makes it uint64, correctly rounded either way
    numbers[2][3] = 12.5
    expected = reference.transform.transform(payload.as_text(numbers))
    values = fast.transform(numbers)
    assert values is not None and np.array_equal(values, expected)
    huge = [list(numbers[0])]
    huge[0][4] = 10**30  # beyond uint64: left to the exact path, which reads it as float("1000...0")
    assert fast.transform(huge) is None
    backend = predictors.load("onnx", reference.model_dir, 1)
    assert isinstance(backend, predictors.OnnxBackend)
    assert np.array_equal(
        backend.features(huge), reference.transform.transform(payload.as_text(huge)).astype(np.float32)
    )
    for special in (None, float("nan"), float("inf"), "abc"):
        row = list(numbers[0])
        row[5] = special
        assert fast.transform([row]) is None, special


# ---- CSV of plain decimals, parsed in numpy -------------------------------------------------------


def _random_number(rng: random.Random) -> str:
    """Decimal-looking strings, valid or not: signs, digits, dots, exponents, now and then a stray
    character where it does not belong."""
    text = rng.choice(["", "-", "+"]) + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 9)))
    if rng.random() < 0.6:
        text += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 9)))
    if rng.random() < 0.3:
        text += rng.choice("eE") + rng.choice(["", "-", "+"])
        text += "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 3)))
    if rng.random() < 0.05:
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(".eE+-") + text[at:]
    return text


def test_the_vectorized_csv_parser_reads_exactly_what_float_reads() -> None:
    """Whenever parse_decimal_csv returns values, they are float()'s, bit for bit (the sign of zero too);
    a body with a string float() refuses is never read. Fuzzed cells, 3 per row, 1 to 3 rows per body."""
    rng = random.Random(20261124)
    read = declined = 0
    for _ in range(3000):
        cells = [[_random_number(rng) for _ in range(3)] for _ in range(rng.randint(1, 3))]
        body = "\n".join(",".join(row) for row in cells).encode()
        values = predictors.parse_decimal_csv(body, 3, None)
        try:
            expected = np.array([[float(c) for c in row] for row in cells])
        except ValueError:
            assert values is None, cells
            declined += 1
            continue
        if values is None:  # valid, but outside the fast path's bounds (e.g. 16+ digits): float() reads it
            declined += 1
            continue
        assert np.array_equal(values, expected), cells
        assert np.array_equal(np.signbit(values), np.signbit(expected)), cells
        read += 1
    assert read > 300 and declined > 300  # both outcomes were exercised


def test_the_vectorized_csv_parser_reads_real_records_and_bounds() -> None:
    rows = [
        ["17.99", "-0.0", "+.5", "1e-05", "6.02E+22", "123456789012345"],
        ["5.", "0", "1e22", "-7", "0.1", "3"],
    ]
    body = ("\n" + "\n\n".join(",".join(row) for row in rows)).encode()  # blank lines are skipped
    values = predictors.parse_decimal_csv(body, 6, 2)
    assert values is not None
    expected = np.array([[float(c) for c in row] for row in rows])
    assert np.array_equal(values, expected) and np.signbit(values[0, 1])
    assert predictors.parse_decimal_csv(body, 6, 1) is None  # more rows than allowed
    assert predictors.parse_decimal_csv(body, 5, None) is None  # another width


DECLINED_CELLS = [
    "",  # a null: imputed by the exact path
    "NA", "nan", "inf", "-Infinity", "1e400", "1e23", "1e-23", "1234567890123456", "1e1000",
    "1_000", " 1.5", "1.5 ", '"1.5"', "1.5\r", "1\x00", "١٢", "0x10", "1d5",
    ".", "+", "-", "e5", "1e", "1e+", "--1", "1.2.3", "1e5e5", "1e5.5", "1.5-", "abc",
]  # fmt: skip


@pytest.mark.parametrize("cell", DECLINED_CELLS)
def test_the_vectorized_csv_parser_leaves_anything_special_to_the_exact_path(
    raw: tuple[list[str], list[list[str]]], cell: str
) -> None:
    _, rows = raw
    records = [list(row) for row in rows]
    records[56][0] = cell
    body = as_csv(records)
    assert len(body) >= predictors.VECTOR_MIN_BYTES
    assert predictors.parse_decimal_csv(body, 30, None) is None
    assert predictors.parse_decimal_csv(as_csv(rows), 30, None) is not None  # the same body without it


def test_the_vectorized_csv_parser_gives_the_features_of_the_exact_transform(
    reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    _, rows = raw
    backend = predictors.load("onnx", reference.model_dir, 1)
    assert isinstance(backend, predictors.OnnxBackend)
    features = backend.csv_features(as_csv(rows), CSV_TYPE)
    assert features is not None and np.array_equal(features, reference.features(rows))
    assert backend.csv_features(as_csv(rows[:2]), CSV_TYPE) is None  # small bodies: float() is faster


@pytest.mark.parametrize(
    ("cell", "status", "reason"),
    [
        ("abc", 400, "column 'mean radius' is declared as float but row 57 holds 'abc'"),
        ("inf", 400, "column 'mean radius' row 57 holds a non-finite value 'inf'"),
        ("1e400", 400, "column 'mean radius' row 57 holds a non-finite value '1e400'"),
        ("1\x00", 400, "row 57 holds '1\\x00'"),
        ("1,2", 400, "row 57: 31 values; allowed: 30"),
        ("", 200, ""),  # a null: imputed
        ("NA", 200, ""),
        (" 17.5 ", 200, ""),  # whitespace around a number: read by the exact path
        ("1234567890.123456789", 200, ""),  # more digits than the fast path reads
    ],
)
def test_large_csv_bodies_get_the_same_answers_as_small_ones(
    server: RunningServer,
    reference: Reference,
    raw: tuple[list[str], list[list[str]]],
    cell: str,
    status: int,
    reason: str,
) -> None:
    """A 100-record body takes the vectorized parser; a cell it declines sends the body to the exact path,
    which refuses it with the reason (naming the record) or reads it."""
    _, rows = raw
    records = [list(row) for row in rows]
    records[56][0] = cell
    response = server.client.post("/invocations", content=as_csv(records), headers={"Content-Type": CSV_TYPE})
    assert response.status_code == status, response.text[:300]
    if status == 200:
        assert_predicts(response, reference, records)
    else:
        assert reason in response.json()["message"]


def test_a_worker_reuses_freed_memory_instead_of_faulting_it_in_per_request(
    reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    """Once onnxruntime is imported, glibc returns a request's freed temporaries to the kernel unless told
    otherwise (predictors.keep_freed_memory): ~100 page faults per 100-record request. Counted in a fresh
    process, as a worker runs: with the thresholds set, none; without (the same process, reset), many."""
    _, rows = raw
    probe = (
        "import pathlib, resource, sys; "
        f"sys.path.insert(0, {str(CODE_DIR)!r}); "
        "import predictors; "
        f"backend = predictors.load('onnx', pathlib.Path({str(reference.model_dir)!r}), 1); "
        f"body = {as_csv(rows)!r}; "
        "faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "def per_call():\n"
        "    backend.invoke(body, 'text/csv', 'application/json'); before = faults()\n"
        "    for _ in range(50): backend.invoke(body, 'text/csv', 'application/json')\n"
        "    return (faults() - before) / 50\n"
        "kept = per_call(); import ctypes; libc = ctypes.CDLL(None); "
        "libc.mallopt(predictors.M_MMAP_THRESHOLD, 128 * 1024); "
        "libc.mallopt(predictors.M_TRIM_THRESHOLD, 128 * 1024); "
        "print(kept, per_call())"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert result.returncode == 0, result.stderr
    kept, returned = map(float, result.stdout.split())
    assert kept < 2 and returned > 20, (kept, returned)


# ---- the response formatter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "classes",
    [["malignant", "benign"], ["a,b", 'say "hi"', "100%", "ü", ""], ["x"]],
    ids=["breast cancer", "labels to quote and escape", "one class"],
)
@pytest.mark.parametrize("media", [JSON_TYPE, CSV_TYPE])
def test_the_template_formatter_writes_what_the_encoder_and_csv_writer_write(
    classes: list[str], media: str
) -> None:
    rng = np.random.default_rng(7)
    probabilities = rng.random((50, len(classes)), dtype=np.float32)
    probabilities[0, 0], probabilities[1, 0], probabilities[2, 0] = 1e-8, 0.0, 1.0
    probabilities[3, 0] = -0.0
    rows = probabilities.tolist()
    indices = probabilities.argmax(axis=1).tolist()
    fast = payload.format_predictions(rows, classes, media, indices)
    assert fast == payload._format_generic(rows, classes, media, indices)
    assert fast == payload.format_predictions(rows, classes, media)  # the argmax computed here
    if media == JSON_TYPE:
        assert json.loads(fast)["classes"] == classes


def test_non_finite_probabilities_are_refused_in_json_and_written_in_csv() -> None:
    rows = [[float("nan"), 1.0]]
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        payload.format_predictions(rows, ["a", "b"], JSON_TYPE, [1])
    assert payload.format_predictions(rows, ["a", "b"], CSV_TYPE, [1]) == b"b,nan,1.0\n"


def test_the_fast_path_applies_only_to_all_float_schemas(reference: Reference) -> None:
    columns = reference.transform.columns
    assert predictors.NumericFastPath.of(FeatureTransform(columns)) is not None
    as_int = [*columns[:-1], dataclasses.replace(columns[-1], type="int")]
    assert predictors.NumericFastPath.of(FeatureTransform(as_int)) is None


def test_the_onnx_output_name_is_the_one_train_py_exports() -> None:
    assert ONNX_OUTPUTS[1] == predictors.ONNX_PROBABILITIES


def test_the_torch_and_noop_backends_answer_in_the_same_format(
    reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    _, rows = raw
    body = as_csv(rows[:4])
    onnx_backend = predictors.load("onnx", reference.model_dir, 1)
    torch_backend = predictors.load("torch", reference.model_dir, 1)
    by_onnx = json.loads(onnx_backend.invoke(body, CSV_TYPE, JSON_TYPE))
    by_torch = json.loads(torch_backend.invoke(body, CSV_TYPE, JSON_TYPE))
    assert [p["label"] for p in by_onnx["predictions"]] == [p["label"] for p in by_torch["predictions"]]
    assert np.allclose(
        [p["probabilities"] for p in by_onnx["predictions"]],
        [p["probabilities"] for p in by_torch["predictions"]],
        atol=1e-5,
    )
    noop = predictors.load("noop", reference.model_dir, 1)
    fixed = json.loads(noop.invoke(b"anything at all", CSV_TYPE, JSON_TYPE))
    assert fixed == {
        "predictions": [{"label": reference.classes[0], "class_index": 0, "probabilities": [1.0, 0.0]}],
        "classes": reference.classes,
    }
    assert noop.invoke(b"", CSV_TYPE, CSV_TYPE) == f"{reference.classes[0]},1.0,0.0\n".encode()


def test_the_serving_path_imports_no_torch(
    reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    """serve.py, its backends and the modules they import, with torch made unimportable."""
    _, rows = raw
    probe = (
        "import json, pathlib, sys; sys.modules['torch'] = None; "
        f"sys.path.insert(0, {str(CODE_DIR)!r}); "
        "import serve, predictors; "
        f"backend = predictors.load('onnx', pathlib.Path({str(reference.model_dir)!r}), 1); "
        f"out = backend.invoke({as_csv(rows[:2])!r}, 'text/csv', 'text/csv').decode(); "
        "loaded = [m for m in ('inference', 'model', 'torch', 'sklearn') if sys.modules.get(m)]; "
        "print(json.dumps([out, loaded]))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert result.returncode == 0, result.stderr
    out, loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded == [] and len(out.splitlines()) == 2


# ---- the image: files, requirements, a clean venv, podman ------------------------------------------

DOCKERFILE = CODE_DIR / "Dockerfile"
REQUIREMENTS = CODE_DIR / "requirements-serve.txt"
#: Modules that only the torch backend (a benchmark reference) imports: not in the image.
TORCH_BACKEND_ONLY = {"inference", "model", "common"}


def _sibling_imports(path: Path, skip_class: str | None = None) -> set[str]:
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    if skip_class:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == skip_class:
                skipped |= {id(n) for n in ast.walk(node)}
    siblings = {p.stem for p in CODE_DIR.glob("*.py")}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & siblings


def serving_modules() -> set[str]:
    """serve.py and the sibling modules it imports, transitively, except the torch backend's."""
    found: set[str] = set()
    pending = ["serve"]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += _sibling_imports(CODE_DIR / f"{name}.py", skip_class="TorchBackend")
    return found


def dockerfile_copies() -> set[str]:
    copied: set[str] = set()
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            copied |= set(line.split()[1:-1])
    return copied


def test_the_image_copies_the_server_and_exactly_the_modules_it_imports() -> None:
    modules = serving_modules()
    assert modules == {"serve", "predictors", "payload", "features", "contract"}
    assert not modules & TORCH_BACKEND_ONLY
    assert dockerfile_copies() == {f"{m}.py" for m in modules} | {"requirements-serve.txt"}


def test_the_dockerignore_admits_only_what_the_image_needs() -> None:
    lines = [
        line for line in (CODE_DIR / ".dockerignore").read_text().splitlines() if line and line[0] != "#"
    ]
    assert lines[0] == "*"
    assert {line.removeprefix("!") for line in lines[1:]} == dockerfile_copies() | {"Dockerfile"}


def test_the_cdk_asset_of_the_image_holds_only_the_admitted_files(tmp_path: Path) -> None:
    """What a DockerImageAsset of training_code/ stages (and hashes): the allow-list, whatever else the
    folder holds (the training code, __pycache__, a model someone left there)."""
    from aws_cdk import App, Stack
    from aws_cdk.aws_ecr_assets import DockerImageAsset

    app = App(outdir=str(tmp_path / "cdk.out"))
    DockerImageAsset(Stack(app, "Probe"), "Image", directory=str(CODE_DIR))
    assembly = app.synth()
    (staged,) = [p for p in Path(assembly.directory).iterdir() if p.name.startswith("asset.") and p.is_dir()]
    assert {p.name for p in staged.iterdir()} == dockerfile_copies() | {"Dockerfile", ".dockerignore"}


def test_the_image_contract_in_the_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG BASE_IMAGE=python:(\d+)\.(\d+)-slim", text, re.MULTILINE)
    assert base is not None
    # the clean venv below is built with this interpreter: the image's Python must be the same minor version
    assert (int(base.group(1)), int(base.group(2))) == sys.version_info[:2]
    assert "FROM ${BASE_IMAGE}" in text
    assert re.search(r"^USER 10001$", text, re.MULTILINE)  # not root
    assert f"EXPOSE {contract.SERVING_PORT}" in text
    assert 'ENTRYPOINT ["python", "/opt/program/serve.py"]' in text
    assert f'CMD ["{contract.SERVE_COMMAND}"]' in text
    for name, value in serve.RUNTIME_ENVIRONMENT.items():
        assert f"{name}={value}" in text


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned"
            found[name.lower()] = version
    return found


def test_the_serving_requirements_are_the_project_versions() -> None:
    """The tests run the server from the project venv: it must hold the versions the image installs."""
    serving = pins(REQUIREMENTS)
    assert {"onnxruntime", "numpy", "gunicorn"} <= set(serving) and "torch" not in serving
    for name, version in serving.items():
        assert importlib.metadata.version(name) == version, name
    dev = pins(ROOT / "requirements-dev.txt")
    for name in ("onnxruntime", "numpy", "gunicorn"):
        assert dev.get(name) == serving[name], f"requirements-dev.txt pins {name} {dev.get(name)}"


@pytest.fixture(scope="session")
def serving_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment from requirements-serve.txt alone (PyPI; pip's cache is reused)."""
    venv = tmp_path_factory.mktemp("serving-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        str(REQUIREMENTS),
    ]
    result = subprocess.run(install, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return python


def clean_env() -> dict[str, str]:
    """No PYTHONPATH, no project venv on PATH: only what the venv itself holds."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_a_clean_venv_from_the_serving_requirements_alone_serves_the_model_without_torch(
    serving_venv: Path, reference: Reference, raw: tuple[list[str], list[list[str]]], tmp_path: Path
) -> None:
    freeze = subprocess.run(
        [str(serving_venv), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    installed = {
        name.lower(): version for name, _, version in (line.partition("==") for line in freeze.stdout.split())
    }
    assert installed == pins(REQUIREMENTS)  # every dependency pinned, nothing else installed
    no_torch = subprocess.run(
        [str(serving_venv), "-c", "import torch"], capture_output=True, text=True, env=clean_env()
    )
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    _, rows = raw
    port = free_port()
    command = serve.command(reference.model_dir, port=port, workers=2, python=str(serving_venv))
    running = RunningServer(command, port, tmp_path / "clean-venv.log", clean_env())
    try:
        running.wait_ready()
        for accept in (JSON_TYPE, CSV_TYPE):
            response = running.client.post(
                "/invocations", content=as_csv(rows), headers={"Content-Type": CSV_TYPE, "Accept": accept}
            )
            assert_predicts(response, reference, rows)
        bad = running.client.post("/invocations", content=b"1,2", headers={"Content-Type": CSV_TYPE})
        assert bad.status_code == 400
        assert running.terminate() == 0
    finally:
        if running.process.poll() is None:
            running.stop()


# ---- the image itself (podman, when a base image is available locally) -----------------------------

#: The base image to build on (the Dockerfile's default, or a local stand-in: base images are not pulled).
BASE_IMAGE = os.environ.get("SERVE_TEST_BASE_IMAGE", "python:3.11-slim-bookworm")
#: podman's global options for this machine (e.g. "--cgroup-manager=cgroupfs --runtime /path/to/runc").
PODMAN = ["podman", *shlex.split(os.environ.get("SERVE_TEST_PODMAN_ARGS", "--cgroup-manager=cgroupfs"))]
#: Extra `podman build` options for this machine (e.g. a --volume with the host's CA bundle).
BUILD_ARGS = shlex.split(os.environ.get("SERVE_TEST_BUILD_ARGS", ""))


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


@pytest.mark.slow
def test_the_image_builds_runs_as_non_root_and_serves_the_model(
    reference: Reference, raw: tuple[list[str], list[list[str]]]
) -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"base image {BASE_IMAGE} is not in local storage and cannot be pulled here")
    tag = f"localhost/serve-test:{os.getpid()}"
    name = f"serve-test-{os.getpid()}"
    podman(
        "build", "--isolation=chroot", "--pull=never", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
        *BUILD_ARGS, "-t", tag, str(CODE_DIR), timeout=900,
    )  # fmt: skip
    try:
        files = podman("run", "--rm", "--network=host", "--entrypoint", "ls", tag, "/opt/program").stdout
        assert set(files.split()) - {"__pycache__"} == dockerfile_copies()
        assert (
            podman("run", "--rm", "--network=host", "--entrypoint", "id", tag, "-u").stdout.strip() == "10001"
        )
        no_torch = podman(
            "run", "--rm", "--network=host", "--entrypoint", "python", tag, "-c", "import torch", check=False
        )
        assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
        port = free_port()
        podman(
            "run", "-d", "--name", name, "--network=host", "-e", f"SAGEMAKER_BIND_TO_PORT={port}",
            "-e", "SAGEMAKER_MODEL_SERVER_WORKERS=2", "-v", f"{reference.model_dir}:{contract.MODEL_DIR}:ro",
            tag, contract.SERVE_COMMAND,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, podman("logs", name, check=False).stderr
            time.sleep(0.1)
        _, rows = raw
        response = httpx.post(
            f"http://127.0.0.1:{port}/invocations", content=as_csv(rows), headers={"Content-Type": CSV_TYPE}
        )
        assert_predicts(response, reference, rows)
        podman("stop", "-t", "30", name, timeout=60)  # SIGTERM, as SageMaker sends it
        assert podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip() == "0"
        assert "Shutting down: Master" in podman("logs", name).stderr
    finally:
        podman("rm", "-f", name, check=False)
        podman("rmi", "-f", tag, check=False)
