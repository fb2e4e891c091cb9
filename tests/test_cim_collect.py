"""CollectSystemData through the real HTTPS server (in process, on 127.0.0.1, a free port):
pywbem InvokeMethod -> HPVM_ConcreteJob followed to Completed -> the archive downloaded over
HTTPS with the same credentials; roles, 404s for unknown ids and traversal attempts, bad
input that changes nothing, a full disk (a tiny tmpfs, else an injected ENOSPC) that leaves
nothing, and the retention rule on a driven clock."""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import pywbem
from pywbem import CIMError, CIMInstanceName

from agent.clock import ManualClock, SystemClock
from agent.collect import DISK_FULL_LINES
from provider.collection_store import ArchiveStore, RetentionPolicy
from server_helpers import basic, https, wait_for
from tests.guest_support import fingerprint, make_agent

NS = "root/cimv2"
SERVICE = "HPVM_VirtualSystemManagementService"
COMPLETED, EXCEPTION, RUNNING = 7, 10, 4
PASSWORDS = {"oper1": "oper-secret-1", "reader": "reader-secret-1"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


class Host:
    """A started server, its agent and state folder, and client helpers."""

    def __init__(self, server, agent, state: Path, clock, port: int, cert: Path,
                 password: str):
        self.server, self.agent, self.state, self.clock = server, agent, state, clock
        self.port, self.cert, self.password = port, cert, password

    @property
    def env(self):
        return self.server.env

    def conn(self, user="admin", password=None) -> pywbem.WBEMConnection:
        pw = password or (self.password if user == "admin" else PASSWORDS[user])
        return pywbem.WBEMConnection(f"https://127.0.0.1:{self.port}", (user, pw),
                                     default_namespace=NS, ca_certs=str(self.cert), timeout=30)

    def service(self) -> CIMInstanceName:
        return self.conn().EnumerateInstanceNames(SERVICE)[0]

    def guest(self, name="vm1") -> CIMInstanceName:
        uuid = self.agent.find_guest(name).uuid
        return CIMInstanceName("HPVM_Guest", keybindings={"CreationClassName": "HPVM_Guest",
                                                          "Name": uuid}, namespace=NS)

    def collect(self, user="admin", **params):
        if "AffectedSystem" not in params:
            params["AffectedSystem"] = self.guest()
        return self.conn(user).InvokeMethod("CollectSystemData", self.service(), **params)

    def follow(self, job_path, timeout=30.0):
        """Poll the job until it is done; returns (instance, the percentages seen)."""
        conn, seen = self.conn(), []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = conn.GetInstance(job_path)
            seen.append(int(job["PercentComplete"]))
            if job["JobState"] in (COMPLETED, EXCEPTION):
                return job, seen
            time.sleep(0.02)
        raise AssertionError(f"job {job_path} did not finish; last {dict(job)}")

    def get(self, path: str, user="admin", password=None, method="GET"):
        pw = password or (self.password if user == "admin" else PASSWORDS.get(user, "x"))
        c = https(self.port, cafile=str(self.cert))
        headers = {} if user is None else {"Authorization": basic(user, pw)}
        c.request(method, path, headers=headers)
        resp = c.getresponse()
        body = resp.read()
        c.close()
        return resp, body

    def archive_files(self) -> list[str]:
        folder = self.state / "collections" / "hpvmcollect_archive"
        return sorted(os.listdir(folder)) if folder.is_dir() else []

    def records(self) -> list[str]:
        folder = self.state / "collections" / "index"
        return sorted(os.listdir(folder)) if folder.is_dir() else []


@pytest.fixture
def make_host(reactor_thread, tmp_path):
    from twisted.internet import defer
    from twisted.internet.threads import blockingCallFromThread

    from provider.auth import UserFile
    from provider.server import CIMServer
    from provider.settings import Settings

    started = []

    def make(clock=None, before_start=None, **settings):
        clock = clock or SystemClock()
        state = tmp_path / f"state{len(started)}"
        agent = make_agent(state, clock=clock)
        agent.create_guest("vm1")
        if before_start is not None:
            before_start(state, agent)
        values = dict(bind="127.0.0.1", port=0, state_dir=state, workers=2,
                      certs_dir=tmp_path / f"certs{len(started)}")
        values.update(settings)
        s = Settings(**values)
        s.check()
        server = CIMServer(s, reactor=reactor_thread, agent=agent, clock=clock)
        info = server.prepare()
        users = UserFile(state)
        users.add("oper1", "oper", PASSWORDS["oper1"])
        users.add("reader", "readonly", PASSWORDS["reader"])
        ports = blockingCallFromThread(reactor_thread, server.listen)
        started.append(server)
        return Host(server, agent, state, clock, ports[0].getHost().port, info.cert_path,
                    info.admin_password)

    yield make

    def shutdown(server):
        return defer.gatherResults([defer.maybeDeferred(p.stopListening)
                                    for p in server.ports])

    for server in started:
        blockingCallFromThread(reactor_thread, shutdown, server)
        server.stop()


def _tar_members(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            out[m.name] = tar.extractfile(m).read() if m.isfile() else None
    return out


def _audit(host) -> list[dict]:
    path = host.state / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _store(state) -> dict:
    """The agent's state folder, without the server's own files (audit log, archives)."""
    return {k: v for k, v in fingerprint(state).items()
            if k != "audit.log" and not k.startswith("collections/")}


# -- the round trip ----------------------------------------------------------------------------

def test_collect_job_to_download_round_trip(make_host):
    host = make_host()
    uuid = host.agent.find_guest("vm1").uuid
    guest_dir = host.state / "uuids" / uuid
    (guest_dir / "log").write_text("vm1 log line one\nvm1 log line two\n")

    # hold the collection at its halfway point to see the job Running with its percentage
    from provider.providers.hpvm_jobs import job_manager
    jobs_mgr = job_manager(host.env)
    reached, release, recorded = threading.Event(), threading.Event(), []
    original = jobs_mgr.task_progress

    def progress(job, percent):
        original(job, percent)
        recorded.append(job.percent)
        if percent >= 50 and not reached.is_set():
            reached.set()
            release.wait(20)

    jobs_mgr.task_progress = progress
    rv, out = host.collect()
    assert rv == 4096
    job_path = out["Job"]
    assert job_path.classname == "HPVM_ConcreteJob"
    assert reached.wait(20)
    running = host.conn().GetInstance(job_path)
    assert running["JobState"] == RUNNING
    assert 50 <= running["PercentComplete"] < 100
    assert running.get("ArchiveID") is None
    release.set()

    job, seen = host.follow(job_path)
    assert job["JobState"] == COMPLETED, job["ErrorDescription"]
    assert seen == sorted(seen) and seen[-1] == 100 and seen[0] >= running["PercentComplete"]
    assert recorded == sorted(recorded) and recorded[-1] == 99
    assert job["MethodName"] == f"{SERVICE}.CollectSystemData"
    assert job["Owner"] == "admin"
    cid, url = job["ArchiveID"], job["ArchiveURL"]
    assert url == f"/collections/{cid}" and len(cid) == 32
    assert job["ArchiveName"].startswith("vm1_") and job["ArchiveName"].endswith(".tar.gz")
    items = list(job["CollectedItems"])
    assert any(line.startswith("Copying guest's config file ") and line.endswith(" OK")
               for line in items)
    assert items[-3].startswith("Tar archiving and compressing") and items[-3].endswith("TGZ")

    resp, body = host.get(url)
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/gzip"
    assert int(resp.getheader("Content-Length")) == len(body) == job["ArchiveSize"]
    assert hashlib.sha256(body).hexdigest() == job["ArchiveSHA256"]
    assert job["ArchiveName"] in resp.getheader("Content-Disposition")
    members = _tar_members(body)
    top = job["ArchiveName"][:-len(".tar.gz")]
    assert members[f"{top}/guest/vmm_config.current"] == \
        (guest_dir / "vmm_config.current").read_bytes()
    assert members[f"{top}/guest/log"] == (guest_dir / "log").read_bytes()
    assert f"{top}/hpvmcollect.steps" in members
    assert not any(n.endswith(("users.json", "admin-password", "server.key", "audit.log"))
                   for n in members)

    # HEAD: the same headers, no body
    resp, head_body = host.get(url, method="HEAD")
    assert resp.status == 200 and head_body == b""
    assert int(resp.getheader("Content-Length")) == job["ArchiveSize"]

    # the association ties the job to the guest and to the service that started it
    conn = host.conn()
    affected = conn.References(job_path, ResultClass="HPVM_AffectedJobElement")
    assert [r["AffectedElement"]["Name"] for r in affected] == [uuid]
    owning = conn.References(job_path, ResultClass="HPVM_OwningJobElement")
    assert owning[0]["OwningElement"].classname == SERVICE

    # safe modes, and the download is in the audit log
    coll = host.state / "collections"
    for folder in (coll, coll / "hpvmcollect_archive", coll / "index"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((coll / "hpvmcollect_archive" / job["ArchiveName"]).stat().st_mode) \
        == 0o600
    assert stat.S_IMODE((coll / "index" / f"{cid}.json").stat().st_mode) == 0o600
    downloads = [a for a in _audit(host) if a["operation"] == "DownloadCollection"]
    assert downloads and downloads[0]["user"] == "admin" and downloads[0]["result"] == 0
    assert cid in downloads[0]["target"]


def test_a_collection_of_an_invalid_guest_and_with_a_label(make_host):
    host = make_host()
    uuid = host.agent.find_guest("vm1").uuid
    rv, out = host.collect(ArchiveName="bug42")
    job, _ = host.follow(out["Job"])
    assert job["JobState"] == COMPLETED and job["ArchiveName"] == "bug42.tar.gz"
    # a second one with the same label keeps the first (the guide's rule), with Overwrite
    # it replaces it and the first id is gone
    rv, out = host.collect(ArchiveName="bug42")
    second, _ = host.follow(out["Job"])
    assert second["ArchiveName"].startswith("bug42_") and second["ArchiveID"] != job["ArchiveID"]
    assert host.get(job["ArchiveURL"])[0].status == 200
    rv, out = host.collect(ArchiveName="bug42", Overwrite=True)
    third, _ = host.follow(out["Job"])
    assert third["ArchiveName"] == "bug42.tar.gz"
    assert host.get(job["ArchiveURL"])[0].status == 404
    assert host.get(third["ArchiveURL"])[0].status == 200
    # a guest whose configuration cannot be read is still collected
    (host.state / "uuids" / uuid / "vmm_config.current").write_text("garbage = [\n")
    rv, out = host.collect()
    job, _ = host.follow(out["Job"])
    assert job["JobState"] == COMPLETED, job["ErrorDescription"]


# -- who may -------------------------------------------------------------------------------------

def test_only_admins_collect_and_download(make_host):
    host = make_host()
    for user in ("oper1", "reader"):
        with pytest.raises(CIMError) as err:
            host.collect(user=user)
        assert err.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
    assert host.archive_files() == []
    rv, out = host.collect()
    job, _ = host.follow(out["Job"])
    url = job["ArchiveURL"]
    for user in ("oper1", "reader"):
        resp, body = host.get(url, user=user)
        assert resp.status == 403, user
        assert b"administrators" in body
    resp, _ = host.get(url, user=None)
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate") == 'Basic realm="vmprovider"'
    resp, _ = host.get(url, user="admin", password="wrong-password")
    assert resp.status == 401
    refused = [a for a in _audit(host) if a["operation"] == "DownloadCollection"
               and a["result"] != 0]
    assert {a["user"] for a in refused} == {"oper1", "reader"}
    # an admin still gets it
    assert host.get(url)[0].status == 200


def test_unknown_ids_and_traversal_attempts_are_404(make_host):
    host = make_host()
    rv, out = host.collect()
    job, _ = host.follow(out["Job"])
    cid = job["ArchiveID"]
    users = (host.state / "users.json").read_bytes()
    for path in ("/collections/" + "A" * 32, "/collections/", "/collections",
                 "/collections/../users.json", "/collections/..%2Fusers.json",
                 "/collections/..%2fusers.json", "/collections/%2e%2e%2fusers.json",
                 "/collections/%2E%2E/users.json", "/collections/..%5Cusers.json",
                 f"/collections/{cid}/../../users.json", f"/collections/{cid}/x",
                 f"/collections/{cid}%2F..%2F..%2Fusers.json", "/collections/users.json",
                 f"/collections/{job['ArchiveName']}", f"/collections/{cid[:-1]}",
                 "/collections/hpvmcollect_archive%2F" + job["ArchiveName"],
                 "/collections/%00" + cid):
        resp, body = host.get(path)
        assert resp.status == 404, path
        assert b"scrypt" not in body and body != users
    assert host.get(f"/collections/{cid}")[0].status == 200
    resp, _ = host.get(f"/collections/{cid}", method="DELETE")
    assert resp.status == 405
    assert host.archive_files() == [job["ArchiveName"]]


# -- bad input and failures ------------------------------------------------------------------

@pytest.mark.parametrize("params, code, text", [
    ({"AffectedSystem": None}, pywbem.CIM_ERR_INVALID_PARAMETER, "-P vm-name"),
    ({"AffectedSystem": CIMInstanceName("HPVM_Guest", keybindings={
        "CreationClassName": "HPVM_Guest", "Name": "00000000-0000-0000-0000-000000000000"},
        namespace=NS)}, pywbem.CIM_ERR_NOT_FOUND, "AffectedSystem"),
    ({"AffectedSystem": CIMInstanceName("HPVM_Switch", keybindings={
        "CreationClassName": "HPVM_Switch", "Name": "vsw1"}, namespace=NS)},
     pywbem.CIM_ERR_INVALID_PARAMETER, "HPVM_Guest"),
    ({"ArchiveName": "../../etc/x"}, pywbem.CIM_ERR_INVALID_PARAMETER, "ArchiveName"),
    ({"ArchiveName": "-x"}, pywbem.CIM_ERR_INVALID_PARAMETER, "for option -b"),
    ({"CrashDumpCount": pywbem.Uint16(3)}, pywbem.CIM_ERR_INVALID_PARAMETER,
     "Option -n is valid only with -c."),
    ({"Directory": "/tmp"}, pywbem.CIM_ERR_INVALID_PARAMETER, "Directory"),
    ({"LeaveDirectory": True}, pywbem.CIM_ERR_INVALID_PARAMETER, "LeaveDirectory"),
])
def test_bad_input_is_refused_and_changes_nothing(make_host, params, code, text):
    host = make_host()
    service = host.service()
    before = _store(host.state)
    params = {"AffectedSystem": host.guest(), **params}
    if params["AffectedSystem"] is None:
        del params["AffectedSystem"]
    with pytest.raises(CIMError) as err:
        host.conn().InvokeMethod("CollectSystemData", service, **params)
    assert err.value.status_code == code
    assert text in err.value.status_description
    assert host.conn().EnumerateInstances("HPVM_ConcreteJob") == []
    assert _store(host.state) == before
    assert host.archive_files() == [] and host.records() == []


def test_unknown_guest_message_is_the_commands(make_host):
    host = make_host()
    gone = host.guest()
    host.agent.remove_guest(host.agent.find_guest("vm1"))
    with pytest.raises(CIMError) as err:
        host.collect(AffectedSystem=gone)
    assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    assert err.value.status_description == \
        f"AffectedSystem: Unable to find the guest with UUID {gone['Name']}."
    assert host.conn().EnumerateInstances("HPVM_ConcreteJob") == []


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(path)], capture_output=True, timeout=20)
    return proc.returncode == 0


def test_a_full_disk_ends_the_job_in_exception_and_leaves_nothing(make_host, tmp_path):
    mounted = []

    def fill(state, agent):
        # an incompressible guest log far larger than the collection folder's tmpfs
        uuid = agent.find_guest("vm1").uuid
        (state / "uuids" / uuid / "log").write_bytes(os.urandom(512 * 1024))
        if _mount_tmpfs(state / "collections", "64k"):
            mounted.append(state / "collections")

    host = make_host(before_start=fill)
    try:
        if not mounted:   # no root or no mount here: a writer that fails as a full disk does
            from provider.providers.hpvm_collect import collection_service

            class Full(io.FileIO):
                written = 0

                def write(self, data):
                    Full.written += len(data)
                    if Full.written > 64 * 1024:
                        raise OSError(errno.ENOSPC, "No space left on device")
                    return super().write(data)

            collection_service(host.env).open_file = lambda p: Full(p, "wb")
        rv, out = host.collect()
        assert rv == 4096
        job, _ = host.follow(out["Job"])
        assert job["JobState"] == EXCEPTION
        assert job["ErrorCode"] == 2
        text = job["ErrorDescription"]
        assert text.splitlines()[:3] == list(DISK_FULL_LINES)
        assert "No space left on device; no archive was left behind." in text
        assert job.get("ArchiveID") is None
        assert host.archive_files() == [] and host.records() == []
        # the folder works again once there is room
        uuid = host.agent.find_guest("vm1").uuid
        (host.state / "uuids" / uuid / "log").write_text("small\n")
        if not mounted:
            from provider.providers.hpvm_collect import collection_service
            collection_service(host.env).open_file = None
        rv, out = host.collect()
        job, _ = host.follow(out["Job"])
        assert job["JobState"] == COMPLETED, job["ErrorDescription"]
        assert host.get(job["ArchiveURL"])[0].status == 200
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


# -- retention ----------------------------------------------------------------------------------

def test_pruning_keeps_the_newest_n_and_none_older_than_d_days(make_host):
    clock = ManualClock()
    host = make_host(clock=clock, collect_keep=2, collect_max_age_days=1)
    ids = []
    for _ in range(3):
        rv, out = host.collect()
        job, _ = host.follow(out["Job"])
        assert job["JobState"] == COMPLETED
        ids.append((job["ArchiveID"], job["ArchiveName"]))
        clock.advance(60)
    # keep = 2: the oldest is gone, file and all
    assert host.get(f"/collections/{ids[0][0]}")[0].status == 404
    assert host.archive_files() == sorted(n for _, n in ids[1:])
    assert host.records() == sorted(f"{i}.json" for i, _ in ids[1:])
    for cid, _ in ids[1:]:
        assert host.get(f"/collections/{cid}")[0].status == 200
    # a day later both are too old: the next collection leaves only itself
    clock.advance(86400)
    rv, out = host.collect()
    job, _ = host.follow(out["Job"])
    assert host.archive_files() == [job["ArchiveName"]]
    assert host.records() == [f"{job['ArchiveID']}.json"]
    for cid, _ in ids:
        assert host.get(f"/collections/{cid}")[0].status == 404


def test_pruning_runs_at_server_start(make_host, tmp_path):
    clock = ManualClock()
    old = []

    def leave_old_archives(state, agent):
        store = ArchiveStore(state, clock, RetentionPolicy(keep=5, max_age_days=1))
        store.ensure()
        for i in range(2):
            path = store.archive_dir / f"vm1_old{i}.tar.gz"
            path.write_bytes(b"x" * 10)
            old.append(store.add(path, kind="TGZ", size=10, sha256="0" * 64, owner="admin",
                                 guest="vm1", job=f"HPVM:job:{i}"))
        (store.archive_dir / ".vm1.tar.gz.partial-0123456789ab").write_bytes(b"partial")
        (store.archive_dir / "stray.tar.gz").write_bytes(b"no record")
        clock.advance(2 * 86400)

    host = make_host(clock=clock, before_start=leave_old_archives, collect_keep=5,
                     collect_max_age_days=1)
    assert wait_for(lambda: host.archive_files() == [] and host.records() == [], timeout=10)
    assert host.get(old[0].url)[0].status == 404


def test_the_store_prunes_by_count_age_and_leftovers(tmp_path):
    clock = ManualClock()
    store = ArchiveStore(tmp_path, clock, RetentionPolicy(keep=3, max_age_days=2))
    store.ensure()
    items = []
    for i in range(5):
        path = store.archive_dir / f"a{i}.tar.gz"
        path.write_bytes(bytes([i]) * 100)
        items.append(store.add(path, kind="TGZ", size=100, sha256=f"{i:064x}", owner="admin",
                               guest="vm1", job=f"HPVM:job:{i}"))
        clock.advance(3600)
    removed = store.prune()
    assert [r.name for r in removed] == ["a0.tar.gz", "a1.tar.gz"]
    assert [c.name for c in store.all()] == ["a2.tar.gz", "a3.tar.gz", "a4.tar.gz"]
    assert sorted(os.listdir(store.archive_dir)) == ["a2.tar.gz", "a3.tar.gz", "a4.tar.gz"]
    # a record whose archive vanished is dropped; a fresh store reads the same index
    os.unlink(store.archive_dir / "a3.tar.gz")
    store.prune()
    again = ArchiveStore(tmp_path, clock, store.policy)
    assert [c.id for c in again.all()] == [items[2].id, items[4].id]
    assert again.get(items[4].id) == items[4]
    assert again.get("../../users.json") is None and again.get(items[0].id) is None
    # age: past max_age_days everything goes (a4 finished 1 h after a3, 2 days ago)
    clock.advance(2 * 86400 - 3600 * 1.5)
    assert [r.name for r in again.prune()] == ["a2.tar.gz"]
    clock.advance(3600)
    assert [r.name for r in again.prune()] == ["a4.tar.gz"]
    assert os.listdir(store.archive_dir) == [] and os.listdir(store.index_dir) == []


def test_retention_settings_come_from_the_config_file(tmp_path):
    from provider.settings import SettingsError, build_settings

    cfg = tmp_path / "server.toml"
    cfg.write_text("[collections]\nkeep = 3\nmax_age_days = 7\n")
    s = build_settings(cfg, {})
    assert (s.collect_keep, s.collect_max_age_days) == (3, 7.0)
    cfg.write_text("[collections]\nkeep = 0\n")
    with pytest.raises(SettingsError, match="collections.keep"):
        build_settings(cfg, {})
    cfg.write_text("[collections]\nkept = 3\n")
    with pytest.raises(SettingsError, match="unknown key"):
        build_settings(cfg, {})


# -- the server's own work -----------------------------------------------------------------

def test_the_server_polls_its_jobs_in_a_worker_thread(make_host):
    from provider.providers.hpvm_jobs import job_manager

    host = make_host(clock=ManualClock())
    jobs = job_manager(host.env)
    threads = []
    original = jobs.poll

    def poll():
        threads.append(threading.current_thread().name)
        return original()

    jobs.poll = poll
    # a finished job expires (TimeBeforeRemoval) with no client reading anything
    job = jobs.create_task(method="X.Y", name="t", owner="admin", guest_uuid="u",
                           guest_name="vm1", action="collect")
    jobs.finish_task(job)
    host.clock.advance(301)
    assert wait_for(lambda: job.instance_id not in jobs._jobs, timeout=10)
    assert threads and all("vmprovider-worker" in name for name in threads), threads


def test_crash_dumps_make_a_tar_and_a_missing_one_is_refused(make_host, tmp_path):
    from provider.providers.hpvm_collect import collection_service

    host = make_host()
    crash = tmp_path / "crash"
    (crash / "crash.0").mkdir(parents=True)
    (crash / "crash.0" / "INDEX").write_text("panic: test\n")
    (crash / "bounds").write_text("1\n")
    collection_service(host.env).crash_dir = str(crash)
    with pytest.raises(CIMError) as err:
        host.collect(IncludeCrashDump=True, CrashDumpCount=pywbem.Uint16(7))
    assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    assert err.value.status_description == \
        f"CrashDumpCount: Crash dump 7 does not exist in {crash}."
    assert host.conn().EnumerateInstances("HPVM_ConcreteJob") == []
    rv, out = host.collect(IncludeCrashDump=True, CrashDumpCount=pywbem.Uint16(0))
    job, _ = host.follow(out["Job"])
    assert job["JobState"] == COMPLETED, job["ErrorDescription"]
    assert job["ArchiveName"].endswith(".tar") and not job["ArchiveName"].endswith(".tar.gz")
    resp, body = host.get(job["ArchiveURL"])
    assert resp.getheader("Content-Type") == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
        names = tar.getnames()
    assert any(n.endswith("crash.0/INDEX") for n in names), names


def test_collections_run_one_at_a_time_in_order(make_host):
    from provider.providers.hpvm_jobs import job_manager

    host = make_host()
    jobs = job_manager(host.env)
    reached, release = threading.Event(), threading.Event()
    original = jobs.task_progress

    def progress(job, percent):
        original(job, percent)
        if not reached.is_set():
            reached.set()
            release.wait(20)

    jobs.task_progress = progress
    first = host.collect()[1]["Job"]
    assert reached.wait(20)
    second = host.collect()[1]["Job"]
    conn = host.conn()
    assert conn.GetInstance(first)["JobState"] == RUNNING
    waiting = conn.GetInstance(second)
    assert waiting["JobState"] == 2 and waiting["PercentComplete"] == 0   # New
    release.set()
    a, _ = host.follow(first)
    b, _ = host.follow(second)
    assert a["JobState"] == b["JobState"] == COMPLETED
    assert a["ArchiveID"] != b["ArchiveID"] and a["ArchiveName"] != b["ArchiveName"]
    assert a["TimeOfLastStateChange"].datetime <= b["TimeOfLastStateChange"].datetime
    assert len(host.archive_files()) == 2
