"""``python -m benchmarks.upstream_env``: create or find the upstream SDK venv (see _upstream)."""

from __future__ import annotations

import sys

from benchmarks._upstream import main

if __name__ == "__main__":
    sys.exit(main())
