"""Load ``EXOSPHERE_*`` settings from a ``.env`` file, as the upstream page shows.

The page uses python-dotenv (``from dotenv import load_dotenv; load_dotenv()``). It is optional
here: when it is not installed, a few-line parser reads the same simple ``KEY=VALUE`` files.
Create ``.env`` (for the dev server, the lines ``fake-state-manager`` prints)::

    EXOSPHERE_STATE_MANAGER_URI=http://127.0.0.1:8000
    EXOSPHERE_API_KEY=exo-ref-dev-key

then ``python examples/dotenv_loading.py``. Settings are read when the Runtime is constructed, so
loading the file any time before that works; variables already set in the environment win.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from basic import MyNode  # the page defines MyNode once, in its first example

from exo_ref import Runtime


def load_env_file(path: str | os.PathLike[str] = ".env") -> bool:
    """Set ``KEY=VALUE`` lines of ``path`` in ``os.environ`` unless already set.

    Blank lines, ``#`` comments, an ``export`` prefix and matching quotes are handled; this is
    the subset of the .env format the page uses. Returns False when the file does not exist.
    """
    file = Path(path)
    if not file.is_file():
        return False
    for raw in file.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key.strip(), value)
    return True


try:
    from dotenv import load_dotenv  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # python-dotenv is optional
    load_dotenv = load_env_file


def create_runtime(env_file: str | os.PathLike[str] = ".env", **options: Any) -> Runtime:
    """Load ``env_file``, then build the runtime from the environment it set."""
    load_dotenv(env_file)
    return Runtime(namespace="MyProject", name="MyRuntime", nodes=[MyNode], **options)


if __name__ == "__main__":
    create_runtime().start()
