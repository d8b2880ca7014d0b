"""Run a runtime in a background thread, as the upstream page suggests for notebooks.

``Runtime.start()`` blocks, so the page starts it in a daemon thread. exo_ref adds what the page
could not show: ``runtime.stop()`` (safe from any thread) ends it gracefully, and the thread can
be joined. Meanwhile this thread upserts a graph, triggers it and waits for the run::

    python examples/background_thread.py
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import anyio
from basic import create_runtime
from trigger import run_graph_once


def main(**options: Any) -> Mapping[str, Any]:
    """Start the basic runtime in a thread, run the basic graph once, stop the runtime.

    ``options`` go to ``Runtime`` (the test passes a short ``poll_interval``).
    """
    runtime = create_runtime(**options)

    def run_runtime() -> None:
        runtime.start()

    thread = threading.Thread(target=run_runtime, daemon=True)
    thread.start()
    try:
        return anyio.run(run_graph_once, "basic")
    finally:
        runtime.stop()  # graceful: running states finish and are reported first
        thread.join()


if __name__ == "__main__":
    print(main())
