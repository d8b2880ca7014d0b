"""Bad input never produces a 5xx or breaks the store (issue "Bad input"; contract §1.3).

Hypothesis sends sequences of requests to every endpoint: random JSON bodies, valid bodies with
one field replaced by random JSON (wrong types, huge or negative numbers, NaN), malformed and
unknown ids, other namespaces and graphs, odd content types, and arbitrary bytes in the key,
request-id and content-type headers. Every string (keys, values, secrets, path segments) is
drawn from the whole Unicode range, lone surrogates included: JSON escapes can carry them.
Every answer must be < 500, an error must be a JSON ``{"detail": ...}`` that left the store
exactly as it was, and the engine's invariant checker must still pass afterwards.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_state_manager import FakeStateManager, ManualClock
from fake_state_manager._http.routes import ENDPOINTS
from tests.builders import graph_node

from .http_support import KEY, START, claim, registration, setup_graph, trigger

VALID_BODIES: dict[str, dict[str, Any]] = {
    "register_nodes": {"runtime_name": "rt", "nodes": [registration("A", ("x",), ("y",))]},
    "upsert_graph_template": {"secrets": {"s": "v"}, "nodes": [graph_node("a", "A", {"x": "v"})]},
    "trigger_graph": {"inputs": {"x": "1"}, "store": {}, "start_delay": 0},
    "enqueue_states": {"nodes": ["A"], "batch_size": 2},
    "executed_state": {"outputs": [{"y": "1"}, {"y": "2"}]},
    "errored_state": {"error": "boom"},
    "prune_state": {"data": {}},
    "re_enqueue_after_state": {"enqueue_after": 5},
    "manual_retry_state": {"fanout_id": "f"},
}

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
# Every code point, surrogates (category Cs, excluded by default) included.
any_char = st.characters(exclude_categories=())
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(any_char, max_size=20))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(any_char, max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
texts = st.text(any_char, min_size=1, max_size=30)
# Header values are bytes on the wire; anything but the line breaks and NUL HTTP itself forbids.
header_values = st.binary(max_size=40).filter(lambda b: not set(b) & {0, 10, 13})


def _segment(value: str) -> str:
    # A lone surrogate has no UTF-8 form; percent-encode what surrogatepass makes of it.
    return quote(value.encode("utf-8", "surrogatepass"), safe="")
ids = st.one_of(
    st.sampled_from(["known", "0" * 24, "f" * 24, "ZZ" * 12, "not-an-id", "1" * 25]),
    st.from_regex(r"[0-9a-f]{24}", fullmatch=True),
    texts,
)


def snapshot(sm: FakeStateManager) -> str:
    """Everything a client could observe of the store, as one comparable string."""
    store = sm.engine.store
    with sm.engine.lock:
        return json.dumps(
            {
                "states": [state.to_dict() for state in store.states.values()],
                "runs": sorted(store.runs),
                "store": store.store_values,
                "graphs": {repr(key): repr(graph) for key, graph in store.graphs.items()},
                "nodes": store.nodes,
                "cron": sorted(repr(doc) for doc in store.cron.values()),
            },
            sort_keys=True,
            default=repr,
        )


@st.composite
def bodies(draw: st.DrawFn, name: str) -> Any:
    valid = VALID_BODIES.get(name, {})
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(json_values)
    if choice == 1 or not valid:
        return valid
    body = json.loads(json.dumps(valid))
    key = draw(st.sampled_from(sorted(body)))
    if choice == 2:
        body[key] = draw(json_values)
    else:
        del body[key]
    return body


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    endpoint = draw(st.sampled_from(ENDPOINTS))
    params: dict[str, str] = {
        "namespace_name": draw(st.sampled_from(["ns", "ns", "other"]) | texts),
        "graph_name": draw(st.sampled_from(["g", "g", "missing"]) | texts),
        "state_id": draw(ids),
        "node_id": draw(ids),
        "run_id": draw(st.sampled_from(["known", "unknown"]) | texts),
        "page": draw(st.sampled_from(["1", "0", "-1", "x", str(2**70)]) | st.integers().map(str)),
        "size": draw(st.sampled_from(["10", "0", "-3", "1.5", str(2**70)])),
    }
    path = endpoint.path.format(**{k: _segment(v) for k, v in params.items()})
    kwargs: dict[str, Any] = {}
    if endpoint.body is not None:
        mode = draw(st.integers(0, 9))
        if mode == 0:
            kwargs["content"] = draw(st.binary(max_size=40))
            kwargs["headers"] = {"content-type": "application/json"}
        elif mode == 2 and VALID_BODIES.get(endpoint.name):
            # Deep nesting (recursion in parsers, validators and copies): one field of a valid
            # body becomes a list nested 50 to 1200 levels deep.
            valid = dict(VALID_BODIES[endpoint.name])
            depth = draw(st.integers(50, 1200))
            valid[draw(st.sampled_from(sorted(valid)))] = "DEEP"
            text = json.dumps(valid).replace('"DEEP"', "[" * depth + "]" * depth)
            kwargs["content"] = text.encode()
            kwargs["headers"] = {"content-type": "application/json"}
        elif mode == 1:
            kwargs["content"] = b"{}"
            kwargs["headers"] = {
                "content-type": draw(
                    st.sampled_from(
                        [
                            "text/plain",
                            "application/x-www-form-urlencoded",
                            "application/merge+json",
                        ]
                    )
                )
            }
        else:
            body = draw(bodies(endpoint.name))
            kwargs["content"] = json.dumps(body).encode()
            kwargs["headers"] = {"content-type": "application/json"}
    header_mode = draw(st.integers(0, 9))
    if header_mode == 0:
        kwargs.setdefault("headers", {})["x-api-key"] = "wrong"
    elif header_mode == 1:
        name = draw(st.sampled_from(["x-api-key", "x-exosphere-request-id", "content-type"]))
        kwargs.setdefault("headers", {})[name] = draw(header_values)
    return endpoint.method, path, kwargs


# One backend: this is about input handling, which does not depend on the event loop (every
# route test runs on both), and the suite must stay fast.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(requests(), min_size=1, max_size=6))
async def test_no_request_sequence_gives_a_5xx_or_breaks_the_store(
    batch: list[tuple[str, str, dict[str, Any]]],
) -> None:
    sm = FakeStateManager(api_key=KEY, clock=ManualClock(START), seed=0)
    async with sm, sm.client() as client:
        await setup_graph(
            client, [registration("A", ("x",), ("y",))], [graph_node("a", "A", {"x": "v"})]
        )
        run_id = await trigger(client)
        await trigger(client)
        (queued,) = await claim(client, "A", batch_size=1)
        for method, path, kwargs in batch:
            path = path.replace("/known/", f"/{run_id}/").replace(
                "/known", f"/{queued['state_id']}"
            )
            before = snapshot(sm)
            response = await client.request(method, path, **kwargs)
            assert response.status_code < 500, (method, path, kwargs, response.text)
            body = response.json() if response.content else None
            if response.status_code >= 400:
                assert isinstance(body, dict)
                assert "detail" in body, body
                assert snapshot(sm) == before, "a rejected request changed the store"
        sm.engine.check_invariants()
