"""The dashboard: server-rendered pages over the engine, at ``/`` of the fake's app.

A layer at the HTTP level beside :mod:`fake_state_manager._http` (which mounts it): it reads and
acts through the :class:`~fake_state_manager._engine.engine.Engine` the API serves, never through
the API's routes, and nothing below imports it. No Node.js, no build step: Jinja2 templates
(autoescaped), one plain CSS file and one small plain JavaScript file for the live parts.

- :mod:`.auth`: the key prompt's session cookie and CSRF tokens;
- :mod:`.views`: what each page shows, computed from the engine's JSON-ready reads;
- :mod:`.layout`: a run's states as a layered DAG for an inline SVG;
- :mod:`.routes`: the Starlette routes (:func:`build_dashboard`).
"""

from __future__ import annotations

from fake_state_manager._dashboard.routes import PREFIX, build_dashboard

__all__ = ["PREFIX", "build_dashboard"]
