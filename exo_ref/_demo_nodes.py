"""The nodes and graph of ``exo-ref demo``: fan out, work, fan in.

Graph (contract §3.4-3.5)::

    prepare --> split ==(N outputs: fan-out)==> work (N states) --> merge (unites: prepare)

``split`` returns N outputs, so the state manager creates N ``split`` states and then one
``work`` state per item. ``merge`` lists ``unites: prepare``: a real fan-in needs ``unites`` to name
an *ancestor* of the fanning node (contract §3.5 "Consequences"), here the root. It runs once,
after every descendant of the ``prepare`` state has succeeded. A unite node may only read the
outputs of its unites target and that target's ancestors (contract §4.3), so ``merge`` reports the
count that ``prepare`` passed down rather than the workers' results.
"""

from __future__ import annotations

from pydantic import BaseModel

from ._models import GraphNodeModel, UnitesModel
from ._node import BaseNode

__all__ = [
    "DEMO_NODES",
    "NO_FAILURE",
    "Merge",
    "Prepare",
    "Split",
    "Work",
    "demo_graph",
    "expected_states",
]


class Prepare(BaseNode):
    """Root: checks the requested fan-out and passes the run's settings on."""

    class Inputs(BaseModel):
        count: str
        fail_item: str

    class Outputs(BaseModel):
        count: str
        fail_item: str

    async def execute(self) -> Outputs:
        count = int(self.inputs.count)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        return self.Outputs(count=str(count), fail_item=self.inputs.fail_item)


class Split(BaseNode):
    """Fans out: one output (so one downstream state) per item."""

    class Inputs(BaseModel):
        count: str

    class Outputs(BaseModel):
        item: str

    async def execute(self) -> list[Outputs]:
        return [self.Outputs(item=str(i)) for i in range(int(self.inputs.count))]


class Work(BaseNode):
    """The per-item work (a stand-in: squares the item); fails on ``fail_item`` if asked to."""

    class Inputs(BaseModel):
        item: str
        fail_item: str

    class Outputs(BaseModel):
        result: str

    async def execute(self) -> Outputs:
        if self.inputs.item == self.inputs.fail_item:
            raise RuntimeError(f"item {self.inputs.item} fails on purpose (--fail-item)")
        item = int(self.inputs.item)
        return self.Outputs(result=str(item * item))


class Merge(BaseNode):
    """Fans in: runs once, when every state under ``prepare`` has succeeded."""

    class Inputs(BaseModel):
        count: str

    class Outputs(BaseModel):
        summary: str

    async def execute(self) -> Outputs:
        return self.Outputs(summary=f"all {self.inputs.count} items processed")


NO_FAILURE = "-1"
"""``fail_item`` value that fails no item."""

DEMO_NODES: list[type[BaseNode]] = [Prepare, Split, Work, Merge]


def demo_graph(namespace: str) -> list[GraphNodeModel]:
    """The template: ``prepare -> split -> work -> merge`` with ``merge`` uniting on ``prepare``."""
    return [
        GraphNodeModel(
            node_name="Prepare", namespace=namespace, identifier="prepare",
            inputs={"count": "1", "fail_item": NO_FAILURE}, next_nodes=["split"], unites=None,
        ),
        GraphNodeModel(
            node_name="Split", namespace=namespace, identifier="split",
            inputs={"count": "${{ prepare.outputs.count }}"}, next_nodes=["work"], unites=None,
        ),
        GraphNodeModel(
            node_name="Work", namespace=namespace, identifier="work",
            inputs={
                "item": "${{ split.outputs.item }}",
                "fail_item": "${{ prepare.outputs.fail_item }}",
            },
            next_nodes=["merge"],
            unites=None,
        ),
        GraphNodeModel(
            node_name="Merge", namespace=namespace, identifier="merge",
            inputs={"count": "${{ prepare.outputs.count }}"}, next_nodes=None,
            unites=UnitesModel(identifier="prepare"),
        ),
    ]


def expected_states(fan_out: int) -> int:
    """States a successful run has: prepare, ``fan_out`` split states and workers, one merge."""
    return 2 * fan_out + 2
