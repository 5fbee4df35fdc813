"""Joint-space fallback: a way to a pose goal that the Cartesian path cannot reach.

When the controller finds a pose goal blocked (no progress for stall_timeout: the
σ_min barrier or the joint limits hold the arm), it asks a ``JointPathFinder`` for
a joint-space path to a configuration that reaches the goal.  Candidates:

1. IK solutions of the goal (``jacobian_ik.ik``), seeded from the current
   configuration, then from random ones (other solution branches); each joint is
   turned by whole turns toward the current position where its limits allow;
2. the straight joint-space path to each, or back to where the arm was when the
   goal arrived and from there to it; then, for each solution, two-segment paths
   through a waypoint that moves one group of joints first (the first half of the
   chain, then the second, or the reverse) or through a random configuration.

A path is accepted when every bounded joint of its end lies inside the
joint_limit_margin and σ_min stays above ``max(1.05·σ_guard, 0.95·min(sigma_warn,
σ_min here, σ_min at the goal))`` at PATH_SAMPLES points of every segment, σ_guard
being the look-ahead's guard (1.1·sigma_stop): above sigma_warn wherever the start
and the goal are, never deeper into a singularity than they are, never where the
look-ahead would brake.

The search is time-sliced: ``start`` sets it up and each ``step`` (one per control
cycle) does one IK solve or one path check, so no control cycle is held up.  The
controller then moves along the path (state JOINT_MOVE) under the same limits,
barrier and look-ahead as any other motion.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from jacobian_ik.ik import ATTEMPT_ITERATIONS, IkSolver
from jacobian_ik.kernels.lookahead import LOOKAHEAD_MARGIN, path_min_sigma, sigma_at

if TYPE_CHECKING:
    from jacobian_ik.params import ControllerParams
    from jacobian_ik.robot import Robot

#: Points at which σ_min is checked along each path segment.
PATH_SAMPLES = 24
#: IK solutions tried: from the current configuration, from where the goal began,
#: then alternately from around the latter and from random configurations within
#: the limits (other solution branches).
IK_CANDIDATES = 24
#: Standard deviation [rad | m] of the seeds around where the goal began.
SEED_SPREAD = 0.5
#: Random waypoints tried per search, after the structured ones.
RANDOM_WAYPOINTS = 24
#: Wall-time budget of one IK solve [s], and its iteration cap (the solver reads the
#: clock only between chunks of iterations): two attempts, from the seed and from
#: one random restart.
IK_TIMEOUT = 0.0005
IK_ITERATIONS = 2 * ATTEMPT_ITERATIONS
#: Pose tolerance of the IK solution [m | rad] (well inside the goal tolerances).
IK_TOLERANCE = 1e-5


class _Searching(enum.Enum):
    """The type of SEARCHING (a sentinel type checkers can tell from a path)."""

    SEARCHING = "searching"


#: What ``step`` returns while the search goes on.
SEARCHING: Final = _Searching.SEARCHING


class JointPathFinder:
    """Finds joint-space paths for one robot (keeps its work arrays; not thread-safe)."""

    def __init__(self, robot: Robot, rows: np.ndarray) -> None:
        self.robot = robot
        self._rows = rows
        n = robot.dof
        s = max(6, n)
        self._solver = IkSolver(robot)
        self._frames = np.zeros((n + 1, 4, 4))
        self._J = np.zeros((6, n))
        self._scratch = np.zeros((5, s, s))
        self._probe = np.zeros(n)
        self._rng = np.random.default_rng(0)
        bounded = robot.continuous == 0
        self._low = np.where(bounded, robot.lower, -np.pi)
        self._high = np.where(bounded, robot.upper, np.pi)
        self._search: Iterator | None = None

    def warm_up(self, params: ControllerParams) -> None:
        """Compile the kernels the search uses."""
        q = self.robot.q_mid
        self.find(q, self.robot.fk(q), params)

    # ------------------------------------------------------------------ search
    def start(self, q_live: np.ndarray, T_base_target: np.ndarray, params: ControllerParams,
              q_origin: np.ndarray | None = None, waypoints: bool = True) -> None:
        """Begin a search for ``T_base_target`` (replaces any running one).

        ``q_live`` Shape (n,) is read at every slice: paths start where the arm is
        then (it may go on moving while a search ahead of a blockage runs).
        ``q_origin`` is where the arm was when the goal arrived (a waypoint back to a
        known place of the goal's solution branch); ``waypoints`` False tries only
        straight paths from the arm's position.
        """
        origin = np.array(q_live if q_origin is None else q_origin, dtype=np.float64)
        self._search = self._candidates(q_live, np.array(T_base_target, dtype=np.float64),
                                        params, origin, waypoints)

    def stop(self) -> None:
        """Drop the running search, if any."""
        self._search = None

    @property
    def searching(self) -> bool:
        return self._search is not None

    def step(self) -> list[np.ndarray] | Literal[_Searching.SEARCHING] | None:
        """One slice of the search: SEARCHING, a list of joint waypoints (the last
        reaches the goal; the first starts from the arm's position at this slice),
        or None when no path was found."""
        if self._search is None:
            return None
        try:
            result = next(self._search)
        except StopIteration:
            self._search = None
            return None
        if result is not SEARCHING:
            self._search = None
        return result

    def find(self, q: np.ndarray, T_base_target: np.ndarray,
             params: ControllerParams) -> list[np.ndarray] | None:
        """The whole search from q at once: a list of waypoints, or None."""
        self.start(np.array(q, dtype=np.float64), T_base_target, params)
        while True:
            result = self.step()
            if result is not SEARCHING:
                return result

    # ------------------------------------------------------------------ pieces
    def _sigma(self, q: np.ndarray) -> float:
        r = self.robot
        s, _, _ = sigma_at(r.placements, r.axes, r.joint_types, q, self._rows, self._frames,
                           self._J, self._scratch, False)
        return s

    def _nearest(self, q: np.ndarray, q_goal: np.ndarray) -> np.ndarray:
        """q_goal with each joint turned by whole turns (2π) toward q where that keeps
        it within its limits (continuous joints: the shortest way)."""
        r = self.robot
        step = q_goal - q
        shifted = step - 2.0 * np.pi * np.round(step / (2.0 * np.pi))
        inside = (r.continuous != 0) | ((q + shifted >= r.lower) & (q + shifted <= r.upper))
        return q + np.where(inside, shifted, step)

    def _clear(self, a: np.ndarray, b: np.ndarray, floor: float) -> bool:
        r = self.robot
        lowest = path_min_sigma(r.placements, r.axes, r.joint_types, a, b - a, self._rows,
                                PATH_SAMPLES, self._frames, self._J, self._scratch,
                                self._probe)
        return lowest >= floor

    def _candidates(self, q_live: np.ndarray, T: np.ndarray, params: ControllerParams,
                    origin: np.ndarray,
                    waypoints: bool) -> Iterator[list[np.ndarray] | Literal[_Searching.SEARCHING]]:
        r = self.robot
        n = r.dof
        bounded = r.continuous == 0
        margin = params.joint_limit_margin
        inner_lo = np.where(bounded, r.lower + margin, -np.inf)
        inner_hi = np.where(bounded, r.upper - margin, np.inf)
        guard = 1.05 * params.sigma_stop * (1.0 + LOOKAHEAD_MARGIN)
        goals: list[tuple[float, np.ndarray]] = []  # admissible IK solutions (σ_min there, q_goal)
        for attempt in range(IK_CANDIDATES):
            q = q_live.copy()
            base_floor = min(params.sigma_warn, self._sigma(q))
            if attempt < 2:
                seed = (q, origin)[attempt]
            elif attempt % 2:
                seed = np.clip(origin + self._rng.normal(0.0, SEED_SPREAD, n), self._low,
                               self._high)
            else:
                seed = self._rng.uniform(self._low, self._high)
            res = self._solver.solve(T, q0=seed, tol=IK_TOLERANCE, timeout=IK_TIMEOUT,
                                     seed=attempt, max_iterations=IK_ITERATIONS)
            if res.success:
                x = self._nearest(q, res.q)
                sigma_x = self._sigma(x)
                floor = max(guard, 0.95 * min(base_floor, sigma_x))
                if not (np.any(x < inner_lo) or np.any(x > inner_hi)) and sigma_x >= floor \
                        and not any(np.allclose(x, g, atol=1e-6) for _s, g in goals):
                    if self._clear(q, x, floor):
                        yield [x]
                        return
                    goals.append((sigma_x, x))
            yield SEARCHING
        if not goals or not waypoints:
            return
        q = q_live.copy()
        base_floor = min(params.sigma_warn, self._sigma(q))

        def floor_of(sigma_x: float) -> float:
            return max(guard, 0.95 * min(base_floor, sigma_x))

        # two-segment paths; one path check per slice
        back = self._clear(q, origin, guard)     # back to where the goal began
        yield SEARCHING
        if back:
            for sigma_x, x in goals:
                if self._clear(origin, x, floor_of(sigma_x)):
                    yield [origin, x]
                    return
                yield SEARCHING
        half = n // 2
        for sigma_x, x in goals:         # one group of joints first, then the other
            for first in (slice(0, half), slice(half, n)):
                w = q.copy()
                w[first] = x[first]
                f = floor_of(sigma_x)
                clear = self._clear(q, w, f)
                yield SEARCHING
                if clear and self._clear(w, x, f):
                    yield [w, x]
                    return
                yield SEARCHING
        lowest = floor_of(min(sigma_x for sigma_x, _x in goals))
        for _ in range(RANDOM_WAYPOINTS):
            w = self._rng.uniform(np.maximum(self._low, inner_lo),
                                  np.minimum(self._high, inner_hi))
            clear = self._clear(q, w, lowest)
            yield SEARCHING
            if clear:
                for sigma_x, x in goals:
                    if self._clear(w, x, floor_of(sigma_x)):
                        yield [w, x]
                        return
                    yield SEARCHING
