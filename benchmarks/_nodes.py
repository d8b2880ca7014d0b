"""exo_ref node classes for the benchmarks.

Every drain node is named ``Work`` (the node name is the class name, contract §8.2) with the
models of ``_work_shape`` (``Inputs.i: str``, ``Outputs.o: str``), which the upstream runner
uses too, so one prepared fan-out can be drained by any of them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import anyio
from pydantic import BaseModel

from benchmarks import _work_shape
from exo_ref import BaseNode

HASH_BUFFER = bytes(range(256)) * (16 * 4096)  # 16 MiB: sha256 releases the GIL over it
SPIN_LOOPS = 200_000  # pure-Python CPU work per state, ~10-20 ms on a current core


def spin(loops: int) -> int:
    """Pure-Python CPU-bound work: holds the GIL throughout."""
    total = 0
    for k in range(loops):
        total += k * k % 7
    return total


class _WorkShape(BaseNode):
    """The shared shape of every ``Work`` node (abstract: subclasses define ``execute``)."""

    # Subclasses (not the shared classes themselves) so that they override BaseNode's own.
    class Inputs(_work_shape.Inputs):
        """``i: str``."""

    class Outputs(_work_shape.Outputs):
        """``o: str``."""

    class Secrets(_work_shape.Secrets):
        """None."""


def work_node(kind: str) -> type[BaseNode]:
    """A ``Work`` node class; ``kind`` picks what ``execute`` does.

    - ``async``: returns at once (the trivial state of the drain benchmarks);
    - ``sha256``: a sync node hashing ``HASH_BUFFER`` (releases the GIL);
    - ``python``: a sync node running :func:`spin` (holds the GIL).
    """
    if kind == "async":

        class Work(_WorkShape):
            async def execute(self) -> Any:
                return self.Outputs(o="done")

        return Work
    if kind == "sha256":

        class Work(_WorkShape):  # type: ignore[no-redef]
            def execute(self) -> Any:
                return self.Outputs(o=hashlib.sha256(HASH_BUFFER).hexdigest())

        return Work
    if kind == "python":

        class Work(_WorkShape):  # type: ignore[no-redef]
            def execute(self) -> Any:
                return self.Outputs(o=str(spin(SPIN_LOOPS)))

        return Work
    raise ValueError(f"unknown Work kind {kind!r}: use async, sha256 or python")


class StallProbe:
    """Records when states start and end, for the sync-node poll-spacing measurement."""

    def __init__(self) -> None:
        self.long_start: float | None = None
        self.long_end: float | None = None
        self.quick_reports: list[float] = []


def stall_node(probe: StallProbe, long_seconds: float) -> type[BaseNode]:
    """A sync ``Work`` node: input ``"0"`` spins in pure Python for ``long_seconds``; others
    return at once. Used to check that one GIL-holding state does not stall polling or the
    other workers."""

    class Work(_WorkShape):
        def execute(self) -> Any:
            if self.inputs.i == "0":
                probe.long_start = time.time()
                deadline = time.perf_counter() + long_seconds
                while time.perf_counter() < deadline:
                    spin(2_000)
                probe.long_end = time.time()
            else:
                probe.quick_reports.append(time.time())
            return self.Outputs(o="done")

    return Work


class LatencyProbe:
    """Maps a sample id to the moment its state started executing."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.events: dict[str, anyio.Event] = {}

    def expect(self, sample: str) -> anyio.Event:
        self.events[sample] = anyio.Event()
        return self.events[sample]


def probe_node(probe: LatencyProbe) -> type[BaseNode]:
    """An async ``Probe`` node recording its execution start (input ``k`` names the sample)."""

    class Probe(BaseNode):
        class Inputs(BaseModel):
            k: str

        class Outputs(BaseModel):
            pass

        class Secrets(BaseModel):
            pass

        async def execute(self) -> Any:
            probe.started[self.inputs.k] = time.time()
            event = probe.events.get(self.inputs.k)
            if event is not None:
                event.set()
            return None

    return Probe
