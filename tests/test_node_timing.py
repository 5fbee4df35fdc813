"""Properties of jacobian_ik.node.timing.CycleStats (loop period, compute time, overruns)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jacobian_ik.node.timing import LATE_FACTOR, CycleStats


def test_on_time_cycles_give_the_nominal_rate_and_no_overrun():
    stats = CycleStats(0.002)
    for i in range(100):
        stats.record(i * 0.002, 0.0005)
    assert stats.rate() == pytest.approx(500.0)
    assert stats.overruns == 0
    assert stats.cycles == 100
    assert stats.compute_percentiles(50.0, 99.0) == pytest.approx((0.0005, 0.0005))


def test_late_start_and_long_compute_each_count_as_one_overrun():
    stats = CycleStats(0.002)
    stats.record(0.000, 0.0005)
    stats.record(0.002, 0.0005)
    stats.record(0.002 + 0.002 * LATE_FACTOR * 1.01, 0.0005)   # late start
    stats.record(0.008, 0.0025)                                 # compute > period
    assert stats.overruns == 2


def test_percentiles_cover_only_the_window():
    """Old samples leave the ring buffer: percentiles describe the last `window` cycles."""
    stats = CycleStats(0.001, window=10)
    for i in range(10):
        stats.record(i * 0.001, 1.0)
    for i in range(10, 20):
        stats.record(i * 0.001, 0.001)
    assert stats.compute_percentiles(99.0)[0] == pytest.approx(0.001)
    assert stats.period_max() == pytest.approx(0.001)


def test_empty_statistics_are_nan_not_errors():
    stats = CycleStats(0.002)
    assert all(math.isnan(v) for v in stats.compute_percentiles(50.0, 99.0))
    assert math.isnan(stats.rate()) and math.isnan(stats.period_max())


@pytest.mark.parametrize("cycles", [1, 2, 3, 17, 64, 100, 250])
def test_percentiles_equal_numpys_linear_percentiles(cycles):
    """Every reported percentile, of compute, step and period times, is the one
    np.percentile gives over the same window (linear interpolation between ranks),
    including the extremes and with the ring buffer wrapped."""
    rng = np.random.default_rng(cycles)
    stats = CycleStats(0.001, window=64)
    starts = np.cumsum(rng.uniform(0.0005, 0.003, cycles))
    compute = rng.exponential(2e-4, cycles)
    step = rng.exponential(5e-6, cycles)
    for t, c, s in zip(starts, compute, step):
        stats.record(float(t), float(c), float(s))
    quantiles = (0.0, 1.0, 33.3, 50.0, 90.0, 99.0, 99.9, 100.0)
    window = slice(max(cycles - 64, 0), cycles)
    periods = np.diff(starts)[-64:]
    assert stats.compute_percentiles(*quantiles) == pytest.approx(
        tuple(np.percentile(compute[window], quantiles)), rel=1e-12, abs=0.0)
    assert stats.step_percentiles(*quantiles) == pytest.approx(
        tuple(np.percentile(step[window], quantiles)), rel=1e-12, abs=0.0)
    if cycles > 1:
        assert stats.period_percentiles(*quantiles) == pytest.approx(
            tuple(np.percentile(periods, quantiles)), rel=1e-12, abs=0.0)
    else:
        assert all(math.isnan(v) for v in stats.period_percentiles(*quantiles))
