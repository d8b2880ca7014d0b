"""exo_ref._config and exo_ref._logging: environment fallbacks, validation order, logging."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import httpx
import pytest

from exo_ref import ConfigurationError, Runtime
from exo_ref._config import MAX_BATCH_SIZE, RuntimeSettings, env_log_level, resolve_api_key
from exo_ref._logging import LOGGER_NAME, setup_default_logging

from .helpers import EchoNode

ENV_VARS = ("EXOSPHERE_STATE_MANAGER_URI", "EXOSPHERE_API_KEY", "EXOSPHERE_LOG_LEVEL",
            "EXOSPHERE_DISABLE_DEFAULT_LOGGING")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def build(**overrides: object) -> RuntimeSettings:
    args: dict[str, object] = dict(namespace="ns", name="rt", state_manager_uri="http://sm",
                                   key="k", batch_size=16, workers=4, state_manager_version="v0",
                                   poll_interval=1, grace_period=30.0, timeout=None)
    args.update(overrides)
    return RuntimeSettings.build(**args)  # type: ignore[arg-type]


def test_environment_fills_only_none_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOSPHERE_STATE_MANAGER_URI", "http://from-env:8000/")
    monkeypatch.setenv("EXOSPHERE_API_KEY", "env-key")
    settings = build(state_manager_uri=None, key=None)
    assert settings.state_manager_uri == "http://from-env:8000"  # trailing slash dropped
    assert settings.key == "env-key"
    assert build().key == "k"
    assert resolve_api_key("") == ""  # an empty argument is kept (and then refused)
    with pytest.raises(ConfigurationError, match="API key is not set"):
        build(key="")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"batch_size": 0, "workers": 0, "key": None},
                     "Batch size should be at least 1", id="batch-first"),
        pytest.param({"workers": 0, "state_manager_uri": None}, "Workers should be at least 1",
                     id="workers-second"),
        pytest.param({"state_manager_uri": None, "key": None}, "State manager URI is not set",
                     id="uri-third"),
        pytest.param({"key": None}, "API key is not set", id="key-fourth"),
        pytest.param({"poll_interval": 0}, "poll_interval must be a positive", id="poll"),
        pytest.param({"grace_period": -1.0}, "grace_period must be >= 0", id="grace"),
        pytest.param({"state_manager_uri": "sm:8000"}, "must start with http", id="scheme"),
        pytest.param({"batch_size": 1001}, "Batch size should be at most 1000, got 1001",
                     id="batch-bound"),
        # The bound is an addition: upstream's own checks come first.
        pytest.param({"batch_size": 5000, "workers": 0}, "Workers should be at least 1",
                     id="batch-bound-after-upstream-checks"),
    ],
)
def test_validation_follows_upstream_order(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**overrides)


def test_batch_size_is_bounded_by_what_a_poll_may_ask_for() -> None:
    assert MAX_BATCH_SIZE == 1000  # the fake refuses a larger enqueue batch_size (422)
    assert build(batch_size=MAX_BATCH_SIZE).batch_size == MAX_BATCH_SIZE
    with pytest.raises(ConfigurationError, match=r"at most 1000, got 1000000: .*unstarted"):
        Runtime("ns", "rt", [EchoNode], "http://sm", "k", batch_size=1_000_000)


def test_key_is_not_in_repr() -> None:
    settings = build(key="super-secret-key")
    assert "super-secret-key" not in repr(settings)
    assert isinstance(settings.timeout, httpx.Timeout)
    assert build(timeout=2.5).timeout == httpx.Timeout(2.5)


def test_runtime_accepts_upstream_misspelt_version_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="state_manage_version"):
        rt = Runtime("ns", "rt", [EchoNode], "http://sm", "k", state_manage_version="v1")
    assert rt.settings.state_manager_version == "v1"
    with (
        pytest.warns(DeprecationWarning, match="misspelling"),
        pytest.raises(ConfigurationError, match="only one"),
    ):
        Runtime("ns", "rt", [EchoNode], "http://sm", "k", state_manager_version="v2",
                state_manage_version="v1")


def test_runtime_positional_signature_matches_upstream() -> None:
    rt = Runtime("ns", "rt", [EchoNode], "http://sm", "k", 8, 2, "v9", 3)
    s = rt.settings
    assert (s.batch_size, s.workers, s.state_manager_version, s.poll_interval) == (8, 2, "v9", 3)
    assert "k" not in repr(rt).replace("rt", "")  # no key in the repr


def test_runtime_defaults_match_upstream() -> None:
    s = Runtime("ns", "rt", [EchoNode], "http://sm", "k").settings
    assert (s.batch_size, s.workers, s.state_manager_version, s.poll_interval) == (16, 4, "v0", 1)
    assert s.grace_period == 30.0  # addition: keyword-only, configurable


@pytest.mark.parametrize(
    ("value", "level"),
    [("DEBUG", logging.DEBUG), ("warning", logging.WARNING), ("nonsense", logging.INFO),
     ("", logging.INFO)],
)
def test_log_level_from_environment(monkeypatch: pytest.MonkeyPatch, value: str,
                                    level: int) -> None:
    monkeypatch.setenv("EXOSPHERE_LOG_LEVEL", value)
    assert env_log_level() == level


@contextlib.contextmanager
def bare_logging() -> Iterator[logging.Logger]:
    """No handlers on the root or exo_ref loggers (pytest adds some during each test call)."""
    root, ours = logging.getLogger(), logging.getLogger(LOGGER_NAME)
    saved = (root.handlers[:], ours.handlers[:], ours.level, root.level)
    root.handlers.clear()
    ours.handlers.clear()
    yield ours
    root.handlers[:], ours.handlers[:] = saved[0], saved[1]
    ours.setLevel(saved[2])
    root.setLevel(saved[3])


def test_default_logging_configures_only_our_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOSPHERE_LOG_LEVEL", "WARNING")
    with bare_logging() as ours:
        assert setup_default_logging()
        assert len(ours.handlers) == 1
        assert ours.level == logging.WARNING
        assert logging.getLogger().handlers == []  # the root logger is untouched
        assert not setup_default_logging()  # idempotent


@pytest.mark.parametrize("value", ["1", "0", "yes"])
def test_any_non_empty_disable_value_disables_default_logging(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EXOSPHERE_DISABLE_DEFAULT_LOGGING", value)
    with bare_logging() as ours:
        assert not setup_default_logging()
        assert ours.handlers == []


def test_configured_root_logger_is_respected() -> None:
    with bare_logging() as ours:
        logging.getLogger().addHandler(logging.NullHandler())
        assert not setup_default_logging()
        assert ours.handlers == []


def test_the_transport_is_chosen_here_from_the_uri_and_the_proxy_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert build(state_manager_uri="http://sm:8000").lean_transport
    assert not build(state_manager_uri="https://sm:8000").lean_transport
    monkeypatch.setenv("ALL_PROXY", "http://proxy:3128")
    assert not build(state_manager_uri="http://sm:8000").lean_transport
