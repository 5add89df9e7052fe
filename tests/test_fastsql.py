"""bot/store/fastsql.py: hot statements bind their parameters through the columns' own processors;
a time column's processor remembers what it converted, and converts exactly as the type does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.fastsql import REMEMBERED_TIMES, FastStatement
from bot.store.store import OUTBOX

T = datetime(2026, 12, 1, 6, 0, 0, 123456, tzinfo=timezone.utc)


def _statement(dialect: sa.engine.Dialect) -> FastStatement:
    return FastStatement(OUTBOX.update().where(OUTBOX.c.id == sa.bindparam("rid")).values(
        sent_at=sa.bindparam("sent_at", type_=OUTBOX.c.sent_at.type)), dialect)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()], ids=["sqlite", "postgresql"])
def test_times_bind_as_the_type_binds_them_remembered_or_not(dialect: sa.engine.Dialect) -> None:
    stmt = _statement(dialect)
    named = type(dialect)(paramstyle="named") if dialect.name == "sqlite" else dialect
    typed = OUTBOX.c.sent_at.type._cached_bind_processor(named)  # the type's own, not remembering
    moments = [T + timedelta(seconds=i) for i in range(REMEMBERED_TIMES + 10)] + [T, T]
    beijing = timezone(timedelta(hours=8))
    for moment in moments + [T.astimezone(beijing)]:  # the same instant elsewhere binds the same
        assert stmt.params({"rid": 1, "sent_at": moment})["sent_at"] == typed(moment)
    assert stmt.params({"rid": 1, "sent_at": None})["sent_at"] is None
    with pytest.raises(ValueError):  # a naive time is refused every time, never remembered
        stmt.params({"rid": 1, "sent_at": T.replace(tzinfo=None)})
    with pytest.raises(ValueError):
        stmt.params({"rid": 1, "sent_at": T.replace(tzinfo=None)})


def test_one_memory_per_type_across_statements() -> None:
    a, b = _statement(sqlite.dialect()), _statement(sqlite.dialect())
    assert a.processors["sent_at"] is b.processors["sent_at"]
