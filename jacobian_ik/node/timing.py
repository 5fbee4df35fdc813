"""Control-loop timing statistics: period, compute time, overruns.

``CycleStats.record`` runs inside the control cycle and only writes Python floats
into preallocated ``array('d')`` ring buffers (no NumPy call in the cycle);
percentiles are computed on demand over NumPy views of them (diagnostics,
~1 Hz), outside the cycle.
"""

from __future__ import annotations

from array import array

import numpy as np

#: A cycle is an overrun when it starts later than this many nominal periods
#: after the previous one, or when its compute time exceeds one period.
LATE_FACTOR = 1.5


def _view(ring: array, count: int) -> np.ndarray:
    """The first ``count`` values of a ring buffer, as a NumPy view."""
    return np.frombuffer(ring, dtype=np.float64, count=count)


class CycleStats:
    """Ring buffers of the last ``window`` cycle periods, compute times and
    controller step times [s]."""

    def __init__(self, period: float, window: int = 4096):
        self.period = float(period)
        self._periods = array("d", bytes(8 * window))
        self._compute = array("d", bytes(8 * window))
        self._step = array("d", bytes(8 * window))
        self._window = window
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
        count = min(self.cycles, self._window)
        if count == 0:
            return tuple(float("nan") for _ in quantiles)
        return tuple(float(v) for v in np.percentile(_view(self._compute, count), quantiles))

    def step_percentiles(self, *quantiles: float) -> tuple[float, ...]:
        """Percentiles (0..100) of the controller step time [s] over the window; NaN if empty."""
        count = min(self.cycles, self._window)
        if count == 0:
            return tuple(float("nan") for _ in quantiles)
        return tuple(float(v) for v in np.percentile(_view(self._step, count), quantiles))

    def period_percentiles(self, *quantiles: float) -> tuple[float, ...]:
        """Percentiles (0..100) of the start-to-start period [s]; NaN if fewer than 2 cycles."""
        if self._n_periods == 0:
            return tuple(float("nan") for _ in quantiles)
        return tuple(float(v) for v in np.percentile(_view(self._periods, self._n_periods),
                                                      quantiles))

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
