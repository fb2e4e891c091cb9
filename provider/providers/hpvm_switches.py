"""Vswitches (hpvmnet -V) as DSP1097 switches: HPVM_Switch and its configured ports
(hpvmnet -p all) as HPVM_SwitchPort. Host-wide objects.
"""
from __future__ import annotations

from agent.api.network import COUNTERS
from agent.vswitch import MAX_PORTS
from provider.providers.hpvm_common import SWITCH_CLASS, HpvmProvider, host_wide, key, model_for

# hpvmnet -V counter label -> HPVM_Switch property
COUNTER_PROPERTIES = dict(zip(COUNTERS, (
    "PacketsIn", "PacketsOutToStream", "PacketsOutToGuest", "PacketsDropped", "Broadcasts",
    "Counter0", "Counter1", "Counter2", "Counter3", "CyclesIn", "CyclesOutToStream",
    "CyclesOutToGuest", "CyclesSwitchPacket")))
_COUNTER_LOWER = frozenset(p.lower() for p in COUNTER_PROPERTIES.values())


class SwitchProvider(HpvmProvider):
    """The counters are the agent's for one selected vswitch (hpvmnet -S name -V): they
    come with GetInstance, and with an enumeration whose PropertyList names them, so a
    plain enumeration stays one read of the vswitch table."""

    classnames = (SWITCH_CLASS,)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        named = ctx.property_list is not None and bool(ctx.property_list & _COUNTER_LOWER)
        for sw in snap.vswitches:
            yield self.make(ctx, snap, sw, counters=named)

    def get(self, ctx, path):
        snap = self.snap(ctx)
        if not host_wide(ctx):
            return None
        sw = snap.switch_by_name.get(key(path, "Name"))
        if sw is None or key(path, "CreationClassName") != SWITCH_CLASS:
            return None
        wanted = ctx.property_list is None or bool(ctx.property_list & _COUNTER_LOWER)
        return self.make(ctx, snap, sw, counters=wanted)

    def make(self, ctx, snap, sw, *, counters: bool):
        s = sw.summary
        v = {"CreationClassName": SWITCH_CLASS, "Name": s.name}
        if not ctx.keys_only:
            v.update(ElementName=s.name, SwitchNumber=s.number, SwitchState=s.state,
                     EnabledState=2 if s.state == "Up" else 3, RequestedState=12,
                     OperationalStatus=[2] if s.state == "Up" else [10],
                     SwitchMode=s.mode, ProcessID=sw.pid, HostNIC=s.nic,
                     HostMACAddress=s.mac, HostIPAddress=s.ip,
                     NumberOfGuests=len(sw.vnics), MaxPorts=MAX_PORTS,
                     NameFormat="Other", Dedicated=[0],
                     Caption="Integrity VM virtual switch")
            if counters:
                v.update(switch_counters(snap, sw))
        return self.m.f(SWITCH_CLASS).make(v, ctx)


def switch_counters(snap, sw) -> dict:
    """The counters hpvmnet -S name -V shows (the agent reports them for one vswitch)."""
    counters = sw.counters
    if counters is None:
        with snap.lock:
            one = snap.agent.vswitch_details(name=sw.summary.name)
        counters = one[0].counters if one and one[0].counters is not None else {}
    return {COUNTER_PROPERTIES[label]: value for label, value in counters.items()
            if label in COUNTER_PROPERTIES}


class SwitchPortProvider(HpvmProvider):
    classnames = ("HPVM_SwitchPort",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        f = self.m.f("HPVM_SwitchPort")
        for sw in snap.vswitches:
            name = sw.summary.name
            for p in sw.ports:
                v = {"SystemCreationClassName": SWITCH_CLASS, "SystemName": name,
                     "CreationClassName": "HPVM_SwitchPort", "DeviceID": f"port:{p.number}"}
                if not ctx.keys_only:
                    v.update(ElementName=f"{name} port {p.number}", PortNumber=p.number,
                             PortState=p.state, UntaggedVLANID=p.vlan,
                             ReservedVMs=list(p.reserved), ActiveVM=p.active,
                             EnabledState=2 if p.state == "Active" else 3,
                             LinkTechnology=2)
                yield f.make(v, ctx)


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    registry.register(SwitchProvider(m))
    registry.register(SwitchPortProvider(m))
