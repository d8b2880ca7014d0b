"""Runtime configuration: the only module that reads environment variables.

Upstream rules (contract §8.2): ``EXOSPHERE_STATE_MANAGER_URI`` / ``EXOSPHERE_API_KEY`` are used
only when the argument is ``None`` (an empty string argument is kept, and then refused);
``EXOSPHERE_LOG_LEVEL`` picks the default log level (unknown names mean INFO) and any non-empty
``EXOSPHERE_DISABLE_DEFAULT_LOGGING`` (even ``"0"``) turns default logging off.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import httpx

from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_STATE_MANAGER_VERSION",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WORKERS",
    "ENV_API_KEY",
    "ENV_DISABLE_DEFAULT_LOGGING",
    "ENV_LOG_LEVEL",
    "ENV_STATE_MANAGER_URI",
    "MAX_BATCH_SIZE",
    "RuntimeSettings",
    "default_logging_disabled",
    "env_log_level",
    "require_key",
    "require_uri",
    "resolve_api_key",
    "resolve_state_manager_uri",
    "resolve_timeout",
]

ENV_STATE_MANAGER_URI = "EXOSPHERE_STATE_MANAGER_URI"
ENV_API_KEY = "EXOSPHERE_API_KEY"
ENV_LOG_LEVEL = "EXOSPHERE_LOG_LEVEL"
ENV_DISABLE_DEFAULT_LOGGING = "EXOSPHERE_DISABLE_DEFAULT_LOGGING"

DEFAULT_BATCH_SIZE = 16
# Upstream set no bound (contract §2.7), but a runtime never holds more than `batch_size` claimed
# states and asks for at most that many per poll (exo_ref._poller); every one of them is stranded
# QUEUED if the process dies (§3.2, §8.9 item 7). The fake state manager answers a larger enqueue
# batch_size with a 422, so a larger setting is refused at construction instead of per poll.
MAX_BATCH_SIZE = 1000
DEFAULT_WORKERS = 4
DEFAULT_STATE_MANAGER_VERSION = "v0"
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_GRACE_PERIOD = 30.0
# Upstream set no timeout at all (aiohttp's 300 s default, contract §8.9 item 1). Calls to the state
# manager are short; a hung connection should fail fast and be retried.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def resolve_state_manager_uri(value: str | None) -> str | None:
    """The argument, or ``EXOSPHERE_STATE_MANAGER_URI`` when the argument is ``None``."""
    return os.environ.get(ENV_STATE_MANAGER_URI) if value is None else value


def resolve_api_key(value: str | None) -> str | None:
    """The argument, or ``EXOSPHERE_API_KEY`` when the argument is ``None``."""
    return os.environ.get(ENV_API_KEY) if value is None else value


def require_uri(value: str | None) -> str:
    """The URI (argument or environment), checked: set, http(s), and without the version.

    The client appends ``/{version}/namespace/...`` itself (contract §8.3), so a URI copied with
    its ``/v0`` would give ``/v0/v0/...`` and a bare 404; it is refused here with the fix.

    Raises:
        ConfigurationError: saying which argument or variable to set.
    """
    uri = resolve_state_manager_uri(value)
    if not uri:
        raise ConfigurationError(
            f"State manager URI is not set: pass state_manager_uri= or set {ENV_STATE_MANAGER_URI}"
        )
    if not uri.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"State manager URI must start with http:// or https://, got {uri!r}"
        )
    trimmed = uri.rstrip("/")
    last = trimmed.rsplit("/", 1)[-1]
    if trimmed.count("/") > 2 and len(last) > 1 and last[0] == "v" and last[1:].isdigit():
        raise ConfigurationError(
            f"State manager URI must not include the API version: got {uri!r}; use "
            f"{trimmed[: -len(last) - 1]!r} (the version goes in state_manager_version=)"
        )
    return uri


def require_key(value: str | None) -> str:
    """The API key (argument or environment); refused when unset or empty (never echoed)."""
    key = resolve_api_key(value)
    if not key:
        raise ConfigurationError(f"API key is not set: pass key= or set {ENV_API_KEY}")
    return key


def resolve_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """``None`` means :data:`DEFAULT_TIMEOUT`; a number is seconds for every phase."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(float(timeout))


def env_log_level() -> int:
    """The level named by ``EXOSPHERE_LOG_LEVEL``; INFO when unset or unknown."""
    name = os.environ.get(ENV_LOG_LEVEL, "").strip().upper()
    level = logging.getLevelNamesMapping().get(name)
    return level if level is not None else logging.INFO


def default_logging_disabled() -> bool:
    """True when ``EXOSPHERE_DISABLE_DEFAULT_LOGGING`` is set to any non-empty value."""
    return bool(os.environ.get(ENV_DISABLE_DEFAULT_LOGGING))


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """Validated Runtime settings. The key is excluded from ``repr`` so it never gets logged."""

    namespace: str
    name: str
    state_manager_uri: str
    key: str = field(repr=False)
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = DEFAULT_WORKERS
    state_manager_version: str = DEFAULT_STATE_MANAGER_VERSION
    poll_interval: float = DEFAULT_POLL_INTERVAL
    grace_period: float = DEFAULT_GRACE_PERIOD
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    #: Whether the runtime sends on its own lean HTTP/1.1 transport (see
    #: :func:`lean_transport_suits`) when no ``transport=`` is given.
    lean_transport: bool = False

    @classmethod
    def build(
        cls,
        *,
        namespace: str,
        name: str,
        state_manager_uri: str | None,
        key: str | None,
        batch_size: int,
        workers: int,
        state_manager_version: str,
        poll_interval: float,
        grace_period: float,
        timeout: float | httpx.Timeout | None,
    ) -> RuntimeSettings:
        """Apply the environment fallbacks and validate, in upstream order (contract §8.2).

        Raises:
            ConfigurationError: (a ``ValueError``) naming the first problem found.
        """
        # Upstream's four checks and texts, in its order (contract §8.2 step 4).
        if batch_size < 1:
            raise ConfigurationError("Batch size should be at least 1")
        if workers < 1:
            raise ConfigurationError("Workers should be at least 1")
        uri = require_uri(state_manager_uri)
        api_key = require_key(key)
        # Additions: upstream accepted these silently and then misbehaved.
        if batch_size > MAX_BATCH_SIZE:
            raise ConfigurationError(
                f"Batch size should be at most {MAX_BATCH_SIZE}, got {batch_size!r}: it is how "
                "many claimed states may wait unstarted (each stranded QUEUED if the runtime "
                "dies), and the fake state manager refuses larger polls"
            )
        if not math.isfinite(poll_interval) or poll_interval <= 0:
            raise ConfigurationError(
                f"poll_interval must be a positive number of seconds, got {poll_interval!r}"
            )
        if not math.isfinite(grace_period) or grace_period < 0:
            raise ConfigurationError(
                f"grace_period must be >= 0 seconds, got {grace_period!r}"
            )
        return cls(
            namespace=namespace,
            name=name,
            # Upstream used the URI as-is, so a trailing slash produced "//" paths (§8.3).
            state_manager_uri=uri.rstrip("/"),
            key=api_key,
            batch_size=batch_size,
            workers=workers,
            state_manager_version=state_manager_version,
            poll_interval=float(poll_interval),
            grace_period=float(grace_period),
            timeout=resolve_timeout(timeout),
            lean_transport=lean_transport_suits(uri),
        )


_PROXY_VARIABLES = ("http_proxy", "all_proxy")


def lean_transport_suits(uri: str) -> bool:
    """True when ``uri`` is plain HTTP and the environment names no proxy for it.

    Then the runtime's lean keep-alive transport (``exo_ref._h11_transport``) can carry the
    traffic; HTTPS and proxies need httpx's own transport.
    """
    if not uri.lower().startswith("http://"):
        return False
    names = {name.lower() for name in os.environ}
    return not any(variable in names for variable in _PROXY_VARIABLES)
