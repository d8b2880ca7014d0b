"""Basic runtime: one node, settings from the environment.

The "Basic" example of the upstream "Create Runtime" page with only the import changed
(``exospherehost`` -> ``exo_ref``). Run it against the dev server (see examples/README.md)::

    python examples/basic.py
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from exo_ref import BaseNode, Runtime


class MyNode(BaseNode):
    class Inputs(BaseModel):
        data: str

    class Outputs(BaseModel):
        result: str

    class Secrets(BaseModel):
        pass

    async def execute(self) -> Outputs:
        return self.Outputs(result=f"Processed: {self.inputs.data}")


def create_runtime(**options: Any) -> Runtime:
    """The page's runtime. ``options`` go to ``Runtime`` (tests pass ``transport=``, ``clock=``)."""
    # URI and key come from EXOSPHERE_STATE_MANAGER_URI and EXOSPHERE_API_KEY.
    return Runtime(
        namespace="MyProject",
        name="MyRuntime",
        nodes=[MyNode],
        **options,
    )


if __name__ == "__main__":
    # Create and start the runtime (blocks; Ctrl-C stops it gracefully)
    create_runtime().start()
