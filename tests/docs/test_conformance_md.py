"""docs/conformance.md's injected-mode example runs as written, in a user's project.

The example is the block the docs mark; ``pytester`` runs it as a test file of a fresh project
(no ini file, so nothing of this repository's pytest settings helps it), with the hypothesis
settings this session loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exo_ref.helpers import marked_block

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def test_the_injected_mode_example_passes_as_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_my_runtime=marked_block(DOC, "tests/docs/test_conformance_md.py"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error", "-v")
    result.assert_outcomes(passed=2)  # exo_ref's pytest plugin runs it on both backends
    result.stdout.fnmatch_lines(
        ["*test_my_runtime?asyncio? PASSED*", "*test_my_runtime?trio? PASSED*"]
    )
