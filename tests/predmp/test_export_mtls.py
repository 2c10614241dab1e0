"""The national record is reached over mutual TLS: RELAIS_DMP_CERT / RELAIS_DMP_KEY present the client
certificate, RELAIS_DMP_CA checks the recipient's. A recipient that requires a client certificate takes the
Bundle with them, and refuses the handshake without (the job then waits, queued, as for a recipient down)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kit.stores import make_store

from tests.predmp import records
from tests.predmp.predmpkit import platform_for
from tests.predmp.recipient import Recipient


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _certificate(subject: str, key, issuer_key, issuer: str, *, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, certificate=None, key=None) -> str:
    data = certificate.public_bytes(serialization.Encoding.PEM) if certificate is not None else key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(data)
    return str(path)


def _pki(directory: Path) -> dict[str, str]:
    """A test CA (standing in for IGC Santé), the recipient's certificate, and Relais's client certificate."""
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("Test IGC Santé", ca_key, ca_key, "Test IGC Santé", ca=True)
    return {
        "ca": _write(directory / "ca.pem", ca),
        "server_cert": _write(directory / "server.pem", _certificate("dmp.test", server_key, ca_key, "Test IGC Santé",
                                                                    server=True)),
        "server_key": _write(directory / "server.key", key=server_key),
        "client_cert": _write(directory / "client.pem", _certificate("relais", client_key, ca_key, "Test IGC Santé")),
        "client_key": _write(directory / "client.key", key=client_key),
    }


def test_the_bundle_goes_over_mutual_tls_and_not_without_the_client_certificate(tmp_path):
    pki = _pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    context.load_verify_locations(pki["ca"])
    context.verify_mode = ssl.CERT_REQUIRED  # the national record accepts authenticated systems only
    recipient = Recipient(ssl_context=context)
    store = make_store("sqlite", tmp_path, durable=False)
    without = platform_for(store, recipient, dmp_ca=pki["ca"])
    try:
        without.seed(records.known_patient())
        draft = without.build().json()
        assert without.validate(draft["id"]).status_code == 200
        without.drain()
        state = without.state(draft["id"])
        assert state["status"] == "queued" and "destinataire injoignable" in state["reason"]
        assert recipient.received == []
    finally:
        without.live.close()
    with_certificate = platform_for(store, recipient, dmp_ca=pki["ca"], dmp_cert=pki["client_cert"],
                                    dmp_key=pki["client_key"])
    try:
        state = with_certificate.export_until(draft["id"], lambda s: s.get("status") == "sent")
        assert state["status"] == "sent", state
        assert len(recipient.received) == 1 and recipient.problems == [[]]
    finally:
        with_certificate.live.close()
        recipient.close()
        store.close()
