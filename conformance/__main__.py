"""``python -m conformance``: see :mod:`conformance._cli`."""

from __future__ import annotations

import sys

from conformance._cli import main

if __name__ == "__main__":
    sys.exit(main())
