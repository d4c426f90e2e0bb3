"""Feedback classification: complaint, suggestion or praise; urgent keywords; the category of a complaint.

Keyword lists, English and Chinese, matched case-insensitively as substrings (Chinese has no spaces, and
English stems such as "injur" must match "injured" and "injury"). The score breaks ties: a comment with a low
score leans complaint, with a high score leans praise. Deliberately simple and predictable: a supervisor
reads every complaint anyway; this only decides which clock starts and which counter moves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

COMPLAINT = "complaint"
SUGGESTION = "suggestion"
PRAISE = "praise"

COMPLAINT_WORDS: tuple[str, ...] = (
    # English
    "not good", "no good", "bad", "terrible", "awful", "horrible", "worst", "poor", "dirty", "smell", "rude",
    "late", "delay", "waited", "waiting", "wait for", "cold food", "overpriced", "rip off", "ripoff", "scam",
    "disappoint", "unhappy", "angry", "complain", "broken", "noisy", "crowded", "rushed", "forced", "refund",
    "not clean", "uncomfortable", "unacceptable", "never again", "waste", "boring", "too long",
    "too much shopping",
    # Chinese
    "不好", "不行", "太差", "很差", "差劲", "糟糕", "脏", "臭", "难吃", "态度", "晚点", "迟到", "等了",
    "太久", "不满", "失望", "生气", "投诉", "退款", "坑", "宰客",
    "强制", "强迫", "购物太多", "太贵", "不舒服", "吵",
    "拥挤", "赶", "无聊", "浪费", "不干净", "坏了",
)

SUGGESTION_WORDS: tuple[str, ...] = (
    # English
    "suggest", "recommend", "could", "should", "would be", "it'd be", "maybe", "perhaps", "next time", "wish",
    "please add", "would like", "prefer", "better if", "consider", "idea",
    # Chinese
    "建议", "希望", "最好", "如果能", "能不能", "可以考虑", "下次", "要是", "改进", "应该",
)

PRAISE_WORDS: tuple[str, ...] = (
    # English
    "great", "excellent", "amazing", "wonderful", "fantastic", "awesome", "perfect", "love", "loved", "thank",
    "good", "nice", "friendly", "helpful", "patient", "beautiful", "enjoy", "best", "brilliant", "impressed",
    "recommend this", "happy", "knowledgeable", "professional",
    # Chinese
    "很好", "非常好", "太好", "好棒", "棒", "赞", "满意", "感谢", "谢谢", "喜欢", "开心", "专业", "耐心",
    "热情", "周到", "完美", "精彩", "漂亮", "推荐", "好吃", "舒服", "辛苦",
)

# what a traveller calls the guide: praise mentioning one of these reaches the tour's guides
GUIDE_WORDS: tuple[str, ...] = ("guide", "tour leader", "导游", "领队", "地陪", "全陪")
# the staff praise may name, each with its words: praise goes to that staff member's tally (contract §10)
STAFF_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("guide", GUIDE_WORDS),
    ("driver", ("driver", "bus captain", "司机", "师傅")),
    ("hotel", ("hotel", "front desk", "receptionist", "housekeeping", "酒店", "宾馆", "前台", "客房")),
)

CATEGORIES: tuple[str, ...] = ("meals", "transport", "lodging", "guide", "itinerary", "safety", "other")

# rating aspects and the complaint category each stands for
ASPECT_CATEGORY: Mapping[str, str] = {
    "meals": "meals", "transport": "transport", "lodging": "lodging", "guide": "guide",
    "itinerary": "itinerary",
}

# in order: on equal hits the earlier category wins (safety first: it is the one that must not be missed)
CATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("safety", ("injur", "hurt", "unsafe", "danger", "accident", "bleed", "hospital", "safety", "seatbelt",
                "受伤", "危险", "不安全", "事故", "安全", "流血", "医院")),
    ("meals", ("food", "meal", "lunch", "dinner", "breakfast", "restaurant", "dish", "eat", "buffet", "drink",
               "饭", "餐", "菜", "吃", "早饭", "食物", "饮料", "水果")),
    ("transport", ("bus", "coach", "driver", "car", "van", "traffic", "train", "flight", "drive", "seat",
                   "车", "司机", "堵", "航班", "火车", "座位", "开车")),
    ("lodging", ("hotel", "room", "bed", "shower", "toilet", "bathroom", "hostel", "lodge", "air con",
                 "酒店", "房间", "住宿", "床", "宾馆", "卫生间", "厕所", "空调", "热水")),
    ("guide", ("guide", "tour leader", "导游", "领队", "地陪", "全陪")),
    ("itinerary", ("schedule", "itinerary", "shopping", "rushed", "sightseeing", "attraction", "plan",
                   "too long",                    "行程", "购物", "景点", "安排", "时间太", "赶")),
)


class Words:
    """A keyword list, matched case-insensitively on lowered text.

    An English word must start at a word boundary ("late" is not in "chocolate", "eat" not in "great") but
    may run on, so stems match ("injur" finds "injured"); Chinese has no word boundaries: a plain substring.
    """

    __slots__ = ("words", "_latin")

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(dict.fromkeys(w.lower() for w in words if w))
        # a substring test first (fast, in C) and the boundary regex only for the few words that pass it
        self._latin = {w: re.compile(rf"(?<![a-z]){re.escape(w)}") for w in self.words if w.isascii()}

    def found(self, text: str) -> list[str]:
        hits = []
        for word in self.words:
            if word in text:
                pattern = self._latin.get(word)
                if pattern is None or pattern.search(text):
                    hits.append(word)
        return hits

    def count(self, text: str) -> int:
        return len(self.found(text))

    def blank(self, text: str, found: list[str] | None = None) -> str:
        """Remove matched phrases (``found``, when the caller has them) so "not good" / "不好" do not also count
        as praise."""
        for word in self.found(text) if found is None else found:
            pattern = self._latin.get(word)
            text = pattern.sub(" ", text) if pattern is not None else text.replace(word, " ")
        return text


_COMPLAINT = Words(COMPLAINT_WORDS)
_SUGGESTION = Words(SUGGESTION_WORDS)
_PRAISE = Words(PRAISE_WORDS)
_GUIDE = Words(GUIDE_WORDS)
_STAFF = tuple((staff, Words(words)) for staff, words in STAFF_WORDS)
_CATEGORY = tuple((category, Words(words)) for category, words in CATEGORY_WORDS)
_SAFETY = Words(dict(CATEGORY_WORDS)["safety"])


def classify_comment(comment: str | None, score: int) -> str | None:
    """``"complaint"``, ``"suggestion"`` or ``"praise"``; None when there is no comment to classify."""
    if comment is None or not comment.strip():
        return None
    text = comment.lower()
    complaints = _COMPLAINT.found(text)
    complaint = float(len(complaints))
    rest = _COMPLAINT.blank(text, complaints)
    suggestion = float(_SUGGESTION.count(rest))
    praise = float(_PRAISE.count(rest))
    # the score leans, it does not decide: it breaks ties and classes a comment with no keyword at all
    if score <= 2:
        complaint += 0.5
    elif score >= 4:
        praise += 0.5
    best = max(complaint, suggestion, praise)
    if best == 0.0:
        return SUGGESTION  # a score of 3 and no keyword: a neutral remark, read as a suggestion
    # on a tie the more demanding class wins: a complaint missed costs more than praise missed
    if complaint == best:
        return COMPLAINT
    if suggestion == best:
        return SUGGESTION
    return PRAISE


def urgent_matches(comment: str | None, keywords: Iterable[str]) -> tuple[str, ...]:
    """The urgent-complaint keywords found in ``comment`` (case-insensitive, an English word from the start of
    a word: "theft" is not in "the ftp"), in keyword order."""
    if not comment:
        return ()
    return tuple(_urgent_words(tuple(keywords)).found(comment.lower()))


@lru_cache(maxsize=16)
def _urgent_words(keywords: tuple[str, ...]) -> Words:
    return Words(keywords)


def praised_staff(comment: str | None) -> tuple[str, ...]:
    """The staff a comment names (``guide``, ``driver``, ``hotel``), in that order."""
    if not comment:
        return ()
    text = comment.lower()
    return tuple(staff for staff, words in _STAFF if words.count(text))


def mentions_guide(comment: str | None) -> bool:
    """Whether a comment is about the guide: praise that is goes to the tour's guides."""
    return bool(comment) and _GUIDE.count((comment or "").lower()) > 0


def complaint_category(comment: str | None, aspects: Mapping[str, int] | None) -> str:
    """One of ``CATEGORIES``: the lowest aspect rated 2 or less wins, else the keywords, else ``other``."""
    if aspects:
        rated = [(score, name) for name, score in aspects.items() if name in ASPECT_CATEGORY]
        if rated:
            # lowest score first; on a tie, the aspect order of ASPECT_CATEGORY keeps it deterministic
            order = list(ASPECT_CATEGORY)
            score, name = min(rated, key=lambda item: (item[0], order.index(item[1])))
            if score <= 2:
                return ASPECT_CATEGORY[name]
    if comment:
        text = comment.lower()
        best, best_hits = "other", 0
        for category, words in _CATEGORY:
            hits = words.count(text)
            if hits > best_hits:
                best, best_hits = category, hits
        return best
    return "other"


def is_safety(comment: str | None) -> bool:
    """Whether a comment speaks of injury or danger: what makes an urgent complaint critical."""
    return bool(comment) and _SAFETY.count((comment or "").lower()) > 0
