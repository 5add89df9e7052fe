"""`carebot db upgrade`: bring a database to the newest schema with Alembic.

Adapters keep tables of their own (the web chat's log and uploads). `bot/` never imports
`adapters/`, so an adapter registers its table module through one documented hook: the
`carebot.tables` entry-point group in its package's metadata, e.g. in `pyproject.toml`

    [project.entry-points."carebot.tables"]
    webchat = "adapters.webchat.models"

`register_tables` imports bot's own table modules and every module named there, so the migration
environment's metadata holds every table (what `alembic revision --autogenerate` compares with).
The revisions themselves live in one chain under `migrations/versions/`, the adapters' included:
the web chat's tables came in as revision 0002, between bot's 0001 and 0003.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config

from bot.store.db import normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"
TABLES_GROUP = "carebot.tables"
# the PostgreSQL advisory lock every carebot process takes to migrate (a fixed 32-bit key)
MIGRATION_LOCK_KEY = zlib.crc32(b"carebot:migrate")
log = logging.getLogger("carebot.store")


def register_tables() -> list[str]:
    """Import every module that defines carebot tables; returns the adapters' module names."""
    import bot.groups.models  # noqa: F401  (moderation log, banlist, reports and appeals)
    import bot.handoff.models  # noqa: F401  (staff, ticket history, reviews, complaints)
    import bot.reminders.models  # noqa: F401  (medication plans, doses, caregiver links)
    import bot.store.models  # noqa: F401  (conversations, inbox, outbox, timers, tickets, events, audit)

    loaded = []
    for entry in sorted(entry_points(group=TABLES_GROUP), key=lambda e: e.name):
        entry.load()
        loaded.append(entry.value)
    return loaded


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> bool:
    """Bring the database to `revision`. N workers starting together migrate once: each takes the
    migration lock (a PostgreSQL advisory lock; a lock on a file beside a SQLite database), and
    those that waited find the schema already there. Returns whether this call changed it."""
    with migration_lock(url):
        before = current(url)
        command.upgrade(alembic_config(url), revision)
        after = current(url)
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return before != after


@contextlib.contextmanager
def migration_lock(url: str) -> Iterator[None]:
    from bot.store.db import make_engine

    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:":
            yield
            return
        import fcntl

        lock_path = Path(path + ".migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            # a session lock: held until unlocked or the connection ends (a killed migrator frees it)
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from bot.store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    return rev
