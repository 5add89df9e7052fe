"""Clinical concepts that hold beyond one sentence: a sign said to be fine after it ("喘气也正常"), a
negation cue inside a long pattern of another symptom, a disease named as the standing condition it
is (since, for years, its treatment, a fear of it), a fleeting twinge; and red flags told as a story
(head injury in any words, post-operative infection, the pill + a swollen calf + breathlessness, eyes
half open and not answering). Written for this file, not taken from the blind sets."""

from __future__ import annotations

import pytest

from bot.triage.screen import Screener


def _level(screener: Screener, text: str) -> str:
    locale = "zh-CN" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"
    return screener.screen(text, locale).assessment.level


@pytest.mark.parametrize("text", [
    "吃了芒果嘴边有点痒 嗓子不肿 呼吸也正常 要吃药吗",
    "昨天吃了虾 身上起了几个疙瘩 嘴唇没肿 喘气都正常 擦点啥",
    "宝宝精神很好 呼吸也不费劲 就是流鼻涕",
    "怀孕三十周 胎动正常 没见红 肚子也不疼 想问能不能坐高铁",
    "我爸脑梗三年了 一直吃阿司匹林 这个药要吃一辈子吗",
    "我妈中风以后在家康复 想约个康复科的号",
    "老公心梗放了支架 现在吃波立维 能不能喝点酒",
    "怕自己中风 最近老是头有点晕 血压正常 说话走路都正常",
    "右边胸口有时候抽着疼一下 几秒钟就过去了 心电图查过没事",
    "我胸口偶尔刺一下 一下就好了 体检也正常 要紧不",
    "since his stroke dad needs help with dressing, can we get a carer assessment",
    "chest twinges for a second now and then, then it goes, ecg was normal",
    "breathing is normal, just a dry cough for a week",
    "my son bumped his head on the table, cried for a minute, now fine and eating",
    "on the pill and want to know if antibiotics stop it working",
    "看到新闻说年轻人也会脑出血 我最近偶尔头疼 会不会是",
])
def test_ordinary_messages_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "呼吸不正常 嘴唇发紫",                      # an after-cue that is negated itself says nothing
    "我爸中风了 快来人 嘴歪了 说话不清楚",
    "我爸心梗放过支架 刚才又胸口疼得厉害 出冷汗",
    "我妈中风以后 今天突然说不出话了 右手抬不起来",
    "胸口疼了一个小时 出冷汗",
    "my daughter fell off the trampoline and banged her head, she's been sick twice and keeps falling asleep",
    "had knee surgery 10 days ago, now right calf swollen and hot and i'm short of breath",
    "just back from long haul flight, my calf is swollen and i cant get my breath",
    "dad after his op yesterday is very confused, skin looks mottled and he has a temperature",
    "found my brother on his bed, eyes half open, not answering me",
    "mum not responding properly, just moans when i shake her",
    "我个仔企喺天台边度 话要跳落去",
    "佢话唔想做人 想去死",
])
def test_red_flags_told_in_other_words(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text, level", [
    ("for like 10 min i lost sight in one eye and my right hand also weak, now everything fine again", "emergency"),
    ("yesterday my mum arm went weak n speech slurred for about 15 min then totally ok, must we still go hospital?", "emergency"),
    ("我爸刚才有十来分钟右手发麻拿不住东西 说话也不利索 现在又全好了 要紧吗", "emergency"),
    ("wifes mouth has gone lopsided and she cant grip her cup with her left hand, started at 2pm", "emergency_ambulance"),
    ("arm went weak n speech slurred for about 15 min then a bit better but he still cant lift it", "emergency_ambulance"),
    ("我妈左手麻了二十分钟就好了 可是现在嘴还歪着 说话还不清楚", "emergency_ambulance"),
])
def test_passed_stroke_signs_are_a_tia(rules_only: Screener, text: str, level: str) -> None:
    """RED-FLAGS.md: stroke A, a TIA that has passed E; anything still there keeps the ambulance."""
    assert _level(rules_only, text) == level


# Round 6 (en): levels that depend on a modifier (RED-FLAGS.md), and the false alarms of a figure of
# speech, a hypothetical, a story, an animal or a job. Written for this file, not from the blind sets.
@pytest.mark.parametrize("text, level", [
    ("pretty sure I'm having a stroke, my face feels weird", "emergency_ambulance"),
    ("my dad is having a heart attack, what should we do if he stops breathing", "emergency_ambulance"),
    ("my nan (82) says her jaw aches and she feels sick and clammy", "emergency_ambulance"),
    ("his upper back is aching, he's sweating buckets and short of breath", "emergency_ambulance"),
    ("temp 38.9 and her bp is 78/40, she's sweating", "emergency_ambulance"),
    ("my waters went an hour ago and now there's something hanging out down there", "emergency_ambulance"),
    ("suddenly can't see from her right eye and her right leg went weak", "emergency_ambulance"),
    ("swallowed a button battery and now coughing up blood", "emergency_ambulance"),
    ("came off his bike at speed, landed on his head, now pins and needles in both hands", "emergency_ambulance"),
    ("5 week old, 38.3 and won't feed at all", "emergency_ambulance"),
    ("she lost the sight in her left eye out of nowhere", "emergency"),              # vision alone: E
    ("my daughter swallowed a coin battery, she seems fine", "emergency"),           # battery, no symptoms: E
    ("4 week old with temp 38.1, not feeding as well as usual", "emergency"),        # feeding less is not "not at all"
    ("I read that chest pain can be serious, I've had crushing chest pain for an hour and I'm sweating",
     "emergency_ambulance"),                                                          # said again, now
    ("my dog had a seizure and now my son is having a fit too, it's been 6 minutes", "emergency_ambulance"),
    ("my chest has been crushing for a few seconds at a time all morning and I'm sweating and sick",
     "emergency_ambulance"),
    ("his face and eyes are swelling after the peanut butter, breathing fine", "emergency"),  # no airway sign
    ("her lips and tongue are swelling after the peanut butter", "emergency_ambulance"),
    ("eyes swelling after the bee sting and she feels faint", "emergency_ambulance"),
    ("my foot went cold and white suddenly, no pulse in the foot, very painful", "emergency"),  # a limb, not an arrest
    ("he collapsed, no pulse, not breathing", "emergency_ambulance"),
    ("knocked off her scooter by a van, her arm looks broken", "emergency_ambulance"),
    ("dad took too many of his sleeping tablets and now he is very drowsy", "emergency_ambulance"),
    ("his arm went weak and his speech was muddled, then it all came right again", "emergency"),  # a TIA
    ("coughing up blood and short of breath, flew back from sydney on monday", "emergency_ambulance"),
])
def test_level_follows_the_modifier(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "i'm having a heart attack over these bills lol",
    "what do i do if someone is having a heart attack",
    "my back between my shoulders aches after gardening",
    "bp 85/55 is that too low? I feel fine",
    "something coming out of my ear after swimming",
    "my jaw aches when i chew, and i feel a bit sick from the antibiotics",
    "stroke vs migraine?",
    "how many ibuprofen would be too many in a day",
    "when should parents worry about a high temperature",
    "what should we really do if one of us gets stung by a jellyfish on holiday",
    "my cat had a seizure at the vet yesterday, he's home now, do you know a pet insurer",
    "my laptop is having a meltdown, can I send the form tomorrow",
    "drowning in emails today, will reply to the nurse later",
    "my heart sank when I saw the waiting list",
    "our team needs a choking and cpr refresher, do you run them",
    "my daughter works as a nurse on the cardiac ward and wants to apply for a job here",
    "the main character has a heart attack in the last episode, is that what it really looks like",
    "twinge in my chest for 3 seconds when I stretched, then it went away",
])
def test_figures_of_speech_and_topics_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "my mum can't get a full breath tonight and has to sleep sitting up, she can't lie flat",
    "boiling water tipped over his arm, blisters the size of my hand",
    "my 3 year old can't keep any water down since this morning and has only weed once",
    "toddler was chewing a lamp cable while it was plugged in, black mark on his lip",
    "every time i climb the stairs i get tightness in my chest, it stops when i rest, and it's coming on sooner",
    "he was working outside in the heat all day, he can't cool down and he's been sick twice",
    "my daughter 38.9 and a stiff neck",
    "bitten by a snake on the trail, leg swelling fast and i feel faint",
    "i have my sleeping pills counted out and i will take all of them tonight when he's at work",
    "slashed my wrist, it's gaping open",
    "belly is really swollen, haven't passed wind or pooed for 3 days and now vomiting",
    "my dad is on apixaban and his nosebleed won't stop",
    "a chicken bone is stuck in her throat, she can breathe but can't swallow",
    "my wife gave birth last week and says she has to protect the baby from the devil",
    "my toddler was poisoned by something under the sink, he is vomiting",
    "32 weeks, she normally kicks like mad after dinner but nothing at all this evening",
])
def test_misses_as_classes(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "my back is worse when lying flat on the hard mattress, any tips",
    "i sleep propped up on 2 pillows because of reflux, is that bad",
    "blisters bigger than my palm on my heels from new boots",
    "my son had a tummy bug, can't keep much down but he's drinking and weeing normally",
    "my kid chewed the charger cable, it wasn't plugged in, is it ruined",
    "knee pain when i walk, better when i rest, had it for years",
    "we were in the heat all day and the kids can't cool down, they're just grumpy and sweaty lol",
    "i weigh 39.5 and want to gain weight",
    "my dog got bitten by a snake, which vet is open",
    "i'm going to take my tablets tonight after dinner, can i have them with milk",
    "cut my finger slicing onions, can see a little fat, should i get stitches",
    "haven't pooed for 3 days and feel bloated, any laxative advice",
    "nosebleed this morning for 10 minutes, on warfarin, it stopped",
    "my period is late, got a positive test yesterday! what happens next",
    "i had a bone stuck in my throat yesterday but it went down with bread",
    "my face is a bit puffy after the salty takeaway last night",
    "the chef said the sauce poisoned him lol, he just had a stomach ache",
    "my son usually kicks the ball all day but nothing today, he's 14 weeks into physio",
])
def test_look_alikes_of_the_misses_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


# Round 7 (en): red flags told tersely or roundabout, and the look-alikes each class must leave alone.
# Written for this file, not from the blind sets.
@pytest.mark.parametrize("text, level", [
    ("got up this morning blind in right eye, no pain", "emergency"),
    ("my dad's catheter bag has been empty since lunch and his belly is swelling", "emergency"),
    ("grandad's bladder feels full and nothing will come out, he's in agony", "emergency"),
    ("37 weeks, baby a lot quieter since yesterday", "emergency"),
    ("33+2, just tiny flutters today instead of her usual kicks", "emergency"),
    ("30+5 and my pants keep getting wet, clear and no smell", "emergency"),
    ("lately I've been thinking about not being here anymore", "emergency"),
    ("he texted that he wishes he would never wake up", "emergency"),
    ("rope is in the garage. doing it tonight", "emergency_ambulance"),
    ("having urges to cut again after 2 years clean", "emergency"),
    ("my partner had our baby 10 days ago and now says she's the chosen one and the neighbours are watching us",
     "emergency"),
    ("my wife gave birth 3 weeks ago and she's standing at the open window with the baby", "emergency_ambulance"),
    ("I took my blood pressure pills twice this morning by mistake, bisoprolol", "emergency"),
    ("mum's been taking her methotrexate every day this week instead of once a week", "emergency"),
    ("my 2 year old chewed a nicotine pouch he found in my bag", "emergency"),
    ("my hernia popped out while lifting and I can't push it back in, it's tender", "emergency"),
    ("bp 185/100 on the left arm and 135/80 on the right, back pain", "emergency_ambulance"),
    ("it feels exactly like before my stents, pressure across the chest", "emergency_ambulance"),
    ("grandma in her flat during the heatwave, very hot and mumbling, not with it", "emergency_ambulance"),
    ("my brother says he's going to drive his car into a tree tonight", "emergency_ambulance"),
    # levels by RED-FLAGS.md's modifiers
    ("heavy feeling behind the breastbone going into both arms", "emergency_ambulance"),
    ("same as my last heart attack, started 10 minutes ago", "emergency_ambulance"),
    ("type 1, meter says HI, vomiting and now very drowsy", "emergency_ambulance"),
    ("sudden thunderclap headache an hour ago and now she's confused", "emergency_ambulance"),
    ("car crash on the bypass, my passenger can't feel her legs", "emergency_ambulance"),
    ("hit his head on the bottom of the pool, now his arms and legs are tingling", "emergency_ambulance"),
    ("had my second baby 5 days ago, soaking a pad every half hour and I feel faint", "emergency_ambulance"),
    ("my chest is tight and heavy, pain in my left arm and I feel sick", "emergency_ambulance"),
    ("sugar 2.3 after juice and biscuits, he's very drowsy and can't swallow properly", "emergency_ambulance"),
    ("my 6 week old is floppy and has a temperature", "emergency_ambulance"),
    ("allergic to cashews, had a bite of a cookie, now hives and her voice sounds hoarse", "emergency_ambulance"),
    ("dad is 82, sitting bolt upright gasping for air, pink frothy spit", "emergency_ambulance"),
    ("my epileptic son had a fit, then another straight after, hasn't woken up", "emergency_ambulance"),
    ("grandma has a urine infection, very sleepy and her knees look purple and blotchy", "emergency_ambulance"),
    ("brother dragged from the river, wasn't breathing for a bit", "emergency_ambulance"),
    ("mum found in the garage with the car engine running, she's drowsy", "emergency_ambulance"),
    ("toddler chewed a laundry capsule", "emergency"),
    ("on apixaban, bleeding from my bottom since this morning", "emergency"),
    ("on rivaroxaban, nose bleed 50 mins and counting", "emergency"),
    ("38 weeks, she's normally going crazy at bedtime but tonight nothing at all", "emergency"),
    ("nearly fainted in the shower, felt fine after sitting down", "consultation"),   # a near-faint: no rule
    ("sugar 2.9, had some juice, now 3.2 but still confused", "emergency"),          # hypo, confused, not drowsy: E
])
def test_terse_and_roundabout_red_flags(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "I'm blind in my left eye since birth, can I still drive",
    "how often should a long-term catheter be changed",
    "33+2 and the baby is kicking like a footballer, when should I pack my hospital bag",
    "my pants got wet in the rain, lol, is it ok to come in scruffy",
    "sometimes I wish I didn't have to wake up so early for work",
    "I took my vitamins twice today, is that a problem",
    "my hernia pops out when I cough but goes straight back in, when is the op",
    "my friend wants to learn to drive her car on the motorway",
    "it feels like a bruise, same as before when I knocked it on the table",
    "I can't lift my arm above my head since the frozen shoulder started",
    "penicillin allergy: I had an allergic reaction to amoxicillin before, is doxycycline ok",
    "stroke versus TIA, what's the difference",
    "can you get carbon monoxide poisoning from a gas hob",
    "what counts as a high temperature for a toddler",
    "my heart stopped at that electricity bill, is there a payment plan for prescriptions",
    "her favourite song is heart attack by some pop band",
    "the cardiac arrest scene in that hospital drama was intense",
    "need extra insulin pens for my holiday in spain",
    "the waiting list is suffocating me, any update on my referral",
    "nearly passed out at the price of the dentist, do you take cards",
    "had a heat stroke 3 summers ago in greece, any tips for this year",
    "I bled a lot after my first baby, now pregnant again at 12 weeks, will they plan for it",
    "our dog is choking on his food less since we got the slow bowl",
    "the lifeguard pulled a kid from the pool in the lesson to practise rescues",
    "can I leave the car engine running in the garage to warm it up in winter",
    "my nosebleed lasted 5 mins and stopped, I'm not on any thinners",
    "on warfarin, does it matter if my INR was 3.2 last week",
])
def test_round_7_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


# Round 8 (en): red flags told the long way round, each class in words of our own; the level follows
# RED-FLAGS.md's modifiers (content/triage/en/told.yml).
@pytest.mark.parametrize(("text", "level"), [
    ("36 weeks and the baby has hardly moved since yesterday evening", "emergency"),
    ("my partner is 31 weeks, says the baby's been really still all morning", "emergency"),
    ("my waters went an hour ago and now I can feel something hanging down there, it's not the head", "emergency_ambulance"),
    ("cord is showing after her waters broke, she's 38 weeks", "emergency_ambulance"),
    ("my brother texted that he's going to drive his car into a wall and then he drove off", "emergency_ambulance"),
    ("I'm standing on the bridge and I'm going to jump", "emergency_ambulance"),
    ("gave birth 4 days ago, the blood has gone through my pad and my jeans in 20 minutes", "emergency_ambulance"),
    ("35 weeks, some bleeding and my bump has gone hard and it hurts all the time", "emergency_ambulance"),
    ("spotting at 9 weeks with a bit of period pain", "emergency"),
    ("ate a satay skewer, now her tongue feels thick and she's wheezing", "emergency_ambulance"),
    ("stung by a bee, welts all over his arms and his voice has gone croaky, wheezy too", "emergency_ambulance"),
    ("slipped disc for years, since yesterday I can't feel anything around my bum when I wipe", "emergency"),
    ("dad's been trying to pee since lunch and nothing will come out, his belly is sore", "emergency"),
    ("my 18 month old, you can see his ribs when he breathes and he won't settle", "emergency_ambulance"),
    ("baby 3 months breathing 70 a minute with a cold", "emergency"),
    ("it felt like something snapped in my head while lifting, worst headache I've had", "emergency_ambulance"),
    ("graze on my knee last week, now a red streak up to my groin and I'm shivery", "emergency"),
    ("found my flatmate confused, she bit her tongue and has no idea what happened", "emergency"),
    ("my reliever only lasts 30 minutes now and I'm still wheezy", "emergency"),
    ("gran took two boxes of her paracetamol by mistake this morning", "emergency"),
    ("I injected double my lantus tonight, what do I do", "emergency"),
    ("bitten by a viper on a walk, my hand is swelling and I feel dizzy", "emergency_ambulance"),
    ("dull pressure across his shoulders while mowing, he's gone clammy", "emergency_ambulance"),
    ("grandad had a fall in the garden and yells whenever his leg is touched", "emergency"),
    ("my son got a zap off the hairdryer in the bath, now shaky", "emergency_ambulance"),
    ("10 days after the birth and the bleeding is getting heavier, she's feverish", "emergency"),
    ("I'm 30 weeks and fluid keeps trickling out when I walk", "emergency"),
    ("my hand has gone cold and white since lunch and it aches", "emergency"),
    ("my sister told me she wants to cut herself again tonight", "emergency"),
    ("baby is 9 months with a tummy bug, just one wet nappy since yesterday", "emergency"),
    ("chemical cleaner splashed on his leg, the skin has turned white and leathery", "emergency"),
    ("spilt boiling water, blisters all over my whole forearm", "emergency_ambulance"),   # large: A
    ("my prostate plays up, since this morning nothing comes out at all", "emergency"),
])
def test_round_8_red_flags_told_the_long_way(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "the cord of my hoodie is out of the washing machine, sorry wrong chat",
    "my 8 year old has barely moved off the sofa all day with this cold",
    "there is a puddle on the floor from the washing machine, baby is 2 weeks old, can the visit move",
    "my daughter's gone a bit quiet since starting school, any parenting groups",
    "my back went last week, the physio said it's a simple sprain, can I swim",
    "my son can see his ribs since he grew so tall, is he too thin",
    "my reliever inhaler is running out, can I order a new one",
    "took a packet of crisps to work and forgot lunch, feel a bit shaky",
    "can stress cause a heart attack",
    "how would I recognise sepsis in an older person",
    "what does cord prolapse mean, saw it in my birth plan leaflet",
    "our office is doing a fun run for the stroke association",
    "we're getting a seizure alert dog for my son, do you write letters",
    "the heat on this train is suffocating, any tips for travel sickness",
    "are 2 ibuprofen and 2 paracetamol together an overdose",
    "my hamster isn't breathing, is it dead or hibernating",
    "old burn scars on my hand are itchy, what cream",
    "he can't go on the school trip with his cast, can you write a note",
    "years ago I was suicidal but I'm well now, can I come off my tablets",
    "out of breath running for the train, fine after a minute",
    "heavy shopping bags make my shoulders ache, any stretches",
    "mum fell over last month, she's walking fine now, can she get a grab rail",
    "the plug socket in my kitchen sparks, who do I call",
    "is heavy bleeding normal with the coil",
    "my baby's nappies leak at night, which size should I buy",
    "my hands go white and cold in winter, is that raynaud's",
    "he hurt himself playing football, bruised shin",
    "my blister from new shoes burst, how do I dress it",
    "using salicylic acid on my back acne, how long until it works",
    "thinking of looking into the pill, which one has fewer side effects",
])
def test_round_8_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


# Session 9: the classes behind round 8's misses and false alarms (content/triage/en/second_look.yml and the
# not_now readings of content/triage/en.yml), in our own words.
@pytest.mark.parametrize(("text", "level"), [
    ("my inhaler every 2 hours since last night and still wheezy", "emergency"),
    ("needing my blue inhaler constantly today, asthma is awful", "emergency"),
    ("his wheezing has gone quiet but he's struggling and his lips look grey", "emergency_ambulance"),
    ("copd, the rescue pack steroids arent helping and i cant get upstairs without stopping", "emergency"),
    ("all of us in the house have headaches, they lift when we go out, the boiler is old", "emergency_ambulance"),
    ("our new carbon monoxide alarm is going off and the kids feel sick", "emergency_ambulance"),
    ("back pain for days and now numb down below, can't feel the toilet paper", "emergency"),
    ("keep having hypos today, 2.8 again even after juice", "emergency"),
    ("4 month old, fever and the soft spot is bulging", "emergency"),
    ("slipped with a knife, the cut is gaping and i can see fat", "emergency"),
])
def test_session_9_red_flags(rules_only: Screener, text: str, level: str) -> None:
    assert _level(rules_only, text) == level


@pytest.mark.parametrize("text", [
    "my inhaler ran out, can I get a repeat prescription",
    "his wheeze has gone quiet since the antibiotics, he's playing again",
    "copd review booked, do I bring my inhalers",
    "bought a carbon monoxide alarm for the boiler cupboard, where should it go",
    "numb bum after a long cycle ride, normal?",
    "had a hypo last week after the gym, now fine, should I eat more before",
    "what does a bulging fontanelle look like, asking for my baby group",
    "paper cut on my finger, it stings",
    "got stretch marks when i was pregnant with my son, any creams",
    "how to spot a stroke, we're making a poster at work",
    "does a high cholesterol raise my risk of a heart attack",
    "worried about a stroke because my mum had one, bp is normal",
    "the internet says a headache is a brain tumour, i just have a cold",
    "the kids' pond pump electrocuted the fish, who repairs these",
    "how long should a fit last before you call an ambulance, my son is epileptic and away next month",
    "grandad's old stroke left him a bit slow, can he get a blue badge",
])
def test_session_9_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "had a febrile fit in childhood, does that matter for my driving licence",
    "i was diagnosed after a bad asthma attack at 12, now 30 and want to review my inhalers",
    "our dog keeps having fits, any idea where an out of hours vet is",
    "student nurse here, doing a case study on sepsis, can i quote your leaflet",
    "there's a heat warning on the weather app this weekend, is the pharmacy open",
    "watched a film where the mum has a stroke and it scared me, anyway can i book a bp check",
    "baby proofing the kitchen, which cleaning products are most dangerous if swallowed",
])
def test_session_10_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "my dog is fine but my son keeps having fits this morning, 3 so far",
    "watching a film and suddenly my face dropped on one side and my arm is weak",
    "i was diagnosed with diabetes last year and now i'm vomiting and breathing fast, ketones 4",
])
def test_session_10_present_red_flags_in_the_same_words_still_fire(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "tension headache again, like a tight band around my head for 3 hours, paracetamol helps",
    "just double checking the dose of calpol for a 2 year old",
    "im not having a heart attack lol, just pulled something in my chest at the gym",
    "got an icd after my cardiac arrest 5 years ago, can i use an induction hob",
    "old self harm scars on my arm, can laser help",
    "since my friend had a heart attack i keep checking my blood pressure, 125/80 ok?",
    "whats an anaphylactic reaction exactly",
    "if a student tells me they're suicidal what should i say, i'm a new teacher",
    "the hospital hold music makes me want to kill myself, can i rebook online",
    "my gran nearly had a fit when she saw my piercing, is it infected if it's a bit red",
    "how do co alarms work, where should we put one",
])
def test_session_11_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "crushing chest pain like a tight band for an hour, sweating",
    "i think i'm having a heart attack, my left arm and jaw ache and i feel sick",
    "co alarm going off and we all have headaches and feel sick, we're outside now",
    "my friend just told me she has taken all her pills and wants to die",
])
def test_session_11_present_red_flags_in_the_same_words_still_fire(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "my savings account just had a heart attack after christmas",
    "deadlines are suffocating me, any tips for sleep",
    "my mother in law is suffocating me with advice about teething",
    "writing a crime novel where a character goes into anaphylaxis, what would guests see",
    "nursing student, our assignment is a triage scenario of a choking toddler, can you check it",
    "heart attack grill burgers, has anyone tried one",
    "type 2, stable, do i need to worry about hypos if i start running?",
    "my mum had postnatal psychosis after she had me and has been fine ever since, am i at risk",
    "our cat had a couple of seizures last year and takes tablets, are they dangerous for kids",
    "saw on the local news that a family had carbon monoxide poisoning, should we get an alarm",
])
def test_session_11_round_11_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "the smoke is suffocating me i can't breathe, stuck in the flat",
    "my husband had a stroke an hour ago, face drooping and can't lift his arm",
    "saw on the news about sepsis and now my dad is confused, mottled skin and breathing fast",
])
def test_session_11_round_11_red_flags_in_the_same_words_still_fire(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "this flu is killing me, cant breathe through my nose at night, any spray that works",
    "our hens are coughing, do you know a vet",
    "first aid homework: describe the steps for an adult having a seizure, can you check it",
    "there's a scene where someone has a stroke in the play, how would a doctor react",
    "does aspirin help in a heart attack or is that a myth",
    "what's the right thing to do for a bee sting these days",
    "the traffic was so bad i nearly had a heart attack, can i move my appointment",
    "a twinge in my chest when i sneezed, gone straight away",
    "my friend has diabetes, i want to know in case she has a hypo when we travel",
])
def test_session_11_round_12_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "i cant breathe, lips going blue",
    "my son is choking on a grape and can't cough",
    "crushing chest pain for an hour, sweating and sick",
])
def test_session_11_round_12_red_flags_still_fire(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in ("emergency", "emergency_ambulance")


# Session 12: a sign read by the wrong rule raised the level above RED-FLAGS.md's. Each line is the
# class in our own words, with the level RED-FLAGS.md gives it; the second list keeps the ambulance
# where the same words come with what makes it one.
@pytest.mark.parametrize("text", [
    "grandad's hand went cold and white an hour ago and i can't find a pulse at his wrist",   # limb ischaemia: E
    "my wife's arm went floppy for five minutes while cooking, she's totally fine now",     # a TIA that passed: E
    "my speech was slurred for a quarter of an hour this morning, better now",               # a TIA that passed: E
    "some nights i think about not waking up, i'd never do anything though",                 # suicidal thoughts: E
    "他左脚突然冰凉发白 脚背那里我摸不到跳 有点疼",                                             # limb ischaemia: E
    "今天上厕所的时候眼前一黑 差点晕过去 大便黑的",                                               # nearly fainted: E
    "右边身子麻了二十来分钟 一个钟头后好了",                                                      # a TIA that passed: E
    "我爸前列腺不好 买了盒感冒药吃 现在一滴尿都尿不出来 小肚子胀",                                  # retention, no plan: E
    "胸口疼 吸气更疼 往前趴着好点 前两天感冒有点低烧",                                              # chest pain alone: E
])
def test_session_12_levels_as_red_flags_md_gives_them(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) == "emergency"


@pytest.mark.parametrize("text", [
    "he collapsed, not breathing, i can't find a pulse at his neck",
    "my husband's arm is floppy and his face is drooping right now",
    "i've saved up my pills and i'm taking them all tonight",
    "three weeks in a plaster cast, suddenly breathless and my heart is racing",
    "老公突然倒了 叫不醒 摸不到脉",
    "攒了一瓶安眠药 今晚就全吃了",
    "我爸半边身子突然麻了 说话不清 到现在还没好",
])
def test_session_12_the_ambulance_stays_where_it_is_one(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) == "emergency_ambulance"


@pytest.mark.parametrize("text", [
    "low sugar 2.4 and shaking all over, having juice now",            # a hypo's tremor, not a fit
    "short of breath climbing the stairs since yesterday and my heart racing",   # a racing heart, no chest pain
    "奶奶把药盒里明天格子里的药也都吃了 现在看着没事",                        # an extra day's doses, no plan
])
def test_session_12_no_ambulance_from_a_misread_sign(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) != "emergency_ambulance"


# Session 12 (round 13 in dev): false-alarm classes, in our own words
@pytest.mark.parametrize("text", [
    "was diagnosed with type 1 aged 12 after a bout of dka, 30 now, how do i order more sensors",
    "years back i was low and suicidal for a while, doing great now, need a sick note for work",
    "what actually counts as chest pain that needs a&e? just curious",
    "what does a stroke look like in a child?",
    "how do you treat a jellyfish sting on holiday",
    "writing a care plan for my son's nursery, what should the school do if he has a fit?",
    "the gas bill gave me chest pains honestly. can i change my appointment",
    "his football boots could knock a man unconscious, any spray for smelly feet",
    "my character in the game keeps dying of poison lol, how do i book a flu jab",
    "small burn on my wrist from the curling iron, what cream",
    "看到账单的价格我心跳都停了 能不能分期",
    "排队等的我快窒息了 什么时候到我",
    "我们剧组要拍一场心梗倒地的戏 演员怎么演才像",
    "护理专业的 老师让背心肺复苏的口诀 有没有好记的",
    "手指头偶尔麻一下 我是不是要中风了 才二十八",
])
def test_session_12_round_13_look_alikes_stay_ordinary(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) not in ("emergency", "emergency_ambulance")


@pytest.mark.parametrize("text", [
    "i was suicidal last night and i still am, i have the pills here",
    "my heart stopped beating, he's not breathing, we're doing cpr",
    "big burn on my face from a pan of oil, skin peeling",
    "我爸心跳停了 没有呼吸 快来人",
    "我老公突然说话不清 嘴歪了 是不是中风了",
])
def test_session_12_round_13_red_flags_in_the_same_words_still_fire(rules_only: Screener, text: str) -> None:
    assert _level(rules_only, text) in ("emergency", "emergency_ambulance")
