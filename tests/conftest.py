"""Shared fixtures. The CIM server ones (owner: transport/security):

* `reactor_thread`: one Twisted reactor for the test session, in a daemon thread.
* `transport_server`: an in-process server on 127.0.0.1 (free port) with the test stand-ins
  of tests/server_helpers.py, a temp state folder and certificates, users admin, oper1 and
  reader (readonly); settings can be overridden per test via `make_transport_server`.
* `live_server`: the real `python -m provider.cli serve` in a subprocess, session-wide, with
  its own state folder; it is stopped at the end of the session, and by the kernel if pytest
  dies (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_PASSWORDS = {"oper1": "oper-secret-1", "reader": "reader-secret-1"}


@pytest.fixture(scope="session")
def reactor_thread():
    from twisted.internet import reactor

    thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                              name="test-reactor", daemon=True)
    thread.start()
    yield reactor
    reactor.callFromThread(reactor.stop)
    thread.join(10)


@dataclass
class ServerHandle:
    port: int
    state_dir: Path
    cert_path: Path
    admin_password: str
    passwords: dict
    server: object
    dispatcher: object
    http_port: int | None = None

    def password(self, user: str) -> str:
        return self.admin_password if user == "admin" else self.passwords[user]


def _add_test_users(state_dir: Path) -> None:
    from provider.auth import UserFile

    users = UserFile(state_dir)
    users.add("oper1", "oper", TEST_PASSWORDS["oper1"])
    users.add("reader", "readonly", TEST_PASSWORDS["reader"])


@pytest.fixture
def make_transport_server(reactor_thread, tmp_path):
    from twisted.internet.threads import blockingCallFromThread

    from provider.server import CIMServer
    from provider.settings import Settings
    from server_helpers import MiniDispatcher

    started = []

    def make(dispatcher=None, **overrides):
        state = tmp_path / f"state{len(started)}"
        values = dict(bind="127.0.0.1", port=0, state_dir=state, workers=2,
                      failed_login_delay=0.3, failed_login_max_delay=2.0)
        values.update(overrides)
        settings = Settings(**values)
        settings.check()
        dispatcher = dispatcher or MiniDispatcher()
        server = CIMServer(settings, dispatcher=dispatcher, reactor=reactor_thread)
        info = server.prepare()
        _add_test_users(state)
        ports = blockingCallFromThread(reactor_thread, server.listen)
        started.append(server)
        return ServerHandle(port=ports[0].getHost().port, state_dir=state,
                            cert_path=info.cert_path, admin_password=info.admin_password,
                            passwords=dict(TEST_PASSWORDS), server=server,
                            dispatcher=dispatcher,
                            http_port=ports[1].getHost().port if len(ports) > 1 else None)

    yield make

    def shutdown(server):
        from twisted.internet import defer
        ds = [defer.maybeDeferred(p.stopListening) for p in server.ports]
        return defer.gatherResults(ds)

    for server in started:
        blockingCallFromThread(reactor_thread, shutdown, server)
        server.stop()


@pytest.fixture
def transport_server(make_transport_server):
    return make_transport_server()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The real server (schema, providers, Dispatcher, CIM-XML) over HTTPS."""
    from server_helpers import free_port, server_command, wait_for

    base = tmp_path_factory.mktemp("live")
    state = base / "state"
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env["PYTHONUNBUFFERED"] = "1"
    log_path = base / "server.log"
    out_path = base / "server.out"
    with open(log_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen(
            server_command("--bind", "127.0.0.1", "--port", str(port), "--state-dir",
                           str(state), "--certs-dir", str(base / "certs")),
            cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        ready = wait_for(lambda: proc.poll() is not None or
                         b"connect: pywbemcli" in out_path.read_bytes(), timeout=60)
        if not ready or proc.poll() is not None:
            raise RuntimeError("the CIM server did not start:\n" +
                               log_path.read_text(errors="replace")[-3000:] +
                               out_path.read_text(errors="replace"))
        banner = out_path.read_text()
        m = re.search(r"created user admin with password (\S+)", banner)
        admin_password = m.group(1) if m else (state / "admin-password").read_text().strip()
        _add_test_users(state)
        yield ServerHandle(port=port, state_dir=state, cert_path=base / "certs" / "server.pem",
                           admin_password=admin_password, passwords=dict(TEST_PASSWORDS),
                           server=proc, dispatcher=None)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
