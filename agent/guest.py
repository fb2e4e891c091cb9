"""A guest's configuration: what `vmm_config.current` holds (spec 01 §10-22).

CONTRACT (frame): these types are shared by the store format, the rules, the backends, the
CLI and the CIM providers. Runtime facts (state, current memory, pid) are not here: they
belong to the backend's view of a running guest (`agent.backends.base.GuestRuntime`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agent.resources import NetworkResource, StorageResource

OS_TYPES = ("HPUX", "WINDOWS", "LINUX", "UNKNOWN")
START_ATTRS = ("auto", "manual")
ROLES = ("admin", "oper")


@dataclass(frozen=True)
class RoleGrant:
    """`-u user[:admin|oper]` or `-g group[:admin|oper]` (default oper)."""

    kind: str   # "user" | "group"
    name: str
    role: str = "oper"


@dataclass(frozen=True)
class Entitlement:
    """Per-vCPU guaranteed CPU: a percentage of one physical CPU, or MHz. Exactly one is set."""

    percent: float | None = 10.0
    mhz: int | None = None

    def as_percent(self, cpu_mhz: int) -> float:
        if self.percent is not None:
            return self.percent
        return 100.0 * self.mhz / cpu_mhz

    def as_mhz(self, cpu_mhz: int) -> float:
        if self.mhz is not None:
            return float(self.mhz)
        return cpu_mhz * self.percent / 100.0


@dataclass(frozen=True)
class DynamicMemoryConfig:
    """The `-x` dynamic memory keywords (spec 03 §6.2). None = not set by the user."""

    control: bool | None = None          # dynamic_memory_control
    type: str = "none"                   # ram_dyn_type: none | any | driver
    min_mb: int | None = None            # ram_dyn_min
    max_mb: int | None = None            # ram_dyn_max
    target_start_mb: int | None = None   # ram_dyn_target_start


@dataclass
class Guest:
    uuid: str                      # identity; never changes (rename keeps it)
    name: str
    vm_number: int
    serial: str                    # "VM" + 8 digits
    os_type: str = "UNKNOWN"
    os_version: str = ""
    vcpus: int = 1
    entitlement: Entitlement = field(default_factory=Entitlement)
    memory_mb: int = 2048
    storage: list[StorageResource] = field(default_factory=list)
    nics: list[NetworkResource] = field(default_factory=list)
    label: str = ""
    start_attr: str = "auto"
    dynmem: DynamicMemoryConfig = field(default_factory=DynamicMemoryConfig)
    roles: list[RoleGrant] = field(default_factory=list)
    app_controller: str = "NONE"   # -i: NONE | SG | SG_pkgname | GWLM ...
    distributed: bool = False      # -j
    config_version: str = "3.0.0"
    reserved_mb: int | None = None  # -R (hpvmmodify): memory reserved for the guest
