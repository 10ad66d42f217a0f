"""A "public" HTTPS site on 127.0.0.1 for tests of the SSRF-safe fetcher.

No test reaches the internet, yet the fetcher refuses loopback. So the test plays the
internet's part only: a name (hooks.example.com) resolves to a public-looking address, and
the fetcher's dialer connects that one address to a local TLS server whose certificate, for
that name, is signed by a CA made here and trusted by the test's SSL context. Every check of
the fetcher still runs on the public-looking address; real private addresses stay refused.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp

from engine.net.safe_http import SafeFetcher, system_resolver

PUBLIC_ADDRESS = "93.184.216.34"  # a public address; only the test dialer knows it is local


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(names: list[str], folder: Path) -> tuple[Path, Path, Path]:
    """(CA cert, server cert, server key) files; the server cert covers `names`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Maxxit test CA"))
        .issuer_name(_name("Maxxit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass
class PublicSite:
    """The local TLS server seen as https://<name>/ from a fetcher made by `fetcher()`."""

    name: str
    port: int
    ca_file: Path
    # other names the test's DNS answers (e.g. a name resolving to 10.0.0.7)
    dns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://{self.name}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    async def resolve(self, host: str, port: int) -> list[str]:
        if host in self.dns:
            return list(self.dns[host])
        return await system_resolver(host, port)  # real DNS for every other name

    def dial(self, address: str, port: int) -> tuple[str, int]:
        return ("127.0.0.1", self.port) if address == PUBLIC_ADDRESS else (address, port)

    def fetcher(self, **kwargs: Any) -> SafeFetcher:
        return SafeFetcher(self.resolve, self.dial, self.ssl_context(), **kwargs)


@asynccontextmanager
async def public_https(
    app: ASGIApp, name: str = "hooks.example.com", aliases: tuple[str, ...] = ()
) -> AsyncIterator[PublicSite]:
    with tempfile.TemporaryDirectory() as folder:
        ca_file, cert, key = make_certificates([name, *aliases], Path(folder))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            timeout_graceful_shutdown=2,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup(sockets=[sock])
            port = sock.getsockname()[1]
            site = PublicSite(name, port, ca_file)
            site.dns = {n: [PUBLIC_ADDRESS] for n in (name, *aliases)}
            yield site
        finally:
            if server.started:
                await server.shutdown(sockets=[sock])
            sock.close()
