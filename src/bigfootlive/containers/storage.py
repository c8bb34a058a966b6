"""Where HLS output and VOD assets go: a local directory or an S3-compatible bucket.

Both are addressed by key (`live/<playback id>/...`, `vod/<event id>/...`) and served to
viewers as `CDN_BASE_URL/<key>`.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bigfootlive.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
}


class Storage(Protocol):
    kind: str

    async def put_file(self, local: Path, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix/`; returns how many (0 when none: idempotent)."""
        ...


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

    async def delete_prefix(self, prefix: str) -> int:
        target = self.path(prefix.strip("/"))
        if target == self.root.resolve():
            raise ValueError("refusing to delete the whole storage root")
        return await asyncio.to_thread(remove_tree, target)


def remove_tree(target: Path) -> int:
    """Delete a directory tree; returns the number of files removed (0 if it is gone)."""
    if not target.is_dir():
        return 0
    count = sum(1 for p in target.rglob("*") if p.is_file())
    shutil.rmtree(target, ignore_errors=True)
    return count


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

    async def delete_prefix(self, prefix: str) -> int:
        def delete_all() -> int:
            deleted = 0
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix.strip("/") + "/"
            )
            for page in pages:
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": item["Key"]} for item in page.get("Contents", [])
                ]
                if keys:  # at most 1,000 per page, the limit of one DeleteObjects call
                    self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
                    deleted += len(keys)
            return deleted

        return await asyncio.to_thread(delete_all)


def make_storage(settings: Settings) -> Storage:
    if settings.recordings_storage == "s3":
        return S3Storage(settings)
    return LocalStorage(Path(settings.recordings_dir))


def hls_dir_for(settings: Settings, event_id: uuid.UUID, playback_id: str) -> Path:
    """Where the event's ffmpeg write: the served tree itself (`live/<playback id>/`) for
    local storage, a scratch dir for S3 (synced to `live/<playback id>/`)."""
    root = Path(settings.recordings_dir)
    if settings.recordings_storage == "local":
        return root / "live" / playback_id
    return root / "work" / str(event_id)


def public_url(settings: Settings, key: str) -> str:
    return f"{settings.cdn_base_url.rstrip('/')}/{key}"


class TreeSync:
    """Uploads new and changed files of a local directory under a key prefix (live HLS)."""

    def __init__(
        self, storage: Storage, local_dir: Path, prefix: str, *, skip: tuple[str, ...] = ()
    ) -> None:
        self.storage = storage
        self.local_dir = local_dir
        self.prefix = prefix.rstrip("/")
        self.skip = skip  # top-level names left out (the DVR window and thumbnail of a VOD)
        self._seen: dict[Path, float] = {}

    async def sync(self, *, playlists_last: bool = True) -> int:
        if not self.local_dir.exists():
            return 0
        files = [p for p in sorted(self.local_dir.rglob("*")) if p.is_file()]
        files = [p for p in files if not p.name.endswith((".part", ".tmp"))]
        files = [p for p in files if p.relative_to(self.local_dir).parts[0] not in self.skip]
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
