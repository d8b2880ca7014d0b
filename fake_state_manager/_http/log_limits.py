"""A log one client cannot flood: at most a few lines per kind of event per time window.

The dev server logs what a careless or hostile client does (a disconnect mid-upload, a request
that never completes, a malformed request line) as one quiet line each. Without a bound, a
client that does it in a loop writes the log as fast as it can open connections and buries
everything else; with one, the log keeps a sample and says how many similar lines it dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitFilter"]


class RateLimitFilter(logging.Filter):
    """Let through at most ``burst`` records per message template and ``window`` seconds.

    Records are grouped by logger name and unformatted message (``record.msg``), so "client went
    away during %s %s" is one kind whatever the path. The first record let through after a window
    with drops carries the count, so nothing is dropped silently. Records of level ERROR and above
    always pass: a bug in the server must never be hidden by a noisy client.

    Args:
        burst: records of one kind let through per window.
        window: the window length in seconds.
        now: monotonic time source (tests inject one).
    """

    def __init__(
        self,
        *,
        burst: int = 5,
        window: float = 60.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if burst < 1 or window <= 0:
            raise ValueError(f"burst must be >= 1 and window > 0, got {burst}, {window}")
        self.burst = burst
        self.window = window
        self._now = now
        # kind -> [window start, records let through in it, records dropped since last pass]
        self._kinds: dict[tuple[str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        kind = (record.name, str(record.msg))
        now = self._now()
        entry = self._kinds.get(kind)
        if entry is None or now - entry[0] >= self.window:
            dropped = 0 if entry is None else int(entry[2])
            entry = [now, 0.0, float(dropped)]
            self._kinds[kind] = entry
            if len(self._kinds) > 1024:  # kinds are message templates: bounded in practice
                self._kinds = {kind: entry}
        if entry[1] >= self.burst:
            entry[2] += 1
            return False
        entry[1] += 1
        dropped = int(entry[2])
        if dropped:
            entry[2] = 0
            record.msg = f"{record.getMessage()} ({dropped} similar lines suppressed)"
            record.args = None
        return True
