"""`/static`: the package's files from memory, cached forever under their versioned URL and
revalidated by ETag otherwise, with the security headers of every answer."""

from __future__ import annotations

import httpx

from bigfootlive.web.assets import STATIC_DIR, static_url, vendor_file


async def test_a_versioned_url_is_cached_for_good(client: httpx.AsyncClient):
    url = static_url(vendor_file("hls.js"))
    answer = await client.get(url)
    assert answer.status_code == 200
    assert answer.content == (STATIC_DIR / vendor_file("hls.js")).read_bytes()
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["etag"].startswith('"')  # strong


async def test_other_urls_are_revalidated_by_etag(client: httpx.AsyncClient):
    first = await client.get("/static/css/app.css")
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/css; charset=utf-8"
    assert first.headers["cache-control"] == "no-cache"
    stale = await client.get("/static/css/app.css?v=000000000000")  # an old version's URL
    assert stale.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = await client.get("/static/css/app.css", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await client.get("/static/css/app.css", headers={"if-none-match": '"elsewhere"'})
    assert other.status_code == 200
    assert other.content == (STATIC_DIR / "css/app.css").read_bytes()


async def test_head_answers_without_a_body(client: httpx.AsyncClient):
    answer = await client.head(static_url("js/watch.mjs"))
    assert answer.status_code == 200
    assert answer.content == b""
    assert int(answer.headers["content-length"]) == (STATIC_DIR / "js/watch.mjs").stat().st_size


async def test_nothing_outside_the_directory_nor_unknown_files(client: httpx.AsyncClient):
    for path in (
        "/static/nope.js",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/js/",
        "/static/",
    ):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert "application/json" in answer.headers["content-type"], path  # the API's error
    refused = await client.post(static_url("js/watch.mjs"))
    assert refused.status_code == 405
