"""``FakeStateManager``: the fake as a test fixture (in-process app, transport, helpers).

Typical use::

    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        async with sm.client() as http:
            ...
        summary = await sm.wait_for_run(run_id)

Inside ``async with`` a task group runs the clock's auto-advance (for a
:class:`~exo_ref.ManualClock`) and a cron loop that fires due triggers (contract §4.7) at
their exact due time on the clock. Due triggers are also fired lazily at the start of every
``/v0`` request, so even without the context manager nothing due is ever missed by a client.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx
from starlette.types import ASGIApp

from exo_ref import Clock, ManualClock, SystemClock
from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._http.app import create_app
from fake_state_manager._http.middleware import DEFAULT_MAX_BODY_BYTES, RecordedRequest
from fake_state_manager._http.serve import serve_here, serve_in_thread
from fake_state_manager._store.sqlite import SqliteStorage

__all__ = ["DEFAULT_API_KEY", "DEFAULT_URI", "FakeStateManager"]

DEFAULT_API_KEY = "exo-ref-dev-key"
DEFAULT_URI = "http://fake-state-manager"

# ManualClocks some running FakeStateManager is auto-advancing: two drivers on one clock could
# both jump at the same idle moment and skip a due time, so the first fake to start drives it.
_DRIVEN_CLOCKS: weakref.WeakSet[ManualClock] = weakref.WeakSet()

# How often wait_for_run re-reads a run while a uvicorn thread may change it: changes made on
# another thread cannot wake this thread's event, so that case (and only that one) polls.
_CROSS_THREAD_POLL = 0.01
# With a real clock the cron loop re-checks at least this often (seconds), so that a graph upserted
# through a served thread schedules its triggers without a cross-thread wake-up.
_REAL_CLOCK_CRON_TICK = 1.0

logger = logging.getLogger("fake_state_manager")

_Wrapped = TypeVar("_Wrapped", bound=ASGIApp)


class FakeStateManager:
    """An in-memory Exosphere state manager for tests and local development.

    Args:
        api_key: the one key every ``/v0`` route accepts (contract §1.2).
        clock: where time comes from; a :class:`ManualClock` makes delays resolve instantly.
        seed: seed of the random source used for retry jitter (contract §5).
        record_requests: keep :attr:`requests` (turn off for benchmarks).
        cors_origins: CORS origins (default: env ``CORS_ORIGINS`` or upstream's list, §1.4).
        engine: an existing engine to serve (default: a new one on ``clock`` and ``seed``).
        max_body_bytes: request bodies larger than this get 413 before they are read (an
            addition, docs/fidelity.md; default 8 MiB, ten times a 10,000-node graph).
        log_requests: log one INFO line per request on ``fake_state_manager.requests``.
        db: keep everything in this SQLite file (an addition, like ``--db``): the documents
            of contract §3.1 already in it are loaded, and every request's changes are
            committed before its response is sent. The secrets key comes from env
            ``EXO_REF_SECRETS_KEY`` or the file ``<db>.key`` (created, mode 0600). Call
            :meth:`close` before opening the same file again in this process. Raises
            :class:`~fake_state_manager.StorageError` (a one-line message) for a file that
            cannot be used.
        queued_timeout: seconds a state may stay QUEUED without a report before it is treated
            as errored (its graph's retry policy applies; a late report then gets 400). An
            addition, like ``--queued-timeout``; ``None`` (default): upstream's behaviour.
        retain_runs: keep at most this many finished runs (the earliest-finished are dropped
            with their states; :meth:`run_summary` and :meth:`wait_for_run` then raise
            ``LookupError`` for them). An addition, like ``--retain-runs``; ``None``: keep all.
        retain_hours: drop a finished run this many hours after it finished. An addition,
            like ``--retain-hours``; ``None``: keep all.

    Attributes:
        app: the ASGI application served: the Starlette app, or what :meth:`wrap` put in front.
        uri: base URL to use with :attr:`transport` (no network involved).
        api_key: the accepted key.
        transport: an ``httpx.ASGITransport`` bound to :attr:`app`.
        requests: every request received, in order (empty if ``record_requests`` is false).
        engine: the engine (store + behaviour).
        clock: the clock.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        clock: Clock | None = None,
        seed: int | None = None,
        record_requests: bool = True,
        cors_origins: list[str] | None = None,
        engine: Engine | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        log_requests: bool = False,
        db: str | os.PathLike[str] | None = None,
        queued_timeout: float | None = None,
        retain_runs: int | None = None,
        retain_hours: float | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        options = {
            "queued_timeout": queued_timeout,
            "retain_runs": retain_runs,
            "retain_hours": retain_hours,
        }
        given = [name for name, value in options.items() if value is not None]
        if engine is not None and (db is not None or given):
            raise ValueError(
                f"give FakeStateManager either engine= or {', '.join(given or ['db'])}=, not"
                " both (pass them to Engine instead)"
            )
        if engine is None:
            engine = _new_engine(self.clock, random.Random(seed), db, options)
        self.engine = engine
        self._cron_failing = False
        self.api_key = api_key
        self.uri = DEFAULT_URI
        self.requests: list[RecordedRequest] = []
        self.app: ASGIApp = create_app(
            self.engine,
            api_key=api_key,
            cors_origins=cors_origins,
            recorder=self.requests if record_requests else None,
            before_request=self.engine.fire_due_triggers,
            after_request=self._after_request,
            max_body_bytes=max_body_bytes,
            log_requests=log_requests,
        )
        self.transport = httpx.ASGITransport(app=self.app)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._loop_thread: int | None = None
        self._changed: anyio.Event | None = None
        self._cron_scope: anyio.CancelScope | None = None
        self._cron_target = math.inf
        self._cron_mark: tuple[int, int] | None = None  # engine.schedule_mark() at _cron_target
        self._threads_serving = 0
        self._drives_clock = False
        if isinstance(self.clock, ManualClock):
            self.clock.add_wakeup_source(self.engine.next_due_time)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeStateManager:
        if self._task_group is not None:
            raise RuntimeError("this FakeStateManager is already running; enter it only once")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._loop_thread = threading.get_ident()
        if isinstance(self.clock, ManualClock) and self.clock not in _DRIVEN_CLOCKS:
            _DRIVEN_CLOCKS.add(self.clock)
            self._drives_clock = True
            task_group.start_soon(self.clock.run_auto_advance)
        task_group.start_soon(self._cron_loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group, self._task_group = self._task_group, None
        self._loop_thread = None
        if task_group is None:
            return None
        if self._drives_clock and isinstance(self.clock, ManualClock):
            _DRIVEN_CLOCKS.discard(self.clock)
            self._drives_clock = False
        task_group.cancel_scope.cancel()
        # The background tasks only ever end by this cancellation; close the group as if the
        # body had succeeded so that an exception from the body propagates as itself, not
        # wrapped in an ExceptionGroup.
        await task_group.__aexit__(None, None, None)
        return None

    async def _cron_loop(self) -> None:
        """Fire cron triggers at their due time on the clock (contract §4.7)."""
        while True:
            self._fire_due()
            # Woken for a cron time, a delayed state or a lease: the run may have changed.
            self._wake_waiters()
            self._cron_mark = self.engine.schedule_mark()
            due = self.engine.next_due_time()
            delay = math.inf if due is None else max(0.0, due - self.clock.now())
            if not isinstance(self.clock, ManualClock):
                delay = min(delay, _REAL_CLOCK_CRON_TICK)
            self._cron_target = self.clock.now() + delay
            with anyio.CancelScope() as scope:
                self._cron_scope = scope
                if math.isinf(delay):
                    await anyio.sleep_forever()
                else:
                    await self.clock.sleep(delay)
            self._cron_scope = None

    def _fire_due(self) -> int:
        # With a database, firing can fail to save (503 in a request): the background loops
        # must live on and retry, saying once that they could not and once that they can again.
        try:
            fired = self.engine.fire_due_triggers()
        except ApiError as exc:
            if not self._cron_failing:
                logger.warning("cron triggers cannot fire for now: %s", exc.detail)
            self._cron_failing = True
            return 0
        if self._cron_failing:
            logger.warning("cron triggers fire again")
            self._cron_failing = False
        return fired

    def close(self) -> None:
        """Close the database of ``db=`` (a no-op without one), releasing the file.

        Reads keep answering from memory afterwards; a request that changes anything gets 503.
        """
        self.engine.close()

    def _after_request(self) -> None:
        # Called by the routes after each engine call. Only this thread's event loop may be woken.
        if threading.get_ident() != self._loop_thread:
            return
        self._wake_waiters()
        if self._cron_scope is not None:
            mark = self.engine.schedule_mark()
            if mark == self._cron_mark:
                return  # nothing scheduled since the loop chose its wake-up time
            self._cron_mark = mark
            due = self.engine.next_due_time()
            if due is not None and due < self._cron_target:
                self._cron_scope.cancel()  # a new, earlier cron time: reschedule

    def _wake_waiters(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def wrap(self, middleware: Callable[[ASGIApp], _Wrapped]) -> _Wrapped:
        """Put ``middleware(app)`` in front of the served app; return what it made.

        For a harness that must see, or fault, exactly what reaches the server: the conformance
        suite's tap records every answer (the request log keeps no bodies of answers) and
        answers scripted requests itself. From this call on every way in goes through it:
        :attr:`transport`, :meth:`client`, :meth:`serve_in_thread` and :meth:`serve`. Wrap
        before serving (a server already running keeps the app it was given); wrapping again
        puts the new middleware outermost.
        """
        wrapped = middleware(self.app)
        self.app = wrapped
        self.transport = httpx.ASGITransport(app=wrapped)
        return wrapped

    # -- clients -----------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on :attr:`transport` with :attr:`uri` and the API key set."""
        headers = {"x-api-key": self.api_key, **kwargs.pop("headers", {})}
        return httpx.AsyncClient(
            base_url=self.uri, transport=self.transport, headers=headers, **kwargs
        )

    @contextmanager
    def serve_in_thread(self, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve :attr:`app` with uvicorn on ``host:port`` in a thread; yield ``http://HOST:PORT``.

        Only with a real clock (:class:`SystemClock`): the server runs its own event loop in
        another thread, and a :class:`ManualClock` cannot be shared across event loops. The
        server thread also runs a cron loop, so cron triggers fire without ``async with``.

        Raises:
            TypeError: the clock is a ManualClock.
        """
        if isinstance(self.clock, ManualClock):
            raise TypeError(
                "serve_in_thread needs a real clock: create FakeStateManager(clock=SystemClock())"
                " (a ManualClock cannot be shared between two event loops)"
            )
        self._threads_serving += 1
        try:
            with serve_in_thread(
                self.app, host=host, port=port, background=self._thread_cron_loop
            ) as uri:
                yield uri
        finally:
            self._threads_serving -= 1

    @asynccontextmanager
    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve :attr:`app` with uvicorn on ``host:port`` in this event loop; yield its URI.

        Real sockets and HTTP parsing without a thread, so any clock works, a
        :class:`ManualClock` included (the parity replay checks upstream's answers over
        loopback this way). asyncio only (uvicorn); on trio use :meth:`serve_in_thread`. Enter
        the fake itself (``async with sm``) as well for the cron loop and clock auto-advance.

        Raises:
            RuntimeError: not on asyncio, or the server could not start (port in use...).
        """
        async with serve_here(self.app, host=host, port=port) as uri:
            yield uri

    async def _thread_cron_loop(self) -> None:
        while True:
            self._fire_due()
            due = self.engine.next_due_time()
            delay = _REAL_CLOCK_CRON_TICK if due is None else due - self.clock.now()
            await self.clock.sleep(min(max(0.0, delay), _REAL_CLOCK_CRON_TICK))

    # -- read helpers --------------------------------------------------------------------------

    def states(self, run_id: str) -> list[dict[str, Any]]:
        """Every state of ``run_id`` in creation order (contract §3.1 fields, ``id`` as str)."""
        with self.engine.lock:
            return self.engine.states_of_run(run_id)

    def run_summary(self, run_id: str) -> dict[str, Any]:
        """``run_id`` as a runs-list item (contract §7.1): counts, ``status``, ``created_at``.

        Raises:
            LookupError: no run with this id was ever triggered here.
        """
        with self.engine.lock:
            summary = self.engine.run_summary(run_id)
        if summary is None:
            raise LookupError(f"no run {run_id!r} in this fake state manager; check the run_id")
        return summary

    async def wait_for_run(
        self, run_id: str, timeout: float = 30.0  # noqa: ASYNC109 - agreed interface
    ) -> dict[str, Any]:
        """Wait until the run's status is no longer ``PENDING``; return its summary.

        Woken by every request this fake answers on the caller's event loop (no polling), so
        with a ManualClock it returns as soon as the last state settles. ``timeout`` is in real
        seconds: a safety net against a hung test, independent of the (possibly virtual) clock.

        Raises:
            LookupError: unknown run id.
            TimeoutError: still pending after ``timeout`` seconds (the message has the summary).
        """
        summary = self.run_summary(run_id)
        try:
            with anyio.fail_after(timeout):
                while summary["status"] == "PENDING":
                    await self._wait_for_change()
                    summary = self.run_summary(run_id)
        except TimeoutError:
            raise TimeoutError(
                f"run {run_id} still PENDING after {timeout} s: {summary}"
            ) from None
        return summary

    async def _wait_for_change(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        changed = self._changed
        if self._threads_serving or threading.get_ident() != self._loop_thread:
            # Changes may come from a uvicorn thread, which cannot set this loop's event.
            with anyio.move_on_after(_CROSS_THREAD_POLL):
                await changed.wait()
        else:
            await changed.wait()

    def __repr__(self) -> str:
        return f"FakeStateManager(uri={self.uri!r}, clock={self.clock!r})"


def _new_engine(
    clock: Clock,
    rng: random.Random,
    db: str | os.PathLike[str] | None,
    options: dict[str, Any],
) -> Engine:
    if db is None:
        return Engine(clock=clock, rng=rng, **options)
    storage = SqliteStorage.open(db)
    try:
        return Engine(clock=clock, rng=rng, storage=storage, **options)
    except BaseException:
        storage.close()
        raise
