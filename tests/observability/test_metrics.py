"""/metrics describes the platform (live events, publishers, containers, jobs, dead letters,
webhooks, stream health, sign-in failures and lockouts) with bounded labels, and is
restricted in production: to a bearer token (METRICS_TOKEN) or a port of its own
(METRICS_PORT)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from bigfootlive.events import access, lifecycle
from bigfootlive.models import DeadJob
from bigfootlive.observability.metrics import REGISTRY
from tests.fixtures import services

# Label names a metric may carry: each takes its values from a fixed vocabulary.
BOUNDED_LABELS = {
    "method",
    "route",
    "status",
    "action",
    "result",
    "queue",
    "task",
    "outcome",
    "state",
    "source",
    "verdict",
    "reason",
    "kind",
}


TOKEN = "scrape-token-" + "q" * 40  # METRICS_TOKEN of this module's apps
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings_overrides():
    return {"metrics_token": TOKEN}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(figures, name: str, **labels: str) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_the_platform_is_described_without_per_user_or_per_event_labels(
    client, factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    victim = await factory.user(tenant, login=False)
    before = samples((await client.get("/metrics", headers=SCRAPER)).text)

    created = await client.post("/api/events", json={"title": "Show"}, headers=streamer.headers)
    event_id = created.json()["id"]
    started = await client.post(f"/api/events/{event_id}/start", headers=streamer.headers)
    assert started.status_code == 200, started.text
    async with state.db.transaction() as session:  # the media server's publish callback
        event = await access.get_event(session, tenant.id, uuid.UUID(event_id))
        await lifecycle.publisher_connected(state, session, event, "encoder-1")
    for _ in range(5):  # the tenant's default lockout threshold
        wrong = await client.post(
            "/api/auth/login",
            json={"tenant": tenant.slug, "email": victim.user.email, "password": "wrong-guess-1"},
        )
        assert wrong.status_code in (401, 429)
    async with state.db.transaction() as session:  # what the worker writes when a job dies
        session.add(DeadJob(message_id="m1", queue="default", task="probe", kwargs={}))

    text = (await client.get("/metrics", headers=SCRAPER)).text
    after = samples(text)
    assert value(after, "bigfootlive_live_events", status="live") == 1
    assert value(after, "bigfootlive_publishers") == 1
    assert value(after, "bigfootlive_dead_letters") == 1
    failures = value(after, "bigfootlive_login_failures_total", reason="bad_password") - value(
        before, "bigfootlive_login_failures_total", reason="bad_password"
    )
    assert failures == 5
    lockouts = value(after, "bigfootlive_lockouts_total", kind="password") - value(
        before, "bigfootlive_lockouts_total", kind="password"
    )
    assert lockouts >= 1
    for name in (
        "bigfootlive_containers",
        "bigfootlive_jobs_outbox_pending",
        "bigfootlive_jobs_oldest_pending_age_seconds",
        "bigfootlive_webhook_deliveries_failed",
        "bigfootlive_ws_connections",
    ):
        assert any(key[0] == name for key in after), name
    assert value(after, "bigfootlive_containers", state="running") == 0

    # nothing that names a tenant, user or event
    names = (str(tenant.id), tenant.slug, streamer.id, victim.id, event_id, victim.user.email)
    for name in names:
        assert name not in text


def test_every_metric_has_only_bounded_labels():
    for family in REGISTRY.collect():
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= BOUNDED_LABELS, family.name


async def test_with_a_token_only_a_scraper_bearing_it_is_answered(client):
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    right = await client.get("/metrics", headers=SCRAPER)
    assert right.status_code == 200
    assert "bigfootlive_live_events" in right.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_production_without_token_or_port_does_not_serve_metrics(settings):
    production = settings.model_copy(
        update={
            "node_env": "production",
            "metrics_token": None,
            "allow_sqlite_in_production": True,
            "jwt_secret": settings.jwt_secret.__class__("Zq8" + uuid.uuid4().hex + "Xw7p" * 4),
        }
    )
    app = create_app(production)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/metrics")
            assert response.status_code == 404
            assert (await http.get("/health")).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_metrics_port_serves_metrics_there_and_not_on_the_api_port(settings):
    port = services.free_port()
    separate = settings.model_copy(update={"metrics_port": port, "metrics_host": "127.0.0.1"})
    app = create_app(separate)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/metrics")).status_code == 404
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:
            assert (await scraper.get("/metrics")).status_code == 401  # the token still applies
            served = await scraper.get("/metrics", headers=SCRAPER)
            assert served.status_code == 200
            assert served.headers["content-type"].startswith("text/plain")
            assert "bigfootlive_publishers" in served.text
            assert (await scraper.get("/other", headers=SCRAPER)).status_code == 404
