"""A tenant's branding on its viewer pages: a display name, a logo and an accent colour.

The logo is a small image kept with the tenant's settings as a data URI (PNG, JPEG or WebP
only, checked by their magic bytes; at most 32 KiB) and served from our own origin, so the
pages' Content-Security-Policy needs no other image origin. The accent colour must keep white
text on it and it on the page background readable (WCAG AA contrast, 4.5:1)."""

from __future__ import annotations

import base64
import binascii
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

LOGO_MAX_BYTES = 32 * 1024
LOGO_TYPES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",),
}
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|webp));base64,([A-Za-z0-9+/=]+)$")
PAGE_BACKGROUND = "#fafafa"
MIN_CONTRAST = 4.5


def _luminance(colour: str) -> float:
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def logo_bytes(data_uri: str) -> tuple[str, bytes]:
    """(media type, image bytes) of a logo data URI; ValueError when it is not an allowed
    image of at most LOGO_MAX_BYTES."""
    found = _DATA_URI.match(data_uri)
    if found is None:
        raise ValueError("the logo must be a PNG, JPEG or WebP image")
    media_type = found.group(1)
    try:
        raw = base64.b64decode(found.group(2), validate=True)
    except binascii.Error as exc:
        raise ValueError("the logo is not valid base64") from exc
    if len(raw) > LOGO_MAX_BYTES:
        raise ValueError(f"the logo must be at most {LOGO_MAX_BYTES // 1024} KiB")
    if not raw.startswith(LOGO_TYPES[media_type]) or (
        media_type == "image/webp" and raw[8:12] != b"WEBP"
    ):
        raise ValueError("the logo's content is not the image type it claims")
    return media_type, raw


def logo_data_uri(media_type: str, raw: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


class Branding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, min_length=1, max_length=100)
    accent_color: str | None = Field(None, description="#rrggbb, readable with white text")
    logo: str | None = Field(
        None, max_length=48_000, description="data:image/png|jpeg|webp;base64,… (≤ 32 KiB)"
    )

    @field_validator("accent_color")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _HEX.match(value):
            raise ValueError("the accent colour must be #rrggbb")
        value = value.lower()
        if min(contrast(value, "#ffffff"), contrast(value, PAGE_BACKGROUND)) < MIN_CONTRAST:
            raise ValueError("the accent colour is too light to read white text on (WCAG AA)")
        return value

    @field_validator("logo")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None:
            logo_bytes(value)
        return value
