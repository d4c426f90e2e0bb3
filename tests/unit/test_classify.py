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
    ("Someone stole my bag - theft at the market, we called the police", ("theft", "police")),
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
