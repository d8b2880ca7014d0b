"""A user's test of exo-ref's ``exo_env`` fixture, run by ``tox -e fresh`` in a fresh venv.

tox copies it out of the repository (as ``test_user.py``, next to an empty ``pytest.ini``) and
runs pytest there, so only what ``pip install exo-ref pytest`` brings is in play: the fixture must
come from the plugin's ``pytest11`` entry point, not from a conftest or ``-p``, and the test must
pass on asyncio and on trio. Its name matches none of the repository's ``python_files``, so the
repository's own test run leaves it alone.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from exo_ref import BaseNode
from exo_ref.testing import ExoEnv, assert_outputs, assert_run_succeeded, graph_node

# As the README says: the mark is all it takes. anyio's pytest plugin then runs each test once
# per backend installed, and exo-ref brings trio.
pytestmark = pytest.mark.anyio


class Split(BaseNode):
    class Inputs(BaseModel):
        words: str

    class Outputs(BaseModel):
        word: str

    async def execute(self) -> list[Outputs]:  # fan-out: one `shout` state per word
        return [self.Outputs(word=word) for word in self.inputs.words.split(",")]


class Shout(BaseNode):
    class Inputs(BaseModel):
        word: str

    class Outputs(BaseModel):
        loud: str

    async def execute(self) -> Outputs:
        return self.Outputs(loud=self.inputs.word.upper())


async def test_a_fan_out_graph_runs_end_to_end(exo_env: ExoEnv) -> None:
    await exo_env.start_runtime(Split, Shout)
    await exo_env.upsert_graph(
        "shout",
        [
            graph_node("split", Split, inputs={"words": "x"}, next_nodes=["shout"]),
            graph_node("shout", Shout, inputs={"word": "${{ split.outputs.word }}"}),
        ],
    )
    run = await exo_env.run("shout", {"words": "a,b,c"})
    assert_run_succeeded(run)
    assert_outputs(run, "shout", [{"loud": "A"}, {"loud": "B"}, {"loud": "C"}])
