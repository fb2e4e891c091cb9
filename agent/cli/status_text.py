"""The text layouts of hpvmstatus, laid out to the guide's rulers (spec 03 §1, spec 05 §6.5).

Pure functions from view objects (`agent.api.views`) to lines; the command module picks the
view and the form. Tables are built from (title lines, ruler widths, alignment) so each
column is as wide as its `====` ruler, with one space between columns.
"""
from __future__ import annotations

from datetime import datetime, timezone

from agent.api import views as v
from agent.resources import format_misc, format_resource
from agent.sizes import format_memory, format_mb

LABEL_WIDTH = 25          # "Virtual Machine Name     : compass1"


# --- tables ----------------------------------------------------------------------------------

class Table:
    def __init__(self, widths: list[int], right: set[int], titles: list[list[str]],
                 gap: str = " "):
        self.gap = gap
        self.widths = widths
        self.right = right
        self.titles = titles        # one list of cells per title line

    def _line(self, cells, *, title: bool = False) -> str:
        out = []
        for i, (w, cell) in enumerate(zip(self.widths, cells)):
            text = "" if cell is None else str(cell)
            out.append(text.rjust(w) if i in self.right and not title else text.ljust(w))
        return self.gap.join(out).rstrip()

    def header(self) -> list[str]:
        """Titles (left-aligned, as the guide prints them), then the ruler."""
        lines = [self._line(t, title=True) for t in self.titles]
        lines.append(self.gap.join("=" * w for w in self.widths))
        return lines

    def row(self, cells) -> str:
        return self._line(cells)


SUMMARY = Table([20, 5, 7, 9, 6, 5, 5, 7, 8], {1, 4, 5, 6, 7, 8},
                [["Virtual Machine Name", "VM #", "OS Type", "State", "#VCPUs", "#Devs",
                  "#Nets", "Memory", "Runsysid"]])
DETAILS = Table([20, 5, 7, 8], {1},
                [["Virtual Machine Name", "VM #", "OS Type", "State"]])
VCPU = Table([6, 11, 7], {0, 1, 2}, [["#vCPUs", "Entitlement", "Maximum"]])
MEMORY = Table([7, 8], {0, 1}, [["Total", "Reserved"], ["Memory", "Memory"]], gap="  ")
DYNMEM = Table([11, 11, 11], {0, 1, 2},
               [["Minimum", "Target", "Maximum"], ["Memory", "Memory", "Memory"]])
STORAGE = Table([7, 10, 3, 3, 3, 3, 3, 9, 25], {2, 3, 4, 5, 6},
                [["Guest", "", "", "", "", "", "", "Physical", ""],
                 ["Device", "Adaptor", "Bus", "Dev", "Ftn", "Tgt", "Lun", "Storage", "Device"]])
NETWORK = Table([9, 10, 10, 7, 3, 3, 3, 17], {3, 4, 5, 6},
                [["Interface", "Adaptor", "Name/Num", "PortNum", "Bus", "Dev", "Ftn",
                  "Mac Address"]])
RESOURCES = Table([20, 5, 6, 11, 7, 7, 16, 7, 7], {1, 2, 3, 4, 5, 6, 7, 8},
                  [["", "", "", "", "", "Percent", "Cumulative", "", "Current"],
                   ["Virtual Machine Name", "VM #", "#VCPUs", "Entitlement", "Maximum",
                    "Usage", "Usage", "Memory", "Memory"]])
VCPU_USAGE = Table([6, 16, 7, 7, 8], {0, 1, 2, 3, 4},
                   [["", "Cumulative", "Guest", "Host", "Achieved"],
                    ["vCPU", "Usage", "percent", "percent", "Mhz"]])
EVENTS = Table([6, 19, 8, 20, 20, 7], {0},
               [["Seq", "Date/Time (UTC)", "User", "Subject", "Event", "Details"]])


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"


def entitlement_text(percent: float, mhz: int | None) -> str:
    """`10.0%`, or `1400MHz` when the entitlement was given in cycles."""
    return f"{mhz}MHz" if mhz is not None else _pct(percent)


def _label(label: str, value) -> str:
    text = "" if value is None else str(value)
    return f"{label.ljust(LABEL_WIDTH)}: {text}".rstrip()


def _size(mb: int | None) -> str | None:
    return None if mb is None else format_memory(mb)


# --- the summary -----------------------------------------------------------------------------

def summary(rows: list[v.SummaryRow]) -> list[str]:
    out = ["[Virtual Machines]"] + SUMMARY.header()
    for r in rows:
        out.append(SUMMARY.row([r.name[:20], r.vm_number, r.os_type, r.state, r.vcpus,
                                r.devices, r.nets, _size(r.memory_mb), r.runsysid]))
    return out


# --- one guest in table form (hpvmstatus -P name) --------------------------------------------

def _admin_lines(a: v.AdministratorDetails) -> list[str]:
    out = []
    for f_name, title in (("oper_groups", "Oper Groups"), ("admin_groups", "Admin Groups"),
                          ("oper_users", "Oper Users"), ("admin_users", "Admin Users")):
        items = getattr(a, f_name)
        out.append(f"{title}:" + (" " + ", ".join(items) if items else ""))
    return out


def _storage_row(s) -> str:
    return STORAGE.row([s.device, s.adapter, s.bus, s.slot, s.function, s.target, s.lun,
                        s.storage, s.location])


def guest_table(d: v.GuestDetails) -> list[str]:
    m = d.machine
    out = ["[Virtual Machine Details]"] + DETAILS.header()
    out.append(DETAILS.row([m.name[:20], m.vm_number, m.os_type, m.state]))
    out += ["", "[Authorized Administrators]"] + _admin_lines(d.admins)
    out += ["", "[Virtual CPU Details]"] + VCPU.header()
    out.append(VCPU.row([d.cpu.vcpus,
                         entitlement_text(d.cpu.entitlement_percent, d.cpu.entitlement_mhz),
                         _pct(d.cpu.max_entitlement_percent)]))
    out += ["", "[Memory Details]"] + MEMORY.header()
    out.append(MEMORY.row([_size(d.memory.total_mb), _size(d.memory.reserved_mb)]))
    if d.dynmem is not None:
        out += ["", "[Dynamic Memory Information]"] + DYNMEM.header()
        dm = d.dynmem
        out.append(DYNMEM.row([None if x is None else format_mb(x)
                               for x in (dm.min_mb, dm.target_mb, dm.max_mb)]))
    out += ["", "[Storage Interface Details]"] + STORAGE.header()
    out += [_storage_row(s) for s in d.storage]
    out += ["", "[Network Interface Details]"] + NETWORK.header()
    out += [NETWORK.row([n.interface, n.adapter, n.vswitch, n.port, n.bus, n.slot,
                         n.function, n.mac]) for n in d.network]
    out += ["", "[Misc Interface Details]"] + STORAGE.header()
    out += [STORAGE.row([m.device, m.adapter, None, None, None, None, None, m.storage,
                         m.location]) for m in d.misc]
    return out


def invalid_table(bad: v.InvalidGuestDetails) -> list[str]:
    out = ["[Virtual Machine Details]"] + DETAILS.header()
    out.append(DETAILS.row([bad.name[:20], None, None, bad.state]))
    out.append(f"{bad.file}:{bad.line}: {bad.reason}")
    return out


# --- -V --------------------------------------------------------------------------------------

def _fields_of(rec):
    import dataclasses
    return dataclasses.fields(rec)


def _verbose_value(rec, f) -> str | None:
    value = getattr(rec, f.name)
    unit = f.metadata.get("unit")
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(str(i) for i in value)
    if unit == "%":
        return _pct(value)
    if unit == "MB":
        if isinstance(rec, v.DynamicMemoryDetails):
            return format_mb(value)
        return format_memory(value)
    if unit == "KB":
        return f"{value} KB"
    if unit == "Mhz":
        return f"{value} Mhz"
    return str(value)


def _record_block(rec, skip=()) -> list[str]:
    return [_label(f.metadata["label"], _verbose_value(rec, f))
            for f in _fields_of(rec) if f.name not in skip]


def guest_verbose(d: v.GuestDetails) -> list[str]:
    out = ["[Virtual Machine Details]"] + _record_block(d.machine)
    out += ["", "[Authorized Administrators]"] + _admin_lines(d.admins)
    skip_cycles = ("entitlement_mhz",) if d.cpu.entitlement_mhz is None else ()
    out += ["", "[Virtual CPU Details]"] + _record_block(d.cpu, skip_cycles)
    out += ["", "[Memory Details]"] + _record_block(d.memory)
    if d.dynmem is not None:
        out += ["", "[Dynamic Memory Information]"]
        if d.dynmem.live:
            out += _record_block(d.dynmem, ("live",))
        else:
            out.append("NOTE: Dynamic data unavailable, configured values only")
            out += [_label(f.metadata["label"], _verbose_value(d.dynmem, f))
                    for f in _fields_of(d.dynmem)
                    if f.name in ("type", "min_mb", "target_mb", "max_mb")]
    for s in d.storage:
        out += ["", "[Storage Interface Details]"] + _record_block(s)
    for n in d.network:
        out += ["", "[Network Interface Details]"] + _record_block(n)
    for m in d.misc:
        out += ["", "[Misc Interface Details]"] + _record_block(m)
    return out


def invalid_verbose(bad: v.InvalidGuestDetails) -> list[str]:
    return ["[Virtual Machine Details]"] + _record_block(bad)


def details(objs, *, verbose: bool) -> list[str]:
    out: list[str] = []
    for obj in objs:
        if out:
            out.append("")
        if isinstance(obj, v.InvalidGuestDetails):
            out += invalid_verbose(obj) if verbose else invalid_table(obj)
        else:
            out += guest_verbose(obj) if verbose else guest_table(obj)
    return out


# --- -d --------------------------------------------------------------------------------------

def devices(d: v.DeviceSpecs) -> list[str]:
    out = ["[Virtual Machine Devices]", "[Storage Interface Details]"]
    out += [format_resource(s, mac_style="hex", show_port=False) for s in d.storage]
    out.append("[Network Interface Details]")
    out += [format_resource(n, mac_style="hex", show_port=False) for n in d.network]
    out.append("[Misc Interface Details]")
    out += [format_misc(m) for m in d.misc]
    return out


# --- -s --------------------------------------------------------------------------------------

def host_resources(h: v.HostResources) -> list[str]:
    out = ["[HPVM Server System Resources]",
           f"Processor speed = {h.cpu_mhz} Mhz",
           f"Total physical memory = {h.memory_mb} Mbytes",
           f"Total number of processors = {h.cpus}",
           f"Available memory = {h.available_memory_mb} Mbytes",
           f"Available swap space = {h.available_swap_mb} Mbytes",
           f"Maximum vcpus for an HP-UX virtual machine = {h.max_vcpus_hpux}",
           f"Maximum vcpus for a Windows virtual machine = {h.max_vcpus_windows}",
           f"Maximum vcpus for a Linux virtual machine = {h.max_vcpus_linux}"]
    for n, mhz in enumerate(h.available_entitlement_mhz, 1):
        out.append(f"Available entitlement for a {n} way virtual machine = {mhz} Mhz")
    return out


# --- -r --------------------------------------------------------------------------------------

def resources(rows: list[v.ResourceAllocation], *, per_vcpu: bool) -> list[str]:
    out = ["[Virtual Machine Resource Allocation]"] + RESOURCES.header()
    for r in rows:
        out.append(RESOURCES.row([r.name[:20], r.vm_number, r.vcpus,
                                  entitlement_text(r.entitlement_percent, r.entitlement_mhz),
                                  _pct(r.max_entitlement_percent), _pct(r.percent_usage),
                                  r.cumulative_mcycles, _size(r.memory_mb),
                                  _size(r.current_memory_mb)]))
    if per_vcpu:
        for r in rows:
            out += ["", "[Virtual CPU Usage]"] + VCPU_USAGE.header()
            out += [VCPU_USAGE.row([u.index, u.cumulative_mcycles, _pct(u.guest_percent),
                                    _pct(u.host_percent), u.achieved_mhz])
                    for u in r.vcpu_usage]
            out.append(f"Sampling Interval = {r.sampling_interval_s:g} seconds")
    return out


# --- -e --------------------------------------------------------------------------------------

def event_time(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def events(entries: list[v.EventEntry]) -> list[str]:
    out = ["[HPVM Event Log]"] + EVENTS.header()
    for e in entries:
        out.append(EVENTS.row([e.seq, event_time(e.time), e.actor, e.subject, e.kind,
                               e.detail]))
    return out


# --- -S --------------------------------------------------------------------------------------

def scheduler(s: v.SchedulerMode) -> list[str]:
    out = [f"HPVM scheduler is running in {s.mode} mode."]
    if s.controlled:
        out.append("Controller process information:")
        out += [f"NAME=gWLM,GUEST={name}" for name in s.controlled]
    out.append("Startable virtual machines:")
    out.append(",".join(s.startable))
    return out


# --- -m --------------------------------------------------------------------------------------

def multi_server(m: v.MultiServer) -> list[str]:
    if not m.configured:
        return ["No HPVM multi-server environment configured"]
    out = ["HPVM Multi-server environment",
           f"This servers identifier={'' if m.this_server_id is None else m.this_server_id}"]
    for s in m.servers:
        out += [f"Server_id={'' if s.server_id is None else s.server_id}",
                f"Server_state={s.state}", f"Server_ipaddr={s.ipaddr}",
                f"Server_hostname={s.hostname}"]
    return out
