"""The dev server: ``fake-state-manager`` / ``python -m fake_state_manager``.

Serves the fake over HTTP with uvicorn so that any runtime (the upstream ``exospherehost`` SDK
included) can use it as its state manager, with no Docker and no MongoDB. On start it prints the
base URI and the two environment lines a runtime needs; Ctrl-C stops it cleanly (exit code 0).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
from collections.abc import Callable, Sequence
from types import FrameType

import anyio
import uvicorn

from exo_ref import SystemClock
from fake_state_manager._fake import DEFAULT_API_KEY, FakeStateManager

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
        description="Run exo-ref's in-memory Exosphere state manager as a local HTTP server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000; 0 = any free)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the x-api-key clients must send (default: env STATE_MANAGER_SECRET, else "
        f"{DEFAULT_API_KEY!r})",
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
        print(f"fake state manager listening on {uri} (Ctrl-C to stop)", flush=True)
        print(f"EXOSPHERE_STATE_MANAGER_URI={uri}", flush=True)
        print(f"EXOSPHERE_API_KEY={api_key}", flush=True)

    return on_started


async def _serve(manager: FakeStateManager, server: uvicorn.Server) -> None:
    async with manager:  # cron firing on the real clock
        await server.serve()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until interrupted, return the exit code."""
    args = _parser().parse_args(argv)
    api_key = resolve_api_key(args.api_key)
    if not 0 <= args.port <= 65535:
        _parser().error(f"--port must be between 0 and 65535, got {args.port}")
    manager = FakeStateManager(api_key=api_key, clock=SystemClock(), record_requests=False)
    config = uvicorn.Config(
        manager.app, host=args.host, port=args.port, lifespan="off", log_level="warning"
    )
    server = _AnnouncingServer(config, _announce(args.host, api_key))
    # uvicorn handles SIGINT/SIGTERM while serving and re-raises them once it has shut down;
    # both then end here as a clean exit.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        anyio.run(_serve, manager, server, backend="asyncio")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if server.started else 1
