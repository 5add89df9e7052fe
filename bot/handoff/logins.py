"""Staff sign-ins kept in the database: console sessions ended at logout, and sign-in throttling.

Both hold across restarts and across workers, with or without Redis.

Throttling is per client (IP address) and account: `FREE_TRIES` wrong passwords, then the client
waits `FIRST_LOCK` before its next try on that account, twice as long after each further failure,
at most `MAX_LOCK`. Nothing locks the account itself, so a stranger's guesses never keep the real
doctor (on another address) out; and one client guessing across many accounts is slowed too
(`CLIENT_FAILURES` in `CLIENT_WINDOW`). A right password clears that client's record for the account.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bot.handoff.models import StaffLoginThrottle, StaffSessionRevoked

if TYPE_CHECKING:
    from bot.store.store import Store

REVOKED = StaffSessionRevoked.__table__
THROTTLE = StaffLoginThrottle.__table__
FREE_TRIES = 5
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)
CLIENT_FAILURES = 30  # wrong passwords from one client, over every account …
CLIENT_WINDOW = timedelta(minutes=15)  # … within this long …
CLIENT_LOCK = timedelta(minutes=1)  # … make it wait this long after its latest one


def lock_after(failures: int) -> timedelta:
    """How long a client waits after its `failures`-th wrong password for one account."""
    if failures < FREE_TRIES:
        return timedelta(0)
    return min(MAX_LOCK, FIRST_LOCK * 2 ** (failures - FREE_TRIES))


class StaffLogins:
    def __init__(self, store: Store):
        self.store = store

    async def revoke(self, nonce: str, until: datetime) -> None:
        """End the session with this nonce (logout); rows of sessions past `until` are pruned."""
        def write(conn: sa.Connection) -> None:
            conn.execute(REVOKED.delete().where(REVOKED.c.expires_at < until - timedelta(days=30)))
            if conn.execute(sa.select(REVOKED.c.nonce).where(REVOKED.c.nonce == nonce)).first() is None:
                conn.execute(REVOKED.insert().values(nonce=nonce, expires_at=until))

        await self.store.write(write)

    async def revoked(self, nonce: str, now: datetime) -> bool:
        return bool(await self.store.read(lambda c: c.execute(sa.select(REVOKED.c.nonce).where(
            REVOKED.c.nonce == nonce, REVOKED.c.expires_at > now)).first()))

    async def wait(self, client: str, staff_id: str, now: datetime) -> float:
        """Seconds this client must wait before trying this account (0: it may try now)."""
        def read(conn: sa.Connection) -> float:
            row = conn.execute(sa.select(THROTTLE.c.locked_until).where(
                THROTTLE.c.client == client, THROTTLE.c.staff_id == staff_id)).first()
            waits = [(row.locked_until - now).total_seconds()] if row is not None and row.locked_until else []
            recent = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(THROTTLE.c.failures), 0),
                                            sa.func.max(THROTTLE.c.last_failed_at)).where(
                THROTTLE.c.client == client, THROTTLE.c.last_failed_at > now - CLIENT_WINDOW)).first()
            if recent is not None and recent[0] >= CLIENT_FAILURES and recent[1] is not None:
                waits.append((recent[1] + CLIENT_LOCK - now).total_seconds())
            return max([0.0, *waits])

        return float(await self.store.read(read))

    async def failed(self, client: str, staff_id: str, now: datetime) -> None:
        """Count a wrong password; from the `FREE_TRIES`-th on, the client is made to wait."""
        def write(conn: sa.Connection) -> None:
            key = (THROTTLE.c.client == client) & (THROTTLE.c.staff_id == staff_id)
            row = conn.execute(sa.select(THROTTLE.c.failures, THROTTLE.c.last_failed_at).where(key)).first()
            # a record quiet for longer than the longest lock starts again from nothing
            failures = 1 if row is None or row.last_failed_at < now - MAX_LOCK - CLIENT_WINDOW else row.failures + 1
            lock = lock_after(failures)
            values = dict(failures=failures, last_failed_at=now, locked_until=now + lock if lock else None)
            if row is None:
                conn.execute(THROTTLE.insert().values(client=client, staff_id=staff_id, **values))
            else:
                conn.execute(THROTTLE.update().where(key).values(**values))

        await self.store.write(write)

    async def succeeded(self, client: str, staff_id: str) -> None:
        await self.store.write(lambda conn: conn.execute(THROTTLE.delete().where(
            THROTTLE.c.client == client, THROTTLE.c.staff_id == staff_id)))
