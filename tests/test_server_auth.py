"""Users, passwords, roles, the first-start admin, failed-login slowdown, the verified-
credentials cache, the audit log, and the `vmprovider user` command."""
from __future__ import annotations

import io
import json
import logging
import stat
import time

import pytest
import pywbem

from agent.clock import ManualClock
from provider import cli
from provider.auth import Authenticator, FailureThrottle, UserError, UserFile, parse_basic
from provider.auth import users as users_mod
from server_helpers import basic, cim_headers, classname_param, https, imethod_body, post

ENUM = imethod_body("EnumerateInstanceNames", params=classname_param("TST_Thing"))


# -- the user file ---------------------------------------------------------------------------

def test_user_file_is_0600_and_stores_scrypt_with_salt_and_parameters(tmp_path):
    uf = UserFile(tmp_path)
    uf.add("alice", "oper", "pa:ss wörd")
    assert stat.S_IMODE(uf.path.stat().st_mode) == 0o600
    data = json.loads(uf.path.read_text())
    rec = data["users"]["alice"]
    assert rec["role"] == "oper"
    assert set(rec["scrypt"]) == {"salt", "n", "r", "p", "hash"}
    assert "pa:ss" not in uf.path.read_text()
    uf.add("bob", "readonly", "pa:ss wörd")
    assert data["users"]["alice"]["scrypt"]["salt"] != \
        json.loads(uf.path.read_text())["users"]["bob"]["scrypt"]["salt"]
    alice = uf.get("alice")
    assert alice.check_password("pa:ss wörd")
    assert not alice.check_password("pa:ss word")


@pytest.mark.parametrize("call, message", [
    (lambda uf: uf.add("alice", "oper", "x"), "already exists"),
    (lambda uf: uf.add("carol", "root", "x"), "invalid role"),
    (lambda uf: uf.add("bad name", "oper", "x"), "invalid user name"),
    (lambda uf: uf.add("carol", "oper", ""), "empty"),
    (lambda uf: uf.remove("nobody"), "no user"),
    (lambda uf: uf.remove("admin"), "last admin"),
    (lambda uf: uf.set_role("admin", "oper"), "last admin"),
    (lambda uf: uf.set_password("nobody", "x"), "no user"),
])
def test_bad_user_requests_change_nothing(tmp_path, call, message):
    uf = UserFile(tmp_path)
    uf.bootstrap_admin()
    uf.add("alice", "oper", "secret")
    before = uf.path.read_bytes()
    with pytest.raises(UserError, match=message):
        call(uf)
    assert uf.path.read_bytes() == before


def test_first_start_admin_password_stored_0600_once(tmp_path):
    uf = UserFile(tmp_path)
    password = uf.bootstrap_admin()
    assert password and len(password) >= 20
    pw_file = tmp_path / users_mod.ADMIN_PASSWORD_FILE
    assert pw_file.read_text().strip() == password
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    assert uf.get("admin").role == "admin"
    assert uf.get("admin").check_password(password)
    assert uf.bootstrap_admin() is None


def test_user_cli(tmp_path, monkeypatch, capsys):
    state = str(tmp_path)
    UserFile(tmp_path).bootstrap_admin()
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    assert cli.main(["user", "--state-dir", state, "add", "ops", "--role", "oper",
                     "--password-stdin"]) == 0
    assert UserFile(tmp_path).get("ops").check_password("s3cret pass")
    monkeypatch.setattr("sys.stdin", io.StringIO("n3w\n"))
    assert cli.main(["user", "--state-dir", state, "passwd", "ops", "--password-stdin"]) == 0
    assert UserFile(tmp_path).get("ops").check_password("n3w")
    assert cli.main(["user", "--state-dir", state, "role", "ops", "readonly"]) == 0
    capsys.readouterr()
    assert cli.main(["user", "--state-dir", state, "list"]) == 0
    out = capsys.readouterr().out
    assert "admin" in out and "ops" in out and "readonly" in out and "n3w" not in out
    assert cli.main(["user", "--state-dir", state, "remove", "ops"]) == 0
    assert UserFile(tmp_path).get("ops") is None
    assert cli.main(["user", "--state-dir", state, "remove", "ops"]) == 1
    assert "no user 'ops'" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    with pytest.raises(SystemExit):
        cli.main(["user", "--state-dir", state, "add", "x", "--role", "god"])


# -- parsing Basic ----------------------------------------------------------------------------

def test_parse_basic():
    assert parse_basic(basic("u", "p:w").encode()) == ("u", "p:w")
    assert parse_basic(b"basic dTpw") == ("u", "p")
    for bad in (None, b"", b"Digest abc", b"Basic !!!", b"Basic dQ==", b"Basic OnA="):
        assert parse_basic(bad) is None


# -- slowdown and cache (injected clock) -------------------------------------------------------

def test_throttle_grows_per_source_and_forgets():
    clock = ManualClock()
    t = FailureThrottle(clock, free_failures=2, base_delay=1.0, max_delay=5.0, forget_after=60)
    assert [t.failed("a") for _ in range(6)] == [0, 0, 1.0, 2.0, 4.0, 5.0]
    assert t.wait_before_check("a") == 5.0
    assert t.wait_before_check("b") == 0.0          # per source
    clock.advance(3)
    assert t.wait_before_check("a") == 2.0
    clock.advance(61)
    assert t.wait_before_check("a") == 0.0 and t.failures("a") == 0
    t.failed("a"), t.failed("a"), t.failed("a")
    t.succeeded("a")
    assert t.failures("a") == 0


def test_credentials_cache_keeps_scrypt_off_the_request_path(tmp_path, monkeypatch):
    clock = ManualClock()
    uf = UserFile(tmp_path)
    uf.add("alice", "admin", "right")
    auth = Authenticator(uf, clock, cache_ttl=30)
    calls = []
    real = users_mod._scrypt
    monkeypatch.setattr(users_mod, "_scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert auth.cached("alice", "right", "s") is None
    assert auth.verify("alice", "right", "s").role == "admin"
    n = len(calls)
    assert auth.cached("alice", "right", "s").user == "alice"
    assert len(calls) == n
    assert auth.cached("alice", "wrong", "s") is None     # a wrong password never hits
    assert auth.verify("alice", "wrong", "s") is None
    assert auth.cached("alice", "wrong", "s") is None
    clock.advance(31)
    assert auth.cached("alice", "right", "s") is None     # expired
    auth.verify("alice", "right", "s")
    time.sleep(0.01)
    uf.set_password("alice", "changed")                   # the user file changed
    assert auth.cached("alice", "right", "s") is None
    assert auth.verify("alice", "right", "s") is None
    assert auth.verify("alice", "changed", "s").user == "alice"
    assert auth.verify("nobody", "x", "s") is None


def test_pam_user_needs_pam_configured(tmp_path, monkeypatch):
    from provider.auth import PamSettings
    uf = UserFile(tmp_path)
    uf.add("pamuser", "oper", None, pam=True)
    seen = []

    class FakePam:
        def authenticate(self, user, password, service):
            seen.append((user, service))
            return password == "os-password"

    import pam
    monkeypatch.setattr(pam, "PamAuthenticator", FakePam)
    assert Authenticator(uf, ManualClock()).verify("pamuser", "os-password", "s") is None
    auth = Authenticator(uf, ManualClock(), pam=PamSettings("vmprovider"))
    assert auth.verify("pamuser", "os-password", "s").role == "oper"
    assert auth.cached("pamuser", "os-password", "s").role == "oper"
    assert auth.verify("pamuser", "bad", "s") is None
    assert auth.verify("stranger", "os-password", "s") is None     # no default role
    auth2 = Authenticator(uf, ManualClock(), pam=PamSettings("vmprovider", "readonly"))
    assert auth2.verify("stranger", "os-password", "s").role == "readonly"
    assert seen[0] == ("pamuser", "vmprovider")
    # a PAM user is an OS account: its groups travel in the Principal (guests' -g lists)
    uf.add("root", "admin", None, pam=True)
    root = auth.verify("root", "os-password", "s")
    assert root.groups and root.groups[0] == "root"


# -- over HTTPS -------------------------------------------------------------------------------

def test_no_credentials_gets_401_with_exact_basic_challenge(transport_server):
    resp, _ = post(https(transport_server.port), ENUM, cim_headers("EnumerateInstanceNames"))
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate") == 'Basic realm="vmprovider"'
    assert transport_server.dispatcher.calls == []


def test_wrong_password_401_and_pywbem_autherror(transport_server, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    resp, _ = post(https(transport_server.port), ENUM,
                   cim_headers("EnumerateInstanceNames", auth=basic("admin", "wrong")))
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate") == 'Basic realm="vmprovider"'
    conn = pywbem.WBEMConnection(f"https://127.0.0.1:{transport_server.port}",
                                 ("reader", "wrong"), no_verification=True)
    with pytest.raises(pywbem.AuthError):
        conn.EnumerateInstanceNames("TST_Thing")
    assert transport_server.dispatcher.calls == []


def test_failed_logins_are_slowed_down_per_source(transport_server, caplog):
    caplog.set_level(logging.INFO)
    conn = https(transport_server.port)
    times = []
    for _ in range(5):
        start = time.monotonic()
        resp, _ = post(conn, ENUM, cim_headers("EnumerateInstanceNames",
                                               auth=basic("admin", "guess-secret")))
        times.append(time.monotonic() - start)
        assert resp.status == 401
    # three free failures, then 0.3 s and 0.6 s before the 401 (settings of the fixture)
    assert times[3] >= 0.3 and times[4] >= 0.6
    assert "guess-secret" not in caplog.text
    # the right password still works (after the wait) and clears the record
    resp, _ = post(conn, ENUM, cim_headers("EnumerateInstanceNames",
                                           auth=basic("admin", transport_server.admin_password)))
    assert resp.status == 200
    assert transport_server.server.throttle.failures("127.0.0.1") == 0


def test_readonly_is_refused_writes_and_writes_are_audited(transport_server, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    url = f"https://127.0.0.1:{transport_server.port}"
    reader = pywbem.WBEMConnection(url, ("reader", transport_server.password("reader")),
                                   no_verification=True)
    oper = pywbem.WBEMConnection(url, ("oper1", transport_server.password("oper1")),
                                 no_verification=True)
    names = reader.EnumerateInstanceNames("TST_Thing")
    with pytest.raises(pywbem.CIMError) as err:
        reader.DeleteInstance(names[0])
    assert err.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
    oper.DeleteInstance(names[1])
    principal = transport_server.dispatcher.calls[-1][1]
    assert (principal.user, principal.role, principal.source) == ("oper1", "oper", "127.0.0.1")

    log = transport_server.state_dir / "audit.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["user"], r["operation"], r["result"]) for r in records] == [
        ("reader", "DeleteInstance", pywbem.CIM_ERR_ACCESS_DENIED),
        ("oper1", "DeleteInstance", 0)]
    assert records[1]["target"] == 'root/cimv2:TST_Thing.Name="t1"'
    assert records[1]["source"] == "127.0.0.1" and records[1]["namespace"] == "root/cimv2"
    assert records[1]["time"].endswith("+00:00")
    text = log.read_text()
    assert transport_server.password("oper1") not in text


def test_user_cli_unwritable_state_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert cli.main(["user", "--state-dir", str(blocker / "state"), "add", "x",
                     "--password-stdin"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vmprovider: ")


def test_certificate_user_is_looked_up_in_the_pool_not_on_the_reactor(tmp_path):
    """The user record (a file read when it changed) and a PAM user's OS groups (NSS) block:
    a certificate login resolves them in the worker pool, then serves on the reactor."""
    import threading
    from types import SimpleNamespace

    from twisted.internet.task import Clock

    from provider.http.gate import Gate

    uf = UserFile(tmp_path)
    uf.add("alice", "oper", "pw")
    auth = Authenticator(uf, ManualClock())
    looked_up = []
    real = auth.for_certificate_user
    auth.for_certificate_user = lambda *a: looked_up.append(threading.current_thread()) \
        or real(*a)

    class Pool:                 # runs queued work only when the test says so
        queued = []

        def callInThreadWithCallback(self, on_result, func, *args, **kw):
            self.queued.append(lambda: on_result(True, func(*args, **kw)))

    class Reactor(Clock):
        def callFromThread(self, f, *a, **kw):
            f(*a, **kw)

    cert = SimpleNamespace(to_cryptography=lambda: "the peer certificate")
    request = SimpleNamespace(
        getClientAddress=lambda: SimpleNamespace(host="127.0.0.1"),
        channel=SimpleNamespace(transport=SimpleNamespace(getPeerCertificate=lambda: cert)))
    cert_map = SimpleNamespace(user_for=lambda c: "alice" if c == "the peer certificate"
                               else None)
    pool = Pool()
    gate = Gate(authenticator=auth, throttle=FailureThrottle(ManualClock()), pool=pool,
                reactor=Reactor(), cert_map=cert_map)
    served, failures = [], []
    gate.admit(request, [], served.append, failures.append)
    assert looked_up == [] and served == []          # nothing blocking ran on the caller
    assert len(pool.queued) == 1
    pool.queued.pop()()
    assert len(looked_up) == 1 and failures == []
    assert [(p.user, p.role, p.source) for p in served] == [("alice", "oper", "127.0.0.1")]


def test_secrets_are_0600_even_over_files_left_with_a_wider_mode(tmp_path, monkeypatch):
    """O_CREAT's mode applies only to a new file: an admin-password left behind (the user
    file was removed to start over) or a stale temporary file must not keep mode 0644."""
    import os

    from provider import tls
    pw_file = tmp_path / users_mod.ADMIN_PASSWORD_FILE
    pw_file.write_text("old\n")
    os.chmod(pw_file, 0o644)
    monkeypatch.setattr(os, "getpid", lambda: 4242)
    stale = tmp_path / f".{users_mod.USERS_FILE}.4242.tmp"
    stale.write_text("{}")
    os.chmod(stale, 0o644)
    uf = UserFile(tmp_path)
    password = uf.bootstrap_admin()
    assert pw_file.read_text().strip() == password
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(uf.path.stat().st_mode) == 0o600
    key = tmp_path / "server.key"
    (tmp_path / "server.key.tmp").write_bytes(b"")
    os.chmod(tmp_path / "server.key.tmp", 0o644)
    tls._write_private(key, b"secret")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["bob\n", "bob\nadmin"])
def test_user_names_with_a_newline_are_refused(tmp_path, name):
    uf = UserFile(tmp_path)
    with pytest.raises(UserError, match="invalid user name"):
        uf.add(name, "oper", "pw")
    assert not uf.path.exists() or name not in uf.load()
