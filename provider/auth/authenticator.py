"""Who is this? HTTP Basic credentials (user file or PAM) and client certificates -> Principal.

`verify` is the slow path (scrypt or PAM; call it off the reactor). `cached` is the fast
path: credentials verified in the last `cache_ttl` seconds are remembered under a MAC (keyed
BLAKE2b) of user *and* password with a per-process key, so a wrong password can never match
an entry and the cache holds no password. Entries die when the user file changes.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
from dataclasses import dataclass

from provider.auth.users import ROLES, User, UserError, UserFile
from provider.messages import Principal

log = logging.getLogger("vmprovider.auth")


@dataclass(frozen=True)
class PamSettings:
    service: str = "login"
    default_role: str | None = None     # role of a PAM user missing from the user file


def parse_basic(header: bytes | None) -> tuple[str, str] | None:
    """`Authorization: Basic <b64>` -> (user, password), or None if absent or malformed."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return user, password


class Authenticator:
    def __init__(self, users: UserFile, clock, *, pam: PamSettings | None = None,
                 cache_ttl: float = 60.0, cache_size: int = 1024):
        self.users = users
        self.clock = clock
        self.pam = pam
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[str, str, tuple, float, tuple]] = {}
        self._table: tuple[tuple, dict[str, User]] | None = None
        self._lock = threading.Lock()

    # -- the user file, reloaded when it changes ---------------------------------------------
    def _user_table(self) -> tuple[tuple, dict[str, User]]:
        version = self.users.version()
        with self._lock:
            if self._table is not None and self._table[0] == version:
                return self._table
        try:
            table = (version, self.users.load())
        except UserError as e:
            log.error("%s", e)
            table = (version, {})
        with self._lock:
            self._table = table
        return table

    def lookup(self, name: str) -> User | None:
        return self._user_table()[1].get(name)

    # -- the fast path -------------------------------------------------------------------------
    def _cache_key(self, user: str, password: str) -> bytes:
        # Keyed BLAKE2b (a MAC by design, RFC 7693): this runs on the reactor for every
        # request, and OpenSSL's HMAC costs ~10 us there against ~3 us for hashlib's BLAKE2b.
        return hashlib.blake2b(user.encode() + b"\0" + password.encode(), key=self._key,
                               digest_size=32).digest()

    def cached(self, user: str, password: str, source: str) -> Principal | None:
        key = self._cache_key(user, password)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            return None
        name, role, groups, expires, version = hit
        if self.clock.monotonic() >= expires or version != self.users.version():
            with self._lock:
                self._cache.pop(key, None)
            return None
        return Principal(user=name, role=role, groups=groups, source=source)

    def _remember(self, user: str, password: str, role: str, groups: tuple,
                  version: tuple) -> None:
        key = self._cache_key(user, password)
        expires = self.clock.monotonic() + self.cache_ttl
        with self._lock:
            if len(self._cache) >= self.cache_size:
                now = self.clock.monotonic()
                for k in [k for k, v in self._cache.items() if v[3] <= now]:
                    del self._cache[k]
                if len(self._cache) >= self.cache_size:
                    self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (user, role, groups, expires, version)

    # -- the slow path (blocking: scrypt or PAM) --------------------------------------------
    def verify(self, user: str, password: str, source: str) -> Principal | None:
        version, table = self._user_table()
        record = table.get(user)
        role, groups = None, ()
        if record is not None and not record.pam:
            if record.check_password(password):
                role = record.role
        elif self.pam is not None and (record is not None or self.pam.default_role):
            if self._pam_check(user, password):
                role = record.role if record is not None else self.pam.default_role
                groups = os_groups(user)     # a PAM user is an OS account: -g lists apply
        else:
            # Same cost as a real check, so timing does not reveal which names exist.
            _DUMMY.check_password(password)
        if role is None or role not in ROLES:
            return None
        self._remember(user, password, role, groups, version)
        return Principal(user=user, role=role, groups=groups, source=source)

    def _pam_check(self, user: str, password: str) -> bool:
        import pam  # python-pam: only imported when PAM is configured
        try:
            return bool(pam.PamAuthenticator().authenticate(user, password,
                                                           service=self.pam.service))
        except Exception:  # a broken PAM stack must refuse, never crash the server
            log.exception("PAM authentication failed with an error (service %s)",
                          self.pam.service)
            return False

    # -- client certificates -----------------------------------------------------------------
    def for_certificate_user(self, name: str, source: str) -> Principal | None:
        record = self.lookup(name)
        if record is None:
            return None
        groups = os_groups(name) if record.pam else ()
        return Principal(user=name, role=record.role, groups=groups, source=source)


def os_groups(name: str) -> tuple[str, ...]:
    """The OS groups of account `name` (primary first), for guests' `-g` grant lists."""
    import grp
    import pwd
    try:
        gid = pwd.getpwnam(name).pw_gid
        gids = os.getgrouplist(name, gid)
    except (KeyError, OSError):
        return ()
    names = []
    for g in gids:
        try:
            names.append(grp.getgrgid(g).gr_name)
        except KeyError:
            continue
    return tuple(dict.fromkeys(names))


def _dummy_user() -> User:
    from provider.auth.users import hash_password
    return User("-", "readonly", False, hash_password(secrets.token_urlsafe(16)))


class _LazyDummy:
    _user: User | None = None

    def check_password(self, password: str) -> bool:
        if self._user is None:
            self._user = _dummy_user()
        return self._user.check_password(password)


_DUMMY = _LazyDummy()
