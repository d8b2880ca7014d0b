"""Deliberately broken runtimes: each one breaks one conformance rule, proving its check bites.

They are exo_ref's ``Runtime`` with one documented seam overridden (``poller_class`` /
``worker_pool_class`` and their hooks, see exo_ref/_runtime.py), or wrapped where the bug lives
on the wire (registration). ``MUTANTS`` maps a name to its target and the rule expected to catch it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx

import exo_ref
from conformance import RuntimeHandle, RuntimeSettings, RuntimeTarget, exo_ref_target
from exo_ref import Backoff
from exo_ref._poller import Backlog, Poller
from exo_ref._workers import WorkerPool

__all__ = [
    "ask_double",
    "constant_error_backoff",
    "exceed_workers",
    "hold_double",
    "polls_after_stop",
    "prune_as_error",
    "registers_without_secrets",
    "sleep_after_full_batch",
    "swallow_report",
    "sync_on_loop",
    "tolerates_invalid_nodes",
]


def _runtime(
    name: str, *, poller: type[Poller] = Poller, pool: type[WorkerPool] = WorkerPool
) -> RuntimeTarget:
    cls = type(name, (exo_ref.Runtime,), {"poller_class": poller, "worker_pool_class": pool})
    return exo_ref_target(cls, name=name)


# -- batching ----------------------------------------------------------------------------------


class _AskDoublePoller(Poller):
    def request_size(self) -> int:
        return self.backlog.free() + self.backlog.batch_size


class _UpstreamBacklog(Backlog):
    @property
    def threshold(self) -> int:
        return self.batch_size


class _HoldDoublePoller(Poller):
    """Upstream's rule (contract §8.5): poll a full batch whenever fewer than batch_size wait."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backlog.__class__ = _UpstreamBacklog

    def request_size(self) -> int:
        return self.backlog.batch_size


def ask_double() -> RuntimeTarget:
    """Over-claims by asking for twice the free room (breaks B1)."""
    return _runtime("ask_double", poller=_AskDoublePoller)


def hold_double() -> RuntimeTarget:
    """Over-claims by holding up to 2 * batch_size - 1 unstarted states (breaks B2)."""
    return _runtime("hold_double", poller=_HoldDoublePoller)


class _SwallowingClient:
    """Delegates every call but pretends executed reports were delivered."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def report_executed(self, state_id: str, outputs: list[dict[str, Any]]) -> Any:
        return None


class _SwallowPool(WorkerPool):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = _SwallowingClient(self.client)


def swallow_report() -> RuntimeTarget:
    """Never sends executed reports (breaks B3; the states stay QUEUED forever)."""
    return _runtime("swallow_report", pool=_SwallowPool)


# -- concurrency -------------------------------------------------------------------------------


class _ExceedPool(WorkerPool):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.concurrency = kwargs["workers"] + 1


def exceed_workers() -> RuntimeTarget:
    """Runs one worker task more than ``workers`` (breaks W1)."""
    return _runtime("exceed_workers", pool=_ExceedPool)


class _OnLoopPool(WorkerPool):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._nodes = {name: replace(info, is_async=True) for name, info in self._nodes.items()}


def sync_on_loop() -> RuntimeTarget:
    """Calls a synchronous ``execute`` on the event loop, as upstream does (breaks W3)."""
    return _runtime("sync_on_loop", pool=_OnLoopPool)


# -- timing ------------------------------------------------------------------------------------


class _SleepyPoller(Poller):
    async def after_poll(self, asked: int, got: int) -> None:
        await self.wait(self.clock.sleep(self.poll_interval))


def sleep_after_full_batch() -> RuntimeTarget:
    """Sleeps ``poll_interval`` even after a full poll, as upstream does (breaks T2)."""
    return _runtime("sleep_after_full_batch", poller=_SleepyPoller)


class _ConstantBackoffPoller(Poller):
    def __init__(self, **kwargs: Any) -> None:
        interval = kwargs["poll_interval"]
        fixed = Backoff(initial=2 * interval, maximum=2 * interval, multiplier=1.0, jitter=0.0)
        super().__init__(**kwargs, error_backoff=fixed)


def constant_error_backoff() -> RuntimeTarget:
    """Waits 2 * poll_interval after every poll error, as upstream does (breaks T3)."""
    return _runtime("constant_error_backoff", poller=_ConstantBackoffPoller)


class _LatePoller(Poller):
    """stop() takes effect only after one more poll."""

    def stop(self) -> None:
        self._late_stop = True

    async def after_poll(self, asked: int, got: int) -> None:
        if getattr(self, "_late_stop", False):
            super().stop()
            return
        await super().after_poll(asked, got)


def polls_after_stop() -> RuntimeTarget:
    """Keeps polling once more after stop() (breaks T4)."""
    return _runtime("polls_after_stop", poller=_LatePoller)


# -- error reporting ---------------------------------------------------------------------------


class _PruneAsErrorClient(_SwallowingClient):
    async def report_executed(self, state_id: str, outputs: list[dict[str, Any]]) -> Any:
        return await self._inner.report_executed(state_id, outputs)

    async def report_prune(self, state_id: str, data: dict[str, Any]) -> Any:
        return await self._inner.report_errored(state_id, f"pruned with {data}")


class _PruneAsErrorPool(WorkerPool):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = _PruneAsErrorClient(self.client)


def prune_as_error() -> RuntimeTarget:
    """Reports a prune signal as errored (breaks E1)."""
    return _runtime("prune_as_error", pool=_PruneAsErrorPool)


# -- registration ------------------------------------------------------------------------------


class _DropSecretsTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path.rstrip("/").endswith("/nodes"):
            body = json.loads(await request.aread())
            for node in body.get("nodes", []):
                node["secrets"] = []
            request = httpx.Request(
                request.method,
                request.url,
                headers={k: v for k, v in request.headers.items() if k != "content-length"},
                json=body,
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def registers_without_secrets() -> RuntimeTarget:
    """Registers every node with an empty secrets list (breaks R1)."""
    base = exo_ref_target()

    def make(nodes: Sequence[type[Any]], settings: RuntimeSettings) -> RuntimeHandle:
        wrapped = replace(settings, transport=_DropSecretsTransport(settings.transport))
        return base.make(nodes, wrapped)

    return replace(base, name="registers_without_secrets", make=make)


def tolerates_invalid_nodes() -> RuntimeTarget:
    """Silently drops node classes that do not validate, and serves the rest (breaks R3)."""
    base = exo_ref_target()

    def make(nodes: Sequence[type[Any]], settings: RuntimeSettings) -> RuntimeHandle:
        good: list[type[Any]] = []
        for node in nodes:
            try:
                exo_ref.Runtime("probe", "probe", [node], state_manager_uri="http://x", key="k")
            except ValueError:
                continue
            if node.__name__ not in {g.__name__ for g in good}:
                good.append(node)
        return base.make(good, settings)

    return replace(base, name="tolerates_invalid_nodes", make=make)
