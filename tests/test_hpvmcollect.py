"""hpvmcollect: the host and guest forms, the archive and its steps, consistency while guests
change, full and unwritable destinations, keep vs -f, -l, -c/-n, -g, -s, and secrets."""
from __future__ import annotations

import errno
import io
import os
import re
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

import agent.collect as collect
from agent.api.guests import GuestChanges
from agent.cli import hpvmcollect
from agent.cli import status_text as text
from agent.clock import ManualClock
from agent.collect import (DISK_FULL_LINES, CollectError, CollectRequest, DiskFullError,
                           collect_guest)
from agent.guestconfig import parse_config
from agent.resources import parse_resource
from guest_support import make_agent, run_cli

HOST_STEPS = [
    "Copying host's device database", "Collecting I/O configuration info",
    "Collecting filesystem info", "Collecting system info", "Collecting lan info",
    "Running lanshow", "Collecting installed sw info", "Collecting command logs",
    "Collecting messages from vmm", "Collecting lv info", "Collecting vgdisplay info",
    "Collecting disk info", "Collecting passthru disk info",
    "Collecting file backing store info", "Copying guest's log file",
    "Copying guest's console log file", "Copying hpvm configuration",
    "Copying guest's config file", "Getting status of the guest",
    "Getting detailed status of the guest", "Getting guest's entitlement",
    "Copying guest's config file change log", "Copying guest's domain XML",
    "Copying guest's QEMU log", "Copying guest debug memory file", "Collecting crash dump",
    "Running crashinfo", "Collecting tombstone", "Collecting system message buffer",
    "Collecting system syslogs"]
GUEST_STEPS = HOST_STEPS[1:7] + HOST_STEPS[-5:]
REAL_OPEN = collect.default_open_file
STEP_LINE = re.compile(r"^(.+?) \.+ (OK|NO|N/A|TGZ|TAR)$")


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.delenv(hpvmcollect.CRASH_DIR_ENV, raising=False)
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def host(tmp_path):
    """A VM Host with compass1 (a file-backed disk, a vNIC) and compass2."""
    state = tmp_path / "state"
    clock = ManualClock()
    agent = make_agent(state, clock=clock)
    agent.create_vswitch("vsw1", 0)
    backing = tmp_path / "disk1.img"
    backing.write_bytes(b"\0" * 4096)
    agent.command = "hpvmcreate -P compass1"
    agent.create_guest("compass1", GuestChanges(
        vcpus=2, memory_mb=2048,
        add=[parse_resource(f"disk:scsi::file:{backing}"),
             parse_resource("network:lan::vswitch:vsw1")]))
    agent.create_guest("compass2")
    out = tmp_path / "out"
    out.mkdir()
    return agent, clock, state, out


def cli(state, *argv):
    """Run hpvmcollect in-process with --state-dir first (getopt stops at a positional)."""
    return run_cli(lambda a: hpvmcollect.main(a[-2:] + a[:-2]), list(argv), state)


def step_lines(stdout: str) -> list[tuple[str, str]]:
    return [m.groups() for m in map(STEP_LINE.match, stdout.splitlines()) if m]


def archive_of(stdout: str) -> Path:
    lines = stdout.splitlines()
    assert lines[-2] == "The collection is"
    return Path(lines[-1].strip('"').replace("//", "/"))


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        names = tar.getnames()
        top = names[0]
        assert all(n == top or n.startswith(top + "/") for n in names)
        return {m.name[len(top) + 1:]: tar.extractfile(m).read()
                for m in tar.getmembers() if m.isfile()}


def manifest_files(files: dict[str, bytes]) -> dict[str, list[str]]:
    """Step label -> the files the manifest says it wrote."""
    out: dict[str, list[str]] = {}
    for line in files["hpvmcollect.steps"].decode().splitlines():
        label, sep, rel = line.partition(": ")
        if sep and not STEP_LINE.match(line) and "    # " not in line:
            out.setdefault(label, []).append(rel)
    return out


def nothing_in(folder: Path) -> bool:
    return not folder.exists() or list(folder.iterdir()) == []


# --- the host form: steps and what each one archived ---------------------------------------------


def test_host_run_prints_the_guide_lines_and_archives_each_step(host):
    agent, _clock, state, out = host
    code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(out))
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[:2] == ["HPVM host crash/log collection tool version 3.0",
                         "Gathering info for post-mortem analysis of guest 'compass1' on host"]
    steps = step_lines(stdout)
    assert [label for label, _ in steps[:len(HOST_STEPS)]] == HOST_STEPS
    for line in lines[2:2 + len(HOST_STEPS)]:
        assert len(line.rsplit(" ", 1)[0]) == 69            # the guide's status column
    status = dict(steps)
    assert lines[2 + len(HOST_STEPS)] == "Finished with the collection"
    assert steps[len(HOST_STEPS):] == [("Tar archiving and compressing", "TGZ"),
                                       ("Garbage collect guest debug memory files", "NO"),
                                       ("Remote copying the archive", "NO")]
    path = archive_of(stdout)
    assert re.fullmatch(r"compass1_[A-Z][a-z]{2}\.\d\d\.\d\d_\d{6}[A-Z]+\.tar\.gz", path.name)
    assert path.parent == out / "hpvmcollect_archive"
    files = members(path)
    wrote = manifest_files(files)
    # every step that says OK wrote files, and only those did
    for label in HOST_STEPS:
        assert (status[label] == "OK") == bool(wrote.get(label)), label
    for label, rels in wrote.items():
        for rel in rels:
            assert rel in files, (label, rel)

    g = agent.find_guest("compass1")
    udir = state / "uuids" / g.uuid
    assert status["Copying host's device database"] == "OK"
    assert files["config/hpvm_mgmtdb"] == (state / "common/hpvm_mgmtdb").read_bytes()
    assert wrote["Copying guest's config file"] == ["guest/vmm_config.current"]
    assert files["guest/vmm_config.current"] == (udir / "vmm_config.current").read_bytes()
    assert files["guest/log"] == (udir / "log").read_bytes()
    assert files["guest/command.log"] == (udir / "command.log").read_bytes()
    assert files["logs/command.log"] == (state / "common/command.log").read_bytes()
    assert files["logs/events.log"] == (state / "common/events.log").read_bytes()
    assert files["config/host.toml"] == (state / "host.toml").read_bytes()
    assert files["config/vswitches"] == (state / "common/vswitches").read_bytes()
    # hpvmstatus views, laid out by hpvmstatus's own formatters
    assert files["guest/hpvmstatus.V"].decode() == "".join(
        line + "\n" for line in text.details(agent.status_details(name="compass1"),
                                             verbose=True))
    assert files["guest/hpvmstatus.P"].decode().splitlines() == text.details(
        agent.status_details(name="compass1"), verbose=False)
    assert "compass2" in files["hpvmstatus"].decode()
    assert files["guest/hpvmstatus.r"].decode().startswith("[Virtual Machine Resource Allocation]")
    assert "guest.create" in files["guest/hpvmstatus.e"].decode()
    # host facts
    assert "/dev/rdsk/c1t2d0" in files["host.ioscan"].decode()
    assert "vmhost" in files["host.sysinfo"].decode()
    assert "vsw1" in files["host.laninfo"].decode()
    assert "vg01" in files["host.vginfo"].decode()
    assert "vmprovider" in files["host.swlist"].decode()
    assert "disk1.img: 4096 bytes" in files["guest/backing_files.info"].decode()
    # what the ivm backend has no such thing as
    assert status["Copying guest's domain XML"] == "N/A"
    assert status["Copying guest's QEMU log"] == "N/A"
    assert status["Collecting passthru disk info"] == "N/A"
    assert status["Collecting crash dump"] == "NO"          # -c not given
    assert status["Copying guest debug memory file"] == "N/A"


def test_guest_by_number_and_positional_name(host):
    agent, _clock, state, out = host
    code, stdout, _ = cli(state, "-p", "2", "-d", str(out))
    assert code == 0
    assert "of guest 'compass2' on host" in stdout
    assert archive_of(stdout).name.startswith("compass2_")
    # the guide's chapter 12 form: the name alone, last (run_cli would put --state-dir after it)
    code, stdout, _ = cli(state, "-d", str(out), "-b", "pos", "compass1")
    assert code == 0 and "of guest 'compass1' on host" in stdout


def test_name_comes_from_the_injected_clock(host):
    agent, clock, _state, out = host
    result = agent.collect(CollectRequest(guest_name="compass1", directory=out))
    # ManualClock starts at 1_700_000_000 = 2023-11-14 22:13:20 UTC
    assert result.path.name == "compass1_Nov.14.23_221320UTC.tar.gz"
    assert result.shown == f"{out}/hpvmcollect_archive/compass1_Nov.14.23_221320UTC.tar.gz"
    with tarfile.open(result.path) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}
    assert result.size == result.path.stat().st_size
    import hashlib
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert oct(result.path.stat().st_mode & 0o777) == "0o600"


def test_default_directory_is_the_current_one(host, monkeypatch):
    agent, _clock, state, out = host
    monkeypatch.chdir(out)
    code, stdout, _ = cli(state, "-P", "compass1")
    assert code == 0
    assert archive_of(stdout).parent == out / "hpvmcollect_archive"


def test_progress_events_give_a_percentage(host):
    agent, _clock, _state, out = host
    events = []
    agent.collect(CollectRequest(guest_name="compass1", directory=out), progress=events.append)
    assert events[0].event == "begin" and events[0].subject == "compass1"
    total = events[0].total
    assert total == len(HOST_STEPS) + 3
    done = [e for e in events if e.event == "done"]
    assert [e.index for e in done] == list(range(1, total + 1))
    pct = [e.percent for e in events]
    assert pct == sorted(pct) and pct[-1] == 100 and pct[0] == 0


def test_cancel_leaves_nothing(host):
    agent, _clock, _state, out = host
    seen = []
    with pytest.raises(CollectError, match="cancelled"):
        agent.collect(CollectRequest(guest_name="compass1", directory=out),
                      progress=seen.append, cancel=lambda: len(seen) > 6)
    assert nothing_in(out)


# --- consistency while guests change ---------------------------------------------------------------


def test_collection_while_guests_change_is_consistent(host):
    agent, _clock, state, out = host
    from agent.api import Agent
    writer = Agent(state, clock=ManualClock(), host=agent.host)
    stop = threading.Event()
    errors = []

    def churn():
        i = 0
        while not stop.is_set():
            try:
                g = writer.find_guest("compass1")
                writer.modify_guest(g, GuestChanges(memory_mb=2048 + 64 * (i % 16)))
                writer.create_guest(f"churn{i}")
                writer.remove_guest(writer.find_guest(f"churn{i}"))
            except Exception as exc:       # reported below; the test must not hang
                errors.append(exc)
                return
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        results = [agent.collect(CollectRequest(guest_name="compass1", directory=out,
                                                label=f"run{n}")) for n in range(6)]
    finally:
        stop.set()
        t.join(30)
    assert not errors
    revisions = set()
    for r in results:
        files = members(r.path)
        cfg = parse_config(files["guest/vmm_config.current"], "vmm_config.current")
        verbose = files["guest/hpvmstatus.V"].decode()
        # the view and the file are from the same instant
        shown = re.search(r"^Total memory\s+: (.+)$", verbose, re.M).group(1)
        from agent.sizes import format_memory
        assert shown == format_memory(cfg.memory_mb)
        revision = int(re.search(r"^Guest revision\s+: (\d+)$", verbose, re.M).group(1))
        log = files["guest/log"].decode()
        assert revision == 1 + log.count("Guest modified")
        revisions.add(revision)
        for name in ("vmm_config.prev", "vmm_config.next"):
            if f"guest/{name}" in files:
                parse_config(files[f"guest/{name}"], name)
        for line in files["logs/events.log"].decode().splitlines():
            assert line.startswith('{"seq"') and line.endswith("}")
    assert len(revisions) > 1          # the guest really changed between runs


# --- archive names: keep, -f, -l ------------------------------------------------------------------


def test_existing_archive_is_kept_and_new_one_gets_a_timestamp(host):
    agent, clock, state, out = host
    first = agent.collect(CollectRequest(guest_name="compass1", directory=out, label="bug42"))
    assert first.path.name == "bug42.tar.gz"
    before = first.path.read_bytes()
    clock.advance(61)
    second = agent.collect(CollectRequest(guest_name="compass1", directory=out, label="bug42"))
    assert second.path.name == "bug42_Nov.14.23_221421UTC.tar.gz"
    assert first.path.read_bytes() == before
    third = agent.collect(CollectRequest(guest_name="compass1", directory=out, label="bug42"))
    assert third.path.name == "bug42_Nov.14.23_221421UTC.1.tar.gz"


def test_force_replaces_the_archive(host):
    agent, clock, state, out = host
    first = agent.collect(CollectRequest(guest_name="compass1", directory=out, label="bug42"))
    clock.advance(61)
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-b", "bug42", "-f")
    assert code == 0
    assert archive_of(stdout) == first.path
    assert sorted(p.name for p in (out / "hpvmcollect_archive").iterdir()) == ["bug42.tar.gz"]
    with tarfile.open(first.path) as tar:
        assert {m.mtime for m in tar.getmembers()} != {1_700_000_000}    # the new one


def test_l_leaves_a_directory(host):
    agent, _clock, state, out = host
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-l", "-b", "dir1")
    assert code == 0
    assert ("Tar archiving and compressing", "NO") in step_lines(stdout)
    folder = archive_of(stdout)
    assert folder == out / "hpvmcollect_archive" / "dir1" and folder.is_dir()
    g = agent.find_guest("compass1")
    assert (folder / "guest/vmm_config.current").read_bytes() == \
        (agent.store.root / "uuids" / g.uuid / "vmm_config.current").read_bytes()
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-l", "-b", "dir1")
    assert archive_of(stdout).name.startswith("dir1_")
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-l", "-b", "dir1", "-f")
    assert archive_of(stdout) == folder
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


# --- full and unwritable destinations ---------------------------------------------------------------


class _FullAfter:
    """A writer whose disk fills after `limit` bytes."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, path):
        f = REAL_OPEN(path)
        limit = self

        class Writer(io.RawIOBase):
            def writable(self):
                return True

            def write(self, b):
                if limit.limit < len(b):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
                limit.limit -= len(b)
                return f.write(b)

            def fileno(self):
                return f.fileno()

            def close(self):
                f.close()
                super().close()

        return Writer()


def test_full_disk_with_an_injected_writer_leaves_nothing(host, monkeypatch):
    agent, _clock, state, out = host
    with pytest.raises(DiskFullError):
        agent.collect(CollectRequest(guest_name="compass1", directory=out),
                      open_file=_FullAfter(3000))
    assert nothing_in(out)
    for extra in ([], ["-l"]):
        monkeypatch.setattr(collect, "default_open_file", _FullAfter(3000))
        code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(out), *extra)
        assert code == 1
        assert stderr.splitlines()[:3] == list(DISK_FULL_LINES)
        assert stderr.splitlines()[3].startswith("hpvmcollect: ")
        assert "The collection is" not in stdout
        assert nothing_in(out)


def _mount_tmpfs(path: Path, size: str, ro: bool = False) -> bool:
    if os.geteuid() != 0:
        return False
    opts = f"size={size}" + (",ro" if ro else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_full_tmpfs_leaves_nothing_and_prints_the_guide_text(host, tmp_path):
    _agent, _clock, state, _out = host
    small = tmp_path / "small"
    small.mkdir()
    if not _mount_tmpfs(small, "12k"):
        pytest.skip("needs root and tmpfs (the injected-writer test covers the rest)")
    try:
        code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(small))
        assert code == 1
        assert stderr.splitlines()[:3] == list(DISK_FULL_LINES)
        assert list(small.iterdir()) == []
        (small / "hpvmcollect_archive").mkdir()          # an existing folder stays, empty
        code, _, _ = cli(state, "-P", "compass1", "-d", str(small), "-l")
        assert code == 1
        assert list((small / "hpvmcollect_archive").iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_unwritable_destination(host, tmp_path):
    _agent, _clock, state, _out = host
    code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(tmp_path / "nope"))
    assert code == 1 and stdout == ""
    assert stderr == (f"hpvmcollect: The directory '{tmp_path / 'nope'}' does not exist or is "
                      "not a directory.\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    if _mount_tmpfs(ro, "1m", ro=True):
        try:
            code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(ro))
            assert code == 1
            assert "hpvmcollect: Cannot write the collection in" in stderr
            assert "Read-only file system" in stderr
            assert list(ro.iterdir()) == []
        finally:
            subprocess.run(["umount", str(ro)], check=True)
    elif os.geteuid() != 0:
        ro.chmod(0o500)
        code, _, stderr = cli(state, "-P", "compass1", "-d", str(ro))
        assert code == 1 and "Permission denied" in stderr
        assert list(ro.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "hpvmcollect_archive").write_text("not a folder")
    code, _, stderr = cli(state, "-P", "compass1", "-d", str(tmp_path / "d"))
    assert code == 1 and "is not a directory" in stderr


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["-P", "nosuch"], "hpvmcollect: Unable to find the guest 'nosuch'."),
    (["-p", "9"], "hpvmcollect: Unable to find the guest numbered 9."),
    (["-P", "compass1", "-n", "3"], "hpvmcollect: Option -n is valid only with -c."),
    (["-P", "compass1", "-p", "1"], "hpvmcollect: Options -P and -p are mutually exclusive"),
    (["-P", "compass1", "-P", "compass2"], "hpvmcollect: Option -P was given more than once"),
    (["-P", "compass1", "-x"], "hpvmcollect: Invalid option -x"),
    (["-P", "compass1", "-d"], "hpvmcollect: Option -d requires a value"),
    (["-p", "abc"], "hpvmcollect: Invalid VM number 'abc' for option -p: expected a whole "
                    "number"),
    (["-P", "compass1", "-c", "-n", "x"], "hpvmcollect: Invalid crash dump number 'x' for "
                                          "option -n: expected a whole number"),
    (["-P", "compass1", "-b", "../up"], "hpvmcollect: Invalid report number '../up' for option"
                                        " -b"),
    (["-P", "compass1", "-s", "-oProxyCommand=sh"], "hpvmcollect: Invalid destination "
                                                    "'-oProxyCommand=sh' for option -s"),
    (["-P", "compass1", "compass2"], "hpvmcollect: Unexpected argument 'compass2'"),
    ([], "hpvmcollect: On the VM Host, give the guest with -P vm-name or -p vm-number"),
])
def test_bad_input_is_one_line_and_leaves_nothing(host, argv, message):
    _agent, _clock, state, out = host
    from guest_support import fingerprint
    before = fingerprint(state)
    code, stdout, stderr = cli(state, *argv, "-d", str(out)) if "-d" not in argv else \
        cli(state, *argv)
    assert code == 1
    assert stdout == ""
    assert len(stderr.splitlines()) == 1 and stderr.startswith(message), stderr
    assert nothing_in(out)
    assert fingerprint(state) == before


def test_help(host):
    _agent, _clock, state, _out = host
    code, stdout, _ = cli(state, "-h")
    assert code == 0 and stdout.startswith("Usage (VM Host): hpvmcollect {-P vm_name")


# --- secrets ------------------------------------------------------------------------------------------


def test_secrets_are_never_collected(host):
    agent, _clock, state, out = host
    from provider.auth.users import ADMIN_PASSWORD_FILE, USERS_FILE
    from provider.tls import KEY_NAME
    from provider.audit import AUDIT_FILE
    from provider.providers.subscriptions import FILE_NAME as SUBSCRIPTIONS_FILE
    assert {USERS_FILE, ADMIN_PASSWORD_FILE, KEY_NAME, AUDIT_FILE, SUBSCRIPTIONS_FILE} <= \
        collect.SECRET_NAMES
    # listener destinations keep their password (CIM_ListenerDestinationCIMXML.password)
    (state / SUBSCRIPTIONS_FILE).write_text(
        '{"destinations": [{"Name": "d1", "password": "TOPSECRETLISTENER"}]}')
    (state / AUDIT_FILE).write_text('{"user": "admin", "source": "10.0.0.9"}\n')
    key = b"-----BEGIN EC PRIVATE KEY-----\nTOPSECRETKEY\n-----END EC PRIVATE KEY-----\n"
    (state / USERS_FILE).write_text('{"users": {"admin": {"scrypt": "TOPSECRETHASH"}}}')
    (state / ADMIN_PASSWORD_FILE).write_text("TOPSECRETPASSWORD\n")
    (state / "certs").mkdir()
    (state / "certs" / KEY_NAME).write_bytes(key)
    (state / "renamed.pem").write_bytes(key)                 # caught by its content
    (state / "common" / "backup.key").write_bytes(b"TOPSECRETKEY2")
    (state / "settings.toml").write_text("port = 5989\n")    # ordinary configuration: kept
    result = agent.collect(CollectRequest(guest_name="compass1", directory=out))
    files = members(result.path)
    assert "config/settings.toml" in files
    for rel, data in files.items():
        assert b"TOPSECRET" not in data, rel
        assert not rel.endswith((USERS_FILE, ADMIN_PASSWORD_FILE, KEY_NAME, AUDIT_FILE,
                                 SUBSCRIPTIONS_FILE, ".pem", ".key"))


# --- crash dumps, -g, -s ----------------------------------------------------------------------------


def test_crash_dump_makes_a_tar(host, tmp_path, monkeypatch):
    _agent, _clock, state, out = host
    crash = tmp_path / "crash"
    for n in (1, 2):
        (crash / f"crash.{n}").mkdir(parents=True)
        (crash / f"crash.{n}" / "vmunix").write_bytes(b"dump %d" % n)
    (crash / "bounds").write_text("3\n")
    monkeypatch.setenv(hpvmcollect.CRASH_DIR_ENV, str(crash))
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-c")
    assert code == 0
    steps = dict(step_lines(stdout))
    assert steps["Collecting crash dump 2"] == "OK"
    assert steps["Tar archiving and compressing"] == "TAR"
    assert steps["Running crashinfo"] == "N/A"        # no crashinfo command here
    path = archive_of(stdout)
    assert path.name.endswith(".tar") and not path.name.endswith(".tar.gz")
    assert members(path)["crash.2/vmunix"] == b"dump 2"
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-c", "-n", "1", "-b", "n1")
    assert code == 0 and members(archive_of(stdout))["crash.1/vmunix"] == b"dump 1"
    code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(out), "-c", "-n", "7")
    assert code == 1 and stdout == ""
    assert stderr == f"hpvmcollect: Crash dump 7 does not exist in {crash}.\n"


def test_g_deletes_debug_files_once_archived(host):
    agent, _clock, state, out = host
    g = agent.find_guest("compass1")
    with agent.store.transaction() as txn:
        txn.write(f"uuids/{g.uuid}/debug/memdump.1", b"guest memory")
    result = agent.collect(CollectRequest(guest_name="compass1", directory=out, label="keep"))
    assert [s.status for s in result.trailer if s.label == collect.GC_LABEL] == ["NO"]
    assert (state / "uuids" / g.uuid / "debug/memdump.1").exists()
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-g", "-b", "purge")
    assert code == 0
    steps = dict(step_lines(stdout))
    assert steps["Copying guest debug memory file"] == "OK"
    assert steps["Garbage collect guest debug memory files"] == "OK"
    assert members(archive_of(stdout))["guest/debug/memdump.1"] == b"guest memory"
    assert not (state / "uuids" / g.uuid / "debug/memdump.1").exists()
    assert agent.store.events(kind="guest.debug_purge")


def test_s_copies_to_a_local_path(host, tmp_path):
    _agent, _clock, state, out = host
    dest = tmp_path / "support"
    dest.mkdir()
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-b", "x", "-s", str(dest))
    assert code == 0
    assert ("Remote copying the archive", "OK") in step_lines(stdout)
    path = archive_of(stdout)
    assert (dest / path.name).read_bytes() == path.read_bytes()
    code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(out), "-b", "x", "-f",
                               "-s", str(dest))
    assert code == 1
    assert stderr == f"hpvmcollect: Cannot copy the archive to '{dest / 'x.tar.gz'}': it " \
                     "already exists.\n"
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]
    code, stdout, _ = cli(state, "-P", "compass1", "-d", str(out), "-l", "-b", "d",
                          "-s", str(dest))
    assert code == 0
    assert (dest / "d" / "guest" / "vmm_config.current").is_file()


def test_s_without_scp_is_a_clear_error_and_keeps_the_archive(host, monkeypatch, tmp_path):
    _agent, _clock, state, out = host
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    code, stdout, stderr = cli(state, "-P", "compass1", "-d", str(out), "-s", "support:/in")
    assert code == 1
    assert ("Remote copying the archive", "N/A") in step_lines(stdout)
    assert stderr == ("hpvmcollect: Cannot copy the archive to 'support:/in': scp is not "
                      "installed on this host.\n")
    assert archive_of(stdout).is_file()


def test_s_runs_scp_with_the_archive(host, tmp_path):
    agent, _clock, _state, out = host
    log = tmp_path / "scp.log"
    fake = tmp_path / "scp"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\n")
    fake.chmod(0o755)
    result = agent.collect(CollectRequest(guest_name="compass1", directory=out,
                                          send_to="support"), scp=str(fake))
    assert result.remote == "support:"
    args = log.read_text().splitlines()
    assert args[-3:] == ["--", str(result.path), "support:"]
    assert "-B" in args


# --- the guest form ---------------------------------------------------------------------------------


def test_guest_form_collects_this_machine(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, stderr = run_cli(hpvmcollect.main, ["-d", str(out)], tmp_path / "no-host")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "HPVM guest crash/log collection tool version 3.0"
    assert re.fullmatch(r"Gathering info for post-mortem analysis on guest \(hostname '.+'\)",
                        lines[1])
    steps = step_lines(stdout)
    assert [label for label, _ in steps[:len(GUEST_STEPS)]] == GUEST_STEPS
    assert steps[len(GUEST_STEPS):] == [("Tar archiving and compressing", "TGZ"),
                                        ("Remote copying the archive", "NO")]
    files = members(archive_of(stdout))
    assert {"host.ioscan", "host.fsinfo", "host.sysinfo", "host.laninfo"} <= set(files)
    assert not (tmp_path / "no-host").exists()      # the guest form makes no state folder


def test_guest_form_refuses_host_only_options(tmp_path):
    code, _, stderr = run_cli(hpvmcollect.main, ["-g"], tmp_path / "no-host")
    assert code == 1 and stderr == "hpvmcollect: Option -g is valid on the VM Host only.\n"
    with pytest.raises(CollectError):
        collect_guest(CollectRequest(purge_debug=True), cwd=tmp_path)


def test_a_guest_with_a_broken_configuration_is_still_collected(host):
    agent, _clock, state, out = host
    g = agent.find_guest("compass2")
    with agent.store.transaction() as txn:
        txn.write(f"uuids/{g.uuid}/vmm_config.current", b"this is not a configuration\n")
    code, stdout, stderr = cli(state, "-P", "compass2", "-d", str(out))
    assert code == 0, stderr
    steps = dict(step_lines(stdout))
    assert steps["Copying guest's config file"] == "OK"
    assert steps["Getting guest's entitlement"] == "OK"      # the host's -s view still is
    files = members(archive_of(stdout))
    assert files["guest/vmm_config.current"] == b"this is not a configuration\n"
    assert "Invalid" in files["guest/hpvmstatus.P"].decode()
    assert "guest/hpvmstatus.r" not in files
