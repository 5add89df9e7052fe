"""zh-CN severity as concepts (content/triage/zh-CN/severity.yml): what makes a red flag an ambulance
call rather than "go to the emergency department" (RED-FLAGS.md modifiers), red flags told in
everyday words, and the ordinary look-alikes each concept must leave alone. Written for this file,
not taken from the blind sets."""

from __future__ import annotations

import pytest

from bot.triage import load_all_triage
from bot.triage.screen import Screener
from tests.conftest import ROOT

RED = ("emergency", "emergency_ambulance")


@pytest.fixture(scope="module")
def rules_only() -> Screener:
    return Screener(load_all_triage(ROOT / "content"), None)


def _level(screener: Screener, text: str) -> str:
    return screener.screen(text, "zh-CN").assessment.level


@pytest.mark.parametrize("text, level", [
    # suicide: means gathered or a time fixed is A, with or without the word 死
    ("农药已经买好了 就等过完年", "emergency_ambulance"),
    ("安眠药我攒够了", "emergency_ambulance"),
    # infection with altered consciousness (sepsis, meningitis)
    ("发高烧打寒战 现在人有点迷糊了", "emergency_ambulance"),
    # vomiting a lot of blood is A; rectal bleeding with faintness stays E
    ("我爸刚才呕了一大碗血 脸都白了", "emergency_ambulance"),
    ("老妈吐血止不住", "emergency_ambulance"),
    ("拉了很多鲜血 站起来头晕", "emergency"),
    # thunderclap: sudden and extreme in the head, or sudden with a stiff neck
    ("搬箱子的时候突然脑袋剧痛 跟炸了一样", "emergency_ambulance"),
    ("突然头疼 后脖子发硬", "emergency_ambulance"),
    # chest pain alone, however long, stays E (RED-FLAGS.md: chest pain without other signs)
    ("胸口闷痛两个多小时了 别的都还好", "emergency"),
    # ectopic: a positive test, one-sided pain and a faint
    ("验孕棒两条线 刚才右下腹疼得厉害 在公司晕倒了", "emergency_ambulance"),
    # late pregnancy bleeding, a lot
    ("怀孕32周 下面出血了 量很多", "emergency_ambulance"),
    # a new mother who means to take the baby with her
    ("老婆坐月子 一直哭 说要抱着宝宝一起跳下去", "emergency_ambulance"),
    # breathing trouble with blue lips, or a cry for help
    ("儿子喘得厉害 嘴唇都有点紫了", "emergency_ambulance"),
    ("喘不上气 快不行了", "emergency_ambulance"),
    # a swallowed battery is E; with breathing trouble A
    ("女儿吞了一颗纽扣电池", "emergency"),
    ("孙子误吞了电池 现在呼吸困难", "emergency_ambulance"),
    # fits one after another
    ("我弟弟抽了一次又接着抽 反复抽 一直没醒", "emergency_ambulance"),
    # everyday words for conditions no rule read
    ("腰疼得在床上打滚 冒冷汗", "emergency"),
    ("奶奶肚子胀 两天没大便也没放屁 还吐了", "emergency"),
    ("儿子十五岁 早上起来蛋蛋突然疼 疼得走不了路", "emergency"),
    ("右眼看东西突然只剩下一半了", "emergency"),
    ("邻居修空调触电了 人倒在地上", "emergency_ambulance"),
    ("切菜机器绞到手 血止不住", "emergency_ambulance"),
    ("发现儿子胳膊上好多划痕 有新的 还在流血", "emergency"),
    ("宝宝拉肚子一天了 尿不湿一直是干的", "emergency"),
    ("糖尿病人 今天一直吐 呼吸有股烂苹果味", "emergency"),
    ("喉咙痛 口水咽不下去 发烧39度", "emergency_ambulance"),
    ("我妈说左边肩膀和下巴酸 出冷汗 脸色发灰", "emergency_ambulance"),
    ("把娃忘在车里一个钟头 抱出来浑身通红叫不醒", "emergency_ambulance"),
    ("两岁孩子吃瓜子呛到了 现在一直咳 喘气有声音", "emergency"),
])
def test_severity_concepts(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "痛经疼得打滚 每个月都这样 有啥办法",
    "笑得我在地上打滚",
    "孩子癫痫 最近一直没发作 药能减吗",
    "抽烟抽了十几年 反复咳嗽",
    "吃了鸡蛋突然肚子有点疼",
    "冬天冻得嘴唇发紫 手也冰",
    "电池没电了 充不进去",
    "肩膀酸 健身出了一身汗 正常吗",
    "宝宝在车里睡着了 到家了要不要叫醒他",
    "吐血推荐这款面霜",
    "气得我吐血",
    "验孕两道杠 好开心 什么时候去建档",
    "尿不湿多久换一次",
    "我家孩子不爱吃瓜子",
    "医生说胎动正常 量了血压也正常",
])
def test_severity_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in RED
