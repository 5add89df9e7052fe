"""Database engines: SQLite (WAL) by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.store.checkpoint import HARD_PAGES

log = logging.getLogger("carebot.store")


def normalize_url(url: str) -> str:
    """Accept the URLs people paste: postgres://, postgresql:// → psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, *, pool_size: int = 8, sqlite_synchronous: str = "NORMAL") -> Engine:
    """`hide_parameters`: a database error never carries the statement's values (patient text)
    into an exception message, and so into a log."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size, hide_parameters=True,
            max_overflow=4, poolclass=sa.pool.QueuePool if path != ":memory:" else sa.pool.StaticPool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy (not pysqlite) decide when transactions begin, so SAVEPOINT works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a killed process loses nothing committed; a power cut may lose
            # the last transactions but never corrupts. Set CAREBOT_SQLITE_SYNCHRONOUS=FULL to
            # fsync every commit.
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Checkpoints (copying the WAL back, with an fsync) run in the Checkpointer's thread,
            # not inside a commit on the event loop, where one took tens of milliseconds; a commit
            # checkpoints only if that thread fell HARD_PAGES behind (bot/store/checkpoint.py).
            cur.execute(f"PRAGMA wal_autocheckpoint={HARD_PAGES}")

            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # The writer takes the write lock up front so its batch never fails half-way on
            # SQLITE_BUSY; readers begin deferred and never block the writer (WAL).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("writer") else "BEGIN")

        return engine
    # a database that went away fails a connection or a statement within seconds instead of
    # leaving it waiting on TCP's minutes-long timeouts: callers answer "unavailable" and retry
    return sa.create_engine(url, pool_size=pool_size, max_overflow=4, pool_pre_ping=True, hide_parameters=True,
                            connect_args=PG_CONNECT_ARGS)


PG_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                   "keepalives_count": 3, "tcp_user_timeout": 15_000}


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
