"""What a collection never takes: the files that hold secrets."""
from __future__ import annotations

import re

# Names the CIM side keeps secrets under (provider/auth/users.py USERS_FILE and
# ADMIN_PASSWORD_FILE, provider/tls.py KEY_NAME, provider/providers/subscriptions.py FILE_NAME:
# listener destinations with their passwords; a test keeps these in step) plus the usual
# private key files. A file is also secret when its content holds a private key.
# The server's audit log (provider/audit.py AUDIT_FILE) is no secret, but it is the security
# reviewer's record of who did what from where: it stays on the host, not in support archives.
SECRET_NAMES = frozenset({"users.json", "users.json.lock", "admin-password", "server.key",
                          "audit.log", "interop-subscriptions.json",
                          "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "identity"})
SECRET_SUFFIXES = (".key", ".p12", ".pfx", ".jks")
SECRET_DIRS = frozenset({"certs", ".ssh", ".ssh2", "client-ca"})
_PRIVATE_KEY_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def is_secret(rel: str, head: bytes = b"") -> bool:
    """True when a file must never be collected: by its name, a folder it sits in, or a
    private key in its first bytes (`head`)."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p]
    if not parts:
        return False
    name = parts[-1]
    if name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES) or name.startswith("admin-password"):
        return True
    if any(p in SECRET_DIRS for p in parts[:-1]):
        return True
    return bool(_PRIVATE_KEY_RE.search(head))
