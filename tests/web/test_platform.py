"""The platform console in process: platform admins only (everyone else: not found), tenants
created, renamed, deactivated with confirmation and step-up (the members' next request is
refused), dead letters retried and discarded; and the platform tenants API it stands on."""

from __future__ import annotations

import re
import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.models import DeadJob
from tests.fixtures.factories import Factory
from tests.mfa.helpers import enrol_totp, totp_code
from tests.web.test_pages import HTML, _csrf, _signin

PAGES = ["/platform", "/platform/tenants", "/platform/containers", "/platform/jobs"]


async def test_the_console_is_not_found_for_anyone_else(
    client: httpx.AsyncClient, factory: Factory
):
    anonymous = await client.get("/platform/tenants", headers=HTML)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/signin?next=/platform/tenants"
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    home = await client.get("/", headers=HTML)
    assert 'href="/platform"' not in home.text
    paths = [*PAGES, f"/platform/tenants/{tenant.id}", f"/platform/tenants/{tenant.id}/deactivate"]
    for path in paths:
        refused = await client.get(path, headers=HTML)
        assert refused.status_code == 404, path
        assert "Page not found" in refused.text
        main = refused.text.split("<main", 1)[1]  # the nav names the admin's own channel
        assert tenant.slug not in main
    token = _csrf(home)
    post = await client.post(
        f"/platform/tenants/{tenant.id}/deactivate", data={"csrf_token": token}, headers=HTML
    )
    assert post.status_code == 404
    still = await client.get("/", headers=HTML)
    assert "Signed in as" in still.text  # the tenant was not deactivated


async def test_platform_admin_pages_and_tenant_lifecycle(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    home_tenant = await factory.tenant()
    root = await factory.user(home_tenant, platform_admin=True, login=False)
    await _signin(client, home_tenant.slug, root.user.email)
    home = await client.get("/", headers=HTML)
    assert 'href="/platform"' in home.text
    for path in PAGES:
        answer = await client.get(path, headers=HTML)
        assert answer.status_code == 200, (path, answer.text[:500])
    overview = await client.get("/platform", headers=HTML)
    assert "data-chart=" in overview.text
    assert "Media server" in overview.text

    listing = await client.get("/platform/tenants", headers=HTML)
    created = await client.post(
        "/platform/tenants",
        data={"csrf_token": _csrf(listing), "slug": "globex", "name": "Globex"},
        headers=HTML,
    )
    assert created.status_code == 303, created.text
    tenant_url = created.headers["location"]
    tenant_id = uuid.UUID(tenant_url.rsplit("/", 1)[1])
    again = await client.post(
        "/platform/tenants",
        data={"csrf_token": _csrf(listing), "slug": "globex", "name": "Twice"},
        headers=HTML,
    )
    assert again.status_code == 409
    assert "slug" in again.text
    bad = await client.post(
        "/platform/tenants",
        data={"csrf_token": _csrf(listing), "slug": "Not A Slug!", "name": "x"},
        headers=HTML,
    )
    assert bad.status_code == 422
    renamed = await client.post(
        tenant_url, data={"csrf_token": _csrf(listing), "name": "Globex Corp"}, headers=HTML
    )
    assert renamed.status_code == 303
    page = await client.get(tenant_url, headers=HTML)
    assert "Globex Corp" in page.text
    search = await client.get("/platform/tenants", params={"q": "GLOBEX"}, headers=HTML)
    assert re.findall(r'href="/platform/tenants/([0-9a-f-]{36})"', search.text) == [str(tenant_id)]

    # the platform API shows the same tenant
    api = await factory.user(home_tenant, platform_admin=True)
    got = await client.get(f"/api/platform/tenants/{tenant_id}", headers=api.headers)
    assert got.json()["name"] == "Globex Corp"
    assert got.json()["is_active"] is True


async def test_deactivation_asks_confirmation_then_step_up_and_stops_sessions(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    victim_tenant = await factory.tenant()
    member = await factory.user(victim_tenant, role=Role.STREAMER)
    home_tenant = await factory.tenant()
    root = await factory.user(home_tenant, platform_admin=True, login=False)
    await _signin(client, home_tenant.slug, root.user.email)
    confirm = await client.get(f"/platform/tenants/{victim_tenant.id}/deactivate", headers=HTML)
    assert confirm.status_code == 200
    assert "Yes, deactivate" in confirm.text
    assert (await client.get("/api/events", headers=member.headers)).status_code == 200

    # a session whose sign-in is older than the step-up window must confirm it is the admin
    state.settings.mfa_step_up_max_age_seconds = 0
    try:
        asked = await client.post(
            f"/platform/tenants/{victim_tenant.id}/deactivate",
            data={"csrf_token": _csrf(confirm)},
            headers=HTML,
        )
        assert asked.status_code == 401
        assert "Confirm it is you" in asked.text
        assert (await client.get("/api/events", headers=member.headers)).status_code == 200
        wrong = await client.post(
            "/stepup",
            data={
                "csrf_token": _csrf(asked), "method": "password", "password": "wrong-password-1",
                "next": f"/platform/tenants/{victim_tenant.id}/deactivate",
            },
            headers=HTML,
        )  # fmt: skip
        assert wrong.status_code in (400, 401)
        stepped = await client.post(
            "/stepup",
            data={
                "csrf_token": _csrf(asked), "method": "password", "password": root.password,
                "next": f"/platform/tenants/{victim_tenant.id}/deactivate",
            },
            headers=HTML,
        )  # fmt: skip
        assert stepped.status_code == 303, stepped.text
        assert stepped.headers["location"] == f"/platform/tenants/{victim_tenant.id}/deactivate"
    finally:
        state.settings.mfa_step_up_max_age_seconds = 900
    done = await client.post(
        f"/platform/tenants/{victim_tenant.id}/deactivate",
        data={"csrf_token": _csrf(confirm)},
        headers=HTML,
    )
    assert done.status_code == 303, done.text
    page = await client.get(f"/platform/tenants/{victim_tenant.id}", headers=HTML)
    assert "deactivated" in page.text
    refused = await client.get("/api/events", headers=member.headers)
    assert refused.status_code == 401
    back = await client.post(
        f"/platform/tenants/{victim_tenant.id}/activate",
        data={"csrf_token": _csrf(confirm)},
        headers=HTML,
    )
    assert back.status_code == 303
    assert (await client.get("/api/events", headers=member.headers)).status_code == 200


async def test_dead_letters_retry_and_discard(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    async with state.db.transaction() as session:
        first = DeadJob(
            message_id="m-retry", queue="low", task="jobs.tasks.purge_job_records", kwargs={}
        )
        second = DeadJob(message_id="m-discard", queue="default", task="probe", kwargs={})
        session.add_all([first, second])
    tenant = await factory.tenant()
    root = await factory.user(tenant, platform_admin=True, login=False)
    await _signin(client, tenant.slug, root.user.email)
    jobs = await client.get("/platform/jobs", headers=HTML)
    assert f'id="dead-{first.id}"' in jobs.text
    retried = await client.post(
        f"/platform/jobs/dead/{first.id}/retry", data={"csrf_token": _csrf(jobs)}, headers=HTML
    )
    assert retried.status_code == 303
    after = await client.get(retried.headers["location"], headers=HTML)
    assert "put back on its queue" in after.text
    assert f'id="dead-{first.id}"' not in after.text
    confirm = await client.get(f"/platform/jobs/dead/{second.id}/discard", headers=HTML)
    assert "Yes, discard it" in confirm.text
    discarded = await client.post(
        f"/platform/jobs/dead/{second.id}/discard",
        data={"csrf_token": _csrf(confirm)},
        headers=HTML,
    )
    assert discarded.status_code == 303
    final = await client.get("/platform/jobs", headers=HTML)
    assert f'id="dead-{second.id}"' not in final.text
    missing = await client.get(f"/platform/jobs/dead/{uuid.uuid4()}/discard", headers=HTML)
    assert missing.status_code == 404


async def test_platform_tenants_api(client: httpx.AsyncClient, factory: Factory):
    root = await factory.user(await factory.tenant(), platform_admin=True)
    admin = await factory.user(await factory.tenant(), role=Role.ADMIN)
    refused = await client.get("/api/platform/tenants", headers=admin.headers)
    assert refused.status_code == 403
    made = await client.post(
        "/api/platform/tenants", json={"slug": "initech", "name": "Initech"}, headers=root.headers
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["members"] == 0
    assert body["is_active"] is True
    dup = await client.post(
        "/api/platform/tenants", json={"slug": "initech", "name": "Again"}, headers=root.headers
    )
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "slug_taken"
    invalid = await client.post(
        "/api/platform/tenants", json={"slug": "", "name": "x"}, headers=root.headers
    )
    assert invalid.status_code == 422
    renamed = await client.patch(
        f"/api/platform/tenants/{body['id']}", json={"name": "Initech Ltd"}, headers=root.headers
    )
    assert renamed.json()["name"] == "Initech Ltd"
    listed = await client.get(
        "/api/platform/tenants", params={"q": "initech"}, headers=root.headers
    )
    assert [t["slug"] for t in listed.json()["items"]] == ["initech"]
    missing = await client.get(f"/api/platform/tenants/{uuid.uuid4()}", headers=root.headers)
    assert missing.status_code == 404


async def test_step_up_asks_an_admin_with_an_authenticator_for_its_code(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    victim = await factory.tenant()
    home = await factory.tenant()
    root = await factory.user(home, platform_admin=True)
    signin = await _signin(client, home.slug, root.user.email)
    assert signin.headers["location"] == "/"
    _, secret, _ = await enrol_totp(client, root)  # the authenticator added after signing in
    confirm = await client.get(f"/platform/tenants/{victim.id}/deactivate", headers=HTML)
    state.settings.mfa_step_up_max_age_seconds = 0
    try:
        asked = await client.post(
            f"/platform/tenants/{victim.id}/deactivate",
            data={"csrf_token": _csrf(confirm)},
            headers=HTML,
        )
        assert asked.status_code == 401
        assert "Code from your authenticator app" in asked.text
        assert 'name="password"' not in asked.text
        back = f"/platform/tenants/{victim.id}/deactivate"
        stepped = await client.post(
            "/stepup",
            data={
                "csrf_token": _csrf(asked), "method": "totp", "code": totp_code(secret, 1),
                "next": back,
            },
            headers=HTML,
        )  # fmt: skip
        assert stepped.status_code == 303, stepped.text
    finally:
        state.settings.mfa_step_up_max_age_seconds = 900
    done = await client.post(back, data={"csrf_token": _csrf(confirm)}, headers=HTML)
    assert done.status_code == 303
    page = await client.get(f"/platform/tenants/{victim.id}", headers=HTML)
    assert 'id="tenant-status">deactivated<' in page.text
