"""What a patient may send us as a file, decided by its bytes: one check for every channel (the web
chat's uploads, Telegram's photos and documents).

The type is read from the first bytes (magic numbers), never from a file name or a declared
Content-Type / mime_type; SVG and HTML are never accepted, since a browser would run their scripts.
"""

from __future__ import annotations

from dataclasses import dataclass

# (magic prefix, offset, mime, extension, Media.kind)
_SIGNATURES: tuple[tuple[bytes, int, str, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg", "image"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png", "image"),
    (b"GIF87a", 0, "image/gif", "gif", "image"),
    (b"GIF89a", 0, "image/gif", "gif", "image"),
    (b"WEBP", 8, "image/webp", "webp", "image"),  # RIFF....WEBP
    (b"%PDF-", 0, "application/pdf", "pdf", "file"),  # a lab report exported as PDF
)
ACCEPTED = tuple(sorted({sig[2] for sig in _SIGNATURES}))


class UploadRefused(Exception):
    def __init__(self, code: str):  # too_large | bad_type | empty
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Accepted:
    mime: str
    ext: str
    kind: str  # Media.kind: image | file


def sniff(head: bytes) -> tuple[str, str, str] | None:
    """(mime, extension, kind) read from the first bytes, or None for anything not accepted."""
    for magic, offset, mime, ext, kind in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic and (ext != "webp" or head[:4] == b"RIFF"):
            return mime, ext, kind
    return None


def check_upload(data: bytes, max_bytes: int) -> Accepted:
    """The accepted type of `data`, or UploadRefused saying why not (empty, too_large, bad_type)."""
    if not data:
        raise UploadRefused("empty")
    if len(data) > max_bytes:
        raise UploadRefused("too_large")
    found = sniff(data[:16])
    if found is None:
        raise UploadRefused("bad_type")
    return Accepted(*found)


def kind_of(mime: str) -> str:
    return "image" if mime.startswith("image/") else "file"
