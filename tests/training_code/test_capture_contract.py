"""The contract between what the endpoint captures and what the monitoring jobs read
(training_code/monitoring_contract.py), on real responses of the serving container.

The real server (serve.py, the model the session trained on breast cancer) answers real requests, CSV and
JSON, single records and small batches. For each exchange the test builds the data-capture record SageMaker
writes (request and response as ``endpointInput`` / ``endpointOutput``, the caller's ``InferenceId``),
serializes it to its JSON line and reads it back, then extracts values with the rules the jobs apply: the
column index into a CSV payload's rows, or the JMESPath expression evaluated with ``jmespath`` (the library
botocore uses) over the JSON document. The extracted label and probabilities must equal what the server
answered and what ONNX Runtime computes on the features transformed as in training (exactly), and the eager
PyTorch model (within 1e-5). Ground-truth records (the test split's real labels) are written in the
documented format and path layout and merged with the captures on the inference id, Model Monitor's way.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import contract
import evaluate
import jmespath
import monitoring_contract as mc
import numpy as np
import onnxruntime
import payload
import pytest
import serve
import torch
from features import FeatureTransform, read_preprocessing
from model import ONNX_OUTPUTS, load_model

from tests.training_code.serve_helpers import RunningServer, free_port
from tests.training_code.training_helpers import CODE_DIR, ROOT, Processed, TrainRun

CSV = contract.CSV_CONTENT_TYPE
JSON = contract.JSON_CONTENT_TYPE
ENDPOINT = "bc-endpoint"
VARIANT = "champion"


# ---- the model, its data and the real server -------------------------------------------------------


@dataclass
class Model:
    """The trained model outside the server: the fitted transform, ONNX Runtime and eager PyTorch."""

    model_dir: Path
    classes: tuple[str, ...]
    input_columns: list[str]
    label_column: str
    transform: FeatureTransform
    session: onnxruntime.InferenceSession
    eager: torch.nn.Module

    def onnx(self, rows: list[list[str]]) -> np.ndarray:
        features = self.transform.transform(rows).astype(np.float32)
        (probabilities,) = self.session.run([ONNX_OUTPUTS[1]], {"features": features})
        return np.asarray(probabilities)

    def torch(self, rows: list[list[str]]) -> np.ndarray:
        features = torch.as_tensor(self.transform.transform(rows).astype(np.float32))
        with torch.no_grad():
            return torch.softmax(self.eager(features), dim=1).numpy()


@pytest.fixture(scope="module")
def model(reference_run: TrainRun) -> Model:
    model_dir = reference_run.model_dir
    spec = read_preprocessing(model_dir / contract.PREPROCESSING_FILE)
    raw = json.loads((model_dir / contract.PREPROCESSING_FILE).read_text())
    session = onnxruntime.InferenceSession(
        str(model_dir / contract.ONNX_FILE), providers=["CPUExecutionProvider"]
    )
    eager, _ = load_model(model_dir / contract.MODEL_FILE)
    return Model(
        model_dir,
        tuple(spec.classes),
        [column["name"] for column in raw["input_columns"]],
        raw["label"]["name"],
        spec.transform,
        session,
        eager,
    )


@pytest.fixture(scope="module")
def scoring(breast_cancer: Processed) -> tuple[list[list[str]], list[str]]:
    """The test split as the endpoint receives it (raw cells, no label) and its real labels, line by line."""
    folder = breast_cancer.output
    with (folder / contract.SCORING / contract.split_file(contract.SCORING)).open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    labels_file = folder / contract.SCORING_LABELS / contract.split_file(contract.SCORING_LABELS)
    labels = labels_file.read_text().split()
    assert len(rows) == len(labels) > 20
    return rows, labels


@pytest.fixture(scope="module")
def server(model: Model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    port = free_port()
    running = RunningServer(
        serve.command(model.model_dir, port=port, workers=1, threads=2),
        port,
        tmp_path_factory.mktemp("capture_server") / "server.log",
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


# ---- one real exchange and its capture record --------------------------------------------------------


@dataclass
class Exchange:
    """A request, the server's answer, and the capture record SageMaker writes for it (read back from its
    JSON line, as a monitoring job reads it from S3)."""

    rows: list[list[str]]
    record: mc.CaptureRecord
    labels: list[str]
    probabilities: np.ndarray


def body_of(rows: list[list[str]], media: str) -> bytes:
    if media == CSV:
        return "".join(",".join(row) + "\n" for row in rows).encode()
    return json.dumps({contract.JSON_INSTANCES_KEY: [[float(v) for v in row] for row in rows]}).encode()


def served(body: bytes, media: str) -> tuple[list[str], np.ndarray]:
    """The labels and probabilities of a response, read plainly (not through the monitoring attributes)."""
    if media == CSV:
        lines = [line for line in csv.reader(io.StringIO(body.decode())) if line]
        return [line[0] for line in lines], np.array([[float(v) for v in line[1:]] for line in lines])
    predictions = json.loads(body)[contract.PREDICTIONS_KEY]
    labels = [p[contract.LABEL_KEY] for p in predictions]
    return labels, np.array([p[contract.PROBABILITIES_KEY] for p in predictions])


def invoke(
    server: RunningServer, rows: list[list[str]], media: str, inference_id: str | None = None
) -> Exchange:
    """POST ``rows`` as ``media`` (Accept: the same) and capture the exchange as SageMaker does: the request
    body under its Content-Type, the response under the server's, the caller's InferenceId if any."""
    body = body_of(rows, media)
    response = server.client.post(
        contract.INVOCATIONS_PATH, content=body, headers={"Content-Type": media, "Accept": media}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    record = mc.capture_record(
        body,
        media,
        response.content,
        response.headers["content-type"],
        event_id=str(uuid.uuid4()),
        inference_time=datetime.now(UTC),
        inference_id=inference_id,
    )
    line = record.to_line()
    assert line.endswith("\n") and "\n" not in line[:-1]  # JSON Lines: one record, one line
    labels, probabilities = served(response.content, media)
    return Exchange(rows, mc.parse_capture_record(line), labels, probabilities)


# ---- the jobs' extraction rules -----------------------------------------------------------------------


def extract_all(captured: mc.CapturedPayload, attribute: str) -> list[Any]:
    """An attribute over every record of a captured payload: the column of each CSV row, or the JMESPath
    expression over the JSON document (which must give a list, one value per record)."""
    text = captured.text()
    if captured.media_type == CSV:
        index = int(attribute)
        return [row[index] for row in csv.reader(io.StringIO(text)) if row]
    found = jmespath.search(attribute, json.loads(text))
    assert isinstance(found, list), (attribute, found)
    return found


def extract_one(captured: mc.CapturedPayload, attribute: str) -> Any:
    """An attribute of a single-record payload, as the model-quality job reads it: the column of the one CSV
    row, or the JMESPath expression's value (a scalar)."""
    if captured.media_type == CSV:
        (value,) = extract_all(captured, attribute)
        return value
    found = jmespath.search(attribute, json.loads(captured.text()))
    assert found is not None and not isinstance(found, list | dict), (attribute, found)
    return found


def output_of(record: mc.CaptureRecord) -> mc.CapturedPayload:
    assert record.endpoint_output is not None
    return record.endpoint_output


def input_of(record: mc.CaptureRecord) -> mc.CapturedPayload:
    assert record.endpoint_input is not None
    return record.endpoint_input


# ---- model quality: one record per request ---------------------------------------------------------


@pytest.mark.parametrize("positive", [1, 0], ids=["positive=1", "positive=0"])
@pytest.mark.parametrize("media", [CSV, JSON], ids=["csv", "json"])
def test_model_quality_attributes_extract_the_served_prediction_of_each_single_record_capture(
    server: RunningServer, model: Model, scoring: tuple[list[list[str]], list[str]], media: str, positive: int
) -> None:
    rows, _ = scoring
    settings = mc.MonitoringContract(model.classes, content_type=media, positive_class_index=positive)
    attributes = settings.model_quality_endpoint_input()
    assert settings.problem_type == mc.BINARY_CLASSIFICATION
    assert set(attributes) == {"ProbabilityAttribute", "ProbabilityThresholdAttribute"}
    assert attributes["ProbabilityThresholdAttribute"] == 0.5
    seen = set()
    for index, row in enumerate(rows[:24]):
        exchange = invoke(server, [row], media, inference_id=f"mq-{index}")
        record = mc.require_single_record(exchange.record)
        assert record.inference_id == f"mq-{index}" and record.join_key == f"mq-{index}"
        captured = output_of(record)
        assert captured.encoding == (mc.CSV_ENCODING if media == CSV else mc.JSON_ENCODING)
        assert mc.record_count(input_of(record)) == 1

        probability = float(extract_one(captured, str(attributes["ProbabilityAttribute"])))
        label = extract_one(captured, settings.label_attribute(batch=False))
        onnx = model.onnx([row])[0]
        # the served text reads back as the exact float32 ONNX Runtime computed
        assert probability == exchange.probabilities[0, positive]
        assert np.float32(probability) == onnx[positive]
        assert np.allclose(probability, model.torch([row])[0, positive], atol=1e-5)
        assert label == exchange.labels[0] == model.classes[int(onnx.argmax())]
        # the job's label (probability > threshold) is the served label, in the ground truth's terms
        assert settings.predicted_value(label, probability) == settings.ground_truth_value(label)
        seen.add(label)
    assert seen == set(model.classes)  # both classes were predicted: the threshold rule met both sides


@pytest.mark.parametrize("media", [CSV, JSON], ids=["csv", "json"])
def test_a_wrong_probability_attribute_does_not_extract_the_positive_probability(
    server: RunningServer, model: Model, scoring: tuple[list[list[str]], list[str]], media: str
) -> None:
    """The check above can fail: class 0's column (or index) is not the positive probability."""
    rows, _ = scoring
    right = mc.MonitoringContract(model.classes, content_type=media)
    wrong = mc.MonitoringContract(model.classes, content_type=media, positive_class_index=0)
    exchange = invoke(server, [rows[0]], media)
    captured = output_of(exchange.record)
    positive = float(extract_one(captured, right.probability_attribute(batch=False)))
    other = float(extract_one(captured, wrong.probability_attribute(batch=False)))
    assert positive == exchange.probabilities[0, 1] != other == exchange.probabilities[0, 0]


@pytest.mark.parametrize("media", [CSV, JSON], ids=["csv", "json"])
def test_model_quality_refuses_a_batched_capture_which_it_would_grade_by_its_first_record(
    server: RunningServer, model: Model, scoring: tuple[list[list[str]], list[str]], media: str
) -> None:
    rows, _ = scoring
    settings = mc.MonitoringContract(model.classes, content_type=media)
    exchange = invoke(server, rows[:3], media, inference_id="batch-1")
    with pytest.raises(
        ValueError, match=r"'batch-1': 3 records in one request; allowed for model quality: 1"
    ):
        mc.require_single_record(exchange.record)
    captured = output_of(exchange.record)
    attribute = settings.probability_attribute(batch=False)
    if media == JSON:  # predictions[0]...: one value, the first record's; the other two are never graded
        value = jmespath.search(attribute, json.loads(captured.text()))
        assert value == exchange.probabilities[0, 1]
    else:  # one CSV line per record: no single value for the one ground-truth label of "batch-1"
        assert len(extract_all(captured, attribute)) == 3


def test_single_record_and_batch_json_paths_differ_in_shape_not_in_value(
    server: RunningServer, model: Model, scoring: tuple[list[list[str]], list[str]]
) -> None:
    """On one record, ``[*]`` gives a one-element list and ``[0]`` the scalar a model-quality attribute is."""
    rows, _ = scoring
    settings = mc.MonitoringContract(model.classes, content_type=JSON)
    document = json.loads(output_of(invoke(server, [rows[1]], JSON).record).text())
    assert settings.label_attribute(batch=True) == contract.JSON_LABEL_PATH == "predictions[*].label"
    assert settings.label_attribute(batch=False) == "predictions[0].label"
    assert settings.probability_attribute(batch=False) == "predictions[0].probabilities[1]"
    batch_value = jmespath.search(settings.label_attribute(batch=True), document)
    single_value = jmespath.search(settings.label_attribute(batch=False), document)
    assert batch_value == [single_value] and isinstance(single_value, str)


# ---- Clarify: every record of a capture -------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 5], ids=["single", "batch-of-5"])
@pytest.mark.parametrize("media", [CSV, JSON], ids=["csv", "json"])
def test_clarify_attributes_extract_every_record_of_a_capture(
    server: RunningServer,
    model: Model,
    scoring: tuple[list[list[str]], list[str]],
    media: str,
    size: int,
) -> None:
    rows, _ = scoring
    batch = rows[10 : 10 + size]
    settings = mc.MonitoringContract(model.classes, content_type=media)
    attributes = settings.clarify_endpoint_input()
    exchange = invoke(server, batch, media, inference_id=f"clarify-{size}")
    captured = output_of(exchange.record)
    onnx = model.onnx(batch)

    probabilities = [float(v) for v in extract_all(captured, str(attributes["ProbabilityAttribute"]))]
    assert probabilities == list(exchange.probabilities[:, 1])
    assert np.array_equal(np.array(probabilities, dtype=np.float32), onnx[:, 1])
    assert np.allclose(probabilities, model.torch(batch)[:, 1], atol=1e-5)
    labels = extract_all(captured, settings.label_attribute(batch=True))
    assert labels == exchange.labels == [model.classes[i] for i in onnx.argmax(axis=1)]
    threshold = float(attributes["ProbabilityThresholdAttribute"])
    assert [int(p > threshold) for p in probabilities] == [int(label == model.classes[1]) for label in labels]

    if media == JSON:  # the features, for the bias and explainability analyses
        assert attributes["FeaturesAttribute"] == "instances"
        features = extract_all(input_of(exchange.record), str(attributes["FeaturesAttribute"]))
        assert features == [[float(v) for v in row] for row in batch]
    else:
        assert "FeaturesAttribute" not in attributes
        assert list(csv.reader(io.StringIO(input_of(exchange.record).text()))) == batch
    assert mc.record_count(input_of(exchange.record)) == mc.record_count(captured) == size


def test_clarify_predictor_reads_the_shadow_endpoints_csv_answer(
    server: RunningServer, model: Model, scoring: tuple[list[list[str]], list[str]]
) -> None:
    """The analysis config's ``predictor``: Clarify sends CSV rows and reads the probability column."""
    rows, _ = scoring
    predictor = mc.MonitoringContract(model.classes).clarify_predictor()
    assert predictor == {"content_type": CSV, "accept_type": CSV, "probability": 2}
    response = server.client.post(
        contract.INVOCATIONS_PATH,
        content=body_of(rows[:4], predictor["content_type"]),
        headers={"Content-Type": predictor["content_type"], "Accept": predictor["accept_type"]},
    )
    assert response.status_code == 200 and response.headers["content-type"] == predictor["accept_type"]
    scores = [float(line[predictor["probability"]]) for line in csv.reader(io.StringIO(response.text))]
    assert np.array_equal(np.array(scores, dtype=np.float32), model.onnx(rows[:4])[:, 1])


def test_clarify_headers_and_label_values(model: Model) -> None:
    settings = mc.MonitoringContract(model.classes)
    headers = settings.clarify_headers(model.input_columns, model.label_column)
    assert headers[:-1] == model.input_columns and headers[-1] == "target" and len(headers) == 31
    assert settings.clarify_label_values() == [1] == settings.clarify_label_values(["benign"])
    with pytest.raises(ValueError, match="positive outcome is 'benign'"):
        settings.clarify_label_values(["malignant"])
    with pytest.raises(ValueError, match="all distinct"):
        settings.clarify_headers(["target", "x"], "target")


# ---- ground truth: the documented record, path and merge --------------------------------------------


def test_the_ground_truth_record_is_the_documented_one() -> None:
    record = mc.ground_truth_record("aaaa-bbbb-cccc", "1")
    assert record.as_dict() == {
        "groundTruthData": {"data": "1", "encoding": "CSV"},
        "eventMetadata": {"eventId": "aaaa-bbbb-cccc"},
        "eventVersion": "0",
    }
    assert json.loads(record.to_line()) == record.as_dict() and record.to_line().count("\n") == 1
    assert mc.parse_ground_truth_record(record.to_line()) == record
    when = datetime(2026, 3, 4, 5, 59, 59, tzinfo=UTC)
    assert (
        mc.ground_truth_key("ground-truth/ep", when, "labels-0001")
        == "ground-truth/ep/2026/03/04/05/labels-0001.jsonl"
    )
    assert (
        mc.capture_prefix("s3://lake/capture", ENDPOINT, VARIANT, when)
        == f"s3://lake/capture/{ENDPOINT}/{VARIANT}/2026/03/04/05"
    )


def test_ground_truth_written_for_captured_inferences_joins_them_on_the_inference_id(
    server: RunningServer, model: Model, scoring: tuple[list[list[str]], list[str]], tmp_path: Path
) -> None:
    rows, actual = scoring
    settings = mc.MonitoringContract(model.classes)
    # five single-record invocations: four with the caller's InferenceId, one without (joined on eventId)
    exchanges = [invoke(server, [rows[i]], CSV, inference_id=f"bc-{i:04d}") for i in range(4)]
    anonymous = invoke(server, [rows[4]], CSV)
    captured_at = datetime.now(UTC)
    capture_dir = tmp_path / mc.capture_prefix("capture", ENDPOINT, VARIANT, captured_at)
    capture_dir.mkdir(parents=True)
    capture_file = capture_dir / "00-00-000-capture.jsonl"
    capture_file.write_text("".join(e.record.to_line() for e in [*exchanges, anonymous]))

    # labels collected later, for bc-0000, bc-0001 and the anonymous one; one label for an unknown id; and
    # one naming bc-0002's eventId: a capture with an inferenceId is joined on that id only
    truths = [
        mc.ground_truth_record("bc-0000", settings.ground_truth_value(actual[0])),
        mc.ground_truth_record("bc-0001", settings.ground_truth_value(actual[1])),
        mc.ground_truth_record(anonymous.record.event_id, settings.ground_truth_value(actual[4])),
        mc.ground_truth_record("bc-9999", "1"),
        mc.ground_truth_record(exchanges[2].record.event_id, settings.ground_truth_value(actual[2])),
    ]
    key = mc.ground_truth_key(f"{mc.GROUND_TRUTH_PREFIX}/{ENDPOINT}", datetime.now(UTC), "labels")
    path = tmp_path / key
    path.parent.mkdir(parents=True)
    with path.open("w") as handle:
        assert mc.write_ground_truth(handle, truths) == 5
    assert [p.name for p in tmp_path.glob("ground-truth/*/????/??/??/??/*.jsonl")] == ["labels.jsonl"]
    assert [json.loads(line) for line in path.read_text().splitlines()] == [t.as_dict() for t in truths]

    merged = mc.merge(
        mc.read_capture_file(capture_file.read_text()), mc.read_ground_truth_file(path.read_text())
    )
    assert [m.capture.join_key for m in merged] == ["bc-0000", "bc-0001", anonymous.record.event_id]
    for m, row_index in zip(merged, (0, 1, 4), strict=True):
        assert m.ground_truth.data == settings.ground_truth_value(actual[row_index]) in ("0", "1")
        assert m.capture.endpoint_input is not None
        assert m.capture.endpoint_input.text() == ",".join(rows[row_index]) + "\n"
        probability = float(extract_one(output_of(m.capture), settings.probability_attribute(batch=False)))
        assert probability == model.onnx([rows[row_index]])[0, 1]
        document = m.as_dict()
        assert set(document) == {"eventVersion", "groundTruthData", "captureData", "eventMetadata"}
        assert document["eventMetadata"]["eventId"] == m.capture.event_id
    # the model-quality view of the merged records: prediction and truth in the same 1/0 terms
    predictions = [
        settings.predicted_value(
            "", float(extract_one(output_of(m.capture), settings.probability_attribute(batch=False)))
        )
        for m in merged
    ]
    assert predictions == [
        settings.ground_truth_value(model.classes[int(model.onnx([rows[i]])[0].argmax())]) for i in (0, 1, 4)
    ]


def test_merge_refuses_ambiguous_ids() -> None:
    capture = mc.parse_capture_record(SAMPLE_CAPTURE)
    truth = mc.ground_truth_record("client-7", "1")
    assert mc.merge([capture], [truth])[0].ground_truth is truth
    with pytest.raises(ValueError, match="eventId 'client-7' twice"):
        mc.merge([capture], [truth, truth])
    with pytest.raises(ValueError, match="'client-7' twice; allowed: a unique InferenceId"):
        mc.merge([capture, capture], [truth])


# ---- the capture record format ------------------------------------------------------------------------

#: A capture line in the documented shape (our own values), with the caller's InferenceId.
SAMPLE_CAPTURE = (
    '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
    '"data":"13.5,14.36,87.46\\n","encoding":"CSV"},"endpointOutput":{"observedContentType":'
    '"text/csv; charset=utf-8","mode":"OUTPUT","data":"benign,0.25,0.75\\n","encoding":"CSV"}},'
    '"eventMetadata":{"eventId":"0c6f0b5e-1f4e-4a57-9d7e-2d1f3b0f7a11","inferenceId":"client-7",'
    '"inferenceTime":"2026-01-19T19:27:57Z"},"eventVersion":"0"}'
)


def test_a_capture_line_parses_and_round_trips() -> None:
    record = mc.parse_capture_record(SAMPLE_CAPTURE)
    assert record.inference_id == "client-7" == record.join_key
    assert record.event_id == "0c6f0b5e-1f4e-4a57-9d7e-2d1f3b0f7a11"
    assert record.inference_time == datetime(2026, 1, 19, 19, 27, 57, tzinfo=UTC)
    assert record.endpoint_output is not None and record.endpoint_output.media_type == CSV
    assert json.loads(record.to_line()) == json.loads(SAMPLE_CAPTURE)
    assert mc.read_capture_file(SAMPLE_CAPTURE + "\n\n" + SAMPLE_CAPTURE + "\n") == [record, record]


def test_capture_encodings_follow_the_capture_content_type_header() -> None:
    from ml_platform.endpoint import CSV_CONTENT_TYPES, JSON_CONTENT_TYPES

    # the endpoint construct declares the header this contract reads the captures with
    assert mc.capture_content_type_header() == {
        "CsvContentTypes": list(CSV_CONTENT_TYPES),
        "JsonContentTypes": list(JSON_CONTENT_TYPES),
    }
    assert mc.capture_encoding("text/csv; charset=utf-8") == mc.CSV_ENCODING
    assert mc.capture_encoding("Application/JSON") == mc.JSON_ENCODING
    assert mc.capture_encoding("application/x-npy") == mc.BASE64_ENCODING
    record = mc.capture_record(
        b"\x93NUMPY raw", "application/x-npy", "é".encode(), "text/plain",
        event_id="e-1", inference_time=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert record.endpoint_input is not None and record.endpoint_input.data == "k05VTVBZIHJhdw=="
    assert output_of(record).encoding == mc.BASE64_ENCODING and output_of(record).text() == "é"


def _broken(path: str, value: object) -> dict[str, Any]:
    record = json.loads(SAMPLE_CAPTURE)
    *parents, last = path.split(".")
    node = record
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return record


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("eventVersion", "1", "key 'eventVersion': '1'; allowed: '0'"),
        ("captureData", KeyError, "key 'captureData': missing; allowed: a JSON object"),
        (
            "captureData.endpointOutput.mode",
            "INPUT",
            "'captureData.endpointOutput.mode': 'INPUT'; allowed: 'OUTPUT'",
        ),
        ("captureData.endpointInput.encoding", "GZIP", "allowed: one of \\['CSV', 'JSON', 'BASE64'\\]"),
        ("captureData.endpointInput.data", 5, "'captureData.endpointInput.data': 5; allowed: a string"),
        ("captureData.batchTransformOutput", {}, "allowed: 'endpointInput' and/or 'endpointOutput'"),
        ("eventMetadata.eventId", "", "eventMetadata.eventId '': allowed: a string of 1 to 64"),
        ("eventMetadata.inferenceId", " x", "eventMetadata.inferenceId ' x': allowed: printable ASCII"),
        ("eventMetadata.inferenceTime", "2026-01-19T19:27:57", "allowed: a UTC time ending in 'Z'"),
        ("eventMetadata.inferenceTime", "yesterday", "allowed: a UTC time such as"),
    ],
)
def test_a_malformed_capture_record_is_refused_with_the_key_and_what_is_allowed(
    path: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mc.parse_capture_record(_broken(path, value))
    with pytest.raises(ValueError, match="capture line 2: "):
        mc.read_capture_file(SAMPLE_CAPTURE + "\n" + json.dumps(_broken(path, value)))


# ---- refusals of the settings and the writers --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "a string of 1 to 64"),
        ("x" * 65, "a string of 1 to 64"),
        (" leading", "printable ASCII characters not starting with whitespace"),
        ("tab\tinside", "printable ASCII"),
        ("accent-é", "printable ASCII"),  # (a non-ASCII first character is \S: Java's pattern takes it)
        (7, "a string of 1 to 64"),
    ],
)
def test_an_id_invoke_endpoint_would_refuse_is_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mc.check_inference_id(value)
    assert mc.check_inference_id("x" * 64) == "x" * 64


def test_ground_truth_writers_refuse_what_model_monitor_could_not_read() -> None:
    with pytest.raises(
        ValueError, match="ground-truth data 'a,b': allowed: a non-empty string without commas"
    ):
        mc.ground_truth_record("id-1", "a,b")
    naive = datetime(2026, 1, 1, 12)
    with pytest.raises(ValueError, match=r"collected_at .*: allowed: a timezone-aware datetime"):
        mc.ground_truth_key("ground-truth", naive, "labels")
    for prefix in ("", "ground-truth/", "/ground-truth", "ground-truth//ep"):
        with pytest.raises(ValueError, match="without a trailing '/' or '//'"):
            mc.ground_truth_key(prefix, datetime.now(UTC), "labels")
    with pytest.raises(ValueError, match="file_stem 'a/b'"):
        mc.ground_truth_key("ground-truth", datetime.now(UTC), "a/b")
    bad = mc.ground_truth_record("id-1", "1").as_dict() | {
        "groundTruthData": {"data": "1", "encoding": "JSON"}
    }
    with pytest.raises(ValueError, match=r"'groundTruthData\.encoding': 'JSON'; allowed: 'CSV'"):
        mc.parse_ground_truth_record(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("only",)}, "two or more distinct class labels"),
        ({"classes": ("a", "a")}, "two or more distinct class labels"),
        ({"classes": ("a,b", "c")}, "class label 'a,b': allowed"),
        ({"classes": ("a", "b"), "content_type": "text/plain"}, "content_type 'text/plain': allowed"),
        ({"classes": ("a", "b"), "positive_class_index": 2}, "positive_class_index 2: allowed: 0 to 1"),
        (
            {"classes": ("a", "b"), "probability_threshold": 1.0},
            "probability_threshold 1.0: allowed: in \\(0, 1\\)",
        ),
    ],
)
def test_bad_monitoring_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mc.MonitoringContract(**kwargs)


# ---- multiclass: the wire format of the server's own formatter ----------------------------------------


@pytest.mark.parametrize("media", [CSV, JSON], ids=["csv", "json"])
def test_multiclass_models_are_monitored_on_the_predicted_class(media: str) -> None:
    classes = ("class_0", "class_1", "class_2")
    probabilities = [[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]
    body = payload.format_predictions(probabilities, classes, media)  # what serve.py answers
    settings = mc.MonitoringContract(classes, content_type=media)
    assert settings.problem_type == mc.MULTICLASS_CLASSIFICATION
    assert set(settings.model_quality_endpoint_input()) == {"InferenceAttribute"}
    batch = mc.capture_record(
        b"", media, body, media, event_id="e-2", inference_time=datetime.now(UTC)
    ).endpoint_output
    assert batch is not None
    attributes = settings.clarify_endpoint_input()
    assert extract_all(batch, str(attributes["InferenceAttribute"])) == ["class_1", "class_0", "class_2"]
    single = mc.captured_payload(
        payload.format_predictions(probabilities[:1], classes, media), media, "OUTPUT"
    )
    assert (
        extract_one(single, str(settings.model_quality_endpoint_input()["InferenceAttribute"])) == "class_1"
    )
    assert settings.ground_truth_value("class_2") == "class_2"
    assert settings.predicted_value("class_1", 0.0) == "class_1"
    assert settings.clarify_label_values(["class_0"]) == ["class_0"]
    with pytest.raises(ValueError, match="allowed: one or more of"):
        settings.clarify_label_values(["class_9"])
    predictor = settings.clarify_predictor()
    assert predictor["label_headers"] == list(classes) and predictor["accept_type"] == JSON
    json_answer = json.loads(payload.format_predictions(probabilities, classes, JSON))
    assert jmespath.search(predictor["probability"], json_answer) == probabilities


# ---- data quality: the baseline's layout is the captured record's ------------------------------------


@pytest.fixture(scope="module")
def data_quality_baseline(
    model: Model, breast_cancer: Processed, tmp_path_factory: pytest.TempPathFactory
) -> list[list[str]]:
    """The data-quality baseline the real evaluate.py writes for the served model and the test split."""
    out = tmp_path_factory.mktemp("data_quality")
    scoring_file = breast_cancer.output / contract.SCORING / contract.split_file(contract.SCORING)
    evaluate.evaluate(
        model.model_dir,
        breast_cancer.output / contract.TEST / contract.split_file(contract.TEST),
        out / "evaluation",
        0,
        0,
        data_quality=(scoring_file, out / "dq"),
    )
    with (out / "dq" / mc.DATA_QUALITY_BASELINE_FILE).open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_a_captured_csv_record_flattens_to_a_row_of_the_data_quality_baseline(
    server: RunningServer,
    model: Model,
    scoring: tuple[list[list[str]], list[str]],
    data_quality_baseline: list[list[str]],
) -> None:
    """Model Monitor reads each captured record as ``output_data + "," + input_data`` and names the cells by
    position after the baseline's header: for every test record sent to the real server, the flattened
    capture has the header's width, its output cells are a class name and probabilities as in the baseline,
    its input cells are the raw request, and it equals the baseline row evaluate.py wrote for that record."""
    rows, _ = scoring
    header, *baseline = data_quality_baseline
    settings = mc.MonitoringContract(model.classes)
    responses = len(settings.response_columns)
    assert header == [*settings.response_columns, *model.input_columns]
    assert header[:responses] == ["predicted_label", "probability_0", "probability_1"]
    assert header[responses:] == model.input_columns and header[responses] == "mean radius"
    assert len(baseline) == len(rows)
    for index, row in enumerate(rows):
        exchange = invoke(server, [row], CSV, inference_id=f"dq-{index}")
        flat = mc.data_quality_row(exchange.record)
        expected = baseline[index]
        assert len(flat) == len(header) == len(expected), index
        # The output columns: what the label/probability attributes read, at the header's positions.
        label = flat[header.index(mc.RESPONSE_LABEL_COLUMN)]
        probabilities = [float(flat[header.index(f"probability_{i}")]) for i in range(len(model.classes))]
        assert label == exchange.labels[0] and label in model.classes
        assert all(0.0 <= p <= 1.0 for p in probabilities) and abs(sum(probabilities) - 1) < 1e-5
        assert probabilities == list(exchange.probabilities[0])
        # The input columns: the raw request, cell for cell.
        assert flat[responses:] == row == expected[responses:]
        # The baseline row evaluate.py wrote: the same label, probabilities up to float32 (ONNX vs PyTorch).
        assert flat[0] == expected[0], index
        np.testing.assert_allclose(
            [float(v) for v in flat[1:responses]],
            [float(v) for v in expected[1:responses]],
            rtol=0,
            atol=1e-5,
        )


def test_data_quality_row_refuses_captures_the_data_quality_job_cannot_read_by_position(
    server: RunningServer, scoring: tuple[list[list[str]], list[str]]
) -> None:
    rows, _ = scoring
    batch = invoke(server, rows[:3], CSV).record
    with pytest.raises(ValueError, match=r"3 records in the OUTPUT; allowed for data quality: 1"):
        mc.data_quality_row(batch)
    as_json = invoke(server, rows[:1], JSON).record
    with pytest.raises(ValueError, match=r"OUTPUT of 'application/json'; allowed: text/csv"):
        mc.data_quality_row(as_json)
    single = invoke(server, rows[:1], CSV).record
    output_only = mc.CaptureRecord(None, single.endpoint_output, single.event_id, single.inference_time)
    with pytest.raises(ValueError, match=r"endpointInput and endpointOutput are needed"):
        mc.data_quality_row(output_only)
    # The order is the documented one: output first (flipping it is what the baseline must not be built on).
    flat = mc.data_quality_row(single)
    assert flat[: len(rows[0])] != rows[0] and flat[-len(rows[0]) :] == rows[0]


def test_the_data_quality_header_is_the_response_columns_then_the_inputs() -> None:
    three = mc.MonitoringContract(("a", "b", "c"))
    assert three.response_columns == ("predicted_label", "probability_0", "probability_1", "probability_2")
    # The CSV response's layout, column for column.
    assert three.response_columns[contract.CSV_LABEL_COLUMN] == mc.RESPONSE_LABEL_COLUMN
    assert [three.response_columns[contract.csv_probability_column(i)] for i in range(3)] == [
        f"probability_{i}" for i in range(3)
    ]
    assert three.data_quality_header(["x 1", "y"]) == [*three.response_columns, "x 1", "y"]
    with pytest.raises(
        ValueError, match=r"\['predicted_label'\] appear twice .* allowed: input columns named"
    ):
        three.data_quality_header(["predicted_label", "y"])
    with pytest.raises(ValueError, match=r"\['y'\] appear twice"):
        three.data_quality_header(["y", "y"])
    with pytest.raises(ValueError, match=r"input_columns \[\]: allowed: one or more non-empty names"):
        three.data_quality_header([])
    for name in ("Probability_0", "probability-0", "_label", "0_label", ""):
        with pytest.raises(ValueError, match=r"allowed: lower-case words with '_' as the only separator"):
            mc.check_response_column_name(name)


# ---- importable at synth ------------------------------------------------------------------------------


def test_the_monitoring_contract_imports_only_the_standard_library_and_the_contract() -> None:
    tree = ast.parse((CODE_DIR / "monitoring_contract.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported - set(sys.stdlib_module_names) == {"__future__", "contract"} - set(
        sys.stdlib_module_names
    )
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in ("numpy", "torch", "jmespath", "botocore"))
    probe = (
        f"import sys; {blocked}; sys.path.insert(0, 'training_code'); import monitoring_contract as m; "
        "print(m.MonitoringContract(('a', 'b')).model_quality_endpoint_input())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'ProbabilityAttribute': '2', 'ProbabilityThresholdAttribute': 0.5}"
