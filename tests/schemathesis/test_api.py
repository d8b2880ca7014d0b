"""schemathesis against the fake served over real HTTP, with and without the key (issue #9).

* :func:`test_schemathesis_finds_nothing` runs the ``st run`` CLI (a subprocess, as a user runs
  it) on ``/openapi.json``: every operation, the examples, coverage, fuzzing and stateful phases,
  no 5xx, every status, content type and body as documented, and auth enforced wherever an
  answer was a success.
* :func:`test_without_the_key_every_v0_operation_answers_401` generates schema-valid requests for
  each ``/v0`` operation and sends them with no key and with a wrong one: always 401, as
  documented.

Deterministic: a fixed seed for the CLI, ``derandomize`` for hypothesis, bounded example counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fake_state_manager._http.routes import ENDPOINTS, Endpoint

from .conftest import API_KEY

#: The checks of the CLI run (``st run --checks``). ``ignored_auth`` re-sends a request that
#: succeeded without the key and with a wrong one and expects them refused.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "ignored_auth",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")
SEED = 20260101
#: Test cases per operation and phase: about 20 s of requests on one core.
MAX_EXAMPLES = 50
CLI_TIMEOUT = 600.0
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_nothing(fake_uri: str) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{fake_uri}/openapi.json",
        "--header",
        f"x-api-key: {API_KEY}",
        "--phases",
        ",".join(PHASES),
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # One worker: the operations run in the same order every time.
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=CLI_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"st run failed (exit {result.returncode}):\n{output}"
    # The summary names each phase; one that did not run would show a skip mark instead.
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, f"{phase} phase did not pass:\n{output}"
    print(f"st run: {time.monotonic() - started:.1f}s\n{output[-600:]}")


# -- without the key -------------------------------------------------------------------------------

_V0 = [e for e in ENDPOINTS if e.path.startswith("/v0")]


@pytest.fixture(scope="module")
def schema(fake_uri: str) -> Any:
    return schemathesis.openapi.from_url(f"{fake_uri}/openapi.json")


def _routable(case: Any) -> bool:
    # HTTP clients collapse the dot segments "." and ".." (RFC 3986, section 5.2.4), so such a path
    # parameter reaches another route (a 404); no other schema-valid value does.
    return not any(str(v) in {".", ".."} for v in (case.path_parameters or {}).values())


@pytest.mark.parametrize("endpoint", _V0, ids=[e.name for e in _V0])
def test_without_the_key_every_v0_operation_answers_401(schema: Any, endpoint: Endpoint) -> None:
    operation = schema[endpoint.path][endpoint.method]
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]

    @settings(
        max_examples=10,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        assume(_routable(case))
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
        for key in (None, API_KEY + "x", ""):
            headers = {} if key is None else {"x-api-key": key}
            response = case.call(headers=headers)
            assert response.status_code == 401, (key, response.status_code, response.text)
            assert response.json() == {"detail": "Invalid API key"}
            case.validate_response(response, checks=checks)

    check()
