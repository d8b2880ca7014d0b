"""The test service for SDKs with the ``exospherehost`` API: the catalogue's nodes and a runner.

``python -m conformance.service --sdk exo_ref`` (or ``--sdk exospherehost``) starts that SDK's
``Runtime`` serving every node of :data:`conformance._catalogue.CATALOGUE`, configured from the
environment the conformance suite sets (``docs/conformance.md``, "Environment"):

==================================  ==========================================================
``EXOSPHERE_STATE_MANAGER_URI``     the state manager (the SDK reads it itself)
``EXOSPHERE_API_KEY``               its key (the SDK reads it itself)
``EXO_CONFORMANCE_NAMESPACE``       the namespace to register in and claim from
``EXO_CONFORMANCE_RUNTIME_NAME``    the runtime's name
``EXO_CONFORMANCE_BATCH_SIZE``      ``batch_size``
``EXO_CONFORMANCE_WORKERS``         ``workers``
``EXO_CONFORMANCE_POLL_INTERVAL``   ``poll_interval`` (seconds, a float)
``EXO_CONFORMANCE_RECORD``          the JSON-lines file every execution appends to
``EXO_CONFORMANCE_INVALID_NODE``    ``1``: also serve ``BrokenNode``, which must be refused
==================================  ==========================================================

The node source is written once against the names both packages export (``BaseNode``,
``PruneSignal``, ``ReQueueAfterSignal``) and built for the package given, so upstream and exo_ref
run the very same nodes. It imports nothing else from ``conformance`` but the catalogue, so it
runs where only the SDK (and pydantic) is installed.

``--runtime-class MODULE:NAME`` serves with another ``Runtime`` (a subclass, e.g. a conformance
mutant from ``tests/conformance/mutants.py``) built with the same arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from conformance._catalogue import INVALID_NODE, node_spec, secret_digest

__all__ = ["ENV", "build_nodes", "main"]

#: The environment variables of the service (besides the SDK's own URI and key).
ENV = {
    "namespace": "EXO_CONFORMANCE_NAMESPACE",
    "runtime_name": "EXO_CONFORMANCE_RUNTIME_NAME",
    "batch_size": "EXO_CONFORMANCE_BATCH_SIZE",
    "workers": "EXO_CONFORMANCE_WORKERS",
    "poll_interval": "EXO_CONFORMANCE_POLL_INTERVAL",
    "record": "EXO_CONFORMANCE_RECORD",
    "invalid_node": "EXO_CONFORMANCE_INVALID_NODE",
}

SDKS = ("exo_ref", "exospherehost")

_write_lock = threading.Lock()


def _record(event: dict[str, Any]) -> None:
    """Append one JSON line to the record file (one ``write`` per line, so lines never mix)."""
    path = os.environ.get(ENV["record"])
    if not path:
        return
    line = json.dumps(event, separators=(",", ":")) + "\n"
    with _write_lock, open(path, "a", encoding="utf-8") as out:
        out.write(line)


@contextmanager
def _recorded(node: str, case: str) -> Iterator[None]:
    """Record the start and the end (returned or raised) of one execution."""
    execution = uuid.uuid4().hex
    base = {"node": node, "case": case, "execution": execution}
    _record({"event": "start", **base, "time": time.time()})
    try:
        yield
    except BaseException:
        _record({"event": "end", **base, "time": time.time(), "outcome": "raised"})
        raise
    _record({"event": "end", **base, "time": time.time(), "outcome": "returned"})


def build_nodes(sdk: ModuleType, *, invalid: bool = False) -> list[type[Any]]:
    """The catalogue's node classes, subclassing ``sdk.BaseNode``, in catalogue order.

    ``sdk`` is ``exo_ref`` or ``exospherehost`` (or any module with the same three names).
    ``invalid`` appends ``BrokenNode`` (an ``int`` input), which a runtime must refuse.
    """
    base: Any = sdk.BaseNode
    prune_signal: Any = sdk.PruneSignal
    requeue_signal: Any = sdk.ReQueueAfterSignal
    # Per-process execution counts for FailTimes and Requeue (their spec counts in the process).
    counts: Counter[tuple[str, str]] = Counter()
    counts_lock = threading.Lock()

    def attempt(node: str, case: str) -> int:
        with counts_lock:
            counts[(node, case)] += 1
            return counts[(node, case)]

    class Echo(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str
            text: str

        class Outputs(BaseModel):
            case: str
            text: str

        async def execute(self) -> Any:
            with _recorded("Echo", self.inputs.case):
                return self.Outputs(case=self.inputs.case, text=self.inputs.text)

    class FanOut(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str
            count: str

        class Outputs(BaseModel):
            case: str
            index: str

        async def execute(self) -> Any:
            with _recorded("FanOut", self.inputs.case):
                case = self.inputs.case
                return [
                    self.Outputs(case=case, index=str(i)) for i in range(int(self.inputs.count))
                ]

    class Nothing(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str

        async def execute(self) -> Any:
            with _recorded("Nothing", self.inputs.case):
                return None

    class Fail(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str
            message: str

        class Outputs(BaseModel):
            case: str

        async def execute(self) -> Any:
            with _recorded("Fail", self.inputs.case):
                raise RuntimeError(self.inputs.message)

    class FailTimes(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str
            times: str

        class Outputs(BaseModel):
            case: str
            attempts: str

        async def execute(self) -> Any:
            case = self.inputs.case
            with _recorded("FailTimes", case):
                k = attempt("FailTimes", case)
                if k <= int(self.inputs.times):
                    raise RuntimeError(f"attempt {k} of {case} fails")
                return self.Outputs(case=case, attempts=str(k))

    class Prune(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str

        class Outputs(BaseModel):
            case: str

        async def execute(self) -> Any:
            with _recorded("Prune", self.inputs.case):
                raise prune_signal({"case": self.inputs.case})

    class Requeue(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str
            delay_ms: str

        class Outputs(BaseModel):
            case: str

        async def execute(self) -> Any:
            case = self.inputs.case
            with _recorded("Requeue", case):
                if attempt("Requeue", case) == 1:
                    raise requeue_signal(timedelta(milliseconds=int(self.inputs.delay_ms)))
                return self.Outputs(case=case)

    class Sleep(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str
            seconds: str

        class Outputs(BaseModel):
            case: str

        async def execute(self) -> Any:
            with _recorded("Sleep", self.inputs.case):
                await asyncio.sleep(float(self.inputs.seconds))
                return self.Outputs(case=self.inputs.case)

    class SyncBlock(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str
            seconds: str

        class Outputs(BaseModel):
            case: str

        def execute(self) -> Any:
            with _recorded("SyncBlock", self.inputs.case):
                time.sleep(float(self.inputs.seconds))
                return self.Outputs(case=self.inputs.case)

    class UseSecret(base):  # type: ignore[misc]
        class Inputs(BaseModel):
            case: str

        class Outputs(BaseModel):
            case: str
            digest: str

        class Secrets(BaseModel):
            token: str

        async def execute(self) -> Any:
            with _recorded("UseSecret", self.inputs.case):
                digest = secret_digest(self.secrets.token)
                return self.Outputs(case=self.inputs.case, digest=digest)

    nodes: list[type[Any]] = [
        Echo,
        FanOut,
        Nothing,
        Fail,
        FailTimes,
        Prune,
        Requeue,
        Sleep,
        SyncBlock,
        UseSecret,
    ]
    for node in nodes:  # the spec and the source must agree (a typo here would blame the SDK)
        spec = node_spec(node.__name__)
        fields = tuple(
            tuple(model.model_fields) for model in (node.Inputs, node.Outputs, node.Secrets)
        )
        if fields != (spec.inputs, spec.outputs, spec.secrets):
            raise RuntimeError(f"conformance.service: {node.__name__} disagrees with its spec")
    if invalid:

        class BrokenNode(base):  # type: ignore[misc]
            class Inputs(BaseModel):
                case: str
                count: int

            class Outputs(BaseModel):
                case: str

            async def execute(self) -> Any:
                return None

        BrokenNode.__name__ = BrokenNode.__qualname__ = INVALID_NODE.name
        nodes.append(BrokenNode)
    return nodes


def _runtime_class(sdk: ModuleType, spec: str | None) -> Any:
    if spec is None:
        return sdk.Runtime
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--runtime-class wants MODULE:NAME, got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"conformance.service: set {name} (the conformance suite does)")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, build the runtime from the environment, and run it until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m conformance.service",
        description="Serve the conformance catalogue's nodes with an exospherehost-API SDK.",
    )
    parser.add_argument("--sdk", choices=SDKS, required=True, help="the package to serve with")
    parser.add_argument(
        "--runtime-class",
        metavar="MODULE:NAME",
        help="a Runtime class to use instead of the SDK's (e.g. a conformance mutant)",
    )
    args = parser.parse_args(argv)
    sdk = importlib.import_module(args.sdk)
    nodes = build_nodes(sdk, invalid=os.environ.get(ENV["invalid_node"]) == "1")
    runtime_class = _runtime_class(sdk, args.runtime_class)
    runtime = runtime_class(
        namespace=_required(ENV["namespace"]),
        name=_required(ENV["runtime_name"]),
        nodes=nodes,
        batch_size=int(_required(ENV["batch_size"])),
        workers=int(_required(ENV["workers"])),
        poll_interval=float(_required(ENV["poll_interval"])),
    )
    # Both SDKs block here until the process is stopped: exo_ref stops gracefully on SIGTERM,
    # upstream has no shutdown (contract §8.4) and dies of the signal's default action.
    runtime.start()


if __name__ == "__main__":
    main()
