"""The README's "Testing with the in-process fake" sample runs as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/exo_ref/test_readme.py runs the next code block -->"


def readme_sample() -> str:
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, "the README lost the marked code block this test runs"
    after = text.split(MARKER, 1)[1]
    opening = "```python\n"
    assert after.lstrip("\n").startswith(opening)
    body = after.split(opening, 1)[1]
    return body.split("\n```", 1)[0]


async def test_readme_fake_sample_passes() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_sample"}
    exec(compile(readme_sample(), str(README), "exec"), namespace)
    await namespace["test_greet_graph"]()
