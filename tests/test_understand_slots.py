"""What a typed message already says (bot/understand/slots.py): the readers, and the slots a typed
request fills through its intent's `fills:` (shown by `carebot understand --json`)."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.understand.slots import dose, duration, medicine, patient_is, relation


@pytest.mark.parametrize("text, name, amount", [
    ("remind me to take metformin 500 at 8am and 8pm", "metformin", "500"),
    ("每天早上八点提醒我吃降压药", "降压药", None),
    ("提醒我每天晚上9点吃二甲双胍500毫克", "二甲双胍", "500毫克"),
    ("我每天中午１２点要吃一片优甲乐，到点叫我一下", "优甲乐", "1片"),
    ("Set up a reminder for my mum's levothyroxine at 7am please", "levothyroxine", None),
    ("add a reminder for vitamin d 1000iu daily at lunch time", "vitamin d", "1000iu"),
    ("remind me to take 2 puffs of ventolin at 8", "ventolin", "2 puffs"),
    ("二甲双胍一天两次，帮我定个提醒", "二甲双胍", None),
    # no medicine named: the flow asks
    ("remind me to take my pills at 8am every day", None, None),
    ("每天早上八点提醒我吃药", None, None),
    ("吃没吃药都记不住 你们能天天提醒我吗", None, None),
    ("please help me schedule pill reminders, I take 3 different meds", None, None),
])
def test_the_medicine_and_dose_of_a_reminder_request(text, name, amount):
    assert (medicine(text), dose(text)) == (name, amount)


@pytest.mark.parametrize("text, said", [
    ("cough for 3 days", "for 3 days"),
    ("咳嗽三天了", "3天了"),
    ("咳嗽一个多星期了", "一个多星期了"),
    ("headache since yesterday", "since yesterday"),
    ("从昨天开始肚子疼", "从昨天开始"),
    ("拉肚子好几天了", "好几天了"),
    ("knee pain for the past 2 weeks", "for the past 2 weeks"),
    # an age, a gestation, a frequency: no duration
    ("my 2 year old has diarrhea and vomited twice today", None),
    ("宝宝两个月 发烧", None),
    ("34 weeks pregnant and bleeding", None),
    ("take it 3 times a day", None),
    ("一天三次", None),
    ("every 8 hours", None),
])
def test_how_long_the_complaint_has_lasted(text, said):
    assert duration(text) == said


@pytest.mark.parametrize("text, who, answer", [
    ("my mother has had a cough for 3 days", "mother", "parent"),
    ("我妈妈咳嗽三天了", "mother", "parent"),
    ("医生你好，我老公胸口疼", "husband", "other"),
    ("my 2 year old has diarrhea", "child", "child"),
    ("孩子发烧了", "child", "child"),
    ("My son is vomiting", "son", "child"),
    # the sender is the patient, or the relation is not who is ill
    ("my mum says I have a rash", None, None),
    ("my dad's diabetes tablets", None, None),
    ("我咳嗽，我妈也咳嗽", None, None),
    ("my stomach hurts", None, None),
])
def test_who_the_patient_is(text, who, answer):
    assert (relation(text), patient_is(text)) == (who, answer)


def test_understand_json_shows_the_slots_a_reminder_request_fills(capsys):
    assert main(["understand", "remind me to take metformin 500 at 8am and 8pm", "--locale", "en", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["flow"] == "medication_reminder"
    assert result["slots"] == {"med_name": "metformin", "med_dose": "500",
                               "med_when": "remind me to take metformin 500 at 8am and 8pm"}
    assert main(["understand", "每天早上八点提醒我吃降压药", "--locale", "zh-CN", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["slots"] == {"med_name": "降压药", "med_when": "每天早上八点提醒我吃降压药"}
