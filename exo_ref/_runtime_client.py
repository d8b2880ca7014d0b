"""The runtime's HTTP client for the state manager (contract §8.3).

One :class:`StateManagerClient` owns one ``httpx.AsyncClient`` for the runtime's whole life, so
connections are reused (upstream opened a session per call, contract §8.9 item 1). Every call
has an explicit timeout, checks the status before reading JSON (§8.9 item 4), and turns
transport failures into :mod:`exo_ref._errors` classes whose messages name the request but
never the key.

The hot path (a runtime sends about one request per state): two transports are sent on without
``AsyncClient``'s per-request layer (URL merging, cookies, auth and redirect hooks, none of which
a state manager uses), through a :class:`~exo_ref._calls.Sender`:

* the runtime's own :class:`~exo_ref._h11_transport.Http11Transport`, for a plain ``http://``
  state manager without a proxy: pre-encoded request heads, one deadline per request, no
  ``httpx`` object per request (:class:`~exo_ref._h11_transport.LeanSender`);
* an ``httpx.ASGITransport`` passed as ``transport=`` (the in-process fake): its ASGI app is
  called directly (:class:`~exo_ref._calls.AsgiSender`).

Anything else a user passes (``transport=``, HTTPS, proxies) goes through the one
``httpx.AsyncClient``, unchanged. Bodies are serialised with ``json.dumps`` of plain values
(pydantic only where it validates or converts something: registration, prune data), and the
poll's answer is validated by pydantic in one call (a malformed one is an
:class:`~exo_ref.InvalidResponseError`).

Retry rules:

* registration and reports (executed / errored / prune / re-enqueue-after) retry with capped,
  jittered exponential backoff on transport errors, timeouts, 429 and 5xx: registration until it
  succeeds, reports until they succeed or the caller cancels them (the runtime does so at its
  shutdown deadline). Upstream never retried a report, stranding states QUEUED (§8.9 item 2).
* a report retried after an attempt that may have reached the server (timeout, reset after
  sending, 5xx) and then answered 400 (``State is not queued``, contract §2.8-2.10) was applied by
  that earlier attempt: it counts as delivered.
* polls are single attempts: the poller owns their backoff.

Re-registration: a state manager that restarts without persistence (the fake's default, or an
upstream server whose database was reset) forgets the runtime's nodes, and every graph upserted
afterwards is INVALID ("Node X does not exist") while the runtime polls on as if nothing
happened. Nothing on the wire says "I restarted", so the client takes two pieces of evidence:
a successful answer after requests failed for being unreachable or 5xx (the server came back
after an outage), and a 404 to a report (the server does not know a state it handed out). Either
marks the registration as lost; :meth:`StateManagerClient.register_again_if_lost` (the poller
calls it before each poll) then registers the same nodes again and logs why. Registering is an
idempotent upsert (contract §2.2), so a false alarm costs one request.
"""

from __future__ import annotations

import enum
import json
import logging
import math
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ._backoff import Backoff, RandomSource
from ._calls import (
    Answer,
    AsgiSender,
    BorrowedTransport,
    Reply,
    Sender,
    body_start,
    send,
    status_error,
    transport_failure,
)
from ._clock import Clock
from ._config import RuntimeSettings
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidResponseError,
    RegistrationError,
    StateManagerError,
    StateManagerTLSError,
    StateManagerUnavailableError,
)
from ._h11_transport import Http11Transport, LeanSender
from ._wire import (
    ClaimedState,
    EnqueueResponse,
    ExecutedBody,
    PruneBody,
    RegisterRequest,
    SecretsResponse,
)

__all__ = [
    "IN_PROCESS_HOST",
    "ReportOutcome",
    "StateManagerClient",
    "is_retryable",
    "require_transport_for_in_process",
]

logger = logging.getLogger("exo_ref.client")

SECRETS_MAX_ATTEMPTS = 5

# Extra connections beyond `workers`: the poller, registration, hand-back bursts.
_SPARE_CONNECTIONS = 4


class ReportOutcome(enum.Enum):
    """How a report (executed / errored / prune / re-enqueue-after) ended."""

    DELIVERED = "delivered"
    """The state manager accepted it."""
    ALREADY_APPLIED = "already_applied"
    """A retry was refused with 400 after an earlier attempt may have landed: counted delivered."""
    REJECTED = "rejected"
    """Refused for good (404 unknown state, 400 on the first attempt, 401...): logged."""


#: The host of ``FakeStateManager.uri`` (``http://fake-state-manager``): a name only the fake's
#: in-process transport answers to; no DNS server knows it.
IN_PROCESS_HOST = "fake-state-manager"


def require_transport_for_in_process(uri: str, transport: httpx.AsyncBaseTransport | None) -> None:
    """Refuse the in-process fake's URI without a transport, at construction.

    Without ``transport=`` the request goes to DNS, which cannot resolve the name: the runtime
    would retry registration forever and a test would hang with nothing but warnings.

    Raises:
        ConfigurationError: saying to pass the fake's transport.
    """
    if transport is not None:
        return
    try:
        host = httpx.URL(uri).host
    except httpx.InvalidURL:
        return
    if host == IN_PROCESS_HOST:
        raise ConfigurationError(
            f"state_manager_uri {uri!r} is the in-process FakeStateManager's address, which no "
            "network can reach: pass transport=sm.transport (and clock=sm.clock) with it, or "
            "serve the fake with sm.serve_in_thread() and use the URL that yields"
        )


# --- the client ------------------------------------------------------------------------------


def is_retryable(error: BaseException) -> bool:
    """Transport failures, timeouts, 429 and 5xx are worth retrying; other statuses are not.

    A TLS failure is not: a handshake that failed once (``https://`` to a plain server, an
    unknown certificate) fails the same way on every attempt.
    """
    if isinstance(error, StateManagerTLSError):
        return False
    if isinstance(error, StateManagerUnavailableError):
        return True
    if isinstance(error, StateManagerError):
        return error.status_code == 429 or error.status_code >= 500
    return False


def _may_have_landed(error: BaseException) -> bool:
    # A refused connection never reached the server; anything after sending might have.
    if isinstance(error, StateManagerUnavailableError):
        return not isinstance(error.__cause__, httpx.ConnectError | httpx.ConnectTimeout)
    return isinstance(error, StateManagerError) and error.status_code >= 500


class StateManagerClient:
    """Typed calls to the state-manager endpoints a runtime uses (contract §8.3).

    Use as an async context manager (or call :meth:`aclose`): it owns one ``httpx.AsyncClient``.

    Args:
        settings: the runtime's settings. The client reads where the state manager is
            (``state_manager_uri``, ``state_manager_version``), the namespace, the key (sent as
            ``x-api-key``; never logged or put in an error message), the timeouts, and
            ``workers``: the pool holds a connection per worker plus a few, so a report never
            waits for a poll's connection.
        transport: an ``httpx.AsyncBaseTransport`` (``httpx.ASGITransport`` for an in-process
            fake, ``httpx.MockTransport`` in tests); ``None`` for the runtime's own
            :class:`Http11Transport` when ``settings.lean_transport`` (chosen in configuration,
            never here), else httpx's own.
        clock: what backoff sleeps use.
        rng: the jitter source.
        backoff: retry spacing for registration, reports and secrets.
        owns_transport: close ``transport`` with this client; otherwise it is borrowed and left
            open (a transport the client builds itself is always owned). Requests on an owned
            :class:`Http11Transport` or on a borrowed ``httpx.ASGITransport`` skip
            ``AsyncClient``'s per-request layer (module docstring).
    """

    def __init__(
        self,
        settings: RuntimeSettings,
        *,
        transport: httpx.AsyncBaseTransport | None,
        clock: Clock,
        rng: RandomSource,
        backoff: Backoff | None = None,
        owns_transport: bool = False,
    ) -> None:
        uri, key, timeout = settings.state_manager_uri, settings.key, settings.timeout
        require_transport_for_in_process(uri, transport)
        connections = settings.workers + _SPARE_CONNECTIONS
        if transport is None:
            owns_transport = True
            if settings.lean_transport:
                transport = Http11Transport(
                    max_connections=connections, max_keepalive_connections=connections
                )
        self._prefix = (
            f"{uri.rstrip('/')}/{settings.state_manager_version}/namespace/{settings.namespace}"
        )
        self._clock = clock
        self._rng = rng
        self._backoff = backoff if backoff is not None else Backoff()
        self._key = key
        # Re-registration (module docstring): the last registration body, and the evidence.
        self._registration: bytes | None = None
        self._contact_lost = False
        self._lost_registration: str | None = None  # why it seems lost, or None
        headers = {"x-api-key": key, "content-type": "application/json"}
        own: httpx.AsyncBaseTransport | None
        if transport is not None and not owns_transport:
            # Borrowed: the runtime may run again with the same transport after this closes.
            own = BorrowedTransport(transport)
        else:
            own = transport
        self._http = httpx.AsyncClient(
            transport=own,
            timeout=timeout,
            # Every body we send is JSON; a default header saves a merge per request.
            headers=headers,
            limits=httpx.Limits(
                max_connections=connections, max_keepalive_connections=connections
            ),
        )
        # The hot path without AsyncClient's per-request layer (module docstring), or None.
        self._lean: Sender | None = _lean_sender(
            transport, owns_transport, self._prefix, list(headers.items()), timeout
        )

    @property
    def requests_yield(self) -> bool:
        """Whether every request waits on a socket, so yields to the event loop.

        True on the lean HTTP path. In process (or on a transport such as
        ``httpx.MockTransport``) a request may be answered without a single real wait: the
        workers then take each state through a checkpoint of their own (exo_ref._workers).
        """
        return isinstance(self._lean, LeanSender)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- endpoints ------------------------------------------------------------------------------

    async def register(self, request: RegisterRequest) -> None:
        """``PUT /nodes/``, retried while the state manager is unreachable or answers 5xx/429.

        Raises:
            AuthenticationError: 401, the key was refused.
            RegistrationError: another 4xx (the message carries the server's detail).
        """
        path = "/nodes/"
        body = request.model_dump_json().encode()
        try:
            await self._with_retry("PUT", path, body, None)
            self._registration = body
            self._lost_registration = None
        except AuthenticationError:
            raise  # its message already says to check key= / EXOSPHERE_API_KEY
        except StateManagerError as error:
            raise RegistrationError(
                f"Registering nodes failed: PUT {path} answered {error.status_code}: "
                f"{error.detail}",
                status_code=error.status_code,
                detail=error.detail,
                method=error.method,
                path=error.path,
            ) from None

    @property
    def registration_lost(self) -> str | None:
        """Why the server seems to have lost this runtime's registration, or ``None``."""
        return self._lost_registration

    async def register_again_if_lost(self) -> bool:
        """Register the last registered nodes again if the server seems to have lost them.

        Returns whether it registered. A refusal (4xx) is logged and the registration is not
        tried again until new evidence arrives: the runtime keeps serving what it can.
        """
        why, body = self._lost_registration, self._registration
        if why is None or body is None:
            return False
        self._lost_registration = None
        logger.warning("Registering the nodes again: %s", why)
        try:
            await self._with_retry("PUT", "/nodes/", body, None)
        except StateManagerError as error:
            logger.error("Registering the nodes again failed: %s", error)  # noqa: TRY400
            return False
        logger.info("Nodes registered again")
        return True

    def _registration_may_be_lost(self, why: str) -> None:
        if self._registration is not None and self._lost_registration is None:
            self._lost_registration = why

    async def enqueue(self, nodes: Sequence[str], batch_size: int) -> list[ClaimedState]:
        """``POST /states/enqueue`` once (contract §2.7); the poller owns the backoff."""
        body = _dumps({"nodes": list(nodes), "batch_size": batch_size})
        response = await self._send("POST", "/states/enqueue", body)
        return _parse(EnqueueResponse, response, "POST", "/states/enqueue", key=self._key).states

    async def secrets(self, state_id: str) -> dict[str, str]:
        """``GET /state/{id}/secrets`` (contract §2.13), a few attempts on retryable failures."""
        path = f"/state/{state_id}/secrets"
        response = await self._with_retry("GET", path, None, SECRETS_MAX_ATTEMPTS)
        # Never quote this body: it holds the graph's secrets (contract §2.13).
        return _parse(SecretsResponse, response, "GET", path, key=None).secrets

    async def report_executed(
        self, state_id: str, outputs: list[dict[str, Any]]
    ) -> ReportOutcome:
        """``POST /state/{id}/executed`` with the dumped outputs (contract §2.8).

        ``outputs`` are ``model_dump(mode="json")`` results: plain JSON values, serialised as
        they are (pydantic renders anything else, such as a NaN, as before).
        """
        try:
            body = _dumps({"outputs": outputs})
        except (TypeError, ValueError):
            body = ExecutedBody(outputs=outputs).model_dump_json().encode()
        return await self._report(f"/state/{state_id}/executed", body)

    async def report_errored(self, state_id: str, error: str) -> ReportOutcome:
        """``POST /state/{id}/errored`` (contract §2.9)."""
        return await self._report(f"/state/{state_id}/errored", _dumps({"error": str(error)}))

    async def report_prune(self, state_id: str, data: dict[str, Any]) -> ReportOutcome:
        """``POST /state/{id}/prune`` (contract §2.10); pydantic renders the node's data."""
        body = PruneBody(data=data).model_dump_json().encode()
        return await self._report(f"/state/{state_id}/prune", body)

    async def report_re_enqueue_after(self, state_id: str, delay_ms: int) -> ReportOutcome:
        """``POST /state/{id}/re-enqueue-after`` (contract §2.11); ``delay_ms`` must be > 0."""
        body = _dumps({"enqueue_after": max(1, int(delay_ms))})
        return await self._report(f"/state/{state_id}/re-enqueue-after", body)

    # -- machinery ------------------------------------------------------------------------------

    async def _report(self, path: str, body: bytes) -> ReportOutcome:
        try:
            await self._with_retry("POST", path, body, None)
        except StateManagerError as error:
            if error.status_code == 400 and error.after_uncertain_attempt:
                logger.info(
                    "POST %s answered 400 (%s) after an earlier attempt may have been applied; "
                    "counting it as delivered",
                    path,
                    error.detail,
                )
                return ReportOutcome.ALREADY_APPLIED
            if error.status_code == 404:
                logger.error(  # noqa: TRY400 - no traceback
                    "%s; the state manager does not know this state (restarted without its"
                    " data?): not retrying it",
                    error,
                )
                self._registration_may_be_lost(
                    f"POST {path} answered 404, so the state manager lost its data"
                )
                return ReportOutcome.REJECTED
            logger.error("%s; the report was not applied", error)  # noqa: TRY400 - no traceback
            return ReportOutcome.REJECTED
        return ReportOutcome.DELIVERED

    async def _with_retry(
        self, method: str, path: str, body: bytes | None, max_attempts: int | None
    ) -> Reply:
        """Send until success or a non-retryable error (raised, with ``after_uncertain_attempt``
        set when an earlier attempt may have been applied by the server)."""
        attempt = 0
        landed = False
        while True:
            attempt += 1
            try:
                return await self._send(method, path, body)
            except (StateManagerError, StateManagerUnavailableError) as error:
                if not is_retryable(error):
                    if isinstance(error, StateManagerError):
                        error.after_uncertain_attempt = landed
                    raise
                if max_attempts is not None and attempt >= max_attempts:
                    raise
                landed = landed or _may_have_landed(error)
                delay = self._backoff.delay(attempt, self._rng)
                if isinstance(error, StateManagerError) and error.status_code == 429:
                    delay = max(delay, min(self._backoff.maximum, _retry_after(error)))
                log = logger.warning if attempt == 1 or attempt % 10 == 0 else logger.debug
                log("%s (attempt %d); retrying in %.2fs", error, attempt, delay)
            await self._clock.sleep(delay)

    async def _send(self, method: str, path: str, body: bytes | None) -> Reply:
        response: Reply
        lean = self._lean
        try:
            if lean is not None:
                try:
                    response = Answer(await lean.send(method, path, body))
                except httpx.TransportError as error:
                    raise transport_failure(
                        method, path, error, key=self._key, url=lean.origin
                    ) from error
            else:
                response = await send(
                    self._http, method, self._prefix + path, path, content=body, key=self._key
                )
        except StateManagerUnavailableError:
            self._contact_lost = True
            raise
        status = response.status_code
        if status >= 500:
            self._contact_lost = True
        elif self._contact_lost:
            self._contact_lost = False
            self._registration_may_be_lost(
                "the state manager answers again after an outage and may have restarted"
                " without its data"
            )
        if status >= 300:
            raise status_error(method, path, response, key=self._key)
        return response


def _lean_sender(
    transport: httpx.AsyncBaseTransport | None,
    owned: bool,
    prefix: str,
    headers: list[tuple[str, str]],
    timeout: httpx.Timeout,
) -> Sender | None:
    """The hot path's :class:`~exo_ref._calls.Sender` for ``transport``, or ``None``.

    Only the runtime's own :class:`Http11Transport` and an ``httpx.ASGITransport`` itself (not a
    subclass, which may do more per request) qualify; a key that cannot go in a header as it is
    leaves the request to httpx, which reports the problem as before.
    """
    try:
        if owned and isinstance(transport, Http11Transport):
            return LeanSender(transport, prefix, headers, timeout)
        if type(transport) is httpx.ASGITransport:
            return AsgiSender(transport, prefix, headers)
    except ValueError:
        return None
    return None


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _dumps(value: Any) -> bytes:
    """Compact JSON of plain values (``TypeError`` / ``ValueError`` for anything else)."""
    return _ENCODER.encode(value).encode()


def _retry_after(error: StateManagerError) -> float:
    try:
        value = float(error.retry_after) if error.retry_after is not None else 0.0
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], response: Reply, method: str, path: str, *, key: str | None) -> _M:
    """``response`` read as ``model``; the error's ``detail`` quotes the body with ``key``
    masked, or, with ``key=None``, not at all."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        raise InvalidResponseError(
            f"{method} {path} answered {response.status_code} with an unexpected body "
            f"({error.error_count()} problem(s) reading it as {model.__name__})",
            status_code=response.status_code,
            detail=body_start(response, key) if key is not None else "(not quoted)",
            method=method,
            path=path,
        ) from None
