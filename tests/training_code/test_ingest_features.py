"""ingest_features.py: PutRecord of preprocess.py's feature_store/ output, driven through botocore's Stubber.

The records are real: preprocess.py's output for scikit-learn's breast cancer dataset and the dev stage's
``feature_store`` config. botocore's own retries do not run under the Stubber (and are switched off on the
runtime client anyway), so every retry seen here is the module's.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ingest_features
import preprocess
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from common import run_entry_point
from ingest_features import FeatureStoreInputError, IngestionError

from tests.training_code.training_helpers import CODE_DIR, ROOT, Processed

GROUP = "dev-data-featuregroup"
REGION = "us-east-1"
FIRST_ID = "breast-cancer-sklearn-bundled-1"
PUT_RECORD_EVENT = "sagemaker-featurestore-runtime.PutRecord"


def dev_schema() -> dict[str, Any]:
    section = json.loads((ROOT / "cdk.json").read_text())["context"]["stages"]["dev"]["feature_store"]
    return {key: section[key] for key in ("record_identifier", "event_time_feature", "features")}


def make_records(raw: Path, output: Path) -> Path:
    schema = dev_schema()
    argument = ingest_features.schema_argument(
        schema["record_identifier"], schema["event_time_feature"], schema["features"]
    )
    assert (
        preprocess.main(
            ["--input_dir", str(raw), "--output_dir", str(output), "--feature_store_schema", argument]
        )
        == 0
    )
    return output / ingest_features.RECORDS_DIR


@pytest.fixture(scope="session")
def all_records(breast_cancer: Processed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_records(breast_cancer.raw, tmp_path_factory.mktemp("fs") / "processed")


def subset(source: Path, count: int, target: Path) -> Path:
    """The first ``count`` records of a feature_store/ directory (schema.json's record_count adjusted)."""
    target.mkdir(parents=True)
    schema = json.loads((source / "schema.json").read_text())
    schema["record_count"] = count
    (target / "schema.json").write_text(json.dumps(schema))
    lines = (source / "records.csv").read_text().splitlines(keepends=True)
    (target / "records.csv").write_text("".join(lines[: count + 1]))
    return target


def records_of(directory: Path) -> list[list[dict[str, str]]]:
    """The PutRecord ``Record`` each row of records.csv must become."""
    with (directory / "records.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    return [
        [{"FeatureName": n, "ValueAsString": v} for n, v in zip(rows[0], row, strict=True)]
        for row in rows[1:]
    ]


def description(**changes: Any) -> dict[str, Any]:
    """A DescribeFeatureGroup response for the dev schema (as the CDK construct creates the group)."""
    schema = dev_schema()
    response: dict[str, Any] = {
        "FeatureGroupArn": f"arn:aws:sagemaker:{REGION}:123456789012:feature-group/{GROUP}",
        "FeatureGroupName": GROUP,
        "RecordIdentifierFeatureName": schema["record_identifier"],
        "EventTimeFeatureName": schema["event_time_feature"],
        "FeatureDefinitions": [
            {"FeatureName": f["name"], "FeatureType": f["type"]} for f in schema["features"]
        ],
        "CreationTime": "2024-01-01T00:00:00Z",
        "FeatureGroupStatus": "Created",
        "NextToken": "",
    }
    response.update(changes)
    return response


class PutRecordMonitor:
    """Counts PutRecord calls in flight (peak included) and records their parameters, via client events.

    ``provide-client-params`` is the first event of a call, before the Stubber checks anything, so a call
    the Stubber would refuse (one more than expected) is recorded too.
    """

    def __init__(self, client: Any, hold_seconds: float = 0.0) -> None:
        self.hold_seconds = hold_seconds
        self.sent: list[dict[str, Any]] = []
        self.in_flight = self.peak = 0
        self._lock = threading.Lock()
        client.meta.events.register(f"provide-client-params.{PUT_RECORD_EVENT}", self._started)
        client.meta.events.register(f"after-call.{PUT_RECORD_EVENT}", self._finished)

    def _started(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.sent.append(json.loads(json.dumps(params)))
        time.sleep(self.hold_seconds)

    def _finished(self, **_: Any) -> None:
        with self._lock:
            self.in_flight -= 1


class Clients:
    """The job's own clients (create_clients) with a Stubber on each."""

    def __init__(self, max_workers: int = 8) -> None:
        self.sagemaker, self.runtime = ingest_features.create_clients(REGION, max_workers)
        self.control = Stubber(self.sagemaker)
        self.data = Stubber(self.runtime)
        self.monitor = PutRecordMonitor(self.runtime)
        self.sleeps: list[float] = []

    def expect_describe(self, response: dict[str, Any] | None = None) -> None:
        self.control.add_response(
            "describe_feature_group", response or description(), {"FeatureGroupName": GROUP}
        )

    def expect_put(self, record: list[dict[str, str]] | None = None) -> None:
        expected = None if record is None else {"FeatureGroupName": GROUP, "Record": record}
        self.data.add_response("put_record", {}, expected)

    def expect_error(self, code: str, status: int, record: list[dict[str, str]] | None = None) -> None:
        expected = None if record is None else {"FeatureGroupName": GROUP, "Record": record}
        self.data.add_client_error(
            "put_record", code, f"{code} from the stub", status, expected_params=expected
        )

    def ingest(self, input_dir: Path, **options: Any) -> ingest_features.IngestionReport:
        options.setdefault("sleep", self.sleeps.append)
        options.setdefault("jitter", lambda: 0.5)
        with self.control, self.data:
            return ingest_features.ingest(
                input_dir, GROUP, sagemaker_client=self.sagemaker, runtime_client=self.runtime, **options
            )

    def assert_all_used(self) -> None:
        self.control.assert_no_pending_responses()
        self.data.assert_no_pending_responses()


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and no shared config: nothing here may reach AWS (the Stubber answers)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def clients() -> Iterator[Clients]:
    yield Clients()


# ---- the shared contract -----------------------------------------------------------------------------


def test_contract_names_are_one_source_and_importable_without_numpy_torch_or_boto3() -> None:
    assert (ingest_features.RECORDS_DIR, ingest_features.RECORDS_FILE, ingest_features.SCHEMA_FILE) == (
        "feature_store",
        "records.csv",
        "schema.json",
    )
    assert preprocess.FEATURE_STORE_RECORDS == "feature_store/records.csv"
    assert preprocess.FEATURE_STORE_SCHEMA == "feature_store/schema.json"
    probe = (
        "import sys; import training_code.ingest_features as m; "
        "heavy = sorted({'numpy', 'torch', 'boto3', 'botocore'} & set(sys.modules)); "
        "assert not heavy, heavy; print(m.RECORDS_DIR)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "feature_store", result.stderr


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_schema_argument_is_the_stage_config_and_preprocess_accepts_it(stage: str) -> None:
    section = json.loads((ROOT / "cdk.json").read_text())["context"]["stages"][stage]["feature_store"]

    class Definition:  # attribute access, like the config's FeatureDefinition / the construct's Feature
        def __init__(self, name: str, type: str) -> None:
            self.name, self.type = name, type

    from_mappings = ingest_features.schema_argument(
        section["record_identifier"], section["event_time_feature"], section["features"]
    )
    from_objects = ingest_features.schema_argument(
        section["record_identifier"],
        section["event_time_feature"],
        [Definition(**f) for f in section["features"]],
    )
    assert from_mappings == from_objects
    assert json.loads(from_mappings) == {
        "record_identifier": section["record_identifier"],
        "event_time_feature": section["event_time_feature"],
        "features": section["features"],
    }
    assert preprocess.parse_args(["--feature_store_schema", from_mappings]).feature_store.names == [
        f["name"] for f in section["features"]
    ]
    with pytest.raises(ValueError, match=r"record_identifier 'nope' is not one of the features"):
        ingest_features.schema_argument("nope", section["event_time_feature"], section["features"])


def test_clients_do_not_multiply_retries(clients: Clients) -> None:
    runtime = clients.runtime.meta.config
    assert runtime.retries == {"mode": "standard", "total_max_attempts": 1}  # the module retries, alone
    assert runtime.max_pool_connections == 8  # one connection per worker
    assert clients.runtime.meta.region_name == REGION
    assert clients.sagemaker.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}


def test_backoff_is_exponential_with_bounded_jitter() -> None:
    base, cap = ingest_features.BACKOFF_BASE_SECONDS, ingest_features.BACKOFF_MAX_SECONDS
    for attempt in range(1, 12):
        ceiling = min(cap, base * 2 ** (attempt - 1))
        assert ingest_features.backoff_delay(attempt, 0.0) == ceiling / 2
        assert ceiling / 2 < ingest_features.backoff_delay(attempt, 0.999) < ceiling
    assert ingest_features.backoff_delay(30, 0.999) < cap


# ---- what is sent ----------------------------------------------------------------------------------------


def test_sends_exactly_the_records_of_records_csv(
    all_records: Path, tmp_path: Path, clients: Clients
) -> None:
    source = subset(all_records, 6, tmp_path / "fs")
    expected = records_of(source)
    first = dict((v["FeatureName"], v["ValueAsString"]) for v in expected[0])
    assert first["record_id"] == FIRST_ID
    assert first["event_time"] == "1704067200.0"  # Fractional event time: epoch seconds of created_at
    assert first["target"] == "0"  # the first row is malignant: class index 0
    assert [v["FeatureName"] for v in expected[0]] == [f["name"] for f in dev_schema()["features"]]
    assert all(isinstance(v["ValueAsString"], str) for record in expected for v in record)

    clients.expect_describe()
    for record in expected:
        clients.expect_put(record)  # the Stubber compares the whole request: names, order, strings
    report = clients.ingest(source, max_workers=1)
    clients.assert_all_used()
    assert (report.records, report.retries) == (6, 0)
    assert clients.sleeps == []


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("ServiceUnavailable", 503), ("InternalFailure", 500), ("SlowDown", 503)],
)
def test_transient_errors_are_retried_with_backoff_then_succeed(
    all_records: Path, tmp_path: Path, clients: Clients, code: str, status: int
) -> None:
    source = subset(all_records, 3, tmp_path / "fs")
    first, second, third = records_of(source)
    clients.expect_describe()
    clients.expect_put(first)
    clients.expect_error(code, status, second)
    clients.expect_error(code, status, second)
    clients.expect_put(second)
    clients.expect_put(third)
    report = clients.ingest(source, max_workers=1)
    clients.assert_all_used()
    assert (report.records, report.retries) == (3, 2)
    base = ingest_features.BACKOFF_BASE_SECONDS
    assert clients.sleeps == [0.75 * base, 1.5 * base]  # jitter 0.5: half the ceiling + a quarter of it


def test_connection_errors_are_retried(all_records: Path, tmp_path: Path, clients: Clients) -> None:
    source = subset(all_records, 2, tmp_path / "fs")
    failures = iter([True])

    def drop_connection(**_: Any) -> None:
        if next(failures, False):
            raise EndpointConnectionError(endpoint_url="https://featurestore-runtime.sagemaker")

    clients.runtime.meta.events.register(f"before-parameter-build.{PUT_RECORD_EVENT}", drop_connection)
    clients.expect_describe()
    for record in records_of(source):
        clients.expect_put(record)
    assert clients.ingest(source, max_workers=1).retries == 1
    clients.assert_all_used()


def test_exhausted_retries_fail_the_job_naming_the_record(
    all_records: Path, tmp_path: Path, clients: Clients
) -> None:
    source = subset(all_records, 4, tmp_path / "fs")
    first = records_of(source)[0]
    clients.expect_describe()
    for _ in range(3):
        clients.expect_error("ThrottlingException", 400, first)
    with pytest.raises(IngestionError) as raised:
        clients.ingest(source, max_workers=1, max_attempts=3)
    message = str(raised.value)
    assert f"record id {FIRST_ID!r}" in message and f"feature group {GROUP!r}" in message
    assert "ThrottlingException" in message and "still failing after 3 attempts" in message
    assert "0 of 4 records were written" in message
    clients.assert_all_used()  # exactly 3 attempts, and no other record was started
    assert len(clients.monitor.sent) == 3 and len(clients.sleeps) == 2


@pytest.mark.parametrize(("code", "status"), [("ValidationError", 400), ("AccessForbidden", 403)])
def test_non_retryable_errors_fail_at_once(
    all_records: Path, tmp_path: Path, clients: Clients, code: str, status: int
) -> None:
    source = subset(all_records, 5, tmp_path / "fs")
    first, second, *_ = records_of(source)
    clients.expect_describe()
    clients.expect_put(first)
    clients.expect_error(code, status, second)
    with pytest.raises(IngestionError) as raised:
        clients.ingest(source, max_workers=1)
    message = str(raised.value)
    assert "record id 'breast-cancer-sklearn-bundled-2'" in message
    assert f"{code}: {code} from the stub (not retryable)" in message
    assert "1 of 5 records were written" in message
    clients.assert_all_used()
    assert len(clients.monitor.sent) == 2 and clients.sleeps == []  # no retry, records 3-5 never sent


def test_concurrency_never_exceeds_max_workers(all_records: Path, tmp_path: Path) -> None:
    source = subset(all_records, 60, tmp_path / "fs")
    clients = Clients(max_workers=3)
    clients.monitor.hold_seconds = 0.005  # each call stays in flight a while, so calls overlap
    clients.expect_describe()
    for i in range(60 + 6):
        if i % 11 == 5:
            clients.expect_error("ThrottlingException", 400)  # retries must not add calls in flight
        else:
            clients.expect_put()
    report = clients.ingest(source, max_workers=3, sleep=lambda _: time.sleep(0.001))
    clients.assert_all_used()
    assert (report.records, report.retries) == (60, 6)
    assert 2 <= clients.monitor.peak <= 3  # concurrent, and never more than max_workers
    sent_ids = [record["Record"][0]["ValueAsString"] for record in clients.monitor.sent]
    assert len(sent_ids) == 66 and sorted(set(sent_ids)) == sorted(
        r[0]["ValueAsString"] for r in records_of(source)
    )


# ---- the feature group must match before anything is written --------------------------------------------


def _definitions(change: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> list[dict[str, str]]:
    return change(list(description()["FeatureDefinitions"]))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            description(
                FeatureDefinitions=_definitions(
                    lambda d: [
                        {**f, "FeatureType": "Integral"} if f["FeatureName"] == "mean_radius" else f
                        for f in d
                    ]
                )
            ),
            rf"feature 'mean_radius': feature group '{GROUP}' defines Integral, schema.json has Fractional",
        ),
        (
            description(
                FeatureDefinitions=_definitions(lambda d: [f for f in d if f["FeatureName"] != "mean_area"])
            ),
            rf"feature 'mean_area' \(Fractional\) of schema.json is not defined in feature group '{GROUP}'",
        ),
        (
            description(
                FeatureDefinitions=_definitions(
                    lambda d: [*d, {"FeatureName": "extra", "FeatureType": "String"}]
                )
            ),
            rf"feature group '{GROUP}' defines feature\(s\) \['extra'\] that schema.json lacks",
        ),
        (
            description(RecordIdentifierFeatureName="target"),
            rf"record identifier: feature group '{GROUP}' has 'target', schema.json has 'record_id'",
        ),
        (
            description(EventTimeFeatureName="mean_area"),
            rf"event-time feature: feature group '{GROUP}' has 'mean_area', schema.json has 'event_time'",
        ),
        (description(FeatureGroupStatus="Creating"), rf"feature group '{GROUP}' is Creating"),
    ],
)
def test_group_mismatch_fails_before_any_put_record(
    all_records: Path, tmp_path: Path, clients: Clients, response: dict[str, Any], message: str
) -> None:
    source = subset(all_records, 3, tmp_path / "fs")
    clients.expect_describe(response)
    with pytest.raises(FeatureStoreInputError, match=message):
        clients.ingest(source)
    clients.assert_all_used()
    assert clients.monitor.sent == []


def test_a_missing_group_is_named(all_records: Path, tmp_path: Path, clients: Clients) -> None:
    source = subset(all_records, 1, tmp_path / "fs")
    clients.control.add_client_error(
        "describe_feature_group", "ResourceNotFound", f"Resource Not Found: FeatureGroup {GROUP}", 400
    )
    message = rf"feature group '{GROUP}' cannot be described in {REGION} \(ResourceNotFound: "
    with pytest.raises(FeatureStoreInputError, match=message):
        clients.ingest(source)
    assert clients.monitor.sent == []


def test_all_pages_of_feature_definitions_are_compared(
    all_records: Path, tmp_path: Path, clients: Clients
) -> None:
    source = subset(all_records, 1, tmp_path / "fs")
    definitions = description()["FeatureDefinitions"]
    clients.expect_describe(description(FeatureDefinitions=definitions[:3], NextToken="page-2"))
    clients.control.add_response(
        "describe_feature_group",
        description(FeatureDefinitions=definitions[3:]),
        {"FeatureGroupName": GROUP, "NextToken": "page-2"},
    )
    clients.expect_put(records_of(source)[0])
    assert clients.ingest(source).records == 1
    clients.assert_all_used()


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            lambda lines: [lines[0].replace("mean_area", "mean_aera"), *lines[1:]],
            r"records.csv: header .* differs",
        ),
        (lambda lines: lines[:-1], r"records.csv holds 3 records but schema.json says record_count 4"),
        (
            lambda lines: [*lines[:2], lines[1], *lines[3:]],
            rf"record id '{FIRST_ID}' appears on lines 2 and 3",
        ),
        (
            lambda lines: [lines[0], lines[1].replace(",0\n", ",0.5\n"), *lines[2:]],
            r"records.csv line 2: 'target' \(Integral\) value '0.5' is not an integer",
        ),
        (
            lambda lines: [lines[0], lines[1].replace("1704067200.0", "2024-01-01"), *lines[2:]],
            r"records.csv line 2: 'event_time' \(Fractional\) value '2024-01-01' is not a number",
        ),
    ],
)
def test_bad_input_fails_before_any_call(
    all_records: Path,
    tmp_path: Path,
    clients: Clients,
    corrupt: Callable[[list[str]], list[str]],
    message: str,
) -> None:
    source = subset(all_records, 4, tmp_path / "fs")
    lines = (source / "records.csv").read_text().splitlines(keepends=True)
    (source / "records.csv").write_text("".join(corrupt(lines)))
    with pytest.raises(FeatureStoreInputError, match=message):
        clients.ingest(source)  # no DescribeFeatureGroup stubbed: it must not be called either


# ---- idempotence -------------------------------------------------------------------------------------------


def test_a_second_run_sends_identical_records(breast_cancer: Processed, tmp_path: Path) -> None:
    sent = []
    for attempt in ("first", "second"):
        source = make_records(breast_cancer.raw, tmp_path / attempt)
        clients = Clients(max_workers=4)
        clients.expect_describe()
        for _ in range(569):
            clients.expect_put()
        assert clients.ingest(source, max_workers=4).records == 569
        clients.assert_all_used()
        sent.append(sorted(clients.monitor.sent, key=lambda r: r["Record"][0]["ValueAsString"]))
        assert len({r["Record"][0]["ValueAsString"] for r in clients.monitor.sent}) == 569
    assert sent[0] == sent[1]  # same record ids, event times and values
    assert (tmp_path / "first" / "feature_store").exists()
    for name in ("records.csv", "schema.json"):
        assert (tmp_path / "first" / "feature_store" / name).read_bytes() == (
            tmp_path / "second" / "feature_store" / name
        ).read_bytes()


# ---- the job as SageMaker runs it ------------------------------------------------------------------------


def test_job_logs_progress_and_exits_0(
    all_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    source = subset(all_records, 5, tmp_path / "fs")
    clients = Clients(max_workers=2)
    clients.expect_describe()
    for record in records_of(source):
        clients.expect_put(record)
    monkeypatch.setattr(
        ingest_features, "create_clients", lambda region, workers: (clients.sagemaker, clients.runtime)
    )
    argv = [
        "--input_dir",
        str(source),
        "--feature_group_name",
        GROUP,
        "--max_workers",
        "1",
        "--log_every",
        "2",
    ]
    caplog.set_level(logging.INFO, logger="ingest_features")
    with clients.control, clients.data:
        assert run_entry_point(ingest_features.main, "processing", ingest_features.LOG, argv) == 0
    clients.assert_all_used()
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert [line.split(" records")[0] for line in progress] == [
        "progress: 2/5",
        "progress: 4/5",
        "progress: 5/5",
    ]


def test_job_failure_exits_1_with_the_record_id_in_the_failure_file(
    all_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = subset(all_records, 3, tmp_path / "fs")
    clients = Clients()
    clients.expect_describe()
    clients.expect_error("ValidationError", 400)
    monkeypatch.setattr(
        ingest_features, "create_clients", lambda region, workers: (clients.sagemaker, clients.runtime)
    )
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "sm-output"))
    argv = ["--input_dir", str(source), "--feature_group_name", GROUP, "--max_workers", "1"]
    with clients.control, clients.data:
        assert run_entry_point(ingest_features.main, "processing", ingest_features.LOG, argv) == 1
    failure = (tmp_path / "sm-output" / "message").read_text()
    assert failure.startswith(
        "IngestionError: PutRecord failed for record id 'breast-cancer-sklearn-bundled-1'"
    )
    assert "ValidationError" in failure


def test_job_schema_mismatch_exits_2(
    all_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = subset(all_records, 3, tmp_path / "fs")
    clients = Clients()
    clients.expect_describe(description(RecordIdentifierFeatureName="target"))
    monkeypatch.setattr(
        ingest_features, "create_clients", lambda region, workers: (clients.sagemaker, clients.runtime)
    )
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "sm-output"))
    with clients.control, clients.data:
        code = run_entry_point(
            ingest_features.main,
            "processing",
            ingest_features.LOG,
            ["--input_dir", str(source), "--feature_group_name", GROUP],
        )
    assert code == 2
    assert "record identifier: feature group" in (tmp_path / "sm-output" / "message").read_text()
    assert clients.monitor.sent == []


def test_script_exits_2_on_a_missing_input_without_calling_aws(tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)
    result = subprocess.run(
        [
            sys.executable,
            str(CODE_DIR / "ingest_features.py"),
            "--input_dir",
            str(tmp_path / "nothing"),
            "--feature_group_name",
            GROUP,
            "--region",
            REGION,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "SM_OUTPUT_DIR": str(tmp_path / "sm-output"),
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "schema.json not found" in (tmp_path / "sm-output" / "message").read_text()
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input_dir", "x"], "the following arguments are required: --feature_group_name"),
        (["--feature_group_name", GROUP, "--max_workers", "0"], "--max_workers must be >= 1, got 0"),
        (["--feature_group_name", GROUP, "--max_attempts", "many"], "argument --max_attempts"),
    ],
)
def test_bad_arguments_exit_2_with_the_message_for_sagemaker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "sm-output"))
    assert run_entry_point(ingest_features.main, "processing", ingest_features.LOG, argv) == 2
    assert message in (tmp_path / "sm-output" / "message").read_text()
