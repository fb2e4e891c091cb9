"""Sizes and entitlements as the hpvm* commands take and show them.

  parse_size("4GB") -> 4096           (MB; M, MB, G, GB in any case; a bare number is MB)
  format_memory(512) -> "512 MB"; format_memory(2048) -> "2 GB"   (hpvmstatus Memory column)
  parse_entitlement(percent="20") / parse_entitlement(cycles="1400M") -> Entitlement

1 GB = 1024 MB throughout (DECISIONS.md §1.5); 1 GHz = 1000 MHz. `-E` without a suffix is MHz
(DECISIONS.md §1.4). `-e` outside 5..100 is refused (the product's rule; hpvmmodify(1M) would
raise a value below 5 silently, which hides a mistake from a workload manager).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agent.errors import AgentError
from agent.guest import Entitlement

MB_PER_GB = 1024
MAX_SIZE_MB = 2 * 1024 * 1024        # 2 TB: the largest virtual storage resource (spec 02 §7.5)
MIN_PERCENT = 5.0
MAX_PERCENT = 100.0
MAX_MHZ = 1_000_000                  # 1 THz per vCPU: anything above is a typo, not a CPU

_SIZE = re.compile(r"([0-9]+)\s*(m|mb|g|gb)?", re.IGNORECASE)
_CYCLES = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(m|mhz|g|ghz)?", re.IGNORECASE)
_PERCENT = re.compile(r"[0-9]+(?:\.[0-9]+)?%?")


class SizeError(AgentError):
    """A refused size or entitlement: one line naming the value and why."""

    def __init__(self, what: str, value: str, reason: str, command: str | None = None):
        self.what = what
        self.value = value
        line = f"Invalid {what} '{value}': {reason}"
        super().__init__(f"{command}: {line}" if command else line, "invalid")


def parse_size(text: str, *, what: str = "size", maximum_mb: int = MAX_SIZE_MB,
               command: str | None = None) -> int:
    """`512`, `512M`, `512MB`, `2G`, `2GB` (any case) -> megabytes. Zero, negatives, fractions,
    other units and values above `maximum_mb` are refused with one line."""
    raw = text if isinstance(text, str) else str(text)
    match = _SIZE.fullmatch(raw.strip())
    if not match:
        raise SizeError(what, raw, "expected a whole number with an optional unit M, MB, G or "
                        "GB (default MB)", command)
    if len(match.group(1).lstrip("0")) > 12:     # before int(): no huge conversions
        raise SizeError(what, raw, f"must not exceed {format_memory(maximum_mb)}", command)
    number, unit = int(match.group(1)), (match.group(2) or "m").lower()
    mb = number * MB_PER_GB if unit.startswith("g") else number
    if mb == 0:
        raise SizeError(what, raw, "must be greater than zero", command)
    if mb > maximum_mb:
        raise SizeError(what, raw, f"must not exceed {format_memory(maximum_mb)}", command)
    return mb


def format_memory(mb: int) -> str:
    """hpvmstatus's Memory column and -V lines: whole gigabytes as `2 GB`, else `512 MB`."""
    if mb >= MB_PER_GB and mb % MB_PER_GB == 0:
        return f"{mb // MB_PER_GB} GB"
    return f"{mb} MB"


def format_mb(mb: int) -> str:
    """Always in MB, as [Dynamic Memory Information] shows it (`2039 MB`)."""
    return f"{mb} MB"


def parse_percent(text: str | float | int, *, command: str | None = None) -> float:
    """`-e percent`: 5..100, decimals allowed."""
    raw = str(text).strip()
    if not _PERCENT.fullmatch(raw):
        raise SizeError("entitlement", str(text), "expected a percentage from 5 to 100",
                        command)
    value = float(raw.rstrip("%"))
    if value > MAX_PERCENT:
        raise SizeError("entitlement", str(text), "must not exceed 100%", command)
    if value < MIN_PERCENT:
        raise SizeError("entitlement", str(text), "must be at least 5%", command)
    return value


def parse_cycles(text: str | int, *, command: str | None = None) -> int:
    """`-E cycles`: a number with M (MHz) or G (GHz); a bare number is MHz. -> whole MHz."""
    raw = str(text).strip()
    match = _CYCLES.fullmatch(raw)
    if not match:
        raise SizeError("entitlement", str(text), "expected CPU cycles as a number with unit M "
                        "or G (default M)", command)
    unit = (match.group(2) or "m").lower()
    if len(match.group(1).split(".")[0].lstrip("0")) > 12:
        raise SizeError("entitlement", str(text), f"must not exceed {MAX_MHZ} MHz", command)
    try:
        value = Decimal(match.group(1)) * (1000 if unit.startswith("g") else 1)
    except InvalidOperation:   # pragma: no cover - the regex admits only decimal digits
        raise SizeError("entitlement", str(text), "not a number", command) from None
    if value != value.to_integral_value():
        raise SizeError("entitlement", str(text), "must be a whole number of MHz", command)
    mhz = int(value)
    if mhz == 0:
        raise SizeError("entitlement", str(text), "must be greater than zero", command)
    if mhz > MAX_MHZ:
        raise SizeError("entitlement", str(text), f"must not exceed {MAX_MHZ} MHz", command)
    return mhz


def parse_entitlement(percent: str | float | None = None, cycles: str | int | None = None, *,
                      command: str | None = None) -> Entitlement:
    """`-e percent` or `-E cycles` (exclusive) -> Entitlement. Neither -> the 10 % default."""
    if percent is not None and cycles is not None:
        line = "Options -e and -E are mutually exclusive"
        raise AgentError(f"{command}: {line}" if command else line, "invalid")
    if cycles is not None:
        return Entitlement(percent=None, mhz=parse_cycles(cycles, command=command))
    if percent is not None:
        return Entitlement(percent=parse_percent(percent, command=command), mhz=None)
    return Entitlement()


def format_entitlement(ent: Entitlement) -> str:
    """As [Virtual CPU Details] shows it: `10.0%`, or `1400MHz` for a cycles entitlement."""
    if ent.mhz is not None:
        return f"{ent.mhz}MHz"
    return f"{ent.percent:.1f}%"
