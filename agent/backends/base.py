"""The driver interface every backend implements (ivm, the embedded model; libvirt, real guests).

Drivers follow libvirt's shape: one small set of verbs, many implementations. The agent core
owns the guest configuration and the rules; a driver only runs guests and reports how they are.

Changes take the store transaction of the agent operation that asks for them (`txn`), so a
driver that keeps its runtime facts in the store (ivm) commits them in the same atomic step as
the configuration and the event; a driver backed by an outside service (libvirt) ignores it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

# hpvmstatus state texts (DECISIONS §1.11).
OFF = "Off"
BOOTING = "Booting"
ON_EFI = "On (EFI)"
ON_OS = "On (OS)"
ON_ATTN = "On (ATTN!)"
STOPPING = "Stopping"
INVALID = "Invalid"
STATES = (OFF, BOOTING, ON_EFI, ON_OS, ON_ATTN, STOPPING, INVALID)
# States in which the guest holds host resources (CPU, memory, exclusive backing stores).
ACTIVE_STATES = (BOOTING, ON_EFI, ON_OS, ON_ATTN, STOPPING)


@dataclass(frozen=True)
class MemoryStats:
    """Dynamic memory as the guest reports it (spec 03 §6.3); all sizes in MB."""

    boot_mb: int
    current_mb: int
    target_mb: int
    comfortable_min_mb: int
    free_mb: int
    available_mb: int
    pressure: int          # 0..100; 100 = the guest is hung for lack of memory
    driver: bool           # the guest's dynamic memory driver is running (ram_dyn_type=driver)
    moving: bool = False   # a target change is still in progress


@dataclass(frozen=True)
class GuestRuntime:
    """What a running (or stopped) guest looks like right now."""

    state: str = OFF
    pid: int | None = None
    started_at: float | None = None      # wall clock of the start
    minor_device: int | None = None      # "Creation of VM, minor device N"
    detected_os: str | None = None       # OS type the guest reported once in the OS
    memory: MemoryStats | None = None    # None while Off
    run_server_id: int = 0               # Runsysid: 0 = this host
    pending_next: bool = False           # a vmm_config.next waits for the next boot
    details: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class Driver(ABC):
    """A hypervisor backend. `guest` arguments are `agent.guest.Guest` configurations."""

    name: str = ""

    @abstractmethod
    def host_facts(self):
        """The host as this backend sees it (`agent.hostfacts.HostFacts`)."""

    @abstractmethod
    def define(self, txn, guest) -> None:
        """Make the backend know a new guest (or a changed configuration of a stopped one)."""

    @abstractmethod
    def undefine(self, txn, guest) -> None:
        """Forget a stopped guest."""

    @abstractmethod
    def start(self, txn, guest, *, next_promoted: bool = False) -> GuestRuntime:
        """Power the guest on. The admission checks were made by the caller."""

    @abstractmethod
    def stop(self, txn, guest, *, hard: bool) -> None:
        """Graceful (guest OS told, takes time) or hard (power cut, immediate) stop."""

    @abstractmethod
    def reboot(self, txn, guest) -> None:
        """Reset the guest and boot it again with its (possibly promoted) configuration."""

    @abstractmethod
    def apply_live(self, txn, old, new) -> None:
        """Apply a configuration change to a running guest (devices, entitlement...)."""

    @abstractmethod
    def set_memory_target(self, txn, guest, target_mb: int) -> int:
        """Start moving a running guest's memory to `target_mb`; returns the effective target."""

    @abstractmethod
    def runtime(self, guest) -> GuestRuntime:
        """The guest's runtime state now."""

    def runtime_of(self, record) -> GuestRuntime:
        """The runtime of a stored guest record (`agent.api.core.GuestRecord`)."""
        if record.current is None:
            return GuestRuntime(state=INVALID)
        return self.runtime(record.current)

    def settle(self, txn, record) -> bool:
        """Persist what time has decided (a finished graceful stop). True: it went Off."""
        return False

    def valid_until(self, records, now: float) -> float:
        """The next instant (wall clock, after `now`) the runtime derived for any of
        `records` (the started guests' `GuestRecord`s) changes with no new stored fact;
        math.inf when none will. The default, for a backend that cannot tell (real guests
        change on their own), is `now`: nothing derived may be kept."""
        return now

    def runtimes(self, guests) -> dict[str, GuestRuntime]:
        """Runtime state of many guests, keyed by UUID (drivers may batch this)."""
        return {g.uuid: self.runtime(g) for g in guests}
