"""Every response body matches its declared model exactly, and the SDK describes the same bodies.

* :func:`test_every_endpoint_answers_exactly_its_declared_model` drives one scenario over HTTP
  through every endpoint of ``routes.ENDPOINTS`` and checks each JSON body against the endpoint's
  ``response=`` model: it validates, and every JSON object has exactly the model's keys (by
  alias), recursively (the engine builds these dicts by hand, so nothing else keeps them equal).
* :func:`test_every_declared_error_status_answers_its_declared_model` provokes every error status
  ``/openapi.json`` declares for every endpoint (``openapi.response_models``) and checks each
  body against the declared model the same way.
* :func:`test_client_and_server_describe_the_same_fields` pairs each body description of
  ``exo_ref._wire`` (the SDK's side) with the fake's response model and compares the field names.
* The remaining tests feed the two checkers wrong data, so that each check is shown able to fail.
"""

from __future__ import annotations

import logging
import sqlite3
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, Union, get_args, get_origin

import httpx
import pytest
from pydantic import BaseModel, Field, ValidationError

from exo_ref import ManualClock
from exo_ref import _wire as w
from fake_state_manager._engine.engine import Engine
from fake_state_manager._http import responses as r
from fake_state_manager._http.app import create_app
from fake_state_manager._http.openapi import (
    EXAMPLE_BODIES,
    EXAMPLE_PARAMETERS,
    error_statuses,
    response_models,
)
from fake_state_manager._http.routes import ENDPOINTS, Endpoint
from tests.builders import graph_node

from ..http_support import KEY, PREFIX, START, ok, registration, running

# -- the recursive shape checker ----------------------------------------------------------------


def field_keys(model: type[BaseModel]) -> set[str]:
    """The JSON keys of ``model``: each field's alias if it has one (``_id``), else its name."""
    return {f.alias or name for name, f in model.model_fields.items()}


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def shape_diff(tp: Any, data: Any, where: str = "$") -> list[str]:
    """The differences between the keys of JSON ``data`` and the fields of annotation ``tp``.

    Walks pydantic models (keys must equal :func:`field_keys`), lists/tuples/sequences of them,
    ``Optional``/unions and ``dict[str, Model]`` values. Anything else (``dict[str, Any]``,
    ``str``, enums, ...) is a leaf: its value is model_validate's business, not this checker's.
    Each difference is one line naming the JSON path, e.g. ``$.nodes[0]: extra keys ['x']``.
    """
    if get_origin(tp) is typing.Annotated:
        return shape_diff(get_args(tp)[0], data, where)
    if _is_model(tp):
        if not isinstance(data, Mapping):
            return [f"{where}: expected an object for {tp.__name__}, got {type(data).__name__}"]
        expected = field_keys(tp)
        problems = []
        if extra := sorted(set(data) - expected):
            problems.append(f"{where}: extra keys {extra} (not fields of {tp.__name__})")
        if missing := sorted(expected - set(data)):
            problems.append(f"{where}: missing keys {missing} (fields of {tp.__name__})")
        for name, field in tp.model_fields.items():
            key = field.alias or name
            if key in data:
                problems += shape_diff(field.annotation, data[key], f"{where}.{key}")
        return problems
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Union or origin is types.UnionType:
        if data is None and type(None) in args:
            return []
        options = [a for a in args if a is not type(None)]
        results = [shape_diff(a, data, where) for a in options]
        # The value matches the union if it matches one option; else report the closest one.
        return min(results, key=len) if results else []
    if origin in (list, tuple, set, frozenset, Sequence) and args:
        if not isinstance(data, list):
            return [f"{where}: expected an array, got {type(data).__name__}"]
        item_types = args[:1] if origin is not tuple or args[-1] is Ellipsis else args
        problems = []
        for i, item in enumerate(data):
            item_type = item_types[min(i, len(item_types) - 1)]
            problems += shape_diff(item_type, item, f"{where}[{i}]")
        return problems
    if origin in (dict, Mapping) and len(args) == 2 and isinstance(data, Mapping):
        problems = []
        for key, value in data.items():
            problems += shape_diff(args[1], value, f"{where}[{key!r}]")
        return problems
    return []


def assert_exact(endpoint: Endpoint, body: Any) -> None:
    """``body`` validates against ``endpoint.response`` and has exactly its keys, recursively."""
    label = f"{endpoint.method} {endpoint.path} ({endpoint.name})"
    model = endpoint.response
    assert model is not None, f"{label}: no response model declared"
    problems = shape_diff(model, body)
    try:
        model.model_validate(body)
    except ValidationError as exc:
        problems.append(f"model_validate: {exc}")
    assert not problems, f"{label} answered unlike {model.__name__}:\n" + "\n".join(problems)


# -- 1. every endpoint, one scenario -------------------------------------------------------------

_BY_NAME = {e.name: e for e in ENDPOINTS}


class Recorder:
    """Calls endpoints by name (the URL comes from the endpoint's own path template) and keeps
    every ``(endpoint, body)`` answer."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.answers: list[tuple[Endpoint, Any]] = []

    async def __call__(self, name: str, json: Any = None, **params: Any) -> Any:
        endpoint = _BY_NAME[name]
        url = endpoint.path.format(namespace_name="ns", **params)
        kwargs: dict[str, Any] = {} if endpoint.body is None else {"json": json}
        body = await ok(self.client.request(endpoint.method, url, **kwargs), endpoint.status)
        self.answers.append((endpoint, body))
        return body


GRAPH = {
    "secrets": {"tok": "plain"},
    "nodes": [
        graph_node("a", "A", next_nodes=["b", "c"]),
        graph_node("b", "B", {"n": "${{ a.outputs.n }}"}),
        # unites: an Optional nested model that is set, so the checker walks into it.
        graph_node("c", "B", {"n": "${{ a.outputs.n }}"}) | {"unites": {"identifier": "a"}},
    ],
    "retry_policy": {"max_retries": 2, "strategy": "EXPONENTIAL", "max_delay": 60_000},
    "store_config": {"required_keys": ["k"], "default_values": {"d": "v"}},
    "triggers": [{"type": "CRON", "value": {"expression": "0 0 1 1 *"}}],
}


@pytest.mark.anyio
async def test_every_endpoint_answers_exactly_its_declared_model() -> None:
    async with running() as (_, client):
        call = Recorder(client)
        nodes = [
            registration("A", outputs=("n",), secrets=("tok",)),
            registration("B", ("n",), ("m",)),
        ]
        await call("register_nodes", {"runtime_name": "rt", "nodes": nodes})
        await call("list_nodes")
        created = await call("upsert_graph_template", GRAPH, graph_name="g")
        assert created["validation_status"] == "PENDING"
        # The update answers with the same status as the create (upstream's route is fixed 201).
        await call("upsert_graph_template", GRAPH, graph_name="g")
        got = await call("get_graph_template", graph_name="g")
        assert got["validation_status"] == "VALID", got["validation_errors"]
        await call("list_graph_templates")
        run_ids = []
        for _ in range(3):
            result = await call("trigger_graph", {"store": {"k": "x"}}, graph_name="g")
            run_ids.append(result["run_id"])
        claimed = await call("enqueue_states", {"nodes": ["A"], "batch_size": 10})
        ok_id, failed_id, pruned_id = (s["state_id"] for s in claimed["states"])
        await call("executed_state", {"outputs": [{"n": "1"}]}, state_id=ok_id)
        errored = await call("errored_state", {"error": "boom"}, state_id=failed_id)
        assert errored["retry_created"] is True
        await call("prune_state", {"data": {"why": "test"}}, state_id=pruned_id)
        children = await call("enqueue_states", {"nodes": ["B"], "batch_size": 10})
        child_id = children["states"][0]["state_id"]
        await call("re_enqueue_after_state", {"enqueue_after": 1000}, state_id=child_id)
        await call("manual_retry_state", {"fanout_id": "f"}, state_id=failed_id)
        await call("get_secrets", state_id=ok_id)
        await call("get_runs", page=1, size=10)
        await call("get_graph_structure", run_id=run_ids[0])
        await call("get_node_run_details", graph_name="g", run_id=run_ids[0], node_id=ok_id)
        await call("list_namespaces")
        health = await ok(client.get("/health"))  # not in ENDPOINTS; checked all the same

    problems = shape_diff(r.HealthResponse, health)
    assert not problems, problems
    failures = []
    for endpoint, body in call.answers:
        try:
            assert_exact(endpoint, body)
        except AssertionError as exc:  # collect all: one run names every mismatching endpoint
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)
    uncovered = sorted(e.name for e in ENDPOINTS if e not in {e for e, _ in call.answers})
    assert not uncovered, f"endpoints not driven by this scenario (add them): {uncovered}"


# -- 1b. every declared error status, one request each -------------------------------------------


def assert_declared(endpoint: Endpoint, status: int, body: Any) -> None:
    """``status`` is declared for ``endpoint`` and ``body`` is exactly its declared model."""
    label = f"{endpoint.method} {endpoint.path} ({endpoint.name}) {status}"
    declared = response_models(endpoint)
    assert status in declared, f"{label}: status not declared (declared: {sorted(declared)})"
    model = declared[status]
    problems = error_shape_diff(model, body)
    try:
        model.model_validate(body)
    except ValidationError as exc:
        problems.append(f"model_validate: {exc}")
    assert not problems, f"{label} answered unlike {model.__name__}:\n" + "\n".join(problems)


def error_shape_diff(model: type[BaseModel], body: Any) -> list[str]:
    """Like :func:`shape_diff`, but fields with a default may be left out (422 ``ctx``)."""
    if model is r.ValidationErrorResponse and isinstance(body, Mapping):
        problems = shape_diff(model, {**body, "detail": []})
        for i, item in enumerate(body.get("detail") or []):
            full = {"ctx": {}, **item} if isinstance(item, Mapping) else item
            problems += shape_diff(r.ValidationErrorDetail, full, f"$.detail[{i}]")
        return problems
    return shape_diff(model, body)


class ErrorProbe:
    """Sends one request per (endpoint, error status) and keeps ``(endpoint, status, body)``."""

    def __init__(self) -> None:
        self.answers: list[tuple[Endpoint, int, Any]] = []

    async def __call__(
        self,
        client: httpx.AsyncClient,
        name: str,
        status: int,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> Any:
        endpoint = _BY_NAME[name]
        url = endpoint.path.format(**(EXAMPLE_PARAMETERS | params))
        kwargs: dict[str, Any] = {"headers": headers}
        if content is not None:
            kwargs["content"] = content
        elif endpoint.body is not None:
            kwargs["json"] = EXAMPLE_BODIES[name] if json is None else json
        response = await client.request(endpoint.method, url, **kwargs)
        assert response.status_code == status, (name, status, response.text)
        body = response.json()
        self.answers.append((endpoint, status, body))
        return body


async def _generic_errors(probe: ErrorProbe) -> None:
    """401, router 404, body 400 and 422, int-path 422: the statuses every route of a kind has."""
    async with running() as (_, client):
        for endpoint in ENDPOINTS:
            name = endpoint.name
            await probe(client, name, 401, headers={"x-api-key": "wrong"})
            if "{namespace_name}" in endpoint.path:
                await probe(client, name, 404, namespace_name="")  # no route: ".../namespace//..."
            if endpoint.body is not None:
                bad_utf8 = {"content-type": "application/json"}
                await probe(client, name, 400, content=b'{"\xff": 1}', headers=bad_utf8)
                await probe(client, name, 422, content=b"{", headers=bad_utf8)
                await probe(client, name, 422, json=["not an object"])
            if endpoint.int_params:
                await probe(client, name, 422, page="first")


async def _engine_errors(probe: ErrorProbe) -> None:
    """The engine's own 400, 404 and 409 answers (``Endpoint.errors``)."""
    async with running() as (sm, client):
        ns = {"namespace_name": "ns"}
        example = EXAMPLE_BODIES["upsert_graph_template"]
        graph = example | {"nodes": [n | {"namespace": "ns"} for n in example["nodes"]]}
        await probe(client, "upsert_graph_template", 400, json=graph | {"nodes": []}, **ns)
        await probe(client, "get_graph_template", 404, **ns)
        await probe(client, "trigger_graph", 404, **ns)
        # Greet is not registered in "ns" yet: the template is stored INVALID.
        await ok(client.put(f"{PREFIX}/graph/greet", json=graph), 201)
        await probe(client, "trigger_graph", 400, **ns)
        await ok(client.put(f"{PREFIX}/nodes/", json=EXAMPLE_BODIES["register_nodes"]))
        await ok(client.put(f"{PREFIX}/graph/greet", json=graph), 201)
        run = await ok(client.post(f"{PREFIX}/graph/greet/trigger", json={}))
        (created,) = sm.states(run["run_id"])  # CREATED, not claimed: "not queued"
        created_id = {"state_id": created["id"], **ns}
        for name in ("executed_state", "errored_state", "prune_state"):
            await probe(client, name, 400, **created_id)
        for name in ("executed_state", "errored_state", "prune_state", "re_enqueue_after_state",
                     "manual_retry_state", "get_secrets"):
            await probe(client, name, 404, **ns)  # the example id names no state
        too_late = {"enqueue_after": 2**63}
        await probe(client, "re_enqueue_after_state", 400, json=too_late, **created_id)
        retry = {"fanout_id": "f"}
        await ok(client.post(f"{PREFIX}/state/{created['id']}/manual-retry", json=retry))
        await probe(client, "manual_retry_state", 409, json=retry, **created_id)
        await probe(client, "get_runs", 400, page=0, **ns)
        details = {"graph_name": "greet", "run_id": run["run_id"], **ns}
        await probe(client, "get_node_run_details", 400, node_id="not-an-id", **details)
        await probe(client, "get_node_run_details", 404, **details)


async def _middleware_errors(probe: ErrorProbe) -> None:
    """413 (BodyLimitMiddleware, before auth and routing) and 500 (UnhandledExceptions...)."""
    async with running(max_body_bytes=16) as (_, client):
        for endpoint in ENDPOINTS:
            await probe(client, endpoint.name, 413, content=b"[" + b" " * 32 + b"]")

    def boom() -> None:
        raise RuntimeError("a bug in the fake")

    app = create_app(Engine(), api_key=KEY, before_request=boom)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://fake", headers={"x-api-key": KEY}
    ) as client:
        for endpoint in ENDPOINTS:
            await probe(client, endpoint.name, 500)


class _FailingCommits:
    """A sqlite3 connection whose COMMIT fails, as on a full disk."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.inner.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _storage_errors(probe: ErrorProbe, db: Path) -> None:
    """503: with --db, a failed commit; here the cron firing that runs before every /v0 call."""
    clock = ManualClock(START)
    async with running(db=db, clock=clock) as (sm, client):
        await ok(client.put(f"{PREFIX}/nodes/", json={"runtime_name": "rt", "nodes": [
            registration("A")]}))
        every_minute = [{"type": "CRON", "value": {"expression": "* * * * *"}}]
        body = {"secrets": {}, "nodes": [graph_node("a", "A")], "triggers": every_minute}
        await ok(client.put(f"{PREFIX}/graph/cron", json=body), 201)
        storage = sm.engine.storage
        assert storage is not None
        storage.connection = _FailingCommits(storage.connection)  # type: ignore[assignment]
        clock.advance(60)  # a trigger is due: every request tries to fire (and save) it first
        for endpoint in ENDPOINTS:
            await probe(client, endpoint.name, 503)
    sm.close()


@pytest.mark.anyio
async def test_every_declared_error_status_answers_its_declared_model(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    probe = ErrorProbe()
    await _generic_errors(probe)
    await _engine_errors(probe)
    await _storage_errors(probe, tmp_path / "fake.db")
    with caplog.at_level(logging.CRITICAL, logger="fake_state_manager"):  # the 500 tracebacks
        await _middleware_errors(probe)

    failures = []
    for endpoint, status, body in probe.answers:
        try:
            assert_declared(endpoint, status, body)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)
    driven = {(e.name, status) for e, status, _ in probe.answers}
    declared = {(e.name, s) for e in ENDPOINTS for s in error_statuses(e)}
    assert not declared - driven, f"declared, not driven (add a request): {declared - driven}"


# -- 2. client and server name the same fields ---------------------------------------------------


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


def description_keys(tp: Any) -> set[str]:
    """The JSON keys a description names: a TypedDict's keys, or a pydantic model's fields."""
    if _is_typeddict(tp):
        return set(tp.__required_keys__ | tp.__optional_keys__)
    assert _is_model(tp), tp
    return field_keys(tp)


def _described_fields(tp: Any) -> dict[str, Any]:
    """key -> annotation of a description (TypedDict hints resolved; pydantic by alias)."""
    if _is_typeddict(tp):
        return typing.get_type_hints(tp)
    return {f.alias or n: f.annotation for n, f in tp.model_fields.items()}


def _descriptions_in(tp: Any) -> set[type]:
    """The TypedDicts and models named inside an annotation (``list[X]``, ``X | None``, ...)."""
    if _is_typeddict(tp) or _is_model(tp):
        return {tp}
    found: set[type] = set()
    for arg in get_args(tp):
        found |= _descriptions_in(arg)
    return found


#: (client description, fake response model, the client may read a subset). TypedDicts claim to
#: describe the whole body the caller gets, so their keys must be equal. The runtime's pydantic
#: models ignore unknown fields on purpose (exo_ref._wire: "a newer server may add some") and read
#: only what the worker needs: for them the client's fields must be a subset of the server's.
PAIRS: list[tuple[type, type[BaseModel], bool]] = [
    (w.TriggerResponse, r.TriggerGraphResponse, False),
    (w.RunSummary, r.RunListItem, False),
    (w.RunsPage, r.RunsResponse, False),
    (w.RunGraphNode, r.GraphNode, False),
    (w.RunGraphEdge, r.GraphEdge, False),
    (w.RunGraph, r.RunGraphResponse, False),
    (w.NodeDetails, r.NodeRunDetailsResponse, False),
    (w.ManualRetryResponse, r.ManualRetryResponse, False),
    (w.GraphTemplate, r.UpsertGraphTemplateResponse, False),
    (w.StoredGraphTemplate, r.GraphTemplateDocument, False),
    (w.GraphTemplateList, r.ListGraphTemplatesResponse, False),
    (w.RegisteredNode, r.RegisteredNodeDocument, False),
    (w.NodeList, r.ListNodesResponse, False),
    (w.EnqueueResponse, r.EnqueueResponse, True),
    (w.ClaimedState, r.EnqueuedState, True),
    (w.SecretsResponse, r.SecretsResponse, True),
]


#: Fields a client description leaves as plain JSON although the server's model nests models:
#: a template's parts, whose one client-side description is the model they are sent as
#: (``GraphNodeModel``, ``RetryPolicyModel``, ...; exo_ref._wire).
_TEMPLATE_PARTS = frozenset({"nodes", "retry_policy", "store_config", "triggers"})
OPAQUE: dict[type, frozenset[str]] = {
    w.GraphTemplate: _TEMPLATE_PARTS,
    w.StoredGraphTemplate: _TEMPLATE_PARTS,
}


def pair_problems(
    client: type,
    server: type[BaseModel],
    subset: bool,
    pairs: Sequence[tuple[type, type, bool]],
    opaque: Collection[str] = (),
) -> list[str]:
    """How ``client`` and ``server`` disagree: field names, and nested descriptions that are not
    each other's pair (``RunsPage.runs`` must hold the pair of ``RunsResponse.runs``' items).
    An ``opaque`` field must be plain JSON on the client's side, whatever the server nests."""
    label = f"{client.__module__}.{client.__qualname__} vs {server.__module__}.{server.__name__}"
    ours, theirs = description_keys(client), description_keys(server)
    problems = []
    if only_client := sorted(ours - theirs):
        problems.append(f"{label}: client-only fields {only_client}")
    if not subset and (only_server := sorted(theirs - ours)):
        problems.append(f"{label}: server-only fields {only_server}")
    partner = {c: s for c, s, _ in pairs}
    server_fields = _described_fields(server)
    for key, annotation in _described_fields(client).items():
        if key not in server_fields:
            continue
        nested = {partner.get(t, t) for t in _descriptions_in(annotation)}
        if key in opaque:
            if nested:
                problems.append(f"{label}: opaque field {key!r} nests {nested}")
        elif nested != _descriptions_in(server_fields[key]):
            problems.append(
                f"{label}: field {key!r} nests {nested}, server nests "
                f"{_descriptions_in(server_fields[key])}"
            )
        values, server_values = _allowed_values(annotation), _allowed_values(server_fields[key])
        if values is not None and values != server_values:
            problems.append(
                f"{label}: field {key!r} allows {sorted(values)}, server answers "
                f"{sorted(server_values or ())}"
            )
    return problems


def _allowed_values(annotation: Any) -> set[str] | None:
    """The values a ``Literal[...]`` or enum annotation allows (None for any other)."""
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {member.value for member in annotation}
    return None


@pytest.mark.parametrize(
    ("client", "server", "subset"), [pytest.param(*p, id=p[0].__name__) for p in PAIRS]
)
def test_client_and_server_describe_the_same_fields(
    client: type, server: type[BaseModel], subset: bool
) -> None:
    problems = pair_problems(client, server, subset, PAIRS, OPAQUE.get(client, ()))
    assert not problems, "\n".join(problems)


def test_every_client_read_description_is_paired() -> None:
    # A new body description in exo_ref._wire that the SDK reads must join PAIRS. Request bodies
    # (sent, not read) are checked against the request models elsewhere.
    sent = {
        "EnqueueBody",
        "ErroredBody",
        "ExecutedBody",
        "PruneBody",
        "ReEnqueueBody",
        "RegisterRequest",
        "RegisteredNodeSpec",
    }
    paired = {c.__name__ for c, _, _ in PAIRS}
    assert set(w.__all__) - sent == paired


# -- 3. the checkers can fail --------------------------------------------------------------------


class _Leaf(BaseModel):
    id: str = Field(alias="_id")
    value: int


class _Outer(BaseModel):
    name: str
    one: _Leaf
    maybe: _Leaf | None
    many: list[_Leaf]
    by_key: dict[str, _Leaf]
    free: dict[str, Any]


def _good() -> dict[str, Any]:
    leaf = {"_id": "x", "value": 1}
    return {
        "name": "n",
        "one": leaf,
        "maybe": None,
        "many": [leaf],
        "by_key": {"k": leaf},
        "free": {"anything": {"goes": 1}},
    }


def test_checker_accepts_the_exact_shape() -> None:
    assert shape_diff(_Outer, _good()) == []
    assert shape_diff(_Outer, _good() | {"maybe": {"_id": "y", "value": 2}}) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda d: d | {"surprise": 1},
            ["$: extra keys ['surprise'] (not fields of _Outer)"],
            id="extra-top",
        ),
        pytest.param(
            lambda d: {k: v for k, v in d.items() if k != "free"},
            ["$: missing keys ['free'] (fields of _Outer)"],
            id="missing-top",
        ),
        pytest.param(
            lambda d: d | {"one": {"id": "x", "value": 1}},
            [
                "$.one: extra keys ['id'] (not fields of _Leaf)",
                "$.one: missing keys ['_id'] (fields of _Leaf)",
            ],
            id="name-instead-of-alias",
        ),
        pytest.param(
            lambda d: d | {"maybe": {"_id": "x"}},
            ["$.maybe: missing keys ['value'] (fields of _Leaf)"],
            id="optional-model",
        ),
        pytest.param(
            lambda d: d | {"many": [{"_id": "x", "value": 1}, {"_id": "x", "value": 1, "z": 0}]},
            ["$.many[1]: extra keys ['z'] (not fields of _Leaf)"],
            id="list-item",
        ),
        pytest.param(
            lambda d: d | {"by_key": {"k": {"value": 1}}},
            ["$.by_key['k']: missing keys ['_id'] (fields of _Leaf)"],
            id="dict-value",
        ),
        pytest.param(
            lambda d: d | {"one": "flat"},
            ["$.one: expected an object for _Leaf, got str"],
            id="not-an-object",
        ),
    ],
)
def test_checker_reports_extra_and_missing_keys(change: Any, expected: list[str]) -> None:
    assert shape_diff(_Outer, change(_good())) == expected


def test_assert_exact_names_the_endpoint_and_the_keys() -> None:
    endpoint = _BY_NAME["enqueue_states"]
    body: dict[str, Any] = {
        "count": 1,
        "namespace": "ns",
        "status": "QUEUED",
        "states": [
            {
                "state_id": "s",
                "node_name": "A",
                "identifier": "a",
                "inputs": {},
                "created_at": "2026-01-01T00:00:00",
                "retry_count": 0,
            }
        ],
    }
    with pytest.raises(AssertionError) as info:
        assert_exact(endpoint, body)
    message = str(info.value)
    assert "POST /v0/namespace/{namespace_name}/states/enqueue (enqueue_states)" in message
    assert "$.states[0]: extra keys ['retry_count'] (not fields of EnqueuedState)" in message
    del body["namespace"], body["states"][0]["retry_count"]
    with pytest.raises(AssertionError) as info:
        assert_exact(endpoint, body)
    assert "$: missing keys ['namespace'] (fields of EnqueueResponse)" in str(info.value)
    assert "model_validate: 1 validation error for EnqueueResponse" in str(info.value)


def test_assert_declared_names_undeclared_statuses_and_wrong_bodies() -> None:
    namespaces = _BY_NAME["list_namespaces"]
    with pytest.raises(AssertionError, match=r"404: status not declared \(declared: \[200, 401"):
        assert_declared(namespaces, 404, {"detail": "Not Found"})
    with pytest.raises(AssertionError, match=r"extra keys \['success'\]"):
        assert_declared(namespaces, 401, {"detail": "Invalid API key", "success": False})
    retry = _BY_NAME["manual_retry_state"]
    missing = {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}
    assert_declared(retry, 422, {"detail": [missing]})  # ctx is optional
    no_input = {k: v for k, v in missing.items() if k != "input"}
    with pytest.raises(AssertionError, match=r"\$.detail\[0\]: missing keys \['input'\]"):
        assert_declared(retry, 422, {"detail": [no_input]})
    with pytest.raises(AssertionError, match="model_validate"):
        assert_declared(retry, 500, {"success": True, "detail": "boom"})


class _ClientItem(TypedDict):
    a: str
    b: NotRequired[int]


class _ClientPage(TypedDict):
    items: list[_ClientItem]


class _ClientJsonPage(TypedDict):
    items: list[dict[str, Any]]


class _ServerItem(BaseModel):
    a: str
    c: int


class _ServerPage(BaseModel):
    items: list[_ServerItem]


class _ClientModel(BaseModel):
    a: str


def test_pair_check_reports_fields_on_either_side() -> None:
    pairs = [(_ClientItem, _ServerItem, False), (_ClientPage, _ServerPage, False)]
    (client_only, server_only) = pair_problems(_ClientItem, _ServerItem, False, pairs)
    assert client_only.endswith("client-only fields ['b']")
    assert server_only.endswith("server-only fields ['c']")
    assert pair_problems(_ClientPage, _ServerPage, False, pairs) == []
    # Subset mode (pydantic clients that ignore extras): server-only fields are fine...
    assert pair_problems(_ClientModel, _ServerItem, True, []) == []
    # ...client-only ones are not, and a nested description must be the server's pair.
    (unpaired,) = pair_problems(_ClientPage, _ServerPage, False, [])
    assert "field 'items' nests" in unpaired
    # An opaque field may stay plain JSON; one that names a description is flagged.
    assert pair_problems(_ClientJsonPage, _ServerPage, False, [], opaque={"items"}) == []
    (unpaired,) = pair_problems(_ClientJsonPage, _ServerPage, False, [])
    assert "field 'items' nests set()" in unpaired
    (described,) = pair_problems(_ClientPage, _ServerPage, False, pairs, opaque={"items"})
    assert "opaque field 'items' nests" in described


class _Colour(str, Enum):  # noqa: UP042 - as the fake's status enums
    RED = "RED"
    BLUE = "BLUE"


class _ServerPaint(BaseModel):
    colour: _Colour


class _ClientPaint(TypedDict):
    colour: Literal["RED", "BLUE"]


class _ClientMisspelt(TypedDict):
    colour: Literal["RED", "BLEU"]


class _ServerPaintLiteral(BaseModel):
    colour: Literal["BLUE", "RED"]


def test_pair_check_reports_status_values_the_server_does_not_answer() -> None:
    assert pair_problems(_ClientPaint, _ServerPaint, False, []) == []
    assert pair_problems(_ClientPaint, _ServerPaintLiteral, False, []) == []
    assert pair_problems(_ClientMisspelt, _ServerPaintLiteral, False, [])
    (problem,) = pair_problems(_ClientMisspelt, _ServerPaint, False, [])
    assert problem.endswith("field 'colour' allows ['BLEU', 'RED'], server answers ['BLUE', 'RED']")
