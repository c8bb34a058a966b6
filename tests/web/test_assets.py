"""The third-party browser files shipped in the package are exactly the pinned ones."""

from __future__ import annotations

import hashlib
import re

from bigfootlive.web.assets import MANIFEST, STATIC_DIR, VENDOR_DIR, manifest


def test_every_vendor_file_matches_its_pinned_sha256() -> None:
    entries = manifest()
    assert {e["package"] for e in entries} == {
        "htmx.org",
        "hls.js",
        "axe-core",
        "uplot",
        "uplot/css",
        "swagger-ui-dist",
        "swagger-ui-dist/css",
    }
    for entry in entries:
        data = (VENDOR_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"] in entry["file"]
        assert entry["tarball"].startswith("https://registry.npmjs.org/")
        assert (VENDOR_DIR / entry["license_file"]).is_file()


def test_no_unlisted_file_in_the_vendor_directory() -> None:
    listed = {e["file"] for e in manifest()} | {e["license_file"] for e in manifest()}
    present = {p.name for p in VENDOR_DIR.iterdir()} - {MANIFEST.name}
    assert present == listed


def test_pages_load_nothing_from_another_origin() -> None:
    """Templates and our scripts name no absolute URL to a script, style or font."""
    templates = STATIC_DIR.parent / "templates"
    text = "".join(p.read_text() for p in [*templates.glob("*.html"), *STATIC_DIR.rglob("*.mjs")])
    assert not re.search(r"""(src|href)=["']https?://""", text)
    assert not re.search(r"""import\s*\(?\s*["']https?://""", text)
    assert "<script>" not in text
    assert "onclick=" not in text
