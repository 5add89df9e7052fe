"""What to do while waiting (content/guidance): the loader's file:line errors, rendering with the
region's numbers, and which kinds a set of fired rules sends."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import ConfigError
from bot.triage import load_all_triage
from bot.triage.guidance import load_guidance
from tests.conftest import ROOT

LOCALES = ["en", "zh-CN"]
GOOD = """\
rules: [seizure, acute_fit]
sources:
  - { publisher: {zh-CN: 英国国家医疗服务体系, en: NHS}, title: Epilepsy, url: "https://www.nhs.uk/conditions/epilepsy/" }
zh-CN:
  title: 等待时
  steps: [记下时间。, "中毒咨询电话 {{ poison_centre }}。"]
en:
  title: While you wait
  steps: [Note the time., "Poison centre: {{ poison_centre }}."]
"""


@pytest.fixture(scope="module")
def triage():
    return load_all_triage(ROOT / "content")


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "guidance").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp_path / "guidance" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def problems(tmp_path: Path, triage, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_guidance(write(tmp_path, {"fit.yml": text}), LOCALES, triage)
    return [str(p) for p in caught.value.problems]


def test_the_shipped_guidance_covers_every_kind_in_both_locales(triage):
    guidance = load_guidance(ROOT / "content", LOCALES, triage)
    assert set(guidance.kinds) >= {"not_breathing", "stroke", "anaphylaxis", "bleeding", "poisoning", "suicide",
                                   "choking", "seizure", "infant_fever", "pregnancy_bleeding"}
    for kind in guidance.kinds.values():
        assert set(kind.texts) == set(LOCALES) and kind.sources, kind.id
        assert all(c.url.startswith("http") for c in kind.sources), kind.id


def test_an_unknown_rule_id_names_file_line_and_a_near_id(tmp_path, triage):
    found = problems(tmp_path, triage, GOOD.replace("[seizure, acute_fit]", "[seizure,\n        acute_fitt]"))
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'guidance' / 'fit.yml'}:2: rules[1]: 'acute_fitt' is not a triage rule id")
    assert "did you mean acute_fit" in found[0]


def test_a_rule_below_emergency_is_refused(tmp_path, triage):
    found = problems(tmp_path, triage, GOOD.replace("[seizure, acute_fit]", "[seizure, common_cold]"))
    assert found == [f"{tmp_path / 'guidance' / 'fit.yml'}:1: rules[1]: rule 'common_cold' is at level "
                     "self_care; guidance is sent only with an emergency reply, so list emergency or "
                     "emergency_ambulance rules"]


def test_a_missing_locale_text_is_named(tmp_path, triage):
    text = GOOD[:GOOD.index("en:\n")]
    found = problems(tmp_path, triage, text)
    assert found == [f"{tmp_path / 'guidance' / 'fit.yml'}:1: no en text: add en: {{title: …, steps: [first step, …]}}"]
    found = problems(tmp_path, triage, GOOD.replace("  steps: [Note the time.", "  stepz: [Note the time."))
    assert found == [f"{tmp_path / 'guidance' / 'fit.yml'}:9: en.stepz: unknown key 'stepz'; valid: title, steps",
                     f"{tmp_path / 'guidance' / 'fit.yml'}:7: en: no en text: add en: {{title: …, steps: [first step, …]}}"]


def test_guidance_without_a_source_is_refused(tmp_path, triage):
    text = GOOD.replace(GOOD[GOOD.index("sources:"):GOOD.index("\nzh-CN:") + 1], "")
    found = problems(tmp_path, triage, text)
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'guidance' / 'fit.yml'}:1: guidance names where")
    found = problems(tmp_path, triage, GOOD.replace(', url: "https://www.nhs.uk/conditions/epilepsy/"', ""))
    assert found == [f"{tmp_path / 'guidance' / 'fit.yml'}:3: sources[0]: a source needs `url`: the http(s) "
                     "address a reader can check"]
    found = problems(tmp_path, triage, GOOD.replace("title: Epilepsy, ", ""))
    assert len(found) == 1 and ":3: sources[0]: a source needs `title`" in found[0]


def test_an_unknown_placeholder_and_an_unknown_key_are_named(tmp_path, triage):
    found = problems(tmp_path, triage, GOOD.replace("{{ poison_centre }}。", "{{ poison }}。") + "fr: {}\n")
    assert f"{tmp_path / 'guidance' / 'fit.yml'}:10: fr: unknown key 'fr'" in found[0]
    assert found[1].startswith(f"{tmp_path / 'guidance' / 'fit.yml'}:6: zh-CN.steps[1]: unknown placeholder 'poison'")


def test_a_step_naming_a_number_the_region_lacks_is_left_out(tmp_path, triage):
    guidance = load_guidance(write(tmp_path, {"fit.yml": GOOD}), LOCALES, triage)
    without = guidance.render("fit", "en", {"ambulance": "120", "poison_centre": ""})
    assert without == ("While you wait\n1. Note the time.\n"
                       "Source: NHS · Epilepsy · https://www.nhs.uk/conditions/epilepsy/")
    with_number = guidance.render("fit", "zh-CN", {"ambulance": "120", "poison_centre": "0571-87377755"}, "来源")
    assert with_number.splitlines()[1:3] == ["1. 记下时间。", "2. 中毒咨询电话 0571-87377755。"]
    assert with_number.endswith("来源：英国国家医疗服务体系 · Epilepsy · https://www.nhs.uk/conditions/epilepsy/")


def test_kinds_follow_the_fired_rules_once_each_at_most_two(tmp_path, triage):
    other = GOOD.replace("[seizure, acute_fit]", "[acute_fit, stroke_signs]")
    third = GOOD.replace("[seizure, acute_fit]", "[severe_bleeding]")
    guidance = load_guidance(write(tmp_path, {"fit.yml": GOOD, "more.yml": other, "wound.yml": third}),
                             LOCALES, triage)
    assert guidance.kinds_for(["stroke_signs", "seizure", "acute_fit"]) == ["more", "fit"]
    assert guidance.kinds_for(["common_cold"]) == []
    assert len(guidance.kinds_for(["seizure", "stroke_signs", "severe_bleeding"])) == 2


def test_carebot_validate_reports_a_broken_guidance_file(tmp_path, capsys):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    write(content, {"fit.yml": GOOD.replace("acute_fit]", "no_such_rule]")})
    assert main(["validate", "--content", str(content)]) == 1
    assert f"{content / 'guidance' / 'fit.yml'}:1: rules[1]: 'no_such_rule' is not a triage rule id" \
        in capsys.readouterr().err
