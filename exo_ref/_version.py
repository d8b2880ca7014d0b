"""The distribution version, kept in one place (upstream exports it as ``VERSION``)."""

from __future__ import annotations

__all__ = ["VERSION", "__version__"]

VERSION = "0.1.0"
__version__ = VERSION
