"""Where the agent keeps its state: `--state-dir`, else `VMPROVIDER_STATE_DIR`, else
`/var/opt/hpvm` for root (the product's own path), else `$XDG_STATE_HOME/vmprovider`."""
from __future__ import annotations

import os
from pathlib import Path

from agent.errors import AgentError

ENV_VAR = "VMPROVIDER_STATE_DIR"
ROOT_DEFAULT = Path("/var/opt/hpvm")
# Created private: guest configurations, logs and credentials live here. An administrator
# who wants an operators' group to read it widens the folder by hand (see docs/store.md).
STATE_DIR_MODE = 0o700


def default_state_dir(*, euid: int | None = None, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if (os.geteuid() if euid is None else euid) == 0:
        return ROOT_DEFAULT
    xdg = env.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "vmprovider"


def resolve_state_dir(cli_value: str | os.PathLike | None = None, *, create: bool = True,
                      environ: dict[str, str] | None = None) -> Path:
    """The state folder as an absolute path, created (mode 0700) when missing."""
    env = os.environ if environ is None else environ
    if cli_value is not None and os.fspath(cli_value) != "":
        path = Path(os.path.expanduser(os.fspath(cli_value)))
    elif env.get(ENV_VAR):
        path = Path(os.path.expanduser(env[ENV_VAR]))
    else:
        path = default_state_dir(environ=env)
    path = path.absolute()
    if create:
        ensure_state_dir(path)
    return path


def ensure_state_dir(path: Path) -> None:
    if path.is_dir():
        return
    if path.exists() or path.is_symlink():
        raise AgentError(f"State directory {path} exists but is not a directory.", "failed")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=STATE_DIR_MODE)
        os.chmod(path, STATE_DIR_MODE)      # exact, whatever the umask
    except FileExistsError:
        if not path.is_dir():
            raise AgentError(f"State directory {path} exists but is not a directory.",
                             "failed") from None
    except OSError as exc:
        raise AgentError(f"Cannot create state directory {path}: {exc.strerror}.",
                         "failed") from None
