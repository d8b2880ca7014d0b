"""Locate (or create) a Python 3.12 environment with the upstream SDK ``exospherehost==0.0.3``.

Upstream needs Python 3.12 (contract §8.9 item 18), so it runs in a subprocess from its own venv.
Resolution order:

1. ``EXO_BENCH_UPSTREAM_PYTHON``: an interpreter that can ``import exospherehost``;
2. the running interpreter, when it can (``tox -e bench`` is a Python 3.12 env with the SDK);
3. the cached venv ``~/.cache/exo-ref/upstream-py312`` (``EXO_BENCH_UPSTREAM_VENV`` overrides);
4. only when ``create=True`` (``python -m benchmarks.upstream_env``, the first ``tox -e bench``
   step): build that venv with a Python 3.12 found on PATH or under pyenv, then
   ``pip install exospherehost==0.0.3``.

When none works, :func:`find_upstream_python` returns the reason, and the report prints the
upstream figures as missing with that reason. Nothing is ever faked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

UPSTREAM_REQUIREMENT = "exospherehost==0.0.3"
# Outside the checkout, so that recreating .tox or a fresh clone on the same machine keeps it.
_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
VENV = Path(os.environ.get("EXO_BENCH_UPSTREAM_VENV") or _CACHE / "exo-ref" / "upstream-py312")
#: Run as a module from the checkout, so that it can import ``benchmarks._work_shape``.
RUNNER = "benchmarks._upstream_runner"
ROOT = Path(__file__).resolve().parent.parent
_PY312_CANDIDATES = ("python3.12", "/root/.pyenv/versions/3.12.1/bin/python")


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _imports_upstream(python: Path | str) -> bool:
    try:
        result = subprocess.run(
            [str(python), "-c", "import exospherehost"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _find_python312() -> str | None:
    for candidate in _PY312_CANDIDATES:
        found = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if found is None:
            continue
        probe = subprocess.run(
            [found, "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return found
    return None


def find_upstream_python(*, create: bool = False) -> tuple[str | None, str]:
    """Return ``(interpreter, how)`` for the upstream SDK, or ``(None, reason it is missing)``."""
    explicit = os.environ.get("EXO_BENCH_UPSTREAM_PYTHON")
    if explicit:
        if _imports_upstream(explicit):
            return explicit, f"EXO_BENCH_UPSTREAM_PYTHON={explicit}"
        return None, f"EXO_BENCH_UPSTREAM_PYTHON={explicit} cannot import exospherehost"
    if sys.version_info >= (3, 12) and _imports_upstream(sys.executable):
        return sys.executable, f"this interpreter ({sys.executable})"
    python = _venv_python(VENV)
    if python.exists() and _imports_upstream(python):
        return str(python), f"cached venv {VENV}"
    if not create:
        return None, (
            f"no upstream environment ({VENV} is missing; "
            "`python -m benchmarks.upstream_env` creates it)"
        )
    base = _find_python312()
    if base is None:
        return None, "no Python >= 3.12 interpreter found (upstream exospherehost needs 3.12)"
    try:
        subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", UPSTREAM_REQUIREMENT],
            check=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create the upstream venv: {exc}"
    if not _imports_upstream(python):
        return None, f"{UPSTREAM_REQUIREMENT} installed but does not import"
    return str(python), f"created venv {VENV}"


def start_upstream_runtime(
    python: str,
    uri: str,
    key: str,
    ns: str,
    *,
    batch_size: int,
    workers: int,
    poll: float,
    log: IO[bytes],
) -> subprocess.Popen[bytes]:
    """Start the upstream runner (its stderr goes to ``log``); the caller terminates it."""
    env = dict(os.environ, EXOSPHERE_LOG_LEVEL="WARNING")
    return subprocess.Popen(
        [python, "-m", RUNNER, uri, key, ns, str(batch_size), str(workers), str(poll)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )


def main() -> int:
    """``python -m benchmarks.upstream_env``: make sure the upstream environment exists."""
    python, how = find_upstream_python(create=True)
    print(f"upstream SDK: {python or 'MISSING'} ({how})", file=sys.stderr)
    return 0  # a missing upstream is reported in RESULTS.md, not a failure of the bench run
