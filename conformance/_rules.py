"""How a violated rule is reported: one ``AssertionError`` naming the area and the rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from conformance._harness import Observation

__all__ = ["fail", "require_healthy_run"]


def fail(area: str, rule: str, message: str, obs: Observation | None = None) -> NoReturn:
    """Raise ``AssertionError("<area> rule <rule>: <message> [runtime ...]")``."""
    where = f" [runtime {obs.target.name!r}, {_settings(obs)}]" if obs is not None else ""
    raise AssertionError(f"{area} rule {rule}: {message}{where}")


def _settings(obs: Observation) -> str:
    s = obs.settings
    return f"batch_size={s.batch_size}, workers={s.workers}, poll_interval={s.poll_interval}"


def require_healthy_run(obs: Observation) -> None:
    """Rule L1/L2 (lifecycle): ``run()`` did not fail and returned after ``stop()``."""
    if obs.runtime_error is not None:
        error = obs.runtime_error
        fail("lifecycle", "L1", f"run() raised {type(error).__name__}: {error}", obs)
    if not obs.stopped_cleanly:
        fail("lifecycle", "L2", "run() did not return after stop()", obs)
