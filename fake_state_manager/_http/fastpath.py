"""A plain-ASGI fast path for the hot routes, byte-identical to the normal app (issue #12).

A runtime spends its life on two requests: ``POST .../states/enqueue`` and ``POST
.../state/{id}/executed`` (plus, less often, ``errored`` and ``re-enqueue-after``). Through the
normal app each one crosses five middleware layers, Starlette's router, a ``Request`` object and
a pydantic model before the engine sees it: several times the engine's own cost. This middleware
answers exactly those requests itself, in their everyday shape, and hands everything else to the
normal app untouched.

What it answers: ``POST`` to one of the four routes (no ``root_path``), without an ``Origin``
header (so CORS has nothing to add), with the right ``x-api-key``, a JSON content type (or none),
a body within the limit that parses as a JSON object, and fields of exactly the types the
request model accepts without conversion (``nodes`` a list of ``str``, ``batch_size`` an ``int``
at most 1000, and so on). It then does what the normal app does, in the same order: request id
(§1.4), ``before()`` hook, the engine call, ``after()`` hook, a JSON answer (the engine's
``ApiError`` as ``{"detail": ...}``, any other exception as the middleware 500, logged), the
request-id header, and the recorder's :class:`~fake_state_manager._http.middleware.RecordedRequest`.

What it hands over: anything else, before the engine is called: another route or method, an
``Origin`` header, a missing or wrong key, a declared or streamed body over the limit, a client
gone mid-body, an empty or non-JSON body, JSON the fast path cannot read exactly as the stdlib
does (NaN, lone surrogates, a byte-order mark, UTF-16...), nesting deeper than the limit, a field
that would need pydantic (a missing field, a ``"5"`` for an int, a ``bool``, an extra-large
batch). Body messages already read are replayed to the normal app in order, so it sees the
request exactly as it arrived and gives its own answer (422, 401, 413...). The request log
(``--log-requests``) sits outside this middleware and sees both paths alike.

The work itself is synchronous and knows no ASGI: :class:`FastPath` takes a request's path and
headers (:meth:`FastPath.match`), then its whole body (:meth:`FastPath.answer`), and gives the
status, headers and body to send. :class:`FastPathMiddleware` drives it from ``receive`` and
``send``; the dev server's HTTP protocol (``serve.py``) drives it from the parser's callbacks and
writes the answer itself, without an ASGI task.

JSON: orjson parses when it is installed and the body has no digit run of 19 or more (orjson
turns integers beyond 64 bits into floats); else the stdlib parses. Answers are the stdlib's
bytes (``ensure_ascii``, compact separators); orjson writes them only when its bytes are the
same: values that are exact ``str``, ``int`` within 64 bits, ``bool`` or ``None`` (never a
float: the two libraries format some differently), and output that is ASCII without DEL (which
the stdlib escapes). ``tests/fake_state_manager/http/test_fastpath.py`` runs both apps over the
same requests and compares every byte.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from collections.abc import Callable
from typing import Any, TypedDict, Unpack

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._http.middleware import (
    INTERNAL_ERROR_DETAIL,
    RecordedRequest,
    _json_answer,
    _valid_uuid,
)
from fake_state_manager._http.parsing import (
    MAX_JSON_DEPTH,
    _deeper_than,
    _encode,
    _is_json_content_type,
)
from fake_state_manager._http.requests import MAX_BATCH_SIZE

try:  # optional: the stdlib does everything orjson does here, only slower
    import orjson
except ImportError:  # pragma: no cover - exercised by the no-orjson test via monkeypatch
    orjson = None  # type: ignore[assignment]

__all__ = [
    "Answer",
    "FastPath",
    "FastPathMiddleware",
    "FastPathSettings",
    "HotRequest",
    "cors_headers",
    "encode_flat",
    "loads",
    "new_request_id",
]

logger = logging.getLogger("fake_state_manager")

_PREFIX = "/v0/namespace/"
_PREFIX_LEN = len(_PREFIX)
_REQUEST_ID = b"x-exosphere-request-id"
_JSON = b"application/json"
_INT64 = 2**63
# orjson parses an integer beyond 64 bits as a float (the stdlib: an int). 19 digits in a row
# may be one (2**63 has 19); such bodies are parsed by the stdlib.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_EXECUTED = {"status": "EXECUTED"}
_EXECUTED_BYTES = _encode(_EXECUTED)
# What uuid.UUID reads certainly (it takes more: braces, "urn:uuid:", no hyphens).
_CANONICAL_UUID = re.compile(
    rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


# Request ids are made a few hundred at a time from one os.urandom call (one system call and
# one hex conversion per 256 ids instead of one each) and handed out with list.pop, which is
# atomic: a served thread and the caller's loop may both draw, and two refills at once only
# make more ids, never the same one. A forked child starts with none (no shared ids).
_IDS_PER_DRAW = 256
_ready_ids: list[bytes] = []
os.register_at_fork(after_in_child=_ready_ids.clear)
# Byte maps for the uuid4 marks: the version nibble (4) and the RFC 4122 variant bits (10).
_VERSION_4 = bytes(b & 0x0F | 0x40 for b in range(256))
_VARIANT = bytes(b & 0x3F | 0x80 for b in range(256))


def _draw_ids() -> list[bytes]:
    raw = bytearray(os.urandom(16 * _IDS_PER_DRAW))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    h = raw.hex().encode("latin-1")
    return [
        b"%s-%s-%s-%s-%s" % (h[i : i + 8], h[i + 8 : i + 12], h[i + 12 : i + 16],
                             h[i + 16 : i + 20], h[i + 20 : i + 32])
        for i in range(0, len(h), 32)
    ]


def new_request_id() -> bytes:
    """``str(uuid.uuid4())`` as bytes at a fraction of its cost: the same 122 bits of os.urandom."""
    try:
        return _ready_ids.pop()
    except IndexError:
        _ready_ids.extend(_draw_ids())
        return _ready_ids.pop()


class _Unusual(Exception):
    """This request is not in the hot shape: the normal app answers it."""


def loads(raw: bytes) -> Any:
    """Parse ``raw`` to exactly what ``json.loads(raw)`` gives, or raise ``ValueError``.

    ``ValueError`` (or ``RecursionError``) also where ``json.loads`` might succeed (orjson
    refuses NaN, a BOM, lone surrogates): the caller then hands the request to the normal app.
    """
    if orjson is not None and _LONG_DIGITS.search(raw) is None:
        return orjson.loads(raw)
    # str, not bytes: bytes would be sniffed for UTF-16/32, and anything that decodes as
    # UTF-8 and parses here is what json.loads(raw) gives (the normal app parses the bytes).
    return json.loads(raw.decode("utf-8"))


def _plain(value: object) -> bool:
    kind = type(value)
    return (
        kind is str
        or value is None
        or kind is bool
        or (kind is int and -_INT64 <= value < _INT64)  # type: ignore[operator]
    )


def _same_bytes(data: bytes) -> bool:
    # The stdlib (ensure_ascii) escapes every non-ASCII character and DEL; orjson neither.
    return data.isascii() and b"\x7f" not in data


def encode_flat(content: dict[str, Any]) -> bytes:
    """``_encode(content)`` for a dict of plain values (``str``, small ``int``, ``bool``, None)."""
    if orjson is not None and all(_plain(v) for v in content.values()):
        data = orjson.dumps(content)
        if _same_bytes(data):
            return data
    return _encode(content)


def _encode_claims(content: dict[str, Any]) -> bytes:
    """``_encode`` of an enqueue answer (§2.7): orjson when every value in a state is a ``str``."""
    if orjson is not None and type(content.get("namespace")) is str:
        for state in content["states"]:
            for name, value in state.items():
                if type(value) is str:
                    continue
                if name != "inputs" or type(value) is not dict:
                    return _encode(content)
                for item in value.values():
                    if type(item) is not str:
                        return _encode(content)
        try:
            data = orjson.dumps(content)
        except TypeError:  # a lone surrogate (cannot be UTF-8), a non-str key
            return _encode(content)
        if _same_bytes(data):
            return data
    return _encode(content)


def _encode_executed(content: dict[str, Any]) -> bytes:
    return _EXECUTED_BYTES if content == _EXECUTED else _encode(content)


# One hot route: read the validated arguments from the parsed body (or raise _Unusual), call the
# engine, encode its answer. Checks accept only what the request model takes unchanged.
def _enqueue_args(body: dict[str, Any]) -> tuple[Any, ...]:
    nodes, batch_size = body.get("nodes"), body.get("batch_size")
    if (
        type(nodes) is not list
        or type(batch_size) is not int
        or batch_size > MAX_BATCH_SIZE
        or not all(type(node) is str for node in nodes)
    ):
        raise _Unusual
    return (list(nodes), batch_size)  # pydantic hands the engine a copy of the list


def _executed_args(body: dict[str, Any]) -> tuple[Any, ...]:
    outputs = body.get("outputs")
    if type(outputs) is not list or not all(type(output) is dict for output in outputs):
        raise _Unusual
    return ([dict(output) for output in outputs],)  # pydantic copies each dict too


def _errored_args(body: dict[str, Any]) -> tuple[Any, ...]:
    error = body.get("error")
    if type(error) is not str:
        raise _Unusual
    return (error,)


def _re_enqueue_args(body: dict[str, Any]) -> tuple[Any, ...]:
    delay = body.get("enqueue_after")
    if type(delay) is not int or delay <= 0:
        raise _Unusual
    return (delay,)


Call = Callable[[Engine, str, str, tuple[Any, ...]], dict[str, Any]]
_Route = tuple[Callable[[dict[str, Any]], tuple[Any, ...]], Call, Callable[[dict[str, Any]], bytes]]

_ENQUEUE: _Route = (
    _enqueue_args,
    lambda e, ns, _, a: e.enqueue(ns, nodes=a[0], batch_size=a[1]),
    _encode_claims,
)
_STATE_ROUTES: dict[str, _Route] = {
    "executed": (
        _executed_args,
        lambda e, ns, sid, a: e.executed(ns, sid, outputs=a[0]),
        _encode_executed,
    ),
    "errored": (
        _errored_args,
        lambda e, ns, sid, a: e.errored(ns, sid, error=a[0]),
        encode_flat,
    ),
    "re-enqueue-after": (
        _re_enqueue_args,
        lambda e, ns, sid, a: e.re_enqueue_after(ns, sid, enqueue_after=a[0]),
        encode_flat,
    ),
}


def _parse(raw: bytes, route: _Route) -> tuple[Any, tuple[Any, ...]] | None:
    """The body's JSON object and the route's arguments, or ``None``: not the hot shape."""
    try:
        data = loads(raw)
    except (ValueError, RecursionError):
        return None
    if type(data) is not dict:
        return None
    # Cheap pre-check (C speed) as in parsing.parse_json_body: few brackets, no deep nesting.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _deeper_than(data, MAX_JSON_DEPTH):
        return None
    try:
        return data, route[0](data)
    except _Unusual:
        return None


def _route(path: str) -> tuple[_Route, str, str] | None:
    """The hot route of ``path`` with its namespace and state id, as Starlette would match."""
    if not path.startswith(_PREFIX):
        return None
    parts = path[_PREFIX_LEN:].split("/")
    if len(parts) == 4 and parts[1] == "state" and parts[0] and parts[2]:
        route = _STATE_ROUTES.get(parts[3])
        return None if route is None else (route, parts[0], parts[2])
    if len(parts) == 3 and parts[1] == "states" and parts[2] == "enqueue" and parts[0]:
        return (_ENQUEUE, parts[0], "")
    return None


def cors_headers(cors: Callable[[ASGIApp], ASGIApp]) -> list[tuple[bytes, bytes]] | None:
    """The headers the CORS middleware adds to a JSON answer when the request has no ``Origin``.

    Asked of the middleware itself, once: Starlette's answer changed across versions (1.x adds
    ``vary: Origin`` to every response, 0.x nothing). ``cors`` wraps an app in the CORS
    middleware as the normal app configures it. ``None`` when the answer is not a plain suffix
    of headers (the fast path then hands every request over).
    """
    given = [(b"content-length", b"2"), (b"content-type", _JSON)]
    sent: list[Message] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(given)})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:  # pragma: no cover - the probe reads no body
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    run = cors(inner)(scope, receive, send)
    try:
        run.send(None)  # type: ignore[attr-defined]
    except StopIteration:
        pass
    else:  # it waited for something: not the plain header rewrite expected
        run.close()  # type: ignore[attr-defined]
        return None
    if len(sent) != 2:
        return None
    headers = [tuple(h) for h in sent[0]["headers"]]
    if headers[:2] != given:
        return None
    return [(bytes(name), bytes(value)) for name, value in headers[2:]]


Header = tuple[bytes, bytes]
# What the fast path sends: status, headers (uvicorn adds its own before them), body.
Answer = tuple[int, list[Header], bytes]


class HotRequest:
    """A request :meth:`FastPath.match` took; its body goes to :meth:`FastPath.answer`."""

    __slots__ = ("arrived", "declared", "namespace", "path", "request_id", "route", "state_id")

    def __init__(
        self,
        route: _Route,
        namespace: str,
        state_id: str,
        path: str,
        request_id: bytes | None,
        declared: int | None,
        arrived: float,
    ) -> None:
        self.route = route
        self.namespace = namespace
        self.state_id = state_id
        self.path = path
        self.request_id = request_id  # as sent (first of its kind), not yet validated
        self.declared = declared  # the content-length, if one was sent
        self.arrived = arrived  # the recorder's clock when the headers were read


class FastPathSettings(TypedDict):
    """What the fast path takes from the app it stands in for (see :class:`FastPathMiddleware`)."""

    engine: Engine
    api_key: bytes
    recorder: list[RecordedRequest] | None
    now: Callable[[], float]
    before: Callable[[], object] | None
    after: Callable[[], object] | None
    max_body_bytes: int


class FastPath:
    """The synchronous core of the fast path: a hot request's headers, then its body, in; its
    whole answer out. No ASGI: :class:`FastPathMiddleware` drives it from ``receive``/``send``,
    and the dev server's HTTP protocol (``serve.py``) straight from the parser's callbacks.

    Args: as :class:`FastPathMiddleware` (``cors``: the headers :func:`cors_headers` found).
    """

    __slots__ = ("after", "api_key", "before", "cors", "engine", "max_body_bytes", "now",
                 "recorder")

    def __init__(self, *, cors: list[Header], **settings: Unpack[FastPathSettings]) -> None:
        self.engine = settings["engine"]
        self.api_key = settings["api_key"]
        self.recorder = settings["recorder"]
        self.now = settings["now"]
        self.before = settings["before"]
        self.after = settings["after"]
        self.max_body_bytes = settings["max_body_bytes"]
        self.cors = cors

    def match(self, path: str, headers: list[Header]) -> HotRequest | None:
        """The ``POST`` to ``path`` (no ``root_path``) as a hot request, or ``None``: hand over.

        Hands over before a byte of the body is read: another route, an ``Origin`` header, a
        missing or wrong key, a declared body over the limit, a content type that is not JSON.
        """
        found = _route(path)
        if found is None:
            return None
        # First of each header, as Starlette's Headers.get and the middleware read them.
        key = content_type = length = request_id = None
        for name, value in headers:
            if name == b"x-api-key":
                if key is None:
                    key = value
            elif name == b"content-type":
                if content_type is None:
                    content_type = value
            elif name == b"content-length":
                if length is None:
                    length = value
            elif name == _REQUEST_ID:
                if request_id is None:
                    request_id = value
            elif name == b"origin":
                return None  # CORS headers: the normal app's job
        return self._hot(found, path, key, content_type, length, request_id)

    def match_fields(self, path: str, fields: dict[bytes, bytes]) -> HotRequest | None:
        """:meth:`match` for headers already read into one value per (lower-case) name."""
        found = _route(path)
        if found is None or b"origin" in fields:
            return None
        get = fields.get
        return self._hot(found, path, get(b"x-api-key"), get(b"content-type"),
                         get(b"content-length"), get(_REQUEST_ID))

    def _hot(
        self,
        found: tuple[_Route, str, str],
        path: str,
        key: bytes | None,
        content_type: bytes | None,
        length: bytes | None,
        request_id: bytes | None,
    ) -> HotRequest | None:
        if key is None or not hmac.compare_digest(key, self.api_key):
            return None  # 401, after the body's JSON check
        declared = None
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = 0
            if declared > self.max_body_bytes:
                return None  # 413 before a byte is read
        if content_type is not None and content_type != _JSON and not _is_json_content_type(
            content_type.decode("latin-1")
        ):
            return None  # validated as text: a 422
        arrived = self.now() if self.recorder is not None else 0.0
        route, namespace, state_id = found
        return HotRequest(route, namespace, state_id, path, request_id, declared, arrived)

    def answer(self, hot: HotRequest, raw: bytes) -> Answer | None:
        """The whole answer to ``hot`` with body ``raw`` (within the limit), or ``None``: the
        body is not in the hot shape, nothing was called, the normal app answers it."""
        parsed = _parse(raw, hot.route)
        if parsed is None:
            return None
        return self.respond(hot, *parsed)

    def respond(self, hot: HotRequest, data: Any, args: tuple[Any, ...]) -> Answer:
        """Do what the normal app does for ``hot`` with parsed body ``data``: request id (§1.4),
        ``before()``, the engine call, ``after()``, a JSON answer (an ``ApiError`` as
        ``{"detail": ...}``, any other exception as the middleware 500, logged), the recorder."""
        # RequestIdMiddleware: a valid UUID is echoed as sent, else a new uuid4.
        request_id = hot.request_id
        if request_id is None or (
            _CANONICAL_UUID.fullmatch(request_id) is None
            and not _valid_uuid(request_id.decode("latin-1"))
        ):
            request_id = new_request_id()
        route = hot.route
        status = 500
        try:
            try:
                try:
                    if self.before is not None:
                        self.before()
                    result = route[1](self.engine, hot.namespace, hot.state_id, args)
                except ApiError as exc:
                    status, body = exc.status, encode_flat({"detail": exc.detail})
                else:
                    status, body = 200, route[2](result)
                finally:
                    if self.after is not None:
                        self.after()
                headers = [
                    (b"content-length", str(len(body)).encode("latin-1")),
                    (b"content-type", _JSON),
                    *self.cors,
                    (_REQUEST_ID, request_id),
                ]
            except Exception:  # UnhandledExceptionsMiddleware: a bug in the fake
                logger.exception("unhandled error in %s %s", "POST", hot.path)
                status = 500
                start, error = _json_answer(
                    500, {"success": False, "detail": INTERNAL_ERROR_DETAIL}
                )
                headers = [*start["headers"], *self.cors, (_REQUEST_ID, request_id)]
                body = error["body"]
            return status, headers, body
        finally:
            if self.recorder is not None:
                self.recorder.append(
                    RecordedRequest(
                        time=hot.arrived, method="POST", path=hot.path, body=data, status=status
                    )
                )


class _Replay:
    """``receive`` for the normal app: the messages already read, in order, then the rest."""

    __slots__ = ("messages", "receive")

    def __init__(self, messages: list[Message], receive: Receive) -> None:
        self.messages = messages
        self.receive = receive

    async def __call__(self) -> Message:
        if self.messages:
            return self.messages.pop(0)
        return await self.receive()


class FastPathMiddleware:
    """Answer the hot routes directly; hand every other request to ``app`` (module docstring).

    Sits inside the optional request log and outside the request-id middleware, and does the
    work of the layers it skips (request id, recorder, body limit, unhandled exceptions; CORS
    has nothing to do without an ``Origin`` header) for the requests it answers. The work
    itself is :attr:`core`'s (a :class:`FastPath`), which the dev server's HTTP protocol also
    calls without ASGI (``None`` when the fast path is off: see :func:`cors_headers`).

    Args:
        app: the normal app's middleware stack (request id, recorder, CORS, ..., the router).
        engine: the engine the routes call.
        api_key: the one global key (§1.2).
        recorder: the recorder's sink, or ``None`` when requests are not recorded.
        now: the recorder's clock.
        before: the routes' ``before()`` hook.
        after: the routes' ``after()`` hook.
        max_body_bytes: the body limit (a larger body goes to the normal app for its 413).
        cors: wraps an app in the CORS middleware as the normal app has it (see
            :func:`cors_headers`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cors: Callable[[ASGIApp], ASGIApp],
        **settings: Unpack[FastPathSettings],
    ) -> None:
        self.app = app
        added = cors_headers(cors)
        self.core = None if added is None else FastPath(cors=added, **settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = self.core
        if (
            core is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        hot = core.match(scope["path"], scope["headers"])
        if hot is None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # gone mid-body
                await self.app(scope, _Replay(messages, receive), send)
                return
            size += len(message.get("body", b""))
            if size > core.max_body_bytes or not message.get("more_body", False):
                break
        answer = None
        if size <= core.max_body_bytes:
            raw = (
                messages[0].get("body", b"")
                if len(messages) == 1
                else b"".join(m.get("body", b"") for m in messages)
            )
            answer = core.answer(hot, raw)
        if answer is None:
            await self.app(scope, _Replay(messages, receive), send)
            return
        status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
