"""The factories a conformance check is pointed at: a runtime and a state manager.

A check never imports the implementation it checks. It receives

- a :class:`RuntimeTarget`: a factory ``(nodes, settings) -> RuntimeHandle`` plus the runtime's
  ``BaseNode`` and signal classes (the generated nodes must subclass the runtime's own base);
- a :class:`StateManagerFactory`: an async context manager giving a :class:`StateManagerHandle`
  (URI, key, clock, and an in-process transport and the server's request log where available).

Ready-made targets for exo_ref and the fake state manager live in :mod:`conformance._builtin`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Protocol

import httpx

from exo_ref import Clock

__all__ = [
    "RuntimeFactory",
    "RuntimeHandle",
    "RuntimeSettings",
    "RuntimeTarget",
    "StateManagerFactory",
    "StateManagerHandle",
]


@dataclass(frozen=True)
class RuntimeSettings:
    """What a check asks the runtime factory for (upstream constructor names, contract §8.2).

    ``transport`` is the recording/fault-injecting transport the runtime must send every request
    through; ``clock`` is the scenario clock it must use for every wait.
    """

    namespace: str
    name: str
    batch_size: int
    workers: int
    poll_interval: float
    state_manager_uri: str
    key: str
    transport: httpx.AsyncBaseTransport
    clock: Clock

    def as_kwargs(self) -> dict[str, Any]:
        """Every setting by its field name: exo_ref's ``Runtime`` keywords (upstream's plus
        ``transport`` and ``clock``), so such a runtime takes them as they are."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class RuntimeHandle(Protocol):
    """A runtime as a check drives it: ``run()`` until ``stop()``."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


RuntimeFactory = Callable[[Sequence[type[Any]], RuntimeSettings], RuntimeHandle]


@dataclass(frozen=True)
class RuntimeTarget:
    """A runtime implementation under test.

    Attributes:
        name: shown in failure messages.
        make: builds a runtime for the given node classes and settings. Invalid node classes
            must make it (or ``run()``) raise before any request is sent.
        base_node: the class generated nodes subclass (it provides ``Inputs``/``Outputs``/
            ``Secrets`` and calls ``execute(self)``, contract §8.1).
        prune_signal: builds the exception a node raises to prune (contract §6.1).
        requeue_signal: builds the exception a node raises to re-enqueue after a delay (§6.2).
        sync_nodes: whether a plain ``def execute`` is supported (exo_ref: yes; upstream: no).
        max_error_backoff: the runtime's cap on the spacing between polls after errors (seconds).
    """

    name: str
    make: RuntimeFactory
    base_node: type[Any]
    prune_signal: Callable[[dict[str, Any]], BaseException]
    requeue_signal: Callable[[timedelta], BaseException]
    sync_nodes: bool = True
    max_error_backoff: float = 60.0


@dataclass(frozen=True)
class StateManagerHandle:
    """A running state manager as a check uses it.

    Attributes:
        uri: base URL (``http://...``), without the ``/v0`` prefix.
        key: the API key.
        clock: the clock the server uses; the runtime gets the same one. A ManualClock must be
            auto-advancing (the handle's owner drives it).
        transport: an in-process transport (e.g. the fake's ASGITransport), or None to use the
            network.
        requests: returns the server's own request log (the fake's ``sm.requests``), or None when
            the server keeps none (a live state manager).
        exact_time: True when ``clock`` is virtual, so timing rules use tight tolerances.
    """

    uri: str
    key: str
    clock: Clock
    transport: httpx.AsyncBaseTransport | None = None
    requests: Callable[[], Sequence[Any]] | None = None
    exact_time: bool = False


StateManagerFactory = Callable[[], AbstractAsyncContextManager[StateManagerHandle]]
