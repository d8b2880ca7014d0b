"""The dashboard's pages and forms in-process (httpx.ASGITransport), on asyncio and trio.

Each page over a run with a fan-out, a failed state and a uniting state (support.py): the key
prompt and session, every page's content, the live fragments, the two forms with the API's
answers on refusal, unknown ids, secrets never shown and hostile names escaped.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import httpx
import pytest

from fake_state_manager import FakeStateManager, ManualClock

from .support import (
    HOSTILE_NAMESPACE,
    HOSTILE_NODE,
    KEY,
    SECRET_VALUE,
    START,
    World,
    csrf_of,
    fanout_of,
    login,
    world,
)


def state_of(w: World, identifier: str, item: str | None = None) -> dict[str, object]:
    for state in w.by_identifier(identifier):
        if item is None or state["inputs"].get("item") == item:
            return state
    raise AssertionError(f"no {identifier} state for {item}")


def page_paths(w: World) -> list[str]:
    """Every GET page and fragment of the dashboard for ``w``'s namespace and run."""
    return [
        "/dashboard/",
        w.ns_path,
        f"{w.ns_path}/graphs/fanout",
        f"{w.ns_path}/runs",
        f"{w.ns_path}/runs?status=FAILED&size=1",
        w.run_path,
        f"/dashboard/live/ns/{quote(w.namespace, safe='')}/runs",
        f"/dashboard/live/ns/{quote(w.namespace, safe='')}/runs/{w.run_id}",
    ]


# -- the key prompt and the session -------------------------------------------------------------


async def test_root_redirects_to_the_dashboard_and_the_api_is_unchanged() -> None:
    async with world(logged_in=False) as w:
        response = await w.web.get("/")
        assert (response.status_code, response.headers["location"]) == (303, "/dashboard/")
        assert (await w.web.get("/health")).json() == {"message": "OK"}
        document = (await w.web.get("/openapi.json")).json()
        assert not [path for path in document["paths"] if "dashboard" in path or path == "/"]
        response = await w.web.get("/v0/nothing-here")
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


async def test_every_page_needs_the_session() -> None:
    async with world(logged_in=False) as w:
        for path in page_paths(w):
            response = await w.web.get(path)
            if "/live/" in path:
                assert response.status_code == 401, path
                continue
            assert response.status_code == 303, path
            location = response.headers["location"]
            assert location.startswith("/dashboard/login?next="), location
        # The prompt brings the user back where they were going.
        response = await w.web.get(w.run_path)
        prompt = await w.web.get(response.headers["location"])
        assert prompt.status_code == 200
        assert f'name="next" value="{w.run_path}"' in prompt.text
        assert 'type="password"' in prompt.text
        response = await w.web.post("/dashboard/login", data={"key": KEY, "next": w.run_path})
        assert (response.status_code, response.headers["location"]) == (303, w.run_path)
        assert (await w.web.get(w.run_path)).status_code == 200


async def test_forms_need_the_session_too() -> None:
    async with world(logged_in=False) as w:
        errored = state_of(w, "work", "b")
        response = await w.web.post(
            f"{w.run_path}/states/{errored['id']}/retry", data={"fanout_id": "x", "csrf": "y"}
        )
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login")
        assert state_of(w, "work", "b")["status"] == "ERRORED"


async def test_a_wrong_key_is_refused_without_a_cookie_or_an_echo() -> None:
    async with world(logged_in=False) as w:
        response = await login(w.web, "not-the-key-<b>")
        assert response.status_code == 401
        assert "Invalid API key" in response.text
        assert "not-the-key" not in response.text
        assert "set-cookie" not in response.headers
        assert (await w.web.get("/dashboard/")).status_code == 303
        response = await w.web.post("/dashboard/login", data={"next": "/dashboard/"})
        assert response.status_code == 401


async def test_the_session_cookie_is_httponly_strict_and_never_the_key() -> None:
    async with world(logged_in=False) as w:
        response = await login(w.web)
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("exo_dashboard_session=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/dashboard"} <= attributes
        value = cookie.split(";")[0].split("=", 1)[1]
        assert KEY not in value
        assert re.fullmatch(r"[\w-]+\.[0-9a-f]{64}", value)


async def test_a_forged_or_tampered_cookie_is_refused() -> None:
    async with world(logged_in=False) as w:
        response = await login(w.web)
        value = response.cookies["exo_dashboard_session"]
        nonce, signature = value.split(".")
        for forged in (KEY, f"{nonce}.{'0' * 64}", f"x{nonce}.{signature}", "", "a.b.c"):
            w.web.cookies.clear()
            w.web.cookies.set(
                "exo_dashboard_session", forged, domain="dashboard.test", path="/dashboard"
            )
            assert (await w.web.get("/dashboard/")).status_code == 303, forged


async def test_another_apps_cookie_is_refused() -> None:
    async with world() as w:
        other = FakeStateManager(api_key=KEY, clock=ManualClock(START))
        async with httpx.AsyncClient(
            transport=other.transport, base_url="http://dashboard.test"
        ) as web:
            web.cookies = w.web.cookies
            assert (await web.get("/dashboard/")).status_code == 303


async def test_the_cookie_does_not_authorise_the_api() -> None:
    async with world() as w:
        assert w.web.cookies.get("exo_dashboard_session")
        cookie = w.web.cookies["exo_dashboard_session"]
        headers = {"cookie": f"exo_dashboard_session={cookie}"}
        response = await w.web.get("/v0/namespaces", headers=headers)
        assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key"})
        response = await w.web.post(
            f"{w.prefix}/state/{state_of(w, 'work', 'b')['id']}/manual-retry",
            json={"fanout_id": "f"},
            headers=headers,
        )
        assert response.status_code == 401


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/v0/namespaces", "/dashboard\\x"]
)
async def test_the_prompt_never_redirects_off_the_dashboard(target: str) -> None:
    async with world(logged_in=False) as w:
        response = await w.web.post("/dashboard/login", data={"key": KEY, "next": target})
        assert (response.status_code, response.headers["location"]) == (303, "/dashboard/")


async def test_logout_needs_the_csrf_token_and_ends_the_session() -> None:
    async with world() as w:
        page = await w.web.get("/dashboard/")
        old = w.web.cookies["exo_dashboard_session"]
        response = await w.web.post("/dashboard/logout", data={})
        assert response.status_code == 403
        assert "CSRF token missing or invalid" in response.text
        response = await w.web.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
        assert (response.status_code, response.headers["location"]) == (303, "/dashboard/login")
        assert "exo_dashboard_session=" in response.headers["set-cookie"]
        assert (await w.web.get("/dashboard/")).status_code == 303
        # The old cookie, replayed, is refused: the server ended the session.
        w.web.cookies.set("exo_dashboard_session", old, domain="dashboard.test", path="/dashboard")
        assert (await w.web.get("/dashboard/")).status_code == 303


# -- pages -----------------------------------------------------------------------------------


async def test_the_namespaces_page_lists_them_with_counts() -> None:
    async with world() as w:
        response = await w.web.get("/dashboard/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        row = re.search(r'<a href="/dashboard/ns/dash">dash</a>.*?</tr>', response.text, re.S)
        assert row is not None
        assert re.findall(r'class="num">(\d+)<', row.group(0)) == ["4", "1", "1"]
        response = await w.web.get("/dashboard/open", params={"namespace": "elsewhere"})
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/dashboard/ns/elsewhere",
        )
        response = await w.web.get("/dashboard/open", params={"namespace": ""})
        assert response.status_code == 400


async def test_the_namespace_page_shows_nodes_schemas_and_graphs() -> None:
    async with world() as w:
        # An INVALID template too: its errors are shown.
        bad = {
            "secrets": {},
            "nodes": [
                {"node_name": "Missing", "namespace": w.namespace, "identifier": "m", "inputs": {}}
            ],
        }
        await w.call("PUT", "/graph/broken", 201, json=bad)
        text = (await w.web.get(w.ns_path)).text
        for name in ("Start", "Split", "Work", "Collect"):
            assert f"<strong>{name}</strong>" in text
        assert "&#34;required&#34;: [" in text  # the schemas, as indented JSON
        assert 'href="/dashboard/ns/dash/graphs/fanout"' in text
        assert "VALID" in text
        assert "INVALID" in text
        assert "Node Missing does not exist" in text or "Missing" in text
        assert "<code>token</code>" in text
        graph = (await w.web.get(f"{w.ns_path}/graphs/broken")).text
        assert 'id="validation-errors"' in graph
        assert "INVALID" in graph


async def test_the_graph_page_shows_nodes_triggers_and_secret_names() -> None:
    async with world() as w:
        body = await w.call("GET", "/graph/fanout")
        body = {k: body[k] for k in ("nodes", "retry_policy", "store_config")}
        body["secrets"] = {"token": SECRET_VALUE}
        body["triggers"] = [{"type": "CRON", "value": {"expression": "0 3 * * *"}}]
        await w.call("PUT", "/graph/fanout", 201, json=body)
        text = (await w.web.get(f"{w.ns_path}/graphs/fanout")).text
        assert 'id="validation-status">VALID<' in text
        for identifier in ("start", "split", "work", "collect"):
            assert f'<td class="mono">{identifier}</td>' in text
        assert "<code>start</code> (ALL_SUCCESS)" in text  # the unites of collect
        assert "<code>expression=0 3 * * *</code>" in text
        assert '<ul class="plain" id="secret-names"><li><code>token</code></li></ul>' in text
        assert SECRET_VALUE not in text


async def test_the_runs_table_pages_and_filters_by_status() -> None:
    async with world() as w:
        second = (await w.call("POST", "/graph/fanout/trigger", json={}))["run_id"]  # PENDING
        text = (await w.web.get(f"{w.ns_path}/runs")).text
        assert text.index(second) < text.index(w.run_id)  # newest first
        assert 'data-live-url="/dashboard/live/ns/dash/runs"' in text
        assert ">FAILED<" in text
        assert ">PENDING<" in text
        failed = (await w.web.get(f"{w.ns_path}/runs", params={"status": "FAILED"})).text
        assert w.run_id in failed
        assert second not in failed
        assert 'data-live-url="/dashboard/live/ns/dash/runs?status=FAILED"' in failed
        first_page = (await w.web.get(f"{w.ns_path}/runs", params={"size": 1})).text
        assert second in first_page
        assert w.run_id not in first_page
        assert 'href="/dashboard/ns/dash/runs?page=2&amp;size=1" rel="next"' in first_page
        page_two = (await w.web.get(f"{w.ns_path}/runs", params={"size": 1, "page": 2})).text
        assert w.run_id in page_two
        assert second not in page_two
        assert 'rel="prev"' in page_two
        assert "page 2 of 2" in page_two
        # The counts of the runs list (§7.1): 3 success + ... for the failed run.
        row = re.search(rf'<tr data-run-id="{w.run_id}">.*?</tr>', text, re.S)
        assert row is not None
        summary = w.sm.run_summary(w.run_id)
        counts = re.findall(r'class="num">(\d+)<', row.group(0))
        assert counts == [
            str(summary[k])
            for k in (
                "success_count",
                "pending_count",
                "errored_count",
                "retried_count",
                "total_count",
            )
        ]


async def test_the_live_runs_fragment_follows_the_store() -> None:
    async with world() as w:
        live = "/dashboard/live/ns/dash/runs"
        before = (await w.web.get(live)).text
        assert "<html" not in before
        assert 'data-live-final="0"' in before
        new = (await w.call("POST", "/graph/fanout/trigger", json={}))["run_id"]
        after = (await w.web.get(live)).text
        assert new not in before
        assert new in after


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ({"page": "0"}, 400, "page must be &gt;= 1, got 0"),
        ({"page": "x"}, 422, "query.page: Input should be a valid integer"),
        ({"size": "1.5"}, 422, "query.size: Input should be a valid integer"),
        (
            {"status": "BOGUS"},
            422,
            "query.status: Input should be &#39;PENDING&#39;, &#39;SUCCESS&#39; or &#39;FAIL",
        ),
    ],
)
async def test_bad_runs_queries_show_the_apis_detail(
    query: dict[str, str], status: int, detail: str
) -> None:
    async with world() as w:
        response = await w.web.get(f"{w.ns_path}/runs", params=query)
        assert response.status_code == status
        assert detail in response.text
        live = await w.web.get("/dashboard/live/ns/dash/runs", params=query)
        assert live.status_code == status


async def test_the_run_page_draws_the_dag_with_fanout_unites_and_status_colours() -> None:
    async with world() as w:
        text = (await w.web.get(w.run_path)).text
        svg = text[text.index("<svg") : text.index("</svg>")]
        states = w.sm.states(w.run_id)
        assert len(states) == 7  # start, 3 split items, 3 work items
        assert svg.count('<a href="#state-') == 7
        assert svg.count('data-identifier="split"') == 3  # the fan-out: 3 states of split
        assert "split · 1/3" in svg
        assert "split · 3/3" in svg
        assert svg.count('class="node st-ERRORED"') == 1
        assert svg.count('class="node st-SUCCESS"') == 6
        assert svg.count('class="edge edge-parent"') == 6
        assert 'id="run-status">FAILED<' in text
        assert 'data-live-final="1"' in text  # a finished run is not polled
        errored = state_of(w, "work", "b")
        assert "boom &lt;b&gt;bold&lt;/b&gt; for item b" in text  # the error, escaped
        assert f'action="{w.run_path}/states/{errored["id"]}/retry"' in text
        assert text.count('class="retry-form"') == 1  # only the ERRORED state
        # Inputs and outputs of each state, and its parents as links.
        assert "&#34;item&#34;: &#34;b&#34;" in text
        start = state_of(w, "start")
        assert f'<a href="#state-{start["id"]}">start</a>' in text

        # Retry the failed state, then let it succeed: the unite runs; the run succeeds.
        response = await w.web.post(
            f"{w.run_path}/states/{errored['id']}/retry",
            data={"csrf": csrf_of(text), "fanout_id": fanout_of(text, str(errored["id"]))},
        )
        assert response.status_code == 303
        retry = [s for s in w.by_identifier("work") if s["manual_retry_fanout_id"]]
        assert len(retry) == 1
        assert retry[0]["status"] == "CREATED"
        assert response.headers["location"] == f"{w.run_path}?done=retried#state-{retry[0]['id']}"
        assert state_of(w, "work", "b")["status"] == "RETRY_CREATED"
        pending = (await w.web.get(w.run_path + "?done=retried")).text
        assert 'id="notice">Retry created.<' in pending
        assert 'id="run-status">PENDING<' in pending
        assert 'data-live-final="0"' in pending
        assert f'retry of <a href="#state-{errored["id"]}" class="prev">' in pending
        assert f'retried as <a href="#state-{retry[0]["id"]}" class="next">' in pending
        assert 'class="edge edge-retry"' in pending

        await w.finish()
        done = (await w.web.get(f"/dashboard/live/ns/dash/runs/{w.run_id}")).text
        assert 'id="run-status">SUCCESS<' in done
        svg = done[done.index("<svg") : done.index("</svg>")]
        [collect] = w.by_identifier("collect")
        assert collect["does_unites"] is True
        # collect's unites edges: from the three finished work states (not the retried one).
        unites = re.findall(
            rf'class="edge edge-unites"[^>]*data-source="(\w+)" data-target="{collect["id"]}"', svg
        )
        finished_work = {s["id"] for s in w.by_identifier("work") if s["status"] == "SUCCESS"}
        assert set(unites) == finished_work
        assert len(unites) == 3
        assert f'data-source="{start["id"]}" data-target="{collect["id"]}"' in svg  # parent
        assert svg.count('class="node st-RETRY_CREATED"') == 1


async def test_retry_refusals_show_the_apis_detail() -> None:
    async with world() as w:
        text = (await w.web.get(w.run_path)).text
        csrf = csrf_of(text)
        errored = state_of(w, "work", "b")
        done = state_of(w, "work", "a")
        url = f"{w.run_path}/states/{errored['id']}/retry"
        # No or a wrong CSRF token: 403, nothing changed.
        for data in ({"fanout_id": "f"}, {"fanout_id": "f", "csrf": "0" * 64}):
            response = await w.web.post(url, data=data)
            assert response.status_code == 403
        assert state_of(w, "work", "b")["status"] == "ERRORED"
        # Validation like the API's body (ManualRetryRequest): fanout_id is required.
        response = await w.web.post(url, data={"csrf": csrf})
        assert response.status_code == 422
        assert "body.fanout_id: Field required" in response.text
        # A state that is not errored.
        response = await w.web.post(
            f"{w.run_path}/states/{done['id']}/retry", data={"csrf": csrf, "fanout_id": "f"}
        )
        assert response.status_code == 400
        assert "State is not errored: it is SUCCESS" in response.text
        assert f'href="{w.run_path}">Back to the run' in response.text
        # Unknown (or malformed, or another run's) state: the API's 404 detail.
        for state_id in ("0" * 24, "nothex", str(errored["id"])):
            path = f"{w.ns_path}/runs/{'f' * 32 if state_id == errored['id'] else w.run_id}"
            response = await w.web.post(
                f"{path}/states/{state_id}/retry", data={"csrf": csrf, "fanout_id": "f"}
            )
            assert response.status_code == 404
            assert "State not found" in response.text
        # The same form twice: the second is refused, one retry only.
        form = {"csrf": csrf, "fanout_id": fanout_of(text, str(errored["id"]))}
        assert (await w.web.post(url, data=form)).status_code == 303
        again = await w.web.post(url, data=form)
        assert again.status_code == 400
        assert "it is RETRY_CREATED" in again.text
        assert len([s for s in w.by_identifier("work") if s["manual_retry_fanout_id"]]) == 1


async def test_a_duplicate_manual_retry_shows_the_apis_409() -> None:
    async with world() as w:
        text = (await w.web.get(w.run_path)).text
        errored = state_of(w, "work", "b")
        # A hand-made form whose fanout_id is the errored state's own: the copy would repeat
        # its unique key (§3.1), and the API's 409 detail is shown; nothing is created.
        response = await w.web.post(
            f"{w.run_path}/states/{errored['id']}/retry",
            data={"csrf": csrf_of(text), "fanout_id": errored["fanout_id"]},
        )
        assert response.status_code == 409
        assert "Duplicate retry state detected" in response.text
        assert state_of(w, "work", "b")["status"] == "ERRORED"
        assert len(w.sm.states(w.run_id)) == 7


async def test_reenqueue_of_a_stuck_queued_state() -> None:
    async with world() as w:
        run = await w.call("POST", "/graph/fanout/trigger", json={})
        w.run_id = run["run_id"]
        [claimed] = await w.claim("Start")  # claimed by a runtime that then died
        text = (await w.web.get(w.run_path)).text
        assert 'class="node st-QUEUED"' in text
        assert text.count('class="reenqueue-form"') == 1
        csrf = csrf_of(text)
        url = f"{w.run_path}/states/{claimed['state_id']}/re-enqueue"
        for value, status, detail in (
            ("0", 422, "body.enqueue_after: Input should be greater than 0"),
            ("-5", 422, "body.enqueue_after: Input should be greater than 0"),
            ("soon", 422, "body.enqueue_after: Input should be a valid integer"),
            (str(2**63), 400, "enqueue_after is too large"),
        ):
            response = await w.web.post(url, data={"csrf": csrf, "enqueue_after": value})
            assert response.status_code == status, value
            assert detail in response.text, response.text
        response = await w.web.post(url, data={"csrf": csrf})
        assert response.status_code == 422
        assert "body.enqueue_after: Field required" in response.text
        assert (await w.web.post(url, data={"enqueue_after": "1"})).status_code == 403
        assert w.by_identifier("start")[0]["status"] == "QUEUED"
        response = await w.web.post(url, data={"csrf": csrf, "enqueue_after": "1"})
        assert response.status_code == 303
        assert response.headers["location"].endswith(
            f"?done=re-enqueued#state-{claimed['state_id']}"
        )
        assert w.by_identifier("start")[0]["status"] == "CREATED"
        # Another runtime claims it again; re-enqueueing a state that is not QUEUED is refused.
        w.sm.clock.advance(0.001)  # type: ignore[attr-defined]
        assert [s["state_id"] for s in await w.claim("Start")] == [claimed["state_id"]]
        await w.call(
            "POST", f"/state/{claimed['state_id']}/executed", json={"outputs": [{"items": "x"}]}
        )
        response = await w.web.post(url, data={"csrf": csrf, "enqueue_after": "1"})
        assert response.status_code == 400
        assert "State is not queued: it is SUCCESS" in response.text


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/dashboard/ns/dash/runs/no-such-run", "Run no-such-run not found in namespace dash"),
        ("/dashboard/ns/dash/graphs/nope", "Graph template nope not found in namespace dash"),
        ("/dashboard/nothing/here", "Not Found"),
        ("/dashboard/static/nope.js", "Not Found"),
        ("/dashboard/live/ns/dash/runs/no-such-run", "Run no-such-run not found"),
    ],
)
async def test_unknown_ids_are_a_404_page(path: str, detail: str) -> None:
    async with world() as w:
        response = await w.web.get(path)
        assert response.status_code == 404
        assert detail in response.text


async def test_a_run_of_another_namespace_is_not_found_here() -> None:
    async with world() as w:
        response = await w.web.get(f"/dashboard/ns/other/runs/{w.run_id}")
        assert response.status_code == 404
        assert "not found in namespace other" in response.text


async def test_an_unknown_namespace_is_an_empty_page() -> None:
    async with world() as w:
        response = await w.web.get("/dashboard/ns/empty")
        assert response.status_code == 200
        assert "No node registered in this namespace" in response.text


async def test_forms_refuse_other_encodings() -> None:
    async with world() as w:
        errored = state_of(w, "work", "b")
        response = await w.web.post(
            f"{w.run_path}/states/{errored['id']}/retry", json={"fanout_id": "f"}
        )
        assert response.status_code == 415
        response = await w.web.post(
            f"{w.run_path}/states/{errored['id']}/retry",
            content=b"csrf=\xff\xfe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400


async def test_the_static_files_are_served() -> None:
    async with world(logged_in=False) as w:
        css = await w.web.get("/dashboard/static/dashboard.css")
        js = await w.web.get("/dashboard/static/dashboard.js")
        assert css.status_code == js.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert js.headers["content-type"].startswith("text/javascript")
        assert "visibilitychange" in js.text
        assert "data-live-url" in js.text


# -- secrets and escaping ------------------------------------------------------------------------


async def test_no_page_ever_shows_a_secret_value_or_the_key() -> None:
    async with world() as w:
        pages = [(await w.web.get(path)).text for path in page_paths(w)]
        pages.append((await w.web.get("/dashboard/login")).text)
        pages.append((await w.web.get(f"{w.ns_path}/graphs/nope")).text)
        for text in pages:
            assert SECRET_VALUE not in text
            assert KEY not in text
        # The encrypted values of the graphs list (§2.5) are not shown either.
        stored = await w.call("GET", "/graphs/")
        opaque = stored["templates"][0]["secrets"]["token"]
        assert all(opaque not in text for text in pages)


async def test_hostile_names_are_escaped_everywhere() -> None:
    async with world(HOSTILE_NAMESPACE) as w:
        await w.register_and_upsert(worker=HOSTILE_NODE)
        await w.run_until_failed(worker=HOSTILE_NODE)
        pages = {path: await w.web.get(path) for path in page_paths(w)}
        for path, response in pages.items():
            assert response.status_code == 200, (path, response.text)
            text = response.text
            assert "<script>alert" not in text, path
            assert "<img src=x" not in text, path
            assert 'onerror=alert(1)>"' not in text, path
        home = pages["/dashboard/"].text
        assert "ns&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;" in home
        assert f'href="/dashboard/ns/{quote(HOSTILE_NAMESPACE, safe="")}"' in home
        assert "&lt;script&gt;alert(&#39;node&#39;)&lt;/script&gt;" in pages[w.ns_path].text
        assert "&lt;script&gt;alert(&#39;node" in pages[w.run_path].text  # in the SVG, too
        # The forms of a hostile namespace work as well.
        text = pages[w.run_path].text
        errored = next(s for s in w.by_identifier("work") if s["status"] == "ERRORED")
        response = await w.web.post(
            f"{w.run_path}/states/{errored['id']}/retry",
            data={"csrf": csrf_of(text), "fanout_id": fanout_of(text, str(errored["id"]))},
        )
        assert response.status_code == 303
        assert response.headers["location"].startswith(w.run_path)


async def test_the_dashboard_works_on_a_database_too(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    sm = FakeStateManager(
        api_key=KEY, clock=ManualClock(START, auto_advance=True), db=tmp_path / "f.db"
    )
    try:
        async with sm, httpx.AsyncClient(transport=sm.transport, base_url="http://d.test") as web:
            await login(web)
            assert (await web.get("/dashboard/")).status_code == 200
            assert (await web.get("/dashboard/ns/x/runs")).status_code == 200
    finally:
        sm.close()


async def test_lone_surrogates_the_api_accepted_are_shown_as_escapes() -> None:
    # JSON can carry a lone surrogate and the API stores it; UTF-8 cannot, so no page may fail.
    async with world() as w:
        body = {"runtime_name": "odd", "nodes": [{
            "name": "Odd\ud800", "inputs_schema": {}, "outputs_schema": {}, "secrets": [],
        }]}
        await w.call("PUT", "/nodes/", content=json.dumps(body),  # ensure_ascii: "\\ud800"
                     headers={"content-type": "application/json"})
        for path in page_paths(w):
            response = await w.web.get(path)
            assert response.status_code == 200, (path, response.text)
        assert "Odd\\ud800" in (await w.web.get(w.ns_path)).text


async def test_no_other_origin_may_read_a_page_even_with_the_session() -> None:
    # A browser sends the SameSite=Strict cookie to every port of the host: CORS on the
    # dashboard would let a page on localhost:3000 read the CSRF token and act as the user.
    async with world() as w:
        origin = {"origin": "http://localhost:3000"}
        page = await w.web.get(w.run_path, headers=origin)
        assert page.status_code == 200
        assert csrf_of(page.text)
        assert "access-control-allow-origin" not in page.headers
        assert "access-control-allow-credentials" not in page.headers
        preflight = await w.web.options(
            f"{w.run_path}/states/x/retry",
            headers={**origin, "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        api = await w.api.get(f"{w.prefix}/graphs/", headers=origin)  # the API keeps §1.4
        assert api.headers["access-control-allow-origin"] == "http://localhost:3000"
