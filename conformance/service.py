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
run the very same nodes: each node's behaviour is written here, its name and fields are taken
from the catalogue. It imports nothing else from ``conformance`` but the catalogue, so it runs
where only the SDK (and pydantic) is installed.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType, new_class
from typing import Any

from pydantic import BaseModel, create_model

from conformance._catalogue import CATALOGUE, INVALID_NODE, NodeSpec, secret_digest

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


def _model(name: str, fields: Sequence[str], field_types: Mapping[str, type]) -> type[BaseModel]:
    definitions: dict[str, Any] = {f: (field_types.get(f, str), ...) for f in fields}
    return create_model(name, **definitions)


def _node_class(
    base: type[Any],
    spec: NodeSpec,
    behaviour: Callable[[Any], Any],
    field_types: Mapping[str, type] | None = None,
) -> type[Any]:
    """``spec`` as a subclass of ``base``: its models made from the spec's field names (every one
    a string unless ``field_types`` says otherwise), its ``execute`` recorded around ``behaviour``.

    The catalogue stays the only place a node's fields are named, so the source cannot drift
    from the spec the judges derive every expected report from.
    """
    body: dict[str, Any] = {}
    models = (("Inputs", spec.inputs), ("Outputs", spec.outputs), ("Secrets", spec.secrets))
    for model, fields in models:
        if fields:  # none: the base's empty model, as for a node that declares none
            body[model] = _model(model, fields, field_types or {})

    def execute_sync(self: Any) -> Any:
        with _recorded(spec.name, self.inputs.case):
            return behaviour(self)

    async def execute_async(self: Any) -> Any:
        with _recorded(spec.name, self.inputs.case):
            return await behaviour(self)

    execute: Callable[[Any], Any] = execute_sync if spec.sync else execute_async
    execute.__name__ = "execute"
    execute.__qualname__ = f"{spec.name}.execute"
    body["execute"] = execute
    return new_class(spec.name, (base,), exec_body=lambda ns: ns.update(body))


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

    async def echo(node: Any) -> Any:
        return node.Outputs(case=node.inputs.case, text=node.inputs.text)

    async def fan_out(node: Any) -> Any:
        case = node.inputs.case
        return [node.Outputs(case=case, index=str(i)) for i in range(int(node.inputs.count))]

    async def nothing(node: Any) -> Any:
        return None

    async def fail(node: Any) -> Any:
        raise RuntimeError(node.inputs.message)

    async def fail_times(node: Any) -> Any:
        case = node.inputs.case
        k = attempt("FailTimes", case)
        if k <= int(node.inputs.times):
            raise RuntimeError(f"attempt {k} of {case} fails")
        return node.Outputs(case=case, attempts=str(k))

    async def prune(node: Any) -> Any:
        raise prune_signal({"case": node.inputs.case})

    async def requeue(node: Any) -> Any:
        if attempt("Requeue", node.inputs.case) == 1:
            raise requeue_signal(timedelta(milliseconds=int(node.inputs.delay_ms)))
        return node.Outputs(case=node.inputs.case)

    async def sleep(node: Any) -> Any:
        await asyncio.sleep(float(node.inputs.seconds))
        return node.Outputs(case=node.inputs.case)

    def sync_block(node: Any) -> Any:  # the spec's one synchronous execute: it blocks a thread
        time.sleep(float(node.inputs.seconds))
        return node.Outputs(case=node.inputs.case)

    async def use_secret(node: Any) -> Any:
        return node.Outputs(case=node.inputs.case, digest=secret_digest(node.secrets.token))

    behaviours: dict[str, Callable[[Any], Any]] = {
        "Echo": echo,
        "FanOut": fan_out,
        "Nothing": nothing,
        "Fail": fail,
        "FailTimes": fail_times,
        "Prune": prune,
        "Requeue": requeue,
        "Sleep": sleep,
        "SyncBlock": sync_block,
        "UseSecret": use_secret,
    }
    nodes = [_node_class(base, spec, behaviours[spec.name]) for spec in CATALOGUE]
    if invalid:
        nodes.append(_node_class(base, INVALID_NODE, nothing, {"count": int}))
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
