"""The one agent API: the hpvm* commands and the CIM providers both call `Agent`.

`Agent` is composed of one mixin per domain; each mixin works on the shared core state
(`self.store`, `self.host`, `self.clock`, `self.driver`, `self.actor`) that `AgentCore` sets up.
"""
from agent.api.collect import CollectOps
from agent.api.core import AgentCore
from agent.api.devices import DeviceOps
from agent.api.guests import GuestOps
from agent.api.network import VswitchOps
from agent.api.outcome import Outcome
from agent.api.views import StatusViews
from agent.api.workload import WorkloadOps


class Agent(GuestOps, WorkloadOps, VswitchOps, DeviceOps, StatusViews, CollectOps, AgentCore):
    pass


__all__ = ["Agent", "Outcome"]
