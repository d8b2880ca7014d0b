"""Ready-made targets: exo_ref as the runtime; the fake (in-process or served) or a live server.

Imports of exo_ref's runtime and of the fake are deferred to the call, so ``conformance`` can be
pointed at another runtime or state manager without them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio.to_thread

from conformance._targets import (
    RuntimeHandle,
    RuntimeSettings,
    RuntimeTarget,
    StateManagerFactory,
    StateManagerHandle,
)
from exo_ref import ManualClock, SystemClock

__all__ = ["exo_ref_target", "in_process_fake", "live_state_manager", "served_fake"]


def exo_ref_target(
    runtime_class: type[Any] | None = None, *, name: str = "exo_ref"
) -> RuntimeTarget:
    """exo_ref's ``Runtime`` (or a subclass, e.g. a conformance mutant) as a target."""
    import exo_ref

    cls: type[Any] = runtime_class or exo_ref.Runtime

    def make(nodes: Sequence[type[Any]], s: RuntimeSettings) -> RuntimeHandle:
        runtime: RuntimeHandle = cls(nodes=list(nodes), **s.as_kwargs())
        return runtime

    def requeue(delay: timedelta) -> BaseException:
        return exo_ref.ReQueueAfterSignal(delay)

    return RuntimeTarget(
        name=name,
        make=make,
        base_node=exo_ref.BaseNode,
        prune_signal=exo_ref.PruneSignal,
        requeue_signal=requeue,
        sync_nodes=True,
        max_error_backoff=30.0,
    )


def in_process_fake(*, seed: int = 0) -> StateManagerFactory:
    """The fake state manager in-process (ASGITransport) on an auto-advancing ManualClock."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[StateManagerHandle]:
        from fake_state_manager import FakeStateManager

        clock = ManualClock(auto_advance=True)
        async with FakeStateManager(clock=clock, seed=seed) as sm:
            yield StateManagerHandle(
                uri=sm.uri,
                key=sm.api_key,
                clock=clock,
                transport=sm.transport,
                requests=lambda: sm.requests,
                exact_time=True,
            )

    return factory


def served_fake(*, seed: int = 0) -> StateManagerFactory:
    """The fake served by uvicorn on loopback in a thread; real (system) clock."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[StateManagerHandle]:
        from fake_state_manager import FakeStateManager

        clock = SystemClock()
        sm = FakeStateManager(clock=clock, seed=seed, api_key=f"key-{uuid.uuid4().hex}")
        serving = sm.serve_in_thread()
        uri = await anyio.to_thread.run_sync(serving.__enter__)
        try:
            yield StateManagerHandle(
                uri=uri, key=sm.api_key, clock=clock, requests=lambda: sm.requests
            )
        finally:
            await anyio.to_thread.run_sync(serving.__exit__, None, None, None)

    return factory


def live_state_manager(uri: str, key: str) -> StateManagerFactory:
    """A state manager somebody else runs (no request log, real clock)."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[StateManagerHandle]:
        yield StateManagerHandle(uri=uri.rstrip("/"), key=key, clock=SystemClock())

    return factory
