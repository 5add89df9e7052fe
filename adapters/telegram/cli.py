"""`carebot telegram set-webhook | delete-webhook | info | poll | link-staff | unlink-staff | staff`
(docs/telegram.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from adapters.telegram.config import TelegramConfig
from adapters.telegram.integrations import UPDATE_KINDS
from bot.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot telegram", description="the Telegram bot's webhook and polling; "
                                     "reads CAREBOT_TELEGRAM_* (docs/telegram.md)")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("set-webhook", help="register CAREBOT_TELEGRAM_PUBLIC_URL + the webhook path with Telegram")
    p.add_argument("--url", help="the full https:// URL (default: $CAREBOT_TELEGRAM_PUBLIC_URL/telegram/webhook)")
    p.add_argument("--drop-pending", action="store_true", help="forget updates Telegram holds for the bot")
    p = sub.add_parser("delete-webhook", help="stop webhook delivery (before polling)")
    p.add_argument("--drop-pending", action="store_true")
    sub.add_parser("info", help="the bot and its webhook as Telegram sees them (JSON)")
    p = sub.add_parser("poll", help="long polling for development: carebot and the bot in this terminal")
    p.add_argument("--once", action="store_true", help="one getUpdates round, then exit")
    p = sub.add_parser("link-staff", help="let a Telegram user act in the staff group as a staff account")
    p.add_argument("telegram_user_id", type=int, help="their numeric Telegram id (the staff group tells an "
                   "unlinked person theirs)")
    p.add_argument("staff_id", help="the console account, e.g. d_wang")
    p = sub.add_parser("unlink-staff", help="a Telegram user no longer acts for staff")
    p.add_argument("telegram_user_id", type=int)
    sub.add_parser("staff", help="the linked Telegram users (JSON)")
    return parser


def run_telegram_cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.action in ("link-staff", "unlink-staff", "staff"):  # the database only: no token needed
        return asyncio.run(_staff_links(args))
    try:
        config = TelegramConfig.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"carebot telegram: {problem}", file=sys.stderr)
        return 1
    if config is None:
        print("carebot telegram: set CAREBOT_TELEGRAM_TOKEN (BotFather's token) first", file=sys.stderr)
        return 1
    return asyncio.run(_run(args, config))


async def _run(args: argparse.Namespace, config: TelegramConfig) -> int:
    from aiogram.exceptions import TelegramAPIError

    from adapters.telegram.adapter import TelegramAdapter

    if args.action == "poll":
        return await _poll(config, once=args.once)
    adapter = TelegramAdapter(config)
    try:
        if args.action == "set-webhook":
            if not config.webhook_secret:
                print("carebot telegram: set CAREBOT_TELEGRAM_WEBHOOK_SECRET (1-256 of A-Z a-z 0-9 _ -): the "
                      "webhook refuses requests without it", file=sys.stderr)
                return 1
            url = args.url or (config.public_url + config.webhook_path if config.public_url else "")
            if not url.startswith("https://"):
                print("carebot telegram: give --url https://… or set CAREBOT_TELEGRAM_PUBLIC_URL", file=sys.stderr)
                return 1
            await adapter.bot.set_webhook(url, secret_token=config.webhook_secret, allowed_updates=list(UPDATE_KINDS),
                                          drop_pending_updates=args.drop_pending or None)
            print(f"webhook set: {url}")
        elif args.action == "delete-webhook":
            await adapter.bot.delete_webhook(drop_pending_updates=args.drop_pending or None)
            print("webhook deleted")
        else:
            me = await adapter.bot.get_me()
            info = await adapter.bot.get_webhook_info()
            print(json.dumps({"bot": {"id": me.id, "username": me.username,
                                      "can_read_all_group_messages": me.can_read_all_group_messages},
                              "webhook": info.model_dump(mode="json", exclude_none=True)}, ensure_ascii=False))
    except TelegramAPIError as exc:
        print(f"carebot telegram {args.action}: Telegram said: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await adapter.bot.session.close()
    return 0


async def _poll(config: TelegramConfig, *, once: bool) -> int:
    from dataclasses import replace

    from aiogram.exceptions import TelegramConflictError

    from adapters import default_adapters
    from adapters.telegram.adapter import TelegramAdapter
    from adapters.telegram.polling import Poller
    from bot.app import CareBot
    from bot.settings import Settings
    from bot.store.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    adapter = TelegramAdapter(replace(config, webhook_secret=""))  # no webhook route while polling
    others = [a for a in default_adapters(settings) if a.channel != adapter.channel]
    bot = CareBot.build(settings, [*others, adapter])
    await bot.start()
    try:
        poller = Poller(adapter, timeout=0 if once else 30)
        if once:
            print(f"{await poller.poll_once()} update(s)")
        else:
            print(f"polling as @{adapter.username or '?'} — Ctrl-C to stop", flush=True)
            await poller.run()
    except TelegramConflictError:
        print("carebot telegram poll: a webhook is set; run `carebot telegram delete-webhook` first", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await bot.stop()
    return 0


async def _staff_links(args: argparse.Namespace) -> int:
    """Which Telegram user acts as which staff account (the `telegram_staff` table), audited."""
    import sqlalchemy as sa

    from adapters.telegram.models import TelegramStaff
    from adapters.telegram.staff import StaffDesk
    from bot.clock import Clock
    from bot.handoff import tickets
    from bot.handoff.models import Staff
    from bot.settings import Settings
    from bot.store.migrate import upgrade
    from bot.store.store import Store

    settings = Settings.from_env()
    upgrade(settings.database_url)
    store = Store(settings.database_url)
    links, staff = TelegramStaff.__table__, Staff.__table__
    now = Clock(settings.timezone).now()
    try:
        if args.action == "staff":
            rows = await store.read(lambda c: c.execute(sa.select(links.c.telegram_user_id, links.c.staff_id).order_by(
                links.c.staff_id)).all())
            print(json.dumps([{"telegram_user_id": int(r.telegram_user_id), "staff_id": r.staff_id} for r in rows]))
            return 0
        if args.action == "unlink-staff":
            gone = await store.write(lambda c: c.execute(links.delete().where(
                links.c.telegram_user_id == str(args.telegram_user_id))).rowcount)
            if gone:
                await store.write(lambda c: tickets.audit(c, now, "telegram_unlinked", str(args.telegram_user_id), {}))
            print(f"unlinked {args.telegram_user_id}" if gone else f"{args.telegram_user_id} was not linked")
            return 0
        account = await store.read(lambda c: c.execute(sa.select(staff.c.id, staff.c.active).where(
            staff.c.id == args.staff_id)).first())
        if account is None or not account.active:
            print(f"carebot telegram link-staff: no active staff account {args.staff_id!r} (add it with "
                  "`carebot staff add` or in the console first)", file=sys.stderr)
            return 1

        def link(conn: sa.Connection) -> None:
            StaffDesk.link(conn, args.telegram_user_id, args.staff_id, now)
            tickets.audit(conn, now, "telegram_linked", args.staff_id, {"telegram_user_id": args.telegram_user_id})

        await store.write(link)
        print(f"linked Telegram user {args.telegram_user_id} to {args.staff_id}")
        return 0
    finally:
        store.close()
