"""What an agent change returns: the guide's warnings and informational lines, and a value."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """`warnings` are the texts of the guide's numbered warnings, without the number
    ("Guest's vcpus exceeds server's physical cpus."); front ends number and frame them.
    `info` are lines printed on success. `value` is what the call made or found (a Guest...)."""

    warnings: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    value: Any = None
