"""zh-CN severity as concepts (content/triage/zh-CN/severity.yml): what makes a red flag an ambulance
call rather than "go to the emergency department" (RED-FLAGS.md modifiers), red flags told in
everyday words, and the ordinary look-alikes each concept must leave alone. Written for this file,
not taken from the blind sets."""

from __future__ import annotations

import pytest

from bot.triage.screen import Screener

RED = ("emergency", "emergency_ambulance")


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
    ("煤气报警器一直在响 老婆头晕想吐", "emergency_ambulance"),
    ("我老爸前列腺大 一晚上都尿不出来 小肚子胀", "emergency"),
    ("怀孕33周 刚刚突然流出来一股水", "emergency"),
    ("32周了 今天胎动少了很多", "emergency"),
    ("上周查出来是宫外孕 现在肚子疼得厉害", "emergency"),
    ("右眼胀得快要爆出来了", "emergency"),
    ("吃了虾 嗓子越来越紧", "emergency_ambulance"),
    ("孩子掉进鱼塘 捞上来以后一直迷迷糊糊的", "emergency_ambulance"),
    ("厨房油锅着火 老公胳膊烧得皮都掉了 一大片", "emergency_ambulance"),
    ("两岁娃被开水烫了 手背起了一片水泡", "emergency"),
    ("三个月宝宝呼吸一分钟八十多次", "emergency"),
    ("肚子右上边疼 眼白发黄 烧到39度", "emergency"),
    ("上腹疼得厉害 往后背窜 吐了好几次", "emergency"),
    ("肚子疼 按着更疼 发烧了", "emergency"),
    ("爷爷突然一只眼看不见了 走路也站不稳", "emergency_ambulance"),
    ("工友被叉车压到了胸口", "emergency_ambulance"),
    ("半夜憋醒了 喘不上气 越来越厉害", "emergency_ambulance"),
    ("做完手术第五天 突然呼吸很急 一深呼吸胸口就疼", "emergency_ambulance"),
    ("奶奶肺炎住了几天 今天开始说胡话", "emergency_ambulance"),
    ("儿子4岁 偷吃了外婆的降糖药 现在一直想睡", "emergency_ambulance"),
    ("哮喘犯了 万托林喷了8下还是喘", "emergency_ambulance"),
    ("全身起风团 越来越多 喘气还行", "emergency"),
    ("后背突然疼 像被撕开一样", "emergency_ambulance"),
    ("腿上的伤口发炎了 今天打寒战 心跳很快", "emergency"),
    ("爷爷大热天在地里干活 回来浑身滚烫 说胡话", "emergency_ambulance"),
    ("女儿两岁 一阵一阵地哭 哭的时候腿缩起来 脸发白", "emergency"),
    ("这两天越来越喘 说话都费劲", "emergency"),
    ("孩子发烧 刚才眼睛一翻 手脚抽了几下", "emergency_ambulance"),
    ("肚子疼了一天 烧到39度 一直发抖 脸色发灰 腿软", "emergency_ambulance"),
    ("右眼突然疼 眼珠子摸着很硬", "emergency"),
    # a degree word between the neck and its stiffness still makes fever + stiff neck
    ("头疼 发烧 脖子有点硬", "emergency"),
    ("孩子发烧了 颈部有些僵", "emergency"),
])
def test_severity_concepts(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "发烧 脖子一点都不硬",
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
    # not now, as classes: a dated episode, someone in general, how to tell a disease, a drill,
    # a drama, an exam question, a poster, "X得我 + a disaster" for a non-symptom X, a worried question
    "上周孩子高热惊厥了一次 查了都没事",
    "有人噎住了应该怎么办",
    "中暑咋判断",
    "小孩误吞东西一般怎么处理",
    "公司消防演练 让我扮演一个晕倒的人",
    "昨晚看的电影 女主心脏骤停 太虐了",
    "有道题问脑出血的首选检查是什么",
    "社区让画防煤气中毒的宣传栏",
    "开会开得我要窒息了",
    "胸口偶尔抽一下 几秒就好 该不会是心梗吧",
    "我在急诊科上班 夜班好累",
    "烟雾报警器响了 原来是炒菜油烟",
    "尿不出来的感觉 尿频尿急 两天了",
    "孕36周 白带有点多 正常吗",
    "宝宝三个月 最近不怎么动 就爱睡觉",
    "宫外孕有什么症状",
    "眼睛有点胀 熬夜了",
    "吃了虾 嗓子有点痒",
    "游泳呛了口水 咳了两声就好了",
    "手指被烫了一下 起了个小泡",
    "肚子疼 拉肚子两次 没发烧",
    "喝多了站不稳 头晕",
    "搬家被柜子压到脚趾 有点肿",
    "感冒了 咳嗽越来越厉害 没发烧",
    "手术后伤口有点痒 正常吗",
])
def test_severity_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in RED


@pytest.mark.parametrize("text", [
    "我爸刚才吃饭噎住了 脸都紫了 怎么办",
    "路上有人晕倒了 没有呼吸 怎么办",
    "憋得我要窒息了 喘不上气",
    "胸口疼得我要昏过去了",
    "一氧化碳报警器响了 全家都头疼恶心",
    "上周做了一次手术 今天伤口红肿 高烧39度 人迷迷糊糊的",
    "急 我妈突然说不出话 嘴也歪了",
])
def test_not_now_classes_leave_present_red_flags(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in RED


@pytest.mark.parametrize("text, level", [
    # shock: pallor or cold hands beside injury, bleeding or severe pain; a low pressure beside an infection
    ("出车祸被撞了 肚子越来越疼 脸色苍白", "emergency_ambulance"),
    ("化疗第十天 发烧38.9 量血压只有80/50", "emergency_ambulance"),
    # something out after the waters went: the cord until shown otherwise
    ("羊水破了 下面好像有个东西滑出来了", "emergency_ambulance"),
    # a swallowed battery: E; with blood, A
    ("孩子吞了纽扣电池 吐出来的口水带血", "emergency_ambulance"),
    ("孩子吞了纽扣电池 现在看着还好", "emergency"),
    # a snake bite that spreads or turns black: A; a little swelling: E
    ("被蛇咬了 小腿肿到膝盖了", "emergency_ambulance"),
    ("被蛇咬了 有点肿", "emergency"),
    # wild food picked and eaten, then poisoning symptoms
    ("周末挖了野菜 采的蘑菇也一起炒了 现在一家人上吐下泻", "emergency_ambulance"),
    # a head knock on an anticoagulant, with no other sign
    ("我妈吃华法林 今天摔了磕到头 人看着还好", "emergency"),
    # a death wish with the means in hand
    ("不想活了 安眠药就在手里", "emergency_ambulance"),
    # a fever with spots that keep spreading
    ("发烧一天了 身上出血点越来越多", "emergency_ambulance"),
    # a new mother acting on a delusion with the baby in her arms; voices alone stay E
    ("老婆生完孩子 说孩子被人调包了 抱着孩子站在窗台边", "emergency_ambulance"),
    ("产后一周 她说有声音让她把孩子扔了", "emergency"),
    # blood seen in pregnancy in everyday words
    ("怀孕两个月 上厕所擦出来有血", "emergency"),
    # diabetes with altered consciousness in everyday words
    ("我妈有糖尿病 打了胰岛素没吃饭 现在说话颠三倒四", "emergency_ambulance"),
    ("血糖2.1 人有点发懵", "emergency_ambulance"),
    # a fever with purple spots and drowsiness
    ("孩子高烧 腿上有瘀斑 一直昏睡", "emergency_ambulance"),
    # a whole bottle of a sedative taken, whatever the numeral
    ("她刚吞了一板安定", "emergency_ambulance"),
    # the cord told as something hanging out
    ("破水了 下面挂着一根软软的东西", "emergency_ambulance"),
    # a burn told by how it happened and how it looks
    ("炸东西的时候热油泼到胳膊上 有巴掌那么大一块", "emergency"),
    ("洁厕灵溅到脚背 皮肤发白了", "emergency"),
    ("小孩碰到了取暖器 手指烫白了", "emergency"),
    # a button battery missing where a small child was playing
    ("计算器的纽扣电池不见了 三岁的女儿刚才一直在玩它", "emergency"),
    # bouts of crying with a jelly stool
    ("宝宝一阵一阵哭闹 拉了果酱样的大便", "emergency"),
])
def test_round7_levels_by_modifier(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "脸色有点发白 最近熬夜多",
    "平时血压低 早上起来头晕",
    "发烧38度 我血压低 一直这样",
    "孕32周 肚子疼没有 见红也没有 就是腰酸",
    "蹲久了站起来眼前一黑 一下就好了",
    "孩子把口香糖咽下去了",
    "糖尿病十年了 最近老犯迷糊 记性不好",
    "安眠药一瓶多少钱",
    "煎鸡蛋被油溅了一下 有点红",
    "遥控器的纽扣电池没电了 哪里能买",
    "宝宝一阵一阵哭 是不是饿了",
])
def test_round7_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in RED


@pytest.mark.parametrize("text", [
    "孕32周 肚子一阵阵疼 胎动没有了",
    "怀孕20周 出血没有止住 已经一个小时了",
    "我爸从昨晚到现在一滴尿都没有 肚子胀得难受",
])
def test_a_clause_final_none_denies_only_a_checklist(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in RED


# ---- round 8 (session 7): exact level by RED-FLAGS.md's modifiers, red flags in more words ----------
@pytest.mark.parametrize("text, level", [
    # breathing trouble with confusion or drowsiness: altered consciousness -> A
    ("我爸憋得喘不过气 现在说胡话了", "emergency_ambulance"),
    ("外公气喘得厉害 叫他也不理", "emergency_ambulance"),
    # breathing trouble with drooling (epiglottitis) -> A
    ("孩子喉咙疼 一直流口水 呼吸困难", "emergency_ambulance"),
    # a bone through the skin: major trauma -> A
    ("从梯子上摔下来 小腿骨头刺出来了", "emergency_ambulance"),
    ("骑车摔了 胳膊上能看到白色的骨头", "emergency_ambulance"),
    # fever with a septic sign or on chemotherapy, and barely responding -> A
    ("妈妈在化疗 发高烧 叫她不太理人", "emergency_ambulance"),
    # a sedative by the half bottle or by dozens -> A (already acted)
    ("他刚才吞了大半瓶艾司唑仑", "emergency_ambulance"),
    ("我姐吃了30片安定", "emergency_ambulance"),
    # a new mother speaking of taking the baby out of this world -> A
    ("老婆坐月子 整天哭 说要带宝宝去天堂", "emergency_ambulance"),
    # the cord felt after the waters went -> A
    ("破水了 用手摸着下面有一截滑滑的东西", "emergency_ambulance"),
    # a positive test, one-sided pain and about to faint -> A
    ("验孕是阳性 右边肚子疼得厉害 人快晕了", "emergency_ambulance"),
    # pregnancy bleeding with a belly hard as a board or severe pain -> A
    ("怀孕35周 下面流血 肚子硬邦邦的", "emergency_ambulance"),
    # a death wish or self-harm, and the means found or still held -> A
    ("女儿说活着没意思 我在她包里翻出一包刀片", "emergency_ambulance"),
    ("他用刀片往胳膊上划 现在还攥着刀片不松手", "emergency_ambulance"),
    ("妹妹拿小刀在手臂上划 划了好几下", "emergency"),
    # a burnt or scalded face (RED-FLAGS: facial burns A)
    ("开高压锅被蒸汽冲到脸 脸上烫起水泡", "emergency_ambulance"),
    ("烧烤的时候火一下窜到脸上", "emergency_ambulance"),
    # a chemical splashed, told verb first, with the skin changed -> E
    ("修电瓶的时候溅到硫酸 手背那块发白", "emergency"),
    # a boy's scrotum in a child's words, guarded -> E
    ("儿子六岁 说蛋蛋疼 碰都不让碰", "emergency"),
    # a headache that came in an instant -> E (A stays for explosive or worst ever)
    ("刚才头痛来得特别突然 没有一点预兆", "emergency"),
    ("打喷嚏的时候头疼 一下子就疼到顶了", "emergency"),
    # waters in the plainest words before term -> E
    ("孕30周 刚才突然流水了", "emergency"),
    # water breathed in, then a cough or a tight chest hours later -> E; fallen in and not breathing -> A
    ("中午在泳池呛了几口水 晚上开始咳嗽 胸闷", "emergency"),
    ("小孩掉鱼塘了 捞起来叫不醒", "emergency_ambulance"),
    # rolling with belly pain: E; with a systolic of 90 or less: A (shock)
    ("胃疼得打滚", "emergency"),
    ("肚子痛打滚 量了血压85/50", "emergency_ambulance"),
    # dialect: Cantonese choking and an elderly fall
    ("细佬食嘢噎住咗 讲唔出声", "emergency_ambulance"),
    ("阿爷喺厕所跌咗 企唔起", "emergency"),
    # a limb cold and blue that will not carry weight; a back wrenched, then incontinence
    ("外婆右脚冰凉发紫 疼 走不了路", "emergency"),
    ("搬东西扭了腰 然后小便控制不住", "emergency"),
])
def test_round8_levels_and_words(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "鼻塞 晚上睡得迷迷糊糊的 是不是鼻炎",
    "感冒了流口水 鼻子不通气",
    "化疗第二周 有点乏力 胃口不好",
    "安眠药吃半片够不够",
    "孩子出生后我老想带他去天堂岛旅游",
    "怀孕20周 肚子偶尔发硬 没有出血",
    "看到他包里有一把水果刀 是削苹果用的",
    "冬天脸上起了好多小水泡 痒",
    "发烧了 脸烫烫的",
    "这事真蛋疼",
    "头疼来得快去得也快 一般半天就好",
    "游泳呛了一口水 咳了两下就好了 现在活蹦乱跳",
    "没有呼吸困难 嘴也没肿 就是手上起了几个疹子",
    "手脚发冷 秋天一到就这样",
    "扭了腰 贴了膏药好多了",
])
def test_round8_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in RED


# Session 9: the classes behind round 8's misses and false alarms (content/triage/zh-CN/second_look.yml and the
# not_now readings of content/triage/zh-CN.yml), in our own words.
@pytest.mark.parametrize("text, level", [
    ("哮喘犯了 喷雾喷完管一会 没多久又喘 胸口紧", "emergency"),
    ("我爸慢阻肺 制氧机调到4升了还是喘得厉害", "emergency"),
    ("奶奶在厕所滑倒了 坐在地上 现在大腿根疼 站不起来", "emergency"),
    ("孕囊不在宫腔里 医生让观察 今天右下腹疼 还有点出血", "emergency"),
    ("儿子把自己反锁在卧室 门口有血 敲门没反应 他有刀片", "emergency_ambulance"),
    ("同事发消息说这回是来真的 现在电话打不通", "emergency_ambulance"),
    ("我妈下午有一阵说话词不达意 十几分钟后就好了", "emergency"),
    ("刚满月的宝宝 腋下三十八度二", "emergency"),
])
def test_session_9_red_flags(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "孩子两岁半 说话还不太利索 正常吗",
    "爷爷骨质疏松 要补钙吗 吃哪种好",
    "哮喘喷雾快用完了 怎么续方",
    "慢阻肺复查 要空腹吗",
    "生老大的时候顺产 这胎能顺吗",
    "脑梗前有啥信号 想给爸妈科普一下",
    "心肺复苏到底怎么做 下周要考试",
    "我家狗刚才抽搐了一下 附近有宠物医院吗",
    "满月酒在哪家饭店办好",
])
def test_session_9_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in RED
