"""The benchmark's app factory: the production app plus bare reference routes.

`uvicorn bench.server:create_bench_app --factory` builds exactly what `bigfootlive serve` builds
(`create_app(Settings())`, settings from the environment) and adds two routes that answer with
pre-rendered bytes of the real responses, without authentication, database or serialization.
They sit behind the same middleware on the same server, so the ratio real/bare is the cost of
our request path (token check, revocation check, queries, response models) and nothing else.

The bytes come from `BENCH_FIXTURE_DIR/{me,users}.json`, written by the benchmark after seeding.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

from bigfootlive.app import create_app
from bigfootlive.config import Settings

_cache: dict[str, bytes] = {}


def _fixture(name: str) -> bytes:
    body = _cache.get(name)
    if body is None:
        body = _cache[name] = (Path(os.environ["BENCH_FIXTURE_DIR"]) / name).read_bytes()
    return body


def create_bench_app() -> FastAPI:
    app = create_app(Settings())

    @app.get("/bench/bare-me", include_in_schema=False)
    async def bare_me() -> Response:
        return Response(_fixture("me.json"), media_type="application/json")

    @app.get("/bench/bare-users", include_in_schema=False)
    async def bare_users() -> Response:
        return Response(_fixture("users.json"), media_type="application/json")

    return app
