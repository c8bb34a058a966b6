"""SSO just-in-time provisioning and the IdP's group mapping change the member list: the
cached first pages (`identity.member_pages`) show it to the very next request on this app and,
with Redis, on a second app instance that had the old page cached."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures.member_pages import Instance, everywhere, instances_of, warm
from tests.fixtures.oidc_provider import OidcProvider, browser_login
from tests.sso.conftest import CALLBACK, Org, add_provider, oidc_body


@pytest.fixture
async def instances(backend, settings, client, state) -> AsyncIterator[list[Instance]]:
    async with instances_of(backend, settings, client, state) as found:
        yield found


async def _sign_in(http: httpx.AsyncClient, login: str) -> None:
    started = await http.post("/api/auth/sso/initiate", json={"tenant": "acme"})
    assert started.status_code == 200, started.text
    back = await browser_login(str(started.json()["redirect_url"]), login, CALLBACK)
    response = await http.get(back.replace("http://testserver", ""))
    assert response.status_code == 200, response.text


def _alice(items: list[dict[str, object]]) -> dict[str, object] | None:
    return next((i for i in items if i["email"] == "alice@acme.example.com"), None)


async def test_a_provisioned_member_and_a_mapped_role_are_listed_at_once(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, instances: list[Instance]
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp, jit_provisioning=True))
    assert _alice(await warm(instances, acme.admin)) is None
    await _sign_in(instances[-1].http, "alice")  # provisioned, as a streamer (her groups)
    for items in await everywhere(instances, acme.admin):
        alice = _alice(items)
        assert alice is not None
        assert alice["role"] == "streamer"
        assert alice["last_login_at"] is not None
    await warm(instances, acme.admin)
    # The admin lowers her role; her next SSO sign-in maps her groups to streamer again.
    response = await client.put(
        f"/api/tenant/users/{alice['id']}", json={"role": "viewer"}, headers=acme.admin.headers
    )
    assert response.status_code == 200, response.text
    for items in await everywhere(instances, acme.admin):
        assert (_alice(items) or {})["role"] == "viewer"
    await warm(instances, acme.admin)
    await _sign_in(instances[0].http, "alice")
    for items in await everywhere(instances, acme.admin):
        assert (_alice(items) or {})["role"] == "streamer"
