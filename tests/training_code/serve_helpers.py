"""Helpers of the inference-server tests: a real server process on loopback and raw HTTP exchanges.

The server runs as it does in the container: ``python training_code/serve.py serve ...`` (the command from
:func:`serve.command`), its own session (so a test can signal it alone), its output in a log file.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from tests.training_code.training_helpers import subprocess_env

#: A test-only launcher of serve.py whose workers wait for a gate file before loading the model.
GATED_SERVE = Path(__file__).resolve().with_name("serve_gated.py")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers of a master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


class RunningServer:
    """A serve.py process on 127.0.0.1:``port``, logging to ``log_path``."""

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            list(command),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else subprocess_env(),
            start_new_session=True,
        )
        self.client = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited ({self.process.returncode}) before {text!r}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {text!r}:\n{self.log()}")
            time.sleep(0.02)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``GET /ping`` answers 200 (the process must not exit meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited ({self.process.returncode}):\n{self.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/ping", timeout=1.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"no 200 on /ping within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (as SageMaker and ``docker stop`` send it) and the exit status."""
        self.client.close()  # its kept-alive connection would hold a stopping worker for up to 2 s
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.client.close()
            self._log.close()

    def stop(self) -> None:
        """Cleanup: SIGTERM (a graceful stop lets coverage save its data); SIGKILL the group if it hangs."""
        self.client.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the server and workers
                self.process.wait()
        self.client.close()
        self._log.close()


def request_head(path: str, headers: Mapping[str, str], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def open_connection(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the next response on a raw connection."""
    response = http.client.HTTPResponse(connection)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body
