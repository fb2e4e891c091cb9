"""The agent's errors. Their text is what the user sees, one line each, as the guide words it."""
from __future__ import annotations


class AgentError(Exception):
    """A refused request. `lines` are printed to stderr as they are; nothing was changed.

    `kind` lets other front ends (CIM) map the refusal without parsing text:
    'invalid' (bad input), 'not_found', 'exists', 'state' (not allowed in this state),
    'conflict' (resource clash), 'capacity' (not enough host resources), 'denied', 'failed'.
    """

    def __init__(self, lines: str | list[str], kind: str = "invalid"):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        self.kind = kind
        super().__init__("\n".join(self.lines))


class ConfigError(AgentError):
    """A stored file that cannot be read back: names the file and line."""

    def __init__(self, path: str, line: int, reason: str):
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}", kind="failed")


class DriverUnavailable(AgentError):
    """The guest's dynamic memory driver does not answer (no guest kit, another version, DM
    not started): the guide's "Query to dynamic memory driver failed" refusal."""

    def __init__(self, guest_name: str):
        super().__init__([f"ERROR ({guest_name}): Query to dynamic memory driver failed: "
                          "Function is not available.", "Failed to set ram_target."], "failed")
