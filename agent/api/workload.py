"""WorkloadOps: the controls a workload manager moves on running guests (issue 5).

* **Memory** (spec 03 §6, DECISIONS §2): `set_memory_target` starts moving a running guest's
  memory towards `ram_target` (0 = comfortable minimum, "start" = boot memory, or MB),
  in whole 64 MB chunks at the model rate; a new target aborts the old one; growth stops
  where the host's free memory ends, a shrink at `ram_dyn_min`.
* **CPU** (spec 01 §14): `set_entitlement` changes a running guest's entitlement at once when
  the host can grant it, else refuses with the guide's "Insufficient cpu resource" text;
  `cpu_usage` is the model's accounting behind `hpvmstatus -r` (agent.cpu).
* **Guest side** (hpvmmgmt): a guest with `dynamic_memory_control=1` gets a credential that
  names it and carries a random token (`uuids/<uuid>/guestctl/credential`, mode 0600, made
  and removed by the host side as the keyword changes). `guest_session` checks a presented
  credential against that guest's own; everything hpvmmgmt does goes through the session.
* **The periodic tick** `settle()`: persists what the clock decided (finished graceful stops,
  DM drivers that loaded, OS types detected). Memory moves need no tick: where memory is
  follows from the move's stored start, target and time, whoever reads it.

Both the hpvm* commands and the CIM providers call these; refusals raise AgentError and
change nothing.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from agent import cpu, rules
from agent.api.core import guest_dir
from agent.api.outcome import Outcome
from agent.backends.base import ACTIVE_STATES
from agent.errors import AgentError, DriverUnavailable
from agent.guest import Entitlement, Guest

CREDENTIAL_DIR = "guestctl"          # a folder, so hpvmcollect's guest file sweep skips it
CREDENTIAL_FILE = f"{CREDENTIAL_DIR}/credential"
TOKEN_BYTES = 32


def credential_path(uuid: str) -> str:
    """Store-relative path of a guest's hpvmmgmt credential."""
    return f"{guest_dir(uuid)}/{CREDENTIAL_FILE}"


def format_credential(guest: Guest, token: str) -> bytes:
    return (f"# hpvmmgmt credential of guest {guest.name}: keep it secret, mode 0600\n"
            f"guest = {guest.uuid}\ntoken = {token}\n").encode()


def parse_credential(data: bytes | str) -> tuple[str, str]:
    """(guest uuid, token) from a credential file; AgentError 'denied' when malformed."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    if not fields.get("guest") or not fields.get("token"):
        raise AgentError("The credential is not a guest credential.", "denied")
    return fields["guest"], fields["token"]


@dataclass(frozen=True)
class GuestSession:
    """A verified guest-side caller: acts for `uuid` only."""

    uuid: str
    name: str


class WorkloadOps:
    """Mixed into `agent.api.Agent` (uses GuestOps' `_change`, AgentCore's reads)."""

    # ------------------------------------------------------------------ memory

    def set_memory_target(self, guest: Guest, target, *, actor: str | None = None) -> Outcome:
        """`ram_target` on a running guest: 0 | "start" | MB. `info` holds the guide's
        "Attempting to ..." and "Successfully began ..." lines (plus a warning when the
        target lies outside [ram_dyn_min, ram_dyn_max]); `value` the effective target MB."""
        from agent.api.guests import GuestChanges
        target = _ram_target_value(target)
        self._op_local().last_ram_target = None
        with self.acting_as(actor):
            out = self.modify_guest(guest, GuestChanges(ram_target=target))
        effective = getattr(self._op_local(), "last_ram_target", None)
        return Outcome(warnings=out.warnings, info=out.info, value=effective)

    def _ram_target(self, txn, rec, guest: Guest, target, running: bool) -> list[str]:
        """Start the move (inside the caller's transaction). Called by modify_guest."""
        if not running:
            raise AgentError(f"The guest '{guest.name}' is not running; ram_target changes a "
                             "running guest only.", "state")
        mem = self.driver.runtime_of(rec).memory
        if mem is None or not mem.driver:
            raise DriverUnavailable(guest.name)
        if target == "start":
            want = mem.boot_mb
        elif target in (0, "0"):
            want = mem.comfortable_min_mb
        else:
            want = int(target)
        if want <= 0:
            raise AgentError(f"Invalid ram_target {want} MB: it must be greater than 0.")
        lo, hi = guest.dynmem.min_mb, guest.dynmem.max_mb
        notes = []
        if (lo is not None and want < lo) or (hi is not None and want > hi):
            notes.append(f"Warning: ram_target {want} MB is outside the dynamic memory range "
                         f"{lo or 0} MB - {hi or mem.boot_mb} MB.")
        running_now = list(self.running_guests().values())
        room = rules.growth_room_mb(self.host, running_now, self.resident_memory())
        effective = self.driver.set_memory_target(txn, guest, want, room_mb=room)
        self._op_local().last_ram_target = effective
        verb = "decrease" if effective < mem.current_mb else "increase"
        self._log(txn, guest, f"ram_target set to {effective} MB.")
        txn.event("guest.memory_target", rec.uuid, name=guest.name, target_mb=effective,
                  from_mb=mem.current_mb)
        return notes + [f"Attempting to {verb} memory from {mem.current_mb} MB to {effective} MB.",
                        f"Successfully began to change ram_target to {effective} MB."]

    # ------------------------------------------------------------------ CPU

    def set_entitlement(self, guest: Guest, entitlement: Entitlement, *,
                        active_only: bool = False, actor: str | None = None) -> Outcome:
        """A new per-vCPU entitlement. On a running guest it applies at once and is refused
        (AgentError 'capacity', the guide's "Insufficient cpu resource for guest.") when
        the host cannot guarantee it beside the other running guests."""
        from agent.api.guests import GuestChanges
        problem = rules.entitlement_problem(entitlement, self.host)
        if problem:
            raise AgentError(problem, "invalid")
        with self.acting_as(actor):
            return self.modify_guest(guest, GuestChanges(entitlement=entitlement),
                                     active_only=active_only)

    def _cpu_demands(self) -> tuple[list[cpu.Demand], dict]:
        """The running guests as the scheduler sees them, and uuid -> (guest, runtime)."""
        from agent.backends.ivm import ModelFacts
        self._cache.refresh()
        demands, running = [], {}
        for rec in self._cache.index()["started"]:
            rt = self.driver.runtime_of(rec)
            if rt.state not in ACTIVE_STATES:
                continue
            model = rec.memo.get("model") if rec.memo else None
            if model is None:
                model = ModelFacts.parse(rec.model_text)
            g = rec.current
            demands.append(cpu.demand_of(g, model, self.host.cpu_mhz))
            running[rec.uuid] = (g, rt)
        return demands, running

    def cpu_usage(self) -> dict[str, tuple[float, float]]:
        """uuid -> (per-vCPU MHz the guest gets now, million cycles used since its boot)."""
        demands, running = self._cpu_demands()
        rates = cpu.achieved_mhz(demands, self.host.cpus, self.host.cpu_mhz)
        with self.store.snapshot() as snap:
            cp = cpu.Checkpoint.parse(snap.read(cpu.ACCOUNTING))
        now = self.clock.now()
        out = {}
        for d in demands:
            g, rt = running[d.uuid]
            total = rates[d.uuid] * d.vcpus
            out[d.uuid] = (rates[d.uuid], cpu.cumulative_mcycles(
                cp, d.uuid, rt.details.get("boots", 0), rt.started_at or now, total, now))
        return out

    def _cpu_checkpoint(self, txn) -> None:
        """Fold the usage so far into the checkpoint before rates change."""
        demands, running = self._cpu_demands()
        if not demands and txn.read(cpu.ACCOUNTING) is None:
            return
        rates = cpu.achieved_mhz(demands, self.host.cpus, self.host.cpu_mhz)
        old = cpu.Checkpoint.parse(txn.read(cpu.ACCOUNTING))
        now = self.clock.now()
        new = cpu.Checkpoint(now, {})
        for d in demands:
            g, rt = running[d.uuid]
            boots = rt.details.get("boots", 0)
            new.used[d.uuid] = (boots, cpu.cumulative_mcycles(
                old, d.uuid, boots, rt.started_at or now, rates[d.uuid] * d.vcpus, now))
        txn.write(cpu.ACCOUNTING, new.to_bytes())

    # ------------------------------------------------------------------ the periodic tick

    def settle(self) -> set[str]:
        """Persist what the clock decided for every started guest; returns the UUIDs whose
        facts were written. Cheap when nothing finished (no write, no commit)."""
        touched: set = set()
        with self._change(touched, cpu_checkpoint=False):
            pass
        return touched

    # ------------------------------------------------------------------ guest credential

    def _sync_credential(self, txn, uuid: str, guest: Guest) -> None:
        """Keep the guest's credential in step with dynamic_memory_control."""
        path = credential_path(uuid)
        exists = txn.read(path) is not None
        if guest.dynmem.control and not exists:
            txn.write(path, format_credential(guest, secrets.token_hex(TOKEN_BYTES)), mode=0o600)
            self._log(txn, guest, "Guest control credential created (dynamic_memory_control=1).")
        elif not guest.dynmem.control and exists:
            txn.delete(path)
            self._log(txn, guest, "Guest control credential removed.")

    def guest_credential_file(self, guest: Guest) -> str:
        """Where the host keeps the guest's credential (to hand to the guest's hpvmmgmt);
        AgentError 'state' when guest-side control is not enabled."""
        import os
        rel = credential_path(guest.uuid)
        with self.store.snapshot() as snap:
            present = snap.read(rel) is not None
        if not present:
            raise AgentError(f"Guest-side control is not enabled for '{guest.name}' "
                             "(hpvmmodify -x dynamic_memory_control=1).", "state")
        return os.path.join(str(self.store.root), rel)

    def guest_session(self, guest_uuid: str, token: str) -> GuestSession:
        """Verify a guest-side caller: `token` must be the credential of guest `guest_uuid`,
        and that guest must still allow guest-side control. AgentError 'denied' otherwise."""
        rec = self._record(guest_uuid) if guest_uuid else None
        if rec is None or rec.current is None:
            raise AgentError("The credential does not name a guest of this host.", "denied")
        with self.store.snapshot() as snap:
            stored = snap.read(credential_path(guest_uuid))
        if stored is None or not rec.current.dynmem.control:
            raise AgentError(f"Guest-side control is not enabled for guest "
                             f"'{rec.current.name}' (dynamic_memory_control=0).", "denied")
        _, expected = parse_credential(stored)
        if not hmac.compare_digest(expected.encode(), str(token).encode()):
            raise AgentError(f"The credential does not belong to guest '{rec.current.name}'.",
                             "denied")
        return GuestSession(guest_uuid, rec.current.name)

    def guest_view(self, session: GuestSession):
        """The guest's own detailed view (`agent.api.views.GuestDetails`, hpvmmgmt -M/-X),
        with live dynamic memory figures; AgentError 'failed' with the guide's line when no
        dynamic memory driver runs in the guest."""
        from agent.api.views import guest_details
        guest = self.find_by_uuid(session.uuid)
        rt = self.runtime(guest)
        if rt.memory is None or not rt.memory.driver:
            raise AgentError("Dynamic memory driver not found on guest.", "failed")
        revision = self._sv_revisions([guest])[guest.uuid]
        return guest_details(guest, rt, self.host, revision=revision)

    def guest_memory(self, session: GuestSession):
        """What the guest's DM driver reports (`agent.api.views.DynamicMemoryDetails`)."""
        return self.guest_view(session).dynmem

    def guest_set_memory_target(self, session: GuestSession, target) -> Outcome:
        """hpvmmgmt -x ram_target: the same move the host starts, asked from inside."""
        guest = self.find_by_uuid(session.uuid)
        rt = self.runtime(guest)
        if rt.memory is None or not rt.memory.driver:
            raise AgentError(["Failed to open dynamic memory driver, error: No such device.",
                              "Failed to set dynamic value error: No such device"], "failed")
        if not guest.dynmem.control:
            raise AgentError(f"Guest-side control is not enabled for guest '{guest.name}' "
                             "(dynamic_memory_control=0).", "denied")
        return self.set_memory_target(guest, target, actor=f"guest:{guest.name}")

    def guest_kit_version(self, session: GuestSession) -> str:
        """The guest kit installed in the guest ("" when none)."""
        return self.model_facts(self.find_by_uuid(session.uuid)).kit


def _ram_target_value(target):
    """0 | "start" | MB (int, or a size text such as "2048M")."""
    if isinstance(target, str):
        text = target.strip()
        if text.lower() == "start":
            return "start"
        if text == "0":
            return 0
        from agent.sizes import parse_size
        try:
            return parse_size(text, what="ram_target")
        except AgentError:
            raise AgentError(f"Invalid ram_target '{target}': expected 0, start or an amount "
                             "such as 2048M or 2G.") from None
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise AgentError(f"Invalid ram_target '{target}': expected 0, start or an amount in MB.")
    return target
