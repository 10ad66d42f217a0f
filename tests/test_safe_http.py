"""The SSRF-safe fetcher: a public HTTPS site is fetched; loopback, private, link-local and
names resolving to them are refused, before the request, at connect time (DNS that changes
after the URL was accepted) and after a redirect; a response over the cap is cut off."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from engine.net.safe_http import ResponseTooLarge, SafeFetcher, UnsafeURL, public_address
from tests.peers.public_tls import public_https
from tests.peers.telegram_api import serve_app

hits: list[str] = []


async def hello(request: Request) -> Response:
    hits.append(request.url.path)
    return PlainTextResponse(f"hello {request.headers.get('host')}")


async def to_loopback(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def big(_: Request) -> Response:
    return PlainTextResponse("x" * 5000)


APP = Starlette(
    routes=[
        Route("/hello", hello, methods=["GET", "POST"]),
        Route("/redirect", to_loopback),
        Route("/big", big),
    ]
)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.0.1", "::1", "::ffff:10.0.0.1",
     "64:ff9b::7f00:1", "0.0.0.0", "100.64.0.1", "fd00::1"],
)  # fmt: skip
def test_private_addresses_are_not_public(address: str) -> None:
    assert not public_address(address)


def test_public_addresses_are_public() -> None:
    assert public_address("93.184.216.34") and public_address("2606:4700::1111")


async def test_a_public_https_site_is_fetched_with_its_name_checked_by_tls() -> None:
    async with public_https(APP) as site:
        fetcher = site.fetcher()
        try:
            got = await fetcher.request("GET", f"{site.url}/hello")
            assert (got.status, got.body) == (200, b"hello hooks.example.com")
            # a fetcher that does not trust the test CA refuses the same server
            strict = SafeFetcher(site.resolve, site.dial)
            with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
                await strict.request("GET", f"{site.url}/hello")
            await strict.aclose()
        finally:
            await fetcher.aclose()


async def test_real_private_addresses_and_names_resolving_to_them_are_refused() -> None:
    """A real server listens on 127.0.0.1; the fetcher never reaches it."""
    hits.clear()
    async with serve_app(APP) as plain_root, public_https(APP) as site:
        port = plain_root.rsplit(":", 1)[1]
        site.dns["internal.example.com"] = ["10.0.0.7"]
        site.dns["metadata.example.com"] = ["93.184.216.34", "169.254.169.254"]
        fetcher = site.fetcher()
        try:
            refused = {
                f"https://127.0.0.1:{port}/hello": "private_address",
                f"https://localhost:{port}/hello": "private_address",  # the machine's own DNS
                "https://10.0.0.5/hello": "private_address",
                "https://169.254.169.254/latest/meta-data/": "private_address",
                "https://[::1]/hello": "private_address",
                "https://internal.example.com/hello": "private_address",
                "https://metadata.example.com/hello": "private_address",  # one bad is enough
                f"http://{site.name}/hello": "not_https",
                f"{plain_root}/hello": "not_https",
                f"https://user:pw@{site.name}/hello": "malformed",
            }
            for url, reason in refused.items():
                with pytest.raises(UnsafeURL) as before:
                    await fetcher.check(url)
                assert before.value.reason == reason, url
                with pytest.raises(UnsafeURL) as during:
                    await fetcher.request("POST", url, b"{}")
                assert during.value.reason == reason, url
        finally:
            await fetcher.aclose()
    assert hits == []


async def test_dns_that_changes_after_the_check_is_refused_at_connect_time() -> None:
    hits.clear()
    async with public_https(APP) as site:
        fetcher = site.fetcher()
        try:
            await fetcher.check(f"{site.url}/hello")  # accepted when registered
            site.dns[site.name] = ["127.0.0.1"]  # rebinding: now it names us
            with pytest.raises(UnsafeURL, match="private_address"):
                await fetcher.request("GET", f"{site.url}/hello")
        finally:
            await fetcher.aclose()
    assert hits == []


async def test_a_redirect_to_a_private_address_is_refused() -> None:
    hits.clear()
    async with serve_app(APP) as plain_root, public_https(APP) as site:
        port = plain_root.rsplit(":", 1)[1]
        fetcher = site.fetcher()
        try:
            for target in (f"https://127.0.0.1:{port}/hello", f"{plain_root}/hello",
                           "https://169.254.169.254/latest/"):  # fmt: skip
                with pytest.raises(UnsafeURL):
                    await fetcher.request("GET", f"{site.url}/redirect?to={target}")
            followed = await fetcher.request("GET", f"{site.url}/redirect?to=/hello")
            assert followed.status == 200 and followed.url == f"{site.url}/hello"
        finally:
            await fetcher.aclose()
    assert hits == ["/hello"]  # only the public one


async def test_a_response_over_the_cap_is_refused() -> None:
    async with public_https(APP) as site:
        fetcher = site.fetcher(max_bytes=1000)
        try:
            with pytest.raises(ResponseTooLarge):
                await fetcher.request("GET", f"{site.url}/big")
            assert (await fetcher.request("GET", f"{site.url}/hello")).status == 200
        finally:
            await fetcher.aclose()
