"""Where HLS output and VOD assets go: a local directory or an S3-compatible bucket.

Both are addressed by key (`live/<playback id>/...`, `vod/<event id>/...`) and served to
viewers as `CDN_BASE_URL/<key>`.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bigfootlive.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
}


class Storage(Protocol):
    kind: str

    async def put_file(self, local: Path, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix, "application/octet-stream")


class LocalStorage:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"key escapes the storage root: {key}")
        return target

    async def put_file(self, local: Path, key: str) -> None:
        await asyncio.to_thread(_copy, local, self.path(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).exists)


def _copy(source: Path, target: Path) -> None:
    if target == source.resolve():
        return  # already in place (local storage serves ffmpeg's own output)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(source, tmp)
    tmp.replace(target)  # readers never see a half-written playlist


class S3Storage:
    """boto3 in worker threads (uploads are few and large; the loop never blocks)."""

    kind = "s3"

    def __init__(self, settings: Settings) -> None:
        import boto3

        kwargs: dict[str, Any] = {"region_name": settings.aws_region}
        if settings.s3_endpoint_url:
            kwargs["endpoint_url"] = settings.s3_endpoint_url
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            kwargs["aws_access_key_id"] = settings.aws_access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
        self.client: S3Client = boto3.client("s3", **kwargs)
        self.bucket = settings.s3_bucket_recordings
        self.acl = settings.s3_object_acl

    async def put_file(self, local: Path, key: str) -> None:
        extra = {"ContentType": content_type(local)}
        if local.suffix == ".m3u8":
            extra["CacheControl"] = "no-cache"
        if self.acl:
            extra["ACL"] = self.acl
        await asyncio.to_thread(
            self.client.upload_file, str(local), self.bucket, key, ExtraArgs=extra
        )

    async def exists(self, key: str) -> bool:
        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.ClientError:
                return False
            return True

        return await asyncio.to_thread(head)


def make_storage(settings: Settings) -> Storage:
    if settings.recordings_storage == "s3":
        return S3Storage(settings)
    return LocalStorage(Path(settings.recordings_dir))


def public_url(settings: Settings, key: str) -> str:
    return f"{settings.cdn_base_url.rstrip('/')}/{key}"


class TreeSync:
    """Uploads new and changed files of a local directory under a key prefix (live HLS)."""

    def __init__(self, storage: Storage, local_dir: Path, prefix: str) -> None:
        self.storage = storage
        self.local_dir = local_dir
        self.prefix = prefix.rstrip("/")
        self._seen: dict[Path, float] = {}

    async def sync(self, *, playlists_last: bool = True) -> int:
        if not self.local_dir.exists():
            return 0
        files = [p for p in sorted(self.local_dir.rglob("*")) if p.is_file()]
        files = [p for p in files if not p.name.endswith((".part", ".tmp"))]
        # Segments before playlists: a playlist never names a segment that is not there yet.
        if playlists_last:
            files.sort(key=lambda p: p.suffix == ".m3u8")
        uploaded = 0
        for path in files:
            mtime = path.stat().st_mtime
            if self._seen.get(path) == mtime:
                continue
            key = f"{self.prefix}/{path.relative_to(self.local_dir).as_posix()}"
            await self.storage.put_file(path, key)
            self._seen[path] = mtime
            uploaded += 1
        return uploaded
