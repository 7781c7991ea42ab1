"""TLS on the gRPC port, with a CA and certificates the test makes: round trips, refused
clients, and the warning for a plaintext server bound beyond loopback.

`cryptography` comes with apache-beam[gcp] (locked in uv.lock).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import logging

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from serving import cli
from serving.client import RecommenderClient, ServingError
from serving.server import RecommenderServer, ServerConfig
from serving.tls import ClientTls, ServerTls
from tests.serving.conftest import MODEL_NAME, TOP_K


@dataclasses.dataclass(frozen=True)
class Issued:
    certificate: bytes  # PEM
    key: bytes  # PEM


def _issue(name: str, issuer: Issued | None = None, *, server: bool = False) -> Issued:
    """A certificate for `name`, signed by `issuer`'s key (None: self-signed, a CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_name = x509.load_pem_x509_certificate(issuer.certificate).subject
        signing_key = serialization.load_pem_private_key(issuer.key, password=None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:  # the names a client may dial
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    certificate = builder.sign(signing_key, hashes.SHA256())
    return Issued(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: Issued
    server: Issued
    client: Issued  # signed by the CA
    stranger: Issued  # signed by a CA the server does not trust


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca, other_ca = _issue("test CA"), _issue("another CA")
    return Pki(ca, _issue("localhost", ca, server=True), _issue("client", ca), _issue("stranger", other_ca))


def _serve(running, tls: ServerTls | None, host: str = "127.0.0.1") -> RecommenderServer:
    server = RecommenderServer(running.versions, ServerConfig(host=host, port=0, tls=tls))
    server.start()
    return server


def _ask(port: int, session: list[str], tls: ClientTls | None) -> list[str]:
    with RecommenderClient(f"127.0.0.1:{port}", model_name=MODEL_NAME, timeout_s=10, tls=tls) as client:
        return client.recommend(session)[0].item_ids


def test_a_tls_server_answers_clients_that_trust_its_ca_and_only_them(running, exported_model, pki):
    session = exported_model.sessions[0]
    server = _serve(running, ServerTls(pki.server.certificate, pki.server.key))
    try:
        assert len(_ask(server.port, session, ClientTls(pki.ca.certificate))) == TOP_K
        for refused in (None, ClientTls(pki.stranger.certificate)):  # plaintext; a CA that did not sign it
            with pytest.raises(ServingError) as error:
                _ask(server.port, session, refused)
            assert error.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace_s=1)


def test_a_server_with_a_client_ca_admits_only_clients_with_a_certificate_it_signed(running, exported_model, pki):
    session = exported_model.sessions[0]
    server = _serve(running, ServerTls(pki.server.certificate, pki.server.key, client_ca=pki.ca.certificate))
    try:
        admitted = ClientTls(pki.ca.certificate, pki.client.certificate, pki.client.key)
        assert len(_ask(server.port, session, admitted)) == TOP_K
        for refused in (
            ClientTls(pki.ca.certificate),  # no certificate
            ClientTls(pki.ca.certificate, pki.stranger.certificate, pki.stranger.key),  # another CA's
        ):
            with pytest.raises(ServingError) as error:
                _ask(server.port, session, refused)
            assert error.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace_s=1)


@pytest.mark.parametrize(
    "host, tls, warned", [("0.0.0.0", False, True), ("0.0.0.0", True, False), ("127.0.0.1", False, False)]
)
def test_a_plaintext_server_bound_beyond_loopback_warns(running, pki, caplog, host, tls, warned):
    with caplog.at_level(logging.WARNING):
        server = _serve(running, ServerTls(pki.server.certificate, pki.server.key) if tls else None, host)
        server.stop(grace_s=1)
    assert any("without TLS" in record.getMessage() for record in caplog.records) == warned


def test_the_cli_reads_the_pem_files(pki, tmp_path):
    paths = {}
    for name, data in (("cert", pki.server.certificate), ("key", pki.server.key), ("ca", pki.ca.certificate)):
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(data)
    tls = ServerTls.from_files(str(paths["cert"]), str(paths["key"]), str(paths["ca"]))
    assert tls == ServerTls(pki.server.certificate, pki.server.key, pki.ca.certificate)
    with pytest.raises(ValueError, match="cannot read the server key .*missing.pem"):
        ServerTls.from_files(str(paths["cert"]), str(tmp_path / "missing.pem"))
    args = cli.parse_args(["recommend", "1", "--model-name", "m", "--tls-ca", str(paths["ca"])])
    assert args.tls and ClientTls.from_files(args.tls_ca).root_certificates == pki.ca.certificate
    with pytest.raises(ValueError, match="needs its private key"):
        ClientTls(pki.ca.certificate, pki.client.certificate)


SERVE = ["serve", "--base-path", "b", "--model-name", "m"]
RECOMMEND = ["recommend", "1", "--model-name", "m"]


@pytest.mark.parametrize(
    "argv, refusal",
    [
        ([*SERVE, "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        ([*SERVE, "--tls-key", "k.pem"], "--tls-cert and --tls-key go together"),
        ([*SERVE, "--tls-client-ca", "ca.pem"], "--tls-client-ca needs --tls-cert and --tls-key"),
        ([*RECOMMEND, "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
    ],
)
def test_the_cli_refuses_tls_flags_that_cannot_work_before_reading_any_file(argv, refusal, capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(argv)
    assert refusal in capsys.readouterr().err
