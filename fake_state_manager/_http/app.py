"""``create_app``: the fake state manager as a Starlette ASGI application (contract §1, §2).

No lifespan is needed (``httpx.ASGITransport`` does not run one): everything the app needs is
built here, and background work (cron firing, clock auto-advance) belongs to
:class:`fake_state_manager.FakeStateManager`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fake_state_manager._dashboard import PREFIX as DASHBOARD_PREFIX
from fake_state_manager._dashboard import build_dashboard
from fake_state_manager._engine.engine import Engine
from fake_state_manager._http.fastpath import FastPathMiddleware
from fake_state_manager._http.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    APIOnlyCORSMiddleware,
    BodyLimitMiddleware,
    RecordedRequest,
    RecorderMiddleware,
    RequestIdMiddleware,
    RequestLogMiddleware,
    UnhandledExceptionsMiddleware,
)
from fake_state_manager._http.openapi import openapi_document
from fake_state_manager._http.parsing import json_response
from fake_state_manager._http.routes import build_routes, key_bytes

__all__ = ["CORS_ALLOW_HEADERS", "CORS_ALLOW_METHODS", "DEFAULT_CORS_ORIGINS", "create_app"]

# contract §1.4
DEFAULT_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://localhost:3001",
    "http://127.0.0.1:3000",
    "http://127.0.0.1:3001",
)
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
CORS_ALLOW_HEADERS = (
    "Accept",
    "Accept-Language",
    "Content-Language",
    "Content-Type",
    "X-API-Key",
    "Authorization",
    "X-Requested-With",
    "X-Exosphere-Request-ID",
)


def _cors_origins_from_env() -> list[str]:
    raw = os.environ.get("CORS_ORIGINS")
    if not raw:
        return list(DEFAULT_CORS_ORIGINS)
    return [origin.strip() for origin in raw.split(",") if origin.strip()]


async def _http_exception(request: Request, exc: Exception) -> Response:
    # FastAPI's default: 404 {"detail":"Not Found"}, 405 {"detail":"Method Not Allowed"} (§1.3).
    assert isinstance(exc, HTTPException)
    return json_response({"detail": exc.detail}, exc.status_code, exc.headers)


def create_app(
    engine: Engine,
    *,
    api_key: str,
    cors_origins: Sequence[str] | None = None,
    recorder: list[RecordedRequest] | None = None,
    before_request: Callable[[], object] | None = None,
    after_request: Callable[[], object] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    log_requests: bool = False,
    fast_path: bool = True,
) -> Starlette:
    """Build the ASGI app serving every endpoint of contract §2 over ``engine``.

    Args:
        engine: the state manager's behaviour and data.
        api_key: the one global key every ``/v0`` route checks (§1.2). Upstream re-reads it from
            ``STATE_MANAGER_SECRET`` on every request; the fake takes it once.
        cors_origins: allowed CORS origins; default from env ``CORS_ORIGINS`` (comma-separated),
            else upstream's localhost list (§1.4).
        recorder: when given, a :class:`RecordedRequest` is appended to it for every request.
        before_request: called before each authorised ``/v0`` engine call (e.g. lazy cron firing).
        after_request: called after each engine call (e.g. to wake ``wait_for_run``).
        max_body_bytes: larger request bodies get 413 before they are read (an addition; upstream
            has no limit).
        log_requests: one INFO line per request on logger ``fake_state_manager.requests``
            (method, path, status, ms, request id; never bodies or keys).
        fast_path: answer the hot routes (enqueue, executed, errored, re-enqueue-after) in
            :class:`~fake_state_manager._http.fastpath.FastPathMiddleware`, byte-identical to
            the normal app and a fraction of its cost; ``False`` only to compare the two.
    """
    if not isinstance(api_key, str) or not api_key:
        raise ValueError(
            "api_key must be a non-empty string (upstream refuses to start without one)"
        )
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
    origins = list(cors_origins) if cors_origins is not None else _cors_origins_from_env()
    document: dict[str, Any] | None = None

    async def openapi(request: Request) -> Response:
        nonlocal document
        if document is None:
            document = openapi_document()
        return json_response(document)

    routes = [
        *build_routes(engine, api_key=api_key, before=before_request, after=after_request),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        # The dashboard (an addition): GET / redirects to it; its pages live under /dashboard.
        *build_dashboard(engine, api_key=api_key, before=before_request, after=after_request),
    ]
    cors: dict[str, Any] = {
        "allow_origins": origins,
        "allow_credentials": True,
        "allow_methods": list(CORS_ALLOW_METHODS),
        "allow_headers": list(CORS_ALLOW_HEADERS),
        "expose_headers": ["X-Exosphere-Request-ID"],
    }
    middleware = [Middleware(RequestLogMiddleware)] if log_requests else []
    if fast_path:
        # Inside the request log, outside the rest: for the requests it answers it does the work
        # of the layers below (request id, recorder, CORS, body limit, 500s); see fastpath.py.
        middleware.append(
            Middleware(
                FastPathMiddleware,
                engine=engine,
                api_key=key_bytes(api_key),
                recorder=recorder,
                now=engine.clock.now,
                before=before_request,
                after=after_request,
                max_body_bytes=max_body_bytes,
                cors=functools.partial(CORSMiddleware, **cors),
            )
        )
    middleware.append(Middleware(RequestIdMiddleware))
    if recorder is not None:
        middleware.append(Middleware(RecorderMiddleware, sink=recorder, now=engine.clock.now))
    middleware += [
        Middleware(APIOnlyCORSMiddleware, excluded=DASHBOARD_PREFIX, cors=cors),
        Middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes),
        Middleware(UnhandledExceptionsMiddleware),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_exception},
    )
