"""``Runtime``: registers nodes, then polls, executes and reports until stopped (contract §8).

Lifecycle (one task group per run, nothing backend-specific created before ``run()``, so a
Runtime can be run again, on another event loop or backend; upstream defect §8.9 item 15)::

    run() ── register (retried; stop() aborts it)
          └─ serve until stop() (exo_ref._serving: poll, execute, graceful shutdown)

This module owns the lifecycle: start()/run()/stop(), threads and OS signals.

Seams for other implementations and conformance mutants: the class attributes
``poller_class`` and ``worker_pool_class`` (subclass :class:`~exo_ref._poller.Poller` /
:class:`~exo_ref._workers.WorkerPool` and override their documented hooks).
"""

from __future__ import annotations

import asyncio  # only to honour upstream's start()-inside-a-running-loop contract (§8.4)
import contextlib
import logging
import os
import random
import signal
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import httpx
from anyio.abc import TaskStatus

from ._backoff import Backoff, RandomSource
from ._clock import Clock, SystemClock
from ._config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STATE_MANAGER_VERSION,
    DEFAULT_WORKERS,
    RuntimeSettings,
)
from ._errors import ConfigurationError, RuntimeAlreadyRunningError
from ._event_loop import event_loop_options
from ._logging import setup_default_logging
from ._masking import masking_logs
from ._node import BaseNode
from ._poller import Poller
from ._runtime_client import StateManagerClient, require_transport_for_in_process
from ._serving import Serving
from ._validation import validate_nodes
from ._wire import RegisterRequest
from ._workers import WorkerPool

__all__ = ["Runtime"]

logger = logging.getLogger("exo_ref.runtime")

class Runtime:
    """Serves node classes for one namespace against an Exosphere state manager.

    Signature-compatible with upstream ``exospherehost.Runtime`` (contract §8.2), so changing the
    import is the whole migration. Keyword-only additions follow the ``*``.

    Args:
        namespace: the namespace the nodes are registered in and states are claimed from.
        name: this runtime's name (stored as ``runtime_name`` on registration).
        nodes: node **classes** (subclasses of :class:`~exo_ref.BaseNode`).
        state_manager_uri: base URI; ``None`` reads ``EXOSPHERE_STATE_MANAGER_URI``.
        key: API key; ``None`` reads ``EXOSPHERE_API_KEY``. Never logged: masked as ``***`` in
            every log line and error text of the runtime, as are a failing state's secrets
            (values of 4 characters or more, exo_ref._masking).
        batch_size: most states claimed and not yet started at any time (and per poll), from 1
            to 1000 (``MAX_BATCH_SIZE``).
        workers: most states executing at once.
        state_manager_version: API version path segment.
        poll_interval: seconds between polls when the queue is empty.
        state_manage_version: upstream's misspelt name for ``state_manager_version``
            (deprecated, accepted with a ``DeprecationWarning``).
        transport: an ``httpx.AsyncBaseTransport`` (e.g. ``httpx.ASGITransport`` for an
            in-process state manager, ``httpx.MockTransport`` in tests); required with the
            in-process fake's URI (``FakeStateManager.transport``).
        clock: time source for poll spacing, backoff and the grace period.
        grace_period: seconds running states get to finish after ``stop()``.
        timeout: HTTP timeout (seconds or an ``httpx.Timeout``); default 30 s, connect 10 s.
        rng: random source for backoff jitter (``random.Random`` fits).
        backoff: retry spacing for registration, reports and secrets.

    Raises:
        ConfigurationError: (a ``ValueError``) bad settings, checked in upstream's order.
        NodeValidationError: (a ``ValueError``) listing every problem with the node classes.
    """

    poller_class: ClassVar[type[Poller]] = Poller
    worker_pool_class: ClassVar[type[WorkerPool]] = WorkerPool

    def __init__(
        self,
        namespace: str,
        name: str,
        nodes: Sequence[type[BaseNode]],
        state_manager_uri: str | None = None,
        key: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = DEFAULT_WORKERS,
        state_manager_version: str = DEFAULT_STATE_MANAGER_VERSION,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        *,
        state_manage_version: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        timeout: float | httpx.Timeout | None = None,
        rng: RandomSource | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        setup_default_logging()  # contract §8.2 step 1 (on our logger, not the root)
        state_manager_version = _upstream_version(state_manager_version, state_manage_version)
        self.settings = RuntimeSettings.build(
            namespace=namespace,
            name=name,
            state_manager_uri=state_manager_uri,
            key=key,
            batch_size=batch_size,
            workers=workers,
            state_manager_version=state_manager_version,
            poll_interval=poll_interval,
            grace_period=grace_period,
            timeout=timeout,
        )
        self.nodes: list[type[BaseNode]] = validate_nodes(list(nodes))
        # At once: without the fake's transport its URI only fails DNS, retried forever.
        require_transport_for_in_process(self.settings.state_manager_uri, transport)
        self._transport = transport
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rng: RandomSource = rng if rng is not None else random.Random()
        self._backoff = backoff if backoff is not None else Backoff()
        # Cross-thread coordination: `_lock` guards the flags below; `_call_lock` makes sure a
        # stop() from another thread never calls into an event loop that has already finished.
        self._lock = threading.Lock()
        self._call_lock = threading.Lock()
        self._running = False
        self._stop_requested = False
        self._token: object | None = None
        self._loop_thread: int | None = None
        self._stop_event: anyio.Event | None = None
        self._registering: anyio.CancelScope | None = None
        self._main_scope: anyio.CancelScope | None = None
        self._serving: Serving | None = None

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"Runtime(namespace={s.namespace!r}, name={s.name!r}, "
            f"nodes={[n.__name__ for n in self.nodes]}, state_manager_uri={s.state_manager_uri!r})"
        )

    @property
    def is_running(self) -> bool:
        """True from the start of :meth:`run` until it returns."""
        return self._running

    # -- lifecycle ------------------------------------------------------------------------------

    def start(
        self, backend: str = "asyncio", backend_options: dict[str, Any] | None = None
    ) -> asyncio.Task[None] | None:
        """Run until stopped, blocking; SIGINT/SIGTERM start a graceful shutdown.

        A second signal forces the stop: running states are cancelled and handed back (within a
        few seconds), and the process exits at once with status ``128 + signal`` (130 for
        Ctrl-C), even while a sync node's thread is still blocked (a thread cannot be stopped,
        and the interpreter would otherwise wait for it at exit).

        Inside a running asyncio event loop this returns an ``asyncio.Task`` instead, as upstream
        does (contract §8.4): keep a reference and await it. OS signals are handled only when
        called in the main thread (the notebook pattern runs it in a background thread).

        The loop it starts is uvloop's when uvloop is installed and ``backend`` is asyncio
        (:func:`exo_ref.event_loop_options`: less CPU per state); ``backend_options`` given,
        even ``{}``, replace that choice.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            return loop.create_task(self.run())
        if backend_options is None:
            backend_options = event_loop_options(backend)
        forced = anyio.run(self._run_main, backend=backend, backend_options=backend_options)
        if forced is not None:
            _exit_now(forced)
        return None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Register, then serve until :meth:`stop`; works on any anyio backend.

        ``await task_group.start(runtime.run)`` returns once the nodes are registered and the
        runtime is about to poll (or at once if it is stopped before that).

        Raises:
            RuntimeAlreadyRunningError: this Runtime is already running.
            AuthenticationError: the key was refused at registration.
            RegistrationError: registration was refused with another 4xx.
        """
        with self._lock:
            if self._running:
                raise RuntimeAlreadyRunningError(
                    f"Runtime {self.settings.name!r} is already running; "
                    "create another Runtime to run two at once"
                )
            self._running = True
        try:
            await self._run(task_status)
        finally:
            try:
                # Wait (in a thread, so this loop keeps serving callbacks) until no cross-thread
                # stop() is calling into this loop, then forget it. Shielded: this must happen
                # even when the run was cancelled from outside.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._forget_loop)
            finally:
                self._serving = None
                with self._lock:
                    self._running = False

    def stop(self) -> None:
        """Begin a graceful shutdown. Safe from any thread, before start, and more than once.

        Called before :meth:`run`/:meth:`start`, the next run returns at once (this avoids a race
        with a runtime started in a background thread).
        """
        with self._call_lock:
            with self._lock:
                self._stop_requested = True
                token, thread = self._token, self._loop_thread
            if token is None:
                return
            if thread == threading.get_ident():
                self._begin_shutdown()
                return
            # RuntimeError: the loop has just finished; the flag is set for the next run.
            with contextlib.suppress(RuntimeError):
                anyio.from_thread.run_sync(self._begin_shutdown, token=token)  # type: ignore[arg-type]

    # -- internals ------------------------------------------------------------------------------

    def _forget_loop(self) -> None:
        with self._call_lock, self._lock:
            self._token = None
            self._loop_thread = None
            self._stop_requested = False

    def _begin_shutdown(self) -> None:
        # Stop claiming and starting at once, not when the serving task next runs.
        if self._serving is not None:
            self._serving.stop()
        if self._registering is not None:
            self._registering.cancel()
        if self._stop_event is not None and not self._stop_event.is_set():
            logger.info("Runtime %s: shutting down gracefully", self.settings.name)
            self._stop_event.set()

    def _force_stop(self) -> None:
        logger.warning("Runtime %s: forced stop, handing back running states", self.settings.name)
        if self._serving is not None:
            self._serving.force_stop()  # the grace period ends now (exo_ref._serving)
        elif self._main_scope is not None:
            self._main_scope.cancel()  # still registering: nothing claimed yet

    async def _run_main(self) -> int | None:
        if threading.current_thread() is not threading.main_thread():
            await self.run()  # OS signals can only be received in the main thread
            return None
        return await run_with_signals(self.run, on_first=self.stop, on_again=self._force_stop)

    async def _run(self, task_status: TaskStatus[None]) -> None:
        self._stop_event = stop_event = anyio.Event()
        with self._lock:
            self._token = anyio.lowlevel.current_token()
            self._loop_thread = threading.get_ident()
            stop_now = self._stop_requested
        if stop_now:
            task_status.started()
            return
        # The key never appears in the runtime's logs, whatever an error text quotes
        # (exo_ref._masking); states' secrets are masked where each state errors.
        with masking_logs([self.settings.key]):
            await self._serve(task_status, stop_event)

    async def _serve(self, task_status: TaskStatus[None], stop_event: anyio.Event) -> None:
        s = self.settings
        async with StateManagerClient(
            s, transport=self._transport, clock=self._clock, rng=self._rng, backoff=self._backoff
        ) as client:
            with anyio.CancelScope() as self._main_scope:
                names = [node.__name__ for node in self.nodes]
                logger.info("Registering nodes %s in namespace %s", names, s.namespace)
                with anyio.CancelScope() as self._registering:
                    request = RegisterRequest.for_nodes(
                        name=s.name, namespace=s.namespace, nodes=self.nodes
                    )
                    await client.register(request)
                self._registering = None
                task_status.started()
                if stop_event.is_set():
                    return
                logger.info("Registered nodes %s; serving", names)
                serving = Serving(
                    client=client,
                    settings=s,
                    nodes=self.nodes,
                    clock=self._clock,
                    rng=self._rng,
                    poller_class=self.poller_class,
                    worker_pool_class=self.worker_pool_class,
                )
                self._serving = serving
                await serving.run()
            self._main_scope = None


def _upstream_version(correct: str, misspelt: str | None) -> str:
    """Accept upstream's misspelt ``state_manage_version`` (contract §8.2), with a warning."""
    if misspelt is None:
        return correct
    warnings.warn(
        "Runtime(state_manage_version=...) is upstream's misspelling; use state_manager_version=",
        DeprecationWarning,
        stacklevel=3,
    )
    if correct not in (DEFAULT_STATE_MANAGER_VERSION, misspelt):
        raise ConfigurationError(
            "Pass only one of state_manager_version= and state_manage_version="
        )
    return misspelt


def _exit_now(signum: int) -> None:
    """End the process after a forced stop, without waiting for blocked node threads."""
    code = 128 + signum
    logger.warning("Exiting with status %d after a forced stop", code)
    for handler in logging.getLogger().handlers + logging.getLogger("exo_ref").handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


async def run_with_signals(
    main: Callable[[], Awaitable[None]],
    *,
    on_first: Callable[[], None],
    on_again: Callable[[], None],
) -> int | None:
    """Run ``main``; the first SIGINT/SIGTERM calls ``on_first`` (graceful), later ones
    ``on_again`` (forced). Call in the main thread only: only it receives OS signals.

    Returns:
        the signal that forced the stop, or ``None`` when none did.
    """
    forced: int | None = None

    async def watch() -> None:
        nonlocal forced
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                received = 0
                async for signum in signals:
                    received += 1
                    if received == 1:
                        logger.warning(
                            "Received %s: finishing running states (send it again to force)",
                            signal.Signals(signum).name,
                        )
                        on_first()
                    else:
                        forced = int(signum)
                        on_again()
        except NotImplementedError:  # e.g. Windows: no signal receiver, no graceful shutdown
            return

    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            await main()
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return forced
