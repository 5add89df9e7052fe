"""Typed requests understood: which flow a free-text message asks for, and what a typed answer means.

Operators write the cues in `content/understand/<locale>.yml` (weighted words and phrases per intent,
a few patterns, and words for the options of typed questions); this component reads the canonical form
of a message (bot.understand.normalize) and

- `classify(text, locale)` scores every intent: the sum of the weights of the distinct cues found
  (Chinese cues anywhere, Latin cues as whole words, one-letter typos forgiven in long Latin words)
  plus the patterns that match. Chinese homophones typed for the intended word (资询 for 咨询) are
  read as that word first; a cue just after a negator ("not", "don't", 不是 — "not delete my account,
  just stop the messages") is taken back: it counts nothing. The best intent routes when its score reaches the file's `threshold`
  and leads the runner-up by `margin`; otherwise nothing routes. Every cue that counted is in the
  explanation with the file and line it came from.
- `read_answer(spec, …)` reads a typed answer the strict reader (bot.engine.answers) refused: option
  words per slot, yes/no words, words of a five-point scale placed on the question's range, and
  numbers written in words (九分, "nine out of ten").

Every locale's cues are read for every message, so an English request in a Chinese conversation is
understood too. Pure and fast: dict look-ups over a message's word n-grams and Chinese substrings.

Why this file is over 400 lines: the content file's schema, the cue index and the classifier are
one component read top to bottom (spaCy/Rasa style: a component owns its config, its index and its
decision), and the negation and longest-match helpers only make sense next to the scoring they
adjust. The file is sectioned (content file · matching · results · the component) for reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.engine.answers import Invalid, clean
from bot.understand.normalize import zh_number
from bot.engine.answers import read_answer as strict_answer
from bot.errors import ConfigError, ConfigProblem
from bot.understand.learned import MODELS_DIR, IntentModel, load_intent_model
from bot.understand.normalize import canonical
from bot.understand.slots import Reader, read_slots
from bot.yamlsrc import Source, load_yaml

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[a-z0-9]+")
_LATIN = 1 << 20  # Latin positions count words from here, after any Chinese character position
_TYPO_MIN = 6  # Latin words this long may carry one typo ("docter", "servise")
_NEGATION_REACH = {True: 3, False: 4}  # how far a negator reaches: Latin words, Chinese characters
_PHRASE = 3.0  # a cue this strong is a request alone; inside another intent's longer strong cue it counts nothing


# -- the content file ----------------------------------------------------------------------------

class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_YES_NO = {"yes": True, "no": False, "unsure": None}


class PatternSpec(_M):
    re: str = Field(description="a regular expression over the canonical text")
    weight: float

    @field_validator("re")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class IntentSpec(_M):
    flow: str = Field(description="the flow this request starts (a flow id in flows/)")
    keep_text: str | None = Field(None, description="a slot the message itself fills (e.g. complaint)")
    fills: dict[str, Reader] = Field(default_factory=dict, description=(
        "slot → the reader (bot/understand/slots.py) that takes its value from the message: a reminder "
        "request's medicine, dose and schedule"))
    routes_mid_flow: bool = Field(True, description="false: only at the menu, never over a running flow")
    cues: dict[float, list[str]] = Field(default_factory=dict, description="weight → words and phrases")
    patterns: list[PatternSpec] = Field(default_factory=list)


class AnswerWords(_M):
    choices: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="slot → option value → words that mean it")
    yes_no: dict[Literal["yes", "no", "unsure"], list[str]] = Field(
        default_factory=dict, description="unsure: words that make an answer no answer (not sure, 不确定)")
    scale: dict[int, list[str]] = Field(default_factory=dict,
                                        description="1–5 → words; placed on the question's own range")
    numbers: dict[str, int] = Field(default_factory=dict, description="number words: nine → 9")


class Lexicon(_M):
    threshold: float = Field(2.0, description="the score an intent needs to route")
    margin: float = Field(0.5, description="its lead over the runner-up")
    homophones: dict[str, str] = Field(
        default_factory=dict, description="a Chinese word typed by sound → the word meant: 资询 → 咨询")
    negators: list[str] = Field(
        default_factory=list, description="words that take back a cue right after them: not, 不是")
    intents: dict[str, IntentSpec] = Field(default_factory=dict)
    answers: AnswerWords = Field(default_factory=AnswerWords)

    @field_validator("homophones")
    @classmethod
    def _chinese_only(cls, value: dict[str, str]) -> dict[str, str]:
        for wrong, right in value.items():
            if not (_CJK.search(wrong) and _CJK.search(right)):
                raise ValueError(f"{wrong!r} → {right!r}: homophones are Chinese words (Latin typos are "
                                 f"forgiven by the matcher)")
        return value


# -- matching ------------------------------------------------------------------------------------

def _latin_key(phrase: str) -> str:
    """One form for Latin text: canonical, apostrophes dropped, words joined by one space."""
    return " ".join(_LATIN_WORD.findall(canonical(phrase).replace("'", "")))


class Hit(NamedTuple):
    cue: str
    payload: Any
    where: str  # file:line of the cue
    at: int  # where it starts: a character for Chinese cues, _LATIN + a word for Latin ones
    end: int  # where it ends (exclusive), likewise
    fuzzy: bool = False


class CueIndex:
    """Phrases → payloads; finds every phrase of a text once (Chinese by substring, Latin by word)."""

    def __init__(self) -> None:
        self._cjk: dict[str, list[tuple[str, Any, str]]] = {}  # first two characters → (cue, payload, where)
        self._latin: dict[str, list[tuple[Any, str]]] = {}
        self._near: dict[str, set[str]] = {}  # one-deletion forms of long single-word cues
        self._known: set[str] = set()  # every word of every Latin cue: never read as a typo
        self._prefixes: set[str] = set()  # the first words of longer Latin cues

    def add(self, phrase: str, payload: Any, where: str) -> None:
        if _CJK.search(phrase):
            cue = canonical(phrase).replace(" ", "")
            self._cjk.setdefault(cue[:2], []).append((cue, payload, where))
            return
        key = _latin_key(phrase)
        if not key:
            return
        self._latin.setdefault(key, []).append((payload, where))
        words = key.split()
        self._known.update(words)
        self._prefixes.update(" ".join(words[:n]) for n in range(1, len(words)))
        if " " not in key and len(key) >= _TYPO_MIN and not key.isdigit():
            for form in _deletions(key):
                self._near.setdefault(form, set()).add(key)

    def find(self, canon: str, words: list[str]) -> list[Hit]:
        hits: list[Hit] = []
        if _CJK.search(canon):
            squeezed = canon.replace(" ", "")
            cjk = self._cjk
            for i in range(len(squeezed)):
                for cue, payload, where in cjk.get(squeezed[i], ()):  # one-character cues
                    hits.append(Hit(cue, payload, where, i, i + 1))
                for cue, payload, where in cjk.get(squeezed[i:i + 2], ()):
                    if len(cue) == 2 or squeezed.startswith(cue, i):
                        hits.append(Hit(cue, payload, where, i, i + len(cue)))
        latin, prefixes = self._latin, self._prefixes
        for i, word in enumerate(words):
            key, j = word, i
            while True:
                for payload, where in latin.get(key, ()):
                    hits.append(Hit(key, payload, where, _LATIN + i, _LATIN + j + 1))
                j += 1
                if j == len(words) or key not in prefixes:
                    break
                key = f"{key} {words[j]}"
            if len(word) >= _TYPO_MIN and word not in self._known:
                for near in self._typo_of(word):
                    for payload, where in latin[near]:
                        hits.append(Hit(near, payload, where, _LATIN + i, _LATIN + i + 1, True))
        return hits

    def _typo_of(self, word: str) -> set[str]:
        found = set(self._near.get(word, ()))
        for form in _deletions(word):
            if form in self._latin:
                found.add(form)
            found.update(self._near.get(form, ()))
        return {w for w in found if abs(len(w) - len(word)) <= 1 and w[0] == word[0]}


def _script_of(regex: str) -> str:
    """"zh" for a pattern whose every alternative needs a Chinese character, "latin" for one with no
    Chinese character at all that needs a Latin letter (\\b and words), else "" (try it on everything)."""
    if _CJK.search(regex):
        return "zh" if not re.search(r"[a-z]", re.sub(r"\\[a-zA-Z]", "", regex)) else ""
    return "latin" if re.search(r"[a-z]{2}", re.sub(r"\\[a-zA-Z]", "", regex)) else ""


def _deletions(word: str) -> list[str]:
    return [word[:i] + word[i + 1:] for i in range(len(word))]


def _words(canon: str) -> list[str]:
    return _LATIN_WORD.findall(canon.replace("'", ""))


# -- results -------------------------------------------------------------------------------------

class Evidence(NamedTuple):
    intent: str
    cue: str
    weight: float  # what it counts: 0 when a negator took it back
    where: str
    fuzzy: bool = False
    negated_by: str = ""

    def __str__(self) -> str:
        typo = " (typo forgiven)" if self.fuzzy else ""
        taken_back = f" (taken back by {self.negated_by!r})" if self.negated_by else ""
        return f"{self.intent} {self.weight:+g} {self.cue!r}{typo}{taken_back} [{self.where}]"


@dataclass(slots=True)
class Understanding:
    """What a free-text request asks for, and why."""

    intent: str | None  # the best-scoring intent (None when no cue matched)
    flow: str | None  # the flow to start when confident
    slots: dict[str, str]
    confident: bool
    score: float
    scores: dict[str, float]
    evidence: tuple[Evidence, ...]
    threshold: float
    margin: float
    learned: dict[str, Any] | None = None  # the intent model's reading, when the cues did not route

    def why(self) -> str:
        if self.learned is not None and self.learned.get("routes"):
            return (f"the cues did not route; the learned model reads {self.learned['intent']} with "
                    f"p={self.learned['p']:g} (routes at ≥ {self.learned['threshold']:g})")
        if self.intent is None:
            return "no cue of any intent matched"
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        runner = f", runner-up {ranked[1][0]} {ranked[1][1]:g}" if len(ranked) > 1 else ""
        verdict = "routes" if self.confident else "does not route"
        return (f"{self.intent} scored {self.score:g}{runner} (needs ≥ {self.threshold:g} and a lead of "
                f"{self.margin:g}): {verdict}")

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "flow": self.flow if self.confident else None, "slots": self.slots,
                "confident": self.confident, "score": round(self.score, 2),
                "scores": {k: round(v, 2) for k, v in self.scores.items()}, "why": self.why(),
                "evidence": [{"intent": e.intent, "cue": e.cue, "weight": e.weight, "where": e.where,
                              "typo": e.fuzzy, "negated_by": e.negated_by or None} for e in self.evidence],
                "learned": self.learned}


@dataclass(frozen=True)
class TypedAnswer:
    value: Any
    why: str


@dataclass
class _Locale:
    lexicon: Lexicon
    file: str  # the path, as errors name it
    lines: dict[str, int]  # intent → line of its `flow:`


# -- the component -------------------------------------------------------------------------------

@dataclass
class Intents:
    """Every locale's lexicon, indexed once. Build with `load_intents`."""

    locales: dict[str, _Locale] = field(default_factory=dict)
    _intents: CueIndex = field(default_factory=CueIndex)  # payload (intent, weight); a negator's intent is None
    # (pattern, intent, weight, where, script): script "zh" or "latin" when the pattern can only match
    # text with Chinese characters or Latin letters, else ""; a message is tried on the ones it can match
    _patterns: list[tuple[re.Pattern[str], str, float, str, str]] = field(default_factory=list)
    _choices: CueIndex = field(default_factory=CueIndex)  # payload (slot, value)
    _yes_no: CueIndex = field(default_factory=CueIndex)  # payload True | False
    _scale: CueIndex = field(default_factory=CueIndex)  # payload 1–5
    _numbers: dict[str, int] = field(default_factory=dict)
    _homophones: dict[str, str] = field(default_factory=dict)
    _homophone_re: re.Pattern[str] | None = None
    model: IntentModel | None = None  # asked only when the cues do not route

    def add(self, locale: str, lexicon: Lexicon, source: Source) -> None:
        name = Path(source.file).name
        self.locales[locale] = _Locale(lexicon, source.file, {
            intent: source.line(("intents", intent, "flow")) for intent in lexicon.intents})

        def where(*loc: str | int) -> str:
            return f"{name}:{source.line(loc)}"

        for intent, spec in lexicon.intents.items():
            for weight, phrases in spec.cues.items():
                key = next((k for k in source.data["intents"][intent]["cues"] if float(k) == weight), str(weight))
                for i, phrase in enumerate(phrases):
                    self._intents.add(phrase, (intent, weight), where("intents", intent, "cues", key, i))
            for i, p in enumerate(spec.patterns):
                self._patterns.append((re.compile(p.re), intent, p.weight, where("intents", intent, "patterns", i),
                                       _script_of(p.re)))
        words = lexicon.answers
        for slot, options in words.choices.items():
            for value, phrases in options.items():
                for i, phrase in enumerate(phrases):
                    self._choices.add(phrase, (slot, value), where("answers", "choices", slot, value, i))
        for answer, phrases in words.yes_no.items():
            for i, phrase in enumerate(phrases):
                self._yes_no.add(phrase, _YES_NO[answer], where("answers", "yes_no", answer, i))
        for point, phrases in words.scale.items():
            for i, phrase in enumerate(phrases):
                self._scale.add(phrase, point, where("answers", "scale", str(point), i))
        self._numbers.update({_latin_key(w) or canonical(w): n for w, n in words.numbers.items()})
        for i, word in enumerate(lexicon.negators):
            self._intents.add(word, (None, 0.0), where("negators", i))  # found in the same pass as cues
        self._homophones.update({canonical(w): canonical(r) for w, r in lexicon.homophones.items()})
        if self._homophones:
            self._homophone_re = re.compile("|".join(map(re.escape, sorted(self._homophones, key=len, reverse=True))))

    def _spelled(self, canon: str) -> str:
        """The canonical text with every homophone replaced by the word meant (提省 → 提醒)."""
        if self._homophone_re is None or not _CJK.search(canon):
            return canon
        return self._homophone_re.sub(lambda m: self._homophones[m.group()], canon)

    def spec_of(self, intent: str, locale: str) -> IntentSpec | None:
        """The intent as the conversation's locale defines it, else as another locale does."""
        first = self.locales.get(locale)
        if first and intent in first.lexicon.intents:
            return first.lexicon.intents[intent]
        return next((lc.lexicon.intents[intent] for lc in self.locales.values() if intent in lc.lexicon.intents), None)

    def classify(self, text: str, locale: str) -> Understanding:
        """Which flow `text` asks for (see the module docstring)."""
        canon = self._spelled(canonical(text))
        lex = (self.locales.get(locale) or next(iter(self.locales.values()))).lexicon if self.locales else Lexicon()
        evidence: list[Evidence] = []
        seen: set[tuple[str, str]] = set()
        words = _words(canon)
        hits = _longest(self._intents.find(canon, words))
        negators = [h for h in hits if h.payload[0] is None]
        if negators:
            hits = [h for h in hits if h.payload[0] is not None]
            negators = _free(negators, hits)
        breaks = _clause_starts(canon) if negators else set()
        if negators and _CJK.search(canon):
            negators = _not_rhetorical(negators, canon, breaks)
        for hit in sorted(hits, key=lambda h: h.at):
            intent, weight = hit.payload
            if (intent, hit.cue) not in seen:
                seen.add((intent, hit.cue))
                negator = _negator_before(hit, negators, breaks)
                evidence.append(Evidence(intent, hit.cue, 0.0 if negator else weight, hit.where, hit.fuzzy,
                                         negator.cue if negator else ""))
        scripts = {"", "zh" if _CJK.search(canon) else "", "latin" if words else ""}
        for pattern, intent, weight, where, script in self._patterns:
            if script not in scripts:
                continue
            m = pattern.search(canon)
            if m:
                evidence.append(Evidence(intent, m.group(), weight, where))
        scores: dict[str, float] = {}
        for e in evidence:
            scores[e.intent] = scores.get(e.intent, 0.0) + e.weight
        if not scores:
            return self._learned(Understanding(None, None, {}, False, 0.0, {}, (), lex.threshold, lex.margin),
                                 text, canon, locale)
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        best, score = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        spec = self.spec_of(best, locale)
        confident = spec is not None and score >= lex.threshold and score - second >= lex.margin
        slots = _slots(spec, text, locale) if spec is not None else {}
        result = Understanding(best, spec.flow if spec else None, slots, confident, score, dict(ranked),
                               tuple(evidence), lex.threshold, lex.margin)
        return result if confident else self._learned(result, text, canon, locale)

    def _learned(self, result: Understanding, text: str, canon: str, locale: str) -> Understanding:
        """Where the cues did not route: the intent model's best intent routes at its threshold."""
        if self.model is None or not self.model.reads(canon):
            return result
        intent, p, why = self.model.predict(canon)
        spec = self.spec_of(intent, locale)
        routes = spec is not None and p >= self.model.threshold
        result.learned = {"intent": intent, "p": round(p, 3), "threshold": self.model.threshold,
                          "routes": routes, "top_features": why}
        if not routes:
            return result
        assert spec is not None
        result.intent, result.flow, result.confident = intent, spec.flow, True
        result.slots = _slots(spec, text, locale)
        return result

    def routes_mid_flow(self, intent: str, locale: str) -> bool:
        spec = self.spec_of(intent, locale)
        return spec is not None and spec.routes_mid_flow

    def missing_flows(self, flow_ids: set[str]) -> list[ConfigProblem]:
        """A problem for every intent whose flow is not among `flow_ids`."""
        return [ConfigProblem(lc.file, lc.lines.get(intent, 0), f"intents.{intent}.flow",
                              f"no flow {spec.flow!r}; valid: {', '.join(sorted(flow_ids))}")
                for lc in self.locales.values() for intent, spec in lc.lexicon.intents.items()
                if spec.flow not in flow_ids]

    # -- typed answers -------------------------------------------------------------------------

    def read_answer(self, spec: Any, kind: str, text: str, payload: str, media: Any,
                    labels: dict[str, str], now: Any) -> Any:
        """The strict reader's value; when it refuses a typed choice, yes/no or scale answer, the value
        these words give; else the strict reader's Invalid."""
        try:
            return strict_answer(spec, kind, text, payload, media, labels, now)
        except Invalid:
            if payload or kind != "text" or spec.exact or spec.type not in ("choice", "yes_no", "scale"):
                raise
            typed = self.answer(spec, text)
            if typed is None:
                raise
            return typed.value

    def answer(self, spec: Any, text: str) -> TypedAnswer | None:
        """What a typed answer means for this question, or None (see the module docstring)."""
        canon = clean(self._spelled(canonical(text)))
        if spec.type == "choice":
            values = {c.value for c in spec.choices}
            hits = [h for h in self._choices.find(canon, _words(canon))
                    if h.payload[0] == spec.slot and h.payload[1] in values]
            hit = _first(hits)
            return TypedAnswer(hit.payload[1], f"{hit.cue!r} means {hit.payload[1]} [{hit.where}]") if hit else None
        if spec.type == "yes_no":
            hit = _first(self._yes_no.find(canon, _words(canon)))
            if hit is None or hit.payload is None:  # "not sure" is no answer
                return None
            return TypedAnswer(hit.payload, f"{hit.cue!r} means {'yes' if hit.payload else 'no'} [{hit.where}]")
        if spec.type == "scale":
            lo = int(spec.validate.min if spec.validate.min is not None else 0)
            hi = int(spec.validate.max if spec.validate.max is not None else 10)
            for n, token in self._numbers_in(canon):
                if lo <= n <= hi:
                    return TypedAnswer(n, f"the number {token!r} on a {lo}–{hi} scale")
            hit = _first(self._scale.find(canon, _words(canon)))
            if hit:
                value = round(lo + (hit.payload - 1) * (hi - lo) / 4)
                return TypedAnswer(value, f"{hit.cue!r} is {hit.payload} of 5, {value} on a {lo}–{hi} scale "
                                          f"[{hit.where}]")
        return None

    def _numbers_in(self, canon: str) -> list[tuple[int, str]]:
        """Numbers in order: digits, number words, and Chinese numerals standing alone or before 分/点/星."""
        found: list[tuple[int, int, str]] = [(m.start(), int(m.group()), m.group())
                                             for m in _DIGITS.finditer(canon) if len(m.group()) <= 3]
        for m in re.finditer(r"[a-z]+", canon):
            if m.group() in self._numbers:
                found.append((m.start(), self._numbers[m.group()], m.group()))
        for m in _ZH_NUMERAL.finditer(canon):
            n = zh_number(m.group(1))
            if n is not None:
                found.append((m.start(), n, m.group()))
        return [(n, token) for _, n, token in sorted(found)]


_DIGITS = re.compile(r"\d+(?![\d.]|[\u3400-\u9fff](?<![分星颗]))")  # not 1点点 ("a little"), 38度
_ZH_NUMERAL = re.compile(r"(?:^|(?<=[\s给打,]))([零〇一二两三四五六七八九十]{1,3})(?=$|[\s分点星颗,!吧])")


def _slots(spec: IntentSpec, text: str, locale: str) -> dict[str, str]:
    """What the request itself fills: its text (`keep_text`) and what the readers in `fills` find."""
    slots = {spec.keep_text: text.strip()} if spec.keep_text else {}
    if spec.fills:
        slots.update(read_slots(text, spec.fills, locale))
    return slots


def _longest(hits: list[Hit]) -> list[Hit]:
    """Drop a hit inside a longer one of the same intent (客服 in 人工客服): a stretch of text counts once.
    A strong cue (weight ≥ _PHRASE, a request on its own) inside a longer strong cue of another intent is
    dropped too: 停止用药提醒 is one phrase, not also 用药提醒. Weak cues (words that add up: 提醒,
    吃药) and negative ones (counter-evidence, often part of another intent's phrase) stay."""
    if len(hits) < 2:
        return hits
    out = []
    for h in hits:
        at, end, intent, weight = h.at, h.end, h.payload[0], h.payload[1]
        for o in hits:
            if (o.at <= at and end <= o.end and o.end - o.at > end - at
                    and (o.payload[0] == intent or (weight >= _PHRASE and o.payload[1] >= _PHRASE))):
                break
        else:
            out.append(h)
    return out


def _free(negators: list[Hit], hits: list[Hit]) -> list[Hit]:
    """The negators that are not part of a cue (不是 inside 是不是 negates nothing)."""
    return [n for n in negators if not any(h.at <= n.at and n.end <= h.end and h.cue != n.cue for h in hits)]


_CLAUSE_END = re.compile(r"[,.;:!?，。；：！？、]")


def _clause_starts(canon: str) -> set[int]:
    """Where clauses begin, as Hit positions: Latin words after punctuation; Chinese characters after
    punctuation or a space (Chinese typed on a phone often uses a space for a comma)."""
    starts: set[int] = set()
    text = canon.replace("'", "")
    prev = 0
    for i, m in enumerate(_LATIN_WORD.finditer(text)):
        if _CLAUSE_END.search(text, prev, m.start()):
            starts.add(_LATIN + i)
        prev = m.end()
    at, boundary = 0, False  # `at` counts characters of the text without spaces, as CueIndex.find does
    for ch in canon:
        if ch == " ":
            boundary = True
            continue
        if _CLAUSE_END.match(ch):
            boundary = True
        elif boundary:
            starts.add(at)
            boundary = False
        at += 1
    return starts


def _not_rhetorical(negators: list[Hit], canon: str, clause_starts: set[int]) -> list[Hit]:
    """Drop a Chinese negator whose clause is a rhetorical question: 这不是骗人吗 ("isn't this a
    scam?") says it is one."""
    squeezed = "".join(ch for ch in canon if ch != " ")
    ends = sorted(b for b in clause_starts if b < _LATIN) + [len(squeezed)]
    kept = []
    for n in negators:
        if n.at < _LATIN:
            end = next(b for b in ends if b > n.end) if any(b > n.end for b in ends) else len(squeezed)
            clause = squeezed[n.end:end].rstrip(",.;:!?，。；：！？、 ")
            if clause.endswith(("吗", "嘛")):
                continue
        kept.append(n)
    return kept


def _negator_before(hit: Hit, negators: list[Hit], clause_starts: set[int]) -> Hit | None:
    """A negator ending at most _NEGATION_REACH words (Latin) or characters (Chinese) before the hit,
    in the same clause ("not acceptable, how to complain" takes nothing back)."""
    latin = hit.at >= _LATIN
    for n in negators:
        if ((n.at >= _LATIN) == latin and hit.at - _NEGATION_REACH[latin] <= n.end <= hit.at
                and not any(n.end < b <= hit.at for b in clause_starts)):
            return n
    return None


def _first(hits: list[Hit]) -> Hit | None:
    """The earliest hit; at one position the longest (不太满意 over 满意)."""
    return min(hits, key=lambda h: (h.at, -len(h.cue)), default=None)


@lru_cache(maxsize=1)
def shipped_intent_model() -> IntentModel | None:
    """The intent model shipped in bot/understand/models/ (None when absent), loaded once."""
    path = MODELS_DIR / "intents.json"
    return load_intent_model(path) if path.is_file() else None


def default_content_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "content"


_BUILT_BY = ("understand/intents.py", "understand/normalize.py", "understand/sounds.py",
             "understand/data/zh_sounds.json", "understand/data/zh_sound_words.txt", "yamlsrc.py", "errors.py",
             "buildcache.py")


def load_intents(content_dir: str | Path, model: IntentModel | None | bool = True, cache: bool = True) -> Intents:
    """Read `understand/<locale>.yml` under `content_dir`; a ConfigError names file, line and field.
    `model`: the learned intent model asked where the cues do not route (True: the shipped one, when
    present; False or None: cues only). With `cache`, the cue index an earlier start built from the
    same files and code is reused (bot/buildcache.py; never written when a file has a problem)."""
    chosen = shipped_intent_model() if model is True else (model or None)
    intents = _cached_intents(Path(content_dir)) if cache else _load_intents(Path(content_dir))
    return replace(intents, model=chosen)


def _cached_intents(content_dir: Path) -> Intents:
    from importlib.metadata import version

    from bot import buildcache

    try:
        files = sorted((content_dir / "understand").glob("*.yml"))
        key = buildcache.key_of("intents", files, _BUILT_BY, extra=(str(content_dir), version("OpenCC")))
    except Exception:  # noqa: BLE001 - an unreadable file or package: load the files, which reports it
        return _load_intents(content_dir)
    return buildcache.cached("intents", key, lambda: _load_intents(content_dir),
                             lambda value: isinstance(value, Intents) and value.model is None)


def _load_intents(content_dir: Path) -> Intents:
    intents = Intents()
    problems: list[ConfigProblem] = []
    for path in sorted((Path(content_dir) / "understand").glob("*.yml")):
        try:
            source = load_yaml(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        try:
            lexicon = Lexicon.model_validate(source.data or {})
        except ValidationError as err:
            problems.extend(source.problems_from(err))
            continue
        intents.add(path.stem, lexicon, source)
    if problems:
        raise ConfigError(problems)
    return intents
