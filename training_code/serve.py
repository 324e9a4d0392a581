"""The inference server of the serving image: SageMaker's real-time (and batch transform) container contract.

Started as ``docker run <image> serve`` (the image's ENTRYPOINT runs this file; SageMaker passes ``serve``)
or locally as ``python training_code/serve.py serve --model-dir DIR`` (``scripts/serve.sh``):

* HTTP on ``0.0.0.0:8080``, or on ``SAGEMAKER_BIND_TO_PORT`` when set (``--host``/``--port`` override);
* ``GET /ping``: 200 once the model is loaded. Each worker process loads the model (and proves it with
  one prediction) *before* it accepts a connection, so no ping is ever answered by a worker without a
  model; a ping sent while the workers load waits in the listen backlog. Pings never wait for inference
  (see "Transport" below);
* ``POST /invocations``: see :mod:`payload` for the request and response formats, the limits and the
  refusals (4xx with a JSON body naming the reason);
* ``GET /execution-parameters`` (batch transform): ``MaxConcurrentTransforms`` = the worker count,
  ``BatchStrategy`` ``MULTI_RECORD``, ``MaxPayloadInMB`` 6;
* workers: ``SAGEMAKER_MODEL_SERVER_WORKERS`` (``--workers``), default one per CPU; each worker computes one
  request at a time with ``cpus // workers`` intra-op threads (``--intra-op-threads``);
* batch transform: SageMaker sets ``SAGEMAKER_BATCH=true`` in a transform job's container. There a
  request holds as many records as fit in ``MaxPayloadInMB`` (``SplitType`` Line, ``BatchStrategy``
  MultiRecord: ~30 000 breast-cancer records in 6 MB), so the record limit (:data:`payload.MAX_ROWS`,
  which bounds a real-time request's work) is off; the 6 MB body limit still bounds every request;
* SIGTERM: the listening socket closes, in-flight requests finish (up to :data:`GRACEFUL_TIMEOUT_S`), the
  process exits 0.

Transport: gunicorn (pinned in requirements-serve.txt) with its ``gthread`` worker, running the small WSGI
app below. gunicorn is a mature pre-fork server: it supervises worker processes (a crashed worker is
replaced), handles SIGTERM gracefully and parses HTTP/1.1 with strict limits (request line, header
count and size, chunked encoding, request smuggling). With ``gthread`` each connection is served by one
of the worker's threads, so a slow client holds a thread, not the worker, and idle keep-alive connections
wait in the worker's poller, not in a thread. Inference runs under a per-worker lock (one computation per
worker at a time: the workers x intra-op threads never oversubscribe the CPUs, and the other threads stay
free to read bodies and answer pings). Budgets below SageMaker's 60 s invocation limit: the body must
arrive within :data:`BODY_TIMEOUT_S` (else 408), a request waits at most :data:`QUEUE_TIMEOUT_S` for its
worker's model (else 503), and the computation itself is bounded by the 6 MB / 10 000-record limits.

Limits checked before the work they guard: the content type (415) and the accept type (406) before the
body is read; the body size from ``Content-Length`` before a byte of it is read (413; a chunked body is
read only until it passes the limit); the record count while parsing (:mod:`payload`). No input
produces a 500: a 500 is a bug in this server, logged with its traceback.

Backends (``--backend``, :mod:`predictors`): ``onnx`` (the product), and two benchmark references on the
same transport: ``torch`` (eager PyTorch via inference.py; imported lazily and absent from the image) and
``noop`` (a fixed response without parsing: the transport floor). From Python, :func:`command` builds the
start command (e.g. for bench/)::

    subprocess.Popen(serve.command(model_dir, backend="noop", port=8081, workers=1))
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import contract
import payload

if TYPE_CHECKING:
    from predictors import Backend

LOG = logging.getLogger("serve")

BACKENDS = ("onnx", "torch", "noop")
#: The files each backend loads from the model dir (checked before the server binds its port).
REQUIRED_FILES = {
    "onnx": (contract.ONNX_FILE, contract.PREPROCESSING_FILE),
    "torch": (contract.MODEL_FILE, contract.PREPROCESSING_FILE),
    "noop": (contract.PREPROCESSING_FILE,),
}
#: The container contract: SageMaker connects from outside the container.
DEFAULT_HOST = "0.0.0.0"
#: gthread threads per worker: they read bodies and answer pings while one of them computes.
DEFAULT_THREADS = 8
#: The whole body must arrive within this many seconds (else 408); SageMaker's limit is 60 s in all.
BODY_TIMEOUT_S = 20.0
#: A request waits at most this long for its worker's model (else 503).
QUEUE_TIMEOUT_S = 30.0
#: A response must be taken by the client within this many seconds (per send).
SEND_TIMEOUT_S = 20.0
#: After SIGTERM, in-flight requests have this long to finish.
GRACEFUL_TIMEOUT_S = 30
#: gunicorn kills a worker whose main loop is silent this long. The gthread loop beats every second while
#: serving, so in practice this bounds a booting worker's model load (SageMaker allows a container minutes
#: to pass its first ping).
WORKER_TIMEOUT_S = 120
#: Idle keep-alive connections stay open this long: SageMaker's front end pools its connections to the
#: container, so a short value would make it reuse connections the server is closing.
KEEPALIVE_S = 60
READ_STEP = 64 * 1024
#: Set for the workers unless already set (see main); the Dockerfile sets the same.
RUNTIME_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1"}
#: SageMaker sets this to ``true`` in batch transform containers (not in real-time endpoints): the record
#: limit per request is off there (the body limit stays).
BATCH_ENV = "SAGEMAKER_BATCH"
JSON_TYPE = contract.JSON_CONTENT_TYPE


class HttpError(Exception):
    """An error response with its status and reason (what :class:`payload.BadRequest` is for the body)."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def error(cls, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
        return cls(status, payload.error_body(status, message), JSON_TYPE, list(headers))


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class App:
    """The WSGI application of one worker: routes, limits, the body read and the inference lock."""

    def __init__(
        self,
        backend: Backend,
        *,
        workers: int,
        body_timeout: float = BODY_TIMEOUT_S,
        queue_timeout: float = QUEUE_TIMEOUT_S,
    ) -> None:
        self.backend = backend
        self.body_timeout = body_timeout
        self.queue_timeout = queue_timeout
        self._lock = threading.Lock()
        self._execution_parameters = json.dumps(
            {
                "MaxConcurrentTransforms": workers,
                "BatchStrategy": contract.EXECUTION_BATCH_STRATEGY,
                "MaxPayloadInMB": contract.MAX_PAYLOAD_MB,
            }
        ).encode()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self.route(environ)
        except Exception:  # a bug of this server, never the client's input: log it, keep the worker
            LOG.exception("internal error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            response = Response.error(500, "internal server error (logged)")
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
        ]
        start_response(f"{response.status} {payload.PHRASES.get(response.status, 'OK')}", headers)
        return [response.body] if environ.get("REQUEST_METHOD") != "HEAD" else []

    def route(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        allowed = {
            contract.PING_PATH: ("GET", "HEAD"),
            contract.INVOCATIONS_PATH: ("POST",),
            contract.EXECUTION_PARAMETERS_PATH: ("GET", "HEAD"),
        }.get(path)
        if allowed is None:
            return Response.error(404, f"path {path!r}; allowed: {', '.join(_PATHS)}")
        if method not in allowed:
            return Response.error(
                405, f"{method} {path}; allowed: {', '.join(allowed)}", [("Allow", ", ".join(allowed))]
            )
        if path == contract.PING_PATH:
            return Response(200, b"", "text/plain")  # the app exists only once the model is loaded
        if path == contract.EXECUTION_PARAMETERS_PATH:
            return Response(200, self._execution_parameters, JSON_TYPE)
        try:
            return self.invocations(environ)
        except payload.BadRequest as error:
            LOG.info("%d on %s: %s", error.status_code, path, error.message[:300])
            return Response.error(error.status_code, error.message)
        except HttpError as error:
            LOG.info("%d on %s: %s", error.status, path, error.message[:300])
            return Response.error(error.status, error.message, error.headers)

    def invocations(self, environ: dict[str, Any]) -> Response:
        content_type = environ.get("CONTENT_TYPE")
        payload.request_type(content_type)  # 415 before the body is read
        response_type = payload.response_type(environ.get("HTTP_ACCEPT"))  # 406 likewise
        body = self.read_body(environ)
        if not self._lock.acquire(timeout=self.queue_timeout):
            raise HttpError(
                503,
                f"the worker was busy for {self.queue_timeout:g} s; retry (or add instances)",
                [("Retry-After", "1")],
            )
        try:
            out = self.backend.invoke(body, content_type, response_type)
        finally:
            self._lock.release()
        return Response(200, out, response_type)

    def read_body(self, environ: dict[str, Any]) -> bytes:
        """The body, at most :data:`payload.MAX_BODY_BYTES`: 413 from Content-Length before reading; a body
        without one (chunked) is read until it ends or passes the limit (this asks for the limit + 1 byte;
        gunicorn may have buffered one read step more); 408 when it does not arrive in time."""
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared:
            length = int(declared)  # the server refused a malformed Content-Length already (400)
            payload.check_body_size(length)
            limit = length
        else:
            limit = payload.MAX_BODY_BYTES + 1
        stream = environ["wsgi.input"]
        connection = environ.get("gunicorn.socket")  # to bound each read in time (absent elsewhere)
        deadline = time.monotonic() + self.body_timeout
        chunks: list[bytes] = []
        received = 0
        try:
            while received < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                if connection is not None:
                    connection.settimeout(remaining)
                chunk = stream.read(min(READ_STEP, limit - received))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        except TimeoutError:
            raise HttpError(408, f"the request body did not arrive within {self.body_timeout:g} s") from None
        except Exception as error:  # a malformed chunk, a client that went away, ...
            raise HttpError(
                400, f"the request body could not be read: {error or type(error).__name__}"
            ) from None
        finally:
            if connection is not None:
                connection.settimeout(SEND_TIMEOUT_S)  # the response's sends; gunicorn resets it after
        if declared and received < limit:
            raise HttpError(400, f"the request body ended after {received} of {limit} bytes")
        payload.check_body_size(received)  # a chunked body over the limit
        return b"".join(chunks)


_PATHS = (contract.PING_PATH, contract.INVOCATIONS_PATH, contract.EXECUTION_PARAMETERS_PATH)


# ---- settings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    backend: str
    host: str
    port: int
    workers: int
    threads: int
    intra_op_threads: int
    log_level: str = "info"
    access_log: bool = False
    #: In a batch transform job (``SAGEMAKER_BATCH=true``): no record limit per request.
    batch: bool = False

    @property
    def max_rows(self) -> int | None:
        """Records per request: :data:`payload.MAX_ROWS`, or no limit in batch transform."""
        return None if self.batch else payload.MAX_ROWS


def cpu_count() -> int:
    """The CPUs this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_intra_op_threads(workers: int) -> int:
    """Model threads per worker: the CPUs divided among the workers (at least one)."""
    return max(1, cpu_count() // max(1, workers))


def _whole_number(text: str, where: str, minimum: int, maximum: int | None = None) -> int:
    allowed = f"a whole number >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{where}={text!r}; allowed: {allowed}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{where}={text!r}; allowed: {allowed}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serve.py",
        description="The model server of the SageMaker serving image (real-time and batch transform).",
    )
    parser.add_argument("command", choices=[contract.SERVE_COMMAND], help="what SageMaker passes: serve")
    parser.add_argument("--model-dir", type=Path, default=Path(contract.MODEL_DIR), help="the unpacked model")
    parser.add_argument(
        "--backend", choices=BACKENDS, default="onnx", help="onnx (the product) or a reference"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind")
    parser.add_argument("--port", help=f"default: ${contract.SERVING_PORT_ENV}, else {contract.SERVING_PORT}")
    parser.add_argument("--workers", help=f"default: ${contract.SERVING_WORKERS_ENV}, else one per CPU")
    parser.add_argument("--threads", default=str(DEFAULT_THREADS), help="connection threads per worker")
    parser.add_argument("--intra-op-threads", help="model threads per worker; default: CPUs / workers")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--access-log", action="store_true", help="log every request (stdout)")
    return parser


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the command line, then the SageMaker environment, then the defaults."""
    environ = os.environ if environ is None else environ
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        port_text = args.port or environ.get(contract.SERVING_PORT_ENV) or str(contract.SERVING_PORT)
        port_where = "--port" if args.port else contract.SERVING_PORT_ENV
        port = _whole_number(port_text, port_where, 1, 65535)
        workers_text = args.workers or environ.get(contract.SERVING_WORKERS_ENV) or str(cpu_count())
        workers_where = "--workers" if args.workers else contract.SERVING_WORKERS_ENV
        workers = _whole_number(workers_text, workers_where, 1)
        threads = _whole_number(args.threads, "--threads", 1)
        intra = args.intra_op_threads or str(default_intra_op_threads(workers))
        intra_op_threads = _whole_number(intra, "--intra-op-threads", 1)
        batch = _flag(environ.get(BATCH_ENV), BATCH_ENV)
    except ValueError as error:
        parser.error(str(error))
    return Settings(
        model_dir=args.model_dir,
        backend=args.backend,
        host=args.host,
        port=port,
        workers=workers,
        threads=threads,
        intra_op_threads=intra_op_threads,
        log_level=args.log_level,
        access_log=args.access_log,
        batch=batch,
    )


def _flag(text: str | None, where: str) -> bool:
    """A boolean environment variable as SageMaker writes it (``true``/``false``, any case; unset or
    empty: false)."""
    value = (text or "").strip().lower()
    if value not in ("", "true", "false"):
        raise ValueError(f"{where}={text!r}; allowed: true or false")
    return value == "true"


def command(
    model_dir: str | os.PathLike[str],
    *,
    backend: str = "onnx",
    host: str = "127.0.0.1",
    port: int = contract.SERVING_PORT,
    workers: int | None = None,
    threads: int | None = None,
    intra_op_threads: int | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command that starts this server (for tests and benchmarks: ``subprocess.Popen(command(...))``).

    Unset options fall back to the environment and the defaults, as in the container.
    """
    options = {"--workers": workers, "--threads": threads, "--intra-op-threads": intra_op_threads}
    extra = [item for name, value in options.items() if value is not None for item in (name, str(value))]
    return [
        python,
        str(Path(__file__).resolve()),
        contract.SERVE_COMMAND,
        "--model-dir",
        str(model_dir),
        "--backend",
        backend,
        "--host",
        host,
        "--port",
        str(port),
        *extra,
    ]


# ---- the gunicorn server ---------------------------------------------------------------------------


def _worker_tmp_dir() -> str | None:
    """gunicorn's heartbeat files in memory (/dev/shm) when possible: a container's /tmp may sit on a slow
    overlay filesystem, and a blocked heartbeat write makes the master kill a healthy worker."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": [f"{settings.host}:{settings.port}"],
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "timeout": WORKER_TIMEOUT_S,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "keepalive": KEEPALIVE_S,
        "preload_app": False,  # each worker loads its own model after the fork
        "control_socket_disable": True,  # gunicorn's admin socket: not part of the container contract
        "worker_tmp_dir": _worker_tmp_dir(),
        "accesslog": "-" if settings.access_log else None,
        "errorlog": "-",
        "loglevel": settings.log_level,
        "proc_name": f"serve-{settings.backend}",
    }


def _application(settings: Settings) -> Any:
    from gunicorn.app.base import BaseApplication
    from gunicorn.errors import AppImportError

    class Server(BaseApplication):  # gunicorn ships no type information
        """gunicorn with its options from :class:`Settings`; each worker builds its :class:`App`."""

        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)

        def load(self) -> App:
            """Runs in each worker process before it accepts a connection."""
            import predictors

            try:
                backend = predictors.load(
                    settings.backend, settings.model_dir, settings.intra_op_threads, settings.max_rows
                )
            except predictors.ModelLoadError as error:  # gunicorn prints it and stops the server (exit 4)
                raise AppImportError(f"cannot serve the model: {error}") from None
            return App(backend, workers=settings.workers)

    return Server()


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    missing = [n for n in REQUIRED_FILES[settings.backend] if not (settings.model_dir / n).is_file()]
    if missing:  # before the port is bound: a broken model dir fails at once, with its reason
        print(
            f"serve.py: error: {settings.model_dir}: missing {', '.join(missing)} "
            f"(the {settings.backend} backend loads {', '.join(REQUIRED_FILES[settings.backend])})",
            file=sys.stderr,
        )
        return 2
    # Read by the workers, which import numpy and onnxruntime after the fork. numpy's OpenBLAS starts one
    # thread per CPU in every process that imports it, and the server never calls BLAS (the model runs in
    # onnxruntime): one is enough. onnxruntime (>= 1.25 on Linux) starts a telemetry uploader thread and
    # writes a device id unless told not to; an endpoint with network isolation has nowhere to send it.
    for name, value in RUNTIME_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    LOG.info(
        "serving %s with the %s backend on %s:%d: %d worker(s) x %d thread(s), %d intra-op thread(s) each; "
        "%s",
        settings.model_dir,
        settings.backend,
        settings.host,
        settings.port,
        settings.workers,
        settings.threads,
        settings.intra_op_threads,
        f"batch transform ({BATCH_ENV}=true): no record limit per request"
        if settings.batch
        else f"at most {settings.max_rows} records per request",
    )
    _application(settings).run()  # returns only through sys.exit: 0 after SIGTERM, 4 if the model fails
    return 0


if __name__ == "__main__":
    sys.exit(main())
