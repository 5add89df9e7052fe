"""The two in-memory peers of `carebot bench telegram`: the same six-message intake as
`bench_intake.yml`, written the way a team would write it with each library's own state machine —
aiogram 3's FSM on `MemoryStorage`, python-telegram-bot's `ConversationHandler` — nothing durable.

Equivalent work: the same questions from the same texts (`messages.<locale>.yml`), the same checks
(complaint 2–500 characters; days a number 0–3650; severity 0–10; age 0–120; yes/no from carebot's
own word lists, `bot.engine.answers`), the same re-ask texts on a bad answer (carebot's built-in
`repair.invalid.*`), the same summary, each reply sent to the Bot API over HTTP. What carebot does
besides (red-flag screening of every message, the durable commit, the outbox) is its own cost.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

import bot.flow
from bot.engine.answers import NO, YES

HERE = Path(__file__).parent
BUILTIN = Path(bot.flow.__file__).parent / "builtin" / "messages"  # carebot's own re-ask texts
_END = re.compile(r"[\s。.!！?？,，、~～]+$")


class Texts:
    """The intake's questions and the re-ask texts, in one locale."""

    def __init__(self, locale: str):
        own = yaml.safe_load((HERE / f"messages.{locale}.yml").read_text(encoding="utf-8"))["bench_intake"]
        repair = yaml.safe_load((BUILTIN / f"{locale}.yml").read_text(encoding="utf-8"))["repair"]["invalid"]
        self.ask = [own["ask_complaint"], own["ask_days"], own["ask_severity"], own["ask_age"], own["ask_seen"]]
        self.summary = own["summary"]
        self.invalid = repair

    def range(self, low: int, high: int) -> str:
        return str(self.invalid["range"]).replace("{{ min }}", str(low)).replace("{{ max }}", str(high))

    def summarize(self, data: dict[str, Any]) -> str:
        text = self.summary
        for key in ("complaint", "days", "severity", "age"):
            text = text.replace("{{ " + key + " }}", str(data.get(key, "")))
        return text


def check(step: int, text: str, texts: Texts) -> tuple[Any, str]:
    """(the value, "") for a valid answer to question `step`, else (None, the re-ask text)."""
    text = text.strip()
    if step == 0:
        if len(text) < 2:
            return None, texts.invalid["too_short"]
        if len(text) > 500:
            return None, texts.invalid["too_long"]
        return text, ""
    if step in (1, 2, 3):
        low, high = {1: (0, 3650), 2: (0, 10), 3: (0, 120)}[step]
        try:
            value = float(text)
        except ValueError:
            return None, texts.invalid["number"]
        if not low <= value <= high:
            return None, texts.range(low, high)
        return int(value) if value.is_integer() else value, ""
    word = _END.sub("", text).lower()
    if word in YES:
        return True, ""
    if word in NO:
        return False, ""
    return None, texts.invalid["yes_no"]


SLOTS = ("complaint", "days", "severity", "age", "seen_doctor")


def aiogram_dispatcher(texts: Texts) -> Any:
    """aiogram 3: a Router with one handler per FSM state, on MemoryStorage."""
    from aiogram import Dispatcher, F, Router
    from aiogram.filters import Command
    from aiogram.fsm.context import FSMContext
    from aiogram.fsm.state import State, StatesGroup
    from aiogram.fsm.storage.memory import MemoryStorage
    from aiogram.types import Message

    class Intake(StatesGroup):
        complaint = State()
        days = State()
        severity = State()
        age = State()
        seen_doctor = State()

    order = [Intake.complaint, Intake.days, Intake.severity, Intake.age, Intake.seen_doctor]
    router = Router(name="intake")

    @router.message(Command("bench"))
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Intake.complaint)
        await state.set_data({})
        await message.answer(texts.ask[0])

    def answer_step(step: int) -> Any:
        async def handler(message: Message, state: FSMContext) -> None:
            value, problem = check(step, message.text or "", texts)
            if problem:
                await message.answer(problem)
                return
            await state.update_data({SLOTS[step]: value})
            if step + 1 < len(order):
                await state.set_state(order[step + 1])
                await message.answer(texts.ask[step + 1])
                return
            data = await state.get_data()
            await state.clear()
            await message.answer(texts.summarize(data))
        return handler

    for step, st in enumerate(order):
        router.message.register(answer_step(step), st, F.text)
    dispatcher = Dispatcher(storage=MemoryStorage())
    dispatcher.include_router(router)
    return dispatcher


def ptb_application(texts: Texts, token: str, base_url: str) -> Any:
    """python-telegram-bot: a ConversationHandler (per chat and user), in memory."""
    from telegram import Update
    from telegram.ext import Application, CommandHandler, ContextTypes, ConversationHandler, MessageHandler, filters

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None and context.user_data is not None
        context.user_data.clear()
        await update.message.reply_text(texts.ask[0])
        return 0

    def answer_step(step: int) -> Any:
        async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            assert update.message is not None and context.user_data is not None
            value, problem = check(step, update.message.text or "", texts)
            if problem:
                await update.message.reply_text(problem)
                return step
            context.user_data[SLOTS[step]] = value
            if step + 1 < len(SLOTS):
                await update.message.reply_text(texts.ask[step + 1])
                return step + 1
            await update.message.reply_text(texts.summarize(context.user_data))
            return ConversationHandler.END
        return handler

    conversation = ConversationHandler(
        entry_points=[CommandHandler("bench", start)],
        states={step: [MessageHandler(filters.TEXT & ~filters.COMMAND, answer_step(step))] for step in range(len(SLOTS))},
        fallbacks=[])
    # a connection pool as wide as aiogram's (PTB's default is one connection: every reply in line)
    application = (Application.builder().token(token).base_url(f"{base_url}/bot")
                   .base_file_url(f"{base_url}/file/bot").connection_pool_size(100).pool_timeout(30.0)
                   .updater(None).build())
    application.add_handler(conversation)
    return application
