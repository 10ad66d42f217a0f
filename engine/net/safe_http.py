"""Fetching URLs that users give us (outgoing webhooks, research feeds) without letting them
reach our own network (SSRF).

- HTTPS only, to hosts whose every address is public: loopback, private, link-local (cloud
  metadata at 169.254.169.254), shared, reserved and multicast addresses are refused, also
  when wrapped in IPv6 (IPv4-mapped, NAT64, 6to4, Teredo).
- The check runs where the connection is made: our network backend resolves the name,
  refuses the connection if any address is not public, and connects to the address it
  checked (TLS still verifies the certificate for the name). A name that resolved to a
  public address when the URL was registered and to 10.0.0.1 now (DNS rebinding) is
  refused at connect time.
- Redirects are followed by us, a few at most, each hop checked again (scheme and address).
- A response is read up to a size cap; no proxy from the environment is used.

Tests replace two seams, never the checks: `resolver` (a name's addresses) and `dialer`
(where a checked address is actually connected, e.g. a public-looking address to a local
TLS server), with an `ssl_context` that trusts the test's own CA.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
Dialer = Callable[[str, int], tuple[str, int]]

MAX_REDIRECTS = 3
DEFAULT_MAX_BYTES = 2 << 20
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(Exception):
    """A URL we refuse to fetch; `reason` is a short code for users and logs."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ResponseTooLarge(Exception):
    pass


def public_address(text: str) -> bool:
    """Whether connecting to this address reaches the public internet only."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if ip in NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return public_address(str(inner))
    return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """The machine's DNS, as a connection would use it."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def direct(address: str, port: int) -> tuple[str, int]:
    return address, port


def check_shape(url: str) -> tuple[str, int]:
    """(host, port) of an https URL without credentials; refuses anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise UnsafeURL("malformed", str(exc)) from None
    if parts.scheme != "https":
        raise UnsafeURL("not_https", url[:80])
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeURL("malformed", url[:80])
    return parts.hostname, port


async def checked_addresses(resolver: Resolver, host: str, port: int) -> list[str]:
    """The host's addresses, all public, or UnsafeURL."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [str(literal)]
    except ValueError:
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            raise UnsafeURL("unresolvable", host) from exc
    if not addresses:
        raise UnsafeURL("unresolvable", host)
    # one private address is enough to refuse: we would not know which one gets used
    bad = [a for a in addresses if not public_address(a)]
    if bad:
        raise UnsafeURL("private_address", f"{host} -> {bad[0]}")
    return addresses


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check at connect time."""

    def __init__(self, resolver: Resolver, dialer: Dialer) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.resolver = resolver
        self.dialer = dialer

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(self.resolver, host, port)
        last: Exception | None = None
        for address in addresses:
            target, target_port = self.dialer(address, port)
            try:
                return await self.inner.connect_tcp(
                    target, target_port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("unix_socket", path)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, ssl_context: ssl.SSLContext, backend: _GuardedBackend) -> None:
        super().__init__(verify=ssl_context, retries=0)
        # the same pool httpx builds, connecting through the guarded backend
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=backend, max_connections=50
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str  # after redirects


class SafeFetcher:
    def __init__(
        self,
        resolver: Resolver = system_resolver,
        dialer: Dialer = direct,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        user_agent: str = "Maxxit/0.1",
    ) -> None:
        self.resolver = resolver
        self.max_bytes = max_bytes
        backend = _GuardedBackend(resolver, dialer)
        context = ssl_context or ssl.create_default_context()
        self.http = httpx.AsyncClient(
            transport=_GuardedTransport(context, backend),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the address check
            headers={"User-Agent": user_agent},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def check(self, url: str) -> None:
        """Refuse a URL before it is stored (the same check runs again at every request)."""
        host, port = check_shape(url)
        await checked_addresses(self.resolver, host, port)

    async def request(
        self,
        method: str,
        url: str,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> FetchResult:
        for _ in range(MAX_REDIRECTS + 1):
            check_shape(url)
            req = self.http.build_request(method, url, content=content, headers=headers)
            response = await self.http.send(req, stream=True)
            try:
                location = response.headers.get("location")
                if response.is_redirect and location:
                    url = urljoin(url, location)
                    if response.status_code in (301, 302, 303) and method != "GET":
                        method, content = "GET", None  # as browsers (and httpx) do
                    continue
                body = await self._read_capped(response)
                return FetchResult(response.status_code, response.headers, body, url)
            finally:
                await response.aclose()
        raise UnsafeURL("too_many_redirects", url[:80])

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise ResponseTooLarge(declared)
        chunks, size = [], 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > self.max_bytes:
                raise ResponseTooLarge(f"> {self.max_bytes}")
            chunks.append(chunk)
        return b"".join(chunks)
