"""The store: atomic transactions, locking across threads and processes, journal replay."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent import store as store_mod
from agent.clock import ManualClock
from agent.store import EVENT_LOG, Store, StoreError, _encode_journal

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "state", clock=ManualClock(), actor="tester")


def test_commit_applies_every_file_and_event(store):
    with store.transaction() as txn:
        txn.write("uuids/u1/vmm_config.current", b"name=g1\n")
        txn.write("uuids/u1/vmm_config.prev", "name=g0\n")
        txn.symlink("guests/g1", "../uuids/u1")
        txn.append("uuids/u1/log", b"created\n")
        txn.event("guest.create", "u1", name="g1")
    assert txn.generation == 1 == store.generation()
    assert store.read("guests/g1/vmm_config.current") == b"name=g1\n"
    assert store.read("uuids/u1/vmm_config.prev") == b"name=g0\n"
    assert store.read("guests/g1/log") == b"created\n"
    [event] = store.events()
    assert (event.seq, event.actor, event.kind, event.subject, event.detail) == \
        (1, "tester", "guest.create", "u1", {"name": "g1"})
    assert txn.events == [event]
    assert os.readlink(store.root / "guests/g1") == "../uuids/u1"


def test_exception_inside_rolls_everything_back(store):
    with store.transaction() as txn:
        txn.write("keep", b"old")
    with pytest.raises(RuntimeError):
        with store.transaction() as txn:
            txn.write("keep", b"new")
            txn.write("other/file", b"x")
            txn.delete("keep")
            txn.event("thing.change", "keep")
            raise RuntimeError("refused")
    assert store.read("keep") == b"old"
    assert store.read("other/file") is None
    assert not (store.root / "other").exists()
    assert store.events() == []
    assert store.generation() == 1
    with pytest.raises(StoreError):
        txn.write("late", b"x")     # a finished transaction takes no more changes


def test_reads_inside_a_transaction_see_staged_changes(store):
    with store.transaction() as txn:
        txn.write("uuids/u1/a", b"1")
        txn.write("uuids/u2/a", b"2")
        txn.symlink("guests/one", "../uuids/u1")
    with store.transaction() as txn:
        txn.remove_tree("uuids/u1")
        txn.delete("guests/one")
        assert txn.read("uuids/u1/a") is None
        assert txn.listdir("uuids") == ["u2"]
        assert txn.listdir("guests") == []
        txn.write("uuids/u1/b", b"new")
        txn.symlink("guests/two", "../uuids/u1")
        assert txn.listdir("uuids/u1") == ["b"]
        assert txn.read("guests/two/b") == b"new"
        assert txn.read("guests/two/a") is None
        txn.append("guests/two/b", b"+more")
        assert txn.read("uuids/u1/b") == b"new+more"
        # the committed state is unchanged until the block ends
        assert store.read("uuids/u1/a") == b"1"
    assert sorted(os.listdir(store.root / "uuids/u1")) == ["b"]
    assert store.read("guests/two/b") == b"new+more"
    assert not os.path.lexists(store.root / "guests/one")


def test_appends_accumulate_across_transactions(store):
    for i in range(5):
        with store.transaction() as txn:
            txn.append("common/command.log", f"line {i}\n")
    assert store.read("common/command.log").decode().splitlines() == [f"line {i}" for i in range(5)]


def test_modes_are_exact_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        store = Store(tmp_path / "fresh")
        with store.transaction() as txn:
            txn.write("secret", b"pw", mode=0o600)
            txn.write("config", b"c")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.root / "secret").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.root / "config").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(store.root / ".store/lock").st_mode) == 0o644


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../x", "", ".store/generation",
                                 ".vmpstore-abc.tmp", "a\0b"])
def test_bad_paths_are_refused_and_change_nothing(store, bad):
    with pytest.raises(StoreError):
        with store.transaction() as txn:
            txn.write(bad, b"x")
    assert store.generation() == 0


def test_links_that_leave_the_store_are_refused(store):
    with pytest.raises(StoreError):
        with store.transaction() as txn:
            txn.symlink("guests/evil", "../../etc")
    os.symlink("/etc", store.root / "planted")
    with pytest.raises(StoreError, match="leaves the store"):
        store.read("planted/passwd")


def test_event_log_is_written_only_through_events(store):
    with pytest.raises(StoreError):
        with store.transaction() as txn:
            txn.write(EVENT_LOG, b"forged\n")
    with pytest.raises(StoreError):
        with store.transaction() as txn:
            txn.remove_tree("common")


def test_write_over_a_folder_is_refused(store):
    with store.transaction() as txn:
        txn.write("dir/file", b"x")
    with pytest.raises(StoreError, match="is a directory"):
        with store.transaction() as txn:
            txn.write("dir", b"x")
    with pytest.raises(StoreError, match="not a directory"):
        with store.transaction() as txn:
            txn.write("dir/file/sub", b"x")


def test_empty_transaction_does_not_bump_the_generation(store):
    with store.transaction():
        pass
    assert store.generation() == 0


def test_nested_transaction_is_refused_but_snapshot_inside_is_allowed(store):
    with store.transaction() as txn:
        txn.write("a", b"staged")
        with pytest.raises(StoreError, match="nested"):
            with store.transaction():
                pass
        with store.snapshot() as snap:      # sees the committed state, not the staged one
            assert snap.read("a") is None
    with store.snapshot():
        with pytest.raises(StoreError):
            with store.transaction():
                pass
    assert store.read("a") == b"staged"


def test_concurrent_threads_never_lose_an_update(store):
    workers, rounds = 6, 25

    def work():
        for _ in range(rounds):
            with store.transaction() as txn:
                n = int(txn.read("counter") or b"0")
                txn.write("counter", str(n + 1))
                txn.event("counter.bump", "counter", value=n + 1)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read("counter") == str(workers * rounds).encode()
    events = store.events()
    assert [e.seq for e in events] == list(range(1, workers * rounds + 1))
    assert [e.detail["value"] for e in events] == list(range(1, workers * rounds + 1))


_BUMP = """
import sys
from agent.store import Store
s = Store(sys.argv[1], actor=sys.argv[2])
for _ in range(int(sys.argv[3])):
    with s.transaction() as txn:
        n = int(txn.read("counter") or b"0")
        txn.write("counter", str(n + 1))
        txn.append("log", sys.argv[2] + "\\n")
        txn.event("counter.bump", "counter", value=n + 1)
"""


def test_concurrent_processes_never_lose_an_update(store):
    procs, rounds = 3, 20
    children = [subprocess.Popen([sys.executable, "-c", _BUMP, str(store.root), f"p{i}",
                                  str(rounds)], cwd=REPO) for i in range(procs)]
    with store.transaction() as txn:        # this process competes too
        n = int(txn.read("counter") or b"0")
        txn.write("counter", str(n + 1))
        txn.append("log", "parent\n")
        txn.event("counter.bump", "counter", value=n + 1)
    for child in children:
        assert child.wait(timeout=60) == 0
    total = procs * rounds + 1
    assert store.read("counter") == str(total).encode()
    assert len(store.read("log").splitlines()) == total
    assert [e.detail["value"] for e in store.events()] == list(range(1, total + 1))
    assert {e.actor for e in store.events()} == {"tester"} | {f"p{i}" for i in range(procs)}


def test_snapshots_are_consistent_while_a_writer_commits(store):
    with store.transaction() as txn:
        txn.write("pair/a", b"0")
        txn.write("pair/b", b"0")
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            with store.transaction() as txn:
                txn.write("pair/a", str(i))
                txn.write("pair/b", str(i))

    thread = threading.Thread(target=writer)
    thread.start()
    seen = set()
    try:
        # read until the writer has committed several times (the deadline only guards a
        # hang: a loaded machine may need longer than any fixed reading time)
        deadline = time.monotonic() + 60.0
        while len(seen) < 5 and time.monotonic() < deadline:
            with store.snapshot() as snap:
                a, b = snap.read("pair/a"), snap.read("pair/b")
                gen = snap.generation
                assert snap.generation == store.generation()
            assert a == b
            seen.add(gen)
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 1        # the writer really did commit while we read


def _stage_journal(store, generation, ops_payloads):
    ops = [dict(op, len=len(data)) for op, data in ops_payloads]
    raw = _encode_journal(generation, ops, [d for _, d in ops_payloads])
    (store.root / ".store/journal").write_bytes(raw)


def test_leftover_journal_is_replayed_on_open(store):
    with store.transaction() as txn:
        txn.write("a", b"old-a")
        txn.append("log", b"one\n")
    line = (b'{"seq": 1, "time": "2026-01-01T00:00:00.000000Z", "actor": "x", "kind": "k", '
            b'"subject": "s", "detail": {}}\n')
    _stage_journal(store, 2, [
        ({"op": "write", "path": "a", "mode": 0o644}, b"new-a"),
        ({"op": "write", "path": "dir/b", "mode": 0o600}, b"new-b"),
        ({"op": "append", "path": "log", "offset": 4, "mode": 0o644}, b"two\n"),
        ({"op": "append", "path": EVENT_LOG, "offset": 0, "mode": 0o644}, line),
    ])
    # a torn attempt at the append, as a crash in the middle of applying would leave
    with open(store.root / "log", "ab") as f:
        f.write(b"tw")
    reopened = Store(store.root)
    assert reopened.read("a") == b"new-a"
    assert reopened.read("dir/b") == b"new-b"
    assert stat.S_IMODE(os.stat(store.root / "dir/b").st_mode) == 0o600
    assert reopened.read("log") == b"one\ntwo\n"
    assert [e.seq for e in reopened.events()] == [1]
    assert reopened.generation() == 2
    assert not (store.root / ".store/journal").exists()


def test_replay_is_idempotent_when_interrupted_again(store, monkeypatch):
    with store.transaction() as txn:
        txn.write("a", b"1")
        txn.append("log", b"x\n")
    real_apply = store_mod._apply

    def crash_half_way(root, ops, payloads):
        real_apply(root, ops[:2], payloads[:2])
        raise OSError(5, "simulated crash")

    monkeypatch.setattr(store_mod, "_apply", crash_half_way)
    with pytest.raises(StoreError, match="completed when the store is next opened"):
        with store.transaction() as txn:
            txn.write("a", b"2")
            txn.append("log", b"y\n")
            txn.remove_tree("gone")
            txn.write("b", b"2")
            txn.event("two", "a")
    assert (store.root / ".store/journal").exists()
    monkeypatch.setattr(store_mod, "_apply", real_apply)
    assert store.read("a") == b"2"          # the next lock holder finished the change
    assert store.read("b") == b"2"
    assert store.read("log") == b"x\ny\n"
    assert [e.kind for e in store.events()] == ["two"]
    assert store.generation() == 2


def test_journal_already_applied_is_discarded_not_replayed(store):
    with store.transaction() as txn:
        txn.write("a", b"current")
    _stage_journal(store, 1, [({"op": "write", "path": "a", "mode": 0o644}, b"stale")])
    assert Store(store.root).read("a") == b"current"
    assert not (store.root / ".store/journal").exists()


def test_unfinished_journal_is_discarded(store):
    with store.transaction() as txn:
        txn.write("a", b"current")
    (store.root / ".store/journal.tmp").write_bytes(b"VMPSTORE-JOURNAL-1 trunc")
    assert Store(store.root).read("a") == b"current"
    assert not (store.root / ".store/journal.tmp").exists()


def test_damaged_journal_stops_with_a_clear_error(store):
    with store.transaction() as txn:
        txn.write("a", b"current")
    _stage_journal(store, 2, [({"op": "write", "path": "a", "mode": 0o644}, b"new")])
    raw = (store.root / ".store/journal").read_bytes()
    (store.root / ".store/journal").write_bytes(raw[:-1] + b"X")
    with pytest.raises(StoreError, match="journal is damaged"):
        Store(store.root)


def test_listdir_hides_metadata_and_reports_missing_as_empty(store):
    with store.transaction() as txn:
        txn.write("uuids/u1/x", b"")
    with store.snapshot() as snap:
        assert snap.listdir() == ["uuids"]
        assert snap.listdir("nothing/here") == []
        assert snap.is_dir("uuids") and not snap.exists("uuids/u2")
        with pytest.raises(StoreError, match="not a directory"):
            snap.listdir("uuids/u1/x")


def test_two_store_objects_on_one_root_in_one_thread_do_not_deadlock(store):
    other = Store(str(store.root) + "/")        # another object, another spelling
    with store.transaction() as txn:
        txn.write("a", b"1")
        again = Store(store.root)               # opening inside a transaction is fine
        with pytest.raises(StoreError, match="nested"):
            with other.transaction():
                pass
        assert again.read("a") is None          # the committed state, without blocking
    assert other.read("a") == b"1"


# --------------------------------------------------------------------------- the state folder

from agent.errors import AgentError  # noqa: E402
from agent.statedir import ENV_VAR, ROOT_DEFAULT, default_state_dir, resolve_state_dir  # noqa: E402


def test_state_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "from-env"))
    assert resolve_state_dir(tmp_path / "from-cli") == tmp_path / "from-cli"
    assert resolve_state_dir() == tmp_path / "from-env"
    monkeypatch.delenv(ENV_VAR)
    assert default_state_dir(euid=0) == ROOT_DEFAULT
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    assert default_state_dir(euid=1000, environ=env) == tmp_path / "xdg/vmprovider"
    # a relative XDG value is invalid by the spec and ignored
    assert default_state_dir(euid=1000, environ={"XDG_STATE_HOME": "rel"}) == \
        Path.home() / ".local/state/vmprovider"
    assert resolve_state_dir(None, create=False,
                             environ={ENV_VAR: "~/x"}) == Path.home() / "x"


def test_state_dir_is_created_private(tmp_path):
    old = os.umask(0)
    try:
        path = resolve_state_dir(tmp_path / "a/b/state")
    finally:
        os.umask(old)
    assert path.is_dir() and stat.S_IMODE(path.stat().st_mode) == 0o700
    existing = tmp_path / "open"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    resolve_state_dir(existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755     # never re-moded


def test_state_dir_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(AgentError, match="exists but is not a directory"):
        resolve_state_dir(tmp_path / "f")


def test_replay_over_a_fully_applied_journal_gives_the_same_state(store):
    """Replaying must not follow a link a later operation of the same journal created."""
    with store.transaction() as txn:
        txn.write("c/keep", b"precious")
        txn.write("c/old", b"also precious")
        txn.write("a/old", b"1")
    with store.transaction() as txn:
        txn.delete("a/old")
        txn.write("a/x", b"2")
        txn.remove_tree("a")
        txn.symlink("a", "c")
        txn.write("f", b"file")
        txn.delete("f")
        txn.write("f/inner", b"now a folder")
        txn.append("a/log", b"through the link\n")      # resolves to c/log
        ops, payloads = list(txn._ops), list(txn._payloads)
        # commit normally, then below pretend the crash hit before the journal was removed
    final = {p: store.read(p) for p in ("c/keep", "c/log", "f/inner", "a/x", "c/x", "c/old")}
    assert final == {"c/keep": b"precious", "c/log": b"through the link\n",
                     "f/inner": b"now a folder", "a/x": None, "c/x": None,
                     "c/old": b"also precious"}
    # the same journal found again after a crash that hit just before its removal
    (store.root / ".store/generation").write_text("1\n")
    _stage_journal(store, 2, list(zip(ops, payloads)))
    again = Store(store.root)
    assert {p: again.read(p) for p in final} == final
    assert os.readlink(store.root / "a") == "c"
    assert sorted(os.listdir(store.root / "c")) == ["keep", "log", "old"]


def test_special_files_are_never_opened(store):
    os.mkfifo(store.root / "fifo")
    with pytest.raises(StoreError, match="not a regular file"):
        store.read("fifo")


def test_a_deleted_link_hides_what_it_pointed_to(store):
    with store.transaction() as txn:
        txn.write("uuids/u1/vmm_config.current", b"cfg")
        txn.symlink("guests/old", "../uuids/u1")
    with store.transaction() as txn:
        txn.delete("guests/old")
        assert txn.read("guests/old/vmm_config.current") is None
        assert not txn.exists("guests/old")
        txn.symlink("guests/new", "../uuids/u1")
        assert txn.read("guests/new/vmm_config.current") == b"cfg"
        assert txn.listdir("guests") == ["new"]


def _read_as_nobody(root: Path) -> list[str]:
    """Fork, drop to user nobody, and report what the store lets that user do."""
    import _strptime  # noqa: F401  (nobody cannot import from root's interpreter after the fork)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                # the child: never returns into pytest
        out = []
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            s = Store(root)
            out.append(f"{s.read('config').decode()} {len(s.events())}")
            try:
                with s.transaction() as txn:
                    txn.write("config", b"hijack")
                out.append("written")
            except (StoreError, PermissionError):
                out.append("refused")
            try:
                s.read("secret")
                out.append("secret read")
            except PermissionError:
                out.append("secret hidden")
        except BaseException as exc:            # report, never raise in the forked child
            out.append(f"error {exc!r}")
        os.write(wfd, "\n".join(out).encode())
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        data = r.read().decode()
    os.waitpid(pid, 0)
    return data.split("\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_reader_let_in_by_the_administrator_can_read_but_not_write(tmp_path):
    base = Path("/tmp") / f"vmp-store-reader-{os.getpid()}"
    base.mkdir(mode=0o755)
    try:
        store = Store(base / "state")
        with store.transaction() as txn:
            txn.write("config", b"cfg")
            txn.write("secret", b"pw", mode=0o600)
            txn.event("guest.create", "u1")
        assert _read_as_nobody(store.root)[0].startswith("error")   # 0700: nobody gets in
        os.chmod(store.root, 0o755)             # what an administrator would do (or 0750+group)
        assert _read_as_nobody(store.root) == ["cfg 1", "refused", "secret hidden"]
        assert store.read("config") == b"cfg"
    finally:
        import shutil
        shutil.rmtree(base)


def test_waiting_for_the_lock_can_be_bounded(store):
    holding, release = threading.Event(), threading.Event()

    def hold():
        with store.transaction() as txn:
            txn.write("a", b"1")
            holding.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    holding.wait(10)
    try:
        with pytest.raises(StoreError, match="busy"):
            with store.snapshot(timeout=0.05):
                pass
        with pytest.raises(StoreError, match="busy"):
            with store.transaction(timeout=0.05) as txn:
                txn.write("b", b"2")
    finally:
        release.set()
        t.join()
    with store.transaction(timeout=5) as txn:
        txn.write("b", b"2")
    assert (store.read("a"), store.read("b")) == (b"1", b"2")
