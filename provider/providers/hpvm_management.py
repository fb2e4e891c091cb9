"""HPVM_VirtualSystemManagementService methods: hpvmcreate, hpvmremove, hpvmmodify, hpvmclone
and hpvmnet through CIM (DSP1042), calling the same agent functions as the commands.

* Force (-F) and CheckOnly (-s) go to the agent as the commands pass them (they exclude each
  other); ActiveOnly is hpvmmodify -A.
* OUT Warnings holds the lines the command prints besides its result: the guide's
  configuration-problem block ("HPVM guest X configuration problems:" / "    Warning 1: ..."
  / "These problems may prevent HPVM guest X from starting.") and hpvmmodify's notes.
* Refusals are CIM errors carrying the command's text (AgentError kinds map as in
  provider/operations/errors.py); bad settings are CIM_ERR_INVALID_PARAMETER naming the
  property (provider/providers/hpvm_rasd.py). Either way the store is unchanged.
* Every method needs the host `admin` role (configuration changes; the guest lists' admin
  and oper rights are console rights, DECISIONS §4 / spec 03 §2).
* DefineSystem with a ReferenceConfiguration (the VSSD of an existing guest) is hpvmclone,
  as DSP1042 fills unspecified settings from the reference.
"""
from __future__ import annotations

import pywbem
from pywbem import CIMError, CIMInstanceName

from agent.api.guests import GuestChanges
from agent.errors import AgentError
from agent.resources import StorageResource, address_of
from agent.rules import format_problem_block
from provider.providers.base import ADMIN, cim_method, method_result
from provider.providers.hpvm_jobs import agent_lock, guest_path, run_agent
from provider.providers.hpvm_workload import WorkloadMethods
from provider.providers.hpvm_rasd import (ETHERNET, PROC, MEM, STORAGE, RASD_CLASSES, VSSD,
                                          bad, check_address_kept, convert_new_resources,
                                          device_address, device_id, embedded_list,
                                          find_device, lookup_device, not_assigned,
                                          memory_changes, network_resource, parse_key,
                                          processor_changes, props_of, rasd_path,
                                          same_device, storage_resource, system_changes)

SERVICE = "HPVM_VirtualSystemManagementService"
SWITCH = "HPVM_Switch"


def _value(params, name):
    p = params.get(name)
    return None if p is None else p.value


def _flags(params) -> dict:
    return {"force": bool(_value(params, "Force")), "check_only": bool(_value(params, "CheckOnly"))}


def _warnings(name: str, out, *, info: bool = False) -> list[str]:
    lines = format_problem_block(name, out.warnings, ending="starting") if out.warnings else []
    return lines + (list(out.info) if info else [])


def _done(warnings, **refs):
    out = [("Warnings", list(warnings))]
    out += [(k, v) for k, v in refs.items() if v is not None]
    return method_result(0, "uint32", out)


def switch_path(name: str) -> CIMInstanceName:
    return CIMInstanceName(SWITCH, keybindings={"CreationClassName": SWITCH, "Name": name},
                           namespace="root/cimv2")


class ManagementServiceMethods(WorkloadMethods):
    """Mixin for the HPVM_VirtualSystemManagementService provider (``self.env`` set); the
    workload manager's SetMemoryTarget and SetEntitlement come from `WorkloadMethods`."""

    def call_method(self, handler, ctx, target, params):
        # the whole method under the agent's lock: its reads and its change see one state
        with agent_lock(self.env):
            return super().call_method(handler, ctx, target, params)

    # -- lookups -----------------------------------------------------------------------

    def _guest_of_system(self, ref, param: str):
        if not isinstance(ref, CIMInstanceName):
            raise bad(param, "a reference to an HPVM_Guest is required")
        if ref.classname.lower() not in ("hpvm_guest", "cim_computersystem",
                                         "hp_softpartitioncs"):
            raise bad(param, f"{ref.classname} is not a guest (HPVM_Guest)")
        ccn = ref.keybindings.get("CreationClassName")
        uuid = ref.keybindings.get("Name")
        if str(ccn).lower() != "hpvm_guest" or not isinstance(uuid, str):
            raise bad(param, f"{ref} is not the path of an HPVM_Guest "
                             "(CreationClassName HPVM_Guest, Name = guest UUID)")
        return self._guest(uuid, param)

    def _guest(self, uuid: str, where: str):
        try:
            return self.env.agent.find_by_uuid(uuid.lower())
        except AgentError as exc:
            raise bad(where, "\n".join(exc.lines), pywbem.CIM_ERR_NOT_FOUND) from None

    def _guest_of_vssd_ref(self, ref, param: str):
        if not isinstance(ref, CIMInstanceName):
            raise bad(param, f"a reference to an {VSSD} is required")
        if ref.classname.lower() not in (VSSD.lower(), "cim_virtualsystemsettingdata"):
            raise bad(param, f"{ref.classname} is not a {VSSD}")
        key = parse_key(ref.keybindings.get("InstanceID"), f"{param}.InstanceID")
        if key.part not in (None, "next"):
            raise bad(f"{param}.InstanceID", f"{ref.keybindings.get('InstanceID')} is a "
                                             "resource setting, not a guest's configuration")
        return self._guest(key.uuid, param)

    def _persistent(self, guest):
        """The configuration a change is made to (the next boot's, as hpvmmodify)."""
        return self.env.agent.next_config(guest) or guest

    def _cpu_mhz(self) -> int | None:
        return getattr(self.env.agent.host, "cpu_mhz", None)

    def _call(self, ctx, label: str, call):
        return run_agent(self.env, ctx, f"{SERVICE}.{label}", call)

    # -- guests ------------------------------------------------------------------------

    @cim_method("DefineSystem", roles=ADMIN)
    def _define_system(self, ctx, target, params):
        schema, agent = self.env.schema, self.env.agent
        flags = _flags(params)
        system = _value(params, "SystemSettings")
        if system is None:
            raise bad("SystemSettings", "the new guest's settings (ElementName = its name) "
                                        "are required")
        p = props_of(schema, system, (VSSD,), "SystemSettings")
        reference = _value(params, "ReferenceConfiguration")
        if reference is not None:
            source = self._guest_of_vssd_ref(reference, "ReferenceConfiguration")
            return self._clone(ctx, source, p, params, flags, removed=[], mac="new",
                               serial="new", share=False)
        ch = GuestChanges()
        name = system_changes(p, ch, None, purpose="define")
        if name is None:
            raise p.err("ElementName", "the new guest's name is required")
        convert_new_resources(schema, embedded_list(params, "ResourceSettings"), ch,
                              param="ResourceSettings", guest_uuid=None,
                              allow_cpu_memory=True)
        out = self._call(ctx, f"DefineSystem {name}",
                         lambda: agent.create_guest(name, ch, **flags))
        made = None if flags["check_only"] else guest_path(out.value.uuid)
        return _done(_warnings(name, out), ResultingSystem=made)

    @cim_method("DestroySystem", roles=ADMIN)
    def _destroy_system(self, ctx, target, params):
        guest = self._guest_of_system(_value(params, "AffectedSystem"), "AffectedSystem")
        # hpvmremove -F only answers its question; the guest must be Off either way
        self._call(ctx, f"DestroySystem {guest.name}",
                   lambda: self.env.agent.remove_guest(guest))
        return _done([])

    @cim_method("ModifySystemSettings", roles=ADMIN)
    def _modify_system_settings(self, ctx, target, params):
        schema, agent = self.env.schema, self.env.agent
        system = _value(params, "SystemSettings")
        if system is None:
            raise bad("SystemSettings", "the guest's changed settings are required")
        p = props_of(schema, system, (VSSD,), "SystemSettings")
        key = parse_key(p.get("InstanceID"), f"{p.where}.InstanceID")
        if key.part not in (None, "next"):
            raise p.err("InstanceID", "names a resource setting, not a guest's configuration")
        guest = self._guest(key.uuid, f"{p.where}.InstanceID")
        current = self._persistent(guest)
        ch = GuestChanges()
        name = system_changes(p, ch, current, purpose="modify")
        if name is not None and name != current.name:
            ch.new_name = name
        flags = _flags(params)
        out = self._call(ctx, f"ModifySystemSettings {guest.name}",
                         lambda: agent.modify_guest(guest, ch, **flags))
        return _done(_warnings(out.value.name, out, info=True))

    @cim_method("AddResourceSettings", roles=ADMIN)
    def _add_resource_settings(self, ctx, target, params):
        schema, agent = self.env.schema, self.env.agent
        guest = self._guest_of_vssd_ref(_value(params, "AffectedConfiguration"),
                                        "AffectedConfiguration")
        items = embedded_list(params, "ResourceSettings")
        if not items:
            raise bad("ResourceSettings", "name at least one resource to add")
        ch = GuestChanges()
        before = self._persistent(guest)
        convert_new_resources(schema, items, ch, param="ResourceSettings",
                              guest_uuid=guest.uuid, allow_cpu_memory=False, current=before)
        flags = _flags(params)
        active = bool(_value(params, "ActiveOnly"))
        out = self._call(ctx, f"AddResourceSettings {guest.name}",
                         lambda: agent.modify_guest(guest, ch, active_only=active, **flags))
        refs = None
        if not flags["check_only"]:
            after = agent.find_by_uuid(guest.uuid) if active else out.value
            old = {device_id(r) for r in list(before.storage) + list(before.nics)} \
                if not active else {device_id(r) for r in list(guest.storage) + list(guest.nics)}
            refs = [rasd_path(guest.uuid, r) for r in list(after.storage) + list(after.nics)
                    if device_id(r) not in old]
        return _done(_warnings(out.value.name, out, info=True),
                     ResultingResourceSettings=refs)

    @cim_method("ModifyResourceSettings", roles=ADMIN)
    def _modify_resource_settings(self, ctx, target, params):
        schema, agent = self.env.schema, self.env.agent
        items = embedded_list(params, "ResourceSettings")
        if not items:
            raise bad("ResourceSettings", "name at least one resource setting to change")
        active = bool(_value(params, "ActiveOnly"))
        ch = GuestChanges()
        guest = current = None
        refs, done = [], set()
        for i, inst in enumerate(items):
            p = props_of(schema, inst, RASD_CLASSES, f"ResourceSettings[{i}]")
            iid = p.get("InstanceID")
            key = parse_key(iid, f"{p.where}.InstanceID")
            if guest is None:
                guest = self._guest(key.uuid, f"{p.where}.InstanceID")
                current = guest if active else self._persistent(guest)
            elif key.uuid != guest.uuid:
                raise p.err("InstanceID", f"{iid} names another guest's setting; one call "
                                          f"changes one guest ('{guest.name}')")
            if iid in done:
                raise p.err("InstanceID", f"{iid} is given twice")
            done.add(iid)
            expected = {"cpu": PROC, "memory": MEM}.get(key.part or "")
            if key.is_device:
                old = _device_for_change(current, key.part, p)
                expected = STORAGE if isinstance(old, StorageResource) else ETHERNET
            if expected is None:
                raise p.err("InstanceID", f"{iid} is a guest's configuration, not a resource "
                                          "setting (use ModifySystemSettings)")
            if p.classname != expected:
                raise p.err("InstanceID", f"{iid} is a {expected}, not a {p.classname}")
            if expected == PROC:
                processor_changes(p, ch, current, self._cpu_mhz())
            elif expected == MEM:
                memory_changes(p, ch, current, purpose="modify",
                               runtime_target=_shown_target(agent, guest, current))
            else:
                make = storage_resource if expected == STORAGE else network_resource
                new = make(p, "add")
                check_address_kept(p, new, old)
                if not same_device(new, old):
                    ch.modify.append(_at(new, old))
            refs.append(CIMInstanceName(expected, keybindings={"InstanceID": iid},
                                        namespace="root/cimv2"))
        flags = _flags(params)
        out = self._call(ctx, f"ModifyResourceSettings {guest.name}",
                         lambda: agent.modify_guest(guest, ch, active_only=active, **flags))
        return _done(_warnings(out.value.name, out, info=True),
                     ResultingResourceSettings=refs)

    @cim_method("RemoveResourceSettings", roles=ADMIN)
    def _remove_resource_settings(self, ctx, target, params):
        agent = self.env.agent
        refs = _value(params, "ResourceSettings") or []
        if not refs:
            raise bad("ResourceSettings", "name at least one resource setting to remove")
        active = bool(_value(params, "ActiveOnly"))
        ch = GuestChanges()
        guest = current = None
        for i, ref in enumerate(refs):
            where = f"ResourceSettings[{i}]"
            if not isinstance(ref, CIMInstanceName):
                raise bad(where, "a reference to a resource setting is required")
            if set(k.lower() for k in ref.keybindings) != {"instanceid"}:
                raise bad(where, f"the key of {ref.classname} is InstanceID alone")
            key = parse_key(ref.keybindings.get("InstanceID"), f"{where}.InstanceID")
            if guest is None:
                guest = self._guest(key.uuid, f"{where}.InstanceID")
                current = guest if active else self._persistent(guest)
            elif key.uuid != guest.uuid:
                raise bad(f"{where}.InstanceID", "names another guest's device; one call "
                                                 f"changes one guest ('{guest.name}')")
            if not key.is_device:
                raise bad(f"{where}.InstanceID", "vCPUs, memory and the configuration "
                                                 "cannot be removed, only changed")
            old = find_device(current, key.part, f"{where}.InstanceID")
            cls = STORAGE if isinstance(old, StorageResource) else ETHERNET
            if ref.classname.lower() not in (cls.lower(), "cim_resourceallocationsettingdata"):
                raise bad(where, f"{ref.keybindings['InstanceID']} is a {cls}, not a "
                                 f"{ref.classname}")
            ch.delete.append(address_of(old))
        flags = _flags(params)
        out = self._call(ctx, f"RemoveResourceSettings {guest.name}",
                         lambda: agent.modify_guest(guest, ch, active_only=active, **flags))
        return _done(_warnings(out.value.name, out, info=True))

    @cim_method("CloneSystem", roles=ADMIN)
    def _clone_system(self, ctx, target, params):
        source = self._guest_of_system(_value(params, "SourceSystem"), "SourceSystem")
        system = _value(params, "SystemSettings")
        if system is None:
            raise bad("SystemSettings", "the clone's settings (ElementName = its name) are "
                                        "required")
        p = props_of(self.env.schema, system, (VSSD,), "SystemSettings")
        removed = _value(params, "RemovedResourceSettings") or []
        mac = "same" if _value(params, "NewMACAddresses") is False else "new"
        serial = "same" if _value(params, "NewSerialNumber") is False else "new"
        return self._clone(ctx, source, p, params, _flags(params), removed=removed, mac=mac,
                           serial=serial, share=bool(_value(params, "ShareVLANPorts")))

    def _clone(self, ctx, source, p, params, flags, *, removed, mac, serial, share):
        """hpvmclone: the VSSD's ElementName names the clone; its other values and the
        RASDs change the copy (a RASD with the InstanceID of a source device: -b or -m, see
        `_boot_copy`; without: -a; processor/memory: -c -e -E -r -x);
        RemovedResourceSettings: -d."""
        agent, schema = self.env.agent, self.env.schema
        src = self._persistent(source)
        ch = GuestChanges(mac_address=mac, serial_number=serial, share_ports=share)
        name = system_changes(p, ch, src, purpose="clone")
        if name is None or name == src.name:
            raise p.err("ElementName", "the clone's name is required (and differs from the "
                                       "source's)")
        new_items = []
        for i, inst in enumerate(embedded_list(params, "ResourceSettings")):
            q = props_of(schema, inst, RASD_CLASSES, f"ResourceSettings[{i}]")
            iid = q.get("InstanceID")
            if not iid:
                new_items.append(inst)
                continue
            key = parse_key(iid, f"{q.where}.InstanceID")
            if key.uuid != source.uuid:
                raise q.err("InstanceID", f"{iid} names a setting of another guest, not of "
                                          f"the source '{source.name}'")
            if key.part == "cpu" and q.classname == PROC:
                processor_changes(q, ch, src, self._cpu_mhz())
            elif key.part == "memory" and q.classname == MEM:
                memory_changes(q, ch, src, purpose="clone")
            elif key.is_device:
                old = _device_for_change(src, key.part, q)
                cls = STORAGE if isinstance(old, StorageResource) else ETHERNET
                if q.classname != cls:
                    raise q.err("InstanceID", f"{iid} is a {cls}, not a {q.classname}")
                copy = _boot_copy(q, old) if cls == STORAGE else None
                if copy is not None:
                    ch.boot_copies.append(copy)
                    continue
                new = (storage_resource if cls == STORAGE else network_resource)(q, "add")
                check_address_kept(q, new, old)
                if not same_device(new, old):
                    ch.modify.append(_at(new, old))
            else:
                raise q.err("InstanceID", f"{iid} does not fit a {q.classname}")
        convert_new_resources(schema, new_items, ch, param="ResourceSettings",
                              guest_uuid=None, allow_cpu_memory=True)
        for i, ref in enumerate(removed):
            where = f"RemovedResourceSettings[{i}]"
            if not isinstance(ref, CIMInstanceName):
                raise bad(where, "a reference to a resource setting is required")
            key = parse_key(ref.keybindings.get("InstanceID"), f"{where}.InstanceID")
            if key.uuid != source.uuid:
                raise bad(f"{where}.InstanceID", "names a device of another guest, not of the "
                                                 f"source '{source.name}'")
            if not key.is_device:
                raise bad(f"{where}.InstanceID", "only devices can be left out of a clone")
            ch.delete.append(address_of(find_device(src, key.part, f"{where}.InstanceID")))
        out = self._call(ctx, f"CloneSystem {source.name} {name}",
                         lambda: agent.clone_guest(source, name, ch, **flags))
        made = None if flags["check_only"] else guest_path(out.value.uuid)
        return _done(_warnings(name, out), ResultingSystem=made)

    @cim_method("CollectSystemData", roles=ADMIN)
    def _collect_system_data(self, ctx, target, params):
        # hpvmcollect as a job; see provider/providers/hpvm_collect.py
        from provider.providers.hpvm_collect import collect_system_data
        return collect_system_data(self.env, ctx, target, params)

    # -- vswitches (hpvmnet) --------------------------------------------------------------

    def _switch(self, params) -> str:
        ref = _value(params, "AffectedSwitch")
        if not isinstance(ref, CIMInstanceName) or ref.classname.lower() != SWITCH.lower():
            raise bad("AffectedSwitch", "a reference to an HPVM_Switch is required")
        name = ref.keybindings.get("Name")
        ccn = ref.keybindings.get("CreationClassName")
        if not isinstance(name, str) or str(ccn).lower() != SWITCH.lower():
            raise bad("AffectedSwitch", f"{ref} is not the path of an HPVM_Switch "
                                        "(CreationClassName HPVM_Switch, Name = vswitch name)")
        return name

    def _nic(self, params, required: bool):
        nic = _value(params, "HostNIC")
        if nic is None and required:
            raise bad("HostNIC", "the PPA of the host LAN card is required (-n)")
        return None if nic is None else int(nic)

    @cim_method("CreateVirtualSwitch", roles=ADMIN)
    def _create_vswitch(self, ctx, target, params):
        name = _value(params, "SwitchName")
        if not name:
            raise bad("SwitchName", "the vswitch name is required (-S)")
        nic = self._nic(params, False)
        out = self._call(ctx, f"CreateVirtualSwitch {name}",
                         lambda: self.env.agent.create_vswitch(name, nic))
        return _done([], ResultingSwitch=switch_path(out.value.name))

    @cim_method("ChangeVirtualSwitch", roles=ADMIN)
    def _change_vswitch(self, ctx, target, params):
        name = self._switch(params)
        nic = self._nic(params, True)
        new_name = _value(params, "NewSwitchName")
        out = self._call(ctx, f"ChangeVirtualSwitch {name}",
                         lambda: self.env.agent.change_vswitch(name, nic_id=nic,
                                                               new_name=new_name))
        return _done([], ResultingSwitch=switch_path(out.value.name))

    def _switch_action(self, ctx, params, label: str, op):
        name = self._switch(params)
        self._call(ctx, f"{label} {name}", lambda: op(name))
        return _done([])

    @cim_method("DeleteVirtualSwitch", roles=ADMIN)
    def _delete_vswitch(self, ctx, target, params):
        return self._switch_action(ctx, params, "DeleteVirtualSwitch",
                                   self.env.agent.delete_vswitch)

    @cim_method("StartVirtualSwitch", roles=ADMIN)
    def _start_vswitch(self, ctx, target, params):
        return self._switch_action(ctx, params, "StartVirtualSwitch",
                                   self.env.agent.boot_vswitch)

    @cim_method("HaltVirtualSwitch", roles=ADMIN)
    def _halt_vswitch(self, ctx, target, params):
        return self._switch_action(ctx, params, "HaltVirtualSwitch",
                                   self.env.agent.halt_vswitch)

    @cim_method("RebootVirtualSwitch", roles=ADMIN)
    def _reboot_vswitch(self, ctx, target, params):
        return self._switch_action(ctx, params, "RebootVirtualSwitch",
                                   self.env.agent.reboot_vswitch)

    @cim_method("SetVirtualSwitchPortVLAN", roles=ADMIN)
    def _set_port_vlan(self, ctx, target, params):
        name = self._switch(params)
        port = _value(params, "PortNumber")
        if port is None:
            raise bad("PortNumber", "the vswitch port (1..100) is required")
        vlan = _value(params, "VLANID")
        self._call(ctx, f"SetVirtualSwitchPortVLAN {name}",
                   lambda: self.env.agent.set_vswitch_port_vlan(
                       name, port=int(port), vlan=None if vlan is None else int(vlan)))
        return _done([])


def _shown_target(agent, guest, config) -> int | None:
    """The TargetMemory a guest's memory RASD shows (as hpvmstatus shows Target memory): the
    live target while its DM driver runs, else ram_dyn_target_start or its memory."""
    dm = config.dynmem
    if dm.type == "none":
        return None
    rt = agent.runtime(guest)
    if rt.memory is not None and rt.memory.driver and rt.active:
        return rt.memory.target_mb
    return dm.target_start_mb if dm.target_start_mb is not None else config.memory_mb


def _device_for_change(guest, part: str, p):
    """The device a RASD's InstanceID selects for a change (-m). One the guest lacks is
    refused with hpvmmodify's text, which names the whole new spec."""
    where = f"{p.where}.InstanceID"
    old = lookup_device(guest, part, where)
    if old is not None:
        return old
    addr = device_address(part, where)
    if p.classname not in (STORAGE, ETHERNET):
        raise p.err("InstanceID", f"{part} is a device, not a {p.classname}")
    try:
        new = (storage_resource if p.classname == STORAGE else network_resource)(p, "add")
    except CIMError:
        raise not_assigned(guest, addr) from None
    raise not_assigned(guest, _at(new, addr))


def _boot_copy(q, old):
    """hpvmclone -b for a source storage RASD sent with CloneSystem, or None for -m: a
    RASD naming no backing store (HostResource and BackingType absent) copies a file backing
    store beside the source's (`<file>.<clone>`); one naming a file that does not exist yet
    copies it there. Any other backing store named is a -m (the clone uses that store)."""
    import os
    hosts = q.get("HostResource") or []
    backing = q.get("BackingType")
    if not hosts and backing is None and q.get("ResourceSpecification") is None:
        return StorageResource(old.device, old.adapter, old.bus, old.slot, old.target)
    if len(hosts) == 1 and hosts[0] and str(backing or old.storage).lower() == "file" \
            and old.storage == "file" and not os.path.exists(str(hosts[0])):
        return StorageResource(old.device, old.adapter, old.bus, old.slot, old.target,
                               "file", str(hosts[0]))
    return None


def _at(new, old):
    """`new` placed at `old`'s address (hpvmmodify -m names the full address)."""
    from dataclasses import replace
    if isinstance(old, StorageResource):
        return replace(new, bus=old.bus, slot=old.slot, target=old.target)
    return replace(new, bus=old.bus, slot=old.slot, mac=new.mac or old.mac)
