"""The simulator's phrasebook: what travellers write and guides report, in Chinese and English.

Pure data for ``server.tools.scenario``. Urgent comments are written so that each one matches the default
urgent-complaint keywords (``server.core.settings.DEFAULT_URGENT_KEYWORDS``) and ordinary ones match none: a
simulated day then raises exactly the urgent alerts it means to (``tests/test_scenario.py`` checks both).
"""

from __future__ import annotations

ASPECTS: tuple[str, ...] = ("guide", "transport", "meals", "lodging", "itinerary")

PRAISE: dict[str, tuple[str, ...]] = {
    "zh": (
        "导游讲解非常专业，大家都很开心！",
        "今天的行程安排得很好，风景太美了。",
        "酒店干净舒适，早餐也很丰富。",
        "司机师傅开车很稳，服务很贴心。",
        "古城的夜景太漂亮了，不虚此行！",
        "导游很耐心，照顾老人和孩子很周到。",
        "午餐的当地特色菜非常好吃。",
    ),
    "en": (
        "Our guide was fantastic, so knowledgeable and funny.",
        "A beautiful day, everything ran on time.",
        "Lovely hotel, spotless rooms and a great breakfast.",
        "The driver was careful and friendly, thank you!",
        "The old town at night was magical.",
        "Best day of the trip so far, the views were stunning.",
    ),
}

SUGGESTION: dict[str, tuple[str, ...]] = {
    "zh": (
        "希望自由活动时间能多一点。",
        "建议午餐时间早一点，大家都饿了。",
        "购物点可以少安排一些。",
        "早上出发太早了，能不能晚半个小时？",
        "希望车上能提供瓶装水。",
    ),
    "en": (
        "Could we have a bit more free time in the old town?",
        "Maybe start later in the morning, 6am is very early.",
        "Fewer shopping stops would be nice.",
        "It would help to get the next day's plan the evening before.",
        "Please leave more time for photos at the viewpoints.",
    ),
}

# complaints by the aspect they are about; none of them is urgent
COMPLAINT: dict[str, dict[str, tuple[str, ...]]] = {
    "meals": {
        "zh": ("午餐太咸了，而且菜量不够。", "晚餐的菜都是凉的，很失望。", "连续三天吃一样的团餐。"),
        "en": ("Lunch was cold and the portions were tiny.",
               "The set dinner was the same as yesterday again.", "Breakfast ran out before eight."),
    },
    "transport": {
        "zh": ("大巴空调坏了，车里太热。", "等车等了四十分钟。", "车上座位太挤，腿都伸不开。"),
        "en": ("The coach air conditioning was broken, it was stifling.",
               "We waited forty minutes for the bus.", "The seats on the coach are far too cramped."),
    },
    "lodging": {
        "zh": ("酒店房间有霉味，热水也不稳定。", "房间隔音很差，一晚没睡好。", "酒店离市区太远了。"),
        "en": ("The room smelled of damp and there was no hot water.", "Paper-thin walls, nobody slept.",
               "The hotel is miles from anywhere."),
    },
    "guide": {
        "zh": ("导游一直催我们去购物店。", "导游态度很差，问问题也不耐烦。", "导游讲解太少，一直在玩手机。"),
        "en": ("The guide kept pushing us into shops.", "The guide was rude when we asked questions.",
               "The guide barely explained anything today."),
    },
    "itinerary": {
        "zh": ("行程太赶了，每个景点只停留二十分钟。", "景点和宣传的不一样。", "今天大部分时间都在车上。"),
        "en": ("Far too rushed, twenty minutes at each sight.",
               "The sights were not what the brochure showed.", "We spent most of the day on the coach."),
    },
}

# each matches at least one default urgent keyword
URGENT: dict[str, tuple[str, ...]] = {
    "zh": (
        "我的护照丢了，怎么办？",
        "有人受伤了，需要帮助！",
        "司机开车太快，非常危险。",
        "两个团友在车上打架了。",
        "我的钱包在景区被偷了。",
        "晚饭后好几个人上吐下泻，怀疑食物中毒。",
    ),
    "en": (
        "I lost my passport at the market, please help.",
        "Someone fell on the steps and got injured.",
        "The driver was drunk — unsafe.",
        "My wallet was stolen on the bus.",
        "Food poisoning after dinner, three of us are sick.",
        "A man in the group keeps harassing my daughter.",
    ),
}

INCIDENT_KINDS: tuple[str, ...] = (
    "attraction_closed", "vehicle_breakdown", "medical", "lost_document", "accident", "delay", "weather",
    "lodging_problem", "conflict", "complaint", "other",
)

# kind -> (severities to draw from, summaries by language)
INCIDENT: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    "attraction_closed": (("medium", "medium", "high"), {
        "zh": ("雪山索道因大风临时关闭。", "博物馆今天临时闭馆维修。", "景区因客流过大暂停入园。"),
        "en": ("The cable car is closed because of high winds.", "The museum is closed today for repairs.",
               "The park stopped admissions: too crowded."),
    }),
    "vehicle_breakdown": (("high", "medium"), {
        "zh": ("大巴在高速上爆胎，需要换车。", "大巴发动机故障，停在半路。"),
        "en": ("The coach broke down on the expressway, we need another.",
               "Engine failure, we are stuck halfway."),
    }),
    "medical": (("high", "high", "critical"), {
        "zh": ("一位游客高原反应严重，需要就医。", "一位老人游客胸口疼，需要医生。"),
        "en": ("A traveller has severe altitude sickness.", "An elderly traveller has chest pains."),
    }),
    "lost_document": (("medium", "high"), {
        "zh": ("一位游客的护照在景区遗失。", "游客的身份证和机票丢失。"),
        "en": ("A traveller lost their passport at the site.", "A traveller lost their ID card and tickets."),
    }),
    "accident": (("critical", "high"), {
        "zh": ("大巴与小车轻微碰撞，两人轻伤。", "一位游客在台阶上摔倒，腿部受伤。"),
        "en": ("Minor collision with a car, two travellers slightly hurt.", "A traveller fell on the steps."),
    }),
    "delay": (("low", "low", "medium"), {
        "zh": ("高速堵车，预计晚到两小时。", "航班延误，今晚晚到酒店。"),
        "en": ("Traffic jam, we will arrive two hours late.",
               "The flight is delayed, late check-in tonight."),
    }),
    "weather": (("medium", "high"), {
        "zh": ("暴雨预警，下午行程暂停。", "大雾封路，原地等待。", "台风逼近，户外项目取消。"),
        "en": ("Heavy rain warning, the afternoon programme is suspended.",
               "Fog closed the road, we are waiting.", "Typhoon approaching, outdoor activities cancelled."),
    }),
    "lodging_problem": (("medium", "high"), {
        "zh": ("酒店超订，部分游客没有房间。", "酒店停水停电，需要换酒店。"),
        "en": ("The hotel is overbooked, some travellers have no room.", "No water or power at the hotel."),
    }),
    "conflict": (("medium", "high"), {
        "zh": ("两位游客因座位发生争执。", "游客与购物店店员发生争吵。"),
        "en": ("Two travellers argued over seats.", "A traveller quarrelled with a shop assistant."),
    }),
    "complaint": (("low", "medium"), {
        "zh": ("多位游客投诉购物点太多。", "游客投诉餐厅卫生差。"),
        "en": ("Several travellers complain about the shopping stops.",
               "Travellers complain about the restaurant."),
    }),
    "other": (("low",), {
        "zh": ("一位游客临时要求离团。", "游客要求调整明天的行程。"),
        "en": ("A traveller wants to leave the tour early.", "Travellers ask to change tomorrow's plan."),
    }),
}

ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "zh": ("蓝月谷", "束河古镇", "白沙壁画", "民族博物馆", "茶马古道徒步", "当地非遗手工体验", "湖边骑行"),
    "en": ("Blue Moon Valley", "Shuhe old town", "Baisha murals", "the ethnic museum",
           "a tea-horse road walk", "a local crafts workshop", "a lakeside bike ride"),
}

PROGRESS_NOTES: dict[str, tuple[str, ...]] = {
    "zh": ("已联系当地合作方，正在处理。", "备用车辆在路上，预计三十分钟到。", "已安排医生，游客情况稳定。"),
    "en": ("Local partner contacted, on it.", "A replacement is on its way, about thirty minutes.",
           "A doctor is with the traveller, who is stable."),
}

RESOLVED_NOTES: dict[str, tuple[str, ...]] = {
    "zh": ("已解决，行程恢复正常。", "问题已处理，游客满意。"),
    "en": ("Resolved, the programme is back on track.", "Sorted out, travellers are happy."),
}
