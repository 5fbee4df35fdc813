"""Control-loop timing statistics: period, compute time, overruns.

``CycleStats.record`` runs inside the control cycle and only writes Python floats
into preallocated ``array('d')`` ring buffers (no NumPy call in the cycle);
percentiles are computed on demand (for the diagnostics, once a second, after a
cycle's command), without allocating.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

#: A cycle is an overrun when it starts later than this many nominal periods
#: after the previous one, or when its compute time exceeds one period.
LATE_FACTOR = 1.5


def _view(ring: array, count: int) -> np.ndarray:
    """The first ``count`` values of a ring buffer, as a NumPy view."""
    return np.frombuffer(ring, dtype=np.float64, count=count)


def _percentiles(ring: array, count: int, quantiles: tuple[float, ...],
                 scratch: np.ndarray) -> tuple[float, ...]:
    """Percentiles (0..100) of the first ``count`` values of a ring buffer, linearly
    interpolated between ranks as ``np.percentile`` does by default, from one
    in-place partition of a copy in ``scratch`` (Shape (≥ count,)): no allocation
    and about a quarter of ``np.percentile``'s cost, most of which is its set-up.
    NaN for each quantile if ``count`` is 0."""
    if count == 0:
        return tuple(math.nan for _ in quantiles)
    ranks = [q / 100.0 * (count - 1) for q in quantiles]
    below = [min(int(rank), count - 1) for rank in ranks]
    kth = sorted({k for b in below for k in (b, min(b + 1, count - 1))})
    values = scratch[:count]
    values[:] = _view(ring, count)
    values.partition(kth)
    result = []
    for rank, b in zip(ranks, below):
        low = float(values[b])
        high = float(values[min(b + 1, count - 1)])
        result.append(low + (high - low) * (rank - b))
    return tuple(result)


class CycleStats:
    """Ring buffers of the last ``window`` cycle periods, compute times and
    controller step times [s]."""

    def __init__(self, period: float, window: int = 4096):
        self.period = float(period)
        self._periods = array("d", bytes(8 * window))
        self._compute = array("d", bytes(8 * window))
        self._step = array("d", bytes(8 * window))
        self._window = window
        self._scratch = np.empty(window)  # for the percentiles
        self.cycles = 0
        self.overruns = 0
        self._last_start: float | None = None
        self._n_periods = 0
        self._i_period = 0

    def set_period(self, period: float) -> None:
        self.period = float(period)

    def record(self, start: float, compute: float, step: float = 0.0) -> None:
        """One cycle that started at ``start`` [s, monotonic] and computed for ``compute`` [s]
        (of which ``step`` [s] in ``Controller.step``)."""
        i = self.cycles % self._window
        self._compute[i] = compute
        self._step[i] = step
        self.cycles += 1
        late = False
        if self._last_start is not None:
            gap = start - self._last_start
            self._periods[self._i_period] = gap
            self._i_period = (self._i_period + 1) % self._window
            self._n_periods = min(self._n_periods + 1, self._window)
            late = gap > LATE_FACTOR * self.period
        self._last_start = start
        if late or compute > self.period:
            self.overruns += 1

    def compute_percentiles(self, *quantiles: float) -> tuple[float, ...]:
        """Percentiles (0..100) of the compute time [s] over the window; NaN if empty."""
        return _percentiles(self._compute, min(self.cycles, self._window), quantiles,
                            self._scratch)

    def step_percentiles(self, *quantiles: float) -> tuple[float, ...]:
        """Percentiles (0..100) of the controller step time [s] over the window; NaN if empty."""
        return _percentiles(self._step, min(self.cycles, self._window), quantiles,
                            self._scratch)

    def period_percentiles(self, *quantiles: float) -> tuple[float, ...]:
        """Percentiles (0..100) of the start-to-start period [s]; NaN if fewer than 2 cycles."""
        return _percentiles(self._periods, self._n_periods, quantiles, self._scratch)

    def period_max(self) -> float:
        if self._n_periods == 0:
            return float("nan")
        return float(_view(self._periods, self._n_periods).max())

    def rate(self) -> float:
        """Mean achieved loop rate [Hz] over the window; NaN if fewer than 2 cycles."""
        if self._n_periods == 0:
            return float("nan")
        mean = float(_view(self._periods, self._n_periods).mean())
        return 1.0 / mean if mean > 0 else float("nan")
