"""A faithful in-memory Exosphere state manager (the wire contract, §1-§7).

Use it in-process (``httpx.ASGITransport``, no sockets) through :class:`FakeStateManager`, serve it
with uvicorn in a thread (:meth:`FakeStateManager.serve_in_thread`), or run the dev server:
``fake-state-manager --port 8000`` / ``python -m fake_state_manager``.
"""

from __future__ import annotations

from exo_ref import Clock as Clock
from exo_ref import ManualClock as ManualClock
from exo_ref import SystemClock as SystemClock
from fake_state_manager._engine.engine import Engine as Engine
from fake_state_manager._errors import ApiError as ApiError
from fake_state_manager._errors import FakeStateManagerError as FakeStateManagerError
from fake_state_manager._fake import DEFAULT_API_KEY as DEFAULT_API_KEY
from fake_state_manager._fake import DEFAULT_URI as DEFAULT_URI
from fake_state_manager._fake import FakeStateManager as FakeStateManager
from fake_state_manager._http.app import create_app as create_app
from fake_state_manager._http.middleware import RecordedRequest as RecordedRequest
from fake_state_manager._store.sqlite import StorageError as StorageError

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_URI",
    "ApiError",
    "Clock",
    "Engine",
    "FakeStateManager",
    "FakeStateManagerError",
    "ManualClock",
    "RecordedRequest",
    "StorageError",
    "SystemClock",
    "create_app",
]
