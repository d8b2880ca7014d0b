"""``python -m fake_state_manager``: the dev server (same as the ``fake-state-manager`` script)."""

from __future__ import annotations

from fake_state_manager._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
