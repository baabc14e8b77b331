"""HTTPS without a certificate bought or configured: a small certificate authority of this server's
own, made once and kept, and a server certificate it signs for the addresses the server answers on.

Browsers give the microphone only to https pages (or localhost), so a phone listening through a
home server needs HTTPS. The person trusts the authority once on the phone (``/hearai-ca.crt``
downloads it); a new address later (another Wi-Fi) only needs a new server certificate, signed by
the same authority, so the phone keeps trusting it. Keys are EC P-256; files are written atomically,
private keys readable by their owner only.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hearai.errors import ConfigError
from hearai.fsutil import write_bytes_atomic

AUTHORITY_DAYS = 10 * 365
SERVER_DAYS = 397  # the longest a browser accepts for a server certificate
RENEW_DAYS = 30  # a server certificate closer than this to its end is made again
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Certificate:
    """The files uvicorn serves with, the authority a client trusts, and its SHA-256 fingerprint to compare."""

    certfile: Path
    keyfile: Path
    authority: Path
    fingerprint: str


def server_certificate(folder: Path, hosts: list[str]) -> Certificate:
    """A certificate for ``hosts`` (names and IP addresses), signed by the authority kept in ``folder``.

    Both are made on first use; the server certificate is made again when it does not name every
    host, is near its end, or was not signed by this authority (say, a file replaced by hand).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _authority(folder)
    certfile, keyfile = folder / "server.pem", folder / "server-key.pem"
    if not _still_good(certfile, keyfile, ca_cert, hosts):
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        names: list[x509.GeneralName] = [x509.IPAddress(ip) if ip else x509.DNSName(host)
                                         for host, ip in ((h, _ip(h)) for h in hosts)]
        cert = (_builder(f"hearai server {hosts[0]}", ca_cert.subject, key, now, SERVER_DAYS)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write_key(keyfile, key)
        write_bytes_atomic(certfile, cert.public_bytes(serialization.Encoding.PEM)
                           + ca_cert.public_bytes(serialization.Encoding.PEM))  # the chain a client needs
    return Certificate(certfile, keyfile, folder / "authority.pem", fingerprint(ca_cert))


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _authority(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    keyfile, certfile = folder / "authority-key.pem", folder / "authority.pem"
    if keyfile.exists() and certfile.exists():
        key, cert = _read_key(keyfile), _read_cert(certfile)
        if key.public_key() != cert.public_key():
            raise ConfigError(f"{certfile}: does not belong to the key in {keyfile}; remove both to make new ones")
        return key, cert
    key = ec.generate_private_key(ec.SECP256R1())
    name = f"hearai local authority ({socket.gethostname()[:40]})"
    cert = (_builder(name, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key, _now(), AUTHORITY_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(keyfile, key)
    write_bytes_atomic(certfile, cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _builder(common_name: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, now: datetime.datetime,
             days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks a little behind still accept it
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))


def _still_good(certfile: Path, keyfile: Path, authority: x509.Certificate, hosts: list[str]) -> bool:
    if not (certfile.exists() and keyfile.exists()):
        return False
    try:
        cert = _read_cert(certfile)
        if _read_key(keyfile).public_key() != cert.public_key():
            return False
        cert.verify_directly_issued_by(authority)
        named = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ConfigError, ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False  # unreadable, or not this authority's: made again
    have = {str(ip) for ip in named.get_values_for_type(x509.IPAddress)} | set(named.get_values_for_type(x509.DNSName))
    wanted = {str(_ip(h)) if _ip(h) else h for h in hosts}
    return wanted <= have and cert.not_valid_after_utc - _now() > datetime.timedelta(days=RENEW_DAYS)


def _ip(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_bytes_atomic(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), mode=0o600)


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    data = _read_small(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a PEM private key without a password ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path}: not an EC key; remove it to make a new one")
    return key


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read_small(path))
    except ValueError as exc:
        raise ConfigError(f"{path}: not a PEM certificate ({exc})") from exc


def _read_small(path: Path, limit: int = 64 * 1024) -> bytes:
    if path.stat().st_size > limit:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes; a key or certificate is at most {limit}")
    return path.read_bytes()
