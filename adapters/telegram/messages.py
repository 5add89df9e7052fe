"""What the Telegram adapter itself says (outside any flow), in every shipped locale. An operator
overrides a text by defining the same key in `content/messages/<locale>/…` (e.g. `telegram.stale`)."""

from __future__ import annotations

from typing import Any

from jinja2.sandbox import SandboxedEnvironment

MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "telegram.stale": "这个问题已经过去了，请回答最新的问题。",
        "telegram.not_yours": "这个按钮是给另一位成员的。",
        "telegram.media_refused.bad_type": "抱歉，只能接收照片（JPG、PNG、GIF、WebP）或 PDF 文件。",
        "telegram.media_refused.too_large": "抱歉，文件太大了（最大 {{ limit_mb }} MB）。请压缩后再发。",
        "telegram.media_refused.empty": "这个文件是空的，请重新发送。",
        "telegram.media_refused.unavailable": "暂时无法读取这个文件，请稍后再发一次。",
        "telegram.call_card": "急救电话 {{ number }}",
        "telegram.call_hint": "点下面的联系人卡片即可拨打 {{ number }}。",
        "telegram.private_intake": "私聊问诊",
        "telegram.group_private": "我已经私信你了，请查看和我的私聊。",
        "telegram.group_start_private": "请点下面的按钮和我私聊，健康信息不要发在群里。",
    },
    "en": {
        "telegram.stale": "That question has passed — please answer the latest one.",
        "telegram.not_yours": "That button is for another member.",
        "telegram.media_refused.bad_type": "Sorry, I can only take photos (JPG, PNG, GIF, WebP) or PDF files.",
        "telegram.media_refused.too_large": "Sorry, that file is too large (at most {{ limit_mb }} MB). "
                                            "Please send a smaller one.",
        "telegram.media_refused.empty": "That file is empty — please send it again.",
        "telegram.media_refused.unavailable": "I couldn't read that file just now — please send it again.",
        "telegram.call_card": "Emergency {{ number }}",
        "telegram.call_hint": "Tap the contact card below to call {{ number }}.",
        "telegram.private_intake": "Talk to me privately",
        "telegram.group_private": "I've written to you privately — please look at our private chat.",
        "telegram.group_start_private": "Please tap the button below to talk to me privately; keep health "
                                        "details out of the group.",
    },
}
_ENV = SandboxedEnvironment(autoescape=False)


def render(key: str, locale: str, content: Any = None, **ctx: Any) -> str:
    """The text for `key` in `locale` (zh-CN when the locale has none): the operator's content
    first, then this catalogue."""
    if content is not None and content.has(key):
        return str(content.render(key, locale, ctx))
    catalogue = MESSAGES.get(locale) or MESSAGES.get(locale.split("-")[0]) or MESSAGES["zh-CN"]
    return _ENV.from_string(catalogue[key]).render(**ctx)
