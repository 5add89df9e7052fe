"""The start-up cache (bot/buildcache.py): compiled triage rules and model weights reused between
starts, keyed by the hash of what built them, checked before use, rebuilt when stale or damaged."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from bot import buildcache
from bot.errors import ConfigError
from bot.triage import PatientContext, load_all_triage
from bot.triage.screen import Screener
from bot.understand.learned import MODELS_DIR, load_intent_model, load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("CAREBOT_CACHE_DIR", str(directory))
    return directory


def test_a_value_is_built_once_then_read(cache):
    calls = []

    def build():
        calls.append(1)
        return {"a": [1, 2]}

    assert buildcache.cached("thing", "k1", build, lambda v: isinstance(v, dict)) == {"a": [1, 2]}
    assert buildcache.cached("thing", "k1", build, lambda v: isinstance(v, dict)) == {"a": [1, 2]}
    assert calls == [1]
    assert [p.name.split("-")[0] for p in cache.iterdir()] == ["thing"]


def test_a_new_key_rebuilds_and_only_the_newest_entries_are_kept(cache):
    for n in range(buildcache.KEEP + 2):
        assert buildcache.cached("thing", f"k{n}", lambda: n, lambda v: True) == n
    assert len(list(cache.glob("thing-*.pickle"))) == buildcache.KEEP
    last = buildcache.KEEP + 1
    assert buildcache.cached("thing", f"k{last}", lambda: "again", lambda v: True) == last


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_a_damaged_entry_is_ignored_and_rebuilt(cache, damage):
    buildcache.cached("thing", "k1", lambda: list(range(1000)), lambda v: True)
    (entry,) = cache.glob("thing-*.pickle")
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[:len(data) // 2], "flip": data[:-10] + bytes([data[-10] ^ 1]) + data[-9:],
                       "garbage": b"\x00\x01not a cache", "empty": b""}[damage])
    assert buildcache.cached("thing", "k1", lambda: "rebuilt", lambda v: True) == "rebuilt"
    assert buildcache.cached("thing", "k1", lambda: "again", lambda v: True) == "rebuilt"  # and written back


def test_an_entry_of_the_wrong_shape_is_rebuilt(cache):
    buildcache.cached("thing", "k1", lambda: "a string", lambda v: True)
    assert buildcache.cached("thing", "k1", lambda: {"ok": 1}, lambda v: isinstance(v, dict)) == {"ok": 1}


def test_an_entry_for_another_key_is_not_used_even_under_the_same_name(cache):
    buildcache.cached("thing", "k" * 40, lambda: "first", lambda v: True)
    # the file name holds 32 characters of the key; the header holds all of it
    assert buildcache.cached("thing", "k" * 32 + "x" * 8, lambda: "second", lambda v: True) == "second"


def test_a_failed_build_writes_nothing(cache):
    def fail():
        raise ConfigError([])

    with pytest.raises(ConfigError):
        buildcache.cached("thing", "k1", fail, lambda v: True)
    assert not cache.exists() or not list(cache.iterdir())


def test_off_and_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("CAREBOT_CACHE_DIR", "off")
    assert buildcache.cache_dir() is None
    assert buildcache.cached("thing", "k1", lambda: 5, lambda v: True) == 5
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CAREBOT_CACHE_DIR", str(blocker / "sub"))  # cannot be created: speed lost, not the value
    assert buildcache.cached("thing", "k1", lambda: 6, lambda v: True) == 6


def test_the_key_follows_the_files_and_the_code(tmp_path):
    a = tmp_path / "a.yml"
    a.write_text("x: 1\n")
    first = buildcache.key_of("triage", [a], ["buildcache.py"])
    assert buildcache.key_of("triage", [a], ["buildcache.py"]) == first
    a.write_text("x: 2\n")
    assert buildcache.key_of("triage", [a], ["buildcache.py"]) != first
    assert buildcache.key_of("triage", [a], ["buildcache.py", "triage/rules.py"]) != buildcache.key_of(
        "triage", [a], ["buildcache.py"])


def copy_triage(tmp_path: Path) -> Path:
    content = tmp_path / "content"
    for part in ("triage", "departments"):
        shutil.copytree(ROOT / "content" / part, content / part)
    return content


def test_cached_rules_screen_exactly_as_freshly_loaded_ones(tmp_path, cache):
    content = copy_triage(tmp_path)
    fresh = Screener(load_all_triage(content, cache=False))
    load_all_triage(content)  # writes the entry
    assert len(list(cache.glob("triage-*.pickle"))) == 1
    cached = Screener(load_all_triage(content))
    messages = ["胸口压着疼，出冷汗，左边胳膊麻", "my 6 week old has a fever of 38.5", "没有发烧 胸口疼", "好的",
                "she is 30 weeks pregnant and has a bad headache and blurry vision", "孕二十周 肚子疼 见红了"]
    for text in messages:
        for locale in ("zh-CN", "en"):
            for context in (None, PatientContext(age_months=2)):
                a, b = fresh.screen(text, locale, context), cached.screen(text, locale, context)
                assert a.assessment == b.assessment and a.explain() == b.explain()


def test_an_edited_rule_file_is_read_again_and_a_broken_one_reported_with_file_and_line(tmp_path, cache):
    content = copy_triage(tmp_path)
    load_all_triage(content)
    zh = content / "triage" / "zh-CN.yml"
    text = zh.read_text(encoding="utf-8")
    zh.write_text(text.replace("default_level: consultation", "default_level: consultation_24", 1), encoding="utf-8")
    assert load_all_triage(content)["zh-CN"].default_level == "consultation_24"
    extra = content / "triage" / "zh-CN" / "zz_broken.yml"
    extra.write_text("symptoms:\n  broken_thing:\n    patterns: ['胸口(疼']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_all_triage(content)
    assert f"{extra}:3: symptoms.broken_thing.patterns[0]: invalid regex '胸口(疼'" in str(err.value)
    extra.unlink()
    assert load_all_triage(content)["zh-CN"].default_level == "consultation_24"  # the good entry again


@pytest.mark.parametrize("name,load", [("triage", load_model), ("intents", load_intent_model)])
def test_models_through_the_cache_are_the_same_models(cache, name, load):
    path = MODELS_DIR / f"{name}.json"
    fresh = load(path, cache=False)
    assert load(path) == fresh  # built and written
    assert load(path) == fresh  # read back
    assert pickle.loads(pickle.dumps(fresh)) == fresh
    assert len(list(cache.glob(f"model_{name}-*.pickle"))) == 1


def test_a_memo_answers_from_the_stored_entry_and_keeps_only_what_was_used(cache):
    made = []

    def make(item):
        made.append(item)
        if item == "bad":
            raise ValueError("does not compile")
        return item.upper()

    first = buildcache.Memo("memo", ("buildcache.py",))
    assert first.get("a", make) == "A" and first.get("b", make) == "B"
    with pytest.raises(ValueError):
        first.get("bad", make)
    first.save()
    again = buildcache.Memo("memo", ("buildcache.py",))  # a new start
    assert again.get("a", make) == "A"
    assert made == ["a", "b", "bad"]  # read, not made again
    with pytest.raises(ValueError):  # a failure is never kept
        again.get("bad", make)
    again.save()  # nothing new: the entry still holds a and b
    third = buildcache.Memo("memo", ("buildcache.py",))
    assert third.get("b", make) == "B" and made == ["a", "b", "bad", "bad"]
    assert third.get("c", make) == "C"
    third.save()  # only what this start used: b and c
    stored = buildcache.load("memo", third._key())
    assert set(stored) == {"b", "c"}
    other = buildcache.Memo("memo", ("buildcache.py",), ("another version",))  # another key: built afresh
    assert other.get("b", make) == "B" and made[-1] == "b"


def test_templates_through_the_memo_render_as_freshly_compiled_ones(cache):
    from jinja2 import TemplateSyntaxError

    from bot.flow import expr
    from bot.flow.names import read_names

    source = "{% set n = slots.name %}Hello {{ n | default('you') }}, {{ care.price }} at {{ now.hour }}"
    memo = expr.MEMO
    expr.MEMO = buildcache.Memo("templates-test", ("flow/expr.py",))
    try:
        context = {"slots": {"name": "Li"}, "care": {"price": 30}, "now": {"hour": 9}}
        fresh = expr.ENV.from_string(source).render(context)
        assert fresh == "Hello Li, 30 at 9"
        expr.compile_template.cache_clear()
        assert expr.compile_template(source)(context) == fresh
        expr.MEMO.save()
        expr.MEMO = buildcache.Memo("templates-test", ("flow/expr.py",))  # the next start reads the code
        expr.compile_template.cache_clear()
        assert expr.compile_template(source)(context) == fresh
        assert expr.MEMO._new is False
        with pytest.raises(expr.ExprError, match="does not compile"):
            expr.compile_template("{{ unclosed")
        with pytest.raises(TemplateSyntaxError):
            expr.MEMO.get(("code", "{{ unclosed"), expr._template_code)
    finally:
        expr.MEMO = memo
        expr.compile_template.cache_clear()
    assert read_names(source, False) == {"slots", "care", "now"}
