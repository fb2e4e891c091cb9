"""The audit log: one JSON line per write and method call (who, from where, what, result).

`<state>/audit.log`, mode 0600, appended with O_APPEND so lines from concurrent workers never
interleave; each record is one `write`. No secrets and no parameter values are recorded.
"""
from __future__ import annotations

import datetime
import json
import os
import threading
from pathlib import Path

AUDIT_FILE = "audit.log"

# Intrinsic operations that change something; every extrinsic method call is audited too.
WRITE_OPERATIONS = frozenset(n.lower() for n in (
    "CreateInstance", "ModifyInstance", "DeleteInstance", "SetProperty",
    "CreateClass", "ModifyClass", "DeleteClass", "SetQualifier", "DeleteQualifier",
))


def is_audited(kind: str, name: str) -> bool:
    return kind == "method" or (name or "").lower() in WRITE_OPERATIONS


class AuditLog:
    """Opens the file for each record (writes are rare), so moving the file away to rotate
    it is safe at any time: the next record creates a fresh one, 0600."""

    def __init__(self, state_dir: Path, clock):
        self.path = Path(state_dir) / AUDIT_FILE
        self.clock = clock
        self._lock = threading.Lock()

    def record(self, *, user: str, source: str, operation: str, target: str,
               namespace: str, result: int, description: str = "") -> None:
        entry = {
            "time": datetime.datetime.fromtimestamp(
                self.clock.now(), datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "user": user,
            "source": source,
            "operation": operation,
            "namespace": namespace,
            "target": target,
            "result": result,
        }
        if description:
            entry["description"] = description[:500]
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, line)
            finally:
                os.close(fd)
