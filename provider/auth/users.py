"""The product's user file: names, roles and scrypt password hashes.

`<state>/users.json`, mode 0600, rewritten atomically (temp file, fsync, rename) under an
flock so `vmprovider user ...` and a running server never see half a file. Each user has a
role (admin | oper | readonly, DECISIONS §4; or none: rights only through guests' own lists) and either a scrypt hash (salt and cost
parameters stored with it, so they can be raised later without breaking old entries) or
`"pam": true`, meaning the password is checked by PAM when the server is configured for it.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# `none`: no host-wide rights; such a user acts only through a guest's own -u/-g lists.
ROLES = ("admin", "oper", "readonly", "none")
USERS_FILE = "users.json"
ADMIN_PASSWORD_FILE = "admin-password"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@-]{0,63}\Z")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
MAX_PASSWORD = 1024


class UserError(Exception):
    """A user-file request that cannot be done; the text is what the operator sees."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    pam: bool = False
    scrypt: dict | None = None     # {"salt", "n", "r", "p", "hash"} (base64 salt and hash)

    def check_password(self, password: str) -> bool:
        """Constant-time check against the stored scrypt hash (False for PAM users)."""
        if self.scrypt is None:
            return False
        s = self.scrypt
        digest = _scrypt(password, base64.b64decode(s["salt"]), s["n"], s["r"], s["p"],
                         len(base64.b64decode(s["hash"])))
        return hmac.compare_digest(digest, base64.b64decode(s["hash"]))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = 32) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=128 * r * n * 2 + 1024 * 1024, dklen=dklen)


def hash_password(password: str) -> dict:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return {"salt": base64.b64encode(salt).decode(), "n": SCRYPT_N, "r": SCRYPT_R,
            "p": SCRYPT_P, "hash": base64.b64encode(digest).decode()}


def check_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise UserError(f"invalid user name {name!r}: use letters, digits, _ . @ -, "
                        "starting with a letter or _, at most 64 characters")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"invalid role {role!r}: use one of {', '.join(ROLES)}")


def check_password_text(password: str) -> None:
    if not password:
        raise UserError("the password is empty")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password is longer than {MAX_PASSWORD} characters")
    if any(ord(c) < 32 for c in password):
        raise UserError("the password contains control characters")


class UserFile:
    """Reads and rewrites `users.json`. Cheap `version()` lets a server notice changes."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / USERS_FILE
        self._path_str = str(self.path)       # version() runs on every request
        self._lock_path = self.state_dir / (USERS_FILE + ".lock")

    # -- reading ----------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def version(self) -> tuple:
        """Identity of the file's current contents (changes with every rewrite)."""
        try:
            st = os.stat(self._path_str)
        except FileNotFoundError:
            return ()
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def load(self) -> dict[str, User]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            users = {}
            for name, rec in data["users"].items():
                users[name] = User(name=name, role=rec["role"], pam=bool(rec.get("pam")),
                                   scrypt=rec.get("scrypt"))
                check_role(users[name].role)
        except (ValueError, KeyError, TypeError, AttributeError, UserError) as e:
            raise UserError(f"user file {self.path} is damaged ({e}); restore it from a "
                            "backup or remove it to start over") from None
        return users

    def get(self, name: str) -> User | None:
        return self.load().get(name)

    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def _locked(self):
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _save(self, users: dict[str, User]) -> None:
        data = {"version": 1, "users": {}}
        for name in sorted(users):
            u = users[name]
            rec: dict = {"role": u.role}
            if u.pam:
                rec["pam"] = True
            if u.scrypt is not None:
                rec["scrypt"] = u.scrypt
            data["users"][name] = rec
        body = (json.dumps(data, indent=2) + "\n").encode("utf-8")
        tmp = self.path.with_name(f".{USERS_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)         # a stale temp file keeps its mode on O_CREAT
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def add(self, name: str, role: str, password: str | None, *, pam: bool = False) -> User:
        check_name(name)
        check_role(role)
        if pam:
            if password is not None:
                raise UserError("a PAM user has no password in the user file")
        else:
            check_password_text(password or "")
        scrypt = None if pam else hash_password(password)
        with self._locked():
            users = self.load()
            if name in users:
                raise UserError(f"user {name!r} already exists")
            users[name] = User(name, role, pam, scrypt)
            self._save(users)
            return users[name]

    def remove(self, name: str) -> None:
        with self._locked():
            users = self.load()
            if name not in users:
                raise UserError(f"no user {name!r}")
            if users[name].role == "admin" and \
                    sum(1 for u in users.values() if u.role == "admin") == 1:
                raise UserError(f"{name!r} is the last admin; add another admin first")
            del users[name]
            self._save(users)

    def set_password(self, name: str, password: str) -> None:
        check_password_text(password)
        scrypt = hash_password(password)
        with self._locked():
            users = self.load()
            if name not in users:
                raise UserError(f"no user {name!r}")
            u = users[name]
            users[name] = User(name, u.role, False, scrypt)
            self._save(users)

    def set_role(self, name: str, role: str) -> None:
        check_role(role)
        with self._locked():
            users = self.load()
            if name not in users:
                raise UserError(f"no user {name!r}")
            u = users[name]
            if u.role == "admin" and role != "admin" and \
                    sum(1 for v in users.values() if v.role == "admin") == 1:
                raise UserError(f"{name!r} is the last admin; add another admin first")
            users[name] = User(name, role, u.pam, u.scrypt)
            self._save(users)

    def bootstrap_admin(self) -> str | None:
        """First start: with no user file, create `admin` with a random password, store the
        password 0600 in the state folder, and return it (to be printed once). Otherwise None."""
        with self._locked():
            if self.path.exists():
                return None
            password = secrets.token_urlsafe(18)
            users = {"admin": User("admin", "admin", False, hash_password(password))}
            pw_path = self.state_dir / ADMIN_PASSWORD_FILE
            fd = os.open(pw_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         0o600)
            try:
                os.fchmod(fd, 0o600)     # a file left there keeps its mode on O_CREAT
                os.write(fd, (password + "\n").encode())
            finally:
                os.close(fd)
            self._save(users)
            return password
