"""The dev server: ``python -m fake_state_manager`` (same code as ``fake-state-manager``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fake_state_manager._cli import main, resolve_api_key

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_dev_server_prints_its_settings_serves_and_stops_cleanly_on_ctrl_c() -> None:
    port = _free_port()
    env = {**os.environ, "STATE_MANAGER_SECRET": "from-env", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fake_state_manager", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]
        uri = f"http://127.0.0.1:{port}"
        assert lines == [
            f"fake state manager listening on {uri} (dashboard: {uri}/, Ctrl-C to stop)",
            f"EXOSPHERE_STATE_MANAGER_URI={uri}",
            "EXOSPHERE_API_KEY=from-env",
        ], process.stderr.read() if process.stderr else ""
        with httpx.Client(base_url=uri) as client:
            assert client.get("/health").json() == {"message": "OK"}
            assert client.get("/v0/namespaces").status_code == 401
            ok = client.get("/v0/namespaces", headers={"x-api-key": "from-env"})
            assert ok.json() == {"namespaces": [], "count": 0}
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "from-env" not in stderr


def test_api_key_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_MANAGER_SECRET", raising=False)
    assert resolve_api_key(None) == "exo-ref-dev-key"
    monkeypatch.setenv("STATE_MANAGER_SECRET", "env-key")
    assert resolve_api_key(None) == "env-key"
    assert resolve_api_key("flag-key") == "flag-key"


def test_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--port", "70000"])
    assert exited.value.code == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err


def test_console_script_points_at_the_same_main() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="fake-state-manager")
    assert script.load() is main


class DevServer:
    """A ``python -m fake_state_manager`` subprocess on a free port, for hygiene checks."""

    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fake_state_manager", "--port", str(self.port), *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for _ in range(3):  # the banner: the server is listening once it is printed
            self.process.stdout.readline()

    def connect(self) -> socket.socket:
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        return conn

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(line.split()[1])

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, stderr
        return stderr


def _read_response(conn: socket.socket) -> tuple[bytes, bytes]:
    """One whole HTTP/1.1 response (head, body) with a content-length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before a full response head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    (length,) = [
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    ]
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "connection closed before the whole response body"
        body += chunk
    return head, body


def test_dev_server_answers_a_64_mib_body_with_413_before_reading_it() -> None:
    # Issue 9: the limit holds before the body is buffered; the server's peak RSS stays flat.
    server = DevServer("--max-body-bytes", str(1024 * 1024))
    try:
        size = 64 * 1024 * 1024
        before = server.peak_rss_kib()
        with server.connect() as conn:
            conn.sendall(
                b"PUT /v0/namespace/ns/nodes/ HTTP/1.1\r\nHost: x\r\n"
                b"content-type: application/json\r\ncontent-length: "
                + str(size).encode()
                + b"\r\n\r\n"
            )
            conn.sendall(b" " * 65536)  # the answer comes while the body is still arriving
            head, body = _read_response(conn)
            assert head.startswith(b"HTTP/1.1 413 "), head
            assert b"Request body too large: the limit is 1048576 bytes" in body
            chunk = b" " * (1024 * 1024)
            for _ in range(size // len(chunk) - 1):
                conn.sendall(chunk)
            conn.sendall(b" " * (len(chunk) - 65536))
            # The rest of the body was drained, not kept: the same connection serves on.
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(conn)[0].startswith(b"HTTP/1.1 200 ")
        grown_mib = (server.peak_rss_kib() - before) / 1024
    finally:
        stderr = server.stop()
    assert grown_mib < 16, f"peak RSS grew by {grown_mib:.1f} MiB for a refused 64 MiB body"
    assert "Traceback" not in stderr


def test_dev_server_closes_a_request_that_never_completes_with_one_quiet_line() -> None:
    server = DevServer("--request-timeout", "0.3")
    try:
        with server.connect() as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never end
            assert conn.recv(65536) == b""  # closed by the server
        with server.connect() as conn:
            # A body that stops arriving: the deadline covers it too.
            conn.sendall(
                b"PUT /v0/namespace/ns/nodes/ HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\n{"
            )
            assert conn.recv(65536) == b""
        with server.connect() as conn:  # an idle new connection
            assert conn.recv(65536) == b""
    finally:
        stderr = server.stop()
    assert stderr.count("no complete request within 0.3s") == 3, stderr
    assert stderr.count("went away during PUT /v0/namespace/ns/nodes/") == 1, stderr
    assert "Traceback" not in stderr
    assert "ERROR" not in stderr


def test_dev_server_logs_aborted_uploads_quietly_and_boundedly() -> None:
    server = DevServer()
    try:
        for _ in range(30):
            with server.connect() as conn:
                conn.sendall(
                    b"PUT /v0/namespace/ns/nodes/ HTTP/1.1\r\nHost: x\r\n"
                    b"content-length: 1000\r\n\r\n{\"runtime_name\":"
                )
        # The server has seen every abort once it answers a request after them.
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert client.get("/health").status_code == 200
    finally:
        stderr = server.stop()
    lines = [line for line in stderr.splitlines() if "went away during" in line]
    assert 1 <= len(lines) <= 5, stderr  # RateLimitFilter: five per minute per kind of line
    assert "Traceback" not in stderr
    assert "unhandled error" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-body-bytes", "0"], "--max-body-bytes must be at least 1"),
        (["--request-timeout", "0"], "--request-timeout must be > 0 seconds"),
        (["--limit-concurrency", "0"], "--limit-concurrency must be at least 1"),
    ],
)
def test_bad_hygiene_settings_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_dev_server_bounds_concurrent_connections_with_503() -> None:
    # uvicorn's limit_concurrency counts the asking connection too: 2 means one other at a time.
    server = DevServer("--limit-concurrency", "2")
    try:
        with server.connect() as idle:
            idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(idle)[0].startswith(b"HTTP/1.1 200 ")
            with server.connect() as second:
                second.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_response(second)[0].startswith(b"HTTP/1.1 503 ")
    finally:
        server.stop()
