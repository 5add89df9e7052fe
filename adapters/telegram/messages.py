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
        # the staff group (staff.py): what doctors read in a ticket's forum topic
        "telegram.staff.opened": "新工单 {{ ticket }}\n科室：{{ department }} · 优先级：{{ priority }} · 原因：{{ reason }}\n"
                                 "患者：{{ name }}（{{ channel }}，{{ language }}）",
        "telegram.staff.triage": "分诊：{{ level }}",
        "telegram.staff.help": "在本话题里直接发的文字 = 以您的名义回复患者。\n/take 接单 · /note 内容：内部备注（患者看不到）"
                               " · /transfer 科室或同事工号 [原因]：转交 · /close [原因]：结束工单（患者会收到满意度调查）",
        "telegram.staff.patient": "患者：{{ text }}",
        "telegram.staff.patient_file": "患者发来一个文件：{{ name }}",
        "telegram.staff.bot": "机器人：{{ text }}",
        "telegram.staff.replied": "{{ staff }}（在控制台）回复患者：{{ text }}",
        "telegram.staff.noted": "{{ staff }} 的内部备注（患者看不到）：{{ text }}",
        "telegram.staff.assigned": "已分配给 {{ staff }}。",
        "telegram.staff.taken": "{{ staff }} 已接单。",
        "telegram.staff.transferred": "{{ staff }} 已转交给 {{ target }}{% if reason %}（{{ reason }}）{% endif %}。",
        "telegram.staff.escalated": "工单已升级到 {{ target }}{% if reason %}（{{ reason }}）{% endif %}。",
        "telegram.staff.closed": "{{ staff }} 已结束工单，患者会收到满意度调查，之后由机器人继续。",
        "telegram.staff.abandoned": "患者已离开，工单结束。",
        "telegram.staff.unknown_user": "您的 Telegram 账号还没有关联 carebot 医护账号，这条消息没有发给患者。"
                                       "请管理员运行：carebot telegram link-staff {{ user_id }} <您的工号>",
        "telegram.staff.refused": "没有执行：{{ reason }}",
        "telegram.staff.taken_by_other": "没有接到：{{ staff }} 已经接了这个工单。",
        "telegram.staff.note_saved": "备注已保存（患者看不到）。",
        "telegram.staff.usage_note": "用法：/note 备注内容",
        "telegram.staff.usage_transfer": "用法：/transfer 科室或同事工号 [原因]，例如 /transfer internal_medicine 需要内科会诊。"
                                         "科室：{{ departments }}",
        "telegram.staff.no_ticket": "这里不是工单话题。请在某个工单的话题里回复或使用命令。",
        "telegram.staff.ticket_closed": "这个工单已经结束，消息没有发给患者。",
        "telegram.staff.text_only": "目前只把文字转给患者，这条没有发出。",
        "telegram.staff.edit_ignored": "修改后的消息不会再发给患者；如需更正，请发一条新消息。",
        "telegram.staff.patient_name": "患者",
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
        "telegram.staff.opened": "New ticket {{ ticket }}\nDepartment: {{ department }} · priority: {{ priority }} · "
                                 "reason: {{ reason }}\nPatient: {{ name }} ({{ channel }}, {{ language }})",
        "telegram.staff.triage": "Triage: {{ level }}",
        "telegram.staff.help": "Text you write in this topic goes to the patient as your reply.\n/take to take it · "
                               "/note text: an internal note (the patient never sees it) · /transfer department-or-"
                               "colleague-id [reason] · /close [reason]: end the ticket (the patient gets the survey)",
        "telegram.staff.patient": "Patient: {{ text }}",
        "telegram.staff.patient_file": "The patient sent a file: {{ name }}",
        "telegram.staff.bot": "Bot: {{ text }}",
        "telegram.staff.replied": "{{ staff }} (in the console) to the patient: {{ text }}",
        "telegram.staff.noted": "Internal note by {{ staff }} (the patient never sees it): {{ text }}",
        "telegram.staff.assigned": "Assigned to {{ staff }}.",
        "telegram.staff.taken": "{{ staff }} took this ticket.",
        "telegram.staff.transferred": "{{ staff }} transferred it to {{ target }}{% if reason %} ({{ reason }}){% endif %}.",
        "telegram.staff.escalated": "Escalated to {{ target }}{% if reason %} ({{ reason }}){% endif %}.",
        "telegram.staff.closed": "{{ staff }} closed the ticket; the patient gets the satisfaction survey, then the "
                                 "bot again.",
        "telegram.staff.abandoned": "The patient left; the ticket is closed.",
        "telegram.staff.unknown_user": "Your Telegram account is not linked to a carebot staff account, so this was "
                                       "not sent to the patient. An administrator can link you with: carebot "
                                       "telegram link-staff {{ user_id }} <your staff id>",
        "telegram.staff.refused": "Not done: {{ reason }}",
        "telegram.staff.taken_by_other": "Not taken: {{ staff }} already has this ticket.",
        "telegram.staff.note_saved": "Note saved (the patient never sees it).",
        "telegram.staff.usage_note": "Usage: /note the note's text",
        "telegram.staff.usage_transfer": "Usage: /transfer department-or-colleague-id [reason], e.g. /transfer "
                                         "internal_medicine needs a physician. Departments: {{ departments }}",
        "telegram.staff.no_ticket": "This is not a ticket's topic. Reply or use the commands inside a ticket's topic.",
        "telegram.staff.ticket_closed": "This ticket is closed; your message was not sent to the patient.",
        "telegram.staff.text_only": "Only text is passed on to the patient for now; this was not sent.",
        "telegram.staff.edit_ignored": "Edited messages are not sent to the patient again; to correct something, "
                                       "send a new message.",
        "telegram.staff.patient_name": "Patient",
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
