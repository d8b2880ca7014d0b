"""exo_ref's pytest plugin, as a user's project sees it: user test files run by ``pytester``.

Each test writes a small project (a test file, at most an ini file) into a temporary directory
and runs pytest on it in this process; the plugin is found through its ``pytest11`` entry point,
as in a fresh virtualenv, not through this repository's conftest.
"""

from __future__ import annotations

import pytest

from .helpers import readme_block

pytest_plugins = ["pytester"]

# The inner runs: no cache files in the temporary project, every warning an error as here.
ARGS = ("-p", "no:cacheprovider", "-W", "error", "--strict-markers")

GREET = '''
import pytest
from pydantic import BaseModel

from exo_ref import BaseNode
from exo_ref.testing import ExoEnv, assert_run_succeeded, graph_node


class Greet(BaseNode):
    class Inputs(BaseModel):
        name: str

    class Outputs(BaseModel):
        greeting: str

    async def execute(self) -> Outputs:
        return self.Outputs(greeting=f"hello {self.inputs.name}")


GRAPH = [graph_node("greet", Greet, inputs={"name": "world"})]
'''


def test_the_plugin_is_registered_by_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_loaded(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("exo_ref")
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=1)


def test_the_readme_example_passes_on_asyncio_and_trio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_example=readme_block("tests/exo_ref/test_pytest_plugin.py"))
    result = pytester.runpytest(*ARGS, "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*test_pipeline?asyncio? PASSED*",
            "*test_fetch_alone?asyncio? PASSED*",
            "*test_pipeline?trio? PASSED*",
            "*test_fetch_alone?trio? PASSED*",
        ]
    )


def test_exo_env_works_in_anyio_auto_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nanyio_mode = auto\n")
    pytester.makepyfile(
        GREET
        + '''
async def test_greet(exo_env: ExoEnv) -> None:
    await exo_env.start_runtime(Greet)
    await exo_env.upsert_graph("greet", GRAPH)
    run = await exo_env.run("greet", inputs={"name": "exo"})
    assert run.output("greet") == {"greeting": "hello exo"}
'''
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=2)


def test_a_failed_assertion_prints_the_runs_states(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        GREET
        + '''
class Broken(BaseNode):
    class Inputs(BaseModel):
        name: str

    async def execute(self) -> None:
        raise ValueError("no greeting today")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_broken(exo_env: ExoEnv) -> None:
    await exo_env.start_runtime(Broken)
    await exo_env.upsert_graph("broken", [graph_node("broken", Broken, inputs={"name": "x"})])
    run = await exo_env.run("broken")
    assert_run_succeeded(run)
'''
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">*assert_run_succeeded(run)",
            "E*AssertionError: expected run * to succeed",
            "E*run * of graph 'broken': FAILED (states=4 * errored=1 retried=3)",
            "E*identifier*node*status*",
            "E*broken*Broken*RETRY_CREATED*0*error: no greeting today",
            "E*broken*Broken*ERRORED*3*error: no greeting today",
        ]
    )


def test_a_run_that_cannot_finish_fails_with_what_blocks_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        GREET
        + '''
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_stuck(exo_env: ExoEnv) -> None:
    registrar = await exo_env.start_runtime(Greet)
    await exo_env.upsert_graph("greet", GRAPH)
    await exo_env.stop_runtime(registrar)
    await exo_env.run("greet")
'''
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">*await exo_env.run(\"greet\")",
            "E*RunStuckError: run * cannot finish: every task is waiting*",
            "E*- greet [[]Greet[]] CREATED, *: no running runtime serves node 'Greet' in "
            "namespace 'exo-test' (runtime 'exo-env-runtime-1' served it and has stopped)*",
            "E*greet*Greet*CREATED*",
        ]
    )


def test_the_clock_and_env_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        '''
import pytest

from exo_ref import ManualClock, SystemClock
from exo_ref.testing import ExoEnv

pytestmark = pytest.mark.anyio


async def test_default(exo_env: ExoEnv) -> None:
    assert isinstance(exo_env.clock, ManualClock) and exo_env.clock.auto_advance


@pytest.mark.exo_clock(auto_advance=False, start=1000.0)
async def test_manual(exo_env: ExoEnv) -> None:
    assert isinstance(exo_env.clock, ManualClock) and not exo_env.clock.auto_advance
    assert exo_env.clock.now() == 1000.0
    exo_env.clock.advance(5)
    assert exo_env.clock.now() == 1005.0


@pytest.mark.exo_clock(real=True)
async def test_real(exo_env: ExoEnv) -> None:
    assert isinstance(exo_env.clock, SystemClock)


@pytest.mark.exo_env(namespace="billing", stuck_grace=3.0)
async def test_options(exo_env: ExoEnv) -> None:
    assert (exo_env.namespace, exo_env.stuck_grace) == ("billing", 3.0)
'''
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=8)


def test_a_misused_marker_says_what_it_takes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        '''
import pytest

from exo_ref.testing import ExoEnv


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.exo_clock(speed=2)
async def test_bad(exo_env: ExoEnv) -> None:
    pass
'''
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*exo_clock takes real=, auto_advance= and start= (got [[]'speed'[]])"]
    )


def test_sessions_without_anyios_plugin_still_work(pytester: pytest.Pytester) -> None:
    # A project on another async plugin (or none) must not be broken by exo_ref's plugin.
    pytester.makepyfile(
        """
        def test_sync(pytestconfig):
            assert not pytestconfig.pluginmanager.has_plugin("anyio")
            assert pytestconfig.pluginmanager.has_plugin("exo_ref")

        def test_exo_env_stays_resolvable(anyio_backend):
            # The fallback exo_env asks for; the async plugin in charge runs exo_env itself.
            assert anyio_backend == "asyncio"
        """
    )
    pytester.runpytest(*ARGS, "-p", "no:anyio").assert_outcomes(passed=2)
