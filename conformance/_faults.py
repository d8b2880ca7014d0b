"""A wrapping httpx transport that injects server and network faults by a seeded plan.

It sits between the runtime and the state manager (any ``httpx.AsyncBaseTransport``: the fake's
ASGITransport in-process, or an ``AsyncHTTPTransport`` to a real server) and, for each request
the plan picks, does one of:

===================  ==========  ============================================================
kind                 forwarded?  what the runtime sees
===================  ==========  ============================================================
``status_503``       no          a 503 JSON answer (the server never saw the request)
``status_502_html``  no          a 502 with an HTML body (a proxy error page, contract §8.9 item 4)
``connect_error``    no          ``httpx.ConnectError``
``reset``            no          ``httpx.ReadError`` (connection reset before the server read it)
``timeout``          yes         ``httpx.ReadTimeout`` after the server applied the request
``lost_response``    yes         ``httpx.ReadError`` after the server applied the request
===================  ==========  ============================================================

A forwarded fault on an enqueue would strand the claimed states QUEUED (contract §3.2: a claim
never times out), which no runtime can prevent, so on enqueue the plan turns ``timeout`` into an
unforwarded ``httpx.ReadTimeout`` and ``lost_response`` into ``connect_error``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from conformance._recording import REPORT_KINDS, EventLog, request_kind

__all__ = ["FaultAction", "FaultKind", "FaultPlan", "FaultTransport"]


class FaultKind(StrEnum):
    """What the fault transport does to one request (see the module table)."""

    STATUS_503 = "status_503"
    STATUS_502_HTML = "status_502_html"
    CONNECT_ERROR = "connect_error"
    RESET = "reset"
    TIMEOUT = "timeout"
    LOST_RESPONSE = "lost_response"

    @property
    def forwards(self) -> bool:
        """Whether the server receives (and applies) the request before the fault."""
        return self in (FaultKind.TIMEOUT, FaultKind.LOST_RESPONSE)


DEFAULT_TARGETS = frozenset({"register", "enqueue", "secrets", *REPORT_KINDS})


@dataclass(frozen=True)
class FaultPlan:
    """Which requests fail, and how; deterministic for a given seed and request order.

    Attributes:
        seed: seeds the plan's own ``random.Random``.
        rate: probability that an eligible request (after the script) is faulted.
        kinds: the kinds drawn from for random faults.
        targets: request kinds (contract §8.3 names) that may be faulted.
        max_consecutive: at most this many faults in a row per request kind, so that a runtime
            that retries always gets through.
        script: per request kind, the faults for its first requests (``None`` = pass), applied
            before any random draw; e.g. ``{"enqueue": [FaultKind.STATUS_503] * 6}``.
    """

    seed: int = 0
    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = tuple(FaultKind)
    targets: frozenset[str] = DEFAULT_TARGETS
    max_consecutive: int = 3
    script: Mapping[str, Sequence[FaultKind | None]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.rate > 0 or any(k is not None for v in self.script.values() for k in v)


@dataclass(frozen=True)
class FaultAction:
    """One fault the transport injected."""

    seq: int
    kind: FaultKind
    request_kind: str
    method: str
    path: str


class FaultTransport(httpx.AsyncBaseTransport):
    """Inject the faults of ``plan`` into requests sent through ``inner``; record each one."""

    def __init__(self, inner: httpx.AsyncBaseTransport, plan: FaultPlan, log: EventLog) -> None:
        self._inner = inner
        self._plan = plan
        self._log = log
        self._random = random.Random(plan.seed)
        self._seen: dict[str, int] = {}
        self._streak: dict[str, int] = {}
        self.actions: list[FaultAction] = []

    def _choose(self, kind: str) -> FaultKind | None:
        plan = self._plan
        index = self._seen.get(kind, 0)
        self._seen[kind] = index + 1
        scripted = plan.script.get(kind, ())
        if index < len(scripted):
            return scripted[index]
        if kind not in plan.targets or plan.rate <= 0 or not plan.kinds:
            return None
        if self._streak.get(kind, 0) >= plan.max_consecutive:
            return None
        if self._random.random() >= plan.rate:
            return None
        return self._random.choice(plan.kinds)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        kind = request_kind(request.method, request.url.path)
        fault = self._choose(kind)
        if fault is None:
            self._streak[kind] = 0
            return await self._inner.handle_async_request(request)
        self._streak[kind] = self._streak.get(kind, 0) + 1
        if kind == "enqueue" and fault is FaultKind.LOST_RESPONSE:
            fault = FaultKind.CONNECT_ERROR
        forward = fault.forwards and kind != "enqueue"
        self.actions.append(
            FaultAction(self._log.next_seq(), fault, kind, request.method, request.url.path)
        )
        if forward:
            response = await self._inner.handle_async_request(request)
            await response.aread()
            await response.aclose()
        if fault is FaultKind.STATUS_503:
            return httpx.Response(503, json={"detail": "injected fault: service unavailable"})
        if fault is FaultKind.STATUS_502_HTML:
            return httpx.Response(
                502,
                headers={"content-type": "text/html"},
                content=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
        if fault is FaultKind.CONNECT_ERROR:
            raise httpx.ConnectError("injected fault: connection refused", request=request)
        if fault is FaultKind.TIMEOUT:
            raise httpx.ReadTimeout("injected fault: read timed out", request=request)
        raise httpx.ReadError("injected fault: connection reset by peer", request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()
