"""Body limit, constant-time key check, quiet disconnects (issue 9; docs/fidelity.md)."""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any

import pytest

from fake_state_manager import FakeStateManager, ManualClock
from fake_state_manager._http import routes
from fake_state_manager._http.middleware import DEFAULT_MAX_BODY_BYTES
from tests.builders import graph_node

from ..http_support import KEY, PREFIX, START, claim, ok, registration, setup_graph, trigger

LIMIT = 1000
TOO_LARGE = (
    "Request body too large: the limit is 1000 bytes"
    " (raise it with --max-body-bytes or FakeStateManager(max_body_bytes=...))"
)


def _fake(**kwargs: Any) -> FakeStateManager:
    return FakeStateManager(api_key=KEY, clock=ManualClock(START), **kwargs)


async def test_a_declared_body_over_the_limit_is_413_before_auth_and_reading() -> None:
    sm = _fake(max_body_bytes=LIMIT)
    async with sm, sm.client(headers={"x-api-key": "wrong"}) as client:
        response = await client.put(f"{PREFIX}/nodes/", content=b" " * (LIMIT + 1))
    assert (response.status_code, response.json()) == (413, {"detail": TOO_LARGE})
    assert response.headers["x-exosphere-request-id"]
    assert [r.status for r in sm.requests] == [413]


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }


async def test_a_streamed_body_is_cut_off_once_it_passes_the_limit() -> None:
    sm = _fake(max_body_bytes=LIMIT)
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # 100-byte chunks without end, no content-length
        nonlocal received
        received += 100
        return {"type": "http.request", "body": b" " * 100, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope("PUT", f"{PREFIX}/nodes/", [(b"x-api-key", KEY.encode())])
    async with sm:
        await sm.app(scope, receive, send)
    assert received == LIMIT + 100  # read up to the first chunk past the limit, not one more
    assert sent[0]["status"] == 413
    assert b"Request body too large" in sent[1]["body"]


async def test_a_body_at_the_limit_is_served_as_usual() -> None:
    sm = _fake(max_body_bytes=LIMIT)
    body = b'{"runtime_name": "rt", "nodes": []}'
    async with sm, sm.client() as client:
        response = await client.put(f"{PREFIX}/nodes/", content=body + b" " * (LIMIT - len(body)))
    assert response.status_code == 200, response.text


async def test_the_default_limit_takes_a_graph_of_ten_thousand_nodes() -> None:
    assert DEFAULT_MAX_BODY_BYTES >= 8 * 1024 * 1024
    sm = _fake()
    async with sm, sm.client() as client:
        big = await client.put(f"{PREFIX}/nodes/", content=b" " * (DEFAULT_MAX_BODY_BYTES + 1))
    assert big.status_code == 413


def test_a_limit_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="max_body_bytes must be at least 1"):
        _fake(max_body_bytes=0)


async def test_the_key_is_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(routes.hmac, "compare_digest", spy)
    sm = _fake()
    async with sm, sm.client() as client:
        assert (await client.get("/v0/namespaces")).status_code == 200
        wrong = await client.get("/v0/namespaces", headers={"x-api-key": "wrong"})
    assert wrong.status_code == 401
    assert calls == [(KEY.encode(), KEY.encode()), (b"wrong", KEY.encode())]


@pytest.mark.parametrize(
    ("key", "header", "matches"),
    [
        ("k\xe9y", "k\xe9y".encode("latin-1"), True),  # upstream compares latin-1 text
        ("k\u20acy", "k\u20acy".encode(), True),  # beyond latin-1: its UTF-8 bytes
        ("key", b"key ", False),
        ("key", b"ke", False),
    ],
)
def test_key_bytes_follow_the_header_encoding(key: str, header: bytes, matches: bool) -> None:
    presented = header.decode("latin-1")  # what Starlette hands the route
    assert routes.key_matches(presented, routes.key_bytes(key)) is matches
    assert routes.key_matches(None, routes.key_bytes(key)) is False


async def test_a_client_gone_mid_upload_is_one_quiet_line_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sm = _fake()
    sent: list[dict[str, Any]] = []
    messages = iter(
        [
            {"type": "http.request", "body": b'{"runtime_name":', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope(
        "PUT",
        f"{PREFIX}/nodes/",
        [(b"x-api-key", KEY.encode()), (b"content-type", b"application/json")],
    )
    with caplog.at_level(logging.DEBUG):
        async with sm:
            await sm.app(scope, receive, send)
    assert sent == []  # nobody to answer
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "fake_state_manager.clients",
            "INFO",
            f"127.0.0.1:5555 went away during PUT {PREFIX}/nodes/",
        )
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_enqueue_refuses_a_batch_over_one_thousand() -> None:
    # docs/fidelity.md: upstream has no bound; one poll must not claim every ready state.
    sm = _fake()
    async with sm, sm.client() as client:
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        await trigger(client)
        response = await client.post(
            f"{PREFIX}/states/enqueue", json={"nodes": ["A"], "batch_size": 10**9}
        )
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert (error["type"], error["loc"]) == ("less_than_equal", ["body", "batch_size"])
        assert error["msg"] == "Input should be less than or equal to 1000"
        assert len(await claim(client, "A", batch_size=1000)) == 1  # the state is still there


async def test_a_wrong_key_never_reaches_the_engine_even_with_a_large_valid_body() -> None:
    sm = _fake(max_body_bytes=LIMIT)
    async with sm, sm.client(headers={"x-api-key": "nope"}) as client:
        response = await client.put(
            f"{PREFIX}/nodes/", json={"runtime_name": "rt", "nodes": []}
        )
    assert response.status_code == 401
    async with sm.client() as client:
        assert await ok(client.get("/v0/namespaces")) == {"namespaces": [], "count": 0}


async def test_the_request_log_is_one_line_per_request_without_bodies_or_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sm = _fake(log_requests=True)
    with caplog.at_level(logging.INFO, logger="fake_state_manager.requests"):
        async with sm, sm.client() as client:
            await setup_graph(
                client,
                [registration("A", secrets=("tok",))],
                [graph_node("a", "A")],
                secrets={"tok": "s3cret-value"},
            )
            missing = await client.get(f"{PREFIX}/graph/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "fake_state_manager.requests"]
    assert len(lines) == 4  # register, upsert, the GET that waits for VALID, the 404
    assert re.fullmatch(rf"PUT {PREFIX}/nodes/ 200 \d+\.\dms [0-9a-f-]{{36}}", lines[0])
    assert lines[1].startswith(f"PUT {PREFIX}/graph/g 201 ")
    assert lines[3].endswith(missing.headers["x-exosphere-request-id"])
    assert f"GET {PREFIX}/graph/nope 404 " in lines[3]
    assert not any("s3cret" in line or KEY in line for line in lines)


async def test_no_request_log_unless_asked(caplog: pytest.LogCaptureFixture) -> None:
    sm = _fake()
    with caplog.at_level(logging.DEBUG):
        async with sm, sm.client() as client:
            await client.get("/health")
    assert not [r for r in caplog.records if r.name == "fake_state_manager.requests"]
