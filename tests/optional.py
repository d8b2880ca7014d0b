"""Test directories that need a package this env may not have (the upstream SDK, schemathesis).

Without the package the directory is not collected; the tox env made for it sets its
``EXO_REQUIRE_*`` variable, so that a broken install there fails loudly instead of passing empty.
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["UPSTREAM", "available"]

#: (module, the variable the tox env sets, how to install it)
UPSTREAM = (
    "exospherehost",
    "EXO_REQUIRE_UPSTREAM",
    "install exospherehost==0.0.3 on Python >= 3.12 (tox -e upstream does)",
)


def available(module: str, require_env: str, install: str) -> bool:
    """Whether ``module`` can be imported; raises when it cannot and ``require_env`` is set."""
    if importlib.util.find_spec(module) is not None:
        return True
    if os.environ.get(require_env):
        raise RuntimeError(f"{require_env} is set but {module} is not importable: {install}")
    return False
