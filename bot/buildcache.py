"""A start-up cache of what is slow to build and never changes between two starts: the compiled
triage rules (~1,000 regexes checked, ~13,000 phrases canonicalised) and the learned models' weights.

An entry is keyed by a SHA-256 of everything its value is built from — the source files (rules,
model files) and the code that reads them (the reader's modules, carebot's and Python's versions) —
so an edited rule file, a retrained model or an upgrade builds afresh. An entry is written atomically
(a temporary file renamed into place) after a build that succeeded; a rule file with a problem is
never cached, so `carebot validate` and a failing start always read the files themselves.
On reading, an entry is checked before use: its header must name the same key and format, and its
payload must hash to the digest in the header. A missing, stale, truncated or corrupt entry is
ignored and rebuilt; a cache directory that cannot be written costs only the speed.

Where: `$CAREBOT_CACHE_DIR`, else `$XDG_CACHE_HOME/carebot`, else `~/.cache/carebot`.
`CAREBOT_CACHE_DIR=off` turns the cache off. The cache holds pickles: keep the directory writable by
the service's user only (as `~/.cache` is).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

log = logging.getLogger("carebot.buildcache")
T = TypeVar("T")
FORMAT = b"carebot-buildcache-1\n"
KEEP = 4  # entries kept per kind
_CODE_ROOT = Path(__file__).resolve().parent


def cache_dir() -> Path | None:
    """The cache directory, or None when the cache is off."""
    configured = os.environ.get("CAREBOT_CACHE_DIR", "").strip()
    if configured.lower() in ("off", "0", "no", "false"):
        return None
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "carebot"


def key_of(kind: str, files: Iterable[Path], code: Iterable[str], extra: Iterable[str] = ()) -> str:
    """A SHA-256 over the kind, Python's and carebot's versions, the given code modules (paths under
    `bot/`) and files (path and bytes, in the order given), and any extra strings."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()

    def add(part: bytes) -> None:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)

    try:
        carebot_version = version("carebot")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        carebot_version = "source"
    for part in (FORMAT.decode(), kind, sys.version, carebot_version, *extra):
        add(part.encode())
    for module in code:
        add(module.encode())
        add((_CODE_ROOT / module).read_bytes())
    for path in files:
        add(str(path).encode())
        add(path.read_bytes())
    return digest.hexdigest()


def cached(kind: str, key: str, build: Callable[[], T], valid: Callable[[Any], bool]) -> T:
    """The value stored under (kind, key) if a sound entry is there and `valid` accepts it; else
    `build()` — whose result is stored when it returns (an exception is raised as it is, unstored)."""
    directory = cache_dir()
    if directory is None:
        return build()
    path = directory / f"{kind}-{key[:32]}.pickle"
    value = _read(path, key)
    if value is not None:
        try:
            if valid(value):
                return value
        except Exception:  # noqa: BLE001 - a wrongly shaped entry is rebuilt
            pass
        log.warning("start-up cache %s did not hold what was expected; rebuilding it", path)
    value = build()
    _write(path, kind, key, value)
    return value


def load(kind: str, key: str) -> Any:
    """The value stored under (kind, key), or None (no sound entry, or the cache is off)."""
    directory = cache_dir()
    return None if directory is None else _read(directory / f"{kind}-{key[:32]}.pickle", key)


def store(kind: str, key: str, value: Any) -> None:
    """Store `value` under (kind, key) (a cache that is off or cannot be written costs only the speed)."""
    directory = cache_dir()
    if directory is not None:
        _write(directory / f"{kind}-{key[:32]}.pickle", kind, key, value)


class Memo:
    """What is derived from a piece of source text alone (a template's compiled code, the names it
    reads), kept between starts: `get(item, make)` answers from the entry read at the first call, or
    calls `make(item)` — whose exception propagates, unstored. `save()` writes what this process used
    (so entries for text no longer loaded drop out) when anything was new. The entry's key covers
    only the code that derives the values (`code`, `extra`): the items themselves are the dict's keys."""

    def __init__(self, kind: str, code: Iterable[str], extra: Iterable[str] = ()):
        self.kind, self._code, self._extra = kind, tuple(code), tuple(extra)
        self._stored: dict[Any, Any] | None = None
        self._used: dict[Any, Any] = {}
        self._new = False

    def _key(self) -> str:
        return key_of(self.kind, (), self._code, self._extra)

    def get(self, item: Any, make: Callable[[Any], T]) -> T:
        if self._stored is None:
            loaded = load(self.kind, self._key()) if cache_dir() is not None else None
            self._stored = loaded if isinstance(loaded, dict) else {}
        try:
            value = self._stored[item]
        except KeyError:
            value = make(item)
            self._new = True
        self._used[item] = value
        return value

    def save(self) -> None:
        if self._new:
            store(self.kind, self._key(), self._used)
            self._stored, self._new = dict(self._used), False


def _read(path: Path, key: str) -> Any:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        header_end = data.index(b"\n", len(FORMAT))
        header = data[:header_end].decode("ascii")
        entry_key, digest = header[len(FORMAT.decode()):].split(" ")
        payload = data[header_end + 1:]
        if not data.startswith(FORMAT) or entry_key != key or hashlib.sha256(payload).hexdigest() != digest:
            raise ValueError("stale or damaged")
        return pickle.loads(payload)
    except Exception:  # noqa: BLE001 - corrupt, truncated, from another version: ignored and rebuilt
        log.warning("start-up cache %s is stale or damaged; rebuilding it", path)
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _write(path: Path, kind: str, key: str, value: Any) -> None:
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(FORMAT + f"{key} {hashlib.sha256(payload).hexdigest()}\n".encode("ascii") + payload)
            os.replace(tmp, path)  # readers see the old entry or the whole new one, never half of it
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # keep the few newest entries of this kind (one per content directory in use, say); drop older ones
        entries = sorted(path.parent.glob(f"{kind}-*.pickle"), key=_mtime, reverse=True)
        for old in entries[KEEP:]:
            if old != path:
                with contextlib.suppress(OSError):
                    old.unlink()
    except Exception as err:  # noqa: BLE001 - a read-only or full disk costs only the speed
        log.info("start-up cache %s not written: %s", path, err)
