"""Run the upstream ``exospherehost`` 0.0.3 Runtime with the benchmark's Work node.

Executed by the Python 3.12 interpreter of the upstream environment (see ``_upstream.py``) from
the checkout, never imported by the benchmarks themselves. Usage::

    python -m benchmarks._upstream_runner URI KEY NAMESPACE BATCH_SIZE WORKERS POLL_INTERVAL

It registers ``Work`` with the models of ``_work_shape`` (``Inputs.i: str`` -> ``Outputs.o: str``,
as the exo_ref benchmark node does; that module needs only pydantic) and runs until killed:
upstream has no stop() (contract §8.4, §8.9 item 8). Logging is set to WARNING so that the figure
measures the SDK, not its per-state INFO lines.
"""

from __future__ import annotations

import os
import sys

from benchmarks import _work_shape


def main() -> None:
    os.environ.setdefault("EXOSPHERE_LOG_LEVEL", "WARNING")
    from exospherehost import BaseNode, Runtime  # type: ignore[import-not-found,unused-ignore]

    uri, key, namespace, batch_size, workers, poll_interval = sys.argv[1:7]

    class Work(BaseNode):  # type: ignore[misc,unused-ignore]
        Inputs = _work_shape.Inputs
        Outputs = _work_shape.Outputs
        Secrets = _work_shape.Secrets

        async def execute(self) -> _work_shape.Outputs:
            return self.Outputs(o="done")

    runtime = Runtime(
        namespace=namespace,
        name="upstream-bench",
        nodes=[Work],
        state_manager_uri=uri,
        key=key,
        batch_size=int(batch_size),
        workers=int(workers),
        poll_interval=float(poll_interval),  # annotated int upstream; floats work (§8.9 item 12)
    )
    runtime.start()


if __name__ == "__main__":
    main()
