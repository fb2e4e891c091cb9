"""-s: the copy of the finished archive to another host or a local path."""
from __future__ import annotations

import os
import secrets as _secrets
import shutil
import subprocess
from pathlib import Path

from agent.collect.model import CollectError


def check_destination(text: str) -> None:
    """-s: a host, host:path or a local path; never something scp would read as an option."""
    if not text or text.strip() != text or any(c in text for c in "\n\r\0"):
        raise CollectError(f"Invalid destination '{text}' for option -s.", "invalid")
    if text.startswith("-"):
        raise CollectError(f"Invalid destination '{text}' for option -s: it must not begin "
                           "with '-'.", "invalid")


def is_remote(dest: str) -> bool:
    if dest.startswith(("/", "./", "../", "~")) or dest in (".", ".."):
        return False
    if ":" in dest.split("/", 1)[0]:
        return True
    return "/" not in dest and not os.path.isdir(dest)     # a bare host name, as the guide


def send_archive(path: Path, dest: str, *, scp: str | None = None,
                 timeout: float = 600.0) -> str:
    """-s: copy the finished archive; returns where it went, raises CollectError otherwise."""
    check_destination(dest)
    if is_remote(dest):
        target = dest if ":" in dest.split("/", 1)[0] else dest + ":"
        exe = scp if scp is not None else shutil.which("scp")
        if not exe or not os.path.exists(exe):
            raise CollectError(f"Cannot copy the archive to '{target}': scp is not installed "
                               "on this host.", "failed")
        argv = [exe, "-q", "-B", "-p"] + (["-r"] if path.is_dir() else []) + ["--", str(path),
                                                                            target]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CollectError(f"Cannot copy the archive to '{target}': scp timed out.",
                               "failed") from None
        if proc.returncode != 0:
            why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise CollectError(f"Cannot copy the archive to '{target}': "
                               f"{why[-1] if why else f'scp exited with {proc.returncode}'}",
                               "failed")
        return target
    target = Path(dest)
    if target.is_dir():
        target = target / path.name
    if os.path.lexists(target):
        raise CollectError(f"Cannot copy the archive to '{target}': it already exists.",
                           "exists")
    tmp = target.parent / f".{target.name}.partial-{_secrets.token_hex(4)}"
    try:
        if path.is_dir():
            shutil.copytree(path, tmp, symlinks=True)
        else:
            shutil.copyfile(path, tmp)
            os.chmod(tmp, 0o600)
        os.rename(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else unlink_quietly(tmp)
        raise CollectError(f"Cannot copy the archive to '{target}': {exc.strerror}.",
                           "failed") from None
    return str(target)


def unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
