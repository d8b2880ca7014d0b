"""Helpers shared by the conformance test modules."""

from __future__ import annotations

from hypothesis import settings

__all__ = ["examples"]


def examples(n: int) -> int:
    """``n`` examples under the default (ci) profile; proportionally more under "thorough"."""
    return max(n, n * settings.default.max_examples // 25)
