"""`vmprovider serve` options and config file, its start-up banner, plain HTTP only when asked,
and refusals that change nothing."""
from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from provider.settings import Settings, SettingsError, build_settings
from server_helpers import (basic, cim_headers, classname_param, free_port, imethod_body,
                            server_command)

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}


def _serve(tmp_path, *args, timeout=60):
    """Start serve; returns (process, banner text) once it printed its pywbemcli line."""
    out = tmp_path / "out.txt"
    err = tmp_path / "err.txt"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(server_command(*args), cwd=ROOT, env=ENV, stdout=o, stderr=e)
    from server_helpers import wait_for
    wait_for(lambda: proc.poll() is not None or b"connect: pywbemcli" in out.read_bytes(),
             timeout=timeout)
    return proc, out.read_text(), err


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_banner_first_start_and_second_start(tmp_path):
    state = tmp_path / "state"
    port = free_port()
    args = ["--bind", "127.0.0.1", "--port", str(port), "--state-dir", str(state)]
    proc, banner, _ = _serve(tmp_path, *args)
    try:
        assert proc.poll() is None
        assert f"https://127.0.0.1:{port}/cimom" in banner
        fp = re.search(r"SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", banner)
        assert fp
        password = re.search(r"created user admin with password (\S+)", banner).group(1)
        assert (state / "admin-password").read_text().strip() == password
        assert stat.S_IMODE((state / "admin-password").stat().st_mode) == 0o600
        assert stat.S_IMODE((state / "certs" / "server.key").stat().st_mode) == 0o600
        assert f"pywbemcli -s https://127.0.0.1:{port} -u admin --ca-certs " \
               f"{state / 'certs' / 'server.pem'} server info" in banner
    finally:
        _stop(proc)
    assert proc.returncode == 0
    proc, banner2, _ = _serve(tmp_path, *args)
    try:
        assert "created user admin" not in banner2      # the password is shown only once
        assert fp.group(1) in banner2                    # same certificate
    finally:
        _stop(proc)


def test_plain_http_only_with_explicit_port(tmp_path):
    import http.client
    state = tmp_path / "state"
    port, http_port = free_port(), free_port()
    proc, banner, _ = _serve(tmp_path, "--bind", "127.0.0.1", "--port", str(port),
                             "--http-port", str(http_port), "--state-dir", str(state))
    try:
        assert f"http://127.0.0.1:{http_port}" in banner and "no TLS" in banner
        password = (state / "admin-password").read_text().strip()
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        conn.request("POST", "/cimom",
                     body=imethod_body("EnumerateInstanceNames", "root/interop",
                                       classname_param("CIM_Namespace")),
                     headers=cim_headers("EnumerateInstanceNames", "root/interop",
                                         auth=basic("admin", password)))
        resp = conn.getresponse()
        assert resp.status == 200 and b"CIM_Namespace" in resp.read()
    finally:
        _stop(proc)
    proc, banner, _ = _serve(tmp_path, "--bind", "127.0.0.1", "--port", str(port),
                             "--state-dir", str(state))
    try:
        assert "http://" not in banner
        with pytest.raises(ConnectionRefusedError):
            http.client.HTTPConnection("127.0.0.1", http_port, timeout=5).connect()
    finally:
        _stop(proc)


def test_libvirt_backend_is_refused_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "provider.cli", "serve", "--backend",
                           "libvirt", "--state-dir", str(tmp_path / "s"), "--port", "0"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "libvirt" in lines[0]
    assert not (tmp_path / "s").exists()


def test_bad_certificate_refused_clearly(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("not a certificate")
    proc = subprocess.run([sys.executable, "-m", "provider.cli", "serve", "--state-dir",
                           str(tmp_path / "s"), "--port", "0", "--bind", "127.0.0.1",
                           "--cert", str(cert), "--key", str(cert)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "holds no PEM certificate" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "provider.cli", "serve", "--state-dir",
                           str(tmp_path / "s"), "--cert", str(cert)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cert and key go together" in proc.stderr


def test_config_file_and_command_line_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("VMPROVIDER_STATE_DIR", raising=False)
    cfg = tmp_path / "vmprovider.toml"
    cfg.write_text('[server]\nport = 6000\nbind = "127.0.0.1"\nworkers = 3\n'
                   f'state_dir = "{tmp_path / "st"}"\n'
                   '[auth]\npam_service = "login"\npam_default_role = "readonly"\n'
                   'failed_login_delay = 2\n'
                   f'[client_certs]\ntrust_dir = "{tmp_path}"\nmap_file = "{cfg}"\n')
    s = build_settings(cfg, {"port": 7000, "bind": None})
    assert (s.port, s.bind, s.workers, s.state_dir) == (7000, "127.0.0.1", 3, tmp_path / "st")
    assert s.pam_service == "login" and s.pam_default_role == "readonly"
    assert s.failed_login_delay == 2.0 and s.client_trust_dir == tmp_path
    assert s.certs_path == tmp_path / "st" / "certs"


@pytest.mark.parametrize("text, message", [
    ("[server]\nport = 70000\n", "not a TCP port"),
    ("[server]\nprot = 1\n", "unknown key 'prot'"),
    ("[serve]\nport = 1\n", "unknown section"),
    ("[server]\nport = \"5989\"\n", "must be a int"),
    ("[auth]\npam_default_role = \"root\"\npam_service = \"login\"\n", "pam_default_role"),
    ("[auth]\npam_default_role = \"oper\"\n", "needs pam_service"),
    ("[client_certs]\nrequire = true\n", "need client_certs.trust_dir"),
    ("[server]\nbackend = \"xen\"\n", "backend 'xen' is unknown"),
    ("[server\n", "config file"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(SettingsError, match=re.escape(message)):
        build_settings(cfg, {})


def test_serve_reports_bad_config_without_starting(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nworkers = 0\n")
    proc = subprocess.run([sys.executable, "-m", "provider.cli", "serve", "--config",
                           str(cfg), "--state-dir", str(tmp_path / "s")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "vmprovider: workers must be between 1 and 64"
    assert not (tmp_path / "s").exists()


def test_settings_defaults_are_secure():
    s = Settings()
    s.check()
    assert s.port == 5989 and s.http_port is None and s.bind == ""
    assert s.pam_service is None and s.client_trust_dir is None
    assert s.max_request_bytes <= 16 * 1024 * 1024 and s.idle_timeout <= 300
