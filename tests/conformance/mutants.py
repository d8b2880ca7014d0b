"""Deliberately broken runtimes: each one breaks one conformance rule, proving its check bites.

Each mutant is an ``exo_ref.Runtime`` subclass with one documented seam overridden
(``poller_class`` / ``worker_pool_class`` and their hooks, see exo_ref/_runtime.py), or its
constructor wrapped where the bug lives on the wire (registration) or in the node list. Being a
plain Runtime class, one mutant serves both modes:

- injected (in-process): the factory functions below (``ask_double()``...) give a
  :class:`~conformance.RuntimeTarget` for the checks of test_mutants.py;
- black-box: ``python -m conformance.service --sdk exo_ref --runtime-class
  tests.conformance.mutants:AskDouble`` serves the catalogue with it in a subprocess
  (test_blackbox.py, :data:`BLACK_BOX`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx

import exo_ref
from conformance import RuntimeTarget, exo_ref_target
from exo_ref import Backoff
from exo_ref._poller import Backlog, Poller
from exo_ref._workers import WorkerPool

__all__ = [
    "AskDouble",
    "ConstantErrorBackoff",
    "CrashesWhilePolling",
    "EagerIdlePolls",
    "ErroredAfterFailedReport",
    "ExceedWorkers",
    "HoldDouble",
    "IgnoresStop",
    "NoReportRetry",
    "OneWorker",
    "PollsAfterStop",
    "PollsForUnregistered",
    "PruneAsError",
    "QuickThenConstantBackoff",
    "ReRegistersWithoutSecrets",
    "RegistersWithoutSecrets",
    "ReportsTwice",
    "ReportsUnclaimed",
    "SleepAfterFullBatch",
    "SwallowReport",
    "SyncOnLoop",
    "ToleratesInvalidNodes",
    "ask_double",
    "constant_error_backoff",
    "crashes_while_polling",
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

logger = logging.getLogger("conformance.mutants")


def _mutant(
    name: str, *, poller: type[Poller] = Poller, pool: type[WorkerPool] = WorkerPool
) -> type[exo_ref.Runtime]:
    """A Runtime subclass called ``name`` with the given poller and worker pool classes."""
    body = {"poller_class": poller, "worker_pool_class": pool, "__module__": __name__}
    return type(name, (exo_ref.Runtime,), body)


def _target(cls: type[exo_ref.Runtime], name: str) -> RuntimeTarget:
    return exo_ref_target(cls, name=name)


class _DelegatingClient:
    """Delegates every call of the worker pool's client; subclasses override some reports."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _pool_with(client_class: type[_DelegatingClient]) -> type[WorkerPool]:
    class Pool(WorkerPool):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.client = client_class(self.client)

    return Pool


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


class RegistersWithoutSecrets(exo_ref.Runtime):
    """Registers every node with an empty secrets list (breaks R1)."""

    def __init__(
        self, *args: Any, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
    ) -> None:
        inner = transport if transport is not None else httpx.AsyncHTTPTransport()
        super().__init__(*args, transport=_DropSecretsTransport(inner), **kwargs)


class _ExtraNamePoller(Poller):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.node_names = [*self.node_names, "NotRegistered"]


#: Polls for a node it never registered, next to its own (breaks R2).
PollsForUnregistered = _mutant("PollsForUnregistered", poller=_ExtraNamePoller)


class ToleratesInvalidNodes(exo_ref.Runtime):
    """Silently drops node classes that do not validate, and serves the rest (breaks R3)."""

    def __init__(
        self, namespace: str, name: str, nodes: Sequence[type[Any]], *args: Any, **kwargs: Any
    ) -> None:
        good: list[type[Any]] = []
        for node in nodes:
            try:
                exo_ref.Runtime("probe", "probe", [node], state_manager_uri="http://x", key="k")
            except ValueError:
                continue
            if node.__name__ not in {g.__name__ for g in good}:
                good.append(node)
        super().__init__(namespace, name, good, *args, **kwargs)


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


#: Over-claims by asking for twice the free room (breaks B1).
AskDouble = _mutant("AskDouble", poller=_AskDoublePoller)
#: Over-claims by holding up to 2 * batch_size - 1 unstarted states (breaks B2).
HoldDouble = _mutant("HoldDouble", poller=_HoldDoublePoller)


class _SwallowingClient(_DelegatingClient):
    async def report_executed(self, state_id: str, outputs: list[dict[str, Any]]) -> Any:
        return None


#: Never sends executed reports (breaks B3; the states stay QUEUED forever).
SwallowReport = _mutant("SwallowReport", pool=_pool_with(_SwallowingClient))


# -- concurrency -------------------------------------------------------------------------------


class _ExceedPool(WorkerPool):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.concurrency = kwargs["workers"] + 1


class _OneWorkerPool(WorkerPool):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.concurrency = 1


class _OnLoopPool(WorkerPool):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._nodes = {name: replace(info, is_async=True) for name, info in self._nodes.items()}


#: Runs one worker task more than ``workers`` (breaks W1).
ExceedWorkers = _mutant("ExceedWorkers", pool=_ExceedPool)
#: Runs one worker task whatever ``workers`` says (breaks W2).
OneWorker = _mutant("OneWorker", pool=_OneWorkerPool)
#: Calls a synchronous ``execute`` on the event loop, as upstream does (breaks W3).
SyncOnLoop = _mutant("SyncOnLoop", pool=_OnLoopPool)


# -- timing ------------------------------------------------------------------------------------


class _EagerPoller(Poller):
    async def after_poll(self, asked: int, got: int) -> None:
        if got < asked:
            await self.wait(self.clock.sleep(self.poll_interval / 4))


class _SleepyPoller(Poller):
    async def after_poll(self, asked: int, got: int) -> None:
        await self.wait(self.clock.sleep(self.poll_interval))


class _ConstantBackoffPoller(Poller):
    def __init__(self, **kwargs: Any) -> None:
        interval = kwargs["poll_interval"]
        fixed = Backoff(initial=2 * interval, maximum=2 * interval, multiplier=1.0, jitter=0.0)
        super().__init__(**kwargs, error_backoff=fixed)


class _LatePoller(Poller):
    """stop() takes effect only after one more poll."""

    def stop(self) -> None:
        self._late_stop = True

    async def after_poll(self, asked: int, got: int) -> None:
        if getattr(self, "_late_stop", False):
            super().stop()
            return
        await super().after_poll(asked, got)


#: Polls again a quarter interval after an idle poll (breaks T1).
EagerIdlePolls = _mutant("EagerIdlePolls", poller=_EagerPoller)
#: Sleeps ``poll_interval`` even after a full poll, as upstream does (breaks T2).
SleepAfterFullBatch = _mutant("SleepAfterFullBatch", poller=_SleepyPoller)
#: Waits 2 * poll_interval after every poll error, as upstream does (breaks T3).
ConstantErrorBackoff = _mutant("ConstantErrorBackoff", poller=_ConstantBackoffPoller)
#: Keeps polling once more after stop() (breaks T4).
PollsAfterStop = _mutant("PollsAfterStop", poller=_LatePoller)


# -- error reporting ---------------------------------------------------------------------------


class _PruneAsErrorClient(_DelegatingClient):
    async def report_prune(self, state_id: str, data: dict[str, Any]) -> Any:
        return await self._inner.report_errored(state_id, f"pruned with {data}")


class _RetryRewritingTransport(httpx.AsyncBaseTransport):
    """Sees each report fail or succeed on the wire, and rewrites what the runtime retries.

    Wire-level on purpose: it needs nothing of exo_ref but the public ``transport=`` argument.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self._failed: set[str] = set()

    def retry(self, request: httpx.Request) -> httpx.Request | httpx.Response:
        """What to do with a retried report: send another request, or answer it here."""
        raise NotImplementedError

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        report = request.method == "POST" and "/state/" in path and not path.endswith("/secrets")
        if report and path in self._failed:
            replacement = self.retry(request)
            if isinstance(replacement, httpx.Response):
                return replacement
            request = replacement
        response = await self._inner.handle_async_request(request)
        if report and response.status_code >= 500:
            self._failed.add(path)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _NoRetryTransport(_RetryRewritingTransport):
    def retry(self, request: httpx.Request) -> httpx.Request | httpx.Response:
        logger.error("mutant: %s failed once; not retried", request.url.path)
        return httpx.Response(200, json={"status": "pretend"}, request=request)


class _ErroredOnRetryTransport(_RetryRewritingTransport):
    def retry(self, request: httpx.Request) -> httpx.Request | httpx.Response:
        if not request.url.path.endswith("/executed"):
            return request
        url = request.url.copy_with(path=request.url.path.removesuffix("/executed") + "/errored")
        headers = {k: v for k, v in request.headers.items() if k != "content-length"}
        return httpx.Request("POST", url, headers=headers, json={"error": "outputs undeliverable"})


def _wire_mutant(name: str, transport_class: type[_RetryRewritingTransport]) -> type[Any]:
    def __init__(
        self: Any, *args: Any, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
    ) -> None:
        inner = transport if transport is not None else httpx.AsyncHTTPTransport()
        exo_ref.Runtime.__init__(self, *args, transport=transport_class(inner), **kwargs)

    return type(name, (exo_ref.Runtime,), {"__init__": __init__, "__module__": __name__})


#: Reports a prune signal as errored (breaks E1).
PruneAsError = _mutant("PruneAsError", pool=_pool_with(_PruneAsErrorClient))
#: Tries each report once, as upstream does: a 5xx loses it (breaks E2).
NoReportRetry = _wire_mutant("NoReportRetry", _NoRetryTransport)
#: Retries a failed executed report as errored (breaks E3).
ErroredAfterFailedReport = _wire_mutant("ErroredAfterFailedReport", _ErroredOnRetryTransport)


# -- lifecycle ---------------------------------------------------------------------------------


class _CrashingPoller(Poller):
    async def after_poll(self, asked: int, got: int) -> None:
        if self.polls >= 2:
            raise RuntimeError("mutant: the poller crashed")
        await super().after_poll(asked, got)


#: Its poller raises after the second poll, ending run() with the error (breaks L1).
CrashesWhilePolling = _mutant("CrashesWhilePolling", poller=_CrashingPoller)


class IgnoresStop(exo_ref.Runtime):
    """stop() (and so SIGTERM) does nothing: the runtime runs on (breaks L2)."""

    def stop(self) -> None:
        return None


# -- injected-mode targets ---------------------------------------------------------------------


def ask_double() -> RuntimeTarget:
    """:data:`AskDouble` as a target (B1)."""
    return _target(AskDouble, "ask_double")


def hold_double() -> RuntimeTarget:
    """:data:`HoldDouble` as a target (B2)."""
    return _target(HoldDouble, "hold_double")


def swallow_report() -> RuntimeTarget:
    """:data:`SwallowReport` as a target (B3)."""
    return _target(SwallowReport, "swallow_report")


def exceed_workers() -> RuntimeTarget:
    """:data:`ExceedWorkers` as a target (W1)."""
    return _target(ExceedWorkers, "exceed_workers")


def sync_on_loop() -> RuntimeTarget:
    """:data:`SyncOnLoop` as a target (W3)."""
    return _target(SyncOnLoop, "sync_on_loop")


def sleep_after_full_batch() -> RuntimeTarget:
    """:data:`SleepAfterFullBatch` as a target (T2)."""
    return _target(SleepAfterFullBatch, "sleep_after_full_batch")


def constant_error_backoff() -> RuntimeTarget:
    """:data:`ConstantErrorBackoff` as a target (T3)."""
    return _target(ConstantErrorBackoff, "constant_error_backoff")


def polls_after_stop() -> RuntimeTarget:
    """:data:`PollsAfterStop` as a target (T4)."""
    return _target(PollsAfterStop, "polls_after_stop")


def prune_as_error() -> RuntimeTarget:
    """:data:`PruneAsError` as a target (E1)."""
    return _target(PruneAsError, "prune_as_error")


def crashes_while_polling() -> RuntimeTarget:
    """:data:`CrashesWhilePolling` as a target (L1)."""
    return _target(CrashesWhilePolling, "crashes_while_polling")


def registers_without_secrets() -> RuntimeTarget:
    """:class:`RegistersWithoutSecrets` as a target (R1)."""
    return _target(RegistersWithoutSecrets, "registers_without_secrets")


def tolerates_invalid_nodes() -> RuntimeTarget:
    """:class:`ToleratesInvalidNodes` as a target (R3)."""
    return _target(ToleratesInvalidNodes, "tolerates_invalid_nodes")


# -- more black-box mutants: each slips past a weaker reading of its rule ----------------------


class _WireMutant(httpx.AsyncBaseTransport):
    """Wraps the runtime's transport; :meth:`handle` changes what goes on the wire."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def send(self, request: httpx.Request, body: Any = None) -> httpx.Response:
        """Send ``request`` (with ``body`` as its JSON instead, if given) and read the answer."""
        if body is not None:
            headers = {k: v for k, v in request.headers.items() if k != "content-length"}
            request = httpx.Request(request.method, request.url, headers=headers, json=body)
        response = await self._inner.handle_async_request(request)
        await response.aread()
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.handle(request, request.url.path.rstrip("/"))

    async def handle(self, request: httpx.Request, path: str) -> httpx.Response:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._inner.aclose()


def _wire_mutant(name: str, doc: str, transport: type[_WireMutant]) -> type[exo_ref.Runtime]:
    def __init__(self: exo_ref.Runtime, *args: Any, **kwargs: Any) -> None:
        inner = kwargs.pop("transport", None) or httpx.AsyncHTTPTransport()
        exo_ref.Runtime.__init__(self, *args, transport=transport(inner), **kwargs)

    return type(name, (exo_ref.Runtime,), {"__init__": __init__, "__doc__": doc,
                                            "__module__": __name__})


class _ReportsTwice(_WireMutant):
    async def handle(self, request: httpx.Request, path: str) -> httpx.Response:
        response = await self.send(request)
        if request.method == "POST" and path.endswith("/executed"):
            await self.send(request, json.loads(request.content))  # once more, after the answer
        return response


class _ReportsUnclaimed(_WireMutant):
    async def handle(self, request: httpx.Request, path: str) -> httpx.Response:
        if request.method == "POST" and path.endswith("/executed"):
            parts = path.split("/")
            parts[parts.index("state") + 1] = "f" * 24  # a state nobody claimed
            headers = {k: v for k, v in request.headers.items() if k != "content-length"}
            stray = request.url.copy_with(path="/".join(parts))
            await self.send(httpx.Request("POST", stray, headers=headers,
                                          content=request.content))
        return await self.send(request)


class _ReRegistersWithoutSecrets(_WireMutant):
    async def handle(self, request: httpx.Request, path: str) -> httpx.Response:
        response = await self.send(request)
        if request.method == "PUT" and path.endswith("/nodes"):
            body = json.loads(request.content)
            body["nodes"] = [{**node, "secrets": []} for node in body["nodes"]]
            await self.send(request, body)  # the server keeps this one
        return response


ReportsTwice = _wire_mutant(
    "ReportsTwice", "Sends each executed report again after it was answered (breaks B3).",
    _ReportsTwice,
)
ReportsUnclaimed = _wire_mutant(
    "ReportsUnclaimed", "Also reports a state it never claimed (breaks B3).", _ReportsUnclaimed
)
ReRegistersWithoutSecrets = _wire_mutant(
    "ReRegistersWithoutSecrets",
    "Registers right, then again without secrets before its first poll (breaks R1).",
    _ReRegistersWithoutSecrets,
)


class _QuickThenConstantPoller(Poller):
    """One retry at once after a poll error, then a constant ``2 * poll_interval``."""

    def __init__(self, **kwargs: Any) -> None:
        interval = kwargs["poll_interval"]
        quick = Backoff(initial=0.01, maximum=2 * interval, multiplier=1000.0, jitter=0.0)
        super().__init__(**kwargs, error_backoff=quick)


QuickThenConstantBackoff = _mutant("QuickThenConstantBackoff", poller=_QuickThenConstantPoller)
