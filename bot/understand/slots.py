"""What a typed message already says, so a flow does not ask for it again.

A slot reader takes a message and returns one value it carries, or None; it never guesses past the
words. The readers:

- `medicine`: the medicine named in a reminder request ("remind me to take metformin 500 at 8am" →
  metformin, 每天早上八点提醒我吃降压药 → 降压药); a bare "my pills" / 药 names nothing.
- `dose`: the amount written beside that medicine (500, 500 mg, 2粒), as written.
- `schedule`: the message itself when a schedule can be read from it (bot.reminders.parse), so the
  reminder flow reads and confirms it instead of asking "when?".
- `duration`: how long the complaint has lasted ("cough for 3 days" → for 3 days, 咳嗽三天了 → 3天了,
  since yesterday, 从昨天开始); an age (2个月大, "2 year old"), a gestation or "every 8 hours" is none.
- `relation` and `patient_is`: who the patient is when the sender writes about someone else at the
  start of the message ("my mother has had a cough…", 我妈咳嗽…): mother, son… and the intake
  answer it means (parent, child, other). Advice is then addressed to them ("your mother…").

Intents name the readers of their request in `content/understand/<locale>.yml` (`fills:`, slot →
reader); flows call them through the `care.read_complaint` action. Everything reads the canonical
text (bot.understand.normalize): Chinese numerals are digits, Traditional is Simplified.
"""

from __future__ import annotations

import re
from typing import Callable, Literal

from bot.understand.normalize import canonical

Reader = Literal["medicine", "dose", "schedule", "duration", "relation", "patient_is"]

# -- medicine and dose ---------------------------------------------------------------------------

_GENERIC_EN = frozenset("""medicine medicines medication medications meds med pill pills tablet tablets tab tabs
    dose doses drug drugs it them my his her their our the a an one new next reminder reminders alarm
    something stuff daily morning evening night different other several all few more these those now
    medcine medecine medicin meds""".split())
_EN_AFTER = re.compile(r"\b(?:take|taking|takes|use|using|do|for|about|of|forget|forgets|forgetting|missing|"
                       r"starting)\s+|\b(?:reminder|alarm|alert)s?\s*[:\-]\s*")
_EN_OWNER = re.compile(r"^(?:(?:my|his|her|their|our|the|a|an|some|mum's|mom's|dad's|son's|daughter's|"
                       r"baby's|child's|kid's|mother's|father's|husband's|wife's|dad's|sons|son's|daughters)\s+|"
                       r"(?:mother|mum|mom|dad|father|son|daughter|baby|child|kid|wife|husband)\s+(?=\w+))+")
# words that end a medicine's name: times, frequencies, meals, courses, politeness
_EN_STOP = re.compile(
    r"\s*(?:[,.;:!?()]|\b(?:at|every|each|in|on|twice|once|thrice|daily|nightly|weekly|morning|mornings|evening|"
    r"evenings|night|nights|noon|midday|lunch|breakfast|dinner|supper|bedtime|before|after|with|when|from|"
    r"starting|start|tomorrow|today|tonight|pls|please|plz|thanks|x|per|times|for|and|also|then|till|until|"
    r"as|if|so|because|but|or|empty|qd|bd|bid|tid|qds|qid|prn|q\d+h|am|pm|reminder|reminders|alarm|"
    r"remind|alert|doctor|gave|prescribed|that|which|i|im|you|u|can|could|want|need|is|are|was|first|"
    r"last|right|now|so|to)\b|\d{1,2}(?::\d\d)?\s*(?:am|pm|h|hrs?|hours?|x|times?|days?|weeks?)\b|\d{1,2}:\d\d)")
_DOSE_EN = re.compile(r"(?:^|\s)(\d+(?:\.\d+)?\s*(?:mg|mcg|µg|g|ml|iu|units?|tabs?|tablets?|pills?|caps?|capsules?|"
                      r"puffs?|drops?|sprays?)?)$")
_DOSE_EN_FIRST = re.compile(r"^(\d+(?:\.\d+)?\s*(?:mg|mcg|g|ml|iu|units?|tabs?|tablets?|pills?|caps?|capsules?|"
                            r"puffs?|drops?|sprays?))\s+(?:of\s+)?")

_ZH_VERB = re.compile(r"(?:吃|服用|服|用|打|喷|滴|涂|抹|贴|喂|喝)")
_ZH_STOP = re.compile(r"[\s,，。.!！?？;；:：、()（）]|每|早|晚|中午|午饭|睡前|睡觉|饭|餐|空腹|一天|天|\d{1,2}点|\d{1,2}:\d\d|"
                      r"次|提醒|的时候|时候|时|了|吧|啊|呀|哦|嘛|和|跟|还有|记得|别忘|按时|定时|闹钟|"
                      r"\d*个?(?:小时|钟头)|老|能|在|都|怎么|可以|好吗|要|吗|不(?=\s|$)|哈|呗|给|帮|让")
_ZH_DOSE = re.compile(r"\d+(?:\.\d+)?(?:毫克|mg|克|g|毫升|ml|个单位|单位|iu|片|粒|颗|袋|支|滴|喷|下|包|丸|格)")
_ZH_GENERIC = frozenset({"药", "药物", "药品", "的药", "我的药", "药片", "药丸", "点药", "个药", "这个药", "那个药",
                         "药了", "西药", "中药", "新药", "一下药", "一下", "东西", "针", "一针", "1针", "饭", "水"})
# a medicine named first, before its schedule (二甲双胍一天两次, 眼药水每四个钟滴一次): a run ending as drug names do
_ZH_LEADING = re.compile(r"^([\u3400-\u9fffa-z]{2,10}?(?:药|片|剂|素|水|林|胍|酸|乐|丸|膏|针|液|菌|钙|铁|汀|平|尔|定|松|宁))"
                         r"(?=每|一天|1天|早|晚|中午|下午|睡前|饭|\d|[\s,，])")
_ZH_OWNER = re.compile(r"^(?:我的|我|他的|她的|他|她|孩子的|宝宝的|妈妈的|爸爸的|老人的|这个|那个)")


def _medicine_and_dose(canon: str) -> tuple[str, str] | None:
    """(medicine, dose as written) named in a reminder request; None when no medicine is named."""
    if re.search(r"[\u3400-\u9fff]", canon):
        for m in _ZH_VERB.finditer(canon):
            rest = canon[m.end():]
            stop = _ZH_STOP.search(rest)
            span = rest[:stop.start()] if stop else rest
            dose = ""
            lead = _ZH_DOSE.match(span)
            if lead:  # 吃1片阿司匹林
                dose, span = lead.group(), span[lead.end():]
            trail = _ZH_DOSE.search(span)
            if trail and trail.end() == len(span) and trail.start() > 0:  # 二甲双胍500毫克
                dose, span = trail.group(), span[:trail.start()]
            tail = re.match(r"\d+(?:\.\d+)?(?:毫克|mg|克|毫升|ml|单位|片|粒|颗)", rest[len(span) + len(dose):])
            if not dose and tail is None:
                number = re.search(r"\d+(?:\.\d+)?$", span)
                if number and number.start() > 0:
                    dose, span = number.group(), span[:number.start()]
            span = _ZH_OWNER.sub("", span)
            span = re.sub(r"^(?:一下|那个|这个)", "", span).removesuffix("的")
            if len(span) >= 2 and not span[0].isdigit() and span[0] not in "没不一" and "疗程" not in span and span not in _ZH_GENERIC and re.search(r"[\u3400-\u9fffa-z]", span):
                return span, dose
        lead = _ZH_LEADING.match(_ZH_OWNER.sub("", re.sub(r"^(?:宝宝|孩子|老人)的?", "", canon)))
        if lead and lead.group(1) not in _ZH_GENERIC and not re.search(r"提醒|帮|设|我|闹钟|吃|服", lead.group(1)):
            return lead.group(1), ""
        return None
    for m in _EN_AFTER.finditer(canon):
        rest = _EN_OWNER.sub("", canon[m.end():])
        dose = ""
        lead = _DOSE_EN_FIRST.match(rest)
        if lead:  # "2 puffs of ventolin"
            dose, rest = lead.group(1), rest[lead.end():]
            rest = _EN_OWNER.sub("", rest)
        stop = _EN_STOP.search(rest)
        span = (rest[:stop.start()] if stop else rest).strip(" -'\"")
        trail = _DOSE_EN.search(span)
        if trail and not dose and trail.start() > 0:
            dose, span = trail.group(1), span[:trail.start()].strip()
        words = span.split()
        if not words or len(words) > 5 or all(w in _GENERIC_EN for w in words) or not re.search(r"[a-z]", span):
            continue
        if words[0] in ("me", "you", "u", "i", "we", "him", "her", "to", "remember", "care", "that", "this") \
                or words[0].isdigit():
            continue
        return span, dose
    head = _EN_OWNER.sub("", canon)  # a medicine named first: "iron tablets 1 daily after lunch"
    stop = _EN_STOP.search(head)
    words = (head[:stop.start()] if stop else "").split()
    if 0 < len(words) <= 3 and not any(w in _EN_REQUEST or w in _GENERIC_EN for w in words[:1]) \
            and not any(w in _EN_REQUEST for w in words) and not all(w in _GENERIC_EN for w in words) \
            and all(w.isalpha() for w in words):
        return " ".join(words), ""
    return None


_EN_REQUEST = frozenset("""remind reminder reminders set can could please pls i want need help add create make alarm
    alert ping message text notify nudge me you u hi hello hey how what is are my new weekly daily forget forgets
    forgot keeps keep needs missing misses""".split())


def medicine(text: str, locale: str = "") -> str | None:
    found = _medicine_and_dose(canonical(text))
    return found[0][:40] if found else None


def dose(text: str, locale: str = "") -> str | None:
    found = _medicine_and_dose(canonical(text))
    return found[1][:60] if found and found[1] else None


def schedule(text: str, locale: str = "") -> str | None:
    from bot.reminders.parse import read_schedule  # the reminders' own reader: one way to read a schedule

    reading = read_schedule(text, locale)
    return text.strip()[:120] if reading.understood else None


# -- duration ------------------------------------------------------------------------------------

_EN_COUNT = r"(?:\d+(?:\.\d+)?|a|an|one|two|three|four|five|six|seven|eight|nine|ten|a few|few|a couple of|couple of|couple|several|many)"
_EN_DURATION = re.compile(
    r"(?<!every )(?<!each )(?<!per )\b(?:(?:for|since|about|around|over|almost|nearly|past|the past|the last|last)\s+)*"
    + _EN_COUNT + r"\s*(?:more\s+)?(?:hours?|hrs?|days?|weeks?|wks?|months?|years?|yrs?)\b(?!\s*(?:-\s*)?old)"
    r"(?!\s+(?:pregnant|ago|of pregnancy))(?:\s+now)?"
    r"|\bsince\s+(?:yesterday|last\s+\w+|this\s+morning|the\s+weekend|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|\d+\s+days?\s+ago)\b"
    r"|\b(?:for\s+)?ages\b|\b\d+\s+(?:days?|weeks?|months?)\s+ago\b")
_ZH_DURATION = re.compile(
    r"(?<![每隔孕])(?<!宝宝)(?<!孩子)(?<!婴儿)(?<!小孩)(?:\d+|几|半|两|一)(?:个)?多?(?:个)?(?:小时|天|日|周|星期|礼拜|月|年)"
    r"(?:多|左右)?了?"
    r"(?![大\d]|的宝|的孩|的娃|岁|次|一次|[\d]+次)"
    r"|(?:从)?(?:昨天|昨晚|前天|今天早上|今早|上周|上个星期|上星期|上个月|去年)(?:晚上|早上|下午)?(?:开始|起)"
    r"|(?:好|很)(?:几天|久|长时间)了")


def duration(text: str, locale: str = "") -> str | None:
    canon = canonical(text)
    found = _ZH_DURATION.search(canon) or _EN_DURATION.search(canon)
    if found is None:
        return None
    said = found.group().strip()
    if re.fullmatch(r"(?:a|an|one|1)\s*(?:day|days)", said):  # "3 times a day": a frequency
        before = canon[:found.start()]
        if re.search(r"(?:times?|x|once|twice)\s*$", before):
            return None
    return said


# -- who the patient is --------------------------------------------------------------------------

# relation → the intake answer it means (flows/intake.yml `patient_is`)
RELATIONS: dict[str, str] = {"mother": "parent", "father": "parent", "parent": "parent", "son": "child",
                             "daughter": "child", "child": "child", "baby": "child", "husband": "other",
                             "wife": "other", "partner": "other", "grandmother": "other", "grandfather": "other",
                             "brother": "other", "sister": "other", "friend": "other"}
_EN_RELATION = {"mother": "mother", "mom": "mother", "mum": "mother", "mommy": "mother", "mummy": "mother",
                "mama": "mother", "father": "father", "dad": "father", "daddy": "father", "papa": "father",
                "son": "son", "daughter": "daughter", "child": "child", "kid": "child", "boy": "son",
                "girl": "daughter", "toddler": "child", "baby": "baby", "infant": "baby", "newborn": "baby",
                "husband": "husband", "wife": "wife", "partner": "partner", "grandma": "grandmother",
                "grandmother": "grandmother", "granny": "grandmother", "nan": "grandmother",
                "grandpa": "grandfather", "grandfather": "grandfather", "granddad": "grandfather",
                "brother": "brother", "sister": "sister", "friend": "friend", "parents": "parent"}
_ZH_RELATION = [("妈妈", "mother"), ("老妈", "mother"), ("母亲", "mother"), ("我妈", "mother"), ("我娘", "mother"),
                ("爸爸", "father"), ("老爸", "father"), ("父亲", "father"), ("我爸", "father"),
                ("儿子", "son"), ("女儿", "daughter"), ("宝宝", "baby"), ("宝贝", "baby"), ("婴儿", "baby"),
                ("孩子", "child"), ("小孩", "child"), ("娃", "child"), ("闺女", "daughter"),
                ("老公", "husband"), ("丈夫", "husband"), ("老婆", "wife"), ("妻子", "wife"), ("媳妇", "wife"),
                ("爱人", "partner"), ("奶奶", "grandmother"), ("外婆", "grandmother"), ("姥姥", "grandmother"),
                ("爷爷", "grandfather"), ("外公", "grandfather"), ("姥爷", "grandfather"),
                ("哥哥", "brother"), ("弟弟", "brother"), ("姐姐", "sister"), ("妹妹", "sister"),
                ("朋友", "friend"), ("父母", "parent")]
_GREETING = re.compile(r"^(?:(?:hi|hello|hey|dear|doctor|doc|good morning|good evening|good afternoon|please|pls|"
                       r"sorry|excuse me|你好|您好|医生|大夫|请问|麻烦|打扰)[\s,，.!！:：~]*)+")
_EN_SUBJECT = re.compile(r"^my\s+(?:(?:\d+\s*(?:-\s*)?(?:year|yr|month|week|day)s?\s*(?:-\s*)?old|little|elderly|old|"
                         r"older|younger|baby|teenage|teen|eldest|youngest)\s+)*(\w+)(?:'s)?\b"
                         r"(?:\s+(?:\w+\s+){0,2}?(has|have|had|is|was|got|gets|keeps|kept|can't|cant|cannot|"
                         r"can|feels|felt|fell|been|won't|wont|is|seems|started|woke|hurt|hurts|threw|vomited|"
                         r"developed|complains|says|wants|wanted|tried|took|cut|cuts|talks|talked|is\s+talking|keeps\s+talking|"
                         r"texted|messaged|posted|threatened|threatens|'s))?")
_EN_AGE_ONLY = re.compile(r"^my\s+\d+\s*(?:-\s*)?(?:year|yr|month|week)s?\s*(?:-\s*)?old\b")


def _relation(canon: str) -> str | None:
    head = _GREETING.sub("", canon.strip())
    if re.search(r"[\u3400-\u9fff]", head[:6]):
        head = re.sub(r"^(?:我家|我们家|我的|我)(?=[\u3400-\u9fff])", lambda m: "我" if head[m.end():m.end() + 1] in "妈爸娘" else "", head)
        for word, relation in _ZH_RELATION:
            if head.startswith(word):
                return relation
        return None
    if _EN_AGE_ONLY.match(head):
        return "child"  # "my 2 year old has a fever"
    m = _EN_SUBJECT.match(head)
    if m is None or m.group(1) not in _EN_RELATION:
        return None
    if m.group(2) in (None, "says"):  # "my mum says I…", "my dad's diabetes": not who is ill
        return None
    return _EN_RELATION[m.group(1)]


def relation(text: str, locale: str = "") -> str | None:
    return _relation(canonical(text))


def patient_is(text: str, locale: str = "") -> str | None:
    found = _relation(canonical(text))
    return RELATIONS.get(found) if found else None


READERS: dict[str, Callable[[str, str], str | None]] = {
    "medicine": medicine, "dose": dose, "schedule": schedule, "duration": duration, "relation": relation,
    "patient_is": patient_is}


def read_slots(text: str, fills: dict[str, str], locale: str = "") -> dict[str, str]:
    """slot → value for every reader in `fills` (slot → reader name) that found something."""
    out: dict[str, str] = {}
    for slot, reader in fills.items():
        value = READERS[reader](text, locale)
        if value:
            out[slot] = value
    return out
