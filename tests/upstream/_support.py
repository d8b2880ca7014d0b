"""Helpers for driving the upstream ``exospherehost`` SDK against the fake over loopback.

The upstream runtime is asyncio-only and has no ``stop()`` (contract §8.4): ``start()`` called
inside a running loop returns a Task, and cancelling that task is the only way to stop it. Each
runtime therefore gets its own event loop in a daemon thread; leaving the context manager
cancels the task, joins the thread and re-raises anything that killed the runtime (a failed
registration, or a worker that died on a signal send, contract §8.6).

The fake is observed only through its public REST reads (contract §2.2, §2.14-§2.16), so these
tests say nothing about the fake's internals. Waiting is done by polling those reads under a
generous overall deadline; nothing sleeps a fixed time as synchronisation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import anyio
import httpx
from exospherehost import GraphNodeModel, Runtime, StateManager, StoreConfigModel

#: Overall deadline for anything the fake or the runtime must reach (seconds). Generous because
#: CI runs three suites on two cores; a healthy run finishes in well under a second.
DEADLINE = 60.0
#: Spacing of the read polls while waiting (seconds).
POLL = 0.02
#: The upstream runtime's poll interval in these tests (floats work, contract §8.9 item 12).
RUNTIME_POLL_INTERVAL = 0.05
#: Upstream ``upsert_graph``'s validation polling interval (annotated int; floats work).
VALIDATION_POLL = 0.05

T = TypeVar("T")


class UpstreamRuntime:
    """An upstream ``Runtime`` running on its own asyncio loop in a daemon thread."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[Any] | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="upstream-runtime", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._body())
        finally:
            self._loop.close()

    async def _body(self) -> None:
        # Inside a running loop, upstream start() returns the runtime task (contract §8.4).
        task = self._runtime.start()
        assert isinstance(task, asyncio.Task), "upstream start() should return a Task in a loop"
        self._task = task
        self._started.set()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread on exit
            self._error = exc

    def __enter__(self) -> UpstreamRuntime:
        self._thread.start()
        if not self._started.wait(DEADLINE):
            raise AssertionError("the upstream runtime thread did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        task = self._task
        if task is not None:
            with suppress(RuntimeError):  # the loop already finished: nothing to cancel
                self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "the upstream runtime did not stop when cancelled"
        if self._error is not None:
            raise AssertionError(f"the upstream runtime died: {self._error!r}") from self._error


@contextmanager
def upstream_runtime(
    namespace: str, uri: str, key: str, nodes: list[type[Any]], **kwargs: Any
) -> Iterator[UpstreamRuntime]:
    """Start an upstream runtime serving ``nodes`` in ``namespace``; stop it on exit."""
    runtime = Runtime(
        namespace=namespace,
        name=f"{namespace}-runtime",
        nodes=nodes,
        state_manager_uri=uri,
        key=key,
        poll_interval=kwargs.pop("poll_interval", RUNTIME_POLL_INTERVAL),
        **kwargs,
    )
    with UpstreamRuntime(runtime) as running:
        yield running


async def poll_until(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Call ``probe`` every POLL seconds until it returns something other than None.

    The fake is another thread (or process) reached over HTTP, so there is no event to await;
    the overall DEADLINE turns a hang into a failure that says what was awaited.
    """
    try:
        with anyio.fail_after(DEADLINE):
            while True:
                result = await probe()
                if result is not None:
                    return result
                await anyio.sleep(POLL)
    except TimeoutError:
        raise AssertionError(f"gave up after {DEADLINE} s waiting for: {what}") from None


class FakeReader:
    """Reads one namespace of the fake through its public REST API (contract §2).

    It borrows an ``httpx.AsyncClient`` whose ``base_url`` is the fake and whose headers carry
    the API key (one client per test: building a client per request costs more than the run).
    """

    def __init__(self, client: httpx.AsyncClient, namespace: str) -> None:
        self.namespace = namespace
        self._client = client

    def _url(self, suffix: str) -> str:
        return f"/v0/namespace/{self.namespace}{suffix}"

    async def _get(self, url: str) -> Any:
        response = await self._client.get(url)
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text}"
        return response.json()

    async def health(self) -> httpx.Response:
        return await self._client.get("/health", headers={"x-api-key": ""})

    async def registered_node_names(self) -> set[str]:
        """Names of the nodes registered in this namespace (contract §2.2)."""
        body = await self._get(self._url("/nodes/"))
        return {node["name"] for node in body["nodes"]}

    async def wait_registered(self, names: set[str]) -> None:
        """Wait until every node in ``names`` is registered (the runtime has started)."""

        async def probe() -> bool | None:
            return True if names <= await self.registered_node_names() else None

        await poll_until(probe, f"nodes {sorted(names)} registered in {self.namespace}")

    async def runs(self) -> list[dict[str, Any]]:
        """Every run of the namespace with its counts (contract §2.14, §7.1)."""
        body = await self._get(self._url("/runs/1/1000"))
        return list(body["runs"])

    async def run(self, run_id: str) -> dict[str, Any]:
        matches = [run for run in await self.runs() if run["run_id"] == run_id]
        assert len(matches) == 1, f"run {run_id} listed {len(matches)} times"
        return matches[0]

    async def wait_finished(self, run_id: str) -> dict[str, Any]:
        """Poll the runs list until the run is no longer PENDING; return its summary."""

        async def probe() -> dict[str, Any] | None:
            run = await self.run(run_id)
            return None if run["status"] == "PENDING" else run

        return await poll_until(probe, f"run {run_id} finished")

    async def states(self, run_id: str) -> list[dict[str, Any]]:
        """Every state of the run with its details: inputs, outputs, error, parents.

        The run graph (contract §2.15) lists the states; the node-details read (§2.16) adds
        inputs and outputs. Each item merges both.
        """
        graph = await self._get(self._url(f"/states/run/{run_id}/graph"))
        states: list[dict[str, Any]] = []
        for node in graph["nodes"]:
            details = await self._get(
                self._url(f"/graph/{graph['graph_name']}/run/{run_id}/node/{node['id']}")
            )
            states.append({**node, **details})
        return states


def graph_node(namespace: str, name: str, identifier: str, **kwargs: Any) -> GraphNodeModel:
    """An upstream ``GraphNodeModel`` (contract §4.1) for node class ``name`` in ``namespace``."""
    return GraphNodeModel(node_name=name, namespace=namespace, identifier=identifier, **kwargs)


async def upsert_stored_graph(sm: StateManager, namespace: str) -> None:
    """Graph ``stored``: ``first -> then``, both ``Echo``, reading the run's store (contract
    §4.6, §3.5 step 3c); ``req`` is required, ``opt`` defaults to ``"fallback"``, and ``then``
    joins what it read. Returns once the fake has verified it."""
    nodes = [
        graph_node(
            namespace, "Echo", "first", inputs={"value": "${{ store.opt }}"}, next_nodes=["then"]
        ),
        graph_node(
            namespace,
            "Echo",
            "then",
            inputs={"value": "${{ first.outputs.value }}/${{ store.req }}/${{ store.opt }}"},
        ),
    ]
    store_config = StoreConfigModel(required_keys=["req"], default_values={"opt": "fallback"})
    await sm.upsert_graph(
        "stored", nodes, secrets={}, store_config=store_config, polling_interval=VALIDATION_POLL
    )


def by_identifier(states: list[dict[str, Any]], identifier: str) -> list[dict[str, Any]]:
    """The states of one graph node, in the fake's listing order."""
    return [state for state in states if state["identifier"] == identifier]


class AttemptCounter:
    """Counts executions per key across the runtime thread (nodes are created per state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self.log: list[str] = []

    def next(self, key: str) -> int:
        """Record one more execution of ``key``; return its 1-based attempt number."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            self.log.append(key)
            return self._counts[key]

    def count(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)
