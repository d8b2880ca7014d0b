"""schemathesis against the served fake (run by ``tox -e schemathesis``).

schemathesis is not a dependency of exo-ref. Where it cannot be imported, this directory is left
out of collection (not skipped: the normal suite simply does not contain it). The
``schemathesis`` tox env sets ``EXO_REQUIRE_SCHEMATHESIS=1`` so that a broken install there fails
loudly instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.optional import available

if not available(
    "schemathesis",
    "EXO_REQUIRE_SCHEMATHESIS",
    "install schemathesis>=4.32 (tox -e schemathesis does)",
):
    collect_ignore_glob = ["*.py"]

#: The key the fake is served with in these tests (contract §1.2).
API_KEY = "schemathesis-test-key"


@pytest.fixture(scope="module")
def fake_uri() -> Iterator[str]:
    """The fake state manager served by uvicorn on loopback (real HTTP), with the system clock.

    One per module: each module starts from an empty store. After the module the store's
    indexes must still agree with its states, whatever the requests did.
    """
    from exo_ref import SystemClock
    from fake_state_manager import FakeStateManager

    manager = FakeStateManager(api_key=API_KEY, clock=SystemClock(), record_requests=False)
    with manager.serve_in_thread(host="127.0.0.1", port=0) as uri:
        yield uri
    manager.engine.check_invariants()
