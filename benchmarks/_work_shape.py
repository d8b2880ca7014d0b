"""The ``Work`` node's models, shared by exo_ref's benchmark nodes and the upstream runner.

Every drain contender serves a node named ``Work`` with ``Inputs.i: str`` and ``Outputs.o: str``
(the shape ``_workload.setup_drain_graph`` registers), so one prepared fan-out can be drained by
any of them. Only pydantic here: the upstream runner imports this module in its own Python 3.12
environment, which has the upstream SDK and not exo_ref.
"""

from __future__ import annotations

from pydantic import BaseModel


class Inputs(BaseModel):
    i: str


class Outputs(BaseModel):
    o: str


class Secrets(BaseModel):
    pass
