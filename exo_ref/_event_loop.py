"""Which event loop ``anyio.run`` starts: uvloop's, when it is installed and the backend is asyncio.

uvloop's transports and selector are C: on this project's benchmarks the runtime spends about a
sixth less CPU per state on it over loopback and a fifth less in-process, and a served fake a
fifth less per request. It is a dependency of exo-ref where it builds (CPython, not Windows, as
in ``uvicorn[standard]``) and optional in the code: without it, asyncio's own loop runs.

Only the loops exo-ref starts itself are chosen here (``Runtime.start``, ``exo-ref demo``, the
dev server); a runtime awaited inside a loop the user started runs on that loop. Pass
``backend_options={}`` to :meth:`exo_ref.Runtime.start` to keep asyncio's default loop.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["event_loop_options"]


def event_loop_options(backend: str = "asyncio") -> dict[str, Any]:
    """``anyio.run(..., backend=backend, backend_options=...)``: uvloop's loop where it applies.

    Returns ``{"use_uvloop": True}`` for the asyncio backend when uvloop can be imported (and
    the platform is not Windows), otherwise ``{}`` (trio, or no uvloop).
    """
    if backend != "asyncio" or sys.platform == "win32":
        return {}
    if importlib.util.find_spec("uvloop") is None:
        return {}
    return {"use_uvloop": True}
