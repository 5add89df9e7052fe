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
from sqlalchemy.sql import ClauseElement, sqltypes


REMEMBERED_TIMES = 256  # converted times a time column's processor keeps (then it starts afresh)
_remembering: dict[Any, Any] = {}  # (time type, its zone flag, dialect, driver) → its remembering processor


def _remember_times(processor: Any, key: Any) -> Any:
    """A time column's bind processor that remembers what it converted: one turn binds the same few
    moments (its `now`) in several rows and statements, and converting an aware datetime to the
    driver's value (to UTC, then SQLite's text) costs more than the rest of binding a row. Equal
    aware datetimes are the same instant, so they convert alike; None and naive times (which the
    processor refuses) are never remembered."""
    wrapped = _remembering.get(key)
    if wrapped is not None:
        return wrapped
    seen: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        if value is None:
            return None
        out = seen.get(value, seen)
        if out is seen:
            out = processor(value)
            if len(seen) >= REMEMBERED_TIMES:
                seen.clear()
            seen[value] = out
        return out

    _remembering[key] = process
    return process


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
                impl = getattr(bind.type, "impl_instance", None) or bind.type
                if isinstance(impl, sqltypes.DateTime):  # one memory for the type on this dialect
                    processor = _remember_times(processor, (type(bind.type), impl.timezone, dialect.name,
                                                            dialect.driver))
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


def _pg_array(column: Any) -> str:
    """The PostgreSQL array type a column's values travel in (unnest casts them back)."""
    t = column.type
    t = getattr(t, "impl_instance", None) or getattr(t, "impl", t)
    if isinstance(t, sqltypes.Boolean):
        return "boolean[]"
    if isinstance(t, sqltypes.Integer):
        return "bigint[]"
    if isinstance(t, sqltypes.DateTime):
        return "timestamptz[]"
    return "text[]"


class BulkInsert:
    """Many rows in one statement, for batches (a hundred doses at once).

    PostgreSQL: `INSERT … SELECT * FROM unnest(%(col)s::type[], …)` — one round trip and one statement
    text whatever the batch size, so the server prepares it once. SQLite: row by row on the DBAPI
    cursor (a local call). Values pass through the columns' bind processors as in FastStatement.
    `execute` returns, for each input row in order, the RETURNING tuple, or None when ON CONFLICT
    DO NOTHING skipped it; PostgreSQL's RETURNING order is not promised, so rows are matched back by
    `key` (columns that identify a row, included in what is returned)."""

    def __init__(self, table: Any, columns: list[str], dialect: Dialect, *, returning: tuple[str, ...] = (),
                 key: tuple[str, ...] = (), on_conflict: tuple[str, ...] = ()):
        self.columns = columns
        self.returning = returning
        self.key = key
        self.pg = dialect.name == "postgresql"
        self.processors = {c: p for c in columns
                           if (p := table.c[c].type._cached_bind_processor(dialect)) is not None}
        if self.pg:
            quote = dialect.identifier_preparer.quote
            # %b: arrays travel in binary, with no per-element text escaping (that was most of the time)
            arrays = ", ".join(f"%({c})b::{_pg_array(table.c[c])}" for c in columns)
            sql = f"INSERT INTO {quote(table.name)} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
            if on_conflict:
                sql += f" ON CONFLICT ({', '.join(on_conflict)}) DO NOTHING"
            if returning:
                sql += " RETURNING " + ", ".join(dict.fromkeys(returning + key))
            self.sql = sql
            self._key_at = [list(dict.fromkeys(returning + key)).index(k) for k in key]
        else:
            from sqlalchemy import bindparam
            from sqlalchemy.dialects.sqlite import insert

            stmt: Any = insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in columns})
            if on_conflict:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(on_conflict))
            if returning:
                stmt = stmt.returning(*(table.c[c] for c in returning))
            self.single = FastStatement(stmt, dialect)

    def execute(self, conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[Any, ...] | None]:
        return self.collect(self.send(conn, rows))

    def send(self, conn: Connection, rows: list[dict[str, Any]]) -> Any:
        """Run the insert and leave its result unread: inside a psycopg pipeline the statement is only
        queued, so several statements share one round trip; `collect` reads what it returned."""
        if not rows:
            return None
        cursor = conn.connection.cursor()
        if not self.pg:
            try:
                out: list[tuple[Any, ...] | None] = []
                for row in rows:
                    cursor.execute(self.single.sql, self.single.params(row))
                    got = cursor.fetchone() if self.returning else None
                    out.append(tuple(got) if got is not None else None)
                return out, None, None
            finally:
                cursor.close()
        params = {c: [self.processors[c](r[c]) if c in self.processors else r[c] for r in rows]
                  for c in self.columns}
        try:
            cursor.execute(self.sql, params)
        except BaseException:
            cursor.close()
            raise
        return None, cursor, (params, len(rows))

    def collect(self, sent: Any) -> list[tuple[Any, ...] | None]:
        """For each row given to `send`, in order, the RETURNING tuple, or None when ON CONFLICT
        skipped it (or nothing is returned)."""
        if sent is None:
            return []
        done, cursor, rest = sent
        if cursor is None:
            return done
        params, count = rest
        try:
            if not self.returning:
                return [None] * count
            n = len(self.returning)
            found: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
            for got in cursor.fetchall():
                found.setdefault(tuple(got[i] for i in self._key_at), []).append(tuple(got[:n]))
            result: list[tuple[Any, ...] | None] = []
            for i in range(count):
                k = tuple(params[c][i] for c in self.key)
                match = found.get(k)
                result.append(match.pop(0) if match else None)
            return result
        finally:
            cursor.close()


class BulkUpdate:
    """Many rows, each with its own values, in one PostgreSQL statement:
    `UPDATE t SET c = v.c, … FROM unnest(%(c)b::type[], …) AS v(…) WHERE t.k = v.k …`. `match` names
    the parameters that pick a row (parameter → column), `columns` those written; `extra` is more
    SET text (`status = 'sent'`), `only` more WHERE text (`t.status = 'pending'`). `execute` returns the values of `returning` (a column of the table)
    of the rows it wrote, as a list (a row whose match failed is simply absent)."""

    def __init__(self, table: Any, match: dict[str, str], columns: list[str], dialect: Dialect, *,
                 extra: str = "", only: str = "", returning: str = ""):
        quote = dialect.identifier_preparer.quote
        self.params = list(match) + columns
        column_of = {**match, **{c: c for c in columns}}
        self.processors = {p: proc for p in self.params
                           if (proc := table.c[column_of[p]].type._cached_bind_processor(dialect)) is not None}
        arrays = ", ".join(f"%({p})b::{_pg_array(table.c[column_of[p]])}" for p in self.params)
        sets = [f"{quote(c)} = v.{quote(c)}" for c in columns] + ([extra] if extra else [])
        where = " AND ".join([f"t.{quote(col)} = v.{quote(p)}" for p, col in match.items()] + ([only] if only else []))
        self.sql = (f"UPDATE {quote(table.name)} AS t SET {', '.join(sets)} FROM unnest({arrays}) "
                    f"AS v({', '.join(quote(p) for p in self.params)}) WHERE {where}")
        if returning:
            self.sql += f" RETURNING t.{quote(returning)}"
        self.returning = returning

    def execute(self, conn: Connection, rows: list[dict[str, Any]]) -> list[Any]:
        params = {p: [self.processors[p](r[p]) if p in self.processors else r[p] for r in rows]
                  for p in self.params}
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, params)
            return [r[0] for r in cursor.fetchall()] if self.returning else []
        finally:
            cursor.close()
