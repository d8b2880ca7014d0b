"""The curated public API of exo_ref (contract §8 names, plus additions)."""

from __future__ import annotations

import importlib.metadata

import exo_ref

UPSTREAM_NAMES = {
    "Runtime", "BaseNode", "StateManager", "PruneSignal", "ReQueueAfterSignal",
    "UnitesStrategyEnum", "UnitesModel", "GraphNodeModel", "RetryStrategyEnum",
    "RetryPolicyModel", "StoreConfigModel", "CronTrigger", "VERSION", "__version__",
}
ADDITIONS = {
    "AuthenticationError", "Backoff", "Clock", "ConfigurationError", "ExoRefError",
    "GraphValidationError", "InvalidResponseError", "ManualClock", "NodeValidationError",
    "RegistrationError", "RuntimeAlreadyRunningError", "StateManagerError",
    "StateManagerTLSError", "StateManagerTimeoutError", "StateManagerUnavailableError",
    "SystemClock", "WaitTimeoutError",
    # Response shapes of the StateManager calls (TypedDicts: plain dicts at run time) and the
    # values of their status fields (Literal types).
    "GraphTemplate", "GraphTemplateList", "ManualRetryResponse", "NodeDetails", "NodeList",
    "RegisteredNode", "RunGraph", "RunGraphEdge", "RunGraphNode", "RunStatus", "RunSummary",
    "RunsPage", "StateStatus", "StoredGraphTemplate", "TriggerResponse", "ValidationStatus",
    # For clock wrappers (conformance's recording clock) and clients that want the runtime's
    # lean plain-HTTP transport (the benchmarks' floor).
    "Http11Transport", "hold_time",
    # The loop options Runtime.start uses (uvloop's where installed), for the fake's dev
    # server and for users who call anyio.run themselves.
    "event_loop_options",
}


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_exactly_the_curated_names() -> None:
    assert set(exo_ref.__all__) == UPSTREAM_NAMES | ADDITIONS
    assert len(exo_ref.__all__) == len(set(exo_ref.__all__))


def test_all_is_sorted() -> None:
    assert exo_ref.__all__ == sorted(exo_ref.__all__, key=_isort_key)


def test_every_public_name_resolves() -> None:
    for name in exo_ref.__all__:
        assert getattr(exo_ref, name) is not None, name


def test_version_matches_the_distribution() -> None:
    assert exo_ref.VERSION == exo_ref.__version__ == importlib.metadata.version("exo-ref")


def test_errors_share_one_root_and_meaningful_bases() -> None:
    assert issubclass(exo_ref.ConfigurationError, ValueError)
    assert issubclass(exo_ref.NodeValidationError, exo_ref.ConfigurationError)
    assert issubclass(exo_ref.RuntimeAlreadyRunningError, RuntimeError)
    assert issubclass(exo_ref.StateManagerUnavailableError, ConnectionError)
    assert issubclass(exo_ref.StateManagerTimeoutError, TimeoutError)
    assert issubclass(exo_ref.AuthenticationError, PermissionError)
    for name in ADDITIONS:
        value = getattr(exo_ref, name)
        if isinstance(value, type) and name.endswith("Error"):
            assert issubclass(value, exo_ref.ExoRefError), name
