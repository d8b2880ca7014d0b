"""The ``exo-ref`` command (console script ``exo_ref._cli:main``).

Subcommands:

* ``demo``: the main job. Starts the fake state manager in-process, runs a runtime with example
  nodes, triggers a graph that fans out and fans in, prints progress and the run summary, stops
  the runtime gracefully. Exits 0 when the run succeeded, 1 when it failed, 2 on usage errors.
* ``runs``, ``run``, ``retry``, ``graph``: inspect any state manager (exo_ref/_inspect.py), from
  ``--uri`` / ``--key`` or ``EXOSPHERE_STATE_MANAGER_URI`` / ``EXOSPHERE_API_KEY``; ``--json`` on
  each. Exit 0, 1 after a one-line message on stderr, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import TextIO

import httpx

from ._config import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS
from ._demo import DEFAULT_FAN_OUT, DemoOptions, run_demo
from ._errors import ExoRefError
from ._inspect import COMMANDS as INSPECT_COMMANDS
from ._inspect import add_commands as add_inspect_commands
from ._inspect import run_command as run_inspect_command
from ._version import VERSION

__all__ = ["build_parser", "main"]


def _int_at_least(minimum: int, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(1, text)


def _non_negative_int(text: str) -> int:
    return _int_at_least(0, text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exo-ref",
        description="exo-ref: an Exosphere runtime SDK with a faithful fake state manager.",
    )
    parser.add_argument("--version", action="version", version=f"exo-ref {VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a fan-out/fan-in graph on an in-process state manager",
        description=(
            "Start the fake state manager in this process (no sockets), run a runtime with "
            "example nodes, trigger prepare -> split (fan-out) -> work -> merge (unites: "
            "prepare), print progress and the run summary, then stop the runtime gracefully."
        ),
    )
    demo.add_argument("--fan-out", type=_positive_int, default=DEFAULT_FAN_OUT,
                      metavar="N", help="items the split node fans out to (default: %(default)s)")
    demo.add_argument("--workers", type=_positive_int, default=DEFAULT_WORKERS,
                      help="runtime workers (default: %(default)s)")
    demo.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                      help="runtime batch size (default: %(default)s)")
    demo.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio",
                      help="event loop (default: %(default)s)")
    demo.add_argument("--fail-item", type=_non_negative_int, default=None, metavar="K",
                      help="make the work on item K fail (retried twice), to see a FAILED run")
    demo.add_argument("--verbose", action="store_true", help="show the runtime's INFO logs")
    add_inspect_commands(commands, _positive_int)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    width: int | None = None,
) -> int:
    """Run the command line; returns the exit status.

    ``out`` / ``err`` replace stdout / stderr; ``transport`` (e.g. ``FakeStateManager.transport``)
    and ``width`` (columns of tables and trees) are for tests of the inspection commands.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    errors = err if err is not None else sys.stderr
    if args.command in INSPECT_COMMANDS:
        return run_inspect_command(
            args, out=stream, err=errors, transport=transport, width=width
        )
    if args.command != "demo":
        parser.print_help(stream)
        return 2
    # Each demo flag is the DemoOptions field of the same name.
    options = DemoOptions(**{f.name: getattr(args, f.name) for f in fields(DemoOptions)})
    try:
        result = run_demo(options, stream)
    except (ExoRefError, TimeoutError) as error:
        print(f"exo-ref demo failed: {error}", file=errors)
        return 1
    return 0 if result.succeeded else 1


if __name__ == "__main__":  # pragma: no cover - python -m exo_ref._cli
    sys.exit(main())
