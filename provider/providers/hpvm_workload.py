"""What a workload manager (gWLM) moves on running guests, through CIM (issue 5):

* `SetMemoryTarget` and `SetEntitlement`, vendor methods of
  HPVM_VirtualSystemManagementService (mixed into `ManagementServiceMethods`): one call per
  guest and resource, calling `Agent.set_memory_target` / `Agent.set_entitlement` as
  hpvmmodify -x ram_target / -e / -E do. The memory RASD's TargetMemory and the processor
  RASD's Reservation / EntitlementMHz (ModifyResourceSettings) reach the same agent code.
* The CPU figures of `hpvmstatus -r` for the read side: per guest on the processor RASD
  (PercentUsage, CumulativeUsage) and per vCPU on HPVM_Processor, from the agent's CPU
  accounting, read once per request (`guest_usage`, `vcpu_usage`).
* `settle_model(env)`: the model's periodic tick, run by the server's background work.

Refusals are CIM errors carrying the agent's (the guide's) text; nothing changes on refusal.
"""
from __future__ import annotations

import re

import pywbem

from agent.errors import AgentError
from agent.rules import entitlement_problem
from agent.sizes import parse_entitlement
from provider.providers.base import ADMIN, cim_method, method_result
from provider.providers.hpvm_rasd import _UNITS, bad

SERVICE = "HPVM_VirtualSystemManagementService"


def _value(params, name):
    p = params.get(name)
    return None if p is None else p.value


def target_mb(amount, units) -> int:
    """TargetMemory in MB from its AllocationUnits (byte*2^20 when not given)."""
    units = "byte*2^20" if units is None else str(units)
    factor = _UNITS.get(re.sub(r"\s+", "", units).lower())
    if factor is None:
        raise bad("AllocationUnits", f"unknown unit '{units}': use byte*2^20 (MB), MegaBytes, "
                                     "byte*2^10, byte*2^30 or byte")
    mb = int(amount) * factor
    if mb != int(mb):
        raise bad("TargetMemory", f"{int(amount)} {units} is not a whole number of MB")
    return int(mb)


def checked_entitlement(host, percent_hundredths, mhz, where: dict):
    """The Entitlement asked for, refused (CIM_ERR_INVALID_PARAMETER naming the parameter)
    when malformed or outside 5-100 % of a processor. `where` maps "percent"/"mhz" to the
    parameter or property name used in the error."""
    if (percent_hundredths is None) == (mhz is None):
        raise bad(f"{where['percent']}, {where['mhz']}",
                  "give the entitlement once: in hundredths of a percent or in MHz")
    name = where["mhz"] if mhz is not None else where["percent"]
    try:
        ent = parse_entitlement(None, str(int(mhz))) if mhz is not None else \
            parse_entitlement(f"{int(percent_hundredths) / 100:g}", None)
    except AgentError as exc:
        raise bad(name, exc.lines[0]) from None
    problem = entitlement_problem(ent, host)
    if problem:
        raise bad(name, problem)
    return ent


class WorkloadMethods:
    """Mixin of the management service's provider (see hpvm_management)."""

    @cim_method("SetMemoryTarget", roles=ADMIN)
    def _set_memory_target(self, ctx, target, params):
        from provider.providers.hpvm_management import _warnings
        guest = self._guest_of_system(_value(params, "AffectedSystem"), "AffectedSystem")
        amount, to_boot = _value(params, "TargetMemory"), bool(_value(params, "ToBootMemory"))
        if to_boot and amount is not None:
            raise bad("TargetMemory", "give TargetMemory or ToBootMemory true, not both")
        if to_boot:
            wanted = "start"
        elif amount is None:
            raise bad("TargetMemory", "is required: an amount, 0 for the comfortable minimum, "
                                      "or ToBootMemory true for the boot memory")
        else:
            wanted = target_mb(amount, _value(params, "AllocationUnits"))
        agent = self.env.agent
        out = self._call(ctx, f"SetMemoryTarget {guest.name}",
                         lambda: agent.set_memory_target(guest, wanted))
        return method_result(0, "uint32", [
            ("Warnings", _warnings(guest.name, out, info=True)),
            ("EffectiveTarget", pywbem.Uint64(out.value))])

    @cim_method("SetEntitlement", roles=ADMIN)
    def _set_entitlement(self, ctx, target, params):
        from provider.providers.hpvm_management import _warnings
        guest = self._guest_of_system(_value(params, "AffectedSystem"), "AffectedSystem")
        agent = self.env.agent
        ent = checked_entitlement(agent.host, _value(params, "Reservation"),
                                  _value(params, "EntitlementMHz"),
                                  {"percent": "Reservation", "mhz": "EntitlementMHz"})
        active = bool(_value(params, "ActiveOnly"))
        out = self._call(ctx, f"SetEntitlement {guest.name}",
                         lambda: agent.set_entitlement(guest, ent, active_only=active))
        return method_result(0, "uint32", [("Warnings", _warnings(guest.name, out, info=True))])


# -- the read side ------------------------------------------------------------------------

def hundredths(percent) -> int | None:
    return None if percent is None else int(round(percent * 100))


def guest_usage(snap, entry):
    """The guest's `hpvmstatus -r` row (agent.api.views.ResourceAllocation) as of this
    request, or None for a guest the view does not list. All guests are read at once, from
    the one CPU usage read of the request (`Snapshot.cpu_usage`)."""
    return snap.allocations.get(entry.name)


def vcpu_usage(snap, entry) -> list[tuple[int, float, float, int]]:
    """Per vCPU of a running guest, as `hpvmstatus -r -P` computes them: (cumulative million
    cycles, guest percent, host percent, achieved MHz); [] for a guest that is not running.
    The CPU accounting is read once per request."""
    row = guest_usage(snap, entry)
    if row is None or not entry.active or not row.vcpus:
        return []
    per_vcpu_mhz, total = snap.cpu_usage.get(entry.uuid, (0.0, 0.0))
    mhz = snap.host.cpu_mhz
    return [(int(total / row.vcpus), round(100.0 * per_vcpu_mhz / mhz, 1), 0.0,
             int(round(per_vcpu_mhz)))] * row.vcpus


# -- the periodic tick --------------------------------------------------------------------

def settle_model(env) -> None:
    """Persist what the model's clock decided (finished stops, DM drivers that loaded...),
    under the lock every CIM change takes. Runs in a worker thread, never on the reactor."""
    from provider.providers.hpvm_jobs import agent_lock
    if env.agent is None:
        return
    with agent_lock(env):
        env.agent.settle()
