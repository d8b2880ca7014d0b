"""The SQLite-backed store (``--db``, ``FakeStateManager(db=...)``): what it keeps, what it refuses.

- every §3.1 document survives a restart byte for byte, indexes rebuilt, and work resumes
  (retry delays, claims, unites, cron) as if nothing had happened;
- secrets are encrypted at rest under a key kept beside the file (or in the environment), and
  the state secrets endpoint (§2.13) still answers plaintext after a restart;
- a file that cannot be used is refused at start with one line, and left as it was;
- a write that fails while serving answers 503 and puts memory back to what the file holds.
"""

from __future__ import annotations

import base64
import json
import os
import random
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exo_ref import ManualClock
from fake_state_manager import FakeStateManager, StorageError
from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._store import sqlite as persistence
from fake_state_manager._store.sqlite import (
    KEY_ENV,
    SqliteStorage,
    key_path,
    parse_key,
    snapshot,
)
from fake_state_manager._store.store import check_invariants
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    START,
    claim,
    claim_one,
    fan_in_graph,
    register,
    statuses,
    upsert_valid,
)
from tests.fake_state_manager.http_support import (
    KEY,
    PREFIX,
    ok,
    registration,
    running,
    setup_graph,
    trigger,
)
from tests.fake_state_manager.http_support import (
    claim as http_claim,
)
from tests.store_backend import STORE_ENV

SECRET = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "fake.db"


class Engines:
    """Persisted engines on one file and one clock; each is closed before the next opens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = ManualClock(START)
        self.current: Engine | None = None

    def open(self) -> Engine:
        if self.current is not None:
            self.current.close()
        storage = SqliteStorage.open(self.path)
        self.current = Engine(clock=self.clock, rng=random.Random(0), storage=storage)
        return self.current

    def restart(self) -> tuple[Engine, dict[str, Any]]:
        """Close and reopen; return the new engine and the old store's snapshot."""
        assert self.current is not None
        before = snapshot(self.current.store)
        return self.open(), before


@pytest.fixture
def engines(db: Path) -> Iterator[Engines]:
    made = Engines(db)
    yield made
    if made.current is not None:
        made.current.close()


def _file_bytes(path: Path) -> bytes:
    """The database and its write-ahead log, as bytes on disk."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# -- everything survives a restart --------------------------------------------------------------


def test_every_document_survives_a_restart_and_work_resumes(engines: Engines) -> None:
    engine = engines.open()
    clock = engines.clock
    fan_in_graph(engine, "r", "ALL_DONE", {"max_retries": 1, "backoff_factor": 600_000})
    register(engine, "Other", namespace="second")
    upsert_valid(
        engine,
        "cron",
        [graph_node("r")],
        triggers=[{"type": "CRON", "value": {"expression": "*/5 * * * *"}}],
    )
    run = engine.trigger(NAMESPACE, "g", store={"k": "v"})["run_id"]
    delayed = engine.trigger(NAMESPACE, "g", start_delay=3_600_000)["run_id"]
    r = claim_one(engine, "R")
    engine.executed(NAMESPACE, r["state_id"], outputs=[{"v": "root"}])
    s = claim_one(engine, "S")
    engine.executed(NAMESPACE, s["state_id"], outputs=[{"item": str(i)} for i in range(4)])
    w = claim(engine, "W")
    assert len(w) == 4
    engine.executed(NAMESPACE, w[0]["state_id"], outputs=[{"done": "yes"}])
    engine.errored(NAMESPACE, w[1]["state_id"], error="flaky")  # a retry due in 600 s
    engine.prune(NAMESPACE, w[2]["state_id"], data={"why": "not needed"})
    # w[3] stays QUEUED: claimed by a runtime, not reported yet.
    clock.advance(301)
    assert engine.fire_due_triggers() == 1  # one TRIGGERED cron doc, one PENDING
    cron_run = engine.store.runs_by_namespace[NAMESPACE][-1].run_id

    engine, before = engines.restart()

    assert snapshot(engine.store) == before
    check_invariants(engine.store)
    assert statuses(engine, run, "w") == ["SUCCESS", "RETRY_CREATED", "PRUNED", "QUEUED", "CREATED"]
    assert statuses(engine, delayed, "r") == ["CREATED"]
    assert engine.list_nodes("second")["count"] == 1
    assert [t["name"] for t in engine.list_graphs(NAMESPACE)["templates"]] == ["g", "cron"]
    assert engine.run_summary(cron_run) is not None
    # The work goes on from where it was: the retry waits for its delay, then runs.
    assert claim(engine, "W") == []
    clock.advance(300)  # START + 601
    (retry,) = claim(engine, "W")
    engine.executed(NAMESPACE, retry["state_id"], outputs=[{"done": "yes"}])
    engine.executed(NAMESPACE, w[3]["state_id"], outputs=[{"done": "yes"}])  # reported late
    (m,) = claim(engine, "M")  # the unite, from the reloaded descendant counters
    assert m["inputs"] == {"v": "root"}
    engine.executed(NAMESPACE, m["state_id"], outputs=[{}])
    assert engine.run_summary(run)["status"] == "SUCCESS"  # type: ignore[index]
    # Fresh ids continue after the ones handed out before the restart.
    old = set(before["states"])
    new = {s["id"] for s in engine.states_of_run(run)} - old
    assert new
    assert min(int(i[8:], 16) for i in new) > max(int(i[8:], 16) for i in old)
    # The cron schedule resumed too: the next occurrence (START + 600) fires.
    assert engine.fire_due_triggers() == 1
    assert len(engine.store.runs_by_namespace[NAMESPACE]) == 4
    engine, before = engines.restart()
    assert snapshot(engine.store) == before


def test_a_file_made_by_the_fake_reopens_after_each_kind_of_change(engines: Engines) -> None:
    # Each engine call commits on its own: reopening after any one of them finds it.
    engine = engines.open()
    register(engine, "R", outputs=["v"])
    engine, before = engines.restart()
    assert snapshot(engine.store) == before
    upsert_valid(engine, "g", [graph_node("r")])
    engine, before = engines.restart()
    assert snapshot(engine.store) == before
    run = engine.trigger(NAMESPACE, "g")["run_id"]
    engine, before = engines.restart()
    assert statuses(engine, run, "r") == ["CREATED"]
    state = claim_one(engine, "R")
    engine, _ = engines.restart()
    assert statuses(engine, run, "r") == ["QUEUED"]
    assert claim(engine, "R") == []  # a claimed state is not handed out twice
    engine.re_enqueue_after(NAMESPACE, state["state_id"], enqueue_after=1)
    engines.clock.advance(1)
    engine, _ = engines.restart()
    assert [s["state_id"] for s in claim(engine, "R")] == [state["state_id"]]
    engine.manual_retry(NAMESPACE, state["state_id"], fanout_id="f")
    engine, _ = engines.restart()
    with pytest.raises(ApiError, match="Duplicate retry state"):  # the unique index reloaded
        engine.manual_retry(NAMESPACE, state["state_id"], fanout_id="f")
    engine, before = engines.restart()
    assert snapshot(engine.store) == before
    check_invariants(engine.store)


def test_lone_surrogates_and_non_finite_numbers_survive(engines: Engines) -> None:
    engine = engines.open()
    register(engine, "R", inputs=["x"], outputs=["v"])
    upsert_valid(engine, "g", [graph_node("r", inputs={"x": "\ud800 é"})])
    run = engine.trigger(NAMESPACE, "g")["run_id"]
    state = claim_one(engine, "R")
    engine.executed(NAMESPACE, state["state_id"], outputs=[{"v": float("nan"), "\udfff": 1e400}])
    engine, before = engines.restart()
    assert snapshot(engine.store) == before
    (doc,) = engine.states_of_run(run)
    assert doc["inputs"] == {"x": "\ud800 é"}
    assert doc["outputs"]["\udfff"] == float("inf")


# -- secrets -------------------------------------------------------------------------------------


async def test_secrets_are_encrypted_at_rest_and_plaintext_after_a_restart(db: Path) -> None:
    async with running(db=db) as (sm, client):
        await setup_graph(
            client,
            [registration("A", secrets=("token",))],
            [graph_node("a", "A")],
            secrets={"token": SECRET},
        )
        await trigger(client)
        (state,) = await http_claim(client, "A")
        listed = await ok(client.get(f"{PREFIX}/graphs/"))
    assert SECRET.encode() not in _file_bytes(db)
    sm.close()
    assert SECRET.encode() not in _file_bytes(db)  # nor after the log is folded into the file
    key_file = key_path(db)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(parse_key(key_file.read_text())) == 32
    async with running(db=db) as (again, client):
        secrets = await ok(client.get(f"{PREFIX}/state/{state['state_id']}/secrets"))
        assert secrets == {"secrets": {"token": SECRET}}
        assert await ok(client.get(f"{PREFIX}/graphs/")) == listed  # same ciphertext, same ids
    again.close()


def test_the_key_can_come_from_the_environment(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(32))
    monkeypatch.setenv(KEY_ENV, key.hex())
    SqliteStorage.open(db).close()
    assert not key_path(db).exists()  # the key lives where the user keeps it
    monkeypatch.setenv(KEY_ENV, base64.b64encode(key).decode())  # base64 is the same key
    SqliteStorage.open(db).close()
    monkeypatch.setenv(KEY_ENV, base64.urlsafe_b64encode(bytes(32)).decode().rstrip("="))
    with pytest.raises(StorageError, match=f"the secrets key from {KEY_ENV} is not the key"):
        SqliteStorage.open(db)
    monkeypatch.setenv(KEY_ENV, "not-a-key-" + "x" * 30)
    with pytest.raises(StorageError, match=f"{KEY_ENV} is not usable") as refused:
        SqliteStorage.open(db)
    assert "x" * 30 not in str(refused.value)


def test_a_lost_or_wrong_key_file_is_refused(db: Path) -> None:
    SqliteStorage.open(db).close()
    key_file = key_path(db)
    original = key_file.read_text()
    key_file.write_text(bytes(32).hex() + "\n")
    with pytest.raises(StorageError, match="is not the key this database was created with"):
        SqliteStorage.open(db)
    key_file.write_text("garbage\n")
    with pytest.raises(StorageError, match="does not hold a 32-byte key"):
        SqliteStorage.open(db)
    key_file.unlink()
    with pytest.raises(StorageError, match=f"key file {key_file} is missing and {KEY_ENV}"):
        SqliteStorage.open(db)
    assert not key_file.exists()  # no new key is made up for an existing database
    key_file.write_text(original)
    SqliteStorage.open(db).close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00" * 32, bytes(32)),
        (" " + "ab" * 32 + "\n", b"\xab" * 32),
        (base64.b64encode(b"\x01" * 32).decode(), b"\x01" * 32),
        (base64.urlsafe_b64encode(b"\xff" * 32).decode().rstrip("="), b"\xff" * 32),
    ],
)
def test_parse_key_accepts_hex_and_base64(text: str, expected: bytes) -> None:
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["", "00" * 31, "zz" * 32, base64.b64encode(bytes(31)).decode()])
def test_parse_key_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key(text)


# -- files that cannot be used ---------------------------------------------------------------


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        other.execute("INSERT INTO invoices VALUES (1)")
    other.close()


def _newer(path: Path) -> None:
    SqliteStorage.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
        conn.execute("UPDATE meta SET value = '9.9.9' WHERE key = 'written_by'")
    conn.close()


def _garbled(path: Path) -> None:
    SqliteStorage.open(path).close()
    data = bytearray(path.read_bytes())
    data[100:] = os.urandom(len(data) - 100)  # keep the header, ruin every page
    path.write_bytes(bytes(data))


def _one_damaged_page(path: Path) -> None:
    # quick_check reports such a file over several lines; the refusal must stay one line.
    SqliteStorage.open(path).close()
    rows = [(json.dumps(["ns", f"N{i}"]), json.dumps({"pad": "x" * 500})) for i in range(600)]
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO nodes (key, doc) VALUES (?, ?)", rows)
    conn.close()
    data = bytearray(path.read_bytes())
    data[200_000:200_600] = b"\xff" * 600
    path.write_bytes(bytes(data))


BAD_FILES = {
    "random bytes": (
        lambda p: p.write_bytes(os.urandom(4096)),
        "is not an SQLite database",
    ),
    "text": (lambda p: p.write_text("hello\n"), "is not an SQLite database"),
    "another application's database": (_foreign, "database of another application"),
    "a newer schema": (
        _newer,
        r"schema version 99 \(written by exo-ref 9.9.9\); this exo-ref .* reads versions up to "
        f"{persistence.SCHEMA_VERSION}: upgrade exo-ref",
    ),
    "garbled pages": (_garbled, "is corrupt"),
    "one damaged page": (_one_damaged_page, r"is corrupt \(\*\*\* in database main \*\*\* On tree"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_an_unusable_file_is_refused_and_left_alone(db: Path, case: str) -> None:
    make, message = BAD_FILES[case]
    make(db)
    before = db.read_bytes()
    with pytest.raises(StorageError, match=message) as refused:
        FakeStateManager(db=db)
    assert "\n" not in str(refused.value)
    assert db.read_bytes() == before


def test_a_missing_directory_or_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"the directory .*nowhere does not exist"):
        SqliteStorage.open(tmp_path / "nowhere" / "fake.db")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(StorageError, match="is a directory"):
        SqliteStorage.open(tmp_path)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fake.db"
    os.mkfifo(fifo)
    with pytest.raises(StorageError, match="is not a regular file"):
        SqliteStorage.open(fifo)


def test_one_file_serves_one_fake_at_a_time(db: Path) -> None:
    first = FakeStateManager(db=db)
    with pytest.raises(StorageError, match="is in use by another process or another"):
        FakeStateManager(db=db)
    first.close()
    FakeStateManager(db=db).close()


def test_an_empty_file_becomes_a_new_database(db: Path) -> None:
    db.touch()
    storage = SqliteStorage.open(db)
    storage.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == persistence.APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == persistence.SCHEMA_VERSION
    conn.close()


def test_an_older_schema_is_migrated_step_by_step(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current = persistence.SCHEMA_VERSION
    engine = Engine(clock=ManualClock(START), storage=SqliteStorage.open(db))
    register(engine, "R")
    engine.close()
    steps: list[int] = []

    def step_up(conn: sqlite3.Connection) -> None:
        steps.append(current + 1)
        conn.execute("CREATE TABLE added_in_next (x)")

    monkeypatch.setattr(persistence, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(persistence, "MIGRATIONS", {**persistence.MIGRATIONS, current: step_up})
    engine = Engine(clock=ManualClock(START), storage=SqliteStorage.open(db))
    assert engine.list_nodes(NAMESPACE)["count"] == 1
    engine.close()
    SqliteStorage.open(db).close()  # already at the new version: nothing to do
    assert steps == [current + 1]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current + 1
    conn.close()
    monkeypatch.setattr(persistence, "SCHEMA_VERSION", current + 2)
    monkeypatch.setattr(persistence, "MIGRATIONS", {})
    with pytest.raises(StorageError, match=f"has no migration from it to version {current + 2}"):
        SqliteStorage.open(db)


def test_a_version_1_file_without_queued_at_opens_as_version_2(db: Path) -> None:
    """v1 files (before ``--queued-timeout``) hold state rows without ``queued_at``."""
    clock = ManualClock(START)
    engine = Engine(clock=clock, storage=SqliteStorage.open(db))
    fan_in_graph(engine, "r", "ALL_DONE", {"max_retries": 0})
    run = engine.trigger(NAMESPACE, "g")["run_id"]
    root = claim_one(engine, "R")
    engine.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 1")
        for state_id, doc in conn.execute("SELECT id, doc FROM states").fetchall():
            fields = json.loads(doc)
            assert fields.pop("queued_at") is not None  # the claim above set it
            conn.execute("UPDATE states SET doc = ? WHERE id = ?", (json.dumps(fields), state_id))
    conn.close()
    engine = Engine(clock=clock, storage=SqliteStorage.open(db))
    assert statuses(engine, run, "r") == ["QUEUED"]
    engine.executed(NAMESPACE, root["state_id"], outputs=[{"v": "root"}])
    assert statuses(engine, run, "r") == ["SUCCESS"]
    engine.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


ALTERED_ROWS = {
    "a key that is not JSON": "UPDATE nodes SET key = '{not json'",
    "a node that is not an object": """UPDATE nodes SET doc = '"just a string"'""",
    "parents that are not an object": (
        "UPDATE states SET doc = json_set(doc, '$.parents', 'a string')"
    ),
}


@pytest.mark.parametrize("case", list(ALTERED_ROWS))
def test_a_document_that_cannot_be_read_back_is_refused(db: Path, case: str) -> None:
    engine = Engine(clock=ManualClock(START), storage=SqliteStorage.open(db))
    register(engine, "R")
    upsert_valid(engine, "g", [graph_node("r")])
    engine.trigger(NAMESPACE, "g")  # one state row
    engine.close()
    with sqlite3.connect(db) as conn:
        conn.execute(ALTERED_ROWS[case])
    conn.close()
    with pytest.raises(StorageError, match="holds a document exo-ref cannot read back") as info:
        FakeStateManager(db=db)
    assert "\n" not in str(info.value)
    with sqlite3.connect(db) as conn:  # the refused fake let go of the file
        assert conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == 1
    conn.close()


# -- writes that fail while serving ----------------------------------------------------------


class FailingConnection:
    """Wraps the storage's connection; ``COMMIT`` fails while ``failing`` is set (disk full)."""

    def __init__(self, inner: sqlite3.Connection) -> None:
        self.inner = inner
        self.failing = True
        self.failed = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.failing and sql == "COMMIT":
            self.failed += 1
            raise sqlite3.OperationalError("database or disk is full")
        return self.inner.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _inject(sm: FakeStateManager) -> FailingConnection:
    storage = sm.engine.storage
    assert storage is not None
    failing = FailingConnection(storage.connection)
    storage.connection = failing  # type: ignore[assignment]
    return failing


async def test_a_failed_write_answers_503_and_changes_nothing(db: Path) -> None:
    async with running(db=db) as (sm, client):
        await setup_graph(client, [registration("A", outputs=("y",))], [graph_node("a", "A")])
        run_id = await trigger(client)
        (state,) = await http_claim(client, "A")
        path = f"{PREFIX}/state/{state['state_id']}/executed"
        failing = _inject(sm)
        response = await client.post(path, json={"outputs": [{"y": "1"}]})
        assert response.status_code == 503
        detail = response.json()["detail"]
        assert "could not save this request to its database (database or disk is full)" in detail
        assert "nothing was changed" in detail
        assert [s["status"] for s in sm.states(run_id)] == ["QUEUED"]  # as in the file
        assert snapshot(sm.engine.store) == snapshot(sm.engine.storage.load(0))  # type: ignore[union-attr]
        check_invariants(sm.engine.store)
        # A trigger fails the same way and leaves no run behind.
        response = await client.post(f"{PREFIX}/graph/g/trigger", json={})
        assert response.status_code == 503
        assert (await ok(client.get(f"{PREFIX}/runs/1/10")))["total"] == 1
        # Reads still answer from memory.
        await ok(client.get(f"{PREFIX}/graph/g"))
        failing.failing = False  # space was freed
        assert (await ok(client.post(path, json={"outputs": [{"y": "1"}]}))) == {
            "status": "EXECUTED"
        }
        assert sm.run_summary(run_id)["status"] == "SUCCESS"
    sm.close()
    async with running(db=db) as (again, _):
        assert again.run_summary(run_id)["status"] == "SUCCESS"
    again.close()


async def test_a_failed_cron_write_is_a_503_and_the_cron_loop_lives_on(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(START)
    async with running(db=db, clock=clock) as (sm, client):
        await setup_graph(
            client,
            [registration("A")],
            [graph_node("a", "A")],
            triggers=[{"type": "CRON", "value": {"expression": "* * * * *"}}],
        )
        failing = _inject(sm)
        clock.advance(60)
        response = await client.get(f"{PREFIX}/runs/1/10")  # fires due triggers first
        assert response.status_code == 503
        assert sm._fire_due() == 0  # the background loops' call: logged, not raised
        assert sm._fire_due() == 0
        assert caplog.text.count("cron triggers cannot fire for now") == 1
        failing.failing = False
        assert (await ok(client.get(f"{PREFIX}/runs/1/10")))["total"] == 1
        assert sm._fire_due() == 0
        assert "cron triggers fire again" in caplog.text
    sm.close()


def test_a_file_that_cannot_be_read_back_after_a_failed_write_refuses_everything(
    engines: Engines,
) -> None:
    engine = engines.open()
    register(engine, "R")
    storage = engine.storage
    assert storage is not None
    failing = FailingConnection(storage.connection)
    storage.connection = failing  # type: ignore[assignment]
    real_load = storage.load

    def broken_load(now_ms: int) -> Any:
        raise StorageError("disk I/O error")

    storage.load = broken_load  # type: ignore[method-assign]
    with pytest.raises(ApiError, match="cannot be read back after a write failed") as refused:
        register(engine, "S")
    assert refused.value.status == 503
    with pytest.raises(ApiError, match="cannot be read back"):  # even reads: memory is stale
        engine.list_nodes(NAMESPACE)
    storage.load = real_load  # type: ignore[method-assign]
    failing.failing = False
    assert [n["name"] for n in engine.list_nodes(NAMESPACE)["nodes"]] == ["R"]


def test_after_close_reads_answer_until_a_write_is_refused(engines: Engines) -> None:
    engine = engines.open()
    register(engine, "R")
    engine.close()
    assert engine.list_nodes(NAMESPACE)["count"] == 1
    with pytest.raises(ApiError, match="is closed") as refused:
        register(engine, "S")
    assert refused.value.status == 503
    with pytest.raises(ApiError, match="is closed"):  # memory may be ahead of the file now
        engine.list_nodes(NAMESPACE)
    engines.current = None


# -- the test battery's own switch -------------------------------------------------------------


def test_the_store_backend_switch_gives_every_new_fake_a_database() -> None:
    sm = FakeStateManager(api_key=KEY)
    expected = os.environ.get(STORE_ENV) == "sqlite"
    assert (sm.engine.storage is not None) == expected  # tests.store_backend closes it
