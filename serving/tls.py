"""TLS for the gRPC port: what TF Serving's `--ssl_config_file` gives, for the server and its clients.

TF Serving's SSLConfig holds `server_cert`, `server_key`, `custom_ca` and `client_verify`:
`ServerTls` holds the same (a chain and its key, and a CA whose certificates clients must
present, which is `custom_ca` with `client_verify`), read from PEM files. Without TLS a
server answers anyone who reaches its port, so it binds loopback by default and warns when
bound beyond it without TLS (`is_loopback`). `ClientTls` is the client's side: the CA that
signed the server's certificate (None: the system's roots) and, for a server that verifies
clients, the client's own certificate and key.

Example:
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, True, False)
"""

from __future__ import annotations

import dataclasses
import ipaddress

import grpc


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise ValueError(f"cannot read the {what} {path}: {error.strerror}") from error


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # another name: it may resolve to anything
        return False


@dataclasses.dataclass(frozen=True)
class ServerTls:
    """The server's certificate chain and private key (PEM), and optionally the CA of its clients.

    Args:
        certificate_chain: the server's certificate, then any intermediates (TF Serving's `server_cert`).
        private_key: its key (`server_key`).
        client_ca: set, a client must present a certificate this CA signed, or its handshake
            fails (`custom_ca` with `client_verify: true`); None, any client may connect.
    """

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, certificate: str, key: str, client_ca: str | None = None) -> ServerTls:
        """Reads the PEM files; a missing or unreadable one raises ValueError naming it."""
        return cls(
            _read(certificate, "server certificate"),
            _read(key, "server key"),
            _read(client_ca, "client CA") if client_ca else None,
        )

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


@dataclasses.dataclass(frozen=True)
class ClientTls:
    """What a client trusts (PEM), and what it presents to a server that verifies clients.

    Args:
        root_certificates: the CA that signed the server's certificate; None, the system's roots.
        certificate_chain: the client's certificate, for a server with a client CA.
        private_key: its key.
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("a client certificate needs its private key, and a key its certificate")

    @classmethod
    def from_files(cls, ca: str | None = None, certificate: str | None = None, key: str | None = None) -> ClientTls:
        """Reads the PEM files given; a missing or unreadable one raises ValueError naming it."""
        return cls(
            _read(ca, "CA certificate") if ca else None,
            _read(certificate, "client certificate") if certificate else None,
            _read(key, "client key") if key else None,
        )

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)
