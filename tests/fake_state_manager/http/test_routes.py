"""fake_state_manager._http.routes: the route table itself.

Most body routes hand the body's fields to the engine method by name, so a field added to a
request model without the engine keyword of that name would answer 500 on every request.
"""

from __future__ import annotations

from unittest import mock

import pytest

from fake_state_manager._engine.engine import Engine
from fake_state_manager._http.routes import ENDPOINTS, Endpoint

BODY_ROUTES = [e for e in ENDPOINTS if e.body is not None]
PATH_VALUES = {"namespace_name": "ns", "graph_name": "g", "state_id": "s1"}


@pytest.mark.parametrize("endpoint", BODY_ROUTES, ids=lambda e: e.name)
def test_every_body_field_reaches_the_engine_as_a_keyword(endpoint: Endpoint) -> None:
    assert endpoint.body is not None
    fields = list(endpoint.body.model_fields)
    body = endpoint.body.model_construct(**{name: [] for name in fields})
    # autospec keeps Engine's signatures: an unknown method or keyword raises here.
    engine = mock.create_autospec(Engine, instance=True)
    endpoint.handler(engine, dict(PATH_VALUES), body)
    (call,) = engine.mock_calls
    assert set(call.kwargs) == set(fields)

