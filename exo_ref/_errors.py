"""Every error exo_ref raises on purpose, in one place.

Hierarchy (each class also subclasses the stdlib base a caller would naturally catch)::

    ExoRefError(Exception)
    ├── ConfigurationError(ValueError)          bad Runtime arguments / environment (contract §8.2)
    │   └── NodeValidationError                 node classes that cannot be served (contract §8.2)
    ├── RuntimeAlreadyRunningError(RuntimeError)  run()/start() while the same Runtime is running
    ├── StateManagerUnavailableError(ConnectionError)  transport failure: refused, reset, DNS
    │   ├── StateManagerTimeoutError(TimeoutError)     no answer within the configured timeout
    │   └── StateManagerTLSError                       TLS failed (e.g. https:// to a plain server)
    ├── StateManagerError                        the state manager answered with an error status
    │   ├── AuthenticationError(PermissionError) 401: the API key was refused (contract §1.2)
    │   ├── RegistrationError                    node registration refused (4xx other than 401)
    │   └── InvalidResponseError                 a success status with a body we cannot read
    ├── GraphValidationError                     upsert_graph: validation ended other than VALID
    └── WaitTimeoutError(TimeoutError)           a client-side wait (validation, a run) ran out

Messages never contain the API key or secret values: they name the request (method and path)
and the server's ``detail`` text only.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ExoRefError",
    "GraphValidationError",
    "InvalidResponseError",
    "NodeValidationError",
    "RegistrationError",
    "RuntimeAlreadyRunningError",
    "StateManagerError",
    "StateManagerTLSError",
    "StateManagerTimeoutError",
    "StateManagerUnavailableError",
    "WaitTimeoutError",
]


class ExoRefError(Exception):
    """Root of every error exo_ref raises deliberately."""


class ConfigurationError(ExoRefError, ValueError):
    """A Runtime argument or environment variable is missing or out of range.

    A ``ValueError`` so that code written for upstream (which raises plain ``ValueError``) keeps
    working.
    """


class NodeValidationError(ConfigurationError):
    """One or more node classes cannot be served; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        # Same prefix and newline-joined list as upstream (contract §8.2 step 5).
        super().__init__("Following errors while validating nodes: " + "\n".join(self.problems))


class RuntimeAlreadyRunningError(ExoRefError, RuntimeError):
    """``run()`` or ``start()`` was called while this Runtime is already running."""


class StateManagerUnavailableError(ExoRefError, ConnectionError):
    """The state manager could not be reached (connection refused or reset, DNS failure...)."""


class StateManagerTimeoutError(StateManagerUnavailableError, TimeoutError):
    """A request to the state manager got no answer within the configured timeout."""


class StateManagerTLSError(StateManagerUnavailableError):
    """The TLS handshake failed, e.g. ``https://`` against a plain-HTTP state manager.

    Not retried: it does not heal by waiting; the message says which URL to change.
    """


class StateManagerError(ExoRefError):
    """The state manager answered a request with an error status.

    Attributes:
        status_code: the HTTP status.
        detail: the server's ``detail`` text (or the start of the body when it is not JSON).
        method, path: which request failed.
        retry_after: the ``Retry-After`` header, if any (429/503).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: str,
        method: str,
        path: str,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.path = path
        self.retry_after = retry_after
        #: Set when this answer came to a retry after an attempt that may have been applied.
        self.after_uncertain_attempt = False


class AuthenticationError(StateManagerError, PermissionError):
    """401 ``Invalid API key``: check ``key=`` or ``EXOSPHERE_API_KEY`` (never echoed)."""


class RegistrationError(StateManagerError):
    """Node registration was refused with a 4xx status other than 401 (not worth retrying)."""


class InvalidResponseError(StateManagerError):
    """A success status whose body is not the JSON document the contract describes."""


class GraphValidationError(ExoRefError):
    """``upsert_graph``: the state manager finished validating the graph and found it INVALID.

    Attributes:
        status: the final ``validation_status`` (contract §4.4).
        errors: the server's ``validation_errors`` list.
    """

    def __init__(self, message: str, *, status: str, errors: list[str]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class WaitTimeoutError(ExoRefError, TimeoutError):
    """A client-side wait (graph validation, a run to finish) ran out of time."""
