"""The upstream SDK (``exospherehost`` 0.0.3) against the black-box battery (``tox -e upstream``).

``python -m conformance run --sdk exospherehost`` must exit non-zero and name exactly the rules
upstream breaks; docs/conformance.md publishes the same findings with their evidence, and each
is a defect the contract records (docs/contract.md §8.5, §8.6, §8.9):

- B2: its queue holds up to ``2 * batch_size - 1`` claimed, unstarted states (§8.5, §8.9 item 7);
- W3: a synchronous ``execute`` runs on the event loop and stalls everything (§8.9 item 9);
- T2: it sleeps ``poll_interval`` even after a full poll (§8.9 item 6);
- T3: it waits a constant ``2 * poll_interval`` after every poll error (§8.5);
- E1: a plain ``def execute`` is awaited, so its result errors (§8.1);
- E2: a report answered 5xx is logged and never retried: the state stays QUEUED (§8.9 item 2);
- E3: an executed report answered with an HTML error page becomes an errored report (§8.9 item 4);
- L1: a failed prune signal kills the worker and, under ``asyncio.run``, the process (§8.9 item 3).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The rules exospherehost 0.0.3 breaks in the black-box battery.
UPSTREAM_BREAKS = {"B2", "W3", "T2", "T3", "E1", "E2", "E3", "L1"}


def test_upstream_breaks_the_rules_its_defects_predict(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--sdk", "exospherehost", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard: the battery takes well under a minute
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert set(report["failed"]) == UPSTREAM_BREAKS, report["failed"]
    for rule in UPSTREAM_BREAKS:
        assert rule in result.stdout
    reasons = {r["rule"]: r["reason"] for r in report["rules"]}
    assert "claimed-but-unstarted" in reasons["B2"]
    assert "Failed to send prune signal" in reasons["L1"]
    assert "can't be used in 'await' expression" in reasons["E1"]
