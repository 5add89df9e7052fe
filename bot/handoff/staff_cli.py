"""`carebot staff …`: the operator's commands for console accounts.

    carebot staff add d_wang --name 王建国 --title 主任医师 --department dermatology
    carebot staff list [--at 2026-03-07T22:00+08:00]   roles, departments, active, on shift and on call
    carebot staff deactivate d_wang        cannot sign in any more; open sessions end
    carebot staff activate d_wang
    carebot staff reset-password d_wang    asked, or $CAREBOT_STAFF_PASSWORD, or --password

A department must be one of `content/handoff.yml` (its `departments:`); a misspelt one is refused
with the nearest names, since a doctor in a department nobody routes to would never see a ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import getpass
import os
import sys
from pathlib import Path
from typing import Any, Callable

ACTIONS = ("add", "list", "deactivate", "activate", "reset-password")


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("staff", help="staff accounts for the console: " + ", ".join(ACTIONS))
    common(p)
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("id", nargs="?", help="login name, e.g. d_wang")
    p.add_argument("--name", help="shown to patients, e.g. 王建国")
    p.add_argument("--title", default="", help="e.g. 主任医师")
    p.add_argument("--role", default="doctor", help="admin, operator, doctor, assistant, customer_service")
    p.add_argument("--department", action="append", help="a department id of content/handoff.yml (repeat for several)")
    p.add_argument("--password", help="default: $CAREBOT_STAFF_PASSWORD, else asked")
    p.add_argument("--at", help="list: who is on shift and on call at this ISO time (default: now)")
    p.add_argument("--database-url")
    p.set_defaults(fn=run)


def department_problems(given: list[str], known: list[str], content_dir: Path = Path("content")) -> list[str]:
    """One line per unknown department, with the nearest known names."""
    if given and not known:
        where = content_dir / "handoff.yml"
        state = "defines no departments" if where.is_file() else "does not exist"
        return [f"department {given[0]!r}: {where.resolve()} {state}; run carebot in the project folder "
                f"or give --content DIR (or CAREBOT_CONTENT) naming the folder with handoff.yml"]
    problems = []
    for d in given:
        if d in known:
            continue
        near = difflib.get_close_matches(d, known, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
        problems.append(f"department {d!r} is not in content/handoff.yml; {hint}known: {', '.join(known)}")
    return problems


def run(args: argparse.Namespace) -> int:
    from bot.app import CareBot
    from bot.cli import _settings
    from bot.handoff.staff import HandoffError
    from bot.store.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.database_url)
    name = f"carebot staff {args.action}"
    if args.action != "list" and not args.id:
        print(f"{name}: give the staff id, e.g. {name} d_wang", file=sys.stderr)
        return 2

    async def go() -> int:
        bot = CareBot.build(settings, [])
        try:
            handoff = bot.config.handoff
            accounts = bot.handoff.accounts
            if args.action == "list":
                return await _list(bot, args.at)
            if args.action in ("deactivate", "activate"):
                await accounts.set_active(args.id, args.action == "activate")
                print(f"{args.action}d {args.id}")
                return 0
            if args.action == "add":
                problems = department_problems(args.department or [], list(handoff.departments), settings.content_dir)
                if problems:
                    for p in problems:
                        print(f"{name}: {p}", file=sys.stderr)
                    return 1
            password = args.password or os.environ.get("CAREBOT_STAFF_PASSWORD") or _ask_password(name, args.id)
            if password is None:
                return 1
            if args.action == "add":
                await bot.handoff.add_staff(args.id, args.name or args.id, args.role, password, title=args.title,
                                            departments=args.department or [])
                print(f"added {args.role} {args.id}")
            else:
                await accounts.set_password(args.id, password)
                print(f"new password set for {args.id}")
            return 0
        except HandoffError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        finally:
            await bot.stop()

    return asyncio.run(go())


def _ask_password(name: str, staff_id: str) -> str | None:
    """The password typed twice at a terminal; without one, say how else to give it (never a traceback)."""
    if not sys.stdin.isatty():
        print(f"{name}: no password for {staff_id}: run this in a terminal, or pass --password, or set "
              "CAREBOT_STAFF_PASSWORD", file=sys.stderr)
        return None
    try:
        first = getpass.getpass(f"password for {staff_id}: ")
        again = getpass.getpass("the same password again: ")
    except (EOFError, KeyboardInterrupt):
        print(f"{name}: no password given; nothing changed", file=sys.stderr)
        return None
    if first != again:
        print(f"{name}: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


async def _list(bot: Any, at: str | None) -> int:
    from datetime import datetime

    handoff, now = bot.config.handoff, bot.clock.now()
    if at:
        try:
            now = datetime.fromisoformat(at)
        except ValueError:
            print(f"carebot staff list: --at {at!r} is not an ISO time such as 2026-03-07T22:00+08:00", file=sys.stderr)
            return 2
        if now.tzinfo is None:
            now = now.replace(tzinfo=bot.clock.tz)
    on_call = {s.staff for s in handoff.on_call.on_duty(now)} if handoff.on_call else set()
    print("id\trole\tname\tdepartments\tactive\ton shift now\ton call now")
    for member, active in await bot.handoff.accounts.everyone():
        shift = [d for d in member.departments if member.id in handoff.roster.on_duty(d, now)]
        print("\t".join((member.id, member.role, member.signature, ",".join(member.departments) or "-",
                         "yes" if active else "no", ",".join(shift) or "-",
                         "yes" if member.id in on_call else "-")))
    return 0
