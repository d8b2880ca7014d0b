"""SQLite persistence of the fake's store: ``--db PATH`` and ``FakeStateManager(db=...)``.

Why this shape. The in-memory :class:`~fake_state_manager._store.store.Store` stays the working
set and keeps every index (claim queues, counters, unique keys), so a persisted fake answers
exactly like the in-memory one and reads cost the same. What persistence adds is a *journal*:
:class:`JournaledStore` records which documents of contract §3.1 an engine call changed (states,
runs with their store values, registered nodes, graph templates, cron docs), and the engine hands
it to :meth:`SqliteStorage.commit` when the call ends, which writes those documents in **one
transaction that commits before the response is built into bytes and sent**. So a ``kill -9``
loses no acknowledged request, and a request that was not acknowledged is either wholly in the
file or not at all. On start, :meth:`SqliteStorage.load` reads every row back into a fresh store
through the same insert methods, which rebuilds every index.

File format (schema version :data:`SCHEMA_VERSION`, in ``PRAGMA user_version``; the file is
marked as ours with ``PRAGMA application_id`` = :data:`APPLICATION_ID`): one table per collection,
each row the document as JSON (ASCII-escaped, so lone surrogates survive), plus a ``meta`` table
(id prefix and counter, the exo-ref version that wrote it, a secrets-key check value). A state
row's ``queued_at`` (the moment of its latest claim, for ``--queued-timeout``) may be absent: such
a row loads as never claimed, and the lease of a QUEUED one then starts at load time. A newer
exo-ref opens an older file through :data:`MIGRATIONS` (one function per version step, each run
in the transaction that bumps the version); an older exo-ref refuses a newer file with a message
naming both versions.

Connection settings: WAL journal, ``synchronous=NORMAL`` (in WAL mode a commit is durable against
a crash of the process, which is what ``kill -9`` is; a power cut may lose the last commits), and
``locking_mode=EXCLUSIVE``: the first process to write holds the file until it exits, so a second
fake on the same file is refused at start instead of silently diverging from the first.

Secrets (contract §4.5) are stored as the :class:`~fake_state_manager._store.secrets.SecretBox`
ciphertexts the in-memory store holds too, never as plaintext. With a database the key must
outlive the process: it is read from env :data:`KEY_ENV` (32 bytes as 64 hex digits or base64)
or from the file ``PATH.key`` beside the database (created with mode 0600 the first time). The
``meta`` table keeps a value encrypted under that key, so a wrong or lost key is refused at start
instead of making every secrets request fail later.

Every problem with the file at start is a :class:`StorageError` with a one-line message saying
what is wrong and what to do; a write that fails while running is a :class:`StorageWriteError`,
which the engine turns into a 503 after putting the in-memory store back to what the file holds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets as _random
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

import exo_ref
from exo_ref import RetryPolicyModel
from fake_state_manager._errors import DuplicateKeyError, FakeStateManagerError
from fake_state_manager._store.documents import CronDoc, GraphTemplate, Run, State
from fake_state_manager._store.secrets import SecretBox, SecretError
from fake_state_manager._store.store import Store

__all__ = [
    "APPLICATION_ID",
    "KEY_ENV",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "JournaledStore",
    "SqliteStorage",
    "StorageError",
    "StorageWriteError",
    "key_path",
    "parse_key",
    "snapshot",
]

__version__: str = exo_ref.__version__  # written into the file, and named in refusals

#: The current file format. Bump it together with a new :data:`MIGRATIONS` entry.
#: v2: state rows may carry ``queued_at``; an exo-ref that reads only v1 refuses such a file
#: (naming both versions) instead of failing on the unknown field.
SCHEMA_VERSION = 2
#: ``PRAGMA application_id`` of every exo-ref database: ``"EXOR"``.
APPLICATION_ID = 0x45584F52
#: The environment variable that may hold the secrets key (instead of ``PATH.key``).
KEY_ENV = "EXO_REF_SECRETS_KEY"

Migration = Callable[[sqlite3.Connection], None]
#: ``{N: upgrade}``: ``upgrade(connection)`` turns a version-N file into version N+1. It runs
#: inside the transaction that then sets ``user_version = N + 1``.
MIGRATIONS: dict[int, Migration] = {}


def _v1_to_v2(connection: sqlite3.Connection) -> None:
    """Nothing to rewrite: a v1 state row is a v2 row without ``queued_at`` (read as never
    claimed, so a QUEUED state's lease starts at load time)."""


MIGRATIONS[1] = _v1_to_v2

_KEY_BYTES = 32
_KEY_CHECK = "exo-ref secrets key check"
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE states (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL)",
    # key: JSON [namespace, name]; row order (rowid) is registration / first-upsert order.
    "CREATE TABLE nodes (key TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE graphs (key TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE cron (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
)
_TABLES = frozenset({"meta", "states", "runs", "nodes", "graphs", "cron"})


class StorageError(FakeStateManagerError):
    """The database file cannot be used; the message is one line: what is wrong, what to do."""


class StorageWriteError(FakeStateManagerError):
    """A write to the database failed while serving (disk full, file made read-only, ...)."""


# -- the journal ------------------------------------------------------------------------------


class JournaledStore(Store):
    """A :class:`Store` that records which documents each engine call changes.

    The state and run methods are overridden (the plain store pays nothing for this), the
    ``note_*`` hooks fill the other collections' sets. The journal is emptied by
    :meth:`SqliteStorage.commit`. ``last_id`` is the highest id counter value handed out, saved
    so that a reloaded store never hands out an id twice.
    """

    def __init__(self, *, id_prefix: int | None = None, first_id: int = 1) -> None:
        super().__init__(id_prefix=id_prefix, first_id=first_id)
        self.id_prefix = self._id_prefix
        self.last_id = first_id - 1
        # Dicts used as ordered sets: new rows are written in the order the store got them, so
        # a reload lists nodes, graphs and cron docs in the same order (rowid).
        self.dirty_states: dict[str, State] = {}
        self.dirty_runs: dict[str, None] = {}
        self.dirty_nodes: dict[tuple[str, str], None] = {}
        self.dirty_graphs: dict[tuple[str, str], None] = {}
        self.dirty_cron: dict[str, None] = {}

    def new_id(self) -> str:
        value = super().new_id()
        self.last_id = int(value[8:], 16)
        return value

    def next_seq(self) -> int:
        self.last_id = value = super().next_seq()
        return value

    def insert_state(self, state: State, now_ms: int) -> None:
        super().insert_state(state, now_ms)
        self.dirty_states[state.id] = state

    def set_status(self, state: State, status: str) -> None:
        self.dirty_states[state.id] = state
        super().set_status(state, status)

    def set_created(self, state: State, enqueue_after: int, now_ms: int) -> None:
        self.dirty_states[state.id] = state
        super().set_created(state, enqueue_after, now_ms)

    def claim(
        self, namespace: str, node_names: Iterable[str], limit: int, now_ms: int
    ) -> list[State]:
        claimed = super().claim(namespace, node_names, limit, now_ms)
        for state in claimed:
            self.dirty_states[state.id] = state
        return claimed

    def insert_run(self, run: Run) -> None:
        super().insert_run(run)
        self.dirty_runs[run.run_id] = None

    def note_state(self, state: State) -> None:
        self.dirty_states[state.id] = state

    def note_run(self, run_id: str) -> None:
        self.dirty_runs[run_id] = None

    def note_node(self, namespace: str, name: str) -> None:
        self.dirty_nodes[(namespace, name)] = None

    def note_graph(self, namespace: str, name: str) -> None:
        self.dirty_graphs[(namespace, name)] = None

    def note_cron(self, doc_id: str) -> None:
        self.dirty_cron[doc_id] = None

    def has_changes(self) -> bool:
        return bool(
            self.dirty_states
            or self.dirty_runs
            or self.dirty_nodes
            or self.dirty_graphs
            or self.dirty_cron
        )

    def clear_journal(self) -> None:
        self.dirty_states.clear()
        self.dirty_runs.clear()
        self.dirty_nodes.clear()
        self.dirty_graphs.clear()
        self.dirty_cron.clear()


# -- documents <-> rows ---------------------------------------------------------------------------


# ASCII escapes: a lone surrogate (legal in a JSON body) cannot be UTF-8 encoded for SQLite.
# NaN/Infinity are written as Python's json reads them back (the fake accepts them, §1.3). One
# encoder for every document: json.dumps with options would build a new one per call.
_dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode


def _persisted(cls: type[Any], *, derived: frozenset[str] = frozenset()) -> Callable[[Any], Any]:
    """``document -> dict`` of the dataclass fields a row holds (all but the ``derived`` ones,
    which the store rebuilds on load). ``attrgetter`` reads them in one C call, not
    ``dataclasses.asdict``, which deep-copies: this runs for every changed state."""
    names = tuple(f.name for f in fields(cls) if f.name not in derived)
    read = attrgetter(*names)
    return lambda document: dict(zip(names, read(document), strict=True))


_state_fields = _persisted(State, derived=frozenset({"heap_token"}))
_run_fields = _persisted(Run)
_graph_fields = _persisted(GraphTemplate, derived=frozenset({"by_identifier", "root_identifier"}))
_cron_fields = _persisted(CronDoc)


def _state_doc(s: State) -> str:
    return _dumps(_state_fields(s))


def _run_doc(run: Run, store_values: dict[str, str] | None) -> str:
    return _dumps({**_run_fields(run), "store": store_values if store_values is not None else {}})


def _graph_doc(t: GraphTemplate) -> str:
    # ``secrets`` are SecretBox ciphertexts, never plaintext (§4.5).
    return _dumps({**_graph_fields(t), "retry_policy": t.retry_policy.model_dump(mode="json")})


def _graph_from(doc: dict[str, Any]) -> GraphTemplate:
    retry_policy = RetryPolicyModel.model_validate(doc["retry_policy"])
    return GraphTemplate(**{**doc, "retry_policy": retry_policy})


def _cron_doc(d: CronDoc) -> str:
    return _dumps(_cron_fields(d))


def snapshot(store: Store) -> dict[str, Any]:
    """Every persisted document of ``store`` as JSON text, keyed by collection and id.

    Two stores hold the same data exactly when their snapshots are equal (JSON text, so a NaN
    output compares equal to itself); the tests compare a running store with one reloaded from
    its file.
    """
    return {
        "states": {i: _state_doc(s) for i, s in store.states.items()},
        "runs": {i: _run_doc(r, store.store_values.get(i)) for i, r in store.runs.items()},
        "run_order": {ns: [r.run_id for r in runs] for ns, runs in store.runs_by_namespace.items()},
        "run_states": {i: [s.id for s in ss] for i, ss in store.run_states.items() if ss},
        "nodes": {
            _dumps([ns, name]): _dumps(doc)
            for ns, docs in store.nodes.items()
            for name, doc in docs.items()
        },
        "graphs": [(_dumps(list(key)), _graph_doc(t)) for key, t in store.graphs.items()],
        "cron": {i: _cron_doc(d) for i, d in store.cron.items()},
    }


# -- keys ----------------------------------------------------------------------------------------


def key_path(db: Path) -> Path:
    """Where the secrets key of database ``db`` is kept: ``db`` + ``.key`` beside it."""
    return db.with_name(db.name + ".key")


def parse_key(text: str) -> bytes:
    """A 32-byte key from 64 hex digits or base64 (standard or URL-safe, padding optional).

    Raises:
        ValueError: anything else. The message never contains the value.
    """
    text = text.strip()
    if len(text) == 2 * _KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "==", validate=False)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _KEY_BYTES:
        raise ValueError(f"a secrets key must be {_KEY_BYTES} bytes as 64 hex digits or base64")
    return raw


def _key_from_env() -> bytes | None:
    value = os.environ.get(KEY_ENV)
    if not value:
        return None
    try:
        return parse_key(value)
    except ValueError as exc:
        raise StorageError(f"{KEY_ENV} is not usable: {exc}") from None


def _read_key_file(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"cannot read the secrets key file {path}: {_os_reason(exc)}") from None
    try:
        return parse_key(text)
    except ValueError:
        raise StorageError(
            f"the secrets key file {path} does not hold a {_KEY_BYTES}-byte key (64 hex digits);"
            " restore it from a copy"
        ) from None


def _create_key_file(path: Path) -> bytes:
    key = _random.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by someone else: use theirs
        found = _read_key_file(path)
        if found is None:  # pragma: no cover - deleted again in between
            raise StorageError(f"the secrets key file {path} vanished while opening it") from None
        return found
    except OSError as exc:
        raise StorageError(
            f"cannot create the secrets key file {path}: {_os_reason(exc)}"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# -- the database ----------------------------------------------------------------------------


def _sqlite_reason(exc: sqlite3.Error) -> str:
    return str(exc) or type(exc).__name__


def _open_error(path: Path, exc: sqlite3.Error) -> StorageError:
    """A one-line :class:`StorageError` for an SQLite failure while opening ``path``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    reason = _sqlite_reason(exc)
    if name.startswith(("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")):
        # SQLite says "disk I/O error" for a read-only WAL file: name the permission instead.
        problem = _permission_problem(path)
        if problem is not None:
            return StorageError(f"{problem} ({reason}); make it writable or choose another path")
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return StorageError(
            f"{path} is corrupt or not an exo-ref database ({reason}); restore it from a copy,"
            " move it away, or choose another path"
        )
    if name.startswith("SQLITE_READONLY"):
        return StorageError(
            f"{path} is read-only ({reason}); make the file and its directory writable, or"
            " choose another path"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageError(
            f"{path} is in use by another process or another FakeStateManager ({reason}); stop"
            " it (or call close() on it) first, or choose another path"
        )
    if name.startswith("SQLITE_FULL"):
        return StorageError(f"{path}: the disk is full ({reason}); free some space")
    return StorageError(
        f"{path} cannot be opened ({reason}); check the permissions of the file and its"
        " directory, or choose another path"
    )


def _permission_problem(db: Path) -> str | None:
    """What the permissions forbid, if anything: writing the file, or creating its WAL."""
    if db.exists() and not os.access(db, os.W_OK):
        return f"{db} is read-only"
    if not os.access(db.parent, os.W_OK | os.X_OK):
        return (
            f"the directory {db.parent} is read-only (SQLite keeps its write-ahead log"
            f" {db.name}-wal beside the file)"
        )
    return None


def _close_quietly(connection: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # closing a broken connection
        connection.close()


class SqliteStorage:
    """One open exo-ref database file: validated, migrated, locked and writable.

    Make one with :meth:`open`; the engine loads its store with :meth:`load` and saves each
    call's changes with :meth:`commit`. Not thread-safe on its own: the engine's lock serialises
    every use.

    Attributes:
        path: the database file.
        secret_box: encrypts graph secrets under the database's key (§4.5).
        connection: the SQLite connection (tests may wrap it to inject failures).
    """

    def __init__(
        self, path: Path, connection: sqlite3.Connection, secret_box: SecretBox, prefix: int
    ) -> None:
        self.path = path
        self.connection = connection
        self.secret_box = secret_box
        self._prefix = prefix
        self._saved_last_id = 0
        self._closed = False
        # A forgotten storage still releases the file (and its exclusive lock) when collected.
        self._finalizer = weakref.finalize(self, _close_quietly, connection)

    def __repr__(self) -> str:
        return f"SqliteStorage({str(self.path)!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, key: bytes | None = None) -> SqliteStorage:
        """Open (or create) the database at ``path`` for reading and writing.

        Args:
            path: the database file; its directory must exist.
            key: the 32-byte secrets key; default: env :data:`KEY_ENV`, else ``PATH.key``
                (created beside a new database).

        Raises:
            StorageError: the file cannot be used (see the module docstring); nothing was
                changed in it, and an existing file is never emptied.
        """
        db = Path(os.fspath(path))
        if key is not None and len(key) != _KEY_BYTES:
            raise StorageError(f"the secrets key must be {_KEY_BYTES} bytes, got {len(key)}")
        if db.is_dir():
            raise StorageError(f"{db} is a directory; give the path of a database file in it")
        if not db.parent.is_dir():
            raise StorageError(
                f"{db}: the directory {db.parent} does not exist; create it or choose another"
                " path"
            )
        _check_header(db)
        source = "the key given"
        if key is None:
            key, source = _key_from_env(), KEY_ENV
        try:
            connection = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _open_error(db, exc) from None
        try:
            storage = cls._prepare(db, connection, key, source)
        except sqlite3.Error as exc:
            _close_quietly(connection)
            raise _open_error(db, exc) from None
        except BaseException:
            _close_quietly(connection)
            raise
        return storage

    @classmethod
    def _prepare(
        cls, db: Path, connection: sqlite3.Connection, key: bytes | None, source: str
    ) -> SqliteStorage:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        connection.execute("PRAGMA busy_timeout=0")
        app_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        fresh = app_id == 0 and not tables
        if not fresh and app_id != APPLICATION_ID:
            raise StorageError(
                f"{db} is an SQLite database of another application (application_id"
                f" {app_id:#x}, tables {', '.join(sorted(tables)) or 'none'}), not an exo-ref"
                " database; choose another path"
            )
        if not fresh:
            _check_version(db, connection, version)
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError(
                f"{db} cannot use a write-ahead log (journal mode stays {mode!r}); make the"
                " file and its directory writable, or choose another path"
            )
        connection.execute("PRAGMA synchronous=NORMAL")
        key_file = key_path(db)
        if fresh:
            if key is None:
                key = _read_key_file(key_file)
            if key is None:
                key = _create_key_file(key_file)
            box = SecretBox(key)
            prefix = int.from_bytes(os.urandom(4), "big")
            _create(connection, box, prefix)
        else:
            if version < SCHEMA_VERSION:
                _migrate(db, connection, version)
            _check_integrity(db, connection)
            meta = _meta(db, connection)
            if key is None:
                key, source = _read_key_file(key_file), str(key_file)
            if key is None:
                raise StorageError(
                    f"{db}: its secrets key file {key_file} is missing and {KEY_ENV} is not"
                    " set; restore the key file (or set the variable to the key) or choose"
                    " another path"
                )
            box = SecretBox(key)
            try:
                box.decrypt(meta["key_check"])
            except (KeyError, SecretError):
                raise StorageError(
                    f"{db}: the secrets key from {source} is not the key this database was"
                    f" created with; restore {key_file} or set {KEY_ENV} to that key"
                ) from None
            try:
                prefix = int(meta["id_prefix"], 16)
            except (KeyError, ValueError):
                raise StorageError(f"{db} is corrupt (no id prefix in its meta table)") from None
        # Take the write lock now, and prove the file is writable, before serving anything.
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("opened_at", repr(time.time())), ("opened_by", __version__)],
        )
        connection.execute("COMMIT")
        return cls(db, connection, box, prefix)

    # -- loading ---------------------------------------------------------------------------

    def load(self, now_ms: int) -> JournaledStore:
        """A fresh store holding every document of the file, with every index rebuilt.

        ``now_ms`` decides which CREATED states are claimable at once and which wait (§3.3).

        Raises:
            StorageError: a row cannot be read back (the file was altered or is corrupt).
        """
        try:
            return self._load(now_ms)
        except sqlite3.Error as exc:
            raise _open_error(self.path, exc) from None
        except (ValueError, TypeError, KeyError, AttributeError, DuplicateKeyError) as exc:
            raise StorageError(
                f"{self.path} holds a document exo-ref cannot read back ({type(exc).__name__}:"
                f" {exc}); restore it from a copy or choose another path"
            ) from None

    def _load(self, now_ms: int) -> JournaledStore:
        conn = self.connection
        meta = _meta(self.path, conn)
        last_id = int(meta.get("last_id", "0"))
        store = JournaledStore(id_prefix=self._prefix, first_id=last_id + 1)
        for key, doc in conn.execute("SELECT key, doc FROM nodes ORDER BY rowid"):
            namespace, name = json.loads(key)
            node = json.loads(doc)
            if not isinstance(node, dict):
                raise TypeError(f"node {name!r} of namespace {namespace!r} is not an object")
            store.nodes.setdefault(namespace, {})[name] = node
        for key, doc in conn.execute("SELECT key, doc FROM graphs ORDER BY rowid"):
            namespace, name = json.loads(key)
            store.put_graph(_graph_from(json.loads(doc)))
        for (doc,) in conn.execute("SELECT doc FROM runs ORDER BY seq"):
            row = json.loads(doc)
            values = row.pop("store")
            store.insert_run(Run(**row))
            store.store_values[row["run_id"]] = values
        for (doc,) in conn.execute("SELECT doc FROM states ORDER BY seq"):
            store.insert_state(State(**json.loads(doc)), now_ms)
        for (doc,) in conn.execute("SELECT doc FROM cron ORDER BY rowid"):
            cron = CronDoc(**json.loads(doc))
            store.cron[cron.id] = cron
        store.clear_journal()
        store.last_id = last_id
        self._saved_last_id = last_id
        return store

    # -- writing ---------------------------------------------------------------------------

    def commit(self, store: Store) -> None:
        """Write every document ``store`` journaled since the last commit, in one transaction.

        Nothing happens when nothing changed (reads, empty polls). The journal is emptied
        whatever the outcome.

        Raises:
            StorageWriteError: the transaction failed and was rolled back; the file holds what
                it held before this call, and ``store`` is ahead of it (the engine reloads).
        """
        if not isinstance(store, JournaledStore):
            raise StorageWriteError("the engine's store was replaced by one that keeps no journal")
        if not store.has_changes():
            return
        try:
            if self._closed:
                raise StorageWriteError(f"the database {self.path} is closed")
            try:
                batches = _rows(store)
            except (TypeError, ValueError) as exc:
                raise StorageWriteError(f"a document could not be encoded: {exc}") from None
            conn = self.connection
            try:
                conn.execute("BEGIN IMMEDIATE")
                for sql, rows in batches:
                    conn.executemany(sql, rows)
                if store.last_id > self._saved_last_id:
                    conn.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_id', ?)",
                        (str(store.last_id),),
                    )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageWriteError(_sqlite_reason(exc)) from None
            self._saved_last_id = store.last_id
        finally:
            store.clear_journal()

    def _rollback(self) -> None:
        try:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
        except sqlite3.Error:  # SQLite may have rolled back by itself (disk full, I/O error)
            pass

    def close(self) -> None:
        """Close the file (a WAL checkpoint folds the log into it) and release its lock."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        _close_quietly(self.connection)


# Upserts keep a row's rowid, so nodes, graphs and cron docs reload in their first-insert order.
_UPDATE_DOC = " DO UPDATE SET doc = excluded.doc"
_UPSERT_STATE = "INSERT INTO states (id, seq, doc) VALUES (?, ?, ?) ON CONFLICT (id)" + _UPDATE_DOC
_UPSERT_RUN = "INSERT INTO runs (run_id, seq, doc) VALUES (?, ?, ?) ON CONFLICT (run_id)"
_UPSERT_RUN += _UPDATE_DOC
_UPSERT_NODE = "INSERT INTO nodes (key, doc) VALUES (?, ?) ON CONFLICT (key)" + _UPDATE_DOC
_UPSERT_GRAPH = "INSERT INTO graphs (key, doc) VALUES (?, ?) ON CONFLICT (key)" + _UPDATE_DOC
_UPSERT_CRON = "INSERT INTO cron (id, doc) VALUES (?, ?) ON CONFLICT (id)" + _UPDATE_DOC

Batch = tuple[str, list[tuple[Any, ...]]]


def _rows(store: JournaledStore) -> list[Batch]:
    """The statements and rows of one commit: upserts of changed documents, deletes of gone ones.

    A document noted as changed but no longer in the store was removed: its row is deleted. Per
    collection: (upsert, delete, the changed keys, the row of a key if its document is still
    there, else None, and the key as the delete statement names it).
    """
    states, runs, nodes, graphs, cron = (
        store.states, store.runs, store.nodes, store.graphs, store.cron,
    )
    values = store.store_values

    def state_row(item: tuple[str, State]) -> tuple[Any, ...] | None:
        state_id, state = item  # the very object journaled, not a later one with the same id
        return (state_id, state.seq, _state_doc(state)) if states.get(state_id) is state else None

    def run_row(run_id: str) -> tuple[Any, ...] | None:
        run = runs.get(run_id)
        return None if run is None else (run_id, run.seq, _run_doc(run, values.get(run_id)))

    def node_row(key: tuple[str, str]) -> tuple[Any, ...] | None:
        node = nodes.get(key[0], {}).get(key[1])
        return None if node is None else (_dumps(list(key)), _dumps(node))

    def graph_row(key: tuple[str, str]) -> tuple[Any, ...] | None:
        template = graphs.get(key)
        return None if template is None else (_dumps(list(key)), _graph_doc(template))

    def cron_row(doc_id: str) -> tuple[Any, ...] | None:
        doc = cron.get(doc_id)
        return None if doc is None else (doc_id, _cron_doc(doc))

    def first(item: tuple[str, State]) -> str:
        return item[0]

    def same(key: str) -> str:
        return key

    def pair(key: tuple[str, str]) -> str:
        return _dumps(list(key))

    collections: list[tuple[str, str, Iterable[Any], Callable[[Any], Any], Callable[[Any], Any]]]
    collections = [
        (_UPSERT_STATE, "DELETE FROM states WHERE id = ?", store.dirty_states.items(),
         state_row, first),
        (_UPSERT_RUN, "DELETE FROM runs WHERE run_id = ?", store.dirty_runs, run_row, same),
        (_UPSERT_NODE, "DELETE FROM nodes WHERE key = ?", store.dirty_nodes, node_row, pair),
        (_UPSERT_GRAPH, "DELETE FROM graphs WHERE key = ?", store.dirty_graphs, graph_row, pair),
        (_UPSERT_CRON, "DELETE FROM cron WHERE id = ?", store.dirty_cron, cron_row, same),
    ]
    batches: list[Batch] = []
    for upsert, delete, changed, row_of, deleted_key in collections:
        rows: list[tuple[Any, ...]] = []
        gone: list[tuple[Any, ...]] = []
        for key in changed:
            row = row_of(key)
            if row is None:
                gone.append((deleted_key(key),))
            else:
                rows.append(row)
        batches += [(upsert, rows), (delete, gone)]
    return [(sql, rows) for sql, rows in batches if rows]


def _check_header(db: Path) -> None:
    """Refuse a file that is not SQLite before SQLite touches it (an empty file is new).

    A path that is not a regular file is refused first: opening a FIFO would wait for a writer.
    """
    if db.exists() and not db.is_file():
        raise StorageError(f"{db} is not a regular file; choose a file path for --db")
    try:
        with db.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(
            f"{db} cannot be read ({_os_reason(exc)}); check its permissions"
        ) from None
    if header and header != _SQLITE_HEADER:
        raise StorageError(
            f"{db} is not an SQLite database (corrupt, or another kind of file); move it away"
            " or choose another path"
        )


def _check_version(db: Path, connection: sqlite3.Connection, version: int) -> None:
    if version > SCHEMA_VERSION:
        written_by = "a newer exo-ref"
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'written_by'").fetchone()
            if row is not None:
                written_by = f"exo-ref {row[0]}"
        except sqlite3.Error:
            pass
        raise StorageError(
            f"{db} has database schema version {version} (written by {written_by}); this"
            f" exo-ref {__version__} reads versions up to {SCHEMA_VERSION}: upgrade exo-ref,"
            " or choose another path"
        )
    if version < 1:
        raise StorageError(
            f"{db} is marked as an exo-ref database but has no schema version; restore it"
            " from a copy or choose another path"
        )


def _migrate(db: Path, connection: sqlite3.Connection, version: int) -> None:
    """Upgrade a file of ``version`` to :data:`SCHEMA_VERSION`, one transaction per step."""
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StorageError(
                f"{db} has database schema version {version}, and this exo-ref {__version__}"
                f" has no migration from it to version {version + 1}; open it with the exo-ref"
                " that wrote it, or choose another path"
            )
        connection.execute("BEGIN IMMEDIATE")
        try:
            step(connection)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('written_by', ?)",
                (__version__,),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        version += 1


def _check_integrity(db: Path, connection: sqlite3.Connection) -> None:
    problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        # SQLite's report spans lines; the message stays one line, with the first problem.
        first = " ".join(str(problems[0]).split())[:200] if problems else "integrity check failed"
        raise StorageError(
            f"{db} is corrupt ({first}); restore it from a copy or choose another path"
        )
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if not tables >= _TABLES:
        raise StorageError(
            f"{db} is corrupt (missing tables: {', '.join(sorted(_TABLES - tables))}); restore it"
            " from a copy or choose another path"
        )


def _meta(db: Path, connection: sqlite3.Connection) -> dict[str, str]:
    return {str(k): str(v) for k, v in connection.execute("SELECT key, value FROM meta")}


def _create(connection: sqlite3.Connection, box: SecretBox, prefix: int) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("id_prefix", f"{prefix & 0xFFFFFFFF:08x}"),
                ("last_id", "0"),
                ("written_by", __version__),
                ("created_at", repr(time.time())),
                ("key_check", box.encrypt(_KEY_CHECK)),
            ],
        )
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
