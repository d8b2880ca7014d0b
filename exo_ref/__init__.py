"""exo_ref: an Exosphere runtime SDK, API-compatible with ``exospherehost`` 0.0.3.

Change ``from exospherehost import ...`` to ``from exo_ref import ...``; the rest of your code
stays. Built on anyio (asyncio or trio) and httpx; see contract §8 for the upstream behaviour it
keeps and the defects it fixes.
"""

from __future__ import annotations

from ._backoff import Backoff as Backoff
from ._clock import Clock as Clock
from ._clock import ManualClock as ManualClock
from ._clock import SystemClock as SystemClock
from ._clock import hold_time as hold_time
from ._errors import AuthenticationError as AuthenticationError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import ExoRefError as ExoRefError
from ._errors import GraphValidationError as GraphValidationError
from ._errors import InvalidResponseError as InvalidResponseError
from ._errors import NodeValidationError as NodeValidationError
from ._errors import RegistrationError as RegistrationError
from ._errors import RuntimeAlreadyRunningError as RuntimeAlreadyRunningError
from ._errors import StateManagerError as StateManagerError
from ._errors import StateManagerTimeoutError as StateManagerTimeoutError
from ._errors import StateManagerTLSError as StateManagerTLSError
from ._errors import StateManagerUnavailableError as StateManagerUnavailableError
from ._errors import WaitTimeoutError as WaitTimeoutError
from ._event_loop import event_loop_options as event_loop_options
from ._h11_transport import Http11Transport as Http11Transport
from ._models import CronTrigger as CronTrigger
from ._models import GraphNodeModel as GraphNodeModel
from ._models import RetryPolicyModel as RetryPolicyModel
from ._models import RetryStrategyEnum as RetryStrategyEnum
from ._models import StoreConfigModel as StoreConfigModel
from ._models import UnitesModel as UnitesModel
from ._models import UnitesStrategyEnum as UnitesStrategyEnum
from ._node import BaseNode as BaseNode
from ._node_signals import PruneSignal as PruneSignal
from ._node_signals import ReQueueAfterSignal as ReQueueAfterSignal
from ._runtime import Runtime as Runtime
from ._state_manager import StateManager as StateManager
from ._statuses import RunStatus as RunStatus
from ._statuses import StateStatus as StateStatus
from ._statuses import ValidationStatus as ValidationStatus
from ._version import VERSION as VERSION
from ._version import __version__ as __version__
from ._wire import GraphTemplate as GraphTemplate
from ._wire import GraphTemplateList as GraphTemplateList
from ._wire import ManualRetryResponse as ManualRetryResponse
from ._wire import NodeDetails as NodeDetails
from ._wire import NodeList as NodeList
from ._wire import RegisteredNode as RegisteredNode
from ._wire import RunGraph as RunGraph
from ._wire import RunGraphEdge as RunGraphEdge
from ._wire import RunGraphNode as RunGraphNode
from ._wire import RunsPage as RunsPage
from ._wire import RunSummary as RunSummary
from ._wire import StoredGraphTemplate as StoredGraphTemplate
from ._wire import TriggerResponse as TriggerResponse

__all__ = [
    "VERSION",
    "AuthenticationError",
    "Backoff",
    "BaseNode",
    "Clock",
    "ConfigurationError",
    "CronTrigger",
    "ExoRefError",
    "GraphNodeModel",
    "GraphTemplate",
    "GraphTemplateList",
    "GraphValidationError",
    "Http11Transport",
    "InvalidResponseError",
    "ManualClock",
    "ManualRetryResponse",
    "NodeDetails",
    "NodeList",
    "NodeValidationError",
    "PruneSignal",
    "ReQueueAfterSignal",
    "RegisteredNode",
    "RegistrationError",
    "RetryPolicyModel",
    "RetryStrategyEnum",
    "RunGraph",
    "RunGraphEdge",
    "RunGraphNode",
    "RunStatus",
    "RunSummary",
    "RunsPage",
    "Runtime",
    "RuntimeAlreadyRunningError",
    "StateManager",
    "StateManagerError",
    "StateManagerTLSError",
    "StateManagerTimeoutError",
    "StateManagerUnavailableError",
    "StateStatus",
    "StoreConfigModel",
    "StoredGraphTemplate",
    "SystemClock",
    "TriggerResponse",
    "UnitesModel",
    "UnitesStrategyEnum",
    "ValidationStatus",
    "WaitTimeoutError",
    "__version__",
    "event_loop_options",
    "hold_time",
]
