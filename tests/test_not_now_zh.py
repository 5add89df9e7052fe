"""zh-CN "not now" as classes (content/triage/zh-CN.yml `not_now`, docs/triage.md "Round 7, zh-CN"):
a message framed as no patient's now (a drill, a course, homework, a survey, a joke, an animal, a trip
being prepared for), a condition named as the subject of a knowledge question, a dated past with the
aspect 过, hyperbole about money, names and nuisances. Each class has ordinary messages that must stay
ordinary and present red flags in the same words that must still fire. Written for this file, not
taken from the blind sets."""

from __future__ import annotations

import pytest

from bot.triage.screen import Screener

RED = ("emergency", "emergency_ambulance")


def _screen(screener: Screener, text: str):
    return screener.screen(text, "zh-CN").assessment


@pytest.mark.parametrize("text", [
    # a frame: drills, courses, homework, exam questions, surveys, articles, insurance, first-aid kits
    "下周单位搞应急演习 要有人扮演晕倒的 我该怎么演才像",
    "驾照考试题：伤员大出血应该先做什么 选项看不懂",
    "我们护理专业的作业：写出心脏骤停的判断流程",
    "在给社区做问卷 想了解大家知不知道脑卒中的早期信号",
    "想买重疾险 问问脑梗算不算重疾",
    "车上想备个急救包 止血带和三角巾要不要放",
    # the writer's own joke
    "被老板气得胸口疼 开个玩笑 想问下体检几点开始",
    # an animal as the one it happened to
    "我家兔子吃了老鼠药 抽了两下 附近有宠物医院吗",
    "小区的流浪狗被车撞了 流了好多血 谁管",
    # getting ready for a trip, learning ahead
    "暑假准备去海边玩 万一有人溺水 先做什么 提前学一下",
    # a condition named as the subject of a knowledge question
    "肺栓塞是怎么引起的",
    "什么叫热射病",
    "宫外孕和阑尾炎哪个更危险",
    "癫痫的症状有哪些",
    "什么时候要叫救护车 什么时候自己打车去医院就行",
    "朋友说他有轻生的念头我该怎么跟他聊",
    "中暑的人能不能马上喝冰水",
    "梦见自己吐血 是不是不吉利",
    # a dated or aged past with 过, after that time, a past birth
    "2019年做过一次心脏支架 现在每年复查 这次挂哪个科",
    "五岁的时候抽过一次 之后再没犯 现在想考驾照",
    "上次胃出血那次之后一直吃奥美拉唑 还要吃多久",
    "28周生的早产儿 现在两岁了 发育正常吗",
    "上个月是脑梗 住了两周院 出院的药能停吗",
    # hyperbole: money and things, a name, a sight, almost fainting, a disease about to flare, the weather
    "基金又大出血了 心态崩了 能开点助眠的药吗",
    "这个电影叫窒息 有人看过吗",
    "看到体检报告的价格我当场心梗了",
    "累得我快晕过去了 明天的号能改约吗",
    "开会开得我脑溢血都要犯了",
    "这回南天闷得人透不过气 除湿机有用吗",
    "心脏骤停黄金几分钟",
    "高热惊厥以后会不会影响智力",
    "同事说年纪轻轻也会猝死 吓得我睡不着",
    "之前宫外孕切了一边输卵管 还能怀孕吗",
    "拍一段溺水的科普视频 想请医生把关",
    "等车等到我要心梗了",
    "憋尿憋死了 厕所在哪",
    "痛风疼得我想死 吃什么能好",
    # a worried question, a sign said not to be the alarming kind
    "吃芒果嘴有点痒 会不会过敏休克",
    "宝宝睡着了手抖一下 是抽搐吗",
    "脸有点不对称 是天生的 会是中风吗",
    "头疼 不是那种突然炸开的疼 就是有点胀",
])
def test_not_now_classes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level not in RED


@pytest.mark.parametrize("text", [
    "我们在搞消防演习 突然有个同事真的晕倒了 叫不醒",
    "不是开玩笑 我真的不想活了",
    "我以为他在开玩笑 结果他把一整瓶安眠药都吃了",
    "活着没意思 开个玩笑啦",
    "被狗咬了 流了好多血 止不住",
    "我爸心梗了为什么还不让喝水 现在胸口疼得出冷汗",
    "上次脑梗过以后 今天早上又突然说不出话 嘴歪了",
    "累得晕倒了 叫不醒",
    "下个月要去旅游 刚才突然胸口压着疼 出冷汗",
    # an activity named as the place it happened is no frame
    "老师讲课的时候晕倒了 叫不醒",
    "在驾校练车被车撞了 骨头露出来了",
    "写论文写到凌晨 胸口压着疼 出冷汗",
    "我是演员 拍戏从高处摔下来 昏迷了",
    "下周要去爬山 这两天胸口压着疼 出冷汗",
    "疼得我想死 真的不想活了",
    "他是抽搐吗 全身一直在抖 叫不醒",
])
def test_present_red_flags_in_the_same_words_still_fire(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level in RED


def test_a_frame_covers_every_clause_but_one_with_a_present_cue(rules_only: Screener) -> None:
    drill = _screen(rules_only, "公司在搞演习 模拟有人烧伤 还有人窒息")
    assert drill.level not in RED
    assert any(m.rule == "not_now:frame" for m in drill.matched)
    real = _screen(rules_only, "公司在搞演习 刚才有人真的从梯子上摔下来 没有呼吸了")
    assert real.level == "emergency_ambulance"


def test_a_passed_tia_in_everyday_words_is_emergency(rules_only: Screener) -> None:
    assert _screen(rules_only, "我妈刚才一边脸麻 嘴角歪了 过了一会儿就好了").level == "emergency"
    assert _screen(rules_only, "我妈刚才一边脸麻 嘴角歪了 过了一会儿还是歪的").level == "emergency_ambulance"


# ---- round 8 (session 7) ----------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    # how long one has, what to do during a fit, first-aid method questions, read online
    "心梗发病多久以内送到医院能救回来",
    "哮喘发作时能不能喝热水",
    "被马蜂蛰了正确的处理方法是什么 想提前知道",
    "我在网上查到说手抖可能是癫痫 我爸就是偶尔手抖 要挂什么科",
    # almost fainting from anger or laughter
    "儿子又把作业本弄丢了 我快被气晕了",
    # a thesis, a film about it, fish in a tank
    "课题研究脑卒中院前延误 想找神经内科医生聊聊",
    "周末看了一部讲溺水救援的纪录片 救生员好厉害",
    "金鱼翻肚子了 是不是缺氧快憋死了",
    # an operation months ago, "at the time" in a dated story
    "两年前做了阑尾手术 现在肚子偶尔胀气正常吗",
    "前年爷爷中风 当时说话都不清楚 现在恢复得差不多了 想问康复训练",
])
def test_round8_not_now_classes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level not in RED


@pytest.mark.parametrize("text", [
    "刚才他抽搐的时候要不要往嘴里塞东西 现在还在抽",
    "两年前做过心脏手术 刚才突然胸口压着疼 出冷汗",
    "气得我晕倒了 叫不醒",
    "我妈刚才被吓晕过去了 叫不醒",
    "写论文写到半夜 突然说不出话 半边身子麻",
])
def test_round8_present_red_flags_still_fire(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level in RED


@pytest.mark.parametrize("text", [
    # session 10: a state "so much that" (hyperbole), walking counted in steps, an adult's arm that will not lift
    "下午面试 紧张得快窒息了 怎么放松",
    "加班累得快死了 周末想去做个按摩",
    "期末复习多的想死 就发发牢骚",
    "爬了一天山 腿都快断了 明天会不会更酸",
    "昨天陪孩子逛动物园走了两万多步 膝盖有点疼",
    "左胳膊疼了一个月 洗头都抬不起来 是不是肩周炎",
    "老公最近总不理人 是不是压力太大",
])
def test_session10_not_now_classes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level not in RED


@pytest.mark.parametrize("text", [
    "我喘不上气 快窒息了 嘴唇发紫",
    "今晚就走了 药都攒好了",
    "宝宝软趴趴的 叫她不理人",
    "从楼梯上摔下来 腿断了 动不了",
])
def test_session10_present_red_flags_still_fire(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level in RED


@pytest.mark.parametrize("text", [
    # session 11: a hypothetical after its subject, "if one meets it", learning how, a job that meets it daily,
    # a ward's patients, last time, a past stay in hospital, a burden, a queue, a course's homework
    "孩子一岁多 如果吃东西噎住了 正确的处理方法是什么",
    "万一遇到老人被汤圆噎住了该怎么办",
    "公司让我们都学会心脏骤停了怎么处理",
    "我是护士 天天接触心梗病人 最近自己失眠",
    "想咨询一下你们医院胸痛病人的绿色通道在哪",
    "上次生孩子大出血 这次孕检一切正常 要注意啥",
    "前年住了半个月院 出院以后一直挺好 想复查一下",
    "车贷压得我喘不过气 晚上睡不着",
    "排队排了两小时 我真的要心梗了",
    "急救培训课的作业 要画一张窒息急救的图",
])
def test_session11_not_now_classes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level not in RED


@pytest.mark.parametrize("text", [
    "跟上次一样 胸口压着疼 出冷汗",
    "孩子吃葡萄噎住了 脸都紫了 怎么办",
    "上次住院是心衰 刚才突然喘不上气 嘴唇发紫",
])
def test_session11_present_red_flags_still_fire(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level in RED


def test_session11_dka_with_drowsiness_is_an_ambulance(rules_only: Screener) -> None:
    """RED-FLAGS.md: diabetic emergencies are E, A if drowsy ("说困 想睡觉" beside a sugar the meter cannot read)."""
    assert _screen(rules_only, "一型糖尿病 一直吐 血糖仪显示HI 现在说困 想睡觉").level == "emergency_ambulance"
    assert _screen(rules_only, "一型糖尿病 一直吐 血糖仪显示HI").level == "emergency"


@pytest.mark.parametrize("text", [
    # session 11 (round 11): a story from long ago told up to "now", smoking again, a queue, a novel's character,
    # a negated numbness in a crash-like context, a child hard to wake in the morning, a swallowed eraser
    "初中上体育课晕倒过一次 查了说是低血糖 后来再没犯 现在想考驾照 体检要写吗",
    "五年前做了心脏支架 当时胸口疼得厉害 现在每年复查都正常 想问能不能坐飞机",
    "我爸抽烟二十年 戒了半年 过年又开始抽了 怎么劝",
    "排队挂号排得我快晕倒了",
    "在写小说 主角被毒蛇咬了 想问写成当场昏迷合理吗",
    "骑电动车送快递 腰有点疼 腿不麻 贴膏药行吗",
    "孩子早上总叫不起来 上学老迟到 是不是缺觉",
    "孩子把一小块橡皮咽下去了 玩得好好的",
    "万一老人突然中风 有什么早期信号能发现",
])
def test_session11_round11_not_now_classes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level not in RED


@pytest.mark.parametrize("text", [
    "五年前做了心脏支架 今天又胸口压着疼 出冷汗",
    "小时候有哮喘 现在喘不上气 嘴唇发紫",
    "孩子刚才突然开始抽 叫不醒",
    "孩子把纽扣电池咽下去了",
])
def test_session11_round11_present_red_flags_still_fire(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level in RED


@pytest.mark.parametrize("text", [
    # session 11 (round 11): levels RED-FLAGS.md gives A — heavy bleeding in pregnancy, a venomous bite swelling,
    # a road accident getting worse, a head injury growing drowsy, pink froth after breathing in water
    "怀孕三十周 出血很多",
    "被竹叶青咬了 手肿起来了",
    "出车祸了 腰被撞了 越来越疼 脸发白",
    "孩子摔到头 越来越想睡 叫好几遍才应",
    "游泳呛了水 晚上咳出粉红色的泡沫",
    # and writing a novel is no frame when the writing went on till late and the chest hurts now
    "写小说写到凌晨 胸口压着疼 出冷汗",
])
def test_session11_round11_levels_by_red_flags_md(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level == "emergency_ambulance"


def test_session11_a_novel_about_a_snake_bite_is_no_emergency(rules_only: Screener) -> None:
    assert _screen(rules_only, "在写一本悬疑小说 被银环蛇咬了多久会没命").level not in RED


@pytest.mark.parametrize("text", [
    # session 11 (round 12): 前几年, a plate after a crash, 第一时间该咋办, 怎么判断是X还是Y, a bitter medicine,
    # a death wish laughed off, 气出心梗, a fear of bleeding, sore muscles after the gym, a hand slept on,
    # a drill's scenario, a pet shocked, a documentary, an exam, xswl
    "前几年试过轻生 现在都挺好的 想问问能不能停药",
    "骨折打的钢板什么时候能取",
    "被马蜂蜇了第一时间该咋办 下周去爬山",
    "怎么判断是普通头疼还是脑出血",
    "这药苦得我想死 有没有胶囊的",
    "带娃带得我想死 哈哈哈",
    "被熊孩子气出心梗了 能开点降压药吗",
    "吃着阿司匹林 要拔牙 怕出血止不住 要停药吗",
    "昨天练胸 今天胸口肌肉酸疼",
    "早上右手麻 昨晚压着胳膊睡的 一会就好了",
    "公司搞急救演练 模拟有人突然倒地 想请医生来讲课",
    "我家猫咬电线被电了一下 现在没事",
    "看了个讲心梗的纪录片 有点害怕",
    "电工证考试要考触电急救 有资料吗",
    "xswl 我爸说他被蚊子咬得快不行了",
])
def test_session11_round12_not_now_classes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level not in RED


@pytest.mark.parametrize("text", [
    "胸口压着疼 出冷汗 半小时了 不是肌肉酸",
    "前几年做过支架 今天又胸口压着疼 出冷汗",
    "刚才突然右手麻 说话不清楚",
])
def test_session11_round12_present_red_flags_still_fire(rules_only: Screener, text: str) -> None:
    assert _screen(rules_only, text).level in RED
