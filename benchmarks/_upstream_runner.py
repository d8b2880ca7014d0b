"""Run the upstream ``exospherehost`` 0.0.3 Runtime with the benchmark's Work node.

Executed by the Python 3.12 interpreter of the upstream environment (see ``_upstream.py``), never
imported by the benchmarks themselves. Usage::

    python _upstream_runner.py URI KEY NAMESPACE BATCH_SIZE WORKERS POLL_INTERVAL

It registers ``Work`` (``Inputs.i: str`` -> ``Outputs.o: str``, the same shapes as the exo_ref
benchmark node) and runs until killed: upstream has no stop() (contract §8.4, §8.9 item 8).
Logging is set to WARNING so that the figure measures the SDK, not its per-state INFO lines.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("EXOSPHERE_LOG_LEVEL", "WARNING")
    from exospherehost import BaseNode, Runtime  # type: ignore[import-not-found,unused-ignore]
    from pydantic import BaseModel

    uri, key, namespace, batch_size, workers, poll_interval = sys.argv[1:7]

    class Work(BaseNode):  # type: ignore[misc,unused-ignore]
        class Inputs(BaseModel):
            i: str

        class Outputs(BaseModel):
            o: str

        class Secrets(BaseModel):
            pass

        async def execute(self) -> Outputs:
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
