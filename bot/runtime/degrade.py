"""Fit each outbound to what its platform can do, before the turn commits.

An adapter declares `capabilities` (bot/adapter.py). The engine, the safety stage and the relay
write messages for an ideal platform; `degrade_effects` rewrites every outbound-carrying effect of a
turn (`Send`, `Moderate`) against its channel's capabilities by one rule, so what reaches the outbox
is something the adapter can deliver and the outbox row says what was really sent:

- a moderation op (delete, restrict, ban) the platform cannot do becomes a `notify_staff` for the
  group's staff owner (`extra["owner"]`; everyone on staff when unknown) — on the platform itself
  when it can notify staff (a WeCom application message to the group owner), else on the first
  adapter that can (the staff console). A `notify_staff` the platform cannot do is moved the same way;
- buttons on a platform without buttons, or more than it shows, become numbered text options
  (a typed number answers a choice: bot/engine/answers.py); a scale's buttons, whose labels are
  numbers already, are listed as they are, since typing the label answers a scale;
- media the platform cannot show becomes a text note naming it;
- text longer than the platform takes is split at line breaks; buttons go with the last part.

A channel with no adapter in the set, and an op nothing can stand in for (a `say` to a staff-only
channel, a `page`), pass unchanged: the adapter refuses them and the row is recorded `failed`.
Staff-facing notes are rendered in the base locale, patient-facing ones in the conversation's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from bot.adapter import AdapterSet, Capabilities
from bot.types import Address, Effect, Moderate, Outbound, Send

MODERATION_OPS = frozenset({"delete", "restrict", "ban"})
STAFF_OP = "notify_staff"

Render = Callable[[str, dict[str, Any]], str]  # content key, values → text


def degrade_effects(effects: list[Effect], adapters: AdapterSet, render: Callable[[str, str, dict[str, Any]], str],
                    locale: str, staff_locale: str,
                    in_chat: dict[tuple[str, str], Capabilities] | None = None) -> list[Effect]:
    """The turn's effects with every outbound fitted to its channel; other effects untouched.
    `in_chat` holds what a platform can do in one chat ((channel, chat_id) → capabilities, from
    `Adapter.capabilities_in`) where that differs from what it declares."""
    if not any(isinstance(e, (Send, Moderate)) for e in effects):
        return effects
    staff = _staff_channel(adapters)
    out: list[Effect] = []
    for effect in effects:
        if not isinstance(effect, (Send, Moderate)):
            out.append(effect)
            continue
        adapter = adapters.get(effect.outbound.address.channel)
        if adapter is None:
            out.append(effect)
            continue
        a = effect.outbound.address
        caps = (in_chat or {}).get((a.channel, a.chat_id), adapter.capabilities)
        fitted = degrade(effect.outbound, caps, staff,
                         patient=lambda k, v: render(k, locale, v), staff_render=lambda k, v: render(k, staff_locale, v))
        out.extend(replace(effect, outbound=ob) for ob in fitted)
    return out


async def chat_capabilities(effects: list[Effect], adapters: AdapterSet) -> dict[tuple[str, str], Capabilities]:
    """What each platform can do in the chats this turn moderates (asked only for moderation ops)."""
    out: dict[tuple[str, str], Capabilities] = {}
    for effect in effects:
        if not isinstance(effect, Moderate):
            continue
        a = effect.outbound.address
        adapter = adapters.get(a.channel)
        if adapter is not None and (a.channel, a.chat_id) not in out:
            out[(a.channel, a.chat_id)] = await adapter.capabilities_in(a)
    return out


def degrade(ob: Outbound, caps: Capabilities, staff_channel: str, *, patient: Render,
            staff_render: Render) -> list[Outbound]:
    """One outbound fitted to `caps`: one or more outbounds the platform can deliver.

    `staff_channel` is the channel of an adapter that can notify staff ("" when none)."""
    if ob.op in MODERATION_OPS and ob.op not in caps.ops:
        return [_staff_notice(ob, caps, staff_channel, staff_render)]
    if ob.op == STAFF_OP and STAFF_OP not in caps.ops and staff_channel:
        return [replace(ob, address=_staff_address(ob, staff_channel))]
    if ob.op != "say":
        return [ob]
    text, buttons, media = ob.text, ob.buttons, ob.media
    if media is not None and not caps.media:
        text = _join(text, patient("degraded.media", {"kind": media.kind, "name": media.name}))
        media = None
    if buttons and (not caps.buttons or len(buttons) > caps.max_buttons):
        if all(b.label.strip().isdigit() for b in buttons):  # a scale: its labels are what to type
            options = " · ".join(b.label.strip() for b in buttons)
        else:
            options = "\n".join(f"{i}. {b.label}" for i, b in enumerate(buttons, 1))
        text = _join(text, f"{options}\n{patient('degraded.choose', {})}")
        buttons = ()
    parts = _split(text, caps.max_text)
    if len(parts) == 1:
        return [replace(ob, text=text, buttons=buttons, media=media)]
    last = len(parts) - 1
    return [replace(ob, text=p, buttons=buttons if i == last else (), media=media if i == 0 else None)
            for i, p in enumerate(parts)]


def _staff_channel(adapters: AdapterSet) -> str:
    for channel, adapter in adapters.adapters.items():
        if STAFF_OP in adapter.capabilities.ops:
            return channel
    return ""


def _staff_address(ob: Outbound, staff_channel: str) -> Address:
    owner = str(ob.extra.get("owner", ""))
    return Address(staff_channel, owner or "staff", owner, org=ob.address.org)


def _staff_notice(ob: Outbound, caps: Capabilities, staff_channel: str, render: Render) -> Outbound:
    """Ask a person to do what the platform will not let the bot do."""
    a = ob.address
    values = {"chat": a.chat_id, "member": a.user_id, "channel": a.channel,
              "reason": str(ob.extra.get("reason", ""))}
    extra = {"staff": str(ob.extra.get("owner", "")), "action": ob.op, "conversation": a.conversation_id,
             "chat": a.chat_id, "member": a.user_id, "target_message_id": ob.target_message_id,
             "reason": values["reason"]}
    key = f"degraded.moderation.{ob.op}"
    notice = Outbound(op=STAFF_OP, address=a, text=render(key, values), key=key,
                      target_message_id=ob.target_message_id, extra=extra)
    if STAFF_OP in caps.ops or not staff_channel:
        return notice  # the platform tells its own staff (or nothing can, and the adapter refuses)
    return replace(notice, address=_staff_address(ob, staff_channel))


def _join(text: str, note: str) -> str:
    return f"{text}\n\n{note}" if text else note


def _split(text: str, limit: int) -> list[str]:
    """`text` in parts of at most `limit` characters, cut at the last line break (else space) that fits."""
    parts: list[str] = []
    while len(text) > limit > 0:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    parts.append(text)
    return parts
