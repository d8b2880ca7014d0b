"""Fixtures shared by the engine tests that run on both stores (memory and SQLite)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exo_ref import ManualClock
from fake_state_manager._engine.engine import Engine
from fake_state_manager._store.sqlite import SqliteStorage, snapshot

MakeEngine = Callable[..., Engine]


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeEngine]:
    """``make(clock, **options)``: an engine on memory or on a database file (reopened per call).

    At the end, a database must hold exactly what the engine served (every change and drop was
    written).
    """
    made: list[Engine] = []

    def build(clock: ManualClock, **options: object) -> Engine:
        storage = None
        if request.param == "sqlite":
            for engine in made:
                engine.close()
            storage = SqliteStorage.open(tmp_path / "engine.db")
        engine = Engine(clock=clock, rng=random.Random(0), storage=storage, **options)  # type: ignore[arg-type]
        made.append(engine)
        return engine

    yield build
    for engine in made:
        if engine.storage is not None and not engine.storage.closed:
            reloaded = engine.storage.load(int(engine.clock.now() * 1000))
            assert snapshot(reloaded) == snapshot(engine.store)
        engine.close()
