#!/usr/bin/env python3
"""Serving benchmark: the inference server (training_code/serve.py) under load on loopback, against floors.

Usage (from the repository root, with the project venv: ``source scripts/env.sh``)::

    python bench/serve_bench.py                  # ~1-3 minutes on 2 cores; prints the tables
    python bench/serve_bench.py --write          # also updates the block in bench/README.md "## Serving"
    python bench/serve_bench.py --rounds 5 --requests 2000 --json results.json

What it measures, side by side in one run, for single records and for batches of 100 records (CSV bodies of
scikit-learn's breast-cancer records, raw values as they arrive in the lake; JSON responses by default):

* **onnx**: the product, ``serve.py --backend onnx``;
* **noop**: the transport floor, ``serve.py --backend noop``: the same gunicorn/WSGI stack and the same
  request bodies, answered with a fixed response without parsing or a model;
* **torch**: the same model in eager PyTorch behind the same server (``--backend torch``, through
  inference.py's ``model_fn``: what a user of the stock framework container runs, on the same transport and
  the same parsing, so only the model runtime differs);
* **ort**: the compute floor, in this process: the bare ``onnxruntime`` session call on the already
  transformed features of the same records (``predictors.load("onnx", ...).session.run``).

Each server runs with the same worker count, threads and intra-op threads (``--workers``, default 1, and 1
intra-op thread: one worker is one core's worth of serving; concurrency 1, so a latency is one request's
round trip with no queueing, the decomposition the goals assume). Each round starts every server afresh
(one at a time: **cold start** = process start to the first 200 on ``GET /ping``), then runs
``--slices`` slices; in each slice every (backend, size) gets its share of the round's requests, the
backends in an order rotated every slice, so bursts of machine noise hit all of them alike. **Peak
memory** is the high-water mark of each worker's resident set (``VmHWM``) at the end of the round. A phase
(one backend's slice) is a closed loop of ``--concurrency`` clients (httpx, one keep-alive connection
each) that stops after its share of ``--requests`` (``--batch-requests``) or of ``--phase-seconds``,
whichever comes first, after an untimed warm-up. p50/p99 pool the latencies of all rounds; records/s is
records / wall time of the phases.

The load generator shares the machine's cores with the server. The report therefore gives, per phase, the
server's CPU time per request (its workers' user + system time, from ``/proc``) and the client's.

**Max sustainable RPS** (on by default; ``--no-sweep``): one onnx server as the container runs it (one
worker per core, ``--sweep-workers``), single records, a closed-loop concurrency sweep (``--sweep-levels``;
the clients in up to ``--sweep-client-processes`` processes, so Python's interpreter lock does not hold
them to one core); the maximum throughput at which p99 stays at or under ``--p99-bound-ms`` (default
100 ms: half the endpoint's p99 latency alarm of 200 ms) with no error. The client runs on the same cores
(both CPU shares are printed), so the figure is a lower bound for an instance whose cores serve only the
model; the server's CPU per request gives the CPU-bound ceiling too. The autoscaling target of the stage
config is ``max RPS x 0.5 x 60`` (AWS's formula for ``SageMakerVariantInvocationsPerInstance``), from the
lower bound.

Goals (ratios within this run): single record p99(onnx) <= 1.5 x p99(noop); batch of 100 p50(onnx) <=
1.5 x (p50(noop) + p50(ort)); onnx faster than torch in p50 and p99 at both sizes; onnx's cold start and
memory per worker at most half of torch's.

Benchmarks are not tests: nothing here asserts on time. Exit code 0 whether or not a goal is met; 1 if a
server fails to start or answers an error during a measured phase.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as dt
import gc
import importlib.metadata
import itertools
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CODE_DIR = ROOT / "training_code"
BENCH_DIR = ROOT / "bench"
sys.path.insert(0, str(CODE_DIR))

import contract  # noqa: E402
import predictors  # noqa: E402
import serve  # noqa: E402

SERVERS = ("onnx", "noop", "torch")
FLOOR = "ort"
SIZES = (1, 100)
DEFAULT_WORKDIR = BENCH_DIR / ".work" / "serve"
README = BENCH_DIR / "README.md"
SECTION_TITLE = "## Serving"
BLOCK_BEGIN = "<!-- serve-bench:begin -->"
BLOCK_END = "<!-- serve-bench:end -->"
GOAL_RATIO = 1.5
GOAL_HALF = 0.5
SAFETY_FACTOR = 0.5
PING_TIMEOUT_S = 120.0


# ---- records and the model -------------------------------------------------------------------------


def ensure_model(workdir: Path, model_dir: Path | None) -> Path:
    """The model to serve: ``--model-dir``, else the one trained earlier in ``workdir``, else a new one
    trained there by the training code (``local_run.py``: preprocess, train, evaluate; ~10 s)."""
    if model_dir is not None:
        return model_dir
    trained = workdir / "opt" / "ml" / "model"
    needed = (contract.ONNX_FILE, contract.MODEL_FILE, contract.PREPROCESSING_FILE)
    if not all((trained / name).is_file() for name in needed):
        print(f"training a breast-cancer model in {workdir} (training_code/local_run.py) ...")
        command = [sys.executable, str(CODE_DIR / "local_run.py"), "--dataset", "breast_cancer"]
        command += ["--workdir", str(workdir), "--no-progress"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=child_env())
    return trained


def breast_cancer_records(model_dir: Path) -> list[list[str]]:
    """scikit-learn's breast-cancer records, raw (as local_run.py writes the dataset to the lake), in the
    order of the model's input columns."""
    import local_run
    from features import read_preprocessing

    names = read_preprocessing(model_dir / contract.PREPROCESSING_FILE).transform.input_names
    with tempfile.TemporaryDirectory() as scratch:
        local_run.write_dataset("breast_cancer", Path(scratch))
        with (Path(scratch) / "data.csv").open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            missing = sorted(set(names) - set(header))
            if missing:
                raise SystemExit(f"error: the model's input columns {missing} are not breast-cancer columns")
            positions = [header.index(name) for name in names]
            return [[row[i] for i in positions] for row in reader]


def csv_body(rows: Sequence[Sequence[str]]) -> bytes:
    return ("\n".join(",".join(row) for row in rows) + "\n").encode()


def child_env() -> dict[str, str]:
    """The servers' environment: this one, with training_code/ importable (the torch backend imports
    inference.py from it) and one thread per numerical library."""
    env = dict(os.environ)
    env.update(PYTHONPATH=str(CODE_DIR), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop(serve.BATCH_ENV, None)
    return env


# ---- a server process ------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers of a master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a process's resident set (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """One serve.py process on loopback (its own session, its output in a log file)."""

    def __init__(self, backend: str, model_dir: Path, settings: Settings, log_dir: Path) -> None:
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{backend}-{self.port}.log"
        command = serve.command(
            model_dir,
            backend=backend,
            port=self.port,
            workers=settings.workers,
            threads=settings.threads,
            intra_op_threads=settings.intra_op_threads,
        )
        started = time.perf_counter()
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True
            )
        self.cold_start = self._wait_ready(started)
        self.workers = children(self.process.pid)

    def _wait_ready(self, started: float) -> float:
        """Seconds from the process start to the first 200 on /ping. A ping sent while the workers load
        waits in the listen backlog and is answered once a worker has its model."""
        deadline = started + PING_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.backend} server exited ({self.process.returncode}): {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}{contract.PING_PATH}", timeout=PING_TIMEOUT_S).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:  # not listening yet
                time.sleep(0.005)
        raise RuntimeError(
            f"{self.backend} server: no 200 on /ping within {PING_TIMEOUT_S} s: {self.log_path}"
        )

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.workers)

    def peak_rss_mib(self) -> float:
        """The largest worker's peak resident set."""
        return max(peak_rss_mib(pid) for pid in self.workers)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# ---- load phases -----------------------------------------------------------------------------------


@dataclass
class Phase:
    """The measured requests of one phase."""

    latencies: list[float]
    errors: int
    wall: float
    client_cpu: float
    server_cpu: float | None


@dataclass
class Series:
    """Everything measured for one (backend, size) over the rounds."""

    backend: str
    size: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    cold_starts: list[float] = field(default_factory=list)
    peak_rss: list[float] = field(default_factory=list)

    def add(self, phase: Phase) -> None:
        self.latencies += phase.latencies
        self.errors += phase.errors
        self.wall += phase.wall
        self.client_cpu += phase.client_cpu
        if phase.server_cpu is not None:
            self.server_cpu = (self.server_cpu or 0.0) + phase.server_cpu

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return float(np.percentile(self.latencies, q)) * 1e3

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def records_per_second(self) -> float:
        return self.size * self.requests / self.wall

    def per_request_ms(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds / self.requests * 1e3


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection in the client while it measures (the same for every backend)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def http_phase(
    server: Server, bodies: Sequence[bytes], settings: Settings, requests: int, seconds: float
) -> Phase:
    """A closed loop of ``settings.concurrency`` keep-alive clients posting ``bodies`` in turn."""
    headers = {"Content-Type": contract.CSV_CONTENT_TYPE, "Accept": settings.accept}
    clients = [
        httpx.Client(base_url=server.url, timeout=60.0, limits=httpx.Limits(max_keepalive_connections=1))
        for _ in range(settings.concurrency)
    ]
    try:

        def post(client: httpx.Client, index: int) -> bool:
            response = client.post(
                contract.INVOCATIONS_PATH, content=bodies[index % len(bodies)], headers=headers
            )
            return response.status_code == 200

        run_closed_loop(clients, post, settings.warmup, settings.phase_seconds)  # warm-up, not recorded
        server_cpu = server.cpu_seconds()
        phase = run_closed_loop(clients, post, requests, seconds)
        phase.server_cpu = server.cpu_seconds() - server_cpu
        return phase
    finally:
        for client in clients:
            client.close()


def run_closed_loop(
    clients: Sequence[httpx.Client], call: Callable[[httpx.Client, int], bool], requests: int, seconds: float
) -> Phase:
    """One thread per client; each sends its next request when the last one is answered, until
    ``requests`` were sent in all or ``seconds`` passed."""
    counter = itertools.count()
    results: list[list[tuple[float, bool]]] = [[] for _ in clients]
    deadline = time.perf_counter() + seconds

    def loop(client: httpx.Client, out: list[tuple[float, bool]]) -> None:
        while (index := next(counter)) < requests and time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                ok = call(client, index)
            except httpx.HTTPError:
                ok = False
            out.append((time.perf_counter() - started, ok))

    threads = [threading.Thread(target=loop, args=pair) for pair in zip(clients, results, strict=True)]
    with gc_paused():
        cpu, wall = time.process_time(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = [item for out in results for item in out]
    return Phase([t for t, ok in done if ok], sum(1 for _, ok in done if not ok), wall, cpu, None)


def ort_phase(session_call: Callable[[], Any], settings: Settings, requests: int, seconds: float) -> Phase:
    """The bare session call, back to back in this process (no HTTP, no parsing)."""
    for _ in range(settings.warmup):
        session_call()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    with gc_paused():
        cpu, wall = time.process_time(), time.perf_counter()
        while len(latencies) < requests and time.perf_counter() < deadline:
            started = time.perf_counter()
            session_call()
            latencies.append(time.perf_counter() - started)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Phase(latencies, 0, wall, cpu, None)


# ---- the run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    rounds: int
    slices: int
    requests: int
    batch_requests: int
    phase_seconds: float
    warmup: int
    concurrency: int
    workers: int
    threads: int
    intra_op_threads: int
    accept: str


@dataclass(frozen=True)
class SweepSettings:
    levels: tuple[int, ...]
    requests: int
    seconds: float
    workers: int
    p99_bound_ms: float
    client_processes: int


@dataclass
class SweepPoint:
    concurrency: int
    rps: float
    p50: float
    p99: float
    errors: int
    server_cores: float
    client_cores: float

    def sustainable(self, bound_ms: float) -> bool:
        return self.errors == 0 and self.p99 <= bound_ms


def rotated(items: Sequence[str], by: int) -> list[str]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def measure(
    model_dir: Path, records: list[list[str]], settings: Settings, log_dir: Path
) -> dict[tuple[str, int], Series]:
    """``settings.rounds`` rounds of: start every server (cold start), one phase per (backend, size) in a
    rotated order, peak memory, stop."""
    series = {(b, s): Series(b, s) for b in (*SERVERS, FLOOR) for s in SIZES}
    singles = [csv_body([row]) for row in records[:100]]
    batch = [csv_body(records[:100])]
    floor = predictors.load("onnx", model_dir, settings.intra_op_threads)
    assert isinstance(floor, predictors.OnnxBackend)
    floor_calls = {}
    for size, rows in ((1, records[:1]), (100, records[:100])):
        features = floor.features(rows)  # transformed once, outside the timing
        floor_calls[size] = _session_call(floor, features)
    for round_index in range(settings.rounds):
        order = rotated(SERVERS, round_index)
        servers: dict[str, Server] = {}
        try:
            for backend in order:
                servers[backend] = Server(backend, model_dir, settings, log_dir)
                print(f"round {round_index + 1}: {backend} ready in {servers[backend].cold_start:.2f} s")
            for slice_index, size in itertools.product(range(settings.slices), SIZES):
                requests = (settings.requests if size == 1 else settings.batch_requests) // settings.slices
                seconds = settings.phase_seconds / settings.slices
                for backend in rotated((*SERVERS, FLOOR), round_index + slice_index + size):
                    if backend == FLOOR:
                        phase = ort_phase(floor_calls[size], settings, requests, seconds)
                    else:
                        bodies = singles if size == 1 else batch
                        phase = http_phase(servers[backend], bodies, settings, requests, seconds)
                    series[backend, size].add(phase)
                print(
                    f"round {round_index + 1}, slice {slice_index + 1}, {size} record(s): "
                    + ", ".join(f"{b} p50 {series[b, size].p50:.3f} ms" for b in (*SERVERS, FLOOR))
                )
            for backend, server in servers.items():
                for size in SIZES:
                    series[backend, size].cold_starts.append(server.cold_start)
                    series[backend, size].peak_rss.append(server.peak_rss_mib())
        finally:
            for server in servers.values():
                server.stop()
    return series


def _session_call(backend: predictors.OnnxBackend, features: np.ndarray) -> Callable[[], Any]:
    session, name = backend.session, backend.input_name
    outputs = [predictors.ONNX_PROBABILITIES]
    feeds = {name: features}
    return lambda: session.run(outputs, feeds)


def sweep(
    model_dir: Path,
    records: list[list[str]],
    settings: Settings,
    sweep_settings: SweepSettings,
    log_dir: Path,
) -> list[SweepPoint]:
    """Single records against one onnx server at rising concurrency; stops at the first level whose p99
    is over the bound (higher levels only queue more). The clients run in up to
    ``sweep_settings.client_processes`` processes (threads within each), so the client is not held to one
    core by Python's global interpreter lock."""
    server = Server("onnx", model_dir, dataclasses.replace(settings, workers=sweep_settings.workers), log_dir)
    bodies = [csv_body([row]) for row in records[:100]]
    points = []
    try:
        for level in sweep_settings.levels:
            point = sweep_level(server, bodies, settings, sweep_settings, level)
            points.append(point)
            print(
                f"sweep: concurrency {level}: {point.rps:.0f} req/s, p50 {point.p50:.2f} ms, "
                f"p99 {point.p99:.2f} ms, errors {point.errors}, server {point.server_cores:.2f} cores, "
                f"client {point.client_cores:.2f} cores"
            )
            if not point.sustainable(sweep_settings.p99_bound_ms):
                break
    finally:
        server.stop()
    return points


def sweep_level(
    server: Server, bodies: list[bytes], settings: Settings, sweep_settings: SweepSettings, level: int
) -> SweepPoint:
    """One level: ``level`` connections spread over client processes that start together."""
    processes = min(level, sweep_settings.client_processes)
    shares = [level // processes + (1 if i < level % processes else 0) for i in range(processes)]
    requests = [sweep_settings.requests * share // level for share in shares]
    start_at = time.time() + 1.0 + 0.2 * processes  # after every process has forked and warmed up
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(
                client_process,
                server.url,
                bodies,
                dataclasses.replace(settings, concurrency=share),
                count,
                sweep_settings.seconds,
                start_at,
            )
            for share, count in zip(shares, requests, strict=True)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        server_cpu = server.cpu_seconds()
        results = [future.result() for future in futures]
        server_wall = time.time() - start_at
        server_cpu = server.cpu_seconds() - server_cpu
    wall = max(r[2] for r in results)
    latencies = [t for r in results for t in r[0]]
    merged = Series("onnx", 1, latencies=latencies)
    return SweepPoint(
        level,
        len(latencies) / wall,
        merged.p50,
        merged.p99,
        sum(r[1] for r in results),
        server_cpu / server_wall,
        sum(r[3] for r in results) / wall,
    )


def client_process(
    url: str, bodies: list[bytes], settings: Settings, requests: int, seconds: float, start_at: float
) -> tuple[list[float], int, float, float]:
    """A sweep client (in its own process): warm up, wait for ``start_at``, then a closed loop of
    ``settings.concurrency`` connections. Returns (latencies, errors, wall, CPU seconds)."""
    headers = {"Content-Type": contract.CSV_CONTENT_TYPE, "Accept": settings.accept}
    clients = [
        httpx.Client(base_url=url, timeout=60.0, limits=httpx.Limits(max_keepalive_connections=1))
        for _ in range(settings.concurrency)
    ]

    def post(client: httpx.Client, index: int) -> bool:
        response = client.post(
            contract.INVOCATIONS_PATH, content=bodies[index % len(bodies)], headers=headers
        )
        return response.status_code == 200

    try:
        run_closed_loop(clients, post, settings.warmup, seconds)
        time.sleep(max(0.0, start_at - time.time()))
        phase = run_closed_loop(clients, post, requests, seconds)
    finally:
        for client in clients:
            client.close()
    return phase.latencies, phase.errors, phase.wall, phase.client_cpu


# ---- the report ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def results_table(series: dict[tuple[str, int], Series]) -> str:
    lines = [
        "| backend | records/request | requests | p50 (ms) | p99 (ms) | records/s | server CPU/request (ms) "
        "| client CPU/request (ms) | cold start (s) | peak RSS/worker (MiB) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        for backend in (*SERVERS, FLOOR):
            s = series[backend, size]
            lines.append(
                f"| {backend} | {size} | {s.requests} | {s.p50:.3f} | {s.p99:.3f} "
                f"| {s.records_per_second:,.0f} "
                f"| {fmt(s.per_request_ms(s.server_cpu), 3)} | {fmt(s.per_request_ms(s.client_cpu), 3)} "
                f"| {fmt(median(s.cold_starts))} | {fmt(median(s.peak_rss), 1)} | {s.errors} |"
            )
    return "\n".join(lines)


def goals(series: dict[tuple[str, int], Series]) -> list[tuple[str, bool]]:
    """(description with the numbers, met) for each goal of the issue."""

    def s(backend: str, size: int) -> Series:
        return series[backend, size]

    onnx1, noop1 = s("onnx", 1).p99, s("noop", 1).p99
    onnx100, floor100 = s("onnx", 100).p50, s("noop", 100).p50 + s(FLOOR, 100).p50
    results = [
        (
            f"single record: p99(onnx) {onnx1:.3f} ms <= 1.5 x p99(noop) {noop1:.3f} ms "
            f"= {GOAL_RATIO * noop1:.3f} ms (ratio {onnx1 / noop1:.2f})",
            onnx1 <= GOAL_RATIO * noop1,
        ),
        (
            f"batch of 100: p50(onnx) {onnx100:.3f} ms <= 1.5 x (p50(noop) {s('noop', 100).p50:.3f} "
            f"+ p50(ort) {s(FLOOR, 100).p50:.3f}) ms = {GOAL_RATIO * floor100:.3f} ms "
            f"(ratio {onnx100 / floor100:.2f})",
            onnx100 <= GOAL_RATIO * floor100,
        ),
    ]
    for size in SIZES:
        onnx, torch = s("onnx", size), s("torch", size)
        results.append(
            (
                f"{size} record(s): onnx faster than torch: p50 {onnx.p50:.3f} vs {torch.p50:.3f} ms, "
                f"p99 {onnx.p99:.3f} vs {torch.p99:.3f} ms",
                onnx.p50 < torch.p50 and onnx.p99 < torch.p99,
            )
        )
    onnx_start, torch_start = median(s("onnx", 1).cold_starts), median(s("torch", 1).cold_starts)
    onnx_rss, torch_rss = median(s("onnx", 1).peak_rss), median(s("torch", 1).peak_rss)
    assert onnx_start and torch_start and onnx_rss and torch_rss
    results += [
        (
            f"cold start: onnx {onnx_start:.2f} s <= 0.5 x torch {torch_start:.2f} s "
            f"(ratio {onnx_start / torch_start:.2f})",
            onnx_start <= GOAL_HALF * torch_start,
        ),
        (
            f"peak memory per worker: onnx {onnx_rss:.1f} MiB <= 0.5 x torch {torch_rss:.1f} MiB "
            f"(ratio {onnx_rss / torch_rss:.2f})",
            onnx_rss <= GOAL_HALF * torch_rss,
        ),
    ]
    return results


def sweep_summary(points: list[SweepPoint], sweep_settings: SweepSettings) -> tuple[str, dict[str, Any]]:
    lines = [
        "| concurrency | requests/s | p50 (ms) | p99 (ms) | errors | server CPU (cores) "
        "| client CPU (cores) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {p.concurrency} | {p.rps:,.0f} | {p.p50:.2f} | {p.p99:.2f} | {p.errors} | {p.server_cores:.2f} "
        f"| {p.client_cores:.2f} |"
        for p in points
    ]
    ok = [p for p in points if p.sustainable(sweep_settings.p99_bound_ms)]
    cores = serve.cpu_count()
    if not ok:
        return "\n".join([*lines, "", "No level kept p99 under the bound."]), {}
    best = max(ok, key=lambda p: p.rps)
    target = best.rps * SAFETY_FACTOR * 60
    ceiling = best.rps * cores / best.server_cores
    summary = {
        "max_rps_per_instance": round(best.rps, 1),
        "at_concurrency": best.concurrency,
        "p99_ms": round(best.p99, 2),
        "server_workers": sweep_settings.workers,
        "server_cores_used": round(best.server_cores, 2),
        "client_cores_used": round(best.client_cores, 2),
        "cores": cores,
        "cpu_bound_ceiling_rps": round(ceiling, 1),
        "target_invocations_per_instance_per_minute": round(target, 1),
    }
    lines += [
        "",
        f"Max sustainable RPS of one server of {sweep_settings.workers} worker(s) on {cores} cores: "
        f"**{best.rps:,.0f} requests/s** (single records, concurrency {best.concurrency}, p99 "
        f"{best.p99:.2f} ms <= {sweep_settings.p99_bound_ms:g} ms, no errors). The client shared the cores: "
        f"the server used {best.server_cores:.2f} and the client {best.client_cores:.2f} of {cores} cores, "
        "so this is a lower bound for an instance whose cores serve only the model; at the server's CPU "
        f"cost per request the {cores} cores would serve at most ~{ceiling:,.0f} requests/s.  ",
        f"Autoscaling target (AWS: max RPS x {SAFETY_FACTOR} x 60, from the measured lower bound): "
        f"{best.rps:,.0f} x {SAFETY_FACTOR} x 60 = **{target:,.0f}** invocations per instance per minute.",
    ]
    return "\n".join(lines), summary


def machine_info() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    packages = ("onnxruntime", "torch", "numpy", "gunicorn", "httpx")
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in packages)
    return {
        "CPU": f"{model}, {serve.cpu_count()} cores ({platform.machine()})",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Packages": versions,
    }


def report(
    series: dict[tuple[str, int], Series],
    sweep_text: str,
    settings: Settings,
    argv: Sequence[str],
    info: dict[str, str],
) -> str:
    verdicts = goals(series)
    lines = [
        "```",
        "python bench/serve_bench.py " + " ".join(argv),
        "```",
        "",
        f"{settings.rounds} rounds of {settings.slices} interleaved slices; per round and backend at most "
        f"{settings.requests} single-record / {settings.batch_requests} batch requests or "
        f"{settings.phase_seconds:g} s; concurrency "
        f"{settings.concurrency}; {settings.workers} worker(s) x {settings.threads} threads, "
        f"{settings.intra_op_threads} intra-op thread(s) per backend; CSV requests, "
        f"{settings.accept} responses.",
        "",
        results_table(series),
        "",
        "Goals:",
        "",
        *(f"- **{'PASS' if met else 'FAIL'}** {text}" for text, met in verdicts),
    ]
    if sweep_text:
        lines += ["", "Max sustainable RPS (onnx, single records):", "", sweep_text]
    lines += ["", *(f"- {key}: {value}" for key, value in info.items())]
    return "\n".join(lines)


def write_readme(block: str) -> None:
    """Replace the generated block of the Serving section of bench/README.md (the rest is kept)."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    generated = f"{BLOCK_BEGIN}\n{block}\n{BLOCK_END}"
    if BLOCK_BEGIN in text and BLOCK_END in text:
        before, rest = text.split(BLOCK_BEGIN, 1)
        text = before + generated + rest.split(BLOCK_END, 1)[1]
    elif SECTION_TITLE in text:
        head, tail = text.split(SECTION_TITLE, 1)
        title_line, _, body = tail.partition("\n")
        text = f"{head}{SECTION_TITLE}{title_line}\n\n{generated}\n{body}"
    else:
        text = f"{text.rstrip()}\n\n{SECTION_TITLE}\n\n{generated}\n"
    temporary = README.with_name(f".{README.name}.tmp")
    temporary.write_text(text)
    temporary.replace(README)


# ---- command line ----------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}; allowed: a whole number >= 1")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--model-dir", type=Path, help="a model as train.py writes it (default: train one in --workdir)")
    add("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where the model is trained, logs go")
    add("--rounds", type=positive_int, default=3, help="rounds of (cold start, every phase) (default 3)")
    add("--slices", type=positive_int, default=10, help="interleaved slices of each round's phases (10)")
    add("--requests", type=positive_int, default=2000, help="single-record requests per round (2000)")
    add("--batch-requests", type=positive_int, default=600, help="batch requests per round (600)")
    add("--phase-seconds", type=float, default=8.0, help="time bound of a phase, all slices (8 s)")
    add("--warmup", type=positive_int, default=10, help="untimed requests before each slice (10)")
    add("--concurrency", type=positive_int, default=1, help="clients (connections) in a phase (1)")
    add("--workers", type=positive_int, default=1, help="workers of every server (1)")
    add("--threads", type=positive_int, default=serve.DEFAULT_THREADS, help="threads per worker")
    add("--intra-op-threads", type=positive_int, default=1, help="model threads per worker (1)")
    add("--accept", default=contract.JSON_CONTENT_TYPE, choices=contract.RESPONSE_CONTENT_TYPES)
    add("--no-sweep", dest="sweep", action="store_false", help="skip the max-RPS sweep")
    add("--sweep-levels", default="1,2,4,8,16,32,64", help="concurrency levels of the sweep")
    add("--sweep-requests", type=positive_int, default=5000, help="requests per sweep level (5000)")
    add("--sweep-seconds", type=float, default=4.0, help="time bound of a sweep level (4 s)")
    add(
        "--sweep-workers",
        type=positive_int,
        default=serve.cpu_count(),
        help="workers of the swept server (default: one per core, as in the container)",
    )
    add("--sweep-client-processes", type=positive_int, default=4, help="client processes of the sweep (4)")
    add("--p99-bound-ms", type=float, default=100.0, help="p99 bound of a sustainable level (100 ms)")
    add("--write", action="store_true", help=f"update the generated block of '{SECTION_TITLE}' in README")
    add("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    try:
        args.levels = tuple(positive_int(level) for level in args.sweep_levels.split(","))
    except (ValueError, argparse.ArgumentTypeError):
        parser.error(f"--sweep-levels {args.sweep_levels!r}; allowed: whole numbers >= 1, comma-separated")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # the in-process floor, as in the servers
    settings = Settings(
        args.rounds,
        args.slices,
        args.requests,
        args.batch_requests,
        args.phase_seconds,
        args.warmup,
        args.concurrency,
        args.workers,
        args.threads,
        args.intra_op_threads,
        args.accept,
    )
    sweep_settings = SweepSettings(
        args.levels,
        args.sweep_requests,
        args.sweep_seconds,
        args.sweep_workers,
        args.p99_bound_ms,
        args.sweep_client_processes,
    )
    workdir: Path = args.workdir.resolve()
    log_dir = workdir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    model_dir = ensure_model(workdir, args.model_dir)
    records = breast_cancer_records(model_dir)
    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    try:
        series = measure(model_dir, records, settings, log_dir)
        points = sweep(model_dir, records, settings, sweep_settings, log_dir) if args.sweep else []
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    load_end = os.getloadavg()
    sweep_text, sweep_result = sweep_summary(points, sweep_settings) if points else ("", {})
    info = {
        "Date": started.strftime("%Y-%m-%d %H:%M UTC"),
        **machine_info(),
        "Load average (1/5/15 min) at start / end": (
            " / ".join(f"{v:.2f}" for v in load_start) + "; " + " / ".join(f"{v:.2f}" for v in load_end)
        ),
    }
    text = report(series, sweep_text, settings, argv, info)
    print()
    print(text)
    failed = sum(s.errors for s in series.values())
    if args.write:
        write_readme(text)
        print(f"\nwrote the generated block of the '{SECTION_TITLE}' section of {README}")
    if args.json:
        results = {
            "settings": settings.__dict__,
            "series": {
                f"{b} x{s}": {
                    "requests": v.requests,
                    "p50_ms": v.p50,
                    "p99_ms": v.p99,
                    "records_per_second": v.records_per_second,
                    "server_cpu_ms_per_request": v.per_request_ms(v.server_cpu),
                    "client_cpu_ms_per_request": v.per_request_ms(v.client_cpu),
                    "cold_start_s": v.cold_starts,
                    "peak_rss_mib": v.peak_rss,
                    "errors": v.errors,
                }
                for (b, s), v in series.items()
            },
            "goals": [{"goal": text, "met": met} for text, met in goals(series)],
            "sweep": [p.__dict__ for p in points],
            "max_rps": sweep_result,
            "machine": info,
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
