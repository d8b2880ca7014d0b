"""The one name every layer uses for a JSON object as it travels between them.

Bodies are validated at the edge (``_http``) into models; what the engine hands back to be
serialised, and what the views assemble, is plain JSON, and this alias says so in every layer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JsonDict"]

JsonDict = dict[str, Any]
