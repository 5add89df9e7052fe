"""The `carebot` command.

This module is the composition root: the one place in `bot/` that imports `adapters/`, and only
inside the commands that need them (`run` serves the shipped web chat and staff console, `chat`
runs the terminal adapter, `bench webchat` drives the web chat). The rest of `bot/` knows
adapters only through the `Adapter` contract (`bot/adapter.py`); tests/test_layers.py holds it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from bot.errors import ConfigError


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from bot.settings import Settings

    settings = Settings.from_env()
    if getattr(args, "flows", None):
        settings = replace(settings, flows_dir=Path(args.flows))
    if getattr(args, "content", None):
        settings = replace(settings, content_dir=Path(args.content))
    if getattr(args, "database_url", None):
        settings = replace(settings, database_url=args.database_url)
    if getattr(args, "redis_url", None):
        settings = replace(settings, redis_url=args.redis_url)
    return settings


def _report(exc: ConfigError) -> int:
    print(f"{len(exc.problems)} problem(s):", file=sys.stderr)
    for p in exc.problems:
        print(f"  {p}", file=sys.stderr)
    return 1


def cmd_run(args: argparse.Namespace) -> int:
    from bot.runtime.gc_tuning import loading

    loading()  # until the bot is ready (create_lazy_app's load calls tune_for_server)
    import uvicorn

    from bot.server import create_lazy_app

    settings = _settings(args)
    if args.log_format:
        from bot.logs import setup_logging

        setup_logging(settings.log_level, args.log_format)
    if not args.no_migrate:
        from bot.store.migrate import upgrade

        upgrade(settings.database_url)

    def build():  # type: ignore[no-untyped-def]
        from adapters import default_adapters
        from bot.app import CareBot

        return CareBot.build(settings, default_adapters(settings))

    server: uvicorn.Server | None = None
    _Server = _server_class()

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    app = create_lazy_app(build, on_failure=stop)
    host = args.host or settings.host
    port = args.port or settings.port
    # no per-message WebSocket compression: chat frames are small and deflate cost ~10% of the CPU
    # log_config=None: uvicorn's own lines go through our (redacting, optionally JSON) handler
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                    log_config=None, ws_per_message_deflate=False),
                     on_exit=app.state.holder.drain)
    print(f"carebot serving on http://{host}:{port}\n  web chat: http://{host}:{port}/chat\n"
          f"  staff console: http://{host}:{port}/console  (accounts: carebot staff add)\n"
          f"  health: /healthz  ready: /readyz  metrics: /metrics", flush=True)
    server.run()
    if app.state.holder.failed:
        print(f"carebot did not start: {app.state.holder.failed}", file=sys.stderr)
        return 1
    return 0


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, telling the app when it is asked to stop: uvicorn waits for every open
        request to finish before the app's shutdown, and a server-sent-event stream or a long poll
        would otherwise hold that up for minutes."""

        def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]):
            super().__init__(config)
            self._on_exit = on_exit
            self._loop: asyncio.AbstractEventLoop | None = None

        async def serve(self, sockets: Any = None) -> None:
            self._loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            if self._loop is not None:  # a signal handler: hand the work to the loop
                self._loop.call_soon_threadsafe(self._on_exit)

    return Server


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.app import load_config

    settings = _settings(args)
    try:
        config = load_config(settings)
    except ConfigError as exc:
        return _report(exc)
    lazy_problems = [p for rules in config.triage.values() for p in rules.compile_all()]
    if lazy_problems:  # patterns are compiled on first use at run time; validate compiles them all
        print("\n".join(lazy_problems), file=sys.stderr)
        return 1
    n_msgs = {loc: len(msgs) for loc, msgs in config.content.messages.items()}
    print(f"OK: {len(config.flows.flows)} flows, messages {n_msgs}, "
          f"triage rules for {sorted(config.triage) or 'no locale'}, {len(config.groups.policies)} group policies "
          f"({len(config.groups.sets)} pattern sets, every example checked)")
    homeless = sorted({d.id for rules in config.triage.values() for d in rules.departments.departments}
                      - set(config.handoff.departments))
    if homeless:  # not an error (the `default:` entry takes them), but no staff account can join them
        backup = config.handoff.default.backup
        who = (f"they are shown at once to the doctors of the default's backup, {backup}, who may take them"
               if backup else "with no backup under default:, no doctor sees them until an SLA escalation")
        print(f"note: content/departments suggests {', '.join(homeless)}, which content/handoff.yml does not name "
              f"under departments:. Their tickets take the `default:` entry ({config.handoff.default.mode}) and no "
              f"staff account can belong to them: {who}. Name them under departments: to staff them.",
              file=sys.stderr)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from bot.app import load_config
    from bot.testing.transcript import run_paths

    settings = _settings(args)
    try:
        config = load_config(settings)
        _passed, failed = run_paths(settings, config, [Path(p) for p in args.paths], sys.stdout,
                                    coverage=args.coverage)
    except ConfigError as exc:
        return _report(exc)
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from bot.flow.schema import write_schema

    out = Path(args.output)
    write_schema(out)
    print(f"wrote {out}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from bot.store.migrate import current, upgrade

    settings = _settings(args)
    if args.action == "upgrade":
        changed = upgrade(settings.database_url)
        print("database migrated" if changed else "database already up to date")
    print(f"database at revision {current(settings.database_url)}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from adapters.terminal.chat import run_chat

    settings = _settings(args)
    if not args.database_url and not os.environ.get("DATABASE_URL"):
        settings = replace(settings, database_url="sqlite:///./carebot-chat.db")
    try:
        return run_chat(settings, user=args.user, locale=args.locale)
    except ConfigError as exc:
        return _report(exc)


def cmd_bench(args: argparse.Namespace) -> int:
    from bot.bench import run_bench

    settings = _settings(args)
    if args.target == "fuzz":
        from bot.testing.fuzz import run_fuzz_bench

        result = run_fuzz_bench(_fuzz_app(settings), args.requests, args.seed)
    elif args.target == "webchat":
        from adapters.webchat.bench import run_webchat_bench

        result = run_webchat_bench(settings, clients=args.clients, seconds=args.seconds if args.seconds != 5.0 else 20.0,
                                   think_ms=args.think_ms)
    elif args.target == "chaos":
        from adapters.webchat.chaos import run_chaos

        pg = args.database_url or ""
        backend = "pg+redis" if pg.startswith("postgres") else "sqlite"
        result = run_chaos(backend, database_url=pg, redis_url=args.redis_url or "",
                           conversations=args.conversations or 200,
                           messages=args.messages if args.messages != 20000 else 2000, seed=args.seed)
        for k, v in result.items():
            if k != "server_log_tail":
                print(f"{k}: {v}")
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        elif "server_log_tail" in result:
            print(result["server_log_tail"], file=sys.stderr)
        return 1 if "server_log_tail" in result else 0
    elif args.target == "telegram":
        from adapters.telegram.bench import run_telegram_bench

        result = run_telegram_bench(settings, conversations=args.conversations or 1000, broadcast=args.broadcast,
                                    broadcast_rate=args.broadcast_rate)
    else:
        result = run_bench(args.target, settings, pure=args.pure, conversations=args.conversations or 200,
                           messages=args.messages, seconds=args.seconds, workers=args.workers,
                           worker_index=args.worker_index, run_id=args.run_id)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


def _fuzz_app(settings: Any) -> Any:
    """The whole app (web chat, console) on a fresh SQLite file in a temporary directory."""
    import tempfile
    from dataclasses import replace as _replace

    from adapters.console import ConsoleAdapter
    from adapters.webchat import WebchatAdapter
    from adapters.webchat.config import WebchatConfig
    from bot.app import CareBot
    from bot.server import create_app
    from bot.store.migrate import upgrade

    tmp = Path(tempfile.mkdtemp(prefix="carebot-fuzz-"))
    url = settings.database_url if settings.database_url.startswith("postgres") else f"sqlite:///{tmp / 'fuzz.db'}"
    upgrade(url)
    settings = _replace(settings, database_url=url, secret=settings.secret or "fuzz-" + "x" * 30)
    config = _replace(WebchatConfig(), media_dir=tmp / "media", visitor_rate=(10**6, 1.0), ip_rate=(10**6, 1.0))
    return create_app(CareBot.build(settings, [WebchatAdapter(settings, config), ConsoleAdapter(settings)]))


def cmd_triage(argv: list[str]) -> int:
    from bot.triage.cli import run_triage_cli

    return run_triage_cli(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot", description="Chat-based patient care: one YAML flow engine "
                                     "on WeCom, Telegram and web chat.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--flows", help="flows directory (default: $CAREBOT_FLOWS or ./flows)")
        p.add_argument("--content", help="content directory (default: $CAREBOT_CONTENT or ./content)")

    p = sub.add_parser("run", help="serve webhooks, web chat, health and metrics; run timers and the sender")
    common(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-migrate", action="store_true", help="do not upgrade the database first")
    p.add_argument("--log-format", choices=["text", "json"], help="json: one object per line "
                   "(default: $CAREBOT_LOG_FORMAT, else text)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("validate", help="check flows, content and triage rules; exit 1 on any problem")
    common(p)
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("test", help="run YAML conversation tests")
    common(p)
    p.add_argument("paths", nargs="+")
    p.add_argument("--coverage", action="store_true", help="list step types and flows no test ran")
    p.set_defaults(fn=cmd_test)

    p = sub.add_parser("schema", help="write the JSON Schema of the flow language")
    p.add_argument("--output", "-o", default="flows/schema.json")
    p.set_defaults(fn=cmd_schema)

    p = sub.add_parser("db", help="database migrations")
    p.add_argument("action", choices=["upgrade", "current"])
    p.add_argument("--database-url")
    p.set_defaults(fn=cmd_db)

    p = sub.add_parser("chat", help="talk to the flows in this terminal")
    common(p)
    p.add_argument("--user", default="me", help="who you are (a new name starts a new conversation)")
    p.add_argument("--locale", default="", help="zh-CN or en")
    p.add_argument("--database-url")
    p.set_defaults(fn=cmd_chat)

    p = sub.add_parser("bench", help="measure throughput and latency")
    common(p)
    p.add_argument("target", choices=["engine", "startup", "webchat", "fuzz", "telegram", "chaos"])
    p.add_argument("--pure", action="store_true", help="the engine alone: steps per second")
    p.add_argument("--json", action="store_true")
    p.add_argument("--database-url")
    p.add_argument("--redis-url")
    p.add_argument("--conversations", type=int, default=None, help="engine: 200; telegram: 1000; chaos: 200")
    p.add_argument("--messages", type=int, default=20000, help="engine: 20000; chaos: 2000")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=0, help="engine: N worker processes against one PostgreSQL "
                   "and Redis (each pinned to its own core, its own patients); reports the aggregate")
    p.add_argument("--worker-index", type=int, default=-1, help=argparse.SUPPRESS)
    p.add_argument("--run-id", default="", help=argparse.SUPPRESS)
    p.add_argument("--clients", type=int, default=1000, help="webchat: concurrent WebSocket clients")
    p.add_argument("--think-ms", type=float, default=5000.0, help="webchat: each client's pause between messages")
    p.add_argument("--requests", type=int, default=2000, help="fuzz: hostile requests to send")
    p.add_argument("--seed", type=int, default=1, help="fuzz: the random seed (a run is repeatable)")
    p.add_argument("--broadcast", type=int, default=10_000, help="telegram: reminders in the paced broadcast")
    p.add_argument("--broadcast-rate", type=int, default=300, help="telegram: the fake Bot API's overall limit "
                   "per second (Telegram's 30, scaled up so the run stays short)")
    p.set_defaults(fn=cmd_bench)

    from bot.handoff.staff_cli import add_parser as staff_parser

    staff_parser(sub, common)
    from bot.reload import add_parser as reload_parser

    reload_parser(sub)

    sub.add_parser("triage", help="assess a message for red flags: carebot triage TEXT --locale zh-CN [--json]",
                   add_help=False)
    sub.add_parser("understand", help="which flow a typed request starts: carebot understand TEXT --locale en "
                   "[--json]; carebot understand eval FILE… [--json]", add_help=False)
    sub.add_parser("telegram", help="the Telegram bot: set-webhook, delete-webhook, info, poll", add_help=False)
    sub.add_parser("reminders", help="carebot reminders eval FILE… [--json] (typed schedules); "
                   "carebot bench reminders --plans N [--json]", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `carebot triage eval … | head`: the reader stopped; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's final flush does not fail again
        return 1


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from bot.logs import setup_logging

    # every command logs through the redaction filter; `run` raises the level to CAREBOT_LOG_LEVEL
    setup_logging(os.environ.get("CAREBOT_LOG_LEVEL", "WARNING" if argv[:1] != ["run"] else "INFO"),
                  "json" if os.environ.get("CAREBOT_LOG_FORMAT", "").strip().lower() == "json" else "text")
    if argv and argv[0] == "triage":
        return cmd_triage(argv[1:])
    if argv and argv[0] == "telegram":  # set-webhook | delete-webhook | info | poll
        from adapters.telegram.cli import run_telegram_cli

        return run_telegram_cli(argv[1:])
    if argv[:1] == ["reminders"] or argv[:2] == ["bench", "reminders"]:
        from bot.reminders.cli import run_reminders_cli

        return run_reminders_cli(argv[1:] if argv[0] == "reminders" else argv)
    if argv and argv[0] == "understand":
        from bot.understand.cli import run_understand_cli

        return run_understand_cli(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except ConfigError as exc:
        return _report(exc)
    except Exception as exc:
        said = _unreachable_database(exc, getattr(args, "database_url", None) or os.environ.get("DATABASE_URL", ""))
        if said is None:
            raise
        print(said, file=sys.stderr)
        return 2


def _unreachable_database(exc: BaseException, url: str) -> str | None:
    """The operator's sentence for a database that cannot be reached or named (a wrong DATABASE_URL, a
    database not created yet, the server down), instead of a driver traceback; None for anything else."""
    sa_exc = sys.modules.get("sqlalchemy.exc")  # imported already if the error came from SQLAlchemy
    other_kind = isinstance(exc, ModuleNotFoundError) and url.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql")
    if not other_kind and (sa_exc is None or not isinstance(
            exc, (sa_exc.OperationalError, sa_exc.ArgumentError, sa_exc.NoSuchModuleError))):
        return None
    shown = url or "sqlite:///carebot.db (the default)"
    try:
        from sqlalchemy.engine import make_url

        shown = make_url(url).render_as_string(hide_password=True) if url else shown
    except Exception:  # not even a URL: say it as given, without what could be a password
        shown = url.split("@")[-1] if "@" in url else url
    reason = "carebot runs on SQLite or PostgreSQL only" if other_kind else \
        str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return (f"carebot: cannot use the database {shown}: {reason}\n"
            "  Set DATABASE_URL (or --database-url) to a database that exists, e.g. sqlite:///carebot.db or "
            "postgresql://USER@HOST:5432/NAME;\n  create a PostgreSQL database with `createdb NAME` "
            "(docs/deploy.md).")


if __name__ == "__main__":
    sys.exit(main())
