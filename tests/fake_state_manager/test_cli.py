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
            f"fake state manager listening on {uri} (Ctrl-C to stop)",
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
