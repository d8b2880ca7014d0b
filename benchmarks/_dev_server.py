"""Servers for ``bench_fake_served.py``: the dev server's app and settings, with one part swapped.

``python -m benchmarks._dev_server VARIANT KEY`` serves on a free port of 127.0.0.1, prints
``EXOSPHERE_STATE_MANAGER_URI=http://127.0.0.1:PORT`` (as the dev server does) and serves until
terminated. Every variant is served by :meth:`FakeStateManager.serve`: the dev server's uvicorn
settings (``server_config``: its HTTP protocol with the request deadline, concurrency limit, no
access log) on the loop ``fake-state-manager`` runs them on (uvloop's where it is installed,
``exo_ref.event_loop_options``). The dev server itself
(``python -m fake_state_manager``) is the benchmark's ``fast`` variant. VARIANT is one of:

- ``normal``: the dev server's fake (real clock, no request recording) with the fast path off
  (``create_app(fast_path=False)``): the figure before the fast path, in the same run.
- ``null``: an ASGI app that answers every request with a fixed JSON body: what uvicorn and the
  loopback syscalls cost per request on this machine, with no app at all.
- ``starlette``: a minimal Starlette route that parses the JSON body and answers a dict: the
  reference of issue #12 (61 µs per request on the machine it was measured on), to tell a slow
  or loaded machine from a slow fake.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from exo_ref import event_loop_options
from fake_state_manager import FakeStateManager, SystemClock, create_app

VARIANTS = ("normal", "null", "starlette")
URI_PREFIX = "EXOSPHERE_STATE_MANAGER_URI="


async def _null_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"count":0,"namespace":"bench","status":"QUEUED","states":[]}'
    if not scope["path"].endswith("/enqueue"):
        body = b'{"status":"EXECUTED"}'
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _starlette_route(request: Request) -> JSONResponse:
    await request.json()
    return JSONResponse({"status": "EXECUTED"})


def _app(variant: str, sm: FakeStateManager) -> Any:
    if variant == "null":
        return _null_app
    if variant == "starlette":
        return Starlette(routes=[
            Route("/v0/namespace/{ns}/state/{sid}/executed", _starlette_route, methods=["POST"]),
            Route("/v0/namespace/{ns}/states/enqueue", _starlette_route, methods=["POST"]),
        ])
    return create_app(sm.engine, api_key=sm.api_key, before_request=sm.engine.fire_due_triggers,
                      after_request=sm._after_request, fast_path=False)


async def _serve(variant: str, key: str) -> None:
    sm = FakeStateManager(api_key=key, clock=SystemClock(), record_requests=False)
    sm.app = _app(variant, sm)  # what FakeStateManager.serve serves
    async with sm, sm.serve(host="127.0.0.1", port=0) as uri:
        print(f"{URI_PREFIX}{uri}", flush=True)
        await anyio.sleep_forever()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in VARIANTS:
        print(f"usage: python -m benchmarks._dev_server {{{'|'.join(VARIANTS)}}} KEY",
              file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(
            _serve, argv[0], argv[1], backend="asyncio", backend_options=event_loop_options()
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
