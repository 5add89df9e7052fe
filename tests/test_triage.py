"""Red-flag triage: the shipped rules against the YAML test sets, plus the engine's guarantees.

The test sets are tests/triage/cases_<locale>.yml; docs/triage.md explains how to add cases.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from bot.yamlsrc import parse_yaml

from bot.errors import ConfigError
from bot.triage import (
    LEVELS, Assessment, PatientContext, assess, bench_triage, load_all_triage, load_triage, max_level,
)
from bot.triage.cli import run_triage_cli
from bot.triage.phrases import PhraseIndex

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "content"
CASES = Path(__file__).resolve().parent / "triage"
LOCALES = ("zh-CN", "en")
RANK = {level: i for i, level in enumerate(LEVELS)}


@pytest.fixture(scope="module")
def zh():
    return load_triage(CONTENT, "zh-CN")


@pytest.fixture(scope="module")
def en():
    return load_triage(CONTENT, "en")


def load_cases(locale: str) -> list[dict]:
    return parse_yaml((CASES / f"cases_{locale}.yml").read_text(encoding="utf-8"))["cases"]


def run_case(case: dict, rules) -> Assessment:
    context = PatientContext(age_months=case.get("age_months"), pregnant=case.get("pregnant"))
    return assess(case["text"], rules, context)


def describe(case: dict, result: Assessment) -> str:
    matched = ", ".join(f"{m.rule}:{m.span}" for m in result.matched) or "no rule"
    return f"  {case['text']!r} → {result.level} ({matched}); expected {case['expect']}"


# ---- the test sets ------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_case_file_is_well_formed(locale):
    cases = load_cases(locale)
    assert len(cases) >= 80
    for case in cases:
        expect = case["expect"]
        assert ("min_level" in expect) != bool(expect.get("ordinary")), case
        assert expect.get("min_level", "emergency") in LEVELS, case
        assert set(case) <= {"text", "expect", "age_months", "pregnant"}, case


@pytest.mark.parametrize("locale", LOCALES)
def test_every_red_flag_reaches_its_level(locale):
    rules = load_triage(CONTENT, locale)
    red_flags = [c for c in load_cases(locale) if "min_level" in c["expect"]]
    missed = [
        describe(c, r) for c in red_flags
        if RANK[(r := run_case(c, rules)).level] < RANK[c["expect"]["min_level"]]
    ]
    assert not missed, f"{len(missed)}/{len(red_flags)} red flags missed:\n" + "\n".join(missed)


@pytest.mark.parametrize("locale", LOCALES)
def test_ordinary_complaints_are_not_raised_to_an_emergency(locale):
    rules = load_triage(CONTENT, locale)
    ordinary = [c for c in load_cases(locale) if c["expect"].get("ordinary")]
    raised = [describe(c, r) for c in ordinary if (r := run_case(c, rules)).is_emergency]
    assert len(raised) <= 0.05 * len(ordinary), f"{len(raised)}/{len(ordinary)} raised:\n" + "\n".join(raised)


@pytest.mark.parametrize("locale", LOCALES)
def test_cases_route_to_the_expected_department(locale):
    rules = load_triage(CONTENT, locale)
    wrong = [
        describe(c, r) + f" department={r.department}"
        for c in load_cases(locale) if c["expect"].get("department")
        if (r := run_case(c, rules)).department != c["expect"]["department"]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("locale", LOCALES)
def test_level_does_not_depend_on_rule_order(locale):
    rules = load_triage(CONTENT, locale)
    reversed_rules = dataclasses.replace(rules, rules=tuple(reversed(rules.rules)))
    for case in load_cases(locale):
        assert run_case(case, rules).level == run_case(case, reversed_rules).level, case["text"]


# ---- negation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["没有胸痛", "不胸痛", "没有呼吸困难", "我没有感觉胸痛", "无胸痛", "否认胸痛和呼吸困难"])
def test_zh_negated_red_flags_do_not_fire(zh, text):
    assert not assess(text, zh).is_emergency


@pytest.mark.parametrize("text", [
    "no chest pain", "I don't have trouble breathing", "denies suicidal thoughts", "not bleeding",
    "I do not have any chest pain", "without chest pain",
    # session 8: a denial inside a longer breathing phrase, "wasnt" without its apostrophe, a denied "worst ever"
    "kid has a cold, not breathing fast, no wheeze", "he hasn't stopped breathing or anything, he just snores",
    "wasnt knocked out, no vomiting, walking and talking fine", "headache but not the worst ever, came on slowly",
])
def test_en_negated_red_flags_do_not_fire(en, text):
    assert not assess(text, en).is_emergency


@pytest.mark.parametrize("text", [
    "没有发烧但是胸口剧痛",  # a clause break ends the negation
    "没有发烧，胸口疼",  # so does punctuation
    "没有发烧 胸口疼",  # and a space between Chinese characters
    "没有吃早饭然后胸口疼",  # 没有 reaches 4 characters, the pain is 5 away
    "不知道为什么胸口疼",  # 不知道 is not a negation
    "吃了药也没有用胸口还是疼",  # 没有用 is not a negation
    "没有发烧还有点胸痛",  # 还有 starts a new clause
])
def test_zh_negation_stays_in_its_scope(zh, text):
    assert assess(text, zh).is_emergency


@pytest.mark.parametrize("text", [
    "no fever, but chest pain",
    "not sure if it matters but my chest hurts",
    "I do not know why I have chest pain",
    "no fever and then suddenly chest pain",
    "no fever and chest pain since this morning",  # "and" ends the clause: the safe reading
])
def test_en_negation_stays_in_its_scope(en, text):
    assert assess(text, en).is_emergency


def test_a_cue_inside_a_matched_term_negates_nothing(zh, en):
    # "没有呼吸" and "isn't breathing" contain a negation cue but are themselves the red flag.
    assert assess("他没有呼吸了", zh).level == "emergency_ambulance"
    assert assess("he isn't breathing", en).level == "emergency_ambulance"
    # 喘不过气 contains the clause break 不过; the term wins.
    assert assess("喘不过气", zh).is_emergency


def test_an_ascii_keyword_matches_whole_words_only(en, zh):
    assert not assess("I love painting and chess", en).matched
    assert assess("我有点chest pain 出冷汗", zh).level == "emergency_ambulance"


def test_a_keyword_is_found_in_a_possessive_or_a_quoted_word():
    phrases = PhraseIndex()
    toddler, kids = phrases.add(["toddler"]), phrases.add(["look after the kids"])
    text = "the toddler's cup and 'look after the kids' he wrote"
    hits = phrases.scan(text)
    assert toddler.spans(hits) == [(4, 11)] and text[4:11] == "toddler"
    assert [text[a:b] for a, b in kids.spans(hits)] == ["look after the kids"]
    assert not phrases.add(["toddle"]).spans(phrases.scan(text))  # still whole words only


def test_excluded_look_alikes_do_not_fire(zh, en):
    assert not assess("最近不想活动", zh).is_emergency
    assert assess("最近不想活了", zh).is_emergency
    assert not assess("I'm killing myself laughing", en).is_emergency


# ---- modifiers: age and pregnancy ---------------------------------------------------------------


def test_infant_fever_is_an_emergency_but_adult_fever_is_not(zh, en):
    assert assess("发烧了", zh, PatientContext(age_months=2)).level == "emergency"
    assert not assess("发烧了", zh, PatientContext(age_months=360)).is_emergency
    assert not assess("发烧了", zh).is_emergency
    assert assess("she has a fever", en, PatientContext(age_months=1)).reply_key == "triage.infant_fever"
    assert not assess("she has a fever", en, PatientContext(age_months=30)).is_emergency


@pytest.mark.parametrize("text", ["2个月大的宝宝发烧", "宝宝两个月发烧38度5", "宝宝出生20天 发热", "新生儿发烧"])
def test_zh_infant_age_is_read_from_the_text(zh, text):
    result = assess(text, zh)
    assert result.level == "emergency" and result.department == "paediatrics"


def test_zh_age_boundary_and_units(zh):
    # 3个月大 is read as 3 months: not under 3, still under 12 → seen within 24 hours.
    result = assess("3个月大的宝宝发烧", zh)
    assert result.level == "consultation_24"
    assert [m.rule for m in result.matched] == ["infant_under_12_months_fever"]
    assert not assess("孩子5岁 发烧38度", zh).matched
    # "发烧3天" is how long, not how old.
    assert not assess("宝宝发烧3天了", zh).is_emergency


@pytest.mark.parametrize("text", ["my 6 week old has a fever", "my 6-week-old has a temperature of 38.1",
                                  "my baby is 5 weeks and has a fever", "2 month old with fever"])
def test_en_infant_age_is_read_from_the_text(en, text):
    assert assess(text, en).level == "emergency"


def test_en_older_child_fever_is_not_an_emergency(en):
    assert not assess("my 6 year old has a fever", en).is_emergency


def test_an_infant_in_the_text_counts_even_if_the_profile_is_an_adult(zh):
    # The parent writes about their baby: the safer reading wins.
    assert assess("我家宝宝两个月 发烧了", zh, PatientContext(age_months=360)).is_emergency


def test_pregnancy_from_context(zh, en):
    assert assess("下面出血了", zh, PatientContext(pregnant=True)).level == "emergency"
    assert not assess("下面出血了", zh).is_emergency
    assert assess("I have some bleeding", en, PatientContext(pregnant=True)).department == "obstetrics"
    assert not assess("I have some bleeding", en).is_emergency


@pytest.mark.parametrize("text", ["怀孕20周 出血了", "孕12周见红", "怀孕8周肚子疼得厉害"])
def test_zh_pregnancy_is_read_from_the_text(zh, text):
    result = assess(text, zh)
    assert result.level == "emergency" and result.reply_key == "triage.pregnancy_emergency"


@pytest.mark.parametrize("text", ["I'm 30 weeks pregnant and bleeding", "pregnant, severe stomach pain"])
def test_en_pregnancy_is_read_from_the_text(en, text):
    assert assess(text, en).level == "emergency"


def test_negated_or_wished_for_pregnancy_does_not_count(zh, en):
    assert not assess("没怀孕 这两天有点出血", zh).is_emergency
    assert not assess("想怀孕 这两天有点出血", zh).is_emergency
    assert not assess("I'm not pregnant, some bleeding after sex", en).is_emergency
    # context says pregnant: the text cannot take it away
    assert assess("没怀孕 有点出血", zh, PatientContext(pregnant=True)).is_emergency


# ---- combinations and the level guarantee -------------------------------------------------------


def test_combination_raises_the_level(zh, en):
    assert not assess("发烧39度", zh).is_emergency
    assert not assess("脖子硬", zh).is_emergency
    assert assess("发烧39度 脖子硬", zh).level == "emergency"
    assert assess("high fever and a stiff neck", en).level == "emergency"
    assert assess("胸口疼", zh).level == "emergency"
    assert assess("胸口疼 出冷汗", zh).level == "emergency_ambulance"


def test_a_negated_partner_does_not_complete_a_combination(zh):
    result = assess("胸口疼 但是没有出汗", zh)
    assert result.level == "emergency"
    assert "chest_pain_with_warning_signs" not in [m.rule for m in result.matched]


def test_a_weaker_rule_never_lowers_the_level(zh, en):
    result = assess("胸口压着疼出冷汗 还有点感冒流鼻涕", zh)
    assert result.level == "emergency_ambulance"
    assert {"common_cold", "chest_pain_with_warning_signs"} <= {m.rule for m in result.matched}
    assert assess("runny nose and I want to kill myself", en).level == "emergency"


# RED-FLAGS.md rows whose level depends on what the message says (session 8): a known epileptic's
# usual short fit is E, a first fit or a long one A; an overdose without symptoms yet is E, with
# symptoms (or a pesticide) A; a mouthful of household bleach is E unless breathing or consciousness
# is affected.
EXACT = [
    ("en", "my son is epileptic and just had one of his usual seizures, about a minute, he's awake now", "emergency"),
    ("en", "my husband just had a seizure, first ever, he's awake now", "emergency_ambulance"),
    ("en", "she's epileptic and the seizure has been going for 10 minutes", "emergency_ambulance"),
    ("en", "my daughter is having a seizure", "emergency_ambulance"),
    ("en", "took 20 paracetamol an hour ago, feel fine", "emergency"),
    ("en", "took 20 paracetamol and now very drowsy", "emergency_ambulance"),
    ("zh-CN", "孩子有癫痫 刚才抽了一分钟 跟平时一样 现在醒了", "emergency"),
    ("zh-CN", "老公第一次抽搐 现在醒了", "emergency_ambulance"),
    ("zh-CN", "孩子有癫痫 抽了五分钟了还没停", "emergency_ambulance"),
    ("zh-CN", "我舅舅喝农药了 在吐", "emergency_ambulance"),
    ("zh-CN", "娃喝了口84 嘴疼哭", "emergency"),
    ("zh-CN", "孩子喝了一口84消毒液 现在叫不醒", "emergency_ambulance"),
    ("zh-CN", "老公昨晚牙疼 泰诺吃了十几片 今天没啥事", "emergency"),
    ("zh-CN", "我妈吃了好多那个降压药 一板子都没了 现在人昏昏沉沉", "emergency_ambulance"),
    ("zh-CN", "孩子把一整瓶药都吃了", "emergency"),  # RED-FLAGS: a child took adult medicine, no symptoms yet: E
    ("en", "My son swallowed a whole bottle of pills", "emergency"),
    ("en", "took the whole bottle of sleeping pills", "emergency_ambulance"),
    # the cord felt or seen after the waters went, however it is told: an ambulance
    ("zh-CN", "羊水破了 阴道口摸到软软的一条 还在一跳一跳的", "emergency_ambulance"),
    ("zh-CN", "破水 下面掉出根绳子", "emergency_ambulance"),
    ("zh-CN", "臀位 破水 有东西滑出", "emergency_ambulance"),
    ("zh-CN", "破水了 宝宝在肚子里一跳一跳的", "emergency"),
    # breathless and the reliever does not help; breathless after a joint replacement; no 胸 but arm, jaw, sweat
    ("zh-CN", "喘不上来 药喷了没用", "emergency_ambulance"),
    ("zh-CN", "做完膝关节置换两周 今天突然喘不上气 心跳好快", "emergency_ambulance"),
    ("zh-CN", "左边肩膀和胳膊一直酸痛 牙也痛 喘不过气 满头汗", "emergency_ambulance"),
    # the heart-attack kind of chest pain, going on; chest pain after cocaine
    ("en", "crushing chest pain 20 mins not going", "emergency_ambulance"),
    ("en", "coke at party, chest pain, heart racing", "emergency_ambulance"),
    ("en", "chest pain when i cough, 2 days", "emergency"),
    ("en", "she wasnt responding when i found her", "emergency_ambulance"),
    ("en", "she werent breathing proper", "emergency_ambulance"),
    ("en", "he wasnt breathing for a minute after we pulled him out of the pool", "emergency_ambulance"),
    ("en", "he keeps saying he wishes he wouldnt wake up", "emergency"),
]


@pytest.mark.parametrize("locale,text,level", EXACT)
def test_levels_that_depend_on_what_the_message_says(zh, en, locale, text, level):
    result = assess(text, zh if locale == "zh-CN" else en)
    assert result.level == level, describe({"text": text, "expect": level}, result)


def test_unless_any_names_unknown_symptoms_and_blocks_its_rule(tmp_path):
    text = MINIMAL.replace("{level}", "emergency").replace("{symptom}", "chest_pain") + "    unless_any: [nope]\n"
    message = problems_of(tmp_path, text)
    assert "rules[0](chest_pain).unless_any" in message and "unknown symptom 'nope'" in message
    ok = MINIMAL.replace("{level}", "emergency").replace("{symptom}", "chest_pain").replace(
        "    keywords: [胸痛]\n", "    keywords: [胸痛]\n  old:\n    keywords: [老毛病]\n") + "    unless_any: [old]\n"
    (tmp_path / "ok").mkdir()
    rules = load_triage(broken_content(tmp_path / "ok", ok), "zh-CN")
    assert assess("胸痛", rules).level == "emergency"
    assert assess("胸痛 老毛病", rules).level != "emergency"


def test_max_level():
    assert max_level("consultation", "emergency") == "emergency"
    assert max_level("emergency_ambulance", "self_care") == "emergency_ambulance"
    assert max_level("consultation_24", "consultation_24") == "consultation_24"


def test_matched_rules_are_listed_most_urgent_first(zh):
    levels = [RANK[m.level] for m in assess("胸口压着疼出冷汗 还有点感冒", zh).matched]
    assert levels == sorted(levels, reverse=True)


# ---- numbers and replies ------------------------------------------------------------------------


def test_emergency_numbers(zh, en):
    assert assess("胸口压着疼出冷汗", zh).emergency_numbers == ("120",)
    assert assess("不想活了", zh).emergency_numbers == ("120", "12356")
    assert assess("脸上长痘痘", zh).emergency_numbers == ()
    assert assess("crushing chest pain", en).emergency_numbers == ("112",)


def test_reply_keys(zh, en):
    assert assess("不想活了", zh).reply_key == "triage.suicide"
    assert assess("I want to kill myself", en).reply_key == "triage.suicide"
    assert assess("胸口压着疼出冷汗", zh).reply_key == "triage.emergency_ambulance"
    assert assess("胸口疼", zh).reply_key == "triage.emergency"
    assert assess("有点感冒流鼻涕", zh).reply_key == "triage.self_care"
    assert assess("脸上长痘痘", zh).reply_key == "triage.consultation"
    assert assess("发烧39度5", zh).reply_key == "triage.consultation_24"


def test_suicidal_intent_with_an_overdose_keeps_the_psychological_line(zh):
    result = assess("不想活了 吃了一整瓶安眠药", zh)
    assert result.level == "emergency_ambulance"
    assert result.emergency_numbers == ("120", "12356")


# ---- department routing -------------------------------------------------------------------------


def test_department_routing_with_confidence(zh, en):
    result = assess("脸上长痘痘怎么办", zh)
    assert (result.department, result.ask_department) == ("dermatology", False)
    assert result.department_confidence >= zh.min_department_confidence
    assert assess("knee pain when I climb stairs", en).department == "orthopaedics"


def test_weak_or_mixed_evidence_is_below_the_threshold(zh, en):
    weak = assess("有点痒", zh)
    assert weak.department == "dermatology"
    assert weak.department_confidence < zh.min_department_confidence and weak.ask_department
    unknown = assess("你好", zh)
    assert (unknown.department, unknown.department_confidence, unknown.ask_department) == ("", 0.0, True)
    mixed = assess("my stomach and my knee and my eyes", en)
    assert mixed.ask_department and 0 < mixed.department_confidence < en.min_department_confidence


def test_negated_department_keywords_do_not_count(zh):
    result = assess("没有发烧 脸上长痘", zh)
    assert (result.department, result.department_confidence) == ("dermatology", 1.0)


def test_patient_bonus_routes_children_to_paediatrics(zh):
    assert assess("咳嗽两天了", zh).department == "respiratory"
    assert assess("咳嗽两天了", zh, PatientContext(age_months=24)).department == "paediatrics"


def test_a_rule_department_wins_for_red_flags(zh):
    result = assess("不想活了 最近焦虑失眠", zh)
    assert (result.department, result.department_confidence) == ("psychiatry", 1.0)


def test_both_lexicons_have_the_same_departments_with_both_names(zh, en):
    zh_ids = [d.id for d in zh.departments.departments]
    assert zh_ids == [d.id for d in en.departments.departments]
    for rules in (zh, en):
        for dept in rules.departments.departments:
            assert dept.names.get("zh-CN") and dept.names.get("en"), dept.id
    assert zh.department_name("dermatology") == "皮肤科"
    assert en.department_name("dermatology") == "Dermatology"
    assert zh.department_name("dermatology", "en") == "Dermatology"


# ---- purity and loading -------------------------------------------------------------------------


def test_assess_is_deterministic_and_its_result_immutable(zh):
    first = assess("宝宝两个月发烧38度5", zh)
    assert first == assess("宝宝两个月发烧38度5", zh)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.level = "self_care"  # type: ignore[misc]
    assert hash(first)


def test_full_width_and_case_are_normalized(zh, en):
    assert assess("胸口疼，出冷汗！", zh).level == "emergency_ambulance"
    assert assess("CRUSHING CHEST PAIN", en).level == "emergency"


def test_load_all_triage_finds_every_locale():
    assert set(load_all_triage(CONTENT)) == set(LOCALES)


def test_bench_triage_reports_a_rate():
    assert bench_triage(20) > 0


# ---- operator errors ----------------------------------------------------------------------------


def broken_content(tmp_path: Path, triage_text: str) -> Path:
    (tmp_path / "triage").mkdir()
    shutil.copytree(CONTENT / "departments", tmp_path / "departments")
    (tmp_path / "triage" / "zh-CN.yml").write_text(triage_text, encoding="utf-8")
    return tmp_path


MINIMAL = """\
locale: zh-CN
emergency_numbers:
  default: ["120"]
negation:
  cues: {没有: 4}
symptoms:
  chest_pain:
    keywords: [胸痛]
rules:
  - id: chest_pain
    level: {level}
    symptoms: [{symptom}]
"""


def problems_of(tmp_path: Path, text: str) -> str:
    content = broken_content(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_triage(content, "zh-CN")
    return str(err.value)


def test_unknown_level_names_file_line_and_the_valid_levels(tmp_path):
    message = problems_of(tmp_path, MINIMAL.replace("{level}", "urgent").replace("{symptom}", "chest_pain"))
    assert f"{tmp_path / 'triage' / 'zh-CN.yml'}:11:" in message
    assert "rules[0](chest_pain).level" in message and "'urgent'" in message
    assert ", ".join(LEVELS) in message


def test_bad_regex_shows_the_regex_error(tmp_path):
    text = MINIMAL.replace("{level}", "emergency").replace("{symptom}", "chest_pain").replace(
        "    keywords: [胸痛]\n", "    keywords: [胸痛]\n    patterns: ['胸口(疼']\n")
    message = problems_of(tmp_path, text)
    assert "zh-CN.yml:9:" in message and "symptoms.chest_pain.patterns[0]" in message
    assert "invalid regex '胸口(疼'" in message and "missing )" in message


def test_unknown_symptom_lists_the_declared_ones(tmp_path):
    message = problems_of(tmp_path, MINIMAL.replace("{level}", "emergency").replace("{symptom}", "chestpain"))
    assert "zh-CN.yml:12:" in message and "unknown symptom 'chestpain'; declared symptoms: chest_pain" in message


def test_unknown_key_and_department_are_reported_together(tmp_path):
    text = MINIMAL.replace("{level}", "emergency").replace("{symptom}", "chest_pain") + (
        "    department: cardio\n    levle: emergency\n")
    message = problems_of(tmp_path, text)
    assert "zh-CN.yml:13: rules[0](chest_pain).department: unknown department 'cardio'; valid: emergency," in message
    assert "zh-CN.yml:14: rules[0].levle: unknown key 'levle'" in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    message = problems_of(tmp_path, "locale: zh-CN\nrules: [\n  - id: x\n")
    assert "zh-CN.yml:" in message and "not valid YAML" in message


def test_unknown_locale_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available: en, zh-CN"):
        load_triage(CONTENT, "fr")


# ---- the CLI ------------------------------------------------------------------------------------


def test_cli_json_output(capsys):
    code = run_triage_cli(["宝宝两个月发烧38度5", "--locale", "zh-CN", "--json", "--content", str(CONTENT)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["level"] == "emergency"
    assert out["department"] == "paediatrics" and out["department_confidence"] == 1.0
    assert out["emergency_numbers"] == ["120"]
    assert {"rule": "infant_under_3_months_fever", "level": "emergency", "span": "发烧"} in out["matched"]
    assert out["reply_key"] == "triage.infant_fever"


def test_cli_context_flags(capsys):
    run_triage_cli(["I have some bleeding", "--locale", "en", "--json", "--pregnant", "--content", str(CONTENT)])
    assert json.loads(capsys.readouterr().out)["department"] == "obstetrics"
    run_triage_cli(["she has a fever", "--locale", "en", "--json", "--age-months", "1", "--content", str(CONTENT)])
    assert json.loads(capsys.readouterr().out)["level"] == "emergency"


def test_cli_plain_output(capsys):
    assert run_triage_cli(["胸口压着疼出冷汗", "--locale", "zh-CN", "--content", str(CONTENT)]) == 0
    out = capsys.readouterr().out
    assert "level:       emergency_ambulance" in out and "120" in out and "chest_pain_with_warning_signs" in out


def test_cli_reports_a_broken_rules_file(tmp_path, capsys):
    content = broken_content(tmp_path, MINIMAL.replace("{level}", "urgent").replace("{symptom}", "chest_pain"))
    assert run_triage_cli(["胸痛", "--locale", "zh-CN", "--content", str(content)]) == 2
    assert "unknown level 'urgent'" in capsys.readouterr().err


def test_a_not_now_reading_covers_the_clauses_it_spans_and_its_own_present_cues(zh):
    # 突然 starts a clause and is a present cue: inside the hypothetical question it is neither
    hypothetical = assess("假如有人突然心脏骤停 CPR怎么做", zh)
    assert not hypothetical.is_emergency
    assert any(m.rule == "not_now:general" for m in hypothetical.matched)
    # 怎么办 is a present cue on its own, but part of 万一…怎么办
    assert not assess("万一孩子半夜高烧抽搐了怎么办", zh).is_emergency
    # a present emergency in its own clause beside the question still fires
    assert assess("我爸刚才突然胸口剧痛出冷汗 如果等救护车要注意什么", zh).level == "emergency_ambulance"
