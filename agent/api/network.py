"""Vswitch operations (hpvmnet): create, delete, boot, halt, reboot, change/clone, VLAN ports,
and the reads behind hpvmnet's listings. Also what the guest rules ask about vswitches.

Every change runs in one store transaction: read the table, change it, write it, record the
event. A refusal raises `AgentError` before anything is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from agent.api.outcome import Outcome
from agent.devicedb import DeviceDatabase
from agent.errors import AgentError
from agent.vswitch import (MAX_PORTS, GuestPort, PortInfo, Vswitch, VswitchTable,
                           allocate_port, check_name, check_port, check_vlan, guest_ports,
                           nic_name, port_holder, port_info, port_table)



@dataclass
class VswitchSummary:
    """One row of `hpvmnet` (Name, Number, State, Mode, NamePPA, MAC Address, IP Address).
    `mac` and `ip` are None when blank, "N/A" for a local vswitch."""

    name: str
    number: int
    state: str
    mode: str
    nic: str | None
    mac: str | None
    ip: str | None


@dataclass
class VnicInfo:
    """A guest vNIC on a vswitch, as `hpvmnet -V` lists it."""

    guest: str
    mac: str                 # 0x + 12 uppercase hex digits
    ip: str                  # "Guest halted" when the guest is not running
    port: int | None


@dataclass
class VswitchDetails:
    summary: VswitchSummary
    pid: int | None
    vnics: list[VnicInfo]
    ports: list[PortInfo]
    counters: dict[str, int] | None = None   # only when one vswitch is selected


@dataclass
class PortReport:
    """`hpvmnet -S name -p {N|all}`."""

    vswitch: str
    max_ports: int
    ports: list[PortInfo]
    all: bool


# The counters `hpvmnet -V` shows for a selected vswitch, in the guide's order. The embedded
# model moves no packets, so they read 0; a backend that carries traffic fills them.
COUNTERS = ("Packets in", "Packets out to stream", "Packets out to guest", "Packets dropped",
            "Broadcasts", "Counter 0", "Counter 1", "Counter 2", "Counter 3", "Cycles in",
            "Cycles out to stream", "Cycles out to guest", "Cycles switch packet")


def hex_mac(mac: str | None, upper: bool = False) -> str:
    """`0x` + 12 hex digits from any of the usual spellings."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", (mac or "").removeprefix("0x").removeprefix("0X"))
    if len(digits) != 12:
        return ""
    return "0x" + (digits.upper() if upper else digits.lower())


class VswitchOps:
    """Mixin of `Agent`: uses `self.store`, `self.host`, `self.actor`, `self.guests()` and
    `self.running_guests()`."""

    # --- reads -------------------------------------------------------------------------

    def _vsw_vswitches(self) -> VswitchTable:
        return VswitchTable.load(self.store)

    def vswitch_status(self, name: str) -> str:
        """'up', 'down' or 'missing' (what the guest rules ask)."""
        sw = self._vsw_vswitches().get(name)
        if sw is None:
            return "missing"
        return "up" if sw.up else "down"

    def select_vswitch(self, name: str | None = None,
                       number: int | str | None = None) -> Vswitch:
        return self._vsw_vswitches().resolve(name, number)

    def _vsw_guest_ports(self, only: set[str] | None = None) -> list[GuestPort]:
        """The guests' vNICs (on the vswitches in `only`, when given) and whether each guest
        runs; the runtime is asked only of guests with a vNIC there."""
        running = set(self.running_guests())
        pairs = []
        for g in self.guests():
            if only is not None and not any(n.vswitch in only for n in g.nics):
                continue
            pairs.append((g, g.uuid in running))
        return guest_ports(pairs)

    def allocate_vswitch_port(self, vswitch: str, requested: int | None = None, *,
                              guests=None, besides: str | None = None) -> int:
        """The port a new vNIC on `vswitch` gets (see `agent.vswitch.allocate_port`).
        `guests` defaults to the defined guests; pass the list being built when several vNICs
        are allocated in one command. `besides` = a guest whose own vNICs are ignored."""
        pool = self.guests() if guests is None else guests
        nics = guest_ports((g, False) for g in pool if getattr(g, "name", None) != besides)
        return allocate_port(vswitch, nics, self._vsw_vswitches(), requested)

    def vswitch_port_holder(self, vswitch: str, port: int,
                            besides: str | None = None) -> str | None:
        """The running guest other than `besides` on that port (a start conflict)."""
        return port_holder(vswitch, port, self._vsw_guest_ports({vswitch}), besides)

    def vswitch_nic_restricted(self, vswitch: str) -> bool:
        """True when the vswitch or its host NIC is a restricted device (rdev)."""
        sw = self._vsw_vswitches().get(vswitch)
        db = DeviceDatabase.load(self.store)
        if sw is None:
            return db.is_restricted(vswitch, self.host)
        return db.is_restricted_vswitch(sw, self.host)

    def _vsw_host_nic(self, nic: str):
        for n in getattr(self.host, "nics", None) or []:
            if getattr(n, "name", None) == nic:
                return n
        return None

    def _vsw_summary(self, sw: Vswitch) -> VswitchSummary:
        if sw.nic is None:
            mac = ip = "N/A"
        elif sw.up:
            hn = self._vsw_host_nic(sw.nic)
            mac = hex_mac(getattr(hn, "mac", None)) or None
            ip = None        # the host file records no address per NIC
        else:
            mac = ip = None
        return VswitchSummary(sw.name, sw.number, sw.state, sw.mode, sw.nic, mac, ip)

    def _vsw_selected(self, name, number) -> list[Vswitch]:
        table = self._vsw_vswitches()
        if name is None and number is None:
            return table.all()
        return [table.resolve(name, number)]

    def vswitch_summaries(self, name: str | None = None,
                          number: int | str | None = None) -> list[VswitchSummary]:
        return [self._vsw_summary(sw) for sw in self._vsw_selected(name, number)]

    def vswitch_details(self, name: str | None = None, number: int | str | None = None,
                        ) -> list[VswitchDetails]:
        """`hpvmnet [-S|-s] -V`: every vswitch (or the selected one) with its vNICs and
        configured ports; counters when one is selected."""
        switches = self._vsw_selected(name, number)
        nics = self._vsw_guest_ports({sw.name for sw in switches})
        out = []
        for sw in switches:
            vnics = [VnicInfo(gp.guest, hex_mac(gp.mac, upper=True),
                              "" if gp.running else "Guest halted", gp.port)
                     for gp in nics if gp.vswitch == sw.name]
            counters = None
            if name is not None or number is not None:
                counters = {label: 0 for label in COUNTERS}
            out.append(VswitchDetails(self._vsw_summary(sw), sw.pid if sw.up else None, vnics,
                                      port_table(sw, sw.name, nics), counters))
        return out

    def vswitch_ports(self, name: str | None = None, number: int | str | None = None,
                      port: int | str = "all") -> PortReport:
        """`hpvmnet -S name -p {N|all}`: the configured ports, or one port."""
        sw = self._vsw_vswitches().resolve(name, number)
        nics = self._vsw_guest_ports({sw.name})
        if str(port) == "all":
            return PortReport(sw.name, MAX_PORTS, port_table(sw, sw.name, nics), True)
        return PortReport(sw.name, MAX_PORTS, [port_info(sw, check_port(port), nics)], False)

    # --- changes -----------------------------------------------------------------------

    def _vsw_check_nic(self, nic_id) -> str:
        nic = nic_name(nic_id)
        if self._vsw_host_nic(nic) is None:
            raise AgentError(f"The network interface {nic} does not exist on this "
                             "VM Host", "not_found")
        db = DeviceDatabase.load(self.store)
        if db.is_restricted(nic, self.host):
            raise AgentError(f"The network interface {nic} is restricted to the "
                             "VM Host (rdev)", "conflict")
        return nic

    def create_vswitch(self, name: str, nic_id: int | str | None = None) -> Outcome:
        """`hpvmnet -c -S name [-n nic]`: a new vswitch, Down; local when no NIC is given."""
        check_name(name)
        nic = self._vsw_check_nic(nic_id) if nic_id is not None else None
        with self.store.transaction(actor=self.actor) as txn:
            table = VswitchTable.load(txn)
            sw = table.create(name, nic)
            table.save(txn)
            txn.event("vswitch.create", name, number=sw.number, nic=nic or "")
        return Outcome(value=sw)

    def delete_vswitch(self, name: str | None = None, number: int | str | None = None, *,
                       check_only: bool = False) -> Outcome:
        """`hpvmnet -d`: refused while the vswitch is Up. Guests that name it keep their
        vNICs; creating a vswitch of the same name again reconnects them."""
        with self.store.transaction(actor=self.actor) as txn:
            table = VswitchTable.load(txn)
            sw = table.resolve(name, number)
            table.delete(sw.name)
            if check_only:
                raise _CheckPassed(sw)
            table.save(txn)
            txn.event("vswitch.delete", sw.name, number=sw.number)
        return Outcome(value=sw)

    def boot_vswitch(self, name: str | None = None, number: int | str | None = None) -> Outcome:
        """`hpvmnet -b`: start it (at most one booted vswitch per host NIC)."""
        with self.store.transaction(actor=self.actor) as txn:
            table = VswitchTable.load(txn)
            sw = table.resolve(name, number)
            if sw.nic is not None:
                if self._vsw_host_nic(sw.nic) is None:
                    raise AgentError(f"The network interface {sw.nic} of vswitch "
                                     f"'{sw.name}' does not exist", "not_found")
                if DeviceDatabase.load(txn).is_restricted(sw.nic, self.host):
                    raise AgentError(f"The network interface {sw.nic} is restricted "
                                     "to the VM Host (rdev)", "conflict")
            was_up = sw.up
            table.boot(sw.name)
            if not was_up:
                table.save(txn)
                txn.event("vswitch.boot", sw.name, number=sw.number, pid=sw.pid)
        return Outcome(value=sw)

    def halt_vswitch(self, name: str | None = None, number: int | str | None = None, *,
                     check_only: bool = False) -> Outcome:
        """`hpvmnet -h`: stop it. Running guests on it lose their network until it is booted
        again (their ports show `Down`)."""
        with self.store.transaction(actor=self.actor) as txn:
            table = VswitchTable.load(txn)
            sw = table.resolve(name, number)
            if check_only:
                raise _CheckPassed(sw)
            if sw.up:
                table.halt(sw.name)
                table.save(txn)
                txn.event("vswitch.halt", sw.name, number=sw.number)
        return Outcome(value=sw)

    def reboot_vswitch(self, name: str | None = None, number: int | str | None = None, *,
                       check_only: bool = False) -> Outcome:
        """`hpvmnet -r`: halt, then boot (a new hpvmnetd process)."""
        with self.store.transaction(actor=self.actor) as txn:
            table = VswitchTable.load(txn)
            sw = table.resolve(name, number)
            if check_only:
                raise _CheckPassed(sw)
            table.halt(sw.name)
            table.boot(sw.name)
            table.save(txn)
            txn.event("vswitch.reboot", sw.name, number=sw.number, pid=sw.pid)
        return Outcome(value=sw)

    def change_vswitch(self, name: str | None = None, number: int | str | None = None, *,
                       nic_id: int | str, new_name: str | None = None) -> Outcome:
        """`hpvmnet -C -n nic`: bind the vswitch to another host NIC (number and state kept).
        With `-N new`: leave it as it is and make a Down clone on that NIC instead, carrying
        the VLAN port rules but no reservations."""
        nic = self._vsw_check_nic(nic_id)
        if new_name is not None:
            check_name(new_name)
        with self.store.transaction(actor=self.actor) as txn:
            table = VswitchTable.load(txn)
            sw = table.resolve(name, number)
            if new_name is not None:
                made = table.clone(sw.name, new_name, nic)
                table.save(txn)
                txn.event("vswitch.clone", made.name, number=made.number, source=sw.name,
                          nic=nic)
                return Outcome(value=made)
            old = sw.nic
            table.change_nic(sw.name, nic)
            table.save(txn)
            txn.event("vswitch.change", sw.name, number=sw.number, nic=nic, old_nic=old or "")
        return Outcome(value=sw)

    def set_vswitch_port_vlan(self, name: str | None = None, number: int | str | None = None,
                              *, port: int | str, vlan: int | str | None) -> Outcome:
        """`hpvmnet -u portid:N:vlanid:{id|none}`."""
        port_n = check_port(port)
        vlan_id = check_vlan(vlan)
        with self.store.transaction(actor=self.actor) as txn:
            table = VswitchTable.load(txn)
            sw = table.resolve(name, number)
            table.set_vlan(sw.name, port_n, vlan_id)
            table.save(txn)
            txn.event("vswitch.vlan", sw.name, port=port_n,
                      vlan="none" if vlan_id is None else vlan_id)
        return Outcome(value=sw)

    def check_vswitch_action(self, action: str, name: str | None = None,
                             number: int | str | None = None) -> Vswitch:
        """Run the checks of a confirmed action (delete/halt/reboot) without changing
        anything, so a front end asks its question only when the answer matters."""
        op = {"delete": self.delete_vswitch, "halt": self.halt_vswitch,
              "reboot": self.reboot_vswitch}[action]
        try:
            op(name, number, check_only=True)
        except _CheckPassed as ok:
            return ok.vswitch
        raise AssertionError("check_only did not stop the change")


class _CheckPassed(Exception):
    """Unwinds a check-only transaction (nothing commits) carrying the selected vswitch."""

    def __init__(self, vswitch: Vswitch):
        self.vswitch = vswitch
