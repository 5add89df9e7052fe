"""The triage side of the understanding layer: canonical text, values, the learned layer, screening in
every language, "not now" readings, extra rule files and the eval command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.errors import ConfigError
from bot.triage import load_all_triage, load_triage
from bot.triage.engine import PatientContext, assess
from bot.triage.model import Symptom, TriageRules, literal_prefixes
from bot.triage.screen import Screener, shipped_model
from bot.understand.learned import features, long_enough
from bot.understand.normalize import canonical
from bot.understand.sounds import respell
from bot.understand.values import read_values
from tests.conftest import ROOT

CONTENT = ROOT / "content"


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener(load_all_triage(CONTENT), shipped_model())


@pytest.mark.parametrize("text, form", [
    ("孩子發燒三十九度五", "孩子发烧39.5度"),       # Traditional, numerals, decimal after 度
    ("孕二十周 肚子疼", "孕20周 肚子疼"),
    ("血压一百九", "血压190"),                   # colloquial hundreds
    ("３９度", "39度"),                          # full-width
    ("一直咳嗽 一下子就倒了", "一直咳嗽 一下子就倒了"),  # 一 that is not a number stays
    ("Chest   PAIN", "chest pain"),
    ("喝了半瓶农要", "喝了半瓶农药"),               # a medical word typed by sound
    ("我爸打一岛素的 在做话疗", "我爸打胰岛素的 在做化疗"),
    ("發少 三十八度", "发烧 38度"),
    ("發騷", "发骚"),                            # … unless what was typed is a word itself
])
def test_canonical_form(text: str, form: str) -> None:
    assert canonical(text) == form


@pytest.mark.parametrize("text", [
    "我想去留学",                # 留学 sounds like 流血 but is a word
    "好像没气了",                # 没气 (not breathing) is not 煤气
    "架子上掉下来了",             # 上|掉下来: two words, not 上吊
    "同意书能反悔吗",             # 同意|书 is not 遗书
    "我老伴最近老是睡不着觉",       # 老是|睡不着 is not 嗜睡
    "餐后血糖多少算正常",           # listed as never rewritten
    "保保才两个月",               # no character in common with 宝宝: two chance homophones are too common
])
def test_sound_alikes_that_are_words_stay(text: str) -> None:
    assert respell(text) == text


@pytest.mark.parametrize("text, flags", [
    ("宝宝45天发烧三十八度五", {"temp>=38", "age<3m", "age<12m"}),
    ("my 6 week old has temp 102.5f", {"temp>=38", "temp>=39", "age<3m", "age<12m"}),
    ("bp 190/120 headache", {"bp>=180"}),
    ("sugar 450", {"glucose>=20"}),
    ("血氧掉到88", {"spo2<92"}),
    ("孕34周 头痛", {"pregnant>=20w"}),
    ("孩子反复发烧一个礼拜了 一周", set()),          # a duration is not an age
    ("我家宝宝才一个半月", {"age<3m", "age<12m"}),
])
def test_values_read_from_text(text: str, flags: set[str]) -> None:
    assert set(read_values(canonical(text)).flags()) == flags


def test_literal_prefixes_are_what_every_match_contains() -> None:
    import re

    assert literal_prefixes(re.compile("(胸口|心口)[^，]{0,4}疼")) == ("心口", "胸口")
    assert literal_prefixes(re.compile(r"chest\s+(\w+\s+){0,2}pain")) == ("chest",)
    assert literal_prefixes(re.compile(r"\d+分钟")) == ("分钟",)
    assert literal_prefixes(re.compile(r".*")) is None


def _brute_force(rules: TriageRules, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every pattern of every symptom on every message and try every rule (no prefilter at all)."""
    monkeypatch.setattr(TriageRules, "candidates", lambda self, text, hits: (list(self.symptoms), None))
    monkeypatch.setattr(Symptom, "_prefixes", property(lambda self: (None,) * len(self.patterns)))
    monkeypatch.setattr(TriageRules, "rules_by_symptom",
                        property(lambda self: {s.name: tuple(range(len(self.rules))) for s in self.symptoms}))


@pytest.mark.timeout(600)  # every dev message (~9,000 a locale) twice, once with every regex: 140-200 s when busy
@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_prefilters_never_change_an_assessment(locale: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Aho-Corasick phrase scan, the literal-prefix gates and the rules-by-symptom index only skip
    work: on every dev message the assessment equals the one from running every regex and every rule."""
    rules = load_triage(CONTENT, locale)
    texts = [c["text"] for p in sorted((ROOT / "tests/triage/blind/dev").glob(f"{locale}_*.yml"))
             for c in yaml.safe_load(p.read_text(encoding="utf-8"))["cases"]]
    fast = [assess(t, rules) for t in texts]
    _brute_force(rules, monkeypatch)
    slow = [assess(t, rules) for t in texts]
    assert [(a.level, a.matched) for a in fast] == [(a.level, a.matched) for a in slow]


def test_a_remembered_screening_is_the_screening(screener: Screener) -> None:
    """The screener remembers recent messages; what it returns is what screening anew returns, and a
    caller changing its explanation changes nothing for the next message with the same text."""
    fresh = Screener(screener.rules, screener.model, remember=0)
    texts = ["7", "是", "好的", "宝宝两个月 发烧39度", "my husband just collapsed and he's not breathing",
             "胸口压得慌 出冷汗", "what are the signs of a stroke?"]
    for text in texts:
        for locale in ("zh-CN", "en"):
            for context in (None, PatientContext(age_months=2), PatientContext(pregnant=True)):
                first = screener.screen(text, locale, context)
                first.explain()[0]["matched"].append("changed by a caller")
                assert screener.screen(text, locale, context) == fresh.screen(text, locale, context)
                assert screener.screen(text, locale, context).explain() == fresh.screen(text, locale, context).explain()


def test_every_message_is_screened_in_every_language(screener: Screener) -> None:
    result = screener.screen("my husband just collapsed and he's not breathing", "zh-CN").assessment
    assert result.level == "emergency_ambulance"
    assert result.emergency_numbers == ("120",)  # the conversation's own region, not the en default
    result = screener.screen("我爸突然说不出话了 嘴也歪了", "en").assessment
    assert result.level == "emergency_ambulance"


def test_other_languages_rules_do_not_misread_negation(screener: Screener) -> None:
    # the zh-CN rules know the English phrase "chest pain" but not English negation: they read
    # only Chinese script in an English conversation
    assert not screener.screen("just a cough no chest pain or anything", "en").assessment.is_emergency


@pytest.mark.parametrize("locale, text", [
    ("zh-CN", "我19年心梗过一次 放了支架 现在能慢跑吗"),
    ("zh-CN", "心梗和心绞痛有什么区别"),
    ("zh-CN", "去年孩子高热惊厥过一回 现在好好的"),
    ("en", "my dad had a stroke 3 yrs ago, mostly recovered, what foods are good for him"),
    ("en", "what are the signs of a stroke"),
    ("en", "my toddlers tantrums are gonna give me a heart attack"),
])
def test_not_now_readings_do_not_alarm(screener: Screener, locale: str, text: str) -> None:
    screening = screener.screen(text, locale)
    assert not screening.assessment.is_emergency, screening.explain()


@pytest.mark.parametrize("locale, text", [
    ("en", "my dad had a heart attack 2 years ago, now he has crushing chest pain and is sweating"),
    ("zh-CN", "我爸前年心梗过 刚才又胸口剧痛 出冷汗"),
])
def test_a_past_event_does_not_hide_a_present_one(screener: Screener, locale: str, text: str) -> None:
    assert screener.screen(text, locale).assessment.level == "emergency_ambulance"


def test_the_learned_layer_only_raises_and_explains_itself(screener: Screener) -> None:
    rules_only = Screener(screener.rules, None)
    for text, locale in [("我爸刚才突然倒地 叫不醒", "zh-CN"), ("脚踝有点肿，昨天开始", "zh-CN"),
                         ("my baby is floppy and won't feed, temp 38.5", "en")]:
        with_model, without = screener.screen(text, locale), rules_only.screen(text, locale)
        from bot.triage.model import LEVEL_RANK

        assert LEVEL_RANK[with_model.assessment.level] >= LEVEL_RANK[without.assessment.level]
    layers = screener.screen("脚踝有点肿，昨天开始 走路疼", "zh-CN").explain()
    learned = next(layer for layer in layers if layer["layer"] == "learned")
    assert 0.0 <= learned["red_flag"] <= 1.0 and "top_features" in learned


def test_the_learned_layer_ignores_one_word_answers() -> None:
    assert not long_enough(canonical("我自己")) and not long_enough(canonical("yes"))
    assert long_enough(canonical("我爸胸口疼了半小时")) and long_enough(canonical("my chest hurts a lot"))
    assert "c胸口" in features(canonical("我爸胸口疼")) and "wchest" in features("my chest hurts")


def test_extra_rule_files_share_the_symptoms_and_report_their_own_lines(tmp_path: Path) -> None:
    import shutil

    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    extra = content / "triage" / "en" / "zz_test.yml"
    extra.write_text("symptoms:\n  zz_probe:\n    keywords: [zzprobe]\nrules:\n"
                     "  - {id: zz_probe_chest, level: emergency, symptoms: [zz_probe], requires_any: [chest_pain]}\n",
                     encoding="utf-8")
    rules = load_triage(content, "en")
    assert "zz_probe_chest" in [m.rule for m in assess("zzprobe and chest pain", rules).matched]
    extra.write_text("symptoms:\n  chest_pain:\n    keywords: [x]\nrules:\n  - {id: zz, level: emergency, symptoms: [nope]}\n",
                     encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_triage(content, "en")
    text = str(err.value)
    assert "zz_test.yml:2: symptoms.chest_pain" in text and "already declared" in text
    assert "zz_test.yml:5" in text and "unknown symptom 'nope'" in text


def test_triage_eval_prints_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labelled = tmp_path / "cases.yml"
    labelled.write_text(yaml.safe_dump({"locale": "en", "cases": [
        {"expect": "emergency_ambulance", "condition": "cardiac_arrest", "text": "he collapsed and is not breathing"},
        {"expect": "ordinary", "kind": "everyday", "text": "i have had a runny nose for two days"},
        {"expect": "emergency", "condition": "made_up", "text": "my elbow itches a little"},
    ]}), encoding="utf-8")
    assert main(["triage", "eval", str(labelled), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["en"]
    assert figures["red_flags"] == 2 and figures["ordinary"] == 1
    assert figures["recall_emergency_pct"] == 50.0 and figures["false_alarm_pct"] == 0.0
    assert figures["dangerous_misses"] == 1
    bad = tmp_path / "bad.yml"
    bad.write_text("locale: en\ncases:\n  - {expect: urgent, text: x}\n", encoding="utf-8")
    assert main(["triage", "eval", str(bad)]) == 2
    assert "bad.yml: case 1" in capsys.readouterr().err


def test_triage_json_names_every_layer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "我爸胸口压着疼 出冷汗", "--locale", "zh-CN", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["level"] == "emergency_ambulance"
    assert [layer["layer"] for layer in result["layers"]][0] == "rules:zh-CN"


def test_validate_needs_the_regions_ambulance_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    care = content / "care.yml"
    care.write_text(care.read_text(encoding="utf-8").replace('ambulance: "120"', 'ambulance: ""'), encoding="utf-8")
    import os

    env = {**os.environ, "CAREBOT_CONTENT": str(content)}
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bot.cli", "validate"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "care.yml" in out.stdout + out.stderr and "region.numbers.ambulance" in out.stdout + out.stderr


def test_an_english_speaker_in_the_region_is_given_the_regions_number() -> None:
    from bot.care.config import load_care

    region = load_care(CONTENT).region.number_lists()
    screener = Screener(load_all_triage(CONTENT), shipped_model(), region=region)
    assert screener.screen("crushing chest pain and sweating", "en").assessment.emergency_numbers == ("120",)
    suicide = screener.screen("i want to kill myself tonight, i have the pills ready", "en").assessment
    assert suicide.emergency_numbers == ("120", "12356")


async def test_an_emergency_ticket_opens_with_the_patients_words_and_what_the_bot_said(make_bot) -> None:
    """The ticket tells the story (issue 9): not "no messages yet" but the episode's words."""
    import sqlalchemy as sa

    from bot.store.store import TICKET, TICKET_MSG

    bot, platform, _ = make_bot(shipped=True)
    await bot.start(background=False)
    try:
        await bot.runtime.handle(platform.inbound("p1", "你好", locale="zh-CN"))
        await bot.runtime.handle(platform.inbound("p1", "我家宝宝才一个半月", locale="zh-CN"))
        await bot.runtime.handle(platform.inbound("p1", "今天发烧了 三十八度五", locale="zh-CN"))
        await bot.settle()
        rows = await bot.store.read(lambda c: c.execute(
            sa.select(TICKET_MSG.c.author, TICKET_MSG.c.body).join(TICKET, TICKET.c.id == TICKET_MSG.c.ticket_id)
            .where(TICKET.c.reason == "red_flag").order_by(TICKET_MSG.c.id)).all())
        authors = [r.author for r in rows]
        assert [r.body for r in rows if r.author == "patient"] == ["我家宝宝才一个半月", "今天发烧了 三十八度五"]
        assert authors[:2] == ["patient", "patient"] and "bot" in authors
        assert any("120" in r.body for r in rows if r.author == "bot")
    finally:
        await bot.stop()


def test_one_broken_pattern_is_one_problem_not_a_cascade(tmp_path: Path) -> None:
    """An operator's typo in one regex names that file and line — and nothing else (before: ~100
    follow-on errors for every rule and guidance file that named the symptom)."""
    import os
    import shutil
    import subprocess
    import sys

    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    rules = content / "triage" / "en" / "acute.yml"
    text = rules.read_text(encoding="utf-8")
    at = text.index("patterns: ['") + len("patterns: ['")
    rules.write_text(text[:at] + "(unclosed" + text[at:], encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bot.cli", "validate"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "CAREBOT_CONTENT": str(content)})
    report = out.stdout + out.stderr
    assert out.returncode != 0 and "1 problem(s)" in report
    assert "acute.yml:" in report and "invalid regex" in report and "missing )" in report


class _Head:
    """A learned head that gives every message the same score (what the layer does with a score)."""

    def __init__(self, p: float, threshold: float = 0.8, question: float = 0.7):
        self.p, self.threshold, self.question = p, threshold, question

    def cut(self, norm: str) -> tuple[float, float]:
        return self.threshold, self.question

    def read(self, feats) -> tuple[float, list]:
        return self.p, []

    def probability(self, feats) -> float:
        return self.p


class _Model:
    def __init__(self, red: float, ambulance: float = 0.1):
        self.heads = {"red_flag": _Head(red), "ambulance": _Head(ambulance, threshold=0.5)}


@pytest.mark.parametrize("red, text, locale, level", [
    # no rule saw anything: only a confident score raises (Screener.CONFIDENT), and then to emergency
    (0.95, "chest like elephant sitting on it", "en", "emergency"),
    (0.85, "chest like elephant sitting on it", "en", "consultation"),
    # an age on its own is an introduction, whatever the score; the next message is read with it
    (0.99, "my son is 6 weeks old", "en", "consultation"),
    # nothing medical at all: no raise either
    (0.99, "can you tell me the opening hours", "en", "consultation"),
])
def test_a_confident_score_raises_a_message_no_rule_saw(screener: Screener, red: float, text: str,
                                                         locale: str, level: str) -> None:
    model_screener = Screener(screener.rules, _Model(red))  # type: ignore[arg-type]
    assert model_screener.screen(text, locale).assessment.level == level


@pytest.mark.parametrize("ambulance, text, locale, level, reply", [
    # the rules' emergency rises to an ambulance only on a confident ambulance score (TO_AMBULANCE)
    (0.75, "my son swallowed some of my tablets an hour ago, seems fine", "en", "emergency_ambulance",
     "triage.emergency_ambulance"),
    (0.65, "my son swallowed some of my tablets an hour ago, seems fine", "en", "emergency", "triage.emergency"),
    # a reply of its own (the suicide reply, with the crisis line) stays when the level rises
    (0.75, "最近总想死 活着没意思", "zh-CN", "emergency_ambulance", "triage.suicide"),
])
def test_a_confident_ambulance_score_raises_the_rules_emergency(screener: Screener, ambulance: float, text: str,
                                                                locale: str, level: str, reply: str) -> None:
    assert screener.screen(text, locale).assessment.level == "emergency"  # the rules alone
    raised = Screener(screener.rules, _Model(0.1, ambulance)).screen(text, locale)  # type: ignore[arg-type]
    assert (raised.assessment.level, raised.assessment.reply_key) == (level, reply)
    assert raised.assessment.emergency_numbers == screener.screen(text, locale).assessment.emergency_numbers


@pytest.mark.parametrize("text, locale", [
    ("my speech went funny for ten minutes, now back to normal", "en"),
    ("我爸刚才突然说不出话 现在好了", "zh-CN"),
])
def test_a_sign_read_as_passed_is_not_raised_to_an_ambulance_by_the_model(screener: Screener, text: str, locale: str) -> None:
    """RED-FLAGS.md: a TIA that has passed is E. The rules say so (`not_now:passed` names the cue); the
    learned layer's ambulance score does not take it back up (session 12: "刚才说不出话 现在好了" had risen)."""
    result = screener.screen(text, locale).assessment
    assert result.level == "emergency"
    assert any(m.rule == "not_now:passed" for m in result.matched)


@pytest.mark.parametrize("text, locale", [
    ("she went to bed completely fine last night, this morning her words are all muddled and her face droops", "en"),
    ("奶奶一个小时前还好好的 现在突然说话不清 嘴歪了", "zh-CN"),
])
def test_well_until_an_hour_ago_is_when_it_started_not_that_it_passed(screener: Screener, text: str, locale: str) -> None:
    result = screener.screen(text, locale).assessment
    assert result.level == "emergency_ambulance"
    assert not any(m.rule == "not_now:passed" for m in result.matched)
