"""Fail ``tox -e fresh`` unless the user's test passed on both backends (``--junitxml`` report).

pytest's exit status alone is not enough: a run that collected nothing, or whose tests were
skipped, exits without a failure. A missing plugin shows here as an error ("fixture 'exo_env'
not found": the ``pytest11`` entry point did not load it). Usage: ``python check_junit.py
junit.xml``.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

EXPECTED_BACKENDS = ("asyncio", "trio")


def main(report: str) -> int:
    passed, problems = [], []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "?")
        outcomes = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        if outcomes:
            problems.append(f"{name}: {outcomes[0]}")
        else:
            passed.append(name)
    missing = [b for b in EXPECTED_BACKENDS if not any(n.endswith(f"[{b}]") for n in passed)]
    if problems or missing or len(passed) < len(EXPECTED_BACKENDS):
        print(f"fresh venv: passed {passed}; not passed {problems}; no pass on {missing}")
        return 1
    print(f"fresh venv: {len(passed)} passed ({', '.join(passed)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
