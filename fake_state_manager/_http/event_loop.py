"""The event loop a served fake runs on: uvloop's when it is installed (issue #12).

uvloop is a dependency where it builds (CPython, not Windows; as in uvicorn[standard]) and
optional in the code: where it is installed, a served fake runs on it, which costs uvicorn less
CPU per request (its transports and the selector are C); elsewhere asyncio's own loop.
uvicorn's ``loop="auto"`` does not apply here, since the servers are started inside
``anyio.run``; the loop is chosen by the options given to it.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["asyncio_options"]


def asyncio_options() -> dict[str, Any]:
    """``anyio.run(..., backend="asyncio", backend_options=...)``: uvloop's loop if installed."""
    if sys.platform != "win32" and importlib.util.find_spec("uvloop") is not None:
        return {"use_uvloop": True}
    return {}
