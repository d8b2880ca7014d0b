"""exo_ref's pytest plugin: the ``exo_env`` fixture and its markers.

Registered through the ``pytest11`` entry point, so installing exo-ref is enough: no
``pytest_plugins`` line, no conftest. It imports only pytest at load time (exo_ref.testing and
the fake are imported by the fixture), so a session that never uses ``exo_env`` pays nothing.

``exo_env`` is an async fixture run by anyio's pytest plugin (installed with anyio): it asks for
the ``anyio_backend`` fixture, so it runs on whatever backend the test runs on, asyncio or trio.
Without anyio's plugin (``-p no:anyio``, or a project on pytest-asyncio) a fallback
``anyio_backend`` fixture keeps the fixture resolvable and the async plugin in charge runs it.

Markers (per test, class or module):

* ``@pytest.mark.exo_clock(real=False, auto_advance=True, start=None)``: the environment's clock.
  Default: a ManualClock that jumps whenever every task waits. ``auto_advance=False``: a
  ManualClock you move with ``exo_env.clock.advance(...)``. ``real=True``: the system clock.
* ``@pytest.mark.exo_env(**options)``: other :class:`exo_ref.testing.ExoEnv` arguments
  (``namespace=``, ``seed=``, ``stuck_grace=``, ``timeout=``, ``api_key=``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from exo_ref.testing import ExoEnv

__all__ = ["exo_env", "pytest_configure"]

_CLOCK_OPTIONS = frozenset({"real", "auto_advance", "start"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "exo_clock(real=False, auto_advance=True, start=None): the clock of the exo_env fixture "
        "(default: a ManualClock that jumps whenever every task waits)",
    )
    config.addinivalue_line(
        "markers",
        "exo_env(**options): keyword arguments for exo_ref.testing.ExoEnv in the exo_env fixture "
        "(namespace=, seed=, stuck_grace=, timeout=, api_key=)",
    )
    if not config.pluginmanager.has_plugin("anyio"):
        config.pluginmanager.register(_AnyioBackendFallback(), "exo_ref-anyio-backend-fallback")


class _AnyioBackendFallback:
    """``anyio_backend`` when anyio's plugin is not loaded: exo_env asks for it by name."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"


def _env_options(node: pytest.Item) -> dict[str, Any]:
    """ExoEnv arguments from the closest ``exo_env`` and ``exo_clock`` markers."""
    options: dict[str, Any] = {}
    env_marker = node.get_closest_marker("exo_env")
    if env_marker is not None:
        if env_marker.args:
            _misused("@pytest.mark.exo_env takes keyword arguments only")
        options.update(env_marker.kwargs)
    clock_marker = node.get_closest_marker("exo_clock")
    if clock_marker is not None:
        if "clock" in options:
            _misused("use either @pytest.mark.exo_clock or exo_env(clock=...)")
        options["clock"] = _clock(clock_marker)
    return options


def _misused(message: str) -> NoReturn:
    # A failed setup with just the message: the traceback would only show this plugin.
    pytest.fail(message, pytrace=False)


def _clock(marker: pytest.Mark) -> Any:
    from exo_ref import ManualClock, SystemClock

    unknown = sorted(set(marker.kwargs) - _CLOCK_OPTIONS)
    if marker.args or unknown:
        _misused(
            f"@pytest.mark.exo_clock takes real=, auto_advance= and start= (got "
            f"{list(marker.args) + unknown})"
        )
    if marker.kwargs.get("real", False):
        if len(marker.kwargs) > 1:
            _misused("@pytest.mark.exo_clock(real=True) takes no other option")
        return SystemClock()
    auto_advance = bool(marker.kwargs.get("auto_advance", True))
    start = marker.kwargs.get("start")
    if auto_advance:
        return None if start is None else _auto_clock(float(start))
    return ManualClock(auto_advance=False) if start is None else ManualClock(float(start))


def _auto_clock(start: float) -> Any:
    # The environment's own clock class (it counts sleepers for the stuck check).
    from exo_ref.testing import _EnvClock

    return _EnvClock(start, auto_advance=True)


@pytest.fixture
async def exo_env(request: pytest.FixtureRequest, anyio_backend: Any) -> AsyncIterator[ExoEnv]:
    """An entered :class:`exo_ref.testing.ExoEnv`: the in-process fake on a virtual clock.

    Start runtimes with ``await exo_env.start_runtime(NodeA, NodeB)``; they are stopped when
    the test ends. See the ``exo_clock`` / ``exo_env`` markers for the clock and options.
    """
    from exo_ref.testing import ExoEnv

    async with ExoEnv(**_env_options(request.node)) as env:
        yield env
