"""Median with min and max, percentiles."""

from __future__ import annotations

import pytest

from bench.stats import Spread, percentile, spread


@pytest.mark.parametrize(("values", "expected"), [
    ([3.0], Spread(3.0, 3.0, 3.0, 1)),
    ([5.0, 1.0, 3.0], Spread(3.0, 1.0, 5.0, 3)),
    ([4.0, 1.0, 2.0, 3.0], Spread(2.5, 1.0, 4.0, 4)),
])
def test_spread(values: list[float], expected: Spread) -> None:
    assert spread(values) == expected


def test_spread_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        spread([])


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (50, 50.5), (99, 99.01), (100, 100.0)])
def test_percentile_interpolates(q: float, expected: float) -> None:
    assert percentile([float(v) for v in range(100, 0, -1)], q) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], 101), ([1.0], -1)])
def test_percentile_refuses(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, q)


def test_ratio_to_the_floor() -> None:
    assert spread([2.0, 4.0, 6.0]).ratio_to(spread([8.0])) == 0.5
    assert spread([2.0]).ratio_to(spread([0.0])) is None
