"""Small-sample statistics for tour-day scores: Student's t, written out so the watcher needs no scipy.

A tour-day has 15-45 travellers and the alert must speak after three or four ratings, so a plain mean is too
sure of itself: a one-sided confidence bound from the t distribution says how far the true mean could be.
``t_cdf`` uses the regularized incomplete beta function (Lentz's continued fraction, as in Numerical Recipes);
``t_ppf`` inverts it by bisection and is cached, because the rules only ever ask for a handful of
(confidence, df) pairs.
"""

from __future__ import annotations

import math
from functools import lru_cache

# Ratings are whole stars: a sample spread below half a star is rounding, not certainty. Without a floor three
# identical ratings would claim the true mean is known exactly.
STDEV_FLOOR = 0.5
# the best and worst a score can be: a bound past them says nothing more
SCORE_MIN = 1.0
SCORE_MAX = 5.0

_EPS = 1e-14
_TINY = 1e-300


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # the continued fraction converges fast only on one side of the mean of the beta distribution
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df > 0)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=512)
def t_ppf(p: float, df: float) -> float:
    """The t with P(T <= t) = p: the inverse of ``t_cdf``, to about 1e-9."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be within (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:  # the tails of df=1 reach far: widen until the root is bracketed
        low, high = high, high * 2.0
    for _ in range(100):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-10:
            break
    return (low + high) / 2.0


def upper_bound(mean: float, stdev: float, n: int, confidence: float = 0.9) -> float:
    """One-sided upper confidence bound on the true mean score, capped at the best score.

    With fewer than two ratings nothing is known about the spread, so the bound is the best score.
    """
    if n < 2:
        return SCORE_MAX
    s = max(stdev, STDEV_FLOOR)
    return min(SCORE_MAX, mean + t_ppf(confidence, n - 1) * s / math.sqrt(n))


@lru_cache(maxsize=4096)  # a day's (mean, stdev, n) recurs across days and tours: ratings are whole stars
def below_probability(mean: float, stdev: float, n: int, threshold: float) -> float:
    """How sure we are that the true mean is below ``threshold``: the t distribution's answer, in [0, 1]."""
    if n < 2:
        return 0.5 if mean < threshold else 0.0
    s = max(stdev, STDEV_FLOOR)
    return t_cdf((threshold - mean) / (s / math.sqrt(n)), n - 1)
