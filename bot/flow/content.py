"""Messages per locale, referenced by content key and rendered with fallback to the base locale.

`content/messages/<locale>.yml` holds nested mappings; `intake: {welcome: "…"}` is the key
`intake.welcome`. Built-in defaults (repair messages) ship inside the package and are overlaid by the
operator's files, so an operator can reword anything without copying everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, ConfigProblem
from bot.flow.expr import Compiled, ExprError, compile_template
from bot.yamlsrc import Source, load_yaml

BUILTIN_DIR = Path(__file__).parent / "builtin"


@dataclass
class Message:
    key: str
    locale: str
    source: str
    render: Compiled
    file: str
    line: int


@dataclass
class Content:
    base_locale: str
    messages: dict[str, dict[str, Message]] = field(default_factory=dict)  # locale → key → Message

    @property
    def locales(self) -> list[str]:
        return sorted(self.messages)

    def has(self, key: str) -> bool:
        return key in self.messages.get(self.base_locale, {})

    def lookup(self, key: str, locale: str) -> Message | None:
        msg = self.messages.get(locale, {}).get(key)
        if msg is None and "-" in locale:  # "en-US" → "en"
            msg = self.messages.get(locale.split("-")[0], {}).get(key)
        if msg is None:
            msg = self.messages.get(self.base_locale, {}).get(key)
        return msg

    def render(self, key: str, locale: str, ctx: dict[str, Any]) -> str:
        msg = self.lookup(key, locale)
        if msg is None:
            raise KeyError(f"content key {key!r} is not defined in any locale")
        return str(msg.render(ctx)).strip()

    def normalize_locale(self, locale: str) -> str:
        if locale in self.messages:
            return locale
        short = locale.split("-")[0].lower() if locale else ""
        for known in self.messages:
            if known.split("-")[0].lower() == short:
                return known
        return self.base_locale


def _flatten(source: Source, node: Any, loc: tuple, out: dict[str, tuple[str, tuple]], problems: list) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _flatten(source, v, (*loc, k), out, problems)
    elif isinstance(node, (str, int, float)):
        out[".".join(str(p) for p in loc)] = (str(node), loc)
    else:
        problems.append(source.problem(loc, "a message must be text or a mapping of messages"))


def load_content(content_dirs: list[Path], base_locale: str = "zh-CN") -> Content:
    """Load `messages/<locale>.yml` from each directory in order; later directories override."""
    content = Content(base_locale=base_locale)
    problems: list[ConfigProblem] = []
    for directory in [BUILTIN_DIR, *content_dirs]:
        msg_dir = Path(directory) / "messages"
        if not msg_dir.is_dir():
            continue
        # messages/<locale>.yml and messages/<locale>/*.yml (one file per topic) both work
        files = [(p.stem, p) for p in sorted(msg_dir.glob("*.yml"))]
        files += [(d.name, p) for d in sorted(msg_dir.iterdir()) if d.is_dir() for p in sorted(d.glob("*.yml"))]
        defined_here: dict[tuple[str, str], Message] = {}
        for locale, path in files:
            try:
                source = load_yaml(path)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            flat: dict[str, tuple[str, tuple]] = {}
            if source.data is not None:
                _flatten(source, source.data, (), flat, problems)
            bucket = content.messages.setdefault(locale, {})
            for key, (text, loc) in flat.items():
                twin = defined_here.get((locale, key))
                if twin is not None:
                    problems.append(source.problem(loc, f"content key {key!r} is also defined in {twin.file}:{twin.line}"))
                    continue
                try:
                    render = compile_template(text)
                except ExprError as exc:
                    problems.append(source.problem(loc, str(exc)))
                    continue
                bucket[key] = defined_here[(locale, key)] = Message(
                    key, locale, text, render, source.file, source.line(loc))
    for directory in content_dirs:
        problems.extend(_load_articles(Path(directory) / "articles", content))
    if base_locale not in content.messages:
        problems.append(ConfigProblem(
            "content/messages", 0, "", f"no messages for the base locale {base_locale!r}; "
            f"found locales: {', '.join(content.locales) or 'none'}"))
    if problems:
        raise ConfigError(problems)
    return content


def _load_articles(article_dir: Path, content: Content) -> list[ConfigProblem]:
    """`articles/<id>.yml`: a health article in each locale, always with its source. Each becomes
    the content key `article.<id>`: title, body, then the source line, so no article is ever sent
    without saying where it comes from."""
    problems: list[ConfigProblem] = []
    if not article_dir.is_dir():
        return problems
    for path in sorted(article_dir.glob("*.yml")):
        try:
            source = load_yaml(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        data = source.data if isinstance(source.data, dict) else {}
        article_id = str(data.get("id") or path.stem)
        cited = data.get("source")
        locales = [k for k in data if k not in ("id", "source", "reviewed")]
        if not isinstance(cited, dict) or not any(isinstance(v, str) and v.strip() for v in cited.values()):
            problems.append(source.problem(("source",) if "source" in data else (),
                f"article {article_id!r} has no source; every article names where it comes from, e.g. "
                "source: {zh-CN: 中国痤疮治疗指南（2019修订版）, en: Chinese acne guideline (2019)}"))
            continue
        for locale in locales:
            body = data[locale]
            if not isinstance(body, dict) or not body.get("title") or not body.get("body"):
                problems.append(source.problem((locale,), "an article locale needs `title` and `body`"))
                continue
            cite = cited.get(locale) or cited.get(content.base_locale) or next(iter(cited.values()))
            label = content.lookup("common.source", locale)
            label_text = label.source if label else "Source"
            url = f" {cited['url']}" if cited.get("url") else ""
            text = f"{body['title']}\n\n{str(body['body']).strip()}\n\n{label_text}: {cite}{url}"
            try:
                render = compile_template(text)
            except ExprError as exc:
                problems.append(source.problem((locale,), str(exc)))
                continue
            key = f"article.{article_id}"
            content.messages.setdefault(locale, {})[key] = Message(
                key, locale, text, render, source.file, source.line((locale,)))
    return problems


def missing_by_locale(content: Content) -> list[ConfigProblem]:
    """Every key defined in some locale but missing in another, named with the locale."""
    problems = []
    all_keys: dict[str, Message] = {}
    for bucket in content.messages.values():
        for key, msg in bucket.items():
            all_keys.setdefault(key, msg)
    for locale in content.locales:
        bucket = content.messages[locale]
        for key, msg in sorted(all_keys.items()):
            if key not in bucket:
                problems.append(ConfigProblem(
                    msg.file, msg.line, key,
                    f"content key {key!r} is missing in locale {locale} "
                    f"(add it to messages/{locale}.yml)"))
    return problems
