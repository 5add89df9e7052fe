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

from importlib.metadata import entry_points
from pathlib import Path

from alembic import command
from alembic.config import Config

from bot.store.db import normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"
TABLES_GROUP = "carebot.tables"


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


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from bot.store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    return rev
