"""Multiple nodes in one runtime: a processor and a validator.

The "Multiple Nodes" example of the upstream "Create Runtime" page with only the import changed;
the page leaves the node bodies out (``...``), so here they are small but real. ``trigger.py
multiple`` runs them as a two-step graph (processor -> validator)::

    python examples/multiple_nodes.py
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from exo_ref import BaseNode, Runtime


class DataProcessorNode(BaseNode):
    class Inputs(BaseModel):
        data: str

    class Outputs(BaseModel):
        processed: str

    class Secrets(BaseModel):
        pass

    async def execute(self) -> Outputs:
        return self.Outputs(processed=self.inputs.data.strip().upper())


class DataValidatorNode(BaseNode):
    class Inputs(BaseModel):
        processed: str

    class Outputs(BaseModel):
        valid: str

    class Secrets(BaseModel):
        pass

    async def execute(self) -> Outputs:
        # Node fields are strings on the wire (contract §8.2), so the verdict is "true"/"false".
        return self.Outputs(valid=str(bool(self.inputs.processed)).lower())


def create_runtime(**options: Any) -> Runtime:
    """The page's runtime. ``options`` go to ``Runtime`` (tests pass ``transport=``, ``clock=``)."""
    # Register both nodes
    return Runtime(
        namespace="MyProject",
        name="DataPipeline",
        nodes=[DataProcessorNode, DataValidatorNode],
        **options,
    )


if __name__ == "__main__":
    create_runtime().start()
