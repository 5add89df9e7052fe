"""Hot-path statements compiled once and run on the DBAPI cursor.

A turn writes four or five rows; through SQLAlchemy's execution machinery each statement costs about
40 µs of Python, on the DBAPI cursor under 10 µs. The statements are still built with SQLAlchemy
(so the SQL is the dialect's own) and their parameters still pass through the column types' bind
processors (so UTCDateTime behaves exactly as everywhere else) — only the per-call machinery is gone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


class FastStatement:
    def __init__(self, stmt: ClauseElement, dialect: Dialect):
        if dialect.name == "sqlite":  # named parameters, so both drivers take a dict
            dialect = type(dialect)(paramstyle="named")
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.processors: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type._cached_bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        # literal values in the statement (status="sent", lease_until=None) travel as parameters too
        self.defaults = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        out = {**self.defaults, **values}
        for name, processor in self.processors.items():
            if name in out:
                out[name] = processor(out[name])
        return out

    def execute(self, conn: Connection, values: dict[str, Any]) -> Any:
        """Run once; returns the cursor (fetchone() for RETURNING, rowcount for UPDATE)."""
        cursor = conn.connection.cursor()
        cursor.execute(self.sql, self.params(values))
        return cursor

    def executemany(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        cursor = conn.connection.cursor()
        cursor.executemany(self.sql, [self.params(r) for r in rows])
        cursor.close()
