"""The terminal adapter behind `carebot chat`.

Buttons show as numbered choices (type the number), `:advance 2h` moves the clock so reminders and
timeouts fire, `:locale en` switches language, `:state` shows what the bot remembers, `:quit` ends.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from typing import TextIO

from bot.adapter import Adapter, Capabilities
from bot.app import CareBot
from bot.clock import ManualClock, OffsetClock
from bot.flow.compiler import parse_duration
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.types import Address, Delivery, Inbound, Outbound

HELP = """commands:  :advance 2h   move the clock (timers fire)     :locale en|zh-CN   switch language
           :state        what the bot remembers          :help              this text
           :quit         leave (the conversation is kept; come back with the same --user)
Type a number to press a button."""


class TerminalAdapter(Adapter):
    channel = "terminal"
    capabilities = Capabilities(ops=frozenset({"say", "notify_staff"}), max_buttons=100)  # a numbered list: any number

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self.buttons: list[tuple[str, str]] = []
        self.n = 0

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        self.n += 1
        who = outbound.sender_name or ("bot" if outbound.sender == "bot" else "staff")
        print(f"\n[{who}] {outbound.text}", file=self.out)
        if outbound.media:
            print(f"        (image: {outbound.media.ref})", file=self.out)
        if outbound.buttons:
            self.buttons = [(b.value, b.label) for b in outbound.buttons]
            for i, b in enumerate(outbound.buttons, 1):
                print(f"   {i}. {b.label}", file=self.out)
        self.out.flush()
        return Delivery(ok=True, platform_message_id=f"t{self.n}")


def run_chat(settings: Settings, user: str = "me", locale: str = "", inp: TextIO = sys.stdin,
             out: TextIO = sys.stdout, clock: OffsetClock | ManualClock | None = None) -> int:
    """Chat in the terminal; `clock` defaults to real time (tests pass a pinned one)."""
    upgrade(settings.database_url)
    return asyncio.run(_chat(settings, user, locale, inp, out, clock or OffsetClock(settings.timezone)))


async def _chat(settings: Settings, user: str, locale: str, inp: TextIO, out: TextIO,
                clock: OffsetClock | ManualClock) -> int:
    adapter = TerminalAdapter(out)
    bot = CareBot.build(settings, [adapter], clock=clock)
    await bot.start(background=False)
    address = Address("terminal", user, user)
    print(f"carebot chat — you are {user!r}. Say hello (你好). Type :help for commands.", file=out)
    n = 0
    try:
        while True:
            print("\n> ", end="", file=out, flush=True)
            line = await asyncio.to_thread(inp.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text.startswith(":"):
                cmd, _, arg = text[1:].partition(" ")
                if cmd in ("quit", "q", "exit"):
                    break
                if cmd == "help":
                    print(HELP, file=out)
                elif cmd == "advance":
                    try:
                        seconds = parse_duration(arg or "1h")
                    except ValueError as exc:
                        print(exc, file=out)
                        continue
                    clock.advance(timedelta(seconds=seconds))
                    print(f"(clock is now {clock.now():%Y-%m-%d %H:%M})", file=out)
                    await bot.timers.tick()
                elif cmd == "locale":
                    locale = arg.strip()
                    print(f"(locale hint set to {locale})", file=out)
                elif cmd == "state":
                    data, _ = await bot.store.load(address.conversation_id)
                    shown = {k: data[k] for k in ("mode", "locale", "slots", "tags", "triage_level")} if data else {}
                    print(json.dumps(shown, ensure_ascii=False, indent=2, default=str), file=out)
                else:
                    print(f"unknown command :{cmd}. {HELP}", file=out)
                await bot.sender.idle()
                continue
            n += 1
            kind, payload = ("command" if text.startswith("/") else "text"), {}
            if text.isdigit() and adapter.buttons and 1 <= int(text) <= len(adapter.buttons):
                value, label = adapter.buttons[int(text) - 1]
                kind, payload, text = "choice", {"value": value}, label
            adapter.buttons = []
            await bot.runtime.handle(Inbound(
                kind=kind, address=address,  # type: ignore[arg-type]
                message_id=f"{user}-{clock.now().timestamp()}-{n}",
                received_at=clock.now(), text=text, payload=payload, locale=locale))
            await bot.sender.idle()
    finally:
        await bot.stop()
    print("\nbye", file=out)
    return 0
