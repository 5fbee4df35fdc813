"""Summaries of audit metrics that take samples block by block in bounded memory.

``MetricStream``  count, exact min / max / mean, and percentiles: exact where
                  a window around the percentile, predicted from a first
                  part of the samples (``focus``), holds the percentile's rank
                  (it does with overwhelming probability: the window spans
                  ``WINDOW_SIGMAS`` standard errors of the prediction); else
                  from a fixed-size log-scaled histogram, within
                  ``RELATIVE_ACCURACY`` of the sample at that rank.
``VoxelMap``      the largest σ_min in each workspace voxel (a cube of edge
                  ``voxel`` [m] on a grid anchored at ``origin``), kept as a
                  sparse table: memory grows with the voxels reached, not with
                  the samples.
``WorstKept``     the K configurations of smallest σ_min seen so far (a bounded
                  selection: at most 2K rows at any time).

Percentile pX follows ``stats.summary``: the smallest sample value with at
least X % of the samples at or below it (numpy's ``inverted_cdf``).  Values
at or below ``LOWEST`` (0 included) and at or above ``HIGHEST`` (+inf
included) fall in two end bins, which report the smallest resp. largest value
they received.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from jacobian_ik.audit.stats import PERCENTILES
from jacobian_ik.errors import ConfigurationError

#: Largest relative error of a percentile (except in the two end bins).
RELATIVE_ACCURACY = 1e-4
#: Range of the log-scaled bins; values outside go to the end bins.
LOWEST = 1e-24
HIGHEST = 1e24

_GAMMA = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_FIRST = math.ceil(math.log(LOWEST) / _LOG_GAMMA)
_LAST = math.ceil(math.log(HIGHEST) / _LOG_GAMMA)
#: Bins: 0 = (−inf, LOWEST], 1 .. BINS − 2 = log-scaled, BINS − 1 = [HIGHEST, +inf].
BINS = _LAST - _FIRST + 3

#: Half-width of a percentile's window, in standard errors of its rank predicted
#: from the focus samples.
WINDOW_SIGMAS = 5.0
#: A window holding more values than this is dropped (its percentile then comes
#: from the histogram), so memory stays bounded whatever the samples.
WINDOW_CAPACITY = 4_000_000

#: Keys packed per axis into one int64 voxel key (cells −2^20 .. 2^20 − 1 per axis).
_AXIS_BITS = 21
_AXIS_OFFSET = 1 << (_AXIS_BITS - 1)


class MetricStream:
    """Count, min, max, mean and percentiles of a non-negative metric, fed in blocks.

    Memory: one int64 count per bin (``BINS``, about 0.55 million: 4.4 MB),
    whatever the number of samples.
    """

    def __init__(self) -> None:
        self.counts = np.zeros(BINS, dtype=np.int64)
        self.count = 0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self._low_max = -math.inf   # largest value of the bottom end bin
        self._high_min = math.inf   # smallest value of the top end bin
        # Percent → [lo, hi, values below lo, list of value blocks in [lo, hi]].
        self.windows: dict[float, list] = {}

    def focus(self, values: np.ndarray, percents: Iterable[float] = PERCENTILES) -> None:
        """Keep, from now on, the values near each percentile of ``percents`` as
        predicted from ``values`` (the samples added so far, all of them)."""
        values = np.sort(np.asarray(values, dtype=np.float64))
        m = values.size
        if m == 0 or m != self.count:
            return
        for percent in percents:
            q = percent / 100.0
            half = WINDOW_SIGMAS * math.sqrt(q * (1.0 - q) / m) + 2.0 / m
            lo = values[max(math.floor((q - half) * m), 0)]
            hi = values[min(math.ceil((q + half) * m), m - 1)]
            inside = values[(values >= lo) & (values <= hi)]
            self.windows[percent] = [lo, hi, int(np.count_nonzero(values < lo)), [inside]]

    def _add_to_windows(self, values: np.ndarray) -> None:
        for percent, window in list(self.windows.items()):
            lo, hi = window[0], window[1]
            window[2] += int(np.count_nonzero(values < lo))
            inside = values[(values >= lo) & (values <= hi)]
            if inside.size:
                window[3].append(inside)
            if sum(block.size for block in window[3]) > WINDOW_CAPACITY:
                del self.windows[percent]

    def add(self, values: np.ndarray) -> None:
        """Take a block of samples Shape (N,)."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        if self.windows:
            self._add_to_windows(values)
        self.count += values.size
        with np.errstate(invalid="ignore", over="ignore"):
            self.total += float(values.sum())
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))
        low = values <= LOWEST
        high = values >= HIGHEST
        if low.any():
            self._low_max = max(self._low_max, float(values[low].max()))
        if high.any():
            self._high_min = min(self._high_min, float(values[high].min()))
        with np.errstate(divide="ignore", invalid="ignore"):
            index = np.ceil(np.log(values) / _LOG_GAMMA) - (_FIRST - 1)
        index = np.where(low, 0, np.where(high, BINS - 1, index))
        index = np.clip(index, 0, BINS - 1).astype(np.int64)
        first, last = int(index.min()), int(index.max())
        self.counts[first:last + 1] += np.bincount(index - first, minlength=last - first + 1)

    def _bin_value(self, i: int) -> float:
        if i == 0:
            return self.minimum
        if i == BINS - 1:
            return self.maximum
        upper = _GAMMA ** (i + _FIRST - 1)
        return 2.0 * upper / (_GAMMA + 1.0)

    def percentile(self, percent: float) -> float:
        """pX: the value of the sample at rank ceil(X/100 · N): exact when its window
        holds that rank, else within ``RELATIVE_ACCURACY``."""
        rank = max(math.ceil(self.count * (percent / 100.0)), 1)  # as numpy computes it
        window = self.windows.get(percent)
        if window is not None:
            below, blocks = window[2], window[3]
            inside = np.concatenate(blocks) if blocks else np.empty(0)
            if below < rank <= below + inside.size:
                return float(np.partition(inside, rank - below - 1)[rank - below - 1])
        cumulative = np.cumsum(self.counts)
        i = int(np.searchsorted(cumulative, rank))
        value = self._bin_value(i)
        return min(max(value, self.minimum), self.maximum)

    def summary(self) -> dict:
        """The same keys as ``stats.summary``: percentiles, min, max, mean (floats)."""
        out = {f"p{p}": float(self.percentile(p)) for p in PERCENTILES}
        out["min"] = float(self.minimum)
        out["max"] = float(self.maximum)
        out["mean"] = self.total / self.count if self.count else math.nan
        return out


class VoxelMap:
    """Largest σ_min per voxel of edge ``voxel`` [m], cells counted from ``origin`` [m]."""

    def __init__(self, origin: np.ndarray, voxel: float) -> None:
        self.origin = np.asarray(origin, dtype=np.float64).reshape(3)
        self.voxel = float(voxel)
        self.keys = np.empty(0, dtype=np.int64)
        self.best = np.empty(0, dtype=np.float64)

    def add(self, tip_position: np.ndarray, sigma_min: np.ndarray) -> None:
        """Take tip positions Shape (N, 3) [m] with their σ_min Shape (N,)."""
        if not len(sigma_min):
            return
        cell = np.floor((tip_position - self.origin) / self.voxel)
        if cell.size and np.abs(cell).max() >= _AXIS_OFFSET:
            raise ConfigurationError(
                f"voxel size {self.voxel!r} m is too small for the workspace: more than "
                f"{_AXIS_OFFSET} voxels along an axis", parameter="voxel", value=self.voxel)
        cell = cell.astype(np.int64) + _AXIS_OFFSET
        key = (cell[:, 0] << (2 * _AXIS_BITS)) | (cell[:, 1] << _AXIS_BITS) | cell[:, 2]
        key = np.concatenate([self.keys, key])
        sigma = np.concatenate([self.best, np.asarray(sigma_min, dtype=np.float64)])
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        self.keys = sorted_key[starts]
        self.best = np.maximum.reduceat(sigma[order], starts)

    @property
    def count(self) -> int:
        """Voxels reached by at least one sample."""
        return int(self.keys.size)

    def fractions(self, thresholds: dict) -> dict:
        """{name: share of the reached voxels where every sample's σ_min < threshold}."""
        count = self.count
        if not count:
            return dict.fromkeys(thresholds, 0.0)
        return {name: float(np.count_nonzero(self.best < t)) / count
                for name, t in thresholds.items()}


def voxel_fractions(tip_position: np.ndarray, sigma_min: np.ndarray, voxel: float,
                    thresholds: dict) -> tuple[int, dict]:
    """(occupied voxels, {name: share of them where every sample's σ_min < threshold}).

    The tip positions [m] are binned in cubes of edge ``voxel`` [m] counted from
    their smallest coordinates; a voxel that every sampled configuration reaches
    only below a threshold is the part of the workspace that threshold cuts away
    (as far as the samples show).
    """
    if not tip_position.size:
        return 0, dict.fromkeys(thresholds, 0.0)
    voxels = VoxelMap(tip_position.min(axis=0), voxel)
    voxels.add(tip_position, sigma_min)
    return voxels.count, voxels.fractions(thresholds)


class WorstKept:
    """The ``size`` configurations of smallest σ_min among all blocks given to ``add``."""

    def __init__(self, size: int, dof: int) -> None:
        self.size = size
        self.q = np.empty((0, dof))
        self.sigma_min = np.empty(0)

    def add(self, q: np.ndarray, sigma_min: np.ndarray) -> None:
        """Take a block of configurations Shape (N, n) with their σ_min Shape (N,)."""
        count = sigma_min.size
        take = min(self.size, count)
        if not take:
            return
        idx = np.argpartition(sigma_min, take - 1)[:take] if take < count \
            else np.arange(count)
        q_all = np.concatenate([self.q, q[idx]])
        s_all = np.concatenate([self.sigma_min, sigma_min[idx]])
        keep = np.argsort(s_all, kind="stable")[:self.size]
        self.q, self.sigma_min = q_all[keep], s_all[keep]
