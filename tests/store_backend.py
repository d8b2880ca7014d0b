"""Run the test battery against the SQLite-backed store: ``EXO_FAKE_STORE=sqlite``.

One seam, in test code only: when the variable says ``sqlite``, every ``FakeStateManager(...)``
made during the session without ``db=`` or ``engine=`` gets ``db=<a fresh file under the
session's tmp dir>``. That covers the route tests, the fuzz test, the parity replay and the
conformance targets (in-process and served) without touching them. After each test, every fake
it made is checked: its database, read back into a fresh store, must hold exactly the documents
of the running store (and pass the index invariants), so the battery proves that what was
answered was also written. The library itself never reads this variable.

``tox -e sqlite`` sets it; ``EXO_FAKE_STORE=memory`` (or unset) is the default in-memory store.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_state_manager import FakeStateManager
from fake_state_manager._store.documents import epoch_ms
from fake_state_manager._store.sqlite import snapshot
from fake_state_manager._store.store import check_invariants

__all__ = ["STORE_ENV", "assert_persisted", "sqlite_store_check", "sqlite_store_session"]

STORE_ENV = "EXO_FAKE_STORE"
_CHOICES = ("memory", "sqlite")

_made: list[FakeStateManager] = []


def _backend() -> str:
    value = os.environ.get(STORE_ENV, "") or "memory"
    if value not in _CHOICES:
        raise pytest.UsageError(f"{STORE_ENV} must be one of {', '.join(_CHOICES)}, got {value!r}")
    return value


def assert_persisted(sm: FakeStateManager) -> None:
    """Assert that ``sm``'s database holds exactly what its in-memory store holds."""
    engine = sm.engine
    storage = engine.storage
    assert storage is not None, "this fake has no database"
    with engine.lock:
        if storage.closed:
            return
        reloaded = storage.load(epoch_ms(engine.clock.now()))
        check_invariants(reloaded)
        running, stored = snapshot(engine.store), snapshot(reloaded)
    for collection in running:
        assert stored[collection] == running[collection], (
            f"the database of {sm!r} disagrees with its memory in {collection!r}"
        )


@pytest.fixture(scope="session", autouse=True)
def sqlite_store_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """With ``EXO_FAKE_STORE=sqlite``, give every new FakeStateManager a database file."""
    if _backend() != "sqlite":
        yield
        return
    base: Path = tmp_path_factory.mktemp("fake-db")
    numbers = itertools.count(1)
    original = FakeStateManager.__init__

    def with_db(self: FakeStateManager, **kwargs: Any) -> None:
        if kwargs.get("db") is None and kwargs.get("engine") is None:
            kwargs["db"] = base / f"fake-{next(numbers)}.db"
            original(self, **kwargs)
            _made.append(self)
        else:
            original(self, **kwargs)

    FakeStateManager.__init__ = with_db  # type: ignore[method-assign]
    try:
        yield
    finally:
        FakeStateManager.__init__ = original  # type: ignore[method-assign]
        made, _made[:] = list(_made), []
        try:
            for sm in made:  # the fakes of session and module fixtures (served fakes)
                assert_persisted(sm)
        finally:
            for sm in made:
                sm.close()


@pytest.fixture(autouse=True)
def sqlite_store_check() -> Iterator[None]:
    """After each test, check and close the database of every fake the test made."""
    start = len(_made)
    yield
    mine, _made[start:] = _made[start:], []
    try:
        for sm in mine:
            assert_persisted(sm)
    finally:
        for sm in mine:
            sm.close()
