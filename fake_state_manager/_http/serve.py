"""Serve an ASGI app with uvicorn on loopback in a background thread (real sockets, real HTTP).

Used by :meth:`fake_state_manager.FakeStateManager.serve_in_thread` for tests that need a real
server (the upstream SDK over aiohttp, concurrency over TCP) without a separate process.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve_in_thread"]

Background = Callable[[], Coroutine[Any, Any, None]]


class _Server(uvicorn.Server):
    """A uvicorn server that reports "listening" through a :class:`threading.Event`."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


async def _main(server: _Server, background: Background | None) -> None:
    async with anyio.create_task_group() as tg:
        if background is not None:
            tg.start_soon(background)
        await server.serve()
        tg.cancel_scope.cancel()


def _uri(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    background: Background | None = None,
) -> Iterator[str]:
    """Run ``app`` under uvicorn in a daemon thread; yield its base URI ``http://HOST:PORT``.

    ``port=0`` binds a free port and the real one is read back from the listening socket. On exit
    the server is asked to stop (``should_exit``) and the thread is joined. The thread runs its own
    asyncio event loop, so anything the app shares with the caller must be thread-safe (the fake's
    engine is; a :class:`~exo_ref.ManualClock` is not).

    Args:
        app: the ASGI application.
        host: interface to bind; loopback by default.
        port: TCP port, ``0`` for any free one.
        background: an optional coroutine function run next to the server in its event loop
            (cancelled when the server stops), e.g. the fake's cron loop.

    Raises:
        RuntimeError: the server did not start (e.g. the port is in use); the cause is chained.
    """
    config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning")
    ready = threading.Event()
    server = _Server(config, ready)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(_main, server, background, backend="asyncio")
        except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    ready.wait()
    if not server.started:
        thread.join()
        cause = failure[0] if failure else None
        raise RuntimeError(
            f"uvicorn could not start on {host}:{port}; is the port free and the host local?"
        ) from cause
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield _uri(host, int(bound[1]))
    finally:
        server.should_exit = True
        thread.join()
