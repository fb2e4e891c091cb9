"""`ivm`: the embedded Integrity VM host model (DECISIONS §3), a driver with no outside service.

A guest's runtime is not a process here but a few facts kept in the store beside its
configuration (`uuids/<uuid>/runtime`): the phase (off, running, stopping), when it started,
when a stop was asked, its pid and minor device, a pending memory move. The state anyone sees
is derived from those facts, the model facts of `hpvmmodel` (`uuids/<uuid>/model`: installed
OS, guest kit, workload) and the injected clock, so hpvmstart in one process and hpvmstatus in
another agree, and tests drive progress by moving a ManualClock:

    Off --start--> Booting --efi_seconds--> On (EFI) --os_boot_seconds (OS installed)--> On (OS)
    On (*) --graceful stop--> Stopping --stop_seconds--> Off;   hard stop: straight to Off
    hpvmmodel attn: On (ATTN!)   (the guest no longer answers interrupts)

Dynamic memory (DECISIONS §2): boot memory = memory - 9 MB; with the guest kit in an HP-UX
guest and ram_dyn_type any|driver the driver runs, shrinks to ram_dyn_target_start after boot,
and moves 64 MB chunks towards a target at `memory_mb_per_second`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from agent.backends.base import (BOOTING, OFF, ON_ATTN, ON_EFI, ON_OS, STOPPING, Driver,
                                 GuestRuntime, MemoryStats)
from agent.errors import AgentError, DriverUnavailable
from agent.rules import CHUNK_MB, boot_memory_mb, dynmem_floor_mb, effective_target_mb

DEFAULT_TIMINGS = {"efi_seconds": 2.0, "os_boot_seconds": 5.0, "stop_seconds": 3.0,
                   "memory_mb_per_second": 256.0}
OS_BASE_MB = 512          # what an idle guest OS needs: the comfortable minimum's floor
DEFAULT_WORKLOAD_MB = 247  # gives the guide's sample "Comfortable minimum 759 MB"
PID_BASE = 20000
# The dynamic memory support the host ships (spec 03 §6.10): a guest kit of another release
# leaves the guest's driver unloaded and the host logs the mismatch when the guest starts.
HOST_DM_VERSION = "A.03.00"
SYSLOG = "common/syslog.log"     # the model host's syslog (/var/adm/syslog/syslog.log)


def kit_matches(kit: str) -> bool:
    """A guest kit works with this host when it is of the same release (A.03.00[.xx])."""
    return kit == HOST_DM_VERSION or kit.startswith(HOST_DM_VERSION + ".")


def _kv_parse(text: str | None) -> dict[str, str]:
    out = {}
    for line in (text or "").splitlines():
        if " = " in line and not line.startswith("#"):
            k, _, v = line.partition(" = ")
            out[k.strip()] = v
    return out


def _kv_format(obj, header: str) -> bytes:
    lines = [header]
    for f in fields(obj):
        v = getattr(obj, f.name)
        if v is None:
            continue
        if isinstance(v, bool):
            v = int(v)
        lines.append(f"{f.name} = {v}")
    return ("\n".join(lines) + "\n").encode()


def _coerce(cls, raw: dict[str, str]):
    kwargs = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        v = raw[f.name]
        try:
            if f.type in ("bool",):
                kwargs[f.name] = v == "1"
            elif f.type in ("int", "int | None"):
                kwargs[f.name] = int(v)
            elif f.type in ("float", "float | None"):
                kwargs[f.name] = float(v)
            else:
                kwargs[f.name] = v
        except ValueError:
            continue      # a damaged runtime fact reads as its default, never as a crash
    return cls(**kwargs)


@dataclass(frozen=True)
class RuntimeFacts:
    """What the model remembers about a started guest."""

    phase: str = "off"            # off | running | stopping
    started_at: float = 0.0       # wall clock of the (re)boot
    stop_at: float = 0.0
    pid: int = 0
    minor: int = 0
    boots: int = 0
    attn: bool = False
    next_promoted: bool = False   # this boot promoted vmm_config.next
    mem_target: int | None = None  # explicit ram_target (effective MB)
    mem_from: int | None = None
    mem_since: float | None = None
    mem_cap: int | None = None     # growth stops here: host free memory when the target was set

    @classmethod
    def parse(cls, text: str | None) -> "RuntimeFacts":
        return _coerce(cls, _kv_parse(text))

    def to_bytes(self) -> bytes:
        return _kv_format(self, "# ivm runtime facts (derived state = facts + clock)")


@dataclass(frozen=True)
class ModelFacts:
    """What a real guest would hold, set with `hpvmmodel` (docs/model-control.md)."""

    os: str = ""                  # installed OS: HPUX | WINDOWS | LINUX; "" = none (stays in EFI)
    os_version: str = ""
    installed_at: float = 0.0
    kit: str = ""                 # guest management software version; "" = not installed
    workload_mb: int = DEFAULT_WORKLOAD_MB
    # CPU the guest's work asks of each vCPU, in percent of one physical CPU; None = it runs
    # at its entitlement (the model's quiet default). Drives `hpvmstatus -r` (agent.cpu).
    cpu_percent: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> "ModelFacts":
        return _coerce(cls, _kv_parse(text))

    def to_bytes(self) -> bytes:
        return _kv_format(self, "# ivm model facts (set with hpvmmodel)")


def runtime_path(uuid: str) -> str:
    return f"uuids/{uuid}/runtime"


def model_path(uuid: str) -> str:
    return f"uuids/{uuid}/model"


class IvmDriver(Driver):
    name = "ivm"

    def __init__(self, core):
        self.core = core

    # ------------------------------------------------------------------ facts

    def host_facts(self):
        return self.core.host

    def timing(self, name: str) -> float:
        t = getattr(self.core.host, "timings", None)
        value = getattr(t, name, None) if t is not None else None
        if value is None and isinstance(t, dict):
            value = t.get(name)
        return float(value if value is not None else DEFAULT_TIMINGS[name])

    # ------------------------------------------------------------------ derived state

    def runtime(self, guest) -> GuestRuntime:
        rec = self.core._record(guest.uuid)
        if rec is None:
            raise AgentError(f"Unable to find the guest '{guest.name}'.", "not_found")
        return self.runtime_of(rec)

    def runtime_of(self, rec) -> GuestRuntime:
        if rec.runtime_text is None:             # never started: Off, without parsing anything
            return GuestRuntime(state=OFF, pending_next=rec.next is not None)
        memo = getattr(rec, "memo", {})
        if "facts" not in memo:
            memo["facts"] = RuntimeFacts.parse(rec.runtime_text)
            memo["model"] = ModelFacts.parse(rec.model_text)
        facts, model = memo["facts"], memo["model"]
        return self.derive(facts, model, rec.current, pending_next=rec.next is not None)

    def valid_until(self, records, now: float) -> float:
        """The model's state is facts + clock: the next instant it moves is the earliest
        phase transition (Booting -> On (EFI) -> On (OS), Stopping -> Off) or memory move
        step of a started guest still to come."""
        until = math.inf
        for rec in records:
            until = min(until, self._record_valid_until(rec, now))
        return until

    def _record_valid_until(self, rec, now: float) -> float:
        if rec.runtime_text is None or rec.current is None:
            return math.inf
        memo = rec.memo
        if "facts" not in memo:
            memo["facts"] = RuntimeFacts.parse(rec.runtime_text)
            memo["model"] = ModelFacts.parse(rec.model_text)
        facts, model = memo["facts"], memo["model"]
        if facts.phase not in ("running", "stopping"):
            return math.inf
        moments = [facts.started_at + self.timing("efi_seconds")]
        os_at = self.os_ready_at(facts, model)
        if os_at is not None:
            moments.append(os_at)
        if facts.phase == "stopping":
            moments.append(facts.stop_at + self.timing("stop_seconds"))
        rt = self.derive(facts, model, rec.current, pending_next=rec.next is not None)
        if rt.memory is not None and rt.memory.moving:
            since = facts.mem_since if facts.mem_target is not None else os_at
            rate = self.timing("memory_mb_per_second")
            if since is None or rate <= 0:
                return now
            chunks = int(max(0.0, now - since) * rate // CHUNK_MB)
            # a little early rather than late: float rounding must not hide a step; a step
            # that close is due now (nothing kept)
            step_at = since + (chunks + 1) * CHUNK_MB / rate - 1e-6
            if step_at <= now:
                return now
            moments.append(step_at)
        later = [t for t in moments if t > now]
        return min(later) if later else math.inf

    def os_ready_at(self, facts: RuntimeFacts, model: ModelFacts) -> float | None:
        """When the guest OS is up: EFI reached, the OS installed, then os_boot_seconds."""
        if not model.os:
            return None
        efi_at = facts.started_at + self.timing("efi_seconds")
        return max(efi_at, model.installed_at) + self.timing("os_boot_seconds")

    def derive(self, facts: RuntimeFacts, model: ModelFacts, guest, *,
               pending_next: bool = False) -> GuestRuntime:
        now = self.core.clock.now()
        if facts.phase == "stopping" and now - facts.stop_at >= self.timing("stop_seconds"):
            facts = replace(facts, phase="off")
        if facts.phase not in ("running", "stopping") or guest is None:
            return GuestRuntime(state=OFF, pending_next=pending_next)
        os_at = self.os_ready_at(facts, model)
        in_os = os_at is not None and now >= os_at
        if facts.phase == "stopping":
            state = STOPPING
        elif now - facts.started_at < self.timing("efi_seconds"):
            state = BOOTING
        elif facts.attn:
            state = ON_ATTN
        else:
            state = ON_OS if in_os else ON_EFI
        details = {"boots": facts.boots, "next_promoted": facts.next_promoted}
        if in_os:
            details["detected_version"] = model.os_version
        return GuestRuntime(state=state, pid=facts.pid, started_at=facts.started_at,
                            minor_device=facts.minor,
                            detected_os=model.os if in_os else None,
                            memory=self._memory(facts, model, guest, state, os_at, now),
                            pending_next=pending_next, details=details)

    def dm_driver_running(self, model: ModelFacts, guest, state: str) -> bool:
        """The guest's DM driver runs in an HP-UX guest with the kit, when DM is configured."""
        return (guest.dynmem.type in ("any", "driver") and kit_matches(model.kit)
                and model.os == "HPUX" and state in (ON_OS, ON_ATTN, STOPPING))

    def _memory(self, facts, model, guest, state, os_at, now) -> MemoryStats:
        boot = boot_memory_mb(guest.memory_mb)
        driver = self.dm_driver_running(model, guest, state)
        comfortable = OS_BASE_MB + model.workload_mb
        if not driver:
            current = target = boot
            moving = False
        else:
            floor = dynmem_floor_mb(boot, guest.dynmem)
            cap = boot
            if facts.mem_target is not None:
                target, start, since = facts.mem_target, facts.mem_from, facts.mem_since
                if facts.mem_cap is not None:
                    cap = min(boot, facts.mem_cap)
            else:
                ts = guest.dynmem.target_start_mb
                target = effective_target_mb(boot, ts) if ts else boot
                start, since = boot, os_at
            current = self._moved(start, target, since, now, floor, cap)
            # where this move ends: the target, or the floor / host memory that stops it
            end = current if start is None or since is None else \
                self._moved(start, target, since, math.inf, floor, cap)
            moving = current != end
        hung = current < comfortable and self._pressure(current, comfortable) >= 100
        pressure = self._pressure(current, comfortable)
        free = 0 if hung else max(0, current - comfortable)
        available = min(current, model.workload_mb // 4 + (free // 8))
        return MemoryStats(boot_mb=boot, current_mb=current, target_mb=target,
                           comfortable_min_mb=comfortable, free_mb=free,
                           available_mb=available, pressure=pressure, driver=driver,
                           moving=moving)

    @staticmethod
    def _pressure(current: int, comfortable: int) -> int:
        if current >= comfortable:
            return 0
        span = max(1, comfortable // 4)
        return min(100, math.ceil(100 * (comfortable - current) / span))

    def _moved(self, start, target, since, now, floor, cap) -> int:
        """Memory moves whole 64 MB chunks at the model rate; a shrink stops at the floor
        (ram_dyn_min), a growth at `cap` (boot memory, or what the host had free)."""
        if start is None or since is None or start == target:
            return target if start is None else start
        rate = self.timing("memory_mb_per_second")
        elapsed = max(0.0, now - since)
        chunks = math.inf if elapsed == math.inf else int(elapsed * rate // CHUNK_MB)
        if target < start:
            return max(target, start - chunks * CHUNK_MB, min(floor, start))
        return max(start, min(target, start + chunks * CHUNK_MB, cap))

    # ------------------------------------------------------------------ changes

    def define(self, txn, guest) -> None:
        """A new guest: its model facts begin empty (no OS installed, no guest kit)."""
        if txn.read(model_path(guest.uuid)) is None:
            txn.write(model_path(guest.uuid), ModelFacts().to_bytes())

    def undefine(self, txn, guest) -> None:
        txn.delete(runtime_path(guest.uuid))
        txn.delete(model_path(guest.uuid))

    def _facts(self, txn, uuid: str) -> RuntimeFacts:
        data = txn.read(runtime_path(uuid))
        return RuntimeFacts.parse(data.decode("utf-8", "replace") if data else None)

    def start(self, txn, guest, *, next_promoted: bool = False) -> GuestRuntime:
        used = set()
        self.core._cache.refresh()
        for rec in self.core._cache.index()["started"]:     # only these can hold a minor
            if rec.uuid != guest.uuid:
                rt = self.runtime_of(rec)
                if rt.active and rt.minor_device:
                    used.add(rt.minor_device)
        minor = next(i for i in range(1, len(used) + 2) if i not in used)
        old = self._facts(txn, guest.uuid)
        facts = RuntimeFacts(phase="running", started_at=self.core.clock.now(),
                             pid=PID_BASE + guest.vm_number * 16 + (old.boots + 1) % 16,
                             minor=minor, boots=old.boots + 1, next_promoted=next_promoted)
        txn.write(runtime_path(guest.uuid), facts.to_bytes())
        return GuestRuntime(state=BOOTING, pid=facts.pid, started_at=facts.started_at,
                            minor_device=minor)

    def stop(self, txn, guest, *, hard: bool) -> None:
        facts = self._facts(txn, guest.uuid)
        if hard:
            txn.write(runtime_path(guest.uuid), RuntimeFacts(boots=facts.boots).to_bytes())
        else:
            txn.write(runtime_path(guest.uuid),
                      replace(facts, phase="stopping", stop_at=self.core.clock.now()).to_bytes())

    def reboot(self, txn, guest, *, next_promoted: bool = False) -> None:
        facts = self._facts(txn, guest.uuid)
        txn.write(runtime_path(guest.uuid), replace(
            facts, phase="running", started_at=self.core.clock.now(), attn=False,
            boots=facts.boots + 1, next_promoted=next_promoted, mem_target=None,
            mem_from=None, mem_since=None).to_bytes())

    def apply_live(self, txn, old, new) -> None:
        """The model reads the active configuration directly; what it must forget is a
        memory target that no longer applies (DM turned off, or the memory range moved)."""
        if new.dynmem.type == "none" or new.memory_mb != old.memory_mb:
            facts = self._facts(txn, new.uuid)
            if facts.mem_target is not None:
                txn.write(runtime_path(new.uuid), replace(
                    facts, mem_target=None, mem_from=None, mem_since=None).to_bytes())

    def set_memory_target(self, txn, guest, target_mb: int, *, room_mb: int | None = None) -> int:
        """Start moving towards `target_mb` from where the memory is now (a new target aborts
        the old move). `room_mb`: how far the host's free memory lets the guest grow."""
        rec = self.core._record(guest.uuid)
        rt = self.runtime_of(rec)
        if rt.memory is None or not rt.memory.driver:
            raise DriverUnavailable(guest.name)
        current = rt.memory.current_mb
        # a shrink removes whole chunks (DECISIONS §2); a growth goes to what was asked, never
        # past boot memory (the guide's "increase memory from 2103 MB to 4096 MB")
        effective = effective_target_mb(rt.memory.boot_mb, target_mb) if target_mb < current \
            else min(target_mb, rt.memory.boot_mb)
        cap = None
        if effective > current and room_mb is not None:
            cap = current + room_mb
        facts = self._facts(txn, guest.uuid)
        txn.write(runtime_path(guest.uuid), replace(
            facts, mem_target=effective, mem_from=current,
            mem_since=self.core.clock.now(), mem_cap=cap).to_bytes())
        return effective

    def note_kit_mismatch(self, txn, guest, model: "ModelFacts") -> bool:
        """At start, a guest kit of another release is logged to the host syslog, as the
        guide shows (spec 03 §6.10). True when it was."""
        if not model.kit or kit_matches(model.kit) or guest.dynmem.type == "none" \
                or model.os != "HPUX":
            return False
        import time as _time
        host = (getattr(self.core.host, "hostname", "") or "host").split(".")[0]
        t = _time.gmtime(self.core.clock.now())
        stamp = f"{_time.strftime('%b', t)} {t.tm_mday} {_time.strftime('%H:%M:%S', t)}"
        txn.append(SYSLOG, f"{stamp} {host} vmunix: (hpvmdvr) Dynamic memory version mismatch "
                           f"Guest {guest.vm_number}.\nPlease update the guest kit\n")
        return True

    def set_attention(self, txn, guest, attn: bool) -> None:
        facts = self._facts(txn, guest.uuid)
        txn.write(runtime_path(guest.uuid), replace(facts, attn=attn).to_bytes())

    def set_model(self, txn, guest, model: ModelFacts) -> None:
        txn.write(model_path(guest.uuid), model.to_bytes())

    def settle(self, txn, rec) -> bool:
        """Persist what the clock has decided: a graceful stop that has finished becomes Off.
        Returns True when the guest went Off here."""
        facts = RuntimeFacts.parse(rec.runtime_text)
        if facts.phase == "stopping" and \
                self.core.clock.now() - facts.stop_at >= self.timing("stop_seconds"):
            txn.write(runtime_path(rec.uuid), RuntimeFacts(boots=facts.boots).to_bytes())
            return True
        return False
