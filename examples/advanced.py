"""Advanced runtime: explicit URI and key, bigger batches, more workers, slower polling.

The "Advanced" example of the upstream "Create Runtime" page with only the import changed. The
page uses the names ``EXOSPHERE_STATE_MANAGER_URI`` and ``EXOSPHERE_API_KEY`` as variables; here
they are read from the environment::

    python examples/advanced.py
"""

from __future__ import annotations

import os
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
    EXOSPHERE_STATE_MANAGER_URI = os.environ.get("EXOSPHERE_STATE_MANAGER_URI")
    EXOSPHERE_API_KEY = os.environ.get("EXOSPHERE_API_KEY")

    # Create runtime with custom configuration
    runtime = Runtime(
        namespace="MyProject",
        name="MyRuntime",
        nodes=[MyNode],
        state_manager_uri=EXOSPHERE_STATE_MANAGER_URI,
        key=EXOSPHERE_API_KEY,
        batch_size=32,
        workers=8,
        poll_interval=2,
        **options,
    )
    return runtime


if __name__ == "__main__":
    # Start the runtime
    create_runtime().start()
