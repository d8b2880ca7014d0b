"""Default logging for the runtime (contract §8.2 step 1), without touching the root logger.

Upstream called ``logging.basicConfig`` on the root logger, which reconfigured the host
application's logging (contract §8.9 item 14). exo_ref installs one handler on its own ``exo_ref``
logger instead, and only when nobody configured logging: the root logger has no handlers, the
``exo_ref`` logger has none, and ``EXOSPHERE_DISABLE_DEFAULT_LOGGING`` is unset or empty.
"""

from __future__ import annotations

import logging

from ._config import default_logging_disabled, env_log_level

__all__ = ["LOGGER_NAME", "LOG_DATEFMT", "LOG_FORMAT", "setup_default_logging"]

LOGGER_NAME = "exo_ref"
LOG_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"
LOG_DATEFMT = "%Y-%m-%d %H:%M:%S"


def setup_default_logging() -> bool:
    """Attach a stream handler to the ``exo_ref`` logger if logging is unconfigured.

    Returns:
        True when a handler was installed by this call.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if default_logging_disabled() or logging.getLogger().handlers or logger.handlers:
        return False
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt=LOG_DATEFMT))
    logger.addHandler(handler)
    logger.setLevel(env_log_level())
    return True
