"""The README's "Testing with the in-process fake" sample runs as written."""

from __future__ import annotations

from typing import Any

from .helpers import README, readme_block


async def test_readme_fake_sample_passes() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_sample"}
    exec(compile(readme_block("tests/exo_ref/test_readme.py"), str(README), "exec"), namespace)
    await namespace["test_greet_graph"]()
