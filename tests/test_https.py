"""``hearai serve --https``: its own certificate authority, kept and reused; the page over TLS to a
client that trusts the printed authority (and refused by one that does not); the address as a QR code."""

from __future__ import annotations

import io
import re
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import segno
from cryptography import x509

from hearai.errors import ConfigError
from hearai.serve.certificate import fingerprint, server_certificate


def _names(certfile: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())  # the first of the chain: the server's
    named = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in named.get_values_for_type(x509.IPAddress)} | set(named.get_values_for_type(x509.DNSName))


def test_the_authority_is_made_once_and_signs_a_certificate_for_every_address(tmp_path):
    first = server_certificate(tmp_path, ["192.168.1.5", "localhost", "127.0.0.1", "hearai-box.local"])
    assert _names(first.certfile) == {"192.168.1.5", "localhost", "127.0.0.1", "hearai-box.local"}
    assert stat.S_IMODE(first.keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "authority-key.pem").stat().st_mode) == 0o600
    authority = x509.load_pem_x509_certificate(first.authority.read_bytes())
    x509.load_pem_x509_certificate(first.certfile.read_bytes()).verify_directly_issued_by(authority)
    assert first.fingerprint == fingerprint(authority)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", first.fingerprint)

    kept = first.certfile.read_bytes()
    assert server_certificate(tmp_path, ["localhost", "192.168.1.5"]) == first  # covered already: reused
    assert first.certfile.read_bytes() == kept
    moved = server_certificate(tmp_path, ["10.0.0.7", "localhost"])  # another network: a new server certificate...
    assert _names(moved.certfile) == {"10.0.0.7", "localhost"}
    assert moved.fingerprint == first.fingerprint  # ...signed by the same authority

    moved.certfile.write_text("garbage")  # damaged by hand: made again
    assert _names(server_certificate(tmp_path, ["localhost"]).certfile) == {"localhost"}
    (tmp_path / "authority.pem").write_bytes(server_certificate(tmp_path / "other", ["x"]).authority.read_bytes())
    with pytest.raises(ConfigError, match="does not belong to the key"):
        server_certificate(tmp_path, ["localhost"])


def _serve_https(data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "hearai.cli", "serve", "--https", "--port", "0",
                                    "--data-dir", str(data_dir)], stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        said = log.read_text()
        if "█" in said or "▀" in said:  # the QR code: the last thing printed before serving
            return process, re.search(r"serving \S+ on (https://\S+?/) ", said).group(1)
        assert process.poll() is None, said
        time.sleep(0.1)
    process.kill()
    raise AssertionError(log.read_text())


def test_serve_https_serves_the_page_to_a_client_that_trusts_the_printed_authority(tmp_path):
    process, url = _serve_https(tmp_path / "data", tmp_path / "serve.log")
    try:
        said = (tmp_path / "serve.log").read_text()
        authority = Path(re.search(r"certificate authority (\S+)", said).group(1))
        assert authority == tmp_path / "data" / "tls" / "authority.pem" and url.startswith("https://127.0.0.1:")
        printed = re.search(r"SHA-256 ([0-9A-F:]+)", said).group(1)
        assert printed == fingerprint(x509.load_pem_x509_certificate(authority.read_bytes()))
        qr = io.StringIO()
        segno.make(url, error="m").terminal(out=qr, compact=True)
        assert qr.getvalue() in said  # the address, for a phone's camera

        trusting = ssl.create_default_context(cafile=str(authority))
        deadline = time.monotonic() + 30
        while True:  # uvicorn starts serving a moment after the QR code is printed
            try:
                page = urllib.request.urlopen(url, context=trusting, timeout=10)
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert page.status == 200 and b"<title>hearai" in page.read()
        offered = urllib.request.urlopen(f"{url}hearai-ca.crt", context=trusting, timeout=10)
        assert offered.read() == authority.read_bytes()
        assert offered.headers["Content-Type"] == "application/x-x509-ca-cert"
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # a client that does not trust it
            urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_https_and_a_given_certificate_are_not_both_taken(tmp_path):
    done = subprocess.run([sys.executable, "-m", "hearai.cli", "serve", "--https", "--ssl-certfile", "c.pem",
                           "--ssl-keyfile", "k.pem", "--port", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--https makes its own certificate" in done.stderr
