"""CPU time per beacon request next to the bare route, in one process, one request at a time.

    python -m bench.cpu_beacons memory|redis [label]

Drives the app through httpx's ASGI transport (no sockets, no load generator on the cores) and
divides the process's CPU time (all its threads: the flush and the roll-up jobs included) by
the requests: a figure that the load of a shared machine moves far less than requests/s.
Both figures include the same client overhead. Not run by `make bench` (no `bench_` prefix).
"""

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid

import httpx

ROUNDS = 8  # measured rounds of each side, after one to warm up
PER_ROUND = 400


async def main(backend: str = "memory") -> None:
    tmp = tempfile.mkdtemp()
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/b.db",
            "AUTO_MIGRATE": "true",
            "LOG_LEVEL": "WARNING",
            "MAIL_OUTBOX_DIR": tmp + "/o",
            "ANALYTICS_BEACON_RATE_LIMIT": "100000000/minute",
            "ANALYTICS_BEACON_IP_RATE_LIMIT": "100000000/minute",
            "JOBS_SCHEDULER": "false",
            "CONTAINER_MANAGER_ENABLED": "false",
            "MEDIA_SERVER_MODE": "none",
        }
    )
    if backend == "redis":
        os.environ.update(
            {
                "REDIS_URL": "redis://127.0.0.1:6379/0",
                "REDIS_KEY_PREFIX": f"cpub{uuid.uuid4().hex[:6]}:",
                "JOBS_QUEUE_PREFIX": f"cpub{uuid.uuid4().hex[:6]}",
            }
        )
    from asgi_lifespan import LifespanManager

    from bench.bench_beacons import PASSWORD, create_bench_app
    from bigfootlive.identity import accounts

    app = create_bench_app()
    async with LifespanManager(app) as mgr:
        st = app.state.bigfoot
        from bigfootlive.authz.roles import Role
        from bigfootlive.tenants import service as tenants
        from bigfootlive.tenants.schemas import TenantSettings

        async with st.db.transaction() as s:
            t = await tenants.create_tenant(
                s, slug="b", name="B", settings=TenantSettings(), email_domains=[]
            )
            await accounts.create_account(
                st,
                s,
                tenant=t,
                email="s@example.com",
                display_name="S",
                role=Role.STREAMER,
                password=PASSWORD,
                email_verified=True,
            )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=mgr.app), base_url="http://t"
        ) as c:
            tok = (
                await c.post(
                    "/api/auth/login",
                    json={"tenant": "b", "email": "s@example.com", "password": PASSWORD},
                )
            ).json()["access_token"]
            h = {"Authorization": f"Bearer {tok}"}
            ev = (await c.post("/api/events", json={"title": "x"}, headers=h)).json()
            assert (await c.post(f"/api/events/{ev['id']}/start", headers=h)).status_code == 200
            beacon = {"type": "heartbeat", "watched_ms": 10000, "bitrate_kbps": 2500}
            bodies = [
                json.dumps({"viewer_id": f"viewer-{n:05d}", "beacons": [beacon] * 10}).encode()
                for n in range(5000)
            ]
            # Alternating rounds (ours, bare, bare, ours, ...), totals of each side: a change of
            # the machine's load during the run falls on both alike.
            urls = [
                ("ours", f"/api/analytics/events/{ev['id']}/beacons"),
                ("bare", f"/bench/bare-beacons/{ev['id']}"),
            ]
            spent = {"ours": 0.0, "bare": 0.0}
            done = {"ours": 0, "bare": 0}
            for rnd in range(ROUNDS + 1):
                for name, url in urls if rnd % 2 else urls[::-1]:
                    t0 = time.process_time()
                    for i in range(PER_ROUND):
                        r = await c.post(
                            url,
                            content=bodies[(done[name] + i) % 5000],
                            headers={"content-type": "application/json"},
                        )
                        assert r.status_code == 202, r.text
                    if rnd:  # the first round of each side warms up
                        spent[name] += time.process_time() - t0
                        done[name] += PER_ROUND
            res = {name: spent[name] / done[name] * 1e6 for name in spent}
            ours, bare = res["ours"], res["bare"]
            label = " ".join(sys.argv[1:3])
            print(f"{label} cpu us/request ours {ours:.0f} bare {bare:.0f} ratio {bare / ours:.3f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory"))
