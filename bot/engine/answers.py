"""Reading a patient's answer to a typed question, in Chinese or English. Pure functions."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.flow.compiler import AskSpec
from bot.understand.normalize import zh_number

YES = {"yes", "y", "yeah", "yep", "yup", "yes please", "ok", "okay", "sure", "agree", "i agree", "agreed", "i accept",
       "accept", "i do", "true", "1", "of course", "sounds good", "correct", "that's right", "thats right", "definitely",
       "是", "是的", "是啊", "是呀", "对", "对的", "对啊", "对呀", "好", "好的", "好啊", "好呀", "嗯", "嗯嗯", "嗯呢", "行",
       "行的", "可以", "可以的", "同意", "我同意", "同意的", "没问题", "当然", "确认", "确定", "确定的", "要", "需要", "有", "有的", "看过",
       "去过", "做过"}
NO = {"no", "n", "nope", "nah", "not", "no thanks", "no thank you", "not really", "disagree", "false", "0",
      "否", "不", "不是", "不是的", "不对", "不要", "不用", "不用了", "不需要", "没有", "没有的", "没", "无", "不同意",
      "算了", "没看过", "没去过", "没做过", "没有看过", "没有去过", "不行", "不可以", "no way", "not at all"}
SKIP = {"skip", "pass", "跳过", "略过", "不想说", "不知道"}

_PUNCT = re.compile(r"[\s。.!！?？,，、~～]+$")


class Invalid(ValueError):
    """The answer does not fit; `reason` picks the message (`repair.invalid.<reason>`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def clean(text: str) -> str:
    return _PUNCT.sub("", text.strip())


def parse_number(text: str) -> float:
    t = clean(text).replace("，", "").replace(",", "")
    m = re.search(r"-?\d+(?:\.\d+)?", t)
    if m:
        return float(m.group())
    core = re.sub(r"[岁个月天周年次kg公斤斤度]+$", "", t)
    n = zh_number(core)
    if n is None:
        raise Invalid("number")
    return float(n)


# a reply that opens with a yes or a no and goes on ("yes, I agree", "是的，我同意", "不是，我35岁", "yep sounds
# good") is that yes or no — unless the rest turns it round or asks for something else
_LEAD = re.compile(r"^\s*([^\s,，、.。!！?？;；:：]+)[\s,，、.。!！?？;；:：]+(.+)$", re.S)
_TURNS = re.compile(r"\b(but|not|no|don'?t|do not|never|withdraw|revoke|cancel|stop|undo|take back|however|unless)\b"
                    r"|但|可是|不过|只是|不|没|别|撤|取消|收回|反悔|除非")


def parse_yes_no(text: str, payload: str = "", exact: bool = False) -> bool:
    """A yes or a no. With `exact` (consent), a reply that goes on counts only when the rest says the same
    in so many words ("yes, I agree", "是的，我同意"; not "是的 孙子才六岁")."""
    value = (payload or clean(text)).lower()
    if value in YES:
        return True
    if value in NO:
        return False
    lead = _LEAD.match(value)
    if lead is not None and not _TURNS.search(lead.group(2)):
        if lead.group(1) in YES and (not exact or clean(lead.group(2)) in YES):
            return True
        if lead.group(1) in NO and (not exact or clean(lead.group(2)) in NO):
            return False
    # Chinese runs on without a break: "是的我同意", "好的谢谢", "不是我自己" (never a question: "需要去医院吗")
    for word, meaning in _ZH_LEADS:
        rest = value[len(word):]
        if value.startswith(word) and rest and not _TURNS.search(rest) and not rest.endswith(("吗", "么", "嘛")) \
                and (not exact or clean(rest) in (YES if meaning else NO)):
            return meaning
    raise Invalid("yes_no")


_ZH_LEADS = (("是的", True), ("好的", True), ("可以", True), ("同意", True), ("对的", True), ("没问题", True),
             ("不是", False), ("不用", False), ("不要", False), ("不需要", False))


def exact_choice(spec: AskSpec, text: str, labels: dict[str, str]) -> str | None:
    """The choice the whole answer names: its number ("2"), value, label in the locale or a match word."""
    values = [c.value for c in spec.choices]
    t = clean(text).lower()
    if t.isdigit() and 1 <= int(t) <= len(values):
        return values[int(t) - 1]
    for choice in spec.choices:
        words = {choice.value.lower(), labels.get(choice.value, "").lower(), *(w.lower() for w in choice.match)}
        if t in words:
            return choice.value
    return None


def match_choice(spec: AskSpec, text: str, payload: str, labels: dict[str, str]) -> str:
    """A pressed button's value, an exact choice (exact_choice), or a label or match word inside the answer."""
    if payload and any(c.value == payload for c in spec.choices):
        return payload
    exact = exact_choice(spec, text, labels)
    if exact is not None:
        return exact
    t = clean(text).lower()
    for choice in spec.choices:  # a label inside a longer sentence: "我想问个问题" → quick
        for word in (labels.get(choice.value, ""), *choice.match):
            if word and len(word) >= 2 and _contains(t, word.lower()):
                return choice.value
    # … or a good part of one label typed on its own ("想尽快问问医生" for "有个问题想尽快问问医生"): only when
    # it is long enough to mean something and no other label holds it
    if len(t) >= 4 and (_CJK_CHAR.search(t) or len(t.split()) >= 2):
        holding = [c.value for c in spec.choices if t in labels.get(c.value, "").lower()]
        if len(holding) == 1:
            return holding[0]
    raise Invalid("choice")


def _contains(text: str, word: str) -> bool:
    """Chinese words anywhere; words in Latin letters only whole ("me" is not in "someone")."""
    if _CJK_CHAR.search(word):
        return word in text
    return re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", text) is not None


_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")

_REL_DAYS = {"今天": 0, "今日": 0, "today": 0, "明天": 1, "明日": 1, "tomorrow": 1, "后天": 2,
             "昨天": -1, "yesterday": -1, "前天": -2}


def parse_date(text: str, now: datetime) -> date:
    t = clean(text).lower()
    if t in _REL_DAYS:
        return (now + timedelta(days=_REL_DAYS[t])).date()
    m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", t)
    if m:
        return _date(int(m[1]), int(m[2]), int(m[3]))
    m = re.fullmatch(r"(\d{1,2})[-/.月](\d{1,2})[日号]?", t)
    if m:
        return _date(now.year, int(m[1]), int(m[2]))
    m = re.fullmatch(r"(\d+)\s*(天|days?)(前|ago)", t)
    if m:
        return (now - timedelta(days=int(m[1]))).date()
    raise Invalid("date")


def _date(y: int, mo: int, d: int) -> date:
    try:
        return date(y, mo, d)
    except ValueError:
        raise Invalid("date") from None


def parse_time(text: str) -> time:
    t = clean(text).lower().replace("：", ":")
    pm = any(w in t for w in ("下午", "晚上", "pm", "傍晚")) and not any(w in t for w in ("凌晨",))
    t = re.sub(r"(上午|下午|晚上|早上|中午|凌晨|傍晚|am|pm)", "", t).strip()
    m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?", t) or re.fullmatch(r"(\d{1,2})[点時时](?:(\d{1,2})分?|半)?", t)
    if not m:
        raise Invalid("time")
    hour = int(m[1])
    minute = int(m[2]) if m.lastindex and m.lastindex >= 2 and m[2] else (30 if t.endswith("半") else 0)
    if pm and hour < 12:
        hour += 12
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise Invalid("time")
    return time(hour, minute)


def parse_datetime(text: str, now: datetime) -> datetime:
    t = clean(text)
    try:
        value = datetime.fromisoformat(t)
        return value if value.tzinfo else value.replace(tzinfo=now.tzinfo)
    except ValueError:
        pass
    parts = re.split(r"\s+", t, maxsplit=1)
    if len(parts) == 2:
        return datetime.combine(parse_date(parts[0], now), parse_time(parts[1]), tzinfo=now.tzinfo)
    m = re.fullmatch(r"(今天|明天|后天|today|tomorrow)(.+)", t, re.I)
    if m:
        return datetime.combine(parse_date(m[1], now), parse_time(m[2]), tzinfo=now.tzinfo)
    raise Invalid("datetime")


def _bound(value: Any, now: datetime) -> Any:
    if isinstance(value, str):
        if value == "today":
            return now.date()
        if value == "now":
            return now
        return date.fromisoformat(value)
    return value


def read_answer(spec: AskSpec, kind: str, text: str, payload: str, media: Any,
                labels: dict[str, str], now: datetime) -> Any:
    """The typed value of an answer, or raise Invalid with the reason."""
    v = spec.validate
    if spec.type == "media":
        if media is None:
            raise Invalid("media")
        return {"kind": media.kind, "ref": media.ref, "mime": media.mime}
    if kind == "media":
        raise Invalid(spec.type)
    if spec.type == "text":
        t = text.strip()
        if not t:
            raise Invalid("text")
        if v.min_length is not None and len(t) < v.min_length:
            raise Invalid("too_short")
        if v.max_length is not None and len(t) > v.max_length:
            raise Invalid("too_long")
        if v.pattern and not re.fullmatch(v.pattern, t):
            raise Invalid("pattern")
        return t
    if spec.type == "choice":
        return match_choice(spec, text, payload, labels)
    if spec.type == "yes_no":
        return parse_yes_no(text, payload, exact=spec.exact)
    if spec.type in ("number", "scale"):
        n = parse_number(payload or text)
        if (v.integer or spec.type == "scale") and n != int(n):
            raise Invalid("integer")
        if v.min is not None and n < float(v.min):
            raise Invalid("range")
        if v.max is not None and n > float(v.max):
            raise Invalid("range")
        return int(n) if n == int(n) else n
    if spec.type == "date":
        d = parse_date(text, now)
        if v.min is not None and d < _bound(v.min, now):
            raise Invalid("range")
        if v.max is not None and d > _bound(v.max, now):
            raise Invalid("range")
        return d.isoformat()
    if spec.type == "time":
        return parse_time(text).strftime("%H:%M")
    if spec.type == "datetime":
        return parse_datetime(text, now).isoformat()
    raise Invalid(spec.type)
