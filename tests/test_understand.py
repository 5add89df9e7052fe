"""Typed requests understood: the intents component (content/understand) and `carebot understand`."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bot.cli import main
from bot.engine.answers import Invalid
from bot.errors import ConfigError
from bot.flow.compiler import AskSpec
from bot.flow.model import Choice, Validation
from bot.understand.intents import load_intents
from tests.conftest import ROOT

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def intents():
    return load_intents(ROOT / "content")


def ask(type_: str, slot: str = "q", choices: tuple[str, ...] = (), lo: int | None = None, hi: int | None = None,
        exact: bool = False) -> AskSpec:
    return AskSpec(f"test.{slot}", slot, type_, [Choice(value=v, label=f"test.{v}") for v in choices],
                   Validation(min=lo, max=hi), 2, None, False, exact=exact)


def read(intents, spec: AskSpec, text: str):
    return intents.read_answer(spec, "text", text, "", None, {}, NOW)


@pytest.mark.parametrize("text, locale, flow", [
    ("can I talk to a real person", "en", "human"),
    ("機器人聽不懂 能不能找個真人", "zh-CN", "human"),            # traditional characters
    ("remind me to take my pills at 8 every morning", "en", "medication_reminder"),
    ("别再提醒我吃药了 药已经吃完了", "zh-CN", "reminder_stop"),
    ("how much does an online consultation cost?", "en", "prices"),
    ("在线问诊多少钱", "zh-CN", "prices"),
    ("please delete all my data", "en", "forget_me"),
    ("我的隐私你们是怎么保护的", "zh-CN", "privacy"),
    ("stop sending me messages", "en", "opt_out"),
    ("where is the menu", "en", "start"),
    ("I want to withdraw my consent", "en", "revoke_consent"),
    ("I need consultation with docter", "en", "intake"),       # a typo forgiven
    ("我要投诉 那个医生态度太差了", "zh-CN", "complaint"),
    ("can you reply in english", "zh-CN", "language"),          # an English request in a Chinese conversation
    ("the blood pressure alerts are driving me mad, switch them off", "en", "reminder_stop"),
    ("enough of these reminders please", "en", "reminder_stop"),
    ("i want everything you hold about me wiped", "en", "forget_me"),
    ("please have my records deleted", "en", "forget_me"),
    ("the doctor brushed me off and never listened to me", "en", "complaint"),
])
def test_requests_reach_their_flow(intents, text, locale, flow):
    result = intents.classify(text, locale)
    assert result.confident and result.flow == flow, result.why()


# Classes of request, each written here in words no dev writer used (the cues are written per class,
# not per sentence): a grievance told as a story, reading matter in any form, a language named in any
# way or asked for in its own words, stop/start verbs before what we send, a reminder got rid of, a
# third party seeing what I wrote, consent to use my data taken back, a doctor to review results or by
# name, what the bot can do. A symptom told with anger or a wait in it is still a symptom.
@pytest.mark.parametrize("text, locale, flow", [
    ("booked a slot for 9am, its now 11 and still nobody has called me. absolutely ridiculous", "en", "complaint"),
    ("you took the money twice from my card for the same consult", "en", "complaint"),
    ("my appointment got cancelled at the last minute again, no explanation given", "en", "complaint"),
    ("约好的十点 到现在都没人联系我 太离谱了", "zh-CN", "complaint"),
    ("同一次问诊扣了我两回钱", "zh-CN", "complaint"),
    ("客服爱答不理的 气死我了", "zh-CN", "complaint"),
    ("any fact sheets about high cholesterol i can print for my dad", "en", "articles"),
    ("is there a video explaining how to use an inhaler properly", "en", "articles"),
    ("有没有糖尿病饮食的小册子", "zh-CN", "articles"),
    ("上次公众号那篇讲高血压的文章在哪", "zh-CN", "articles"),
    ("my mum only reads Korean, is there a korean version", "en", "language"),
    ("¿Puedo hablar en español?", "en", "language"),
    ("有日文版吗", "zh-CN", "language"),
    ("能不能说上海话", "zh-CN", "language"),
    ("pls stop the daily health updates, not interested", "en", "opt_out"),
    ("Unsubscribe", "en", "opt_out"),
    ("消息通知全部给我关了", "zh-CN", "opt_out"),
    ("请勿再发送健康资讯", "zh-CN", "opt_out"),
    ("turn the notifications back on please", "en", "opt_in"),
    ("subscribe", "en", "opt_in"),
    ("帮我把推送恢复一下", "zh-CN", "opt_in"),
    ("get rid of the 8am tablet reminder", "en", "reminder_stop"),
    ("吃药的闹钟帮我关了", "zh-CN", "reminder_stop"),
    ("不要在提醒我吃钙片了", "zh-CN", "reminder_stop"),          # 在 typed for 再
    ("can my employer see what i ask you here?", "en", "privacy"),
    ("is this service hipaa compliant", "en", "privacy"),       # "compliant" is not a typo of "complaint"
    ("问诊过程会录音吗", "zh-CN", "privacy"),
    ("I no longer authorize the use of my data", "en", "revoke_consent"),
    ("我不同意你们用我的资料做研究", "zh-CN", "revoke_consent"),
    ("把我的档案从你们平台上删掉", "zh-CN", "forget_me"),
    ("could a doctor look at my results from last week", "en", "intake"),
    ("帮我挂个王医生的号", "zh-CN", "intake"),
    ("挂号费是多少", "zh-CN", "prices"),
    ("what can you help me with?", "en", "start"),
    ("你们这个能帮我干啥", "zh-CN", "start"),
    ("my wound looks infected, been waiting hours for the swelling to go down", "en", "intake"),
    ("孩子发烧两天了 我很生气医院排队排了三个小时", "zh-CN", "intake"),
    ("每天晚上都咳嗽 吃药也不管用", "zh-CN", "intake"),
])
def test_request_classes_reach_their_flow(intents, text, locale, flow):
    result = intents.classify(text, locale)
    assert result.confident and result.flow == flow, result.why()


def test_a_symptom_keeps_the_complaint_and_explains_itself(intents):
    result = intents.classify("my knee hurts when i go down stairs", "en")
    assert result.confident and result.intent == "consult_symptom" and result.flow == "intake"
    assert result.slots == {"complaint": "my knee hurts when i go down stairs"}
    cues = {e.cue: e.where for e in result.evidence}
    assert "hurts" in cues and cues["hurts"].startswith("en.yml:")   # each cue names its file and line
    assert "routes" in result.why()
    data = result.to_dict()
    assert data["flow"] == "intake" and data["evidence"] and data["why"]


def test_unclear_text_does_not_route(intents):
    for text in ("ok thanks", "嗯", "asdfgh"):
        result = intents.classify(text, "en")
        assert not result.confident and result.to_dict()["flow"] is None


def test_typed_answers_mean_an_option(intents):
    satisfaction = ask("scale", "satisfaction", lo=1, hi=5)
    recommend = ask("scale", "recommend", lo=0, hi=10)
    assert read(intents, satisfaction, "非常满意") == 5
    assert read(intents, satisfaction, "非常滿意 謝謝") == 5
    assert read(intents, satisfaction, "不太满意") == 2
    assert read(intents, satisfaction, "very dissatisfied") == 1
    assert read(intents, satisfaction, "honestly couldn't be happier") == 5
    assert read(intents, satisfaction, "it could have been better") == 2
    assert read(intents, recommend, "I give 7 point") == 7
    assert read(intents, recommend, "nine out of ten") == 9
    assert read(intents, recommend, "九分吧") == 9
    assert read(intents, recommend, "50/50 so 5") == 5
    assert read(intents, recommend, "非常满意") == 10           # a five-point word placed on 0–10
    who = ask("choice", "patient_is", ("self", "child", "parent", "other"))
    assert read(intents, who, "myself lah") == "self"
    assert read(intents, who, "给我爹问的") == "parent"
    assert read(intents, who, "a colleague") == "other"
    yes_no = ask("yes_no")
    assert read(intents, yes_no, "没有 太忙了") is False
    assert read(intents, yes_no, "去过门诊了 还是没好") is True
    assert read(intents, yes_no, "yep went last week") is True


def test_unclear_or_exact_questions_stay_refused(intents):
    with pytest.raises(Invalid):
        read(intents, ask("yes_no"), "hmm not sure")
    with pytest.raises(Invalid):
        read(intents, ask("yes_no", exact=True), "是的 孙子才六岁")   # consent: only in so many words
    with pytest.raises(Invalid):
        read(intents, ask("scale", lo=0, hi=10), "15")
    assert read(intents, ask("yes_no", exact=True), "是的") is True


def test_content_errors_name_file_and_line(tmp_path):
    (tmp_path / "understand").mkdir()
    (tmp_path / "understand" / "en.yml").write_text(
        "threshold: 2\nintents:\n  human:\n    flow: human\n    patterns:\n      - { re: '(unclosed', weight: 2 }\n"
        "  reminder:\n    flow: no_such_flow\n    cues: {2: [remind]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_intents(tmp_path)
    assert "en.yml:6" in str(err.value) and "not a valid regular expression" in str(err.value)
    (tmp_path / "understand" / "en.yml").write_text(
        "intents:\n  reminder:\n    flow: no_such_flow\n    cues: {2: [remind]}\n", encoding="utf-8")
    problems = load_intents(tmp_path).missing_flows({"human", "medication_reminder"})
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'understand' / 'en.yml'}:3: intents.reminder.flow: no flow 'no_such_flow'; "
        "valid: human, medication_reminder"]


def test_understand_command_json(capsys):
    assert main(["understand", "can I talk to a real person", "--locale", "en", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["flow"] == "human" and result["confident"] and result["evidence"]


def test_understand_command_plain(capsys):
    assert main(["understand", "头疼三天了", "--locale", "zh-CN"]) == 0
    out = capsys.readouterr().out
    assert "flow:    intake" in out and '"complaint": "头疼三天了"' in out and "zh-CN.yml:" in out


def test_understand_eval_scores_labelled_files(tmp_path, capsys):
    cases = tmp_path / "en.yml"
    cases.write_text(
        "locale: en\ncases:\n"
        "  - {expect: human, text: can i talk to a human pls}\n"
        "  - {expect: prices, text: how much is it}\n"
        "  - {expect: consult_symptom, text: my head hurts since yesterday}\n"
        "  - {expect: opt_in, text: hello}\n"
        "  - {expect: \"satisfaction:5\", text: 非常满意}\n"
        "  - {expect: \"who:self\", text: just me}\n"
        "  - {expect: \"yes_no:no\", text: nope}\n", encoding="utf-8")
    assert main(["understand", "eval", str(cases), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)["en"]
    assert figures["cases"] == 7 and figures["right"] == 6
    assert figures["per_label"]["opt_in"] == {"right": 0, "cases": 1, "accuracy": 0.0}
    assert figures["confusion"] == [{"expected": "opt_in", "got": "menu", "count": 1}]   # a greeting shows the menu
    assert main(["understand", "eval", str(cases)]) == 0
    assert "requests to the right flow 3/4" in capsys.readouterr().out
    only_requests = tmp_path / "requests.yml"
    only_requests.write_text("locale: en\ncases:\n  - {expect: prices, text: how much is it}\n", encoding="utf-8")
    assert main(["understand", "eval", str(only_requests)]) == 0   # no typed answers: "–", not a crash
    assert "typed answers 0/0 (–)" in capsys.readouterr().out


@pytest.mark.parametrize("text, flow", [
    ("我想资询一下医生", "intake"),                      # 资询 typed for 咨询
    ("能不能帮我把晚上九点那个吃药的提省撤了", "reminder_stop"),  # 提省 for 提醒
    ("我跟医生聊的内容会被别人看到吗 阴私的事情", "privacy"),    # 阴私 for 隐私
])
def test_homophones_are_read_as_the_word_meant(intents, text, flow):
    result = intents.classify(text, "zh-CN")
    assert result.confident and result.flow == flow, result.why()


def test_a_negated_cue_counts_nothing_and_says_why(intents):
    result = intents.classify("I don't want to delete my account, just stop all the messages", "en")
    assert result.confident and result.flow == "opt_out", result.why()
    taken_back = {e.cue: e.negated_by for e in result.evidence if e.negated_by}
    assert taken_back.get("delete my account") == "dont"
    assert all(e.weight == 0 for e in result.evidence if e.negated_by)
    assert "taken back by" in str(next(e for e in result.evidence if e.negated_by))
    assert result.to_dict()["evidence"][0].keys() >= {"negated_by"}
    zh = intents.classify("我想找你们的工作人员 不是找医生", "zh-CN")
    assert zh.confident and zh.flow == "human", zh.why()


def test_negation_stops_at_the_end_of_a_clause_and_inside_a_cue(intents):
    result = intents.classify("no reply for 2 days, this is not acceptable, how to complain", "en")
    assert result.confident and result.flow == "complaint", result.why()
    assert not any(e.negated_by for e in result.evidence if e.cue == "complain")
    ask_symptom = intents.classify("头疼三天了 是不是感冒", "zh-CN")          # 不是 inside 是不是
    assert not any(e.negated_by for e in ask_symptom.evidence)


def test_a_time_of_day_is_not_read_in_every_i_am(intents):
    assert intents.classify("I am having itchy red patches on my arms", "en").flow == "intake"
    result = intents.classify("remind me at 8am for my pills", "en")
    assert result.confident and result.flow == "medication_reminder"


def test_homophones_must_be_chinese(tmp_path):
    (tmp_path / "understand").mkdir()
    (tmp_path / "understand" / "en.yml").write_text("homophones: {docter: doctor}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_intents(tmp_path)
    assert "en.yml:1" in str(err.value.problems[0]) and "homophones" in str(err.value.problems[0])


def test_the_learned_model_routes_only_where_the_cues_did_not(intents) -> None:
    # no cue of `human` matches "staffer"; the intent model reads the request and says why
    result = intents.classify("could i get a hold of an actual staffer", "en")
    assert result.confident and result.intent == "human" and result.flow == "human"
    assert result.learned and result.learned["routes"] and result.learned["p"] >= result.learned["threshold"]
    assert "learned model" in result.why()
    # cues that route are never second-guessed by the model
    routed = intents.classify("remind me to take my pills at 8 every morning", "en")
    assert routed.intent == "reminder" and routed.learned is None
    # too short or unknown to the model: nothing routes
    for text in ("blorp", "嗯", "ok thanks", "asdf qwer zxcv"):
        assert not intents.classify(text, "en").confident


def test_cues_alone_without_the_model(tmp_path) -> None:
    from bot.understand.intents import load_intents
    from tests.conftest import ROOT

    cues_only = load_intents(ROOT / "content", model=False)
    assert not cues_only.classify("could i get a hold of an actual staffer", "en").confident


def test_a_strong_cue_inside_another_intents_longer_cue_counts_once(intents):
    """停止用药提醒 (stop) is one phrase: 用药提醒 inside it does not also ask to set a reminder."""
    result = intents.classify("停止用药提醒吧", "zh-CN")
    assert result.confident and result.flow == "reminder_stop", result.why()
    assert not any(e.intent == "reminder" and e.cue == "用药提醒" for e in result.evidence)


def test_a_rhetorical_question_does_not_negate(intents):
    """这不是骗人吗 ("isn't this a scam?") asserts a scam: 不是 in a clause ending in 吗 takes nothing back."""
    result = intents.classify("钱付了 一直没人回答 这不是骗人吗", "zh-CN")
    assert result.confident and result.flow == "complaint", result.why()
    assert intents.classify("不是删号 就是想清静点", "zh-CN").flow == "opt_out"


# Written after the tuning above, as a check on classes (not on sentences); fixed by class where wrong.
@pytest.mark.parametrize("text, locale, flow", [
    ("I want to lodge a grievance regarding dr wong", "en", "complaint"),
    ("the doctor prescribed the wrong thing and my son got sick, I'm very unhappy", "en", "complaint"),
    ("我要对黄医生提出申诉", "zh-CN", "complaint"),
    ("does my doctor at the polyclinic get a copy of this chat", "en", "privacy"),
    ("我上传的照片你们怎么处理", "zh-CN", "privacy"),
    ("i take back the yes i gave at sign up", "en", "revoke_consent"),
    ("注册时候点的同意我收回", "zh-CN", "revoke_consent"),
    ("do you take credit cards", "en", "prices"),
    ("能刷信用卡吗", "zh-CN", "prices"),
    ("I want the daily tips again", "en", "opt_in"),
    ("健康小贴士不要了 谢谢", "zh-CN", "opt_out"),
    ("可以用马来话吗", "zh-CN", "language"),
    ("could u help me not miss my evening metformin", "en", "medication_reminder"),
    ("维生素D的提醒关一下 疗程结束了", "zh-CN", "reminder_stop"),
    ("带我回主界面", "zh-CN", "start"),
    ("dad keeps forgetting names and got lost driving home yesterday", "en", "intake"),
    ("我爸最近老记不住人名 昨天开车回家还迷路了", "zh-CN", "intake"),
    ("no longer on warfarin so those nudges can go", "en", "reminder_stop"),     # a fourth set, same way
    ("华法林已经停了 那个提示可以不要了", "zh-CN", "reminder_stop"),
    ("whats the damage for a video consult", "en", "prices"),
    ("I'm leaving, scrub my details from your servers", "en", "forget_me"),
    ("dont want the weekly health emails", "en", "opt_out"),
    ("群发的都给我屏蔽掉", "zh-CN", "opt_out"),
    ("每周的健康消息再给我订上", "zh-CN", "opt_in"),
    ("worst consult I've ever had, the doctor was on his phone the whole time", "en", "complaint"),
    ("最差的一次问诊 医生全程在玩手机", "zh-CN", "complaint"),
    ("I need to talk with whoever handles billing issues", "en", "human"),
    ("麻烦转给你们同事 不要机器", "zh-CN", "human"),
    ("show me everything this thing does", "en", "start"),
    ("Where are your servers, is my data kept in the UK", "en", "privacy"),
    ("want to run something by a doctor when one is free", "en", "intake"),        # a fifth set
    ("how long do you hold onto my chat logs", "en", "privacy"),
    ("我的聊天记录你们留多久", "zh-CN", "privacy"),
    ("I miss the health tips you used to send, can I have them back", "en", "opt_in"),
    ("以前发的健康小贴士挺好的 能再发给我吗", "zh-CN", "opt_in"),
    ("医生都没看我发的照片就回答了 太不负责了", "zh-CN", "complaint"),
    ("除非我先找你们 否则别联系我", "zh-CN", "opt_out"),
    ("报销需要准备什么材料", "zh-CN", "prices"),
])
def test_request_classes_written_after_tuning(intents, text, locale, flow):
    result = intents.classify(text, locale)
    assert result.confident and result.flow == flow, result.why()
