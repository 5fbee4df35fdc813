"""Joint configurations to audit, drawn within the joint limits, in blocks.

``uniform``: independent uniform samples from ``numpy.random.default_rng(seed)``.
``sobol``: a scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``, seeded), which
covers joint space more evenly for the same count; its balance properties hold
for counts that are powers of two.  Continuous joints are sampled in [−π, π].
Blocks are drawn in order, so a (method, seed, block size) triple always gives
the same configurations.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.robot import Robot

METHODS = ("uniform", "sobol")


def joint_bounds(robot: Robot) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) sampling bounds Shape (n,) [rad | m]: the limits, ±π if continuous."""
    lo = np.where(robot.continuous, -math.pi, robot.lower)
    hi = np.where(robot.continuous, math.pi, robot.upper)
    return lo.astype(np.float64), hi.astype(np.float64)


class Sampler:
    """Draws C-contiguous blocks of configurations Shape (count, n)."""

    def __init__(self, robot: Robot, seed: int, method: str = "uniform") -> None:
        if method not in METHODS:
            raise ConfigurationError(
                f"sampling method {method!r} is unknown; methods are: {', '.join(METHODS)}",
                parameter="method", value=method, choices=tuple(METHODS))
        self.method = method
        self.seed = int(seed)
        self.lo, self.hi = joint_bounds(robot)
        if method == "uniform":
            self._rng = np.random.default_rng(self.seed)
        else:
            try:
                from scipy.stats import qmc
            except ImportError:
                raise ConfigurationError(
                    "--sobol needs scipy (pip install scipy, or the package's 'audit' "
                    "extra); use uniform sampling without --sobol") from None
            self._sobol = qmc.Sobol(d=robot.dof, scramble=True, seed=self.seed)

    def block(self, count: int) -> np.ndarray:
        """The next ``count`` configurations."""
        if self.method == "uniform":
            q = self._rng.uniform(self.lo, self.hi, size=(count, self.lo.size))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # balance warning for non-powers of two
                u = self._sobol.random(count)
            q = self.lo + (self.hi - self.lo) * u
        return np.ascontiguousarray(q, dtype=np.float64)
