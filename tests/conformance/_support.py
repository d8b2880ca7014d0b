"""Helpers shared by the conformance test modules."""

from __future__ import annotations

from hypothesis import settings

__all__ = ["examples"]


def examples(n: int) -> int:
    """``n`` examples under the default (ci) profile; proportionally more under "thorough"."""
    current = settings.default
    configured = current.max_examples if current is not None else 25
    return max(n, n * configured // 25)
