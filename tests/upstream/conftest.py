"""The upstream SDK as a real client of the fake (run by ``tox -e upstream``).

These tests import ``exospherehost`` 0.0.3, which needs Python >= 3.12 and aiohttp and is not a
dependency of exo-ref. Where it cannot be imported, the directory is left out of collection (not
skipped: the normal suite simply does not contain it). The ``upstream`` tox env sets
``EXO_REQUIRE_UPSTREAM=1`` so that a broken install there fails loudly instead.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.optional import UPSTREAM, available

if TYPE_CHECKING:
    from exospherehost import StateManager

    from tests.upstream._support import FakeReader

if not available(*UPSTREAM):
    collect_ignore_glob = ["*.py"]

#: The key the fake is served with in these tests (contract §1.2).
API_KEY = "upstream-test-key"


@pytest.fixture
def anyio_backend() -> str:
    """The upstream SDK's StateManager speaks aiohttp, which needs asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def fake_uri() -> Iterator[str]:
    """The fake state manager served by uvicorn on loopback, with the system clock."""
    from exo_ref import SystemClock
    from fake_state_manager import FakeStateManager

    manager = FakeStateManager(api_key=API_KEY, clock=SystemClock())
    with manager.serve_in_thread(host="127.0.0.1", port=0) as uri:
        yield uri


@pytest.fixture
def namespace() -> str:
    """A fresh namespace per test: runtimes never claim another test's states (§3.3)."""
    return f"upstream-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def reader(fake_uri: str, namespace: str) -> AsyncIterator[FakeReader]:
    """Reads this test's namespace of the fake over REST."""
    from tests.upstream._support import FakeReader

    async with httpx.AsyncClient(base_url=fake_uri, headers={"x-api-key": API_KEY}) as client:
        yield FakeReader(client, namespace)


@pytest.fixture
async def stored_graph(
    fake_uri: str, namespace: str, reader: FakeReader
) -> AsyncIterator[StateManager]:
    """An upstream ``StateManager`` with graph ``stored`` (``_support.upsert_stored_graph``)
    upserted and verified, served by an upstream runtime with ``Echo`` until the test ends."""
    from exospherehost import StateManager

    from tests.upstream._nodes import Echo
    from tests.upstream._support import upsert_stored_graph, upstream_runtime

    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    with upstream_runtime(namespace, fake_uri, API_KEY, [Echo]):
        await reader.wait_registered({"Echo"})
        await upsert_stored_graph(sm, namespace)
        yield sm
