"""``fake-state-manager --db PATH``: a file that cannot be used is one line and exit code 2.

Never a traceback, never a silently emptied store. Read-only cases run in a subprocess: as root
(CI containers) file permissions do not apply, so that process drops the capabilities that
override them (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``) before it starts.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fake_state_manager._cli import main
from fake_state_manager._store.sqlite import KEY_ENV, SqliteStorage

ROOT = Path(__file__).resolve().parents[2]

_PR_CAPBSET_DROP = 24
_CAPS_OVERRIDING_PERMISSIONS = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def _obey_file_permissions() -> None:
    """In the child, before exec: drop root's permission overrides (a no-op for other users)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _CAPS_OVERRIDING_PERMISSIONS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _dev_server(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    return subprocess.run(
        [sys.executable, "-m", "fake_state_manager", "--port", "0", *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        preexec_fn=_obey_file_permissions,  # the test process starts no threads
        timeout=120,
        check=False,
    )


def _assert_one_line(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fake-state-manager: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_a_missing_directory_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(tmp_path / "missing" / "fake.db")]) == 2
    captured = capsys.readouterr()
    _assert_one_line(captured.err, "missing does not exist", "create it")
    assert captured.out == ""


def test_a_foreign_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert main(["--db", str(notes)]) == 2
    _assert_one_line(capsys.readouterr().err, "is not an SQLite database")
    assert notes.read_text() == "my notes\n"


def test_a_newer_schema_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fake.db"
    SqliteStorage.open(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 7")
    conn.close()
    assert main(["--db", str(db)]) == 2
    _assert_one_line(capsys.readouterr().err, "schema version 7", "upgrade exo-ref")


def test_a_read_only_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "fake.db"
    SqliteStorage.open(db).close()
    before = db.read_bytes()
    db.chmod(0o444)
    try:
        done = _dev_server("--db", str(db))
    finally:
        db.chmod(0o644)
    assert done.returncode == 2, done.stderr
    _assert_one_line(done.stderr, "is read-only", "writable")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # no banner: it never served
    assert db.read_bytes() == before


def test_a_read_only_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        done = _dev_server("--db", str(folder / "fake.db"))
    finally:
        folder.chmod(0o755)
    assert done.returncode == 2, done.stderr
    _assert_one_line(done.stderr, f"the directory {folder} is read-only")
    assert "Traceback" not in done.stderr
    assert list(folder.iterdir()) == []
