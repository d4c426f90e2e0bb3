"""Student's t without scipy: checked against the printed tables every statistics book carries."""

from __future__ import annotations

import pytest

from alerts.rules.stats import SCORE_MAX, STDEV_FLOOR, below_probability, betainc, t_cdf, t_ppf, upper_bound

# (p, df, t) from the standard one-sided t table
T_TABLE = [
    (0.90, 1, 3.078), (0.90, 2, 1.886), (0.90, 3, 1.638), (0.90, 4, 1.533), (0.90, 5, 1.476),
    (0.90, 10, 1.372), (0.90, 20, 1.325), (0.90, 30, 1.310), (0.90, 120, 1.289),
    (0.95, 1, 6.314), (0.95, 5, 2.015), (0.95, 10, 1.812),
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 5, 2.571), (0.975, 10, 2.228), (0.975, 30, 2.042),
    (0.995, 3, 5.841),
]


@pytest.mark.parametrize(("p", "df", "t"), T_TABLE)
def test_t_ppf_matches_the_table(p: float, df: int, t: float) -> None:
    assert t_ppf(p, df) == pytest.approx(t, abs=1e-3)


@pytest.mark.parametrize(("p", "df", "t"), T_TABLE)
def test_t_cdf_inverts_the_table(p: float, df: int, t: float) -> None:
    assert t_cdf(t, df) == pytest.approx(p, abs=1e-4)
    assert t_cdf(-t, df) == pytest.approx(1 - p, abs=1e-4)


@pytest.mark.parametrize("df", [1, 2, 7, 50])
def test_t_cdf_is_symmetric_about_zero(df: int) -> None:
    assert t_cdf(0.0, df) == pytest.approx(0.5)
    for t in (0.1, 0.8, 2.5, 9.0):
        assert t_cdf(t, df) + t_cdf(-t, df) == pytest.approx(1.0)
    assert t_cdf(float("inf"), df) == 1.0
    assert t_cdf(float("-inf"), df) == 0.0


def test_t_ppf_below_a_half_is_negative() -> None:
    assert t_ppf(0.1, 4) == pytest.approx(-1.533, abs=1e-3)
    assert t_ppf(0.5, 4) == 0.0


@pytest.mark.parametrize(("p", "df"), [(0.0, 3), (1.0, 3), (0.5, 0)])
def test_bad_arguments_fail_loudly(p: float, df: int) -> None:
    with pytest.raises(ValueError):
        t_ppf(p, df) if df > 0 else t_cdf(1.0, df)


def test_betainc_edges_and_a_known_value() -> None:
    assert betainc(2.0, 3.0, 0.0) == 0.0
    assert betainc(2.0, 3.0, 1.0) == 1.0
    # I_x(1, 1) is the uniform distribution's cdf
    assert betainc(1.0, 1.0, 0.3) == pytest.approx(0.3)


def test_upper_bound_of_identical_ratings_is_not_certain() -> None:
    bound = upper_bound(3.0, 0.0, 3)
    assert bound > 3.0
    assert bound == pytest.approx(3.0 + 1.886 * STDEV_FLOOR / 3 ** 0.5, abs=1e-3)


def test_upper_bound_shrinks_with_more_ratings_and_is_capped() -> None:
    assert upper_bound(3.5, 1.0, 30) < upper_bound(3.5, 1.0, 5) < upper_bound(3.5, 1.0, 3)
    assert upper_bound(4.8, 2.0, 2) == SCORE_MAX
    assert upper_bound(2.0, 1.0, 1) == SCORE_MAX  # one rating says nothing of the spread


def test_below_probability_grows_with_distance_and_evidence() -> None:
    assert below_probability(3.9, 0.5, 3, 4.0) < below_probability(3.0, 0.5, 3, 4.0)
    assert below_probability(3.5, 1.0, 3, 4.0) < below_probability(3.5, 1.0, 30, 4.0)
    assert below_probability(4.5, 0.5, 10, 4.0) < 0.01
    assert below_probability(2.0, 0.0, 1, 4.0) == 0.5
