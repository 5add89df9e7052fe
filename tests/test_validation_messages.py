"""What `carebot validate` tells an operator about the usual slips: a tab, a misaligned line, fields
beside `say:` instead of under it, a misspelt name in a condition or a placeholder — each one line
naming the file and line (and column where a character is to blame) and what would be right."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import ROOT


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    shutil.copytree(ROOT / "content", tmp_path / "content")
    return tmp_path


def validate(tree: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["validate", "--flows", str(tree / "flows"), "--content", str(tree / "content")])
    err = capsys.readouterr().err
    assert code == 1, err
    return [line.strip() for line in err.splitlines()[1:]]


def test_a_tab_is_named_with_line_and_column(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "flows" / "tabbed.yml").write_text("id: tabbed\nsteps:\n  - say: common.welcome\n\t- say: common.welcome\n")
    assert validate(tree, capsys) == [
        f"{tree / 'flows' / 'tabbed.yml'}:4:1: a tab at column 1; YAML indents with spaces (replace the tab with spaces)"]


def test_a_tab_in_a_message_catalogue_too(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tree / "content" / "messages" / "en.yml"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[5] = "  \t" + lines[5].lstrip()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert validate(tree, capsys)[0].startswith(f"{path}:6:3: a tab at column 3; YAML indents with spaces")


def test_fields_beside_say_are_explained_in_one_line_with_the_expected_shape(tree: Path, capsys) -> None:
    (tree / "flows" / "flat.yml").write_text(
        "id: flat\ntriggers:\n  - command: /flat\nsteps:\n  - say:\n    key: common.welcome\n    buttons: [a]\n")
    assert validate(tree, capsys) == [
        f"{tree / 'flows' / 'flat.yml'}:5: steps[0]: `say:` is empty and `key`, `buttons` sit beside it instead of "
        "inside it: indent them further than `say` (expected shape: `- say: {key: common.welcome, buttons: [\"a\"]}`)"]


def test_a_nested_ask_with_its_fields_beside_it(tree: Path, capsys) -> None:
    (tree / "flows" / "flat.yml").write_text(
        "id: flat\ntriggers:\n  - command: /flat\nsteps:\n  - if: input\n    then:\n      - ask:\n"
        "        key: common.welcome\n        slot: x\n")
    assert validate(tree, capsys) == [
        f"{tree / 'flows' / 'flat.yml'}:7: steps[0].then[0]: `ask:` is empty and `key`, `slot` sit beside it instead "
        "of inside it: indent them further than `ask` (expected shape: `- ask: {key: common.welcome, slot: x}`)"]


def test_a_misaligned_line_says_which_indentations_would_do(tree: Path, capsys) -> None:
    (tree / "flows" / "crooked.yml").write_text(
        "id: crooked\nsteps:\n  - say:\n      key: common.welcome\n     buttons: []\n")
    assert validate(tree, capsys) == [
        f"{tree / 'flows' / 'crooked.yml'}:5:6: `buttons` is indented 5 spaces, which lines up with no key above it: "
        "indent it 4 (like `say`, line 3) or 6 (like `key`, line 4) — keys of one mapping line up exactly; what "
        "belongs inside a key is indented further than that key"]


def test_a_misspelt_name_in_a_condition_names_the_nearest_known_one(tree: Path, capsys) -> None:
    (tree / "flows" / "late.yml").write_text(
        "id: late\ntriggers:\n  - command: /late\nsteps:\n  - if: nw.hour >= 22\n    then:\n"
        "      - say: common.welcome\n  - set:\n      note: \"{{ severty }} of 10\"\n")
    assert validate(tree, capsys) == [
        f"{tree / 'flows' / 'late.yml'}:5: steps[0].if: unknown name 'nw' in condition 'nw.hour >= 22': did you mean 'now'?",
        f"{tree / 'flows' / 'late.yml'}:9: steps[1].set.note: unknown name 'severty' in template '{{{{ severty }}}} of 10': "
        "did you mean 'severity'?"]


def test_a_misspelt_placeholder_in_a_message_names_its_line(tree: Path, capsys) -> None:
    path = tree / "content" / "messages" / "en" / "complaint.yml"
    text = path.read_text(encoding="utf-8")
    assert "{{ complaint_id }}" in text
    path.write_text(text.replace("{{ complaint_id }}", "{{ complaint_di }}"), encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "complaint_id" in row)
    problems = validate(tree, capsys)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:{line}: complaint.filed: unknown name 'complaint_di' in template")
    assert problems[0].endswith("did you mean 'complaint_id'?")


def test_a_multiline_message_points_at_the_line_with_the_slip(tree: Path, capsys) -> None:
    path = tree / "content" / "messages" / "en.yml"
    text = path.read_text(encoding="utf-8")
    assert "· Main problem: {{ complaint }}" in text
    path.write_text(text.replace("· Main problem: {{ complaint }}", "· Main problem: {{ complant }}"), encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "· Main problem: {{ complaint }}" in row)
    problems = validate(tree, capsys)
    assert problems == [f"{path}:{line}: intake.summary: unknown name 'complant' in template "
                        "'· Main problem: {{ complant }}': did you mean 'complaint'?"]


def test_names_set_by_actions_and_far_from_any_known_name_pass(tree: Path, capsys) -> None:
    (tree / "flows" / "own.yml").write_text(
        "id: own\ntriggers:\n  - command: /own\nsteps:\n  - if: lab_result_ready and department_confident\n"
        "    then:\n      - say: common.welcome\n")
    assert main(["validate", "--flows", str(tree / "flows"), "--content", str(tree / "content")]) == 0
