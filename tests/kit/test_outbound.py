"""The shared SSRF guard: what it lets through and how a pinned request reaches its target."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from bigfootlive.kit.outbound import OutboundUrlRefused, check_outbound_url, pin
from tests.webhooks.conftest import Receiver


async def test_public_literal_addresses_pass_and_are_returned():
    addresses = await check_outbound_url("https://93.184.216.34/hook", allow_private=False)
    assert addresses == [ipaddress.ip_address("93.184.216.34")]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "not_public"),
        ("http://[::ffff:169.254.169.254]/", "not_public"),
        ("http://localhost/", "not_public"),
        ("ftp://93.184.216.34/", "bad_url"),
        ("http:///no-host", "bad_url"),
        ("http://93.184.216.34:99999/", "bad_url"),
        ("http://nothing.invalid/", "unresolvable"),
    ],
)
async def test_refusals_say_why(url, reason):
    with pytest.raises(OutboundUrlRefused) as refused:
        await check_outbound_url(url, allow_private=False)
    assert refused.value.reason == reason


async def test_plain_http_is_refused_when_tls_is_required():
    with pytest.raises(OutboundUrlRefused):
        await check_outbound_url("http://93.184.216.34/", allow_private=False, require_tls=True)


async def test_allowing_private_networks_checks_only_the_scheme():
    assert await check_outbound_url("http://127.0.0.1:1/", allow_private=True) == []
    with pytest.raises(OutboundUrlRefused):
        await check_outbound_url("gopher://127.0.0.1/", allow_private=True)


async def test_a_pinned_request_reaches_the_checked_address_under_the_original_host_name():
    receiver = Receiver()
    receiver.start()
    try:
        port = receiver.url.split(":")[2].split("/")[0]
        url = f"http://hooks.customer.example:{port}/hooks?x=1"
        target, headers, extensions = pin(url, ipaddress.ip_address("127.0.0.1"))
        async with httpx.AsyncClient() as http:
            response = await http.post(
                target, content=b"{}", headers=headers, extensions=extensions
            )
        assert response.status_code == 200
        [request] = receiver.requests
        assert request.headers["host"] == f"hooks.customer.example:{port}"
        assert request.path == "/hooks?x=1"
    finally:
        receiver.stop()


def test_pinning_https_keeps_the_host_name_for_sni():
    target, headers, extensions = pin("https://hooks.example/x", ipaddress.ip_address("::1"))
    assert str(target) == "https://[::1]/x"
    assert headers == {"Host": "hooks.example"}
    assert extensions == {"sni_hostname": "hooks.example"}
