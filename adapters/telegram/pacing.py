"""Sending at Telegram's pace, shared across workers.

Each Bot API call that sends a message first reserves its moment in `Coord` (memory for one
process, Redis for several), then sleeps until that moment and sends. Nobody tries and backs off: a
broadcast of ten thousand messages books ten thousand moments in one pass and each goes out on
time, however many workers share the budgets.

Two bookings per message: first the chat's budget (and in a group the group's minute), then — at
that moment — the bot's, so a chat that must wait never holds a place in the bot's budget meanwhile
(it would delay every other chat). The chat's moment is therefore kept to within the bot's wait
after it — one spacing when the bot is not saturated, hence the chat budget's margin (3 in 3.1 s
for Telegram's "about one a second"); under a saturated bot a chat's next message may meet a 429,
which is handled like any other. The bot's budget is also spaced evenly (one moment every
1/30 s for 30 a second): Telegram counts sliding windows, and bursts jittered by the network would
cross one.

A moment of the bot's is only good when kept: a sender that wakes late for it (this process was
busy: the messages due meanwhile would go out in a clump and crowd the window a second later) books
again instead. A 429 pushes the budgets back (`Coord.hold_back`): later reservations start after
`retry_after`, on every worker; moments this process had booked before it are booked again on
waking.

A 429 holds only what it concerns. Telegram's answer does not say which limit it met (the Bot API
FAQ names three: about one message a second in a chat, 20 a minute in a group, about 30 a second for
the bot), so the pacer judges by what it sent: a chat that had another message within its own
window (a second, a group's minute) may have met its own limit, and only that chat is held; a chat
that had none cannot have, so the bot's limit was met and every chat is held — as it is when a
second chat meets a 429 while the first one's hold runs (two chats at once is the bot's limit).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Awaitable, Callable, Sequence

from adapters.telegram.config import Rate
from bot.coord import Budget, Coord

LATE = 0.025  # seconds after its moment a sender no longer sends but books again (under the 3% margin)
MAX_LATE = 5  # ...at most this often for one message (a machine that slow meets a 429 instead)
REMEMBERED_CHATS = 10_000  # chats whose last moments a pacer keeps, to tell a chat's 429 from the bot's


class Pacer:
    def __init__(self, coord: Coord, overall: Rate, per_chat: Rate, per_group: Rate, prefix: str = "telegram", *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.coord = coord
        self.overall, self.per_chat, self.per_group = overall, per_chat, per_group
        self.prefix = prefix
        self.clock = clock  # seconds since the epoch: one time for every worker sharing the budgets
        self.sleep = sleep
        all_key = f"{prefix}:all"
        self._bot = (Budget(all_key, overall.count, overall.seconds),  # the bot's budgets, the same for every call
                     Budget(f"{all_key}:even", 1, overall.seconds / overall.count))
        self._held: dict[str, float] = {}  # budget key → until when a 429 seen here holds it
        # chat → its last two moments here (the one that met a 429 and the one before it)
        self._moments: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._chat_held: tuple[str, float] = ("", 0.0)  # the last chat held alone, until when
        self.waited = 0.0  # seconds spent waiting for a moment (metrics, the benchmark)
        self.rebooked = 0  # moments missed by waking late

    def budgets(self, chat_id: str, group: bool) -> tuple[list[Budget], tuple[Budget, ...]]:
        """The chat's budgets and the bot's."""
        chat = [Budget(f"{self.prefix}:chat:{chat_id}", self.per_chat.count, self.per_chat.seconds)]
        if group:
            chat.append(Budget(f"{self.prefix}:group:{chat_id}", self.per_group.count, self.per_group.seconds))
        return chat, self._bot

    async def wait(self, chat_id: str, group: bool) -> float:
        """Return at the moment one more message to `chat_id` keeps within every limit; returns the
        seconds waited."""
        chat, bot = self.budgets(chat_id, group)
        started = self.clock()
        await self._book(chat, punctual=False)
        await self._book(bot, punctual=True)
        now = self.clock()
        self._moments[chat_id] = ((self._moments.get(chat_id) or (0.0, 0.0))[1], now)
        self._moments.move_to_end(chat_id)
        if len(self._moments) > REMEMBERED_CHATS:
            self._moments.popitem(last=False)
        waited = now - started
        self.waited += waited
        return waited

    async def _book(self, budgets: Sequence[Budget], punctual: bool) -> None:
        """Book and sleep until the moment. `punctual`: a late wake books again (the bot's budget,
        whose moments are dense; a chat's are seconds apart and keep their order instead)."""
        late = 0
        while True:
            delay = await self.coord.reserve(budgets, self.clock())
            moment = self.clock() + delay  # from when the answer came: a slow round trip is no lateness
            if delay > 0:
                await self.sleep(delay)
            if any(self._held.get(b.key, 0.0) > moment for b in budgets):
                continue  # a 429 arrived while this moment was booked: book again behind the hold
            if punctual and self.clock() - moment > LATE and late < MAX_LATE:
                late += 1  # woke late: book again
                self.rebooked += 1
                continue
            return

    def scope(self, chat_id: str, group: bool, at: float) -> str:
        """Which limit a 429 on a message to `chat_id` met: "chat" when the chat had another message
        within its own window before this one (and no other chat is being held for a 429 now),
        else "bot"."""
        before = (self._moments.get(chat_id) or (0.0, 0.0))[0]
        window = max(self.per_chat.seconds, self.per_group.seconds if group else 0.0)
        other, until = self._chat_held
        if other and other != chat_id and until > at:
            return "bot"  # a second chat meets a 429 while the first is held: the bot's limit
        return "chat" if before and at - before < window else "bot"

    async def hold(self, chat_id: str, group: bool, seconds: float) -> str:
        """Telegram answered 429 `retry_after`: nothing more to what it concerns before it has
        passed — the chat alone, or the whole bot (`scope`). Returns the scope held."""
        at = self.clock()
        chat, bot = self.budgets(chat_id, group)
        scope = self.scope(chat_id, group, at)
        if chat_id in self._moments:  # the refused message was not sent: its retry is judged by the one before
            self._moments[chat_id] = (0.0, self._moments[chat_id][0])
        if scope == "chat":
            self._chat_held = (chat_id, at + seconds)
        keys = [b.key for b in (chat if scope == "chat" else [*chat, *bot])]
        for key in keys:
            self._held[key] = max(self._held.get(key, 0.0), at + seconds)
        await self.coord.hold_back(keys, seconds, at)
        if len(self._held) > 1024:
            self._held = {k: until for k, until in self._held.items() if until > at}
        return scope
