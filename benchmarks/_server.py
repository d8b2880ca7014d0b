"""The loopback target: a fake state manager served by uvicorn in its own process.

``python -m benchmarks._server KEY`` binds a free port on 127.0.0.1, prints its base URI on one
line, and serves the fake until terminated. A separate process (rather than
``serve_in_thread``) gives the server its own interpreter and core, so a runtime in the benchmark
process does not compete with the server for one GIL. This is how a real state manager is
reached, and it is the same for exo_ref, the floor and the upstream SDK.

One extra route for the harness: ``GET /_bench/requests`` returns the fake's request log as
``[[time, method, path, status], ...]`` (``FakeStateManager.requests``, arrival times), which the
drain figures are computed from.
"""

from __future__ import annotations

import json
import sys

import anyio
import uvicorn
from starlette.types import Receive, Scope, Send

from exo_ref import event_loop_options
from fake_state_manager import FakeStateManager

LOG_PATH = "/_bench/requests"


def main() -> None:
    key = sys.argv[1]
    sm = FakeStateManager(api_key=key)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == LOG_PATH:
            log = [[r.time, r.method, r.path, r.status] for r in list(sm.requests)]
            body = json.dumps(log).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await sm.app(scope, receive, send)

    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
        )
    )

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no "started" event
            await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}", flush=True)

    async def serve() -> None:
        async with sm, anyio.create_task_group() as tg:  # sm: the fake's cron on the real clock
            tg.start_soon(announce)
            await server.serve()

    anyio.run(serve, backend="asyncio", backend_options=event_loop_options())  # as the dev server


if __name__ == "__main__":
    main()
