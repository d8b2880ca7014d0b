"""The dev server: ``fake-state-manager`` / ``python -m fake_state_manager``.

Serves the fake over HTTP with uvicorn so that any runtime (the upstream ``exospherehost`` SDK
included) can use it as its state manager, with no Docker and no MongoDB. On start it prints the
base URI and the two environment lines a runtime needs; Ctrl-C stops it cleanly (exit code 0).
With ``--db PATH`` everything is kept in an SQLite file and a restart resumes from it; a file
that cannot be used is one line on stderr and exit code 2 (``fake_state_manager._store.sqlite``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType

import anyio
import uvicorn

from exo_ref import SystemClock, event_loop_options
from fake_state_manager._fake import DEFAULT_API_KEY, FakeStateManager
from fake_state_manager._http.middleware import DEFAULT_MAX_BODY_BYTES
from fake_state_manager._http.serve import (
    DEFAULT_LIMIT_CONCURRENCY,
    DEFAULT_REQUEST_TIMEOUT,
    server_config,
)
from fake_state_manager._store.sqlite import StorageError

__all__ = ["main", "resolve_api_key"]

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls ``on_started(port)`` once it is listening."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[int], None]) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_started(int(self.servers[0].sockets[0].getsockname()[1]))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fake-state-manager",
        description="Run exo-ref's Exosphere state manager as a local HTTP server (in memory, "
        "or kept in an SQLite file with --db).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000; 0 = any free)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the x-api-key clients must send (default: env STATE_MANAGER_SECRET, else "
        f"{DEFAULT_API_KEY!r})",
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None,
        help="keep everything in this SQLite file and resume from it on the next start "
        "(secrets key: env EXO_REF_SECRETS_KEY, else PATH.key); default: memory only",
    )
    parser.add_argument(
        "--log-requests",
        action="store_true",
        help="print one line per request: method, path, status, ms, request id (never bodies)",
    )
    parser.add_argument(
        "--queued-timeout",
        type=float,
        metavar="SECONDS",
        default=None,
        help="treat a state QUEUED this long without a report as errored, so its graph's retry "
        "policy applies and another runtime can pick it up (default: never, as upstream)",
    )
    parser.add_argument(
        "--retain-runs",
        type=int,
        metavar="N",
        default=None,
        help="keep at most N finished runs, dropping the earliest-finished with their states "
        "(default: keep all)",
    )
    parser.add_argument(
        "--retain-hours",
        type=float,
        metavar="H",
        default=None,
        help="drop a finished run H hours after it finished (default: keep all)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"larger request bodies get 413 unread ({DEFAULT_MAX_BODY_BYTES})",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        help="seconds a request may take to arrive whole before its connection is closed "
        f"({DEFAULT_REQUEST_TIMEOUT:g})",
    )
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        default=DEFAULT_LIMIT_CONCURRENCY,
        help=f"connections served at once; beyond, 503 ({DEFAULT_LIMIT_CONCURRENCY})",
    )
    return parser


def resolve_api_key(flag: str | None) -> str:
    """``--api-key`` if given, else env ``STATE_MANAGER_SECRET``, else :data:`DEFAULT_API_KEY`."""
    return flag or os.environ.get("STATE_MANAGER_SECRET") or DEFAULT_API_KEY


def _announce(host: str, api_key: str) -> Callable[[int], None]:
    shown = _WILDCARDS.get(host, host)

    def on_started(port: int) -> None:
        uri = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
        # Printing the key is deliberate: it is the development key the user chose, and a
        # runtime needs it. It is not logged anywhere else.
        print(
            f"fake state manager listening on {uri} (dashboard: {uri}/, Ctrl-C to stop)",
            flush=True,
        )
        print(f"EXOSPHERE_STATE_MANAGER_URI={uri}", flush=True)
        print(f"EXOSPHERE_API_KEY={api_key}", flush=True)

    return on_started


async def _serve(manager: FakeStateManager, server: uvicorn.Server) -> None:
    async with manager:  # cron firing on the real clock
        await server.serve()


def _log_to_stderr() -> None:
    # The fake's own lines (a client gone mid-request, a cron expression that stopped firing):
    # one line each on stderr, next to uvicorn's warnings. Never request bodies or keys.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    root = logging.getLogger("fake_state_manager")
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def _announce_db(manager: FakeStateManager, path: str) -> None:
    store = manager.engine.store
    logging.getLogger("fake_state_manager").info(
        "keeping state in %s: %d graph(s), %d run(s), %d state(s) resumed",
        path,
        len(store.graphs),
        len(store.runs),
        len(store.states),
    )


def _announce_options(args: argparse.Namespace) -> None:
    log = logging.getLogger("fake_state_manager")
    if args.queued_timeout is not None:
        log.info(
            "a state QUEUED for more than %g s without a report is treated as errored"
            " (--queued-timeout)",
            args.queued_timeout,
        )
    bounds = []
    if args.retain_runs is not None:
        bounds.append(f"at most {args.retain_runs} finished run(s)")
    if args.retain_hours is not None:
        bounds.append(f"finished runs for {args.retain_hours:g} h")
    if bounds:
        log.info("keeping %s; older finished runs are dropped", " and ".join(bounds))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# The flags passed on as the FakeStateManager parameters of the same name.
_MANAGER_FLAGS = (
    "max_body_bytes", "log_requests", "db", "queued_timeout", "retain_runs", "retain_hours"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until interrupted, return the exit code."""
    args = _parser().parse_args(argv)
    api_key = resolve_api_key(args.api_key)
    if not 0 <= args.port <= 65535:
        _parser().error(f"--port must be between 0 and 65535, got {args.port}")
    if args.max_body_bytes < 1:
        _parser().error(f"--max-body-bytes must be at least 1, got {args.max_body_bytes}")
    if not args.request_timeout > 0:
        _parser().error(f"--request-timeout must be > 0 seconds, got {args.request_timeout}")
    if args.limit_concurrency < 1:
        _parser().error(f"--limit-concurrency must be at least 1, got {args.limit_concurrency}")
    if args.queued_timeout is not None and not (
        math.isfinite(args.queued_timeout) and args.queued_timeout >= 0.001
    ):
        _parser().error(f"--queued-timeout must be at least 0.001 s, got {args.queued_timeout}")
    if args.retain_runs is not None and args.retain_runs < 0:
        _parser().error(f"--retain-runs must be at least 0, got {args.retain_runs}")
    if args.retain_hours is not None and not (
        math.isfinite(args.retain_hours) and args.retain_hours > 0
    ):
        _parser().error(f"--retain-hours must be > 0, got {args.retain_hours}")
    try:
        manager = FakeStateManager(
            api_key=api_key,
            clock=SystemClock(),
            record_requests=False,
            **{name: getattr(args, name) for name in _MANAGER_FLAGS},
        )
    except StorageError as exc:  # one line, no traceback; argparse's code for bad input
        print(f"fake-state-manager: error: {exc}", file=sys.stderr)
        return 2
    config = server_config(
        manager.app,
        host=args.host,
        port=args.port,
        request_timeout=args.request_timeout,
        limit_concurrency=args.limit_concurrency,
    )
    _log_to_stderr()
    if args.db is not None:
        _announce_db(manager, args.db)
    _announce_options(args)
    server = _AnnouncingServer(config, _announce(args.host, api_key))
    # uvicorn handles SIGINT/SIGTERM while serving and re-raises them once it has shut down;
    # both then end here as a clean exit.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        anyio.run(
            _serve, manager, server, backend="asyncio", backend_options=event_loop_options()
        )
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        manager.close()  # with --db: fold the write-ahead log into the file, release it
    return 0 if server.started else 1
