"""`vmprovider serve` settings: defaults, the TOML config file, then command-line options.

Config file (every key optional; command-line options win):

    [server]
    bind = "0.0.0.0"            # default: all interfaces
    port = 5989
    http_port = 5988            # plain HTTP only when given
    state_dir = "/var/lib/vmprovider"
    certs_dir = "/var/lib/vmprovider/certs"
    cert = "/etc/vmprovider/server.pem"   # with key: your own certificate
    key = "/etc/vmprovider/server.key"
    backend = "ivm"
    workers = 4                 # worker threads for parsing, operations and serialization
    max_request_bytes = 4194304 # larger requests get 413
    idle_timeout = 60           # seconds a keep-alive connection may sit idle
    realm = "vmprovider"

    [auth]
    pam_service = "login"       # enables PAM for users marked pam in the user file
    pam_default_role = "readonly"  # optional: PAM users not in the user file get this role
    credential_cache_seconds = 60
    failed_login_free = 3       # failures per source before the slowdown starts
    failed_login_delay = 1.0    # first delay; doubles per failure
    failed_login_max_delay = 30.0

    [client_certs]
    trust_dir = "/etc/vmprovider/client-ca"   # enables client certificates
    map_file = "/etc/vmprovider/client-users.toml"
    require = false

    [collections]               # CollectSystemData archives (docs/user-guide/collect.md)
    keep = 10                   # at most this many finished collections are kept
    max_age_days = 30           # and none older than this
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from provider.auth.users import ROLES

DEFAULT_STATE_DIR = "/var/lib/vmprovider"
BACKENDS = ("ivm", "libvirt")


class SettingsError(Exception):
    """A setting that cannot be used; the text names it."""


@dataclass
class Settings:
    bind: str = ""
    port: int = 5989
    http_port: int | None = None
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    certs_dir: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    backend: str = "ivm"
    demo: bool = False
    workers: int = 4
    max_request_bytes: int = 4 * 1024 * 1024
    idle_timeout: float = 60.0
    realm: str = "vmprovider"
    pam_service: str | None = None
    pam_default_role: str | None = None
    credential_cache_seconds: float = 60.0
    failed_login_free: int = 3
    failed_login_delay: float = 1.0
    failed_login_max_delay: float = 30.0
    client_trust_dir: Path | None = None
    client_map_file: Path | None = None
    client_cert_required: bool = False
    collect_keep: int = 10
    collect_max_age_days: float = 30.0

    @property
    def certs_path(self) -> Path:
        return self.certs_dir if self.certs_dir is not None else self.state_dir / "certs"

    def check(self) -> None:
        for name in ("port", "http_port"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 65535:
                raise SettingsError(f"{name} {value} is not a TCP port (0-65535)")
        if self.http_port is not None and self.http_port == self.port and self.port != 0:
            raise SettingsError("port and http_port must differ")
        if self.backend not in BACKENDS:
            raise SettingsError(f"backend {self.backend!r} is unknown: use ivm or libvirt")
        if self.workers < 1 or self.workers > 64:
            raise SettingsError("workers must be between 1 and 64")
        if self.max_request_bytes < 1024:
            raise SettingsError("max_request_bytes must be at least 1024")
        if self.idle_timeout <= 0:
            raise SettingsError("idle_timeout must be positive")
        if self.pam_default_role is not None and self.pam_default_role not in ROLES:
            raise SettingsError(f"pam_default_role {self.pam_default_role!r} is not one of "
                                f"{', '.join(ROLES)}")
        if self.pam_default_role is not None and self.pam_service is None:
            raise SettingsError("pam_default_role needs pam_service")
        if (self.cert is None) != (self.key is None):
            raise SettingsError("cert and key go together: give both or neither")
        if self.client_trust_dir is None and (self.client_map_file or self.client_cert_required):
            raise SettingsError("client certificates need client_certs.trust_dir")
        if self.client_trust_dir is not None and self.client_map_file is None:
            raise SettingsError("client certificates need client_certs.map_file "
                                "(which certificate is which user)")
        if not 1 <= self.collect_keep <= 10000:
            raise SettingsError("collections.keep must be between 1 and 10000")
        if not 0 < self.collect_max_age_days <= 36500:
            raise SettingsError("collections.max_age_days must be more than 0 and at most "
                                "36500 (days)")
        if '"' in self.realm or not self.realm.isprintable():
            raise SettingsError("realm must be printable and contain no double quote")


_SECTIONS = {
    "server": {"bind": str, "port": int, "http_port": int, "state_dir": Path,
               "certs_dir": Path, "cert": Path, "key": Path, "backend": str, "workers": int,
               "max_request_bytes": int, "idle_timeout": float, "realm": str},
    "auth": {"pam_service": str, "pam_default_role": str, "credential_cache_seconds": float,
             "failed_login_free": int, "failed_login_delay": float,
             "failed_login_max_delay": float},
    "client_certs": {"trust_dir": ("client_trust_dir", Path),
                     "map_file": ("client_map_file", Path),
                     "require": ("client_cert_required", bool)},
    "collections": {"keep": ("collect_keep", int),
                    "max_age_days": ("collect_max_age_days", float)},
}


def _convert(section: str, key: str, value, kind):
    if kind is Path:
        if not isinstance(value, str) or not value:
            raise SettingsError(f"[{section}] {key} must be a path string")
        return Path(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"[{section}] {key} must be true or false")
        return value
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SettingsError(f"[{section}] {key} must be a {kind.__name__}")
    return value


def load_config(path: Path) -> dict:
    """The config file as Settings field values; unknown sections or keys are errors."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise SettingsError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"config file {path}: {e}") from None
    values: dict = {}
    for section, table in data.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            raise SettingsError(f"config file {path}: unknown section [{section}] "
                                f"(known: {', '.join(_SECTIONS)})")
        for key, value in table.items():
            spec = _SECTIONS[section].get(key)
            if spec is None:
                raise SettingsError(f"config file {path}: unknown key {key!r} in [{section}]")
            field, kind = spec if isinstance(spec, tuple) else (key, spec)
            values[field] = _convert(section, key, value, kind)
    return values


def build_settings(config_file: Path | None, overrides: dict) -> Settings:
    """Defaults <- $VMPROVIDER_STATE_DIR <- config file <- command line (non-None values)."""
    values: dict = {}
    env_state = os.environ.get("VMPROVIDER_STATE_DIR")
    if env_state:
        values["state_dir"] = Path(env_state)
    if config_file is not None:
        values.update(load_config(config_file))
    names = {f.name for f in fields(Settings)}
    for key, value in overrides.items():
        if key not in names:
            raise SettingsError(f"unknown setting {key}")
        if value is not None:
            values[key] = value
    settings = Settings(**values)
    settings.check()
    return settings
