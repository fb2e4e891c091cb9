"""The host the `ivm` backend models: `<state>/host.toml`, made from the real machine on first use.

The first `load_host` writes the file from what this machine has (CPUs, clock speed, memory,
swap, network interfaces, host name) plus a modelled HP-UX storage layout (disks, volume groups,
file systems) and the model's timings. Later loads read the file, so an administrator can edit
it to describe any host. Every field is documented in docs/host-file.md.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
import uuid as _uuid
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from agent.clock import Clock, SystemClock
from agent.errors import ConfigError

HOST_FILE = "host.toml"
HEADER = """\
# vmprovider host description: the Integrity VM host that the `ivm` backend models.
# Written on first use from this machine; edit it to describe another host (the agent reads it
# at start). Sizes are in MB (1 GB = 1024 MB), clock speeds in MHz, times in seconds.
# Every field is described in docs/host-file.md.
"""

_NIC_NAME = re.compile(r"^lan\d+\Z")
_DISK_PATH = re.compile(r"^/dev/(r?dsk/c\d+t\d+d\d+(s\d+)?|r?disk/disk\d+(_p\d+)?|rscsi/c\d+t\d+d\d+)\Z")
_LV_PATH = re.compile(r"^/dev/(vg[\w.-]*|[\w.-]+)/(r?)([\w.-]+)\Z")
_MAC_HEX = re.compile(r"^[0-9a-f]{12}\Z")
_DISK_KINDS = ("disk", "dvd", "tape")
_TABLE_ARRAYS = ("nics", "disks", "logical_volumes", "filesystems")


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class HostNic:
    name: str                   # the guide's host NIC name: lan0, lan1, ...
    mac: str                    # aa:bb:cc:dd:ee:ff (lowercase)
    device: str = ""            # the real interface it stands for (eth0), "" when modelled
    speed_mbps: int = 1000


@dataclass(frozen=True)
class HostDisk:
    path: str                   # character device: /dev/rdsk/c1t2d0 (dsk/rdsk name one disk)
    size_mb: int
    kind: str = "disk"          # disk | dvd | tape
    wwid: str = ""              # world-wide id; two paths with one wwid are one device
    partitions: tuple[str, ...] = ()   # partition devices guests may use (/dev/rdsk/c2t1d0s2)
    description: str = ""


@dataclass(frozen=True)
class LogicalVolume:
    path: str                   # raw LV: /dev/vg01/rlvol1
    size_mb: int
    volume_group: str           # vg01
    disks: tuple[str, ...]      # the disks the volume group lives on (must be listed disks)


@dataclass(frozen=True)
class FileSystem:
    mount: str                  # a real mount point on this machine: "/", "/var"
    device: str                 # the modelled block device holding it: /dev/vg00/lvol3


@dataclass(frozen=True)
class Timings:
    efi_seconds: float = 2.0            # start -> On (EFI): firmware up (Booting meanwhile)
    os_boot_seconds: float = 5.0        # On (EFI) -> On (OS) for a guest with an OS installed
    stop_seconds: float = 3.0           # graceful stop: Stopping -> Off
    memory_mb_per_second: float = 256.0  # how fast dynamic memory moves (grow and shrink)


@dataclass(frozen=True)
class HostFacts:
    cpus: int
    cpu_mhz: int
    memory_mb: int
    swap_mb: int
    host_uuid: str
    hostname: str
    nics: tuple[HostNic, ...] = ()
    disks: tuple[HostDisk, ...] = ()
    logical_volumes: tuple[LogicalVolume, ...] = ()
    filesystems: tuple[FileSystem, ...] = ()
    timings: Timings = field(default_factory=Timings)
    model: str = ""
    serial: str = ""
    ip_addresses: tuple[str, ...] = ()
    source: str = field(default="", compare=False)      # the file it was read from
    notes: tuple[str, ...] = field(default=(), compare=False)   # what probing had to assume

    def nic(self, name: str) -> HostNic | None:
        return next((n for n in self.nics if n.name == name), None)

    def disk(self, path: str) -> HostDisk | None:
        want = _raw_disk(path)
        return next((d for d in self.disks if _raw_disk(d.path) == want), None)

    def logical_volume(self, path: str) -> LogicalVolume | None:
        want = _raw_lv(path)
        return next((lv for lv in self.logical_volumes if _raw_lv(lv.path) == want), None)

    def to_toml(self) -> str:
        doc = _to_document(self)
        # Arrays of tables are always written as [[...]] blocks (tomli_w would inline short
        # ones), so each entry is a few lines a person edits and errors can point at.
        tables = {k: doc.pop(k) for k in _TABLE_ARRAYS}
        out = [HEADER, *(f"# note: {n}\n" for n in self.notes), "\n", tomli_w.dumps(doc)]
        for key in _TABLE_ARRAYS:
            for entry in tables[key]:
                out.append(f"\n[[{key}]]\n{tomli_w.dumps(entry)}")
        return "".join(out)


def _raw_disk(path: str) -> str:
    return re.sub(r"^/dev/dsk/", "/dev/rdsk/", re.sub(r"^/dev/disk/", "/dev/rdisk/", path))


def _raw_lv(path: str) -> str:
    m = _LV_PATH.match(path)
    if not m:
        return path
    return f"/dev/{m.group(1)}/r{m.group(3)}"


# ----------------------------------------------------------------------------- probing


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _meminfo_mb(proc: str, key: str) -> int | None:
    text = _read(os.path.join(proc, "meminfo")) or ""
    m = re.search(rf"^{key}:\s+(\d+)\s*kB", text, re.M)
    return int(m.group(1)) // 1024 if m else None


def _probe_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _probe_mhz(proc: str, sys: str, notes: list[str]) -> int:
    khz = _read(os.path.join(sys, "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))
    if khz and khz.strip().isdigit() and int(khz) > 0:
        return max(1, round(int(khz) / 1000))
    text = _read(os.path.join(proc, "cpuinfo")) or ""
    m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
    if m and float(m.group(1)) >= 1:
        return round(float(m.group(1)))
    notes.append("the real machine reports no CPU clock speed; cpu_mhz = 1000 assumed")
    return 1000


def _probe_nics(sys: str, host_uuid: str, notes: list[str]) -> tuple[HostNic, ...]:
    base = os.path.join(sys, "class/net")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        names = []
    found = []
    for name in names:
        if name == "lo":
            continue
        mac = (_read(os.path.join(base, name, "address")) or "").strip().lower()
        if not re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac) or mac == "00:00:00:00:00:00":
            continue
        physical = os.path.exists(os.path.join(base, name, "device"))
        speed = (_read(os.path.join(base, name, "speed")) or "").strip()
        speed_mbps = int(speed) if speed.isdigit() and int(speed) > 0 else 1000
        found.append((not physical, name, mac, speed_mbps))
    # Physical interfaces first; virtual ones (a container's veth) only when there is no other.
    if any(not virtual for virtual, *_ in found):
        found = [f for f in found if not f[0]]
    nics = tuple(HostNic(name=f"lan{i}", mac=mac, device=name, speed_mbps=speed)
                 for i, (_, name, mac, speed) in enumerate(found))
    if not nics:
        # The guide needs one working NIC for guest networking; model one with a stable,
        # locally administered address derived from the host UUID.
        tail = _uuid.UUID(host_uuid).hex[:10]
        mac = "02:" + ":".join(tail[i:i + 2] for i in range(0, 10, 2))
        notes.append("the real machine has no network interface with a MAC address; "
                     "a modelled lan0 was added")
        nics = (HostNic(name="lan0", mac=mac, device=""),)
    return nics


def _probe_addresses(proc: str) -> tuple[str, ...]:
    """Local unicast addresses from /proc (no DNS lookups, nothing that can hang)."""
    out: list[str] = []
    trie = _read(os.path.join(proc, "net/fib_trie")) or ""
    lines = trie.splitlines()
    for i, line in enumerate(lines[1:], 1):
        if "/32 host LOCAL" in line:
            m = re.search(r"(\d+\.\d+\.\d+\.\d+)", lines[i - 1])
            if m and not m.group(1).startswith("127.") and m.group(1) not in out:
                out.append(m.group(1))
    for line in (_read(os.path.join(proc, "net/if_inet6")) or "").splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[5] != "lo" and len(parts[0]) == 32:
            addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
            if not (addr.is_loopback or addr.is_link_local) and str(addr) not in out:
                out.append(str(addr))
    return tuple(out)


def _probe_dmi(sys: str, name: str) -> str:
    return (_read(os.path.join(sys, "devices/virtual/dmi/id", name)) or "").strip()


def default_storage() -> tuple[tuple[HostDisk, ...], tuple[LogicalVolume, ...],
                               tuple[FileSystem, ...]]:
    """A small HP-UX storage layout with the device names the guide's examples use."""
    gib = 1024
    disks = (
        HostDisk("/dev/rdsk/c0t0d0", 73 * gib, description="host boot disk (vg00)"),
        HostDisk("/dev/rdsk/c1t2d0", 36 * gib),
        HostDisk("/dev/rdsk/c1t7d0", 36 * gib),
        HostDisk("/dev/rdsk/c2t1d0", 73 * gib,
                 partitions=("/dev/rdsk/c2t1d0s1", "/dev/rdsk/c2t1d0s2", "/dev/rdsk/c2t1d0s4")),
        HostDisk("/dev/rdsk/c3t1d0", 73 * gib),
        HostDisk("/dev/rdsk/c3t2d0", 73 * gib),
        HostDisk("/dev/rdsk/c4t1d0", 146 * gib, description="vg01"),
        HostDisk("/dev/rdsk/c4t2d0", 146 * gib, description="vg01"),
        HostDisk("/dev/rdsk/c8t2d0", 36 * gib),
        HostDisk("/dev/rdsk/c1t1d2", 4, kind="dvd", description="DVD drive"),
        HostDisk("/dev/rscsi/c6t5d0", 1, kind="tape", description="tape drive"),
    )
    vg00 = ("/dev/rdsk/c0t0d0",)
    vg01 = ("/dev/rdsk/c4t1d0", "/dev/rdsk/c4t2d0")
    lvs = (
        LogicalVolume("/dev/vg00/rlvol1", 1 * gib, "vg00", vg00),
        LogicalVolume("/dev/vg00/rlvol3", 8 * gib, "vg00", vg00),
        LogicalVolume("/dev/vg00/rlvol8", 16 * gib, "vg00", vg00),
        LogicalVolume("/dev/vg01/rlvol1", 20 * gib, "vg01", vg01),
        LogicalVolume("/dev/vg01/rlvol2", 20 * gib, "vg01", vg01),
        LogicalVolume("/dev/vg01/rlvol3", 40 * gib, "vg01", vg01),
    )
    filesystems = (
        FileSystem("/", "/dev/vg00/lvol3"),
        FileSystem("/stand", "/dev/vg00/lvol1"),
        FileSystem("/var", "/dev/vg00/lvol8"),
    )
    return disks, lvs, filesystems


def probe_host(*, proc: str = "/proc", sys: str = "/sys",
               hostname: str | None = None, host_uuid: str | None = None) -> HostFacts:
    """The host as this machine is, in the model's terms (not yet written anywhere)."""
    notes: list[str] = []
    host_uuid = host_uuid or str(_uuid.uuid4())
    memory = _meminfo_mb(proc, "MemTotal")
    if not memory:
        notes.append("the real machine's memory is unknown; memory_mb = 4096 assumed")
        memory = 4096
    swap = _meminfo_mb(proc, "SwapTotal") or 0
    if swap == 0:
        # Guests need swap to start in the model (spec 01 §4); a swapless machine gets the
        # guide's recommendation instead of a host that can start nothing.
        swap = memory + 4096
        notes.append("the real machine has no swap; swap_mb = memory_mb + 4096 "
                     "(the guide's recommendation) assumed")
    disks, lvs, filesystems = default_storage()
    return HostFacts(
        cpus=_probe_cpus(),
        cpu_mhz=_probe_mhz(proc, sys, notes),
        memory_mb=memory,
        swap_mb=swap,
        host_uuid=host_uuid,
        hostname=hostname or socket.gethostname() or "localhost",
        nics=_probe_nics(sys, host_uuid, notes),
        disks=disks,
        logical_volumes=lvs,
        filesystems=filesystems,
        timings=Timings(),
        model=_probe_dmi(sys, "product_name"),
        serial="",
        ip_addresses=_probe_addresses(proc),
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------- the file


def _to_document(h: HostFacts) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "host_uuid": h.host_uuid,
        "hostname": h.hostname,
        "model": h.model,
        "serial": h.serial,
        "cpus": h.cpus,
        "cpu_mhz": h.cpu_mhz,
        "memory_mb": h.memory_mb,
        "swap_mb": h.swap_mb,
        "ip_addresses": list(h.ip_addresses),
        "timings": {f.name: getattr(h.timings, f.name) for f in fields(Timings)},
        "nics": [{"name": n.name, "mac": n.mac, "device": n.device, "speed_mbps": n.speed_mbps}
                 for n in h.nics],
        "disks": [],
        "logical_volumes": [{"path": lv.path, "size_mb": lv.size_mb,
                             "volume_group": lv.volume_group, "disks": list(lv.disks)}
                            for lv in h.logical_volumes],
        "filesystems": [{"mount": fs.mount, "device": fs.device} for fs in h.filesystems],
    }
    for d in h.disks:
        entry: dict[str, Any] = {"path": d.path, "size_mb": d.size_mb, "kind": d.kind}
        if d.wwid:
            entry["wwid"] = d.wwid
        if d.partitions:
            entry["partitions"] = list(d.partitions)
        if d.description:
            entry["description"] = d.description
        doc["disks"].append(entry)
    return doc


class _Reader:
    """Validates the parsed document; errors name the file, the line and the field."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.lines = text.splitlines()

    def _line(self, table: str | None, index: int | None, key: str | None) -> int:
        start = 0
        if table is not None:
            header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]" if index is not None
                                else rf"^\s*\[\s*{re.escape(table)}\s*\]")
            seen = -1
            for i, line in enumerate(self.lines):
                if header.match(line):
                    seen += 1
                    if index is None or seen == index:
                        start = i
                        break
            else:
                return self._inline_line(table, index, key)
        if key is None:
            return start + 1
        keyre = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(start + (1 if table is not None else 0), len(self.lines)):
            line = self.lines[i]
            if table is None and re.match(r"^\s*\[", line):
                break
            if table is not None and i > start and re.match(r"^\s*\[", line):
                break
            if keyre.match(line):
                return i + 1
        return start + 1

    def _inline_line(self, table: str, index: int | None, key: str | None) -> int:
        """Where an entry written inline (`nics = [ { ... }, ... ]`) is, one entry a line."""
        opener = re.compile(rf"^\s*\"?{re.escape(table)}\"?\s*=")
        for i, line in enumerate(self.lines):
            if opener.match(line):
                if index is None:
                    return i + 1
                seen = -1
                for j in range(i, len(self.lines)):
                    seen += self.lines[j].count("{")
                    if seen >= index:
                        return j + 1
                return i + 1
        return 1

    def fail(self, table: str | None, index: int | None, key: str | None, reason: str):
        where = key if table is None else (
            f"{table}[{index}].{key}" if index is not None else f"{table}.{key}")
        if key is None:
            where = f"{table}[{index}]" if index is not None else str(table)
        raise ConfigError(self.path, self._line(table, index, key), f"{where}: {reason}")

    def take(self, doc: dict, known: dict[str, tuple], table=None, index=None) -> dict:
        """Check types and presence; `known` maps key -> (kind, default or REQUIRED)."""
        for key in doc:
            if key not in known:
                self.fail(table, index, key, "unknown field")
        out = {}
        for key, (kind, default) in known.items():
            if key not in doc:
                if default is _REQUIRED:
                    self.fail(table, index, key, "missing (required)")
                out[key] = default
                continue
            out[key] = self._check(doc[key], kind, table, index, key)
        return out

    def _check(self, value, kind, table, index, key):
        if kind == "count":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.fail(table, index, key, f"must be a whole number of at least 1 (got {value!r})")
        elif kind == "size":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.fail(table, index, key, f"must be a whole number of MB, 0 or more "
                                             f"(got {value!r})")
        elif kind == "seconds":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                self.fail(table, index, key, f"must be a number of seconds, 0 or more "
                                             f"(got {value!r})")
            value = float(value)
        elif kind == "rate":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                self.fail(table, index, key, f"must be a positive number (got {value!r})")
            value = float(value)
        elif kind == "text":
            if not isinstance(value, str):
                self.fail(table, index, key, f"must be a string (got {value!r})")
        elif kind == "texts":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.fail(table, index, key, f"must be a list of strings (got {value!r})")
            value = tuple(value)
        elif kind == "table":
            if not isinstance(value, dict):
                self.fail(table, index, key, "must be a table")
        elif kind == "tables":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                self.fail(table, index, key, f"must be an array of tables ([[{key}]])")
        return value


_REQUIRED = object()


def normalize_mac(text: str) -> str | None:
    """aa:bb:cc:dd:ee:ff from the usual spellings (colons, dashes, 0x-prefixed hex)."""
    t = text.strip().lower()
    if t.startswith("0x"):
        t = t[2:]
    t = t.replace(":", "").replace("-", "").replace(".", "")
    if not _MAC_HEX.match(t):
        return None
    return ":".join(t[i:i + 2] for i in range(0, 12, 2))


def parse_host(text: str, path: str = HOST_FILE) -> HostFacts:
    """A HostFacts from host.toml text; a ConfigError naming file, line and field otherwise."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(m.group(1)) if m else 1
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        raise ConfigError(path, line, f"not valid TOML: {reason}") from None
    r = _Reader(path, text)
    top = r.take(doc, {
        "host_uuid": ("text", _REQUIRED), "hostname": ("text", _REQUIRED),
        "model": ("text", ""), "serial": ("text", ""),
        "cpus": ("count", _REQUIRED), "cpu_mhz": ("count", _REQUIRED),
        "memory_mb": ("count", _REQUIRED), "swap_mb": ("size", _REQUIRED),
        "ip_addresses": ("texts", ()),
        "timings": ("table", {}), "nics": ("tables", []), "disks": ("tables", []),
        "logical_volumes": ("tables", []), "filesystems": ("tables", []),
    })
    try:
        host_uuid = str(_uuid.UUID(top["host_uuid"]))
    except ValueError:
        r.fail(None, None, "host_uuid", f"not a UUID ({top['host_uuid']!r})")
    if not top["hostname"].strip():
        r.fail(None, None, "hostname", "must not be empty")
    for addr in top["ip_addresses"]:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            r.fail(None, None, "ip_addresses", f"not an IP address ({addr!r})")

    tdoc = r.take(top["timings"], {f.name: ("rate" if f.name == "memory_mb_per_second"
                                            else "seconds", f.default)
                                   for f in fields(Timings)}, table="timings")
    timings = Timings(**tdoc)

    nics = []
    for i, entry in enumerate(top["nics"]):
        e = r.take(entry, {"name": ("text", _REQUIRED), "mac": ("text", _REQUIRED),
                           "device": ("text", ""), "speed_mbps": ("count", 1000)}, "nics", i)
        if not _NIC_NAME.match(e["name"]):
            r.fail("nics", i, "name", f"must be lanN, as lan0 (got {e['name']!r})")
        if any(n.name == e["name"] for n in nics):
            r.fail("nics", i, "name", f"{e['name']} is listed twice")
        mac = normalize_mac(e["mac"])
        if mac is None:
            r.fail("nics", i, "mac", f"not a MAC address ({e['mac']!r})")
        if any(n.mac == mac for n in nics):
            r.fail("nics", i, "mac", f"{mac} is already the address of another NIC")
        nics.append(HostNic(e["name"], mac, e["device"], e["speed_mbps"]))

    disks: list[HostDisk] = []
    for i, entry in enumerate(top["disks"]):
        e = r.take(entry, {"path": ("text", _REQUIRED), "size_mb": ("count", _REQUIRED),
                           "kind": ("text", "disk"), "wwid": ("text", ""),
                           "partitions": ("texts", ()), "description": ("text", "")},
                   "disks", i)
        if not _DISK_PATH.match(e["path"]):
            r.fail("disks", i, "path", "must be a disk device such as /dev/rdsk/c1t2d0 "
                                       f"(got {e['path']!r})")
        if any(_raw_disk(d.path) == _raw_disk(e["path"]) for d in disks):
            r.fail("disks", i, "path", f"{e['path']} is listed twice")
        if e["kind"] not in _DISK_KINDS:
            r.fail("disks", i, "kind", f"must be one of {', '.join(_DISK_KINDS)} "
                                       f"(got {e['kind']!r})")
        for part in e["partitions"]:
            if not _DISK_PATH.match(part) or not _raw_disk(part).startswith(_raw_disk(e["path"])):
                r.fail("disks", i, "partitions", f"{part!r} is not a partition of {e['path']}")
        disks.append(HostDisk(e["path"], e["size_mb"], e["kind"], e["wwid"], e["partitions"],
                              e["description"]))

    known_disks = {_raw_disk(d.path) for d in disks}
    lvs: list[LogicalVolume] = []
    for i, entry in enumerate(top["logical_volumes"]):
        e = r.take(entry, {"path": ("text", _REQUIRED), "size_mb": ("count", _REQUIRED),
                           "volume_group": ("text", ""), "disks": ("texts", _REQUIRED)},
                   "logical_volumes", i)
        m = _LV_PATH.match(e["path"])
        if not m or _DISK_PATH.match(e["path"]) or m.group(1) in ("dsk", "rdsk", "disk",
                                                                  "rdisk", "rscsi"):
            r.fail("logical_volumes", i, "path", "must be a volume such as /dev/vg01/rlvol1 "
                                                 f"(got {e['path']!r})")
        vg = e["volume_group"] or m.group(1)
        if vg != m.group(1):
            r.fail("logical_volumes", i, "volume_group",
                   f"{vg!r} does not match the path's volume group {m.group(1)!r}")
        if any(_raw_lv(lv.path) == _raw_lv(e["path"]) for lv in lvs):
            r.fail("logical_volumes", i, "path", f"{e['path']} is listed twice")
        if not e["disks"]:
            r.fail("logical_volumes", i, "disks", "must name the disks of the volume group")
        for d in e["disks"]:
            if _raw_disk(d) not in known_disks:
                r.fail("logical_volumes", i, "disks", f"{d} is not a disk listed in [[disks]]")
        lvs.append(LogicalVolume(e["path"], e["size_mb"], vg, e["disks"]))

    filesystems: list[FileSystem] = []
    for i, entry in enumerate(top["filesystems"]):
        e = r.take(entry, {"mount": ("text", _REQUIRED), "device": ("text", _REQUIRED)},
                   "filesystems", i)
        if not e["mount"].startswith("/"):
            r.fail("filesystems", i, "mount", f"must be an absolute path (got {e['mount']!r})")
        if not e["device"].startswith("/dev/"):
            r.fail("filesystems", i, "device", f"must be a /dev path (got {e['device']!r})")
        filesystems.append(FileSystem(os.path.normpath(e["mount"]), e["device"]))

    return HostFacts(
        cpus=top["cpus"], cpu_mhz=top["cpu_mhz"], memory_mb=top["memory_mb"],
        swap_mb=top["swap_mb"], host_uuid=host_uuid, hostname=top["hostname"].strip(),
        nics=tuple(nics), disks=tuple(disks), logical_volumes=tuple(lvs),
        filesystems=tuple(filesystems), timings=timings, model=top["model"],
        serial=top["serial"], ip_addresses=tuple(top["ip_addresses"]), source=path,
        notes=tuple(re.sub(r"^# note: ", "", line) for line in text.splitlines()
                    if line.startswith("# note: ")),
    )


def host_file(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / HOST_FILE


def write_host(state_dir: str | os.PathLike, facts: HostFacts, *, store=None,
               clock: Clock | None = None, event_kind: str = "host.update") -> HostFacts:
    """Replace host.toml atomically (through the store, with an event)."""
    from agent.store import Store

    text = facts.to_toml()
    parse_host(text, str(host_file(state_dir)))      # never write what cannot be read back
    store = store or Store(state_dir, clock=clock or SystemClock())
    with store.transaction() as txn:
        txn.write(HOST_FILE, text, mode=0o644)
        txn.event(event_kind, facts.host_uuid, hostname=facts.hostname)
    return replace(facts, source=str(host_file(state_dir)))


def load_host(state_dir: str | os.PathLike, clock: Clock | None = None, *, store=None,
              probe=probe_host) -> HostFacts:
    """The host description of a state folder, written from the real machine on first use."""
    path = host_file(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), 1, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(str(path), 0, f"cannot read: {exc.strerror}") from None
    if text is not None:
        return parse_host(text, str(path))

    from agent.store import Store

    store = store or Store(state_dir, clock=clock or SystemClock())
    with store.transaction() as txn:
        existing = txn.read(HOST_FILE)          # another process may have been first
        if existing is not None:
            text = existing.decode("utf-8")
        else:
            facts = probe()
            text = facts.to_toml()
            txn.write(HOST_FILE, text, mode=0o644)
            txn.event("host.create", facts.host_uuid, hostname=facts.hostname,
                      cpus=facts.cpus, cpu_mhz=facts.cpu_mhz, memory_mb=facts.memory_mb)
    return parse_host(text, str(path))
