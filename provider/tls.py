"""The server's TLS: its key and certificate, the OpenSSL context, and client certificates.

On first start a private key (mode 0600) and a self-signed certificate whose SAN names
localhost, this host's name and its addresses are made in the certs folder; `--cert`/`--key`
replace them with the operator's own. Only TLS 1.2 and newer are offered.

Client certificates are optional: when a trust folder is configured, a certificate a CA in
that folder signed is accepted, and the mapping file (TOML) names the vmprovider user it stands
for, by SHA-256 fingerprint or by subject common name:

    [fingerprints]
    "3F:A9:...:0C" = "alice"
    [subjects]
    "backup-robot" = "oper1"
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_NAME = "server.pem"
KEY_NAME = "server.key"
CERT_LIFETIME_DAYS = 825          # the longest lifetime common clients accept for a leaf
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL:!MD5:!DSS:!RC4:!3DES"


class TLSConfigError(Exception):
    """A certificate, key or trust setting that cannot be used; the text says which and why."""


def host_names_and_addresses() -> tuple[list[str], list[ipaddress._BaseAddress]]:
    """The names and addresses the self-signed certificate should be valid for."""
    names = ["localhost"]
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and name not in names:
            names.append(name)
    addresses: list[ipaddress._BaseAddress] = [ipaddress.ip_address("127.0.0.1"),
                                               ipaddress.ip_address("::1")]
    for name in names[1:]:
        try:
            infos = socket.getaddrinfo(name, None)
        except OSError:
            continue
        for info in infos:
            try:
                addr = ipaddress.ip_address(info[4][0].split("%")[0])
            except ValueError:
                continue
            if addr not in addresses:
                addresses.append(addr)
    return names, addresses


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret: created 0600 from the start, then renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)             # a stale temp file keeps its mode on O_CREAT
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def make_self_signed(certs_dir: Path) -> tuple[Path, Path]:
    """Create key and self-signed certificate in `certs_dir`; returns (cert, key)."""
    certs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    names, addresses = host_names_and_addresses()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vmprovider"),
        x509.NameAttribute(NameOID.COMMON_NAME, names[1] if len(names) > 1 else names[0]),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(a) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_LIFETIME_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = certs_dir / KEY_NAME, certs_dir / CERT_NAME
    _write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    tmp = cert_path.with_name(cert_path.name + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(tmp, 0o644)
    os.replace(tmp, cert_path)
    return cert_path, key_path


def ensure_certificate(certs_dir: Path, cert: Path | None = None,
                       key: Path | None = None) -> tuple[Path, Path, bool]:
    """The certificate and key to serve with: the operator's own when given, else the ones in
    `certs_dir`, made on first start. Returns (cert, key, created)."""
    if (cert is None) != (key is None):
        raise TLSConfigError("--cert and --key go together: give both or neither")
    if cert is not None:
        return Path(cert), Path(key), False
    cert_path, key_path = certs_dir / CERT_NAME, certs_dir / KEY_NAME
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path, False
    cert_path, key_path = make_self_signed(certs_dir)
    return cert_path, key_path, True


def load_pair(cert_path: Path, key_path: Path):
    """Read and check a certificate/key pair; returns cryptography objects."""
    try:
        cert_pem = Path(cert_path).read_bytes()
    except OSError as e:
        raise TLSConfigError(f"cannot read certificate {cert_path}: {e.strerror}") from None
    try:
        key_pem = Path(key_path).read_bytes()
    except OSError as e:
        raise TLSConfigError(f"cannot read private key {key_path}: {e.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TLSConfigError(f"{cert_path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TLSConfigError(f"{key_path} holds no unencrypted PEM private key") from None
    if certs[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise TLSConfigError(f"the key {key_path} does not belong to the certificate {cert_path}")
    return certs, key


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex (what browsers and openssl show)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def load_trust_folder(trust_dir: Path) -> list[x509.Certificate]:
    """Every PEM certificate in the files of `trust_dir` (CAs clients' certificates chain to)."""
    if not trust_dir.is_dir():
        raise TLSConfigError(f"client certificate trust folder {trust_dir} does not exist")
    found: list[x509.Certificate] = []
    for entry in sorted(trust_dir.iterdir()):
        if not entry.is_file():
            continue
        data = entry.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in data:
            continue
        try:
            found.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise TLSConfigError(f"{entry} in the trust folder is not a valid PEM file") from None
    if not found:
        raise TLSConfigError(f"client certificate trust folder {trust_dir} holds no certificate")
    return found


@dataclass
class ClientCertMap:
    """Which user a verified client certificate stands for."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "ClientCertMap":
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as e:
            raise TLSConfigError(f"cannot read client certificate map {path}: {e.strerror}") \
                from None
        except tomllib.TOMLDecodeError as e:
            raise TLSConfigError(f"client certificate map {path}: {e}") from None
        unknown = set(data) - {"fingerprints", "subjects"}
        if unknown:
            raise TLSConfigError(f"client certificate map {path}: unknown table(s) "
                                 f"{', '.join(sorted(unknown))} (use fingerprints, subjects)")
        fps = {}
        for fp, user in data.get("fingerprints", {}).items():
            norm = fp.replace(":", "").upper()
            if len(norm) != 64 or any(c not in "0123456789ABCDEF" for c in norm) \
                    or not isinstance(user, str):
                raise TLSConfigError(f"client certificate map {path}: {fp!r} is not a SHA-256 "
                                     "fingerprint mapped to a user name")
            fps[norm] = user
        subjects = {}
        for cn, user in data.get("subjects", {}).items():
            if not isinstance(user, str):
                raise TLSConfigError(f"client certificate map {path}: subject {cn!r} must map "
                                     "to a user name")
            subjects[cn] = user
        return cls(fps, subjects)

    def user_for(self, cert: x509.Certificate) -> str | None:
        fp = cert.fingerprint(hashes.SHA256()).hex().upper()
        if fp in self.fingerprints:
            return self.fingerprints[fp]
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns and cns[0].value in self.subjects:
            return self.subjects[cns[0].value]
        return None


def context_factory(cert_path: Path, key_path: Path, *, trust_dir: Path | None = None,
                    require_client_cert: bool = False):
    """Twisted CertificateOptions: TLS 1.2+, the cipher list above, optional client certs."""
    from twisted.internet import ssl

    certs, key = load_pair(cert_path, key_path)
    kwargs = {}
    if trust_dir is not None:
        cas = load_trust_folder(Path(trust_dir))
        from OpenSSL import crypto   # Twisted's optional-client-cert mode wants pyOpenSSL X509
        kwargs.update(verify=True, caCerts=[crypto.X509.from_cryptography(c) for c in cas],
                      requireCertificate=require_client_cert)
    elif require_client_cert:
        raise TLSConfigError("requiring client certificates needs a trust folder")
    return ssl.CertificateOptions(
        # pyOpenSSL takes cryptography objects directly (its own X509/PKey are deprecated)
        privateKey=key,
        certificate=certs[0],
        extraCertChain=list(certs[1:]),
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(CIPHERS),
        enableSessions=False,
        **kwargs,
    )
