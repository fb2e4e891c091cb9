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
    def __init__(self, state_dir: Path, clock):
        self.path = Path(state_dir) / AUDIT_FILE
        self.clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(self._fd, 0o600)
        return self._fd

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
            os.write(self._open(), line)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
