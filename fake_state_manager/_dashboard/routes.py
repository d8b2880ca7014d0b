"""The dashboard's routes: server-rendered pages over the engine's reads, two POST forms.

Mounted by :func:`fake_state_manager._http.app.create_app` next to the API: ``GET /`` redirects
to ``/dashboard/``, and everything else lives under ``/dashboard`` (the session cookie's path):

=========================================================  ======================================
``GET  /dashboard/login`` / ``POST /dashboard/login``       the key prompt; sets the session
``POST /dashboard/logout``                                  ends the session (CSRF token)
``GET  /dashboard/``                                        the namespaces
``GET  /dashboard/ns/{ns}``                                 registered nodes and graph templates
``GET  /dashboard/ns/{ns}/graphs/{graph}``                  one template: status, nodes, triggers
``GET  /dashboard/ns/{ns}/runs?page=&size=&status=``        the runs table (live)
``GET  /dashboard/ns/{ns}/runs/{run_id}``                   one run: its DAG and states (live)
``POST /dashboard/ns/{ns}/runs/{run}/states/{id}/retry``    manual retry (§2.12, §6.3)
``POST /dashboard/ns/{ns}/runs/{run}/states/{id}/re-enqueue``  re-enqueue-after (§2.11, §6.2)
``GET  /dashboard/live/...``                                the live parts, as HTML fragments
=========================================================  ======================================

Every page but the prompt needs the session cookie (else a redirect to the prompt; the live
fragments answer 401). Every POST needs the session's CSRF token (else 403). The forms validate
like the API's bodies and show the API's ``detail`` when the engine refuses (an
:class:`~fake_state_manager._errors.ApiError`); unknown ids get a 404 page.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from pydantic import Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from exo_ref import RunStatus
from fake_state_manager._dashboard.auth import COOKIE_NAME, COOKIE_PATH, Sessions
from fake_state_manager._dashboard.layout import NODE_H, NODE_W
from fake_state_manager._dashboard.views import (
    REENQUEUE_STATUSES,
    RETRY_STATUSES,
    RUN_STATUSES,
    graph_rows,
    page_of,
    pretty,
    run_view,
)
from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._json import JsonDict

__all__ = ["PREFIX", "Refused", "build_dashboard"]

Handler = Callable[[Request], Awaitable[Response]]

PREFIX = "/dashboard"
DEFAULT_PAGE_SIZE = 20
_MAX_FORM_BYTES = 16 * 1024
_PACKAGE = "fake_state_manager._dashboard"
_STATIC_TYPES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}

#: Every dashboard answer: no caching, no framing, no inline script or style (CSP).
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

_INT = TypeAdapter(int)
_DELAY = TypeAdapter(Annotated[int, Field(gt=0)])  # ReEnqueueAfterRequest.enqueue_after (§2.11)
_TEXT = TypeAdapter(str)
_RUN_STATUS = TypeAdapter(RunStatus)


class Refused(Exception):
    """A refusal shaped like the API's: ``status`` and ``detail`` (a string, or a 422 list)."""

    def __init__(self, status: int, detail: str | list[JsonDict]) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail


# -- URLs ---------------------------------------------------------------------------------------


def _q(segment: str) -> str:
    return quote(segment, safe="")


def home_url() -> str:
    return f"{PREFIX}/"


def ns_url(namespace: str) -> str:
    return f"{PREFIX}/ns/{_q(namespace)}"


def graph_url(namespace: str, graph_name: str) -> str:
    return f"{ns_url(namespace)}/graphs/{_q(graph_name)}"


def _query(page: int, size: int, status: str) -> str:
    params: dict[str, str | int] = {}
    if page != 1:
        params["page"] = page
    if size != DEFAULT_PAGE_SIZE:
        params["size"] = size
    if status:
        params["status"] = status
    return f"?{urlencode(params)}" if params else ""


def runs_url(namespace: str, page: int = 1, size: int = DEFAULT_PAGE_SIZE, status: str = "") -> str:
    return f"{ns_url(namespace)}/runs{_query(page, size, status)}"


def run_url(namespace: str, run_id: str) -> str:
    return f"{ns_url(namespace)}/runs/{_q(run_id)}"


def state_action_url(namespace: str, run_id: str, state_id: str, action: str) -> str:
    return f"{run_url(namespace, run_id)}/states/{_q(state_id)}/{action}"


def live_runs_url(namespace: str, page: int, size: int, status: str) -> str:
    return f"{PREFIX}/live/ns/{_q(namespace)}/runs{_query(page, size, status)}"


def live_run_url(namespace: str, run_id: str) -> str:
    return f"{PREFIX}/live/ns/{_q(namespace)}/runs/{_q(run_id)}"


def _safe_next(target: str | None) -> str:
    """A local dashboard path to go to after the prompt (never another site: no open redirect)."""
    if (
        not target
        or not target.startswith(f"{PREFIX}/")
        or target.startswith("//")
        or any(c in target for c in "\\\r\n\t")
        or not target.isprintable()
    ):
        return home_url()
    return target


# -- rendering ----------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,  # every page, fragment and SVG: all text is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        home_url=home_url,
        ns_url=ns_url,
        graph_url=graph_url,
        runs_url=runs_url,
        run_url=run_url,
        state_action_url=state_action_url,
        live_runs_url=live_runs_url,
        live_run_url=live_run_url,
        pretty=pretty,
        RUN_STATUSES=RUN_STATUSES,
        NODE_W=NODE_W,
        NODE_H=NODE_H,
        prefix=PREFIX,
        namespace=None,  # the page's namespace, if any (shadows Jinja's namespace() helper)
    )
    env.filters["truncate_middle"] = _truncate_middle
    return env


def _truncate_middle(text: Any, limit: int = 24) -> str:
    value = str(text)
    if len(value) <= limit:
        return value
    half = (limit - 1) // 2
    return f"{value[:half]}…{value[-(limit - 1 - half) :]}"


def _detail_lines(detail: Any) -> list[str]:
    """The API's ``detail``: a string, or a 422 list of ``{loc, msg}`` as ``loc: msg`` lines."""
    if isinstance(detail, list):
        lines = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = ".".join(str(part) for part in item.get("loc", ()))
                lines.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                lines.append(str(item))
        return lines
    return [str(detail)]


def _validation_detail(exc: ValidationError, where: str, name: str) -> list[JsonDict]:
    """A 422 ``detail`` shaped like the API's (FastAPI's), for a query or form field."""
    return [
        {"type": e["type"], "loc": [where, name], "msg": e["msg"], "input": e.get("input")}
        for e in exc.errors(include_url=False)
    ]


def _static(name: str) -> bytes:
    return (importlib.resources.files(_PACKAGE) / "static" / name).read_bytes()


class _Dashboard:
    """The handlers, over one engine and one set of sessions."""

    def __init__(
        self,
        engine: Engine,
        sessions: Sessions,
        before: Callable[[], object] | None,
        after: Callable[[], object] | None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.before = before
        self.after = after
        self.env = _environment()
        self.static = {name: _static(name) for name in _STATIC_TYPES}

    # -- plumbing -------------------------------------------------------------------------------

    def render(
        self,
        page: str,
        code: int = 200,
        /,
        *,
        nonce: str | None = None,
        **context: Any,
    ) -> Response:
        """The template ``page`` with ``context`` and the session's CSRF token, as ``code``."""
        csrf = self.sessions.csrf_token(nonce) if nonce is not None else None
        html = self.env.get_template(page).render(csrf=csrf, **context)
        # The API takes JSON's lone surrogates ("\ud800") as they are; UTF-8 cannot carry one,
        # so a page shows it as that escape instead of failing.
        content = html.encode("utf-8", "backslashreplace")
        return Response(content, code, headers=_HEADERS, media_type="text/html")

    def error(self, status: int, detail: Any, nonce: str | None, **context: Any) -> Response:
        context.setdefault("namespace", None)
        context.setdefault("back", None)
        return self.render(
            "error.html",
            status,
            nonce=nonce,
            status=status,
            lines=_detail_lines(detail),
            **context,
        )

    def nonce(self, request: Request) -> str | None:
        return self.sessions.nonce(request.cookies.get(COOKIE_NAME))

    def page(self, handler: Callable[[Request, str], Response], *, live: bool = False) -> Handler:
        """A GET page (or live fragment) that needs a session; ApiError -> its status page."""

        async def handle(request: Request) -> Response:
            nonce = self.nonce(request)
            if nonce is None:
                if live:
                    return Response("session ended: reload the page", 401, headers=_HEADERS)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(
                    f"{PREFIX}/login?{urlencode({'next': target})}", 303, headers=_HEADERS
                )
            try:
                if self.before is not None:
                    self.before()  # cron fires lazily, as before an API request
                return handler(request, nonce)
            except (ApiError, Refused) as exc:
                if live:
                    return Response(
                        "\n".join(_detail_lines(exc.detail)), exc.status, headers=_HEADERS
                    )
                namespace = request.path_params.get("namespace")
                return self.error(exc.status, exc.detail, nonce, namespace=namespace)

        return handle

    def form(self, handler: Callable[[Request, str, dict[str, str]], Response]) -> Handler:
        """A POST form: session (else to the prompt), CSRF token (else 403), then ``handler``."""

        async def handle(request: Request) -> Response:
            nonce = self.nonce(request)
            if nonce is None:
                return RedirectResponse(f"{PREFIX}/login", 303, headers=_HEADERS)
            try:
                fields = await self.read_form(request)
            except (ApiError, Refused) as exc:
                return self.error(exc.status, exc.detail, nonce)
            if not self.sessions.csrf_matches(nonce, fields.get("csrf")):
                return self.error(
                    403, "CSRF token missing or invalid: reload the page and submit again", nonce
                )
            namespace = request.path_params.get("namespace")
            try:
                if self.before is not None:
                    self.before()
                return handler(request, nonce, fields)
            except (ApiError, Refused) as exc:
                back = None
                if namespace is not None and "run_id" in request.path_params:
                    back = run_url(namespace, request.path_params["run_id"])
                return self.error(exc.status, exc.detail, nonce, namespace=namespace, back=back)
            finally:
                if self.after is not None:
                    self.after()  # wake wait_for_run and the cron loop, as after an API call

        return handle

    @staticmethod
    async def read_form(request: Request) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body as ``{name: first value}``."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if content_type != "application/x-www-form-urlencoded":
            if not body:
                return {}
            raise ApiError(415, "Dashboard forms are sent as application/x-www-form-urlencoded")
        if len(body) > _MAX_FORM_BYTES:
            raise ApiError(413, "Form too large")
        try:
            parsed = parse_qs(
                body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=20,
            )
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "There was an error parsing the form") from None
        return {name: values[0] for name, values in parsed.items()}

    # -- auth -----------------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return RedirectResponse(home_url(), 303, headers=_HEADERS)

    async def login_form(self, request: Request) -> Response:
        target = _safe_next(request.query_params.get("next"))
        if self.nonce(request) is not None:
            return RedirectResponse(target, 303, headers=_HEADERS)
        return self.render("login.html", next=target, message=None)

    async def login(self, request: Request) -> Response:
        try:
            fields = await self.read_form(request)
        except (ApiError, Refused) as exc:
            return self.error(exc.status, exc.detail, None)
        target = _safe_next(fields.get("next"))
        if not self.sessions.key_matches(fields.get("key", "")):
            # The API's 401 detail (§1.2); the key typed is never echoed back.
            return self.render("login.html", 401, next=target, message="Invalid API key")
        response = RedirectResponse(target, 303, headers=_HEADERS)
        response.set_cookie(
            COOKIE_NAME,
            self.sessions.new_session(),
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def logout(self, request: Request, nonce: str, fields: dict[str, str]) -> Response:
        self.sessions.revoke(nonce)
        response = RedirectResponse(f"{PREFIX}/login", 303, headers=_HEADERS)
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    async def static_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.static:
            return self.error(404, "Not Found", None)
        headers = {**_HEADERS, "Cache-Control": "no-cache"}
        return Response(self.static[name], headers=headers, media_type=_STATIC_TYPES[name])

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = self.error(404, "Not Found: no dashboard page here", self.nonce(request))
        await response(scope, receive, send)

    # -- pages ----------------------------------------------------------------------------------

    def home(self, request: Request, nonce: str) -> Response:
        rows = []
        for namespace in self.engine.namespaces()["namespaces"]:
            rows.append(
                {
                    "name": namespace,
                    "nodes": self.engine.list_nodes(namespace)["count"],
                    "graphs": self.engine.list_graphs(namespace)["count"],
                    "runs": self.engine.list_runs(namespace, 1, 1)["total"],
                }
            )
        return self.render("home.html", nonce=nonce, namespaces=rows, namespace=None)

    def open_namespace(self, request: Request, nonce: str) -> Response:
        name = request.query_params.get("namespace", "").strip()
        if not name or "/" in name:
            raise ApiError(400, "Enter a namespace name (without '/')")
        return RedirectResponse(ns_url(name), 303, headers=_HEADERS)

    def namespace(self, request: Request, nonce: str) -> Response:
        namespace = request.path_params["namespace"]
        nodes = sorted(self.engine.list_nodes(namespace)["nodes"], key=lambda n: str(n["name"]))
        graphs = graph_rows(self.engine.list_graphs(namespace)["templates"])
        runs = self.engine.list_runs(namespace, 1, 5)
        return self.render(
            "namespace.html",
            nonce=nonce,
            namespace=namespace,
            nodes=nodes,
            graphs=graphs,
            runs=runs["runs"],
            run_total=runs["total"],
        )

    def graph(self, request: Request, nonce: str) -> Response:
        namespace = request.path_params["namespace"]
        name = request.path_params["graph_name"]
        template = self.engine.get_graph(namespace, name)  # 404 with the API's detail
        return self.render(
            "graph.html",
            nonce=nonce,
            namespace=namespace,
            name=name,
            template=template,
            secret_names=sorted(template["secrets"]),
        )

    def _runs_context(self, request: Request) -> JsonDict:
        namespace = request.path_params["namespace"]
        params = request.query_params
        values: JsonDict = {}
        for name, default in (("page", 1), ("size", DEFAULT_PAGE_SIZE)):
            raw = params.get(name)
            try:
                values[name] = default if raw is None else _INT.validate_python(raw)
            except ValidationError as exc:
                raise Refused(422, _validation_detail(exc, "query", name)) from None
        status = params.get("status", "")
        if status:
            try:
                _RUN_STATUS.validate_python(status)
            except ValidationError as exc:
                raise Refused(422, _validation_detail(exc, "query", "status")) from None
        page, size = values["page"], values["size"]
        answer = self.engine.list_runs(namespace, page, size)  # the API's checks (page >= 1)
        runs, total = answer["runs"], answer["total"]
        if status:
            every = self.engine.list_runs(namespace, 1, 0)["runs"]
            matching = [run for run in every if run["status"] == status]
            runs, total = page_of(matching, page, size), len(matching)
        limit = abs(size)
        pages = max(math.ceil(total / limit), 1) if limit else 1
        return {
            "namespace": namespace,
            "runs": runs,
            "total": total,
            "page": page,
            "size": size,
            "pages": pages,
            "status": status,
        }

    def runs(self, request: Request, nonce: str) -> Response:
        return self.render("runs.html", nonce=nonce, **self._runs_context(request))

    def runs_live(self, request: Request, nonce: str) -> Response:
        return self.render("_runs_table.html", nonce=nonce, **self._runs_context(request))

    def _run_context(self, request: Request) -> JsonDict:
        namespace = request.path_params["namespace"]
        run_id = request.path_params["run_id"]
        summary = self.engine.run_summary(run_id)
        states = [s for s in self.engine.states_of_run(run_id) if s["namespace_name"] == namespace]
        if summary is None or not states:
            raise ApiError(404, f"Run {run_id} not found in namespace {namespace}")
        try:
            template_nodes = self.engine.get_graph(namespace, summary["graph_name"])["nodes"]
        except ApiError:
            template_nodes = []  # the template is gone: no unites edges
        notice = {"retried": "Retry created.", "re-enqueued": "State re-enqueued."}.get(
            request.query_params.get("done", "")
        )
        return {
            "namespace": namespace,
            "run": run_view(namespace, summary, states, template_nodes),
            "notice": notice,
        }

    def run(self, request: Request, nonce: str) -> Response:
        return self.render("run.html", nonce=nonce, **self._run_context(request))

    def run_live(self, request: Request, nonce: str) -> Response:
        return self.render("_run_live.html", nonce=nonce, **self._run_context(request))

    # -- forms ----------------------------------------------------------------------------------

    def _state_in_run(self, namespace: str, run_id: str, state_id: str) -> JsonDict:
        for state in self.engine.states_of_run(run_id):
            if state["id"] == state_id.lower() and state["namespace_name"] == namespace:
                return state
        raise ApiError(404, "State not found")  # the API's detail (§2.11, §2.12)

    def retry(self, request: Request, nonce: str, fields: dict[str, str]) -> Response:
        """Manual retry (§2.12, §6.3) of a failed state: the engine call the API makes."""
        namespace, run_id = request.path_params["namespace"], request.path_params["run_id"]
        state_id = request.path_params["state_id"]
        try:
            fanout_id = _TEXT.validate_python(fields["fanout_id"])
        except KeyError:
            missing = {"type": "missing", "loc": ["body", "fanout_id"], "msg": "Field required"}
            raise Refused(422, [missing]) from None
        with self.engine.lock:  # the status seen is the status retried
            state = self._state_in_run(namespace, run_id, state_id)
            if state["status"] not in RETRY_STATUSES:
                raise ApiError(
                    400,
                    f"State is not errored: it is {state['status']}; the dashboard retries"
                    f" {' or '.join(RETRY_STATUSES)} states only",
                )
            created = self.engine.manual_retry(namespace, state["id"], fanout_id=fanout_id)
        target = f"{run_url(namespace, run_id)}?done=retried#state-{created['id']}"
        return RedirectResponse(target, 303, headers=_HEADERS)

    def reenqueue(self, request: Request, nonce: str, fields: dict[str, str]) -> Response:
        """Re-enqueue-after (§2.11, §6.2) of a stuck QUEUED state: the API's engine call."""
        namespace, run_id = request.path_params["namespace"], request.path_params["run_id"]
        state_id = request.path_params["state_id"]
        raw = fields.get("enqueue_after")
        if raw is None:
            missing = {"type": "missing", "loc": ["body", "enqueue_after"], "msg": "Field required"}
            raise Refused(422, [missing])
        try:
            delay = _DELAY.validate_python(raw.strip())
        except ValidationError as exc:
            raise Refused(422, _validation_detail(exc, "body", "enqueue_after")) from None
        with self.engine.lock:
            state = self._state_in_run(namespace, run_id, state_id)
            if state["status"] not in REENQUEUE_STATUSES:
                raise ApiError(
                    400,
                    f"State is not queued: it is {state['status']}; the dashboard re-enqueues"
                    " QUEUED states only",
                )
            self.engine.re_enqueue_after(namespace, state["id"], enqueue_after=delay)
        target = f"{run_url(namespace, run_id)}?done=re-enqueued#state-{state['id']}"
        return RedirectResponse(target, 303, headers=_HEADERS)


def build_dashboard(
    engine: Engine,
    *,
    api_key: str,
    before: Callable[[], object] | None = None,
    after: Callable[[], object] | None = None,
    sessions: Sessions | None = None,
) -> list[BaseRoute]:
    """The dashboard's routes: ``GET /`` (a redirect) and the ``/dashboard`` mount.

    Args:
        engine: the engine the API serves (its reads, its manual retry and re-enqueue).
        api_key: the key the prompt accepts (the API's, contract §1.2).
        before: called before each page's engine reads and each form's call (lazy cron).
        after: called after each form's engine call (wakes ``wait_for_run``).
        sessions: the session store (default: a new one with a random secret).
    """
    dash = _Dashboard(
        engine, sessions if sessions is not None else Sessions(api_key), before, after
    )
    ns = "/ns/{namespace}"
    run = ns + "/runs/{run_id}"
    routes: list[BaseRoute] = [
        Route("/", dash.page(dash.home), methods=["GET"]),
        Route("/login", dash.login_form, methods=["GET"]),
        Route("/login", dash.login, methods=["POST"]),
        Route("/logout", dash.form(dash.logout), methods=["POST"]),
        Route("/static/{name}", dash.static_file, methods=["GET"]),
        Route("/open", dash.page(dash.open_namespace), methods=["GET"]),
        Route(ns, dash.page(dash.namespace), methods=["GET"]),
        Route(ns + "/graphs/{graph_name}", dash.page(dash.graph), methods=["GET"]),
        Route(ns + "/runs", dash.page(dash.runs), methods=["GET"]),
        Route(run, dash.page(dash.run), methods=["GET"]),
        Route(run + "/states/{state_id}/retry", dash.form(dash.retry), methods=["POST"]),
        Route(run + "/states/{state_id}/re-enqueue", dash.form(dash.reenqueue), methods=["POST"]),
        Route("/live" + ns + "/runs", dash.page(dash.runs_live, live=True), methods=["GET"]),
        Route("/live" + run, dash.page(dash.run_live, live=True), methods=["GET"]),
    ]
    return [
        Route("/", dash.root, methods=["GET"]),
        Mount(PREFIX, app=Router(routes=routes, default=dash.not_found)),
    ]
