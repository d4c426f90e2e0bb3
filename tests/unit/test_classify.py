"""Feedback classes, urgent keywords and complaint categories, in English and Chinese."""

from __future__ import annotations

import pytest

from alerts.rules.classify import classify_comment, complaint_category, is_safety, mentions_guide, urgent_matches
from server.core.settings import DEFAULT_URGENT_KEYWORDS


@pytest.mark.parametrize(("comment", "score", "expected"), [
    (None, 1, None),
    ("   ", 5, None),
    ("The food was cold and bad", 2, "complaint"),
    ("The food was not good", 3, "complaint"),  # "not good" is no praise
    ("Great guide, thank you!", 5, "praise"),
    ("I suggest more time at the lake", 4, "suggestion"),
    ("Maybe start later next time", 3, "suggestion"),
    ("ok", 3, "suggestion"),  # neutral: no keyword, middle score
    ("ok", 1, "complaint"),  # the score leans
    ("ok", 5, "praise"),
    ("chocolate was great", 5, "praise"),  # "late" must not match inside "chocolate"
    ("导游很好，非常专业", 5, "praise"),
    ("饭菜难吃，酒店很脏", 2, "complaint"),
    ("建议多安排一些自由时间", 3, "suggestion"),
    ("不好", 3, "complaint"),  # 不好 is not 好
])
def test_classify_comment(comment: str | None, score: int, expected: str | None) -> None:
    assert classify_comment(comment, score) == expected


@pytest.mark.parametrize(("comment", "expected"), [
    ("My wife got INJURED on the stairs", ("injur",)),
    ("Someone stole my bag - theft at the market, we called the police", ("stole", "theft", "police")),
    ("我的护照丢了", ("护照丢",)),
    ("司机开车很危险，不安全", ("不安全", "危险")),
    ("Lovely day", ()),
    (None, ()),
])
def test_urgent_matches(comment: str | None, expected: tuple[str, ...]) -> None:
    assert set(urgent_matches(comment, DEFAULT_URGENT_KEYWORDS)) == set(expected)


def test_urgent_matches_is_case_insensitive_on_configured_keywords() -> None:
    assert urgent_matches("there was a FIRE in the hotel", ("Fire",)) == ("fire",)


@pytest.mark.parametrize(("comment", "aspects", "expected"), [
    ("The guide was rude", {"meals": 2, "guide": 3}, "meals"),  # the lowest aspect at 2 or less wins
    ("whatever", {"meals": 2, "lodging": 1}, "lodging"),
    ("The guide was rude", {"meals": 3}, "guide"),  # no aspect low enough: the keywords decide
    ("Dinner was cold and the restaurant dirty", None, "meals"),
    ("The coach driver drove too fast", None, "transport"),
    ("The hotel room smelled", None, "lodging"),
    ("Too much shopping in the itinerary", None, "itinerary"),
    ("I got hurt, it was unsafe", None, "safety"),
    ("饭菜太难吃了", None, "meals"),
    ("酒店房间很脏", None, "lodging"),
    ("It was great", None, "other"),  # "eat" is not in "great"
    (None, None, "other"),
])
def test_complaint_category(comment: str | None, aspects: dict[str, int] | None, expected: str) -> None:
    assert complaint_category(comment, aspects) == expected


def test_guide_and_safety_mentions() -> None:
    assert mentions_guide("Our guide Li was wonderful")
    assert mentions_guide("导游非常耐心")
    assert not mentions_guide("Lovely lake")
    assert not mentions_guide(None)
    assert is_safety("he was injured")
    assert is_safety("太危险了")
    assert not is_safety("the soup was cold")


# Real phrasings, both ways: each group of the urgent words (quarrels, abuse, theft, injury, being left behind, in
# English and Chinese) must catch what travellers write when it happens to them, and must not flag what they
# write about an ordinary day.
URGENT_PHRASINGS = [
    # quarrels
    "Two men in our group had a fight on the bus",
    "The guide argued with my father and shouted at him in front of everyone",
    "A vendor yelled at us and pushed me",
    "团里两个人吵架了，差点打起来",
    "导游和游客发生争吵，还动手了",
    "司机骂人，态度恶劣",
    # abuse
    "The driver was abusive and insulted my wife",
    "My daughter was groped in the crowd",
    "The shop staff bullied us into buying jade",
    "导游辱骂老人，还威胁不买东西就不让下车",
    "领队欺负我们外地人",
    # theft
    "My wallet was stolen at the night market",
    "A pickpocket took my phone on the metro",
    "Someone snatched my bag and ran",
    "我的钱包被偷了",
    "在酒店房间里东西被盗",
    "护照丢了，怎么办",
    # injury
    "My mother slipped and fell on the wet steps and hurt her knee",
    "I twisted my ankle on the Great Wall",
    "My son had an allergic reaction to the peanuts at dinner",
    "我爸爸在景区摔倒了，腿骨折",
    "孩子被烫伤了，去了急诊",
    "吃完午饭好几个人食物中毒",
    # left behind
    "The bus left without us at the rest stop",
    "We were left behind at the museum and had to take a taxi",
    "The guide forgot us at the hotel, we were stranded for two hours",
    "大巴没等我们就开走了",
    "我们被落下了，导游都不知道",
    "在景区和团走散了，找不到团",
]

ORDINARY_PHRASINGS = [
    "The flight was smooth and on time",
    "We argued about which restaurant was best - all good fun",
    "The steak was a bit burned but tasty",
    "We visited an abandoned temple, fascinating",
    "The chocolate tasting was lovely",
    "The hotel was a steal at this price",
    "Our guide told us the history of the old battlefield",
    "Left the hotel at 8, back by 6: a long but great day",
    "有点吵，隔壁在装修",
    "打折商品很多，买了不少",
    "导游讲解很精彩，打卡拍照很开心",
    "晚上去看了灯光秀，人很多但很热闹",
    "酒店早餐种类少了点",
    "行程有点赶，希望下次多留点时间",
]


@pytest.mark.parametrize("comment", URGENT_PHRASINGS)
def test_urgent_words_catch_real_phrasings(comment: str) -> None:
    assert urgent_matches(comment, DEFAULT_URGENT_KEYWORDS), comment


@pytest.mark.parametrize("comment", ORDINARY_PHRASINGS)
def test_urgent_words_leave_an_ordinary_day_alone(comment: str) -> None:
    assert urgent_matches(comment, DEFAULT_URGENT_KEYWORDS) == (), comment


def test_an_english_urgent_word_starts_a_word_and_may_run_on() -> None:
    assert urgent_matches("she was injured", ("injur",)) == ("injur",)
    assert urgent_matches("the ftp server had a theft-proof lock", ("theft",)) == ("theft",)
    assert urgent_matches("a thief", ("theft", "thief")) == ("thief",)
    assert urgent_matches("chocolate", ("late",)) == ()


@pytest.mark.parametrize(("comment", "staff"), [
    ("Our guide Li was wonderful, thank you", ("guide",)),
    ("The driver was so careful on the mountain road", ("driver",)),
    ("司机师傅开车很稳，酒店前台也很热情", ("driver", "hotel")),
    ("导游和司机都很好", ("guide", "driver")),
    ("Lovely lake", ()),
    (None, ()),
])
def test_praise_names_its_staff(comment: str | None, staff: tuple[str, ...]) -> None:
    from alerts.rules.classify import praised_staff

    assert praised_staff(comment) == staff
