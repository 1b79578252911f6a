"""`serve --tls-cert/--tls-key`: the vendor's integrations call https://."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from yingyun.contract.signing import signed_headers

from .support.net import free_port

YINGYUN = str(Path(sys.executable).parent / "yingyun")


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_with_a_signed_request(tmp_path):
    data = tmp_path / "d"
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data)], check=True, capture_output=True)

    def run(*a: str) -> None:
        subprocess.run([YINGYUN, "admin", *a, "--data-dir", str(data)], check=True, capture_output=True)

    run("hospital", "add", "--id", "h1", "--name", "H")
    run("partner", "add", "--app-id", "p1", "--token", "x" * 32, "--hospital", "h1")
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = subprocess.Popen([YINGYUN, "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--http-port", str(port),
                             "--dicom-port", str(free_port()), "--tls-cert", str(cert), "--tls-key", str(key),
                             "--dicom-workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        client = httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=5)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if client.get(f"https://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = {"patientId": "P", "patientName": "N", "patientSex": "F", "studyId": "S", "accessNumber": "A",
                "modality": "MR"}
        r = client.post(f"https://127.0.0.1:{port}/ris/study/add", content=orjson.dumps(body),
                        headers=signed_headers("p1", "x" * 32))
        assert r.json() == {"code": 0, "message": "成功"}
        qr = client.post(f"https://127.0.0.1:{port}/ris/getStudyQR", content=b'{"studyId": "S"}',
                         headers=signed_headers("p1", "x" * 32)).json()
        assert qr["data"]["qrUrl"].startswith(f"https://127.0.0.1:{port}/h5/s/")  # public URL follows the scheme
        # HSTS on every answer over TLS: the API, a page, a page's 404
        for r in (client.get(f"https://127.0.0.1:{port}/healthz"), client.get(qr["data"]["qrUrl"]),
                  client.get(f"https://127.0.0.1:{port}/h5/no/such/page")):
            assert r.headers["strict-transport-security"] == "max-age=31536000", r.url
        assert "x-frame-options" in r.headers and r.status_code == 404
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            plain_ok = True
        except httpx.HTTPError:
            plain_ok = False
        assert not plain_ok  # no plaintext on the TLS port
        client.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
