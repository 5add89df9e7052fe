"""Bad flows and content fail with file, line, field and what would be valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.flow.content import load_content, missing_by_locale
from bot.flow.loader import load_flows
from tests.conftest import write_flows, write_messages

MESSAGES = {"zh-CN": "t:\n  hi: 你好\n  q: 几岁？\n", "en": "t:\n  hi: Hi\n  q: How old?\n"}


def _load(tmp_path: Path, flows: dict[str, str], messages: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    content = load_content([write_messages(tmp_path / "content", messages or MESSAGES)])
    return load_flows([write_flows(tmp_path / "flows", flows)], content, root=tmp_path)


def _problems(tmp_path: Path, flows: dict[str, str], messages: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, flows, messages)
    return [str(p) for p in err.value.problems]


def test_unknown_step_type_lists_the_valid_ones_with_file_and_line(tmp_path):
    problems = _problems(tmp_path, {"a.yml": """
        id: a
        steps:
          - say: t.hi
          - sya: t.hi
    """})
    assert len(problems) == 1
    assert problems[0].startswith("flows/a.yml:5: steps[1]: unknown step type 'sya' (did you mean 'say'?)")
    assert "valid: say, ask, set, clear, if, switch, call, goto, link, action, handoff" in problems[0]


def test_bad_field_value_names_field_and_valid_values(tmp_path):
    problems = _problems(tmp_path, {"a.yml": """
        id: a
        steps:
          - ask:
              key: t.q
              slot: age
              type: nmber
    """})
    assert problems[0].startswith("flows/a.yml:7: steps[0].ask.type:")
    assert "'text', 'choice', 'number'" in problems[0] and "'nmber'" in problems[0]


def test_unknown_field_and_missing_field(tmp_path):
    problems = _problems(tmp_path, {"a.yml": """
        id: a
        steps:
          - ask:
              key: t.q
              colour: red
    """})
    assert any(p.startswith("flows/a.yml:6: steps[0].ask.colour: unknown field") for p in problems)
    assert any("steps[0].ask.slot: required field is missing" in p for p in problems)


def test_a_misspelt_required_field_is_one_problem_at_its_line_with_the_field_meant(tmp_path):
    problems = _problems(tmp_path, {"a.yml": """
        id: a
        steps:
          - say: t.hi
          - if: "true"
            then:
              - ask:
                  key: t.q
                  type: number
                  slots: age
    """})
    assert problems == ["flows/a.yml:10: steps[1].then[0].ask.slots: unknown field 'slots' (did you mean 'slot'?)"]


def test_missing_content_key_and_unknown_targets(tmp_path):
    problems = _problems(tmp_path, {"a.yml": """
        id: a
        steps:
          - say: t.hello
          - call: nowhere
          - goto: later
    """})
    joined = "\n".join(problems)
    assert "flows/a.yml:4: steps[0].say: content key 't.hello' is not in messages/zh-CN.yml (did you mean 't.hi'?)" in joined
    assert "flows/a.yml:5: steps[1]: flow 'nowhere' does not exist" in joined
    assert "flows/a.yml:6: steps[2].goto: goto target 'later' is not a step id" in joined


def test_expression_errors_and_yaml_syntax_errors_have_lines(tmp_path):
    problems = _problems(tmp_path, {"a.yml": """
        id: a
        steps:
          - if: "age >"
            then: [{say: t.hi}]
    """, "b.yml": "id: b\nsteps:\n  - say: [unclosed\n"})
    joined = "\n".join(problems)
    assert "flows/a.yml:4: steps[0].if: expression 'age >' does not compile" in joined
    assert "flows/b.yml:" in joined and "YAML syntax" in joined


def test_duplicate_flow_ids_and_durations(tmp_path):
    problems = _problems(tmp_path, {"a.yml": """
        id: a
        steps:
          - schedule: { timer: x, in: 2 hours }
    """, "b.yml": """
        id: a
        steps: [{say: t.hi}]
    """})
    joined = "\n".join(problems)
    assert "flow id 'a' is already defined in flows/a.yml" in joined
    assert "'2 hours' is not a duration; use a number and a unit s/m/h/d/w" in joined


def test_a_key_missing_in_one_locale_is_named_with_the_locale(tmp_path):
    content = load_content([write_messages(tmp_path / "c", {"zh-CN": "t:\n  hi: 你好\n  bye: 再见\n",
                                                             "en": "t:\n  hi: Hi\n"})])
    problems = [str(p) for p in missing_by_locale(content)]
    assert problems == [f"{tmp_path}/c/messages/zh-CN.yml:3: t.bye: content key 't.bye' is missing in locale en "
                        "(add it to messages/en.yml)"]


def test_operator_flow_replaces_a_builtin_repair_flow(tmp_path):
    flows = _load(tmp_path, {"cancel.yml": """
        id: cancel
        takeover: true
        triggers: [{command: /cancel}]
        steps: [{say: t.hi}]
    """})
    assert flows.get("cancel").file == "flows/cancel.yml"
    assert flows.commands["/cancel"] == "cancel"


def test_an_article_without_a_source_fails_validation(tmp_path):
    content = write_messages(tmp_path / "content", MESSAGES)
    (content / "articles").mkdir()
    (content / "articles" / "diet.yml").write_text(
        "zh-CN:\n  title: 饮食\n  body: 少盐少油\nen:\n  title: Diet\n  body: Less salt\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_content([content])
    assert "diet.yml:1: article 'diet' has no source; every article names where it comes from" in str(err.value)
    (content / "articles" / "diet.yml").write_text(
        "source: {zh-CN: 中国居民膳食指南（2022）, en: Dietary Guidelines for Chinese Residents (2022)}\n"
        "zh-CN:\n  title: 饮食\n  body: 少盐少油\nen:\n  title: Diet\n  body: Less salt\n", encoding="utf-8")
    loaded = load_content([content])
    assert loaded.render("article.diet", "en", {}).endswith("Source: Dietary Guidelines for Chinese Residents (2022)")
