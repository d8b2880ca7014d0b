"""``StateManager``: the client for graph templates, triggers and run inspection (contract §8.7).

Upstream-compatible part: ``trigger``, ``get_graph`` and ``upsert_graph`` take the same arguments,
send the same request bodies and return the same JSON documents as ``exospherehost`` 0.0.3.
Differences, all in the direction of failing clearly (contract §8.9 item 4, §8.9 item 17):

* the URI and key are checked at construction (upstream built ``None/v0/...`` URLs);
* the status is checked before the body is parsed, so an HTML error page is reported as such;
* ``upsert_graph`` keeps polling while validation is ``PENDING`` *or* ``ONGOING`` and treats only
  ``VALID`` as success;
* errors are :mod:`exo_ref._errors` classes (still ``Exception`` subclasses, with upstream's
  message prefixes) and never contain the API key.

Additions (not in upstream): ``list_runs``, ``get_run_graph``, ``get_node``, ``list_nodes``,
``list_graphs`` and ``wait_for_run``, the read calls a test or a script needs, and
``manual_retry`` (the dashboard's retry button, used by ``exo-ref retry``).

Client lifetime: inside ``async with StateManager(...) as sm:`` one ``httpx.AsyncClient`` is
created on first use and reused until the block ends. Called without the context manager (as
upstream code does), each method opens its own client and closes it before returning, so nothing
leaks and the object may be used from several event loops one after the other. A ``transport``
you pass in is borrowed: closing a client never closes it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from ._calls import BorrowedTransport, body_start, send, status_error
from ._clock import Clock, SystemClock
from ._config import DEFAULT_STATE_MANAGER_VERSION, require_key, require_uri, resolve_timeout
from ._errors import (
    ConfigurationError,
    GraphValidationError,
    InvalidResponseError,
    WaitTimeoutError,
)
from ._models import CronTrigger, GraphNodeModel, RetryPolicyModel, StoreConfigModel
from ._runtime_client import require_transport_for_in_process
from ._statuses import VALIDATING
from ._wire import (
    GraphTemplate,
    GraphTemplateList,
    ManualRetryResponse,
    NodeDetails,
    NodeList,
    RunGraph,
    RunsPage,
    RunSummary,
    TriggerResponse,
)

__all__ = ["StateManager"]

_RUNS_PAGE_SIZE = 100
DEFAULT_WAIT_TIMEOUT = 60.0
DEFAULT_WAIT_POLL_INTERVAL = 0.5


class StateManager:
    """Client for the state manager's graph, trigger and run endpoints (contract §8.7).

    ``StateManager(namespace, state_manager_uri=None, key=None, state_manager_version="v0")`` as
    upstream, plus keyword-only ``transport=``, ``clock=`` and ``timeout=``.

    Args:
        namespace: the namespace the graphs and runs live in.
        state_manager_uri: base URI such as ``http://localhost:8000``; ``None`` reads
            ``EXOSPHERE_STATE_MANAGER_URI``.
        key: the API key; ``None`` reads ``EXOSPHERE_API_KEY``. Never logged or put in errors.
        state_manager_version: the API version path segment.
        transport: an ``httpx.AsyncBaseTransport`` (``FakeStateManager.transport`` for the
            in-process fake, ``httpx.MockTransport`` in tests); ``None`` for real HTTP.
        clock: what the polling waits use (a ``ManualClock`` in tests).
        timeout: per-request timeout in seconds or an ``httpx.Timeout``.

    Raises:
        ConfigurationError: the URI or key is missing, or the URI is not http(s).
    """

    def __init__(
        self,
        namespace: str,
        state_manager_uri: str | None = None,
        key: str | None = None,
        state_manager_version: str = DEFAULT_STATE_MANAGER_VERSION,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> None:
        # Checked here: upstream built "None/v0/..." URLs and failed at the first call (§8.7).
        uri = require_uri(state_manager_uri)
        require_transport_for_in_process(uri, transport)
        self._key = require_key(key)
        self.namespace = namespace
        self._prefix = (
            f"{uri.rstrip('/')}/{segment(state_manager_version)}/namespace/{segment(namespace)}"
        )
        self._transport = BorrowedTransport(transport) if transport is not None else None
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._timeout = resolve_timeout(timeout)
        self._client: httpx.AsyncClient | None = None
        self._depth = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r}, prefix={self._prefix!r})"

    # -- client lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._depth += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the shared client, if one is open (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport, timeout=self._timeout, headers={"x-api-key": self._key}
        )

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._depth > 0:
            if self._client is None:
                self._client = self._new_client()
            yield self._client
            return
        async with self._new_client() as client:
            yield client

    # -- one call ---------------------------------------------------------------------------------

    async def _call(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        failure: str,
        ok: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        """Send one request; check the status first, then parse a JSON object (§8.9 item 4).

        ``failure`` is upstream's message prefix (``Failed to trigger state`` ...).
        """
        context = f"{failure}: "
        response = await send(
            http, method, self._prefix + path, path, json=body, key=self._key, context=context
        )
        if response.status_code not in ok:
            raise status_error(method, path, response, key=self._key, failure=failure)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = body_start(response, self._key)
            raise InvalidResponseError(
                f"{context}{method} {path} answered {response.status_code} with a body that is "
                f"not a JSON object: {text!r}",
                status_code=response.status_code,
                detail=text,
                method=method,
                path=path,
            )
        return data

    # -- upstream API (contract §8.7) ---------------------------------------------------------

    async def trigger(
        self,
        graph_name: str,
        inputs: dict[str, str] | None = None,
        store: dict[str, str] | None = None,
        start_delay: int = 0,
    ) -> TriggerResponse:
        """Start a run of ``graph_name`` (contract §2.6, §4.6); returns ``{"status", "run_id"}``.

        Args:
            graph_name: a graph whose template is VALID.
            inputs: overrides for the root node's template inputs (string values).
            store: the run's write-once key-value store (string values).
            start_delay: milliseconds before the root state may be claimed.
        """
        body = {"start_delay": start_delay, "inputs": inputs or {}, "store": store or {}}
        async with self._http() as http:
            data = await self._call(
                http, "POST", f"/graph/{segment(graph_name)}/trigger", body,
                failure="Failed to trigger state",
            )
        return cast(TriggerResponse, data)

    async def get_graph(self, graph_name: str) -> GraphTemplate:
        """The graph template and its ``validation_status`` (contract §2.4)."""
        async with self._http() as http:
            return await self._get_graph(http, graph_name)

    async def upsert_graph(
        self,
        graph_name: str,
        graph_nodes: Sequence[GraphNodeModel],
        secrets: dict[str, str],
        retry_policy: RetryPolicyModel | None = None,
        store_config: StoreConfigModel | None = None,
        triggers: Sequence[CronTrigger] | None = None,
        validation_timeout: float = 60,
        polling_interval: float = 1,
    ) -> GraphTemplate:
        """Create or replace a graph template and wait until it is validated (contract §2.3, §4.4).

        Returns:
            The last ``GET`` of the graph, whose ``validation_status`` is ``VALID``.

        Raises:
            StateManagerError: the upsert was refused (e.g. 400 structural errors, §4.3).
            GraphValidationError: validation finished with a status other than VALID.
            WaitTimeoutError: still PENDING/ONGOING after ``validation_timeout`` seconds.
        """
        if not math.isfinite(polling_interval) or polling_interval <= 0:
            raise ConfigurationError(
                f"polling_interval must be a positive number of seconds, got {polling_interval!r}"
            )
        if math.isnan(validation_timeout) or validation_timeout < 0:
            raise ConfigurationError(
                f"validation_timeout must be >= 0 seconds, got {validation_timeout!r}"
            )
        body: dict[str, Any] = {"secrets": secrets, "nodes": [dump(n) for n in graph_nodes]}
        if retry_policy is not None:
            body["retry_policy"] = dump(retry_policy)
        if store_config is not None:
            body["store_config"] = dump(store_config)
        if triggers is not None:
            body["triggers"] = [
                {"type": "CRON", "value": {"expression": t.expression}} for t in triggers
            ]
        started = self._clock.now()
        async with self._http() as http:
            put = await self._call(
                http, "PUT", f"/graph/{segment(graph_name)}", body,
                failure="Failed to upsert graph", ok=(200, 201),
            )
            data = cast(GraphTemplate, put)
            status = data.get("validation_status")
            if status in VALIDATING:
                # The PUT always answers PENDING (validation runs after the response, §4.4) and
                # usually takes milliseconds: look once at once instead of sleeping first.
                data = await self._get_graph(http, graph_name)
                status = data.get("validation_status")
            while status in VALIDATING:
                if self._clock.now() - started >= validation_timeout:
                    raise WaitTimeoutError(
                        f"Graph validation check timed out after {validation_timeout} seconds: "
                        f"graph {graph_name!r} is still {status}; raise validation_timeout or "
                        "check that the state manager is validating graphs"
                    )
                await self._clock.sleep(polling_interval)
                data = await self._get_graph(http, graph_name)
                status = data.get("validation_status")
        if status != "VALID":
            errors = [str(e) for e in data.get("validation_errors") or []]
            raise GraphValidationError(
                f"Graph validation failed: {status} and errors: {errors}; register the nodes "
                "with a runtime before upserting and fix the template",
                status=str(status),
                errors=errors,
            )
        return data

    # -- additions ----------------------------------------------------------------------------

    async def list_runs(self, page: int = 1, size: int = 20) -> RunsPage:
        """Addition: one page of runs, newest first, with status counts (contract §2.14, §7.1)."""
        async with self._http() as http:
            data = await self._call(
                http, "GET", f"/runs/{int(page)}/{int(size)}", None, failure="Failed to list runs"
            )
        return cast(RunsPage, data)

    async def get_run_graph(self, run_id: str) -> RunGraph:
        """Addition: a run's states and edges (contract §2.15, §7.2)."""
        async with self._http() as http:
            data = await self._call(
                http, "GET", f"/states/run/{segment(run_id)}/graph", None,
                failure="Failed to get run graph",
            )
        return cast(RunGraph, data)

    async def get_node(self, graph_name: str, run_id: str, node_id: str) -> NodeDetails:
        """Addition: one state's inputs, outputs, parents and status (contract §2.16)."""
        path = f"/graph/{segment(graph_name)}/run/{segment(run_id)}/node/{segment(node_id)}"
        async with self._http() as http:
            data = await self._call(http, "GET", path, None, failure="Failed to get node")
        return cast(NodeDetails, data)

    async def list_nodes(self) -> NodeList:
        """Addition: nodes registered in this namespace (contract §2.2)."""
        async with self._http() as http:
            data = await self._call(http, "GET", "/nodes/", None, failure="Failed to list nodes")
        return cast(NodeList, data)

    async def list_graphs(self) -> GraphTemplateList:
        """Addition: graph templates of this namespace (contract §2.5; secrets are ciphertexts)."""
        async with self._http() as http:
            data = await self._call(
                http, "GET", "/graphs/", None, failure="Failed to list graphs"
            )
        return cast(GraphTemplateList, data)

    async def manual_retry(self, state_id: str, fanout_id: str) -> ManualRetryResponse:
        """Addition: retry a state by hand (contract §2.12, §6.3); returns ``{"id", "status"}``.

        ``id`` is the new state's; the original becomes RETRY_CREATED. ``fanout_id`` must be
        new for each retry (upstream's dashboard sends a fresh ``str(uuid4())``): a reused one is
        refused with 409 ``Duplicate retry state detected``.
        """
        async with self._http() as http:
            data = await self._call(
                http, "POST", f"/state/{segment(state_id)}/manual-retry",
                {"fanout_id": fanout_id}, failure="Failed to retry state",
            )
        return cast(ManualRetryResponse, data)

    async def wait_for_run(
        self,
        run_id: str,
        timeout: float = DEFAULT_WAIT_TIMEOUT,  # noqa: ASYNC109 - measured on the injected clock
        poll_interval: float = DEFAULT_WAIT_POLL_INTERVAL,
    ) -> RunSummary:
        """Addition: poll the runs list until ``run_id`` is no longer PENDING (contract §7.1).

        Returns:
            The run's summary; its ``status`` is ``SUCCESS`` or ``FAILED``.

        Raises:
            WaitTimeoutError: still PENDING (or not listed) after ``timeout`` seconds.
        """
        if not math.isfinite(poll_interval) or poll_interval <= 0:
            raise ConfigurationError(
                f"poll_interval must be a positive number of seconds, got {poll_interval!r}"
            )
        started = self._clock.now()
        async with self._http() as http:
            while True:
                summary = await self._find_run(http, run_id)
                if summary is not None and summary["status"] != "PENDING":
                    return summary
                if self._clock.now() - started >= timeout:
                    state = "not listed" if summary is None else f"still PENDING: {summary}"
                    raise WaitTimeoutError(
                        f"run {run_id} did not finish within {timeout} seconds ({state}); "
                        "check that a runtime serving its nodes is running"
                    )
                await self._clock.sleep(poll_interval)

    # -- helpers ------------------------------------------------------------------------------

    async def _find_run(self, http: httpx.AsyncClient, run_id: str) -> RunSummary | None:
        page = 1
        while True:
            data = await self._call(
                http, "GET", f"/runs/{page}/{_RUNS_PAGE_SIZE}", None,
                failure="Failed to list runs",
            )
            runs = cast(RunsPage, data).get("runs") or []
            for run in runs:
                if run.get("run_id") == run_id:
                    return run
            if len(runs) < _RUNS_PAGE_SIZE:
                return None
            page += 1

    async def _get_graph(self, http: httpx.AsyncClient, graph_name: str) -> GraphTemplate:
        data = await self._call(
            http, "GET", f"/graph/{segment(graph_name)}", None, failure="Failed to get graph"
        )
        return cast(GraphTemplate, data)


def segment(value: str) -> str:
    """One URL path segment, percent-encoded (upstream interpolated it raw)."""
    return quote(value, safe="")


def dump(model: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A request-body dict; ``mode="json"`` turns str enums into values (upstream json.dumps)."""
    if isinstance(model, BaseModel):
        return model.model_dump(mode="json")
    return dict(model)
