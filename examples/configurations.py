"""Batch size, workers and poll interval for four kinds of workload.

The "Runtime Configuration Best Practices" examples of the upstream "Create Runtime" page with
only the import changed. On the page each one ends in ``.start()``, which blocks, so here you pick
one by name::

    python examples/configurations.py cpu        # or gpu, realtime, batch
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from basic import MyNode  # the page defines MyNode once, in its first example

from exo_ref import Runtime


def cpu_runtime(**options: Any) -> Runtime:
    # For CPU-intensive tasks
    return Runtime(
        namespace="MyProject",
        name="CPU",
        nodes=[MyNode],
        batch_size=8,    # Smaller batches
        workers=2,       # Fewer workers
        **options,
    )


def gpu_runtime(**options: Any) -> Runtime:
    # For GPU-intensive tasks
    return Runtime(
        namespace="MyProject",
        name="GPU",
        nodes=[MyNode],
        batch_size=32,   # Larger batches
        workers=16,      # More workers
        **options,
    )


def realtime_runtime(**options: Any) -> Runtime:
    # For real-time processing
    return Runtime(
        namespace="MyProject",
        name="RealTime",
        nodes=[MyNode],
        poll_interval=1,  # Poll every second
        **options,
    )


def batch_runtime(**options: Any) -> Runtime:
    # For batch processing
    return Runtime(
        namespace="MyProject",
        name="Batch",
        nodes=[MyNode],
        poll_interval=10,  # Poll every 10 seconds
        **options,
    )


RUNTIMES: dict[str, Callable[..., Runtime]] = {
    "cpu": cpu_runtime,
    "gpu": gpu_runtime,
    "realtime": realtime_runtime,
    "batch": batch_runtime,
}


if __name__ == "__main__":
    choice = sys.argv[1] if len(sys.argv) > 1 else ""
    if choice not in RUNTIMES:
        sys.exit(f"usage: python {sys.argv[0]} {{{'|'.join(RUNTIMES)}}}")
    RUNTIMES[choice]().start()
