"""Event containers: time from `start` to a running container, per runtime, and the cost of
one reconcile of the manager with 1,000 scheduled events.

    python -m bench.bench_containers [--events 5] [--scheduled 1000]

Everything runs on loopback: a SQLite database in a temp dir, worker processes for the
subprocess runtime, and the test suite's Kubernetes API server (real wire protocol, Pods turn
Running after 50 ms — so that figure is the manager + client + API round trips, not a kubelet).
Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.summary import target
from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.containers import repository as repo
from bigfootlive.containers.manager import ContainerManager
from bigfootlive.containers.tasks import make_runtime
from bigfootlive.db import utcnow
from bigfootlive.events.keys import new_playback_id
from bigfootlive.identity import accounts
from bigfootlive.migrations import upgrade_database
from bigfootlive.models import Event
from bigfootlive.observability.logging import configure_logging
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import TenantSettings


def settings_for(db: Path, runtime: str, **extra: Any) -> Settings:
    return Settings(
        node_env="test",
        database_url=f"sqlite+aiosqlite:///{db}",
        auto_migrate=False,
        log_level="ERROR",
        container_runtime=runtime,
        container_manager_enabled=False,
        container_reconcile_interval_seconds=0.05,
        container_heartbeat_interval_seconds=0.2,
        container_health_interval_seconds=5,
        container_rollup_interval_seconds=5,
        container_max_per_node=100_000,
        container_max_per_tenant=100_000,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        **extra,
    )


async def owner(state: AppState) -> tuple[uuid.UUID, uuid.UUID]:
    async with state.db.transaction() as session:
        tenant = await tenants.create_tenant(
            session,
            slug=f"bench-{uuid.uuid4().hex[:6]}",
            name="Bench",
            settings=TenantSettings(),
            email_domains=[],
        )
        user = await accounts.create_account(
            state,
            session,
            tenant=tenant,
            email=f"{uuid.uuid4().hex[:8]}@bench.example",
            display_name="Bench",
            role=Role.STREAMER,
            password="bench-password-long-enough-42",
            email_verified=True,
        )
        return tenant.id, user.id


def event_row(tenant_id: uuid.UUID, owner_id: uuid.UUID, **fields: Any) -> Event:
    return Event(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        owner_id=owner_id,
        title="bench",
        visibility="public",
        version=1,
        playback_id=new_playback_id(),
        stream_key_ciphertext="x",
        stream_key_hash=uuid.uuid4().hex,
        **fields,
    )


async def time_to_running(settings: Settings, events: int) -> dict[str, Any]:
    state = AppState.build(settings)
    manager = ContainerManager(state, make_runtime(state), holder="bench")
    tenant_id, owner_id = await owner(state)
    samples: list[float] = []
    try:
        for _ in range(events):
            row = event_row(tenant_id, owner_id, status="ready", armed_at=utcnow())
            async with state.db.transaction() as session:
                session.add(row)
            started = time.perf_counter()
            while True:
                await manager.tick()
                if settings.container_runtime == "kubernetes":
                    info = await manager.runtime.status(row.id)
                    if info is not None and info.state == "running":
                        break
                else:
                    async with state.db.transaction() as session:
                        found = await repo.get_container(session, row.id)
                    if found is not None and found.state == "running":
                        break
                await asyncio.sleep(settings.container_reconcile_interval_seconds)
            samples.append(time.perf_counter() - started)
    finally:
        await manager.shutdown()
        await state.close()
    return {
        "runtime": settings.container_runtime,
        "events": events,
        "start_to_running_ms": {
            "median": round(statistics.median(samples) * 1000, 1),
            "min": round(min(samples) * 1000, 1),
            "max": round(max(samples) * 1000, 1),
        },
    }


async def reconcile_cost(settings: Settings, scheduled: int, due: int) -> dict[str, Any]:
    """`scheduled` events, of which `due` fall inside the pre-warm window."""
    state = AppState.build(settings)
    manager = ContainerManager(state, make_runtime(state), holder="bench")
    tenant_id, owner_id = await owner(state)
    later = utcnow() + dt.timedelta(days=2)
    soon = utcnow() + dt.timedelta(seconds=30)
    async with state.db.transaction() as session:
        for i in range(scheduled):
            start = soon if i < due else later
            session.add(event_row(tenant_id, owner_id, status="scheduled", scheduled_start=start))
    timings: list[float] = []
    try:
        first = await manager.tick()
        if first is None:
            raise RuntimeError("the bench manager did not get the lease")
        for _ in range(20):
            report = await manager.tick()
            if report is not None:
                timings.append(report.seconds)
    finally:
        await manager.shutdown()
        await state.close()
    return {
        "scheduled_events": scheduled,
        "prewarmed": due,
        "first_reconcile_ms": round(first.seconds * 1000, 2),
        "steady_reconcile_ms": {
            "median": round(statistics.median(timings) * 1000, 2),
            "max": round(max(timings) * 1000, 2),
        },
    }


async def main(events: int, scheduled: int) -> dict[str, Any]:
    from tests.containers.fake_kubernetes import FakeKubernetes

    configure_logging("ERROR", True)
    results: dict[str, Any] = {"start_to_running": [], "reconcile": []}
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as tmp:
        kube = FakeKubernetes(start_delay=0.05)
        kube.start()
        try:
            for runtime in ("inprocess", "subprocess", "kubernetes"):
                db = Path(tmp) / f"{runtime}.db"
                await upgrade_database(f"sqlite+aiosqlite:///{db}")
                extra = {"k8s_api_url": kube.url} if runtime == "kubernetes" else {}
                results["start_to_running"].append(
                    await time_to_running(settings_for(db, runtime, **extra), events)
                )
            for due in (0, 20):
                db = Path(tmp) / f"reconcile-{due}.db"
                await upgrade_database(f"sqlite+aiosqlite:///{db}")
                results["reconcile"].append(
                    await reconcile_cost(settings_for(db, "inprocess"), scheduled, due)
                )
        finally:
            kube.stop()
    by_runtime = {
        r["runtime"]: r["start_to_running_ms"]["median"] for r in results["start_to_running"]
    }
    results["subprocess_vs_inprocess"] = round(
        by_runtime["subprocess"] / by_runtime["inprocess"], 2
    )
    # The first subprocess start also starts the worker template: the median leaves it out.
    results["targets"] = [
        target(
            "container_start_subprocess_vs_inprocess",
            results["subprocess_vs_inprocess"],
            5.0,
            unit="x",
            better="lower",
        )
    ]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--scheduled", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.events, args.scheduled)), indent=2))
