"""TLS of the CIM server: the generated certificate and key, protocol versions, the
operator's own certificate, and client certificates mapped to users."""
from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provider import tls
from server_helpers import (basic, cim_headers, classname_param, client_context, https,
                            imethod_body, post)

ENUM = imethod_body("EnumerateInstanceNames", params=classname_param("TST_Thing"))


def test_first_start_makes_key_0600_and_cert_with_san(tmp_path):
    cert_path, key_path, created = tls.ensure_certificate(tmp_path / "certs")
    assert created
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = san.get_values_for_type(x509.DNSName)
    addrs = san.get_values_for_type(x509.IPAddress)
    assert "localhost" in names and socket.gethostname() in names
    assert ipaddress.ip_address("127.0.0.1") in addrs and ipaddress.ip_address("::1") in addrs
    # second start keeps them
    again = tls.ensure_certificate(tmp_path / "certs")
    assert again == (cert_path, key_path, False)
    assert len(tls.fingerprint(cert).split(":")) == 32


def test_certificate_verifies_for_localhost_with_the_cert_as_ca(transport_server):
    ctx = ssl.create_default_context(cafile=str(transport_server.cert_path))
    with socket.create_connection(("127.0.0.1", transport_server.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")
    with socket.create_connection(("127.0.0.1", transport_server.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            der = t.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    assert tls.fingerprint(cert) == transport_server.server.info.fingerprint


def _client_for(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = version
    ctx.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            return t.version()


def _old_tls_possible(tmp_path) -> bool:
    """Can this machine's OpenSSL speak TLS 1.0/1.1 at all? (Else refusing proves nothing.)"""
    cert, key, _ = tls.ensure_certificate(tmp_path / "oldtls")
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    sctx.minimum_version = ssl.TLSVersion.TLSv1
    try:
        sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        return False
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    def serve():
        conn, _ = lsock.accept()
        try:
            sctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        return _handshake(port, _client_for(ssl.TLSVersion.TLSv1_1)) == "TLSv1.1"
    except (ssl.SSLError, OSError):
        return False
    finally:
        th.join(5)
        lsock.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_10_and_11_are_refused(transport_server, tmp_path, version):
    if not _old_tls_possible(tmp_path):
        pytest.skip("this OpenSSL cannot speak TLS 1.0/1.1, so refusal proves nothing")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(transport_server.port, _client_for(version))


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_are_accepted(transport_server, version):
    name = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert _handshake(transport_server.port, _client_for(version)) == name


def _make_ca(tmp_path, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _make_client(tmp_path, ca_key, ca_cert, cn):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cp, kp = tmp_path / f"{cn}.pem", tmp_path / f"{cn}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cert, cp, kp


def test_client_certificate_maps_to_user(make_transport_server, tmp_path):
    ca_key, ca_cert = _make_ca(tmp_path, "test client CA")
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    robot, robot_pem, robot_key = _make_client(tmp_path, ca_key, ca_cert, "robot")
    _, other_pem, other_key = _make_client(tmp_path, ca_key, ca_cert, "unmapped")
    fp = tls.fingerprint(robot)
    mapping = tmp_path / "client-users.toml"
    mapping.write_text(f'[fingerprints]\n"{fp}" = "reader"\n')
    srv = make_transport_server(client_trust_dir=trust, client_map_file=mapping)

    ctx = client_context()
    ctx.load_cert_chain(robot_pem, robot_key)
    conn = https(srv.port)
    conn._context = ctx
    resp, _ = post(conn, ENUM, cim_headers("EnumerateInstanceNames"))
    assert resp.status == 200
    assert srv.dispatcher.calls[-1][1].user == "reader"
    assert srv.dispatcher.calls[-1][1].role == "readonly"

    # a trusted but unmapped certificate still needs a password
    ctx2 = client_context()
    ctx2.load_cert_chain(other_pem, other_key)
    conn2 = https(srv.port)
    conn2._context = ctx2
    resp, _ = post(conn2, ENUM, cim_headers("EnumerateInstanceNames"))
    assert resp.status == 401

    # a certificate from an untrusted CA is refused in the handshake
    bad_key, bad_ca = _make_ca(tmp_path, "rogue CA")
    _, rogue_pem, rogue_key = _make_client(tmp_path, bad_key, bad_ca, "robot")
    ctx3 = client_context()
    ctx3.load_cert_chain(rogue_pem, rogue_key)
    conn3 = https(srv.port)
    conn3._context = ctx3
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        post(conn3, ENUM, cim_headers("EnumerateInstanceNames"))

    # without a client certificate Basic works as before
    resp, _ = post(https(srv.port), ENUM,
                   cim_headers("EnumerateInstanceNames", auth=basic("admin", srv.admin_password)))
    assert resp.status == 200


def test_own_certificate_and_mismatched_key(tmp_path):
    cert_a, key_a = tls.make_self_signed(tmp_path / "a")
    cert_b, key_b = tls.make_self_signed(tmp_path / "b")
    assert tls.ensure_certificate(tmp_path / "unused", cert_a, key_a) == (cert_a, key_a, False)
    assert not (tmp_path / "unused").exists()
    with pytest.raises(tls.TLSConfigError, match="does not belong"):
        tls.context_factory(cert_a, key_b)
    with pytest.raises(tls.TLSConfigError, match="go together"):
        tls.ensure_certificate(tmp_path / "x", cert_a, None)
    with pytest.raises(tls.TLSConfigError, match="no PEM certificate"):
        tls.load_pair(key_a, key_a)


def test_client_map_rejects_bad_entries(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('[fingerprints]\n"ABC" = "x"\n')
    with pytest.raises(tls.TLSConfigError, match="not a SHA-256"):
        tls.ClientCertMap.load(f)
    f.write_text('[people]\n"a" = "b"\n')
    with pytest.raises(tls.TLSConfigError, match="unknown table"):
        tls.ClientCertMap.load(f)
