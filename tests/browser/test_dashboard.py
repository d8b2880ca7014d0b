"""The dashboard clicked through in headless chromium, over a run a real runtime executes.

The fake is served by uvicorn (``serve_in_thread``) with the system clock; an exo_ref
``Runtime`` serves four nodes in a thread (an anyio blocking portal). The graph::

    start -> split (fan-out: a, b, c) -> work (x3) -> collect (unites start)

``work`` fails on the first attempt at an item whose name starts with ``x`` (a run triggered
with ``items="a,xb,c"``), and the graph allows no automatic retry, so the run ends FAILED with
one ERRORED state until the test retries it from the page; the retry succeeds, ``collect`` runs
and the run page shows SUCCESS by itself (live refresh).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from pydantic import BaseModel

from exo_ref import BaseNode, Runtime, SystemClock
from fake_state_manager import FakeStateManager

from .conftest import Shots

KEY = "browser-test-key"
NAMESPACE = "browser-demo"
GRAPH = "fanout-demo"
SECRET_VALUE = "browser-s3cret-never-on-a-page"

_attempts: dict[str, int] = {}
_attempts_lock = threading.Lock()


def _attempt(item: str) -> int:
    with _attempts_lock:
        _attempts[item] = _attempts.get(item, 0) + 1
        return _attempts[item]


class Start(BaseNode):
    class Inputs(BaseModel):
        items: str

    class Outputs(BaseModel):
        items: str

    async def execute(self) -> Outputs:
        return self.Outputs(items=self.inputs.items)


class Split(BaseNode):
    class Inputs(BaseModel):
        items: str

    class Outputs(BaseModel):
        item: str

    async def execute(self) -> list[Outputs]:
        return [self.Outputs(item=item) for item in self.inputs.items.split(",")]


class Work(BaseNode):
    class Inputs(BaseModel):
        item: str

    class Outputs(BaseModel):
        value: str

    class Secrets(BaseModel):
        token: str

    async def execute(self) -> Outputs:
        assert self.secrets.token == SECRET_VALUE
        if self.inputs.item.startswith("x") and _attempt(self.inputs.item) == 1:
            raise RuntimeError(f"item {self.inputs.item} failed: a first attempt always does")
        return self.Outputs(value=self.inputs.item.upper())


class Collect(BaseNode):
    class Inputs(BaseModel):
        items: str

    class Outputs(BaseModel):
        done: str

    async def execute(self) -> Outputs:
        return self.Outputs(done=f"collected {self.inputs.items}")


def _node(identifier: str, name: str, inputs: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "node_name": name,
        "namespace": NAMESPACE,
        "identifier": identifier,
        "inputs": inputs,
        "next_nodes": extra.get("next_nodes"),
        "unites": extra.get("unites"),
    }


GRAPH_BODY = {
    "secrets": {"token": SECRET_VALUE},
    "retry_policy": {"max_retries": 0},
    "nodes": [
        _node("start", "Start", {"items": "a,b,c"}, next_nodes=["split"]),
        _node("split", "Split", {"items": "${{ start.outputs.items }}"}, next_nodes=["work"]),
        _node("work", "Work", {"item": "${{ split.outputs.item }}"}, next_nodes=["collect"]),
        _node(
            "collect",
            "Collect",
            {"items": "${{ start.outputs.items }}"},
            unites={"identifier": "start"},
        ),
    ],
}


@dataclass
class Served:
    uri: str
    api: httpx.Client
    sm: FakeStateManager

    def trigger(self, items: str = "a,b,c") -> str:
        """Start a run over ``items``; an item named ``x...`` fails its first attempt."""
        body = {"inputs": {"items": items}}
        response = self.api.post(f"/v0/namespace/{NAMESPACE}/graph/{GRAPH}/trigger", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["run_id"])


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The served fake, a runtime serving the graph's nodes, and the graph upserted (VALID)."""
    sm = FakeStateManager(api_key=KEY, clock=SystemClock(), record_requests=False)
    with (
        sm.serve_in_thread() as uri,
        httpx.Client(base_url=uri, headers={"x-api-key": KEY}) as api,
        anyio.from_thread.start_blocking_portal() as portal,
    ):
        runtime = Runtime(
            namespace=NAMESPACE,
            name="browser-runtime",
            nodes=[Start, Split, Work, Collect],
            state_manager_uri=uri,
            key=KEY,
            poll_interval=0.05,
        )
        done, _ = portal.start_task(runtime.run)  # returns once the nodes are registered
        try:
            response = api.put(f"/v0/namespace/{NAMESPACE}/graph/{GRAPH}", json=GRAPH_BODY)
            assert response.status_code == 201, response.text
            graph = api.get(f"/v0/namespace/{NAMESPACE}/graph/{GRAPH}").json()
            assert graph["validation_status"] == "VALID", graph["validation_errors"]
            yield Served(uri, api, sm)
        finally:
            runtime.stop()
            done.result()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: Any) -> None:
        # A page answered 401/400/404 on purpose is logged as "Failed to load resource";
        # anything else (a script error, a CSP violation: "Refused to ...") is a problem.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", console)
    yield page
    context.close()
    assert problems == []


def log_in(page: Page, served: Served) -> None:
    page.goto(served.uri + "/")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page).to_have_url(served.uri + "/dashboard/")


def test_click_through_a_run_and_retry_its_failed_state(
    page: Page, served: Served, shots: Shots
) -> None:
    # The key prompt: a wrong key is refused with the API's detail, the right one opens it.
    run_id = served.trigger("a,xb,c")
    page.goto(served.uri + "/")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next=%2Fdashboard%2F$"))
    expect(page.get_by_role("heading", name="Enter the API key")).to_be_visible()
    page.get_by_label("API key").fill("not-the-key")
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid API key")
    shots.take(page, "login-refused")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page).to_have_url(served.uri + "/dashboard/")

    # The namespaces, then the namespace: nodes with their schemas and the graph template.
    expect(page.locator("#namespaces")).to_contain_text(NAMESPACE)
    shots.take(page, "namespaces")
    page.get_by_role("link", name=NAMESPACE, exact=True).first.click()
    expect(page.get_by_role("heading", name=f"Namespace {NAMESPACE}")).to_be_visible()
    expect(page.locator("#nodes details")).to_have_count(4)
    page.locator("#nodes summary", has_text="Work").click()
    expect(page.locator("#nodes details[open]")).to_contain_text('"item"')
    expect(page.locator("#graphs")).to_contain_text("VALID")
    shots.take(page, "namespace")
    page.get_by_role("link", name=GRAPH).click()
    expect(page.locator("#validation-status")).to_have_text("VALID")
    expect(page.locator("#secret-names")).to_have_text("token")
    expect(page.locator("#template-nodes tbody tr")).to_have_count(4)
    shots.take(page, "graph")
    assert SECRET_VALUE not in page.content()

    # The runs table: the run fails by itself (live), then a new run appears without a reload.
    page.get_by_role("link", name="Runs", exact=True).click()
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row.locator(".badge")).to_have_text("FAILED")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    second = served.trigger()
    expect(page.locator(f'tr[data-run-id="{second}"]')).to_be_visible()
    expect(page.locator(f'tr[data-run-id="{second}"] .badge')).to_have_text("SUCCESS")
    expect(page.locator("[data-live-stamp]")).to_contain_text("updated")
    shots.take(page, "runs")
    # Hidden tab: polling pauses, and resumes when the tab is visible again.
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    expect(page.locator("[data-live-stamp]")).to_have_text("paused while the tab is hidden")
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    expect(page.locator("[data-live-stamp]")).to_contain_text("updated")
    # The status filter.
    page.get_by_label("Status").select_option("FAILED")
    expect(page).to_have_url(re.compile(r"status=FAILED"))
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(row).to_be_visible()

    # The failed run: its DAG (fan-out of split, one ERRORED work state) and its states.
    row.get_by_role("link").click()
    expect(page.locator("#run-status")).to_have_text("FAILED")
    dag = page.locator("#run-dag")
    expect(dag.locator("a.node")).to_have_count(7)
    expect(dag.locator('a.node[data-identifier="split"]')).to_have_count(3)
    expect(dag.locator("a.node.st-ERRORED")).to_have_count(1)
    shots.take(page, "run-failed")
    dag.locator("a.node.st-ERRORED").click()
    errored = page.locator("details.state.st-ERRORED")
    expect(errored).to_have_attribute("open", "")
    expect(errored.locator(".error-text")).to_have_text(
        "item xb failed: a first attempt always does"
    )
    expect(errored.locator(".inputs")).to_contain_text('"item": "xb"')

    # Retry it from the page: the run goes PENDING, the retry succeeds, collect runs, and the
    # page shows the run finished by itself.
    errored.get_by_role("button", name="Retry this state").click()
    expect(page.locator("#notice")).to_have_text("Retry created.")
    expect(page.locator("#run-status")).to_have_text("SUCCESS")
    expect(dag.locator("a.node")).to_have_count(9)
    expect(dag.locator("a.node.st-RETRY_CREATED")).to_have_count(1)
    expect(dag.locator('a.node[data-identifier="collect"]')).to_have_class(re.compile("st-SUCCESS"))
    expect(dag.locator("path.edge-unites")).to_have_count(3)
    expect(dag.locator("path.edge-retry")).to_have_count(1)
    expect(page.locator("[data-live-stamp]")).to_have_text("finished: live updates stopped")
    retried = page.locator("details.state.st-RETRY_CREATED")
    retried.locator("summary").click()
    expect(retried.locator(".retry-chain .next")).to_be_visible()
    run_shot = shots.take(page, "run-retried-success")
    assert served.sm.run_summary(run_id)["status"] == "SUCCESS"
    assert SECRET_VALUE not in page.content()
    if target := os.environ.get("EXO_DASHBOARD_SCREENSHOT"):
        page.evaluate("() => window.scrollTo(0, 0)")
        page.mouse.move(0, 0)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=target)
        print(f"run page screenshot copied to {target} (full page: {run_shot})")

    # Log out: the pages lead to the key prompt again.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(served.uri + "/dashboard/login")
    page.goto(served.uri + "/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    shots.take(page, "logged-out")


def test_a_stale_retry_form_shows_the_apis_detail(
    browser: Browser, page: Page, served: Served, shots: Shots
) -> None:
    log_in(page, served)
    run_id = served.trigger("d,xe")
    run_page = f"{served.uri}/dashboard/ns/{NAMESPACE}/runs/{run_id}"
    page.goto(run_page)
    expect(page.locator("#run-status")).to_have_text("FAILED")  # live, then polling stops
    expect(page.locator("[data-live-stamp]")).to_have_text("finished: live updates stopped")
    # Another tab of the same session retries the state first...
    other = page.context.new_page()
    other.goto(run_page)
    other.get_by_role("button", name="Retry this state").click()
    expect(other.locator("#run-status")).to_have_text("SUCCESS")
    other.close()
    # ... so this tab's form is stale: the refusal's detail is shown, nothing else happens.
    page.get_by_role("button", name="Retry this state").click()
    expect(page.locator("#detail")).to_contain_text("State is not errored: it is RETRY_CREATED")
    shots.take(page, "refused-retry")
    page.get_by_role("link", name="Back to the run").click()
    expect(page.locator("#run-status")).to_have_text("SUCCESS")
    expect(page.locator("form.retry-form")).to_have_count(0)
    # An unknown run: a 404 page.
    response = page.goto(f"{served.uri}/dashboard/ns/{NAMESPACE}/runs/no-such-run")
    assert response is not None
    assert response.status == 404
    expect(page.locator("#detail")).to_have_text(
        f"Run no-such-run not found in namespace {NAMESPACE}"
    )
    shots.take(page, "unknown-run")
