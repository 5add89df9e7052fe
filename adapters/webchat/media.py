"""Uploads: a photo of a report or of the skin, checked by content with the one check every channel
uses (`bot/uploads.py`: the type read from the bytes, never the name or Content-Type). Files live
under the media directory; a `webchat_media` row says which conversation a file belongs to, and
only that conversation (or staff) may read it."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from adapters.webchat.models import WebchatMedia
from bot.store.store import Store
from bot.uploads import UploadRefused, check_upload, kind_of, sniff

__all__ = ["MediaStore", "StoredMedia", "UploadRefused", "kind_of", "sniff"]

MEDIA = WebchatMedia.__table__


@dataclass(frozen=True)
class StoredMedia:
    id: str
    conversation_id: str
    path: Path
    mime: str
    size: int
    kind: str  # Media.kind: image | file


class MediaStore:
    def __init__(self, store: Store, directory: Path, max_bytes: int):
        self.store = store
        self.directory = directory
        self.max_bytes = max_bytes

    async def save(self, conversation_id: str, data: bytes, now: datetime, org: str = "default") -> StoredMedia:
        accepted = check_upload(data, self.max_bytes)
        mime, ext, kind = accepted.mime, accepted.ext, accepted.kind
        media_id = secrets.token_hex(16)
        relative = f"{media_id[:2]}/{media_id}.{ext}"
        path = self.directory / relative

        def write_file() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(write_file)
        await self.store.write(lambda conn: conn.execute(MEDIA.insert().values(
            id=media_id, org=org, conversation_id=conversation_id, path=relative, mime=mime, size=len(data),
            created_at=now)))
        return StoredMedia(media_id, conversation_id, path, mime, len(data), kind)

    async def get(self, media_id: str) -> StoredMedia | None:
        if not (len(media_id) == 32 and all(c in "0123456789abcdef" for c in media_id)):
            return None
        row = await self.store.read(lambda conn: conn.execute(sa.select(MEDIA).where(MEDIA.c.id == media_id)).first())
        if row is None:
            return None
        return StoredMedia(row.id, row.conversation_id, self.directory / row.path, row.mime, row.size, kind_of(row.mime))

    async def erase(self, conversation_id: str) -> int:
        """Delete the conversation's uploads, files and rows; returns how many."""

        paths = await self.store.write(lambda conn: list(conn.execute(MEDIA.delete().where(
            MEDIA.c.conversation_id == conversation_id).returning(MEDIA.c.path)).scalars()))

        def unlink() -> None:
            for relative in paths:
                (self.directory / relative).unlink(missing_ok=True)

        await asyncio.to_thread(unlink)
        return len(paths)
