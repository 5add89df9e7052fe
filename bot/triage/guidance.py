"""What to do while waiting for the ambulance, per kind of red flag (`content/guidance/<kind>.yml`).

    rules: [acute_stroke_face, stroke_signs]       # triage rule ids that send this guidance
    sources:                                        # at least one; shown under the steps
      - { publisher: {zh-CN: 美国卒中协会, en: American Stroke Association},
          title: Stroke Symptoms, url: "https://www.stroke.org/en/about-stroke/stroke-symptoms" }
    zh-CN: { title: 等待急救时, steps: [记下开始的时间…, 不要吃喝…] }
    en:    { title: While you wait, steps: [Note the time it started…, Nothing to eat or drink…] }

The safety stage sends it right after the emergency reply (`guidance.<kind>` is the message's key).
A step may name the region's numbers (`content/care.yml` region.numbers): `{{ ambulance }}`,
`{{ police }}`, `{{ mental_health }}`, `{{ poison_centre }}`; a step naming a number the region
does not have is left out, so "call the poison centre on …" never shows without a number.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from bot.errors import ConfigError, ConfigProblem
from bot.flow.expr import Compiled, ExprError, compile_template
from bot.triage.model import EMERGENCY_LEVELS, TriageRules
from bot.yamlsrc import Source, load_yaml

NUMBERS = ("ambulance", "police", "mental_health", "poison_centre")
MAX_PER_EMERGENCY = 2  # more than two cards of steps is more than anyone reads in an emergency
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)")
_FIELDS = ("rules", "sources", "reviewed")


@dataclass(frozen=True)
class Step:
    render: Compiled
    needs: tuple[str, ...]  # the numbers it names: left out when the region lacks one


@dataclass(frozen=True)
class Cited:
    publisher: Mapping[str, str]  # locale → name ("" key: the same in every locale)
    title: Mapping[str, str]
    url: str

    def line(self, locale: str) -> str:
        def pick(texts: Mapping[str, str]) -> str:
            return texts.get(locale) or texts.get("") or next(iter(texts.values()), "")
        return " · ".join(part for part in (pick(self.publisher), pick(self.title), self.url) if part)


@dataclass(frozen=True)
class Kind:
    id: str
    rules: tuple[str, ...]
    texts: Mapping[str, tuple[str, tuple[Step, ...]]]  # locale → (title, steps)
    sources: tuple[Cited, ...]
    file: str


@dataclass(frozen=True)
class Guidance:
    """Every kind of guidance, and which kinds each triage rule sends."""

    kinds: Mapping[str, Kind]
    by_rule: Mapping[str, tuple[str, ...]]
    base_locale: str = "zh-CN"

    def kinds_for(self, rule_ids: Iterable[str]) -> list[str]:
        """The kinds the fired rules send, in the order the rules fired, each once, at most two."""
        found: list[str] = []
        for rule in rule_ids:
            for kind in self.by_rule.get(rule, ()):
                if kind not in found:
                    found.append(kind)
        return found[:MAX_PER_EMERGENCY]

    def render(self, kind: str, locale: str, numbers: Mapping[str, str], source_label: str = "Source") -> str:
        """Title, numbered steps (those whose numbers the region has), then where it comes from."""
        entry = self.kinds[kind]
        texts = entry.texts
        chosen = texts.get(locale) or texts.get(locale.split("-")[0]) or texts.get(self.base_locale) \
            or next(iter(texts.values()))
        title, steps = chosen
        values = {name: numbers.get(name, "") for name in NUMBERS}
        shown = [str(step.render(values)).strip() for step in steps if all(values[n] for n in step.needs)]
        lines = [title, *(f"{i}. {text}" for i, text in enumerate(shown, 1))]
        lang = locale if locale in texts else self.base_locale
        colon = "：" if lang.startswith("zh") else ": "
        lines += [f"{source_label}{colon}{cited.line(lang)}" for cited in entry.sources]
        return "\n".join(lines)


def load_guidance(content_dir: Path, locales: Iterable[str], triage: Mapping[str, TriageRules],
                  base_locale: str = "zh-CN") -> Guidance:
    """Read `guidance/*.yml`; raise one ConfigError naming every problem with its file and line."""
    locales = sorted(locales)
    levels: dict[str, set[str]] = {}
    for rules in triage.values():
        for rule in rules.rules:
            levels.setdefault(rule.id, set()).add(rule.level)
    problems: list[ConfigProblem] = []
    kinds: dict[str, Kind] = {}
    directory = Path(content_dir) / "guidance"
    for path in sorted(directory.glob("*.yml")) if directory.is_dir() else []:
        try:
            source = load_yaml(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        kind = _kind(source, path.stem, locales, levels, problems)
        if kind is not None:
            kinds[kind.id] = kind
    if problems:
        raise ConfigError(problems)
    by_rule: dict[str, tuple[str, ...]] = {}
    for kind in kinds.values():
        for rule in kind.rules:
            by_rule[rule] = (*by_rule.get(rule, ()), kind.id)
    return Guidance(kinds, by_rule, base_locale)


def _kind(source: Source, kind_id: str, locales: list[str], levels: dict[str, set[str]],
          problems: list[ConfigProblem]) -> Kind | None:
    data = source.data
    if not isinstance(data, dict):
        problems.append(source.problem((), "guidance is a mapping: rules, sources, and a title and steps per locale "
                                            f"({', '.join(locales)})"))
        return None
    before = len(problems)
    for key in data:
        if key not in _FIELDS and key not in locales:
            problems.append(source.problem((key,), f"unknown key {key!r}; valid: {', '.join(_FIELDS)} or a locale "
                                                   f"of content/messages ({', '.join(locales)})"))
    rules = _rules(source, data.get("rules"), levels, problems)
    sources = _sources(source, data.get("sources"), locales, problems)
    texts: dict[str, tuple[str, tuple[Step, ...]]] = {}
    for locale in locales:
        text = _text(source, data, locale, problems)
        if text is not None:
            texts[locale] = text
    if len(problems) > before:
        return None
    return Kind(kind_id, rules, texts, sources, source.file)


def _rules(source: Source, value: Any, levels: dict[str, set[str]], problems: list[ConfigProblem]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.append(source.problem(("rules",), "`rules` lists the triage rule ids that send this guidance, "
                                                   "e.g. rules: [stroke_signs, acute_stroke_face]"))
        return ()
    ids = []
    for i, rule in enumerate(value):
        rule = str(rule)
        if rule not in levels:
            near = difflib.get_close_matches(rule, levels, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            problems.append(source.problem(("rules", i), f"{rule!r} is not a triage rule id in content/triage "
                                                         f"(<locale>.yml or <locale>/*.yml){hint}"))
        elif not levels[rule] & set(EMERGENCY_LEVELS):
            problems.append(source.problem(("rules", i), f"rule {rule!r} is at level {', '.join(sorted(levels[rule]))}; "
                                                         "guidance is sent only with an emergency reply, so list "
                                                         "emergency or emergency_ambulance rules"))
        ids.append(rule)
    return tuple(ids)


def _per_locale(value: Any, locales: list[str]) -> dict[str, str] | None:
    if isinstance(value, str) and value.strip():
        return {"": value.strip()}
    if isinstance(value, dict) and value and all(k in locales and isinstance(v, str) and v.strip()
                                                 for k, v in value.items()):
        return {k: v.strip() for k, v in value.items()}
    return None


def _sources(source: Source, value: Any, locales: list[str], problems: list[ConfigProblem]) -> tuple[Cited, ...]:
    example = ('sources: [{publisher: NHS, title: Anaphylaxis, url: "https://www.nhs.uk/conditions/anaphylaxis/"}]')
    if not isinstance(value, list) or not value:
        problems.append(source.problem(("sources",) if "sources" in source.data else (),
                                       f"guidance names where it comes from: {example}"))
        return ()
    cited = []
    for i, item in enumerate(value):
        item = item if isinstance(item, dict) else {}
        publisher = _per_locale(item.get("publisher"), locales)
        title = _per_locale(item.get("title"), locales)
        url = str(item.get("url") or "")
        for name, ok in (("publisher", publisher), ("title", title)):
            if ok is None:
                problems.append(source.problem(("sources", i, name) if name in item else ("sources", i),
                                               f"a source needs `{name}`: text, or text per locale "
                                               f"({', '.join(locales)})"))
        if not re.match(r"https?://\S+$", url):
            problems.append(source.problem(("sources", i, "url") if "url" in item else ("sources", i),
                                           "a source needs `url`: the http(s) address a reader can check"))
        if publisher and title:
            cited.append(Cited(publisher, title, url))
    return tuple(cited)


def _text(source: Source, data: dict, locale: str, problems: list[ConfigProblem]) -> tuple[str, tuple[Step, ...]] | None:
    body = data.get(locale)
    for key in body if isinstance(body, dict) else ():
        if key not in ("title", "steps"):
            problems.append(source.problem((locale, key), f"unknown key {key!r}; valid: title, steps"))
    if not isinstance(body, dict) or not isinstance(body.get("title"), str) or not body["title"].strip() \
            or not isinstance(body.get("steps"), list) or not body["steps"]:
        problems.append(source.problem((locale,) if locale in data else (),
                                       f"no {locale} text: add {locale}: {{title: …, steps: [first step, …]}}"))
        return None
    steps = []
    for i, step in enumerate(body["steps"]):
        loc = (locale, "steps", i)
        if not isinstance(step, str) or not step.strip():
            problems.append(source.problem(loc, "a step is one line of text"))
            continue
        names = tuple(dict.fromkeys(_PLACEHOLDER.findall(step)))
        unknown = [n for n in names if n not in NUMBERS]
        if unknown:
            problems.append(source.problem(loc, f"unknown placeholder {unknown[0]!r}; a step may name "
                                                f"{', '.join('{{ ' + n + ' }}' for n in NUMBERS)}"))
            continue
        try:
            steps.append(Step(compile_template(step.strip()), names))
        except ExprError as exc:
            problems.append(source.problem(loc, str(exc)))
    return body["title"].strip(), tuple(steps)
