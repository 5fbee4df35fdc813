"""Joint-space fallback: a way to a pose goal that the Cartesian path cannot reach.

The controller asks a ``JointPathFinder`` for a joint-space path to a configuration
that reaches the pose goal in three cases:

* a new far goal (farther than joint_move_distance): the search first previews the
  Cartesian route (the straight line, IK-followed from the arm's configuration) and
  ends at once if σ_min stays up along it; otherwise it takes the straight joint
  path along which the tip travels least, or one through a waypoint;
* the task slides along the σ_min barrier for stall_timeout: a straight joint path
  along which the tip travels at most MAX_DETOUR times the distance to the goal;
* the goal is blocked (no progress for stall_timeout; the arm holds): the first
  admissible path of any kind.

Candidates: IK solutions of the goal (``jacobian_ik.ik``), seeded from the current
configuration, from where the goal began and around it, and from random ones (other
solution branches), each joint turned by whole turns toward the current position
where its limits allow; the straight joint-space path to each, or back to where the
arm was when the goal arrived and from there to it; two-segment paths through a
waypoint that moves one group of joints first (the first half of the chain, then
the second, or the reverse) or through a random configuration.

A path is accepted when every bounded joint of its end lies inside the
joint_limit_margin and σ_min stays above ``max(guard, 0.95·min(sigma_warn, σ_min
here, σ_min at the goal))`` at samples at most SAMPLE_SPACING apart (and at least
PATH_SAMPLES per segment), the guard being 1.05 times the look-ahead's
(1.1·sigma_stop), or, for an arm already held lower (on the barrier), 0.97·σ_min
here but never below the look-ahead's own guard: above sigma_warn wherever the
start and the goal are, never deeper into a singularity than they are, never where
the look-ahead would brake; and every checked collision pair of the controller's
geometry (``set_geometry``: self pairs with self_collision, capsule × obstacle)
stays PATH_CLEARANCE beyond collision_stop_distance at the same samples (or, for a
segment that starts nearer, DISTANCE_HOLD times its start's distance, never below
collision_stop_distance).

The search is time-sliced: ``start`` sets it up and each ``step`` (one per control
cycle) does one IK solve, or path checks until SLICE_SAMPLES σ_min samples are
spent, so no control cycle is held up.  The controller then moves along the path
(state JOINT_MOVE; it passes intermediate waypoints without stopping) under the
same limits, barrier and look-ahead as any other motion.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from jacobian_ik.ik import ATTEMPT_ITERATIONS, IkSolver
from jacobian_ik.kernels.distance import path_min_distance
from jacobian_ik.kernels.kinematics import pose_error
from jacobian_ik.kernels.lookahead import LOOKAHEAD_MARGIN, path_min_sigma, sigma_at
from jacobian_ik.rotations import axis_rotation

if TYPE_CHECKING:
    from jacobian_ik.params import ControllerParams
    from jacobian_ik.robot import Robot

#: A path is accepted only where every checked collision pair stays this far [m]
#: beyond collision_stop_distance at its samples (the collision rows keep the arm
#: off the stop distance between them).
PATH_CLEARANCE = 0.01
#: A path segment that starts nearer than collision_stop_distance + PATH_CLEARANCE
#: (an arm sliding along a collision row) may keep its pairs at this fraction of its
#: start's distance, never nearer than collision_stop_distance: never deeper into a
#: collision than it is, as for σ_min (else no path could leave a collision row).
DISTANCE_HOLD = 0.97
#: Points at which σ_min is checked along each path segment.
PATH_SAMPLES = 24
#: IK solutions tried: from the current configuration, from where the goal began,
#: then alternately from around the latter and from random configurations within
#: the limits (other solution branches).
IK_CANDIDATES = 24
#: Standard deviations [rad | m] of the seeds around where the goal began, in turn.
SEED_SPREAD = (0.3, 0.8, 1.5)
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
#: Its type, for annotations.
Searching = Literal[_Searching.SEARCHING]
#: Largest distance [rad | m] (∞-norm) between σ_min samples along a path.
SAMPLE_SPACING = 0.02
#: σ_min samples (≈ 2–3 µs each) a search slice may spend on path checks.
SLICE_SAMPLES = 64
#: Points of a straight joint path at which the tip's travel is summed.  A search
#: before any blockage takes, of the straight paths found, the shortest for the tip;
#: one while the task slides along the barrier only if the tip's way is at most
#: MAX_DETOUR times the distance to the goal (the slide itself still progresses).
DETOUR_SAMPLES = 16
MAX_DETOUR = 1.5
#: Spacing [m] of the poses at which a search ahead previews the Cartesian route (the
#: straight line to the goal, the rotation turning uniformly about one axis), at
#: most ROUTE_POINTS of them, each solved by IK from the last one's configuration
#: within ROUTE_ITERATIONS iterations (no restarts: the route the task would follow).
ROUTE_SPACING = 0.02
ROUTE_POINTS = 100
ROUTE_ITERATIONS = 12
#: σ_min samples of a slice's budget (SLICE_SAMPLES) one route point's IK solve counts as.
ROUTE_SOLVE_SAMPLES = 8
#: The previewed route is clear while σ_min ≥ this times the path guard: above
#: where the barrier would hold the task's motion.
ROUTE_FLOOR = 1.1
#: A route step longer than this [rad | m] (∞-norm) is a jump: not the task's route.
ROUTE_JUMP = 0.3


def samples_between(a: np.ndarray, b: np.ndarray) -> int:
    """σ_min samples needed along a → b: one per SAMPLE_SPACING (∞-norm), at least 2."""
    return max(2, int(np.ceil(float(np.max(np.abs(b - a))) / SAMPLE_SPACING)))


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
        self._no_step = np.zeros(n)
        self._rng = np.random.default_rng(0)
        bounded = robot.continuous == 0
        self._low = np.where(bounded, robot.lower, -np.pi)
        self._high = np.where(bounded, robot.upper, np.pi)
        self._search: Iterator | None = None
        self._spent = 0          # σ_min samples spent in this slice
        self.set_geometry(np.zeros((0, 8)), np.zeros((0, 16)), np.zeros((0, 2), np.int64), 0)
        self._pairs = self._all_pairs
        self._distance_floor = 0.0
        self._distance_stop = 0.0

    def set_geometry(self, caps: np.ndarray, obstacles: np.ndarray, pairs: np.ndarray,
                     self_pairs: int) -> None:
        """The collision geometry the paths are checked against
        (``kernels.distance``): capsules Shape (G, 8), obstacles (O, 16), pairs
        (P, 2), the first ``self_pairs`` of them self pairs (checked with
        self_collision only); from the next search on."""
        self._caps = caps
        self._obstacles = obstacles
        self._all_pairs = pairs
        self._self_pairs = self_pairs
        self._world = np.zeros((len(caps), 7))
        self._dist = np.zeros((len(pairs), 10))

    def warm_up(self) -> None:
        """Compile every kernel the search uses (called directly: a warm-up search
        could end before reaching some of them, e.g. where σ_min is 0 at q_mid)."""
        r = self.robot
        q = r.q_mid.copy()
        x = np.clip(q + 0.1, self._low, self._high)
        T = r.fk(x)
        self._sigma(q)
        self._spent = 0
        for _ in self._clear(q, x, 0.0):
            pass
        path_min_distance(r.placements, r.axes, r.joint_types, q, x - q, 1, self._frames,
                          self._caps, self._world, self._obstacles, self._all_pairs, 0.0,
                          self._dist, self._probe)
        self._tip_travel(q, x)
        for _ in self._route(q, T, 0.0):
            pass
        self._solver.solve(T, q0=q, tol=IK_TOLERANCE, timeout=IK_TIMEOUT, seed=0,
                           max_iterations=IK_ITERATIONS)
        self._spent = 0

    # ------------------------------------------------------------------ search
    def start(self, q_live: np.ndarray, T_base_target: np.ndarray, params: ControllerParams,
              q_origin: np.ndarray | None = None, waypoints: bool = True,
              blocked: bool = False, preview: bool = False) -> None:
        """Begin a search for ``T_base_target`` (replaces any running one).

        ``q_live`` Shape (n,) is read at every slice: paths start where the arm is
        then (it may go on moving while a search ahead of a blockage runs).
        ``q_origin`` is where the arm was when the goal arrived (a waypoint back to a
        known place of the goal's solution branch); ``waypoints`` False tries only
        straight paths from the arm's position.  ``blocked`` True (the arm holds):
        the first admissible path is taken.  Otherwise the search runs while the
        arm moves: it takes, of the straight paths, the one along which the tip
        travels least; ``preview`` True (a new far goal) first previews the
        Cartesian route and ends the search at once if that keeps σ_min up (a joint
        move would only lengthen the tip's way), else it also tries waypoints;
        without it (the task slides along the barrier), only a straight path along
        which the tip travels at most MAX_DETOUR times the distance to the goal.
        """
        origin = np.array(q_live if q_origin is None else q_origin, dtype=np.float64)
        self._pairs = self._all_pairs if params.self_collision \
            else self._all_pairs[self._self_pairs:]
        self._distance_floor = params.collision_stop_distance + PATH_CLEARANCE
        self._distance_stop = params.collision_stop_distance
        self._search = self._candidates(q_live, np.array(T_base_target, dtype=np.float64),
                                        params, origin, waypoints, blocked, preview)

    def stop(self) -> None:
        """Drop the running search, if any."""
        self._search = None

    @property
    def searching(self) -> bool:
        return self._search is not None

    def step(self) -> list[np.ndarray] | Searching | None:
        """One slice of the search: SEARCHING, a list of joint waypoints (the last
        reaches the goal; the first starts from the arm's position at this slice),
        or None when no path was found."""
        if self._search is None:
            return None
        self._spent = 0
        result = SEARCHING
        while result is SEARCHING and self._spent < SLICE_SAMPLES:
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
        self._spent += 1
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

    def _clear(self, a: np.ndarray, b: np.ndarray,
               floor: float) -> Generator[Searching, None, bool]:
        """Whether σ_min stays ≥ floor, and every checked collision pair beyond
        collision_stop_distance + PATH_CLEARANCE (for a start nearer than that:
        beyond DISTANCE_HOLD times the start's distance and collision_stop_distance),
        along a → b (without a), sampled at
        least PATH_SAMPLES times and at most SAMPLE_SPACING apart; a generator (use
        ``ok = yield from self._clear(…)``) that checks at most SLICE_SAMPLES samples
        per slice, yielding SEARCHING between them, and stops at the first low one."""
        r = self.robot
        total = max(PATH_SAMPLES, samples_between(a, b))
        d = (b - a) / total
        done = 0
        distance_floor = self._distance_floor
        if len(self._pairs):
            self._spent += 1
            here = path_min_distance(r.placements, r.axes, r.joint_types, a, self._no_step, 1,
                                     self._frames, self._caps, self._world, self._obstacles,
                                     self._pairs, distance_floor, self._dist, self._probe)
            if here < distance_floor:
                distance_floor = max(self._distance_stop, DISTANCE_HOLD * here)
        while done < total:
            if self._spent >= SLICE_SAMPLES:
                yield SEARCHING
            chunk = min(total - done, max(1, SLICE_SAMPLES - self._spent))
            self._spent += chunk
            lowest = path_min_sigma(r.placements, r.axes, r.joint_types, a + d * done,
                                    d * chunk, self._rows, chunk, self._frames, self._J,
                                    self._scratch, self._probe)
            if lowest < floor:
                return False
            if len(self._pairs) and path_min_distance(
                    r.placements, r.axes, r.joint_types, a + d * done, d * chunk, chunk,
                    self._frames, self._caps, self._world, self._obstacles, self._pairs,
                    distance_floor, self._dist, self._probe) < distance_floor:
                return False
            done += chunk
        return True

    def _tip_travel(self, q: np.ndarray, x: np.ndarray) -> float:
        """Length [m] of the tip's way along the straight joint path q → x (sampled)."""
        fk = self.robot.fk
        self._spent += DETOUR_SAMPLES
        travel = 0.0
        p_prev = fk(q)[:3, 3]
        for i in range(1, DETOUR_SAMPLES + 1):
            p = fk(q + (x - q) * (i / DETOUR_SAMPLES))[:3, 3]
            travel += float(np.linalg.norm(p - p_prev))
            p_prev = p
        return travel

    def _route(self, q: np.ndarray, T: np.ndarray,
               floor: float) -> Generator[Searching, None, bool]:
        """Whether IK follows the Cartesian route from q to ``T`` continuously with
        σ_min ≥ floor: a generator (``ok = yield from self._route(…)``) yielding
        SEARCHING after each point."""
        T_here = self.robot.fk(q)
        p0, p1 = T_here[:3, 3], T[:3, 3]
        err = np.zeros(6)
        pose_error(T_here, T, err)      # err[3:]: the rotation vector from here to T
        angle = float(np.linalg.norm(err[3:]))
        axis = err[3:] / angle if angle > 0.0 else err[3:]
        count = min(ROUTE_POINTS, max(2, int(np.ceil(np.linalg.norm(p1 - p0) / ROUTE_SPACING))))
        pose = np.eye(4)
        x = q.copy()
        for i in range(1, count + 1):
            t = i / count
            pose[:3, :3] = axis_rotation(axis, angle * t) @ T_here[:3, :3]
            pose[:3, 3] = p0 + (p1 - p0) * t
            res = self._solver.solve(pose, q0=x, tol=IK_TOLERANCE * 10.0, timeout=IK_TIMEOUT,
                                     max_iterations=ROUTE_ITERATIONS)
            self._spent += ROUTE_SOLVE_SAMPLES
            if not res.success or np.max(np.abs(res.q - x)) > ROUTE_JUMP \
                    or self._sigma(res.q) < floor:
                return False
            x = res.q
            yield SEARCHING
        return True

    def _candidates(self, q_live: np.ndarray, T: np.ndarray, params: ControllerParams,
                    origin: np.ndarray, waypoints: bool, blocked: bool, preview: bool
                    ) -> Generator[list[np.ndarray] | Searching, None, None]:
        r = self.robot
        n = r.dof
        bounded = r.continuous == 0
        margin = params.joint_limit_margin
        inner_lo = np.where(bounded, r.lower + margin, -np.inf)
        inner_hi = np.where(bounded, r.upper - margin, np.inf)
        lookahead_guard = params.sigma_stop * (1.0 + LOOKAHEAD_MARGIN)
        sigma_here = self._sigma(q_live)
        guard = max(lookahead_guard, min(1.05 * lookahead_guard, 0.97 * sigma_here))
        goals: list[tuple[float, np.ndarray]] = []  # admissible IK solutions (σ_min there, q_goal)
        straight: list[tuple[float, np.ndarray]] = []   # clear straight paths (tip travel, q_goal)
        if preview and (yield from self._route(q_live.copy(), T,
                                                min(ROUTE_FLOOR * guard, 0.95 * sigma_here))):
            return                  # the Cartesian route keeps σ_min up: no joint move
        for attempt in range(IK_CANDIDATES):
            q = q_live.copy()
            base_floor = min(params.sigma_warn, self._sigma(q))
            if attempt < 2:
                seed = (q, origin)[attempt]
            elif attempt % 2:
                spread = SEED_SPREAD[(attempt // 2) % len(SEED_SPREAD)]
                seed = np.clip(origin + self._rng.normal(0.0, spread, n), self._low, self._high)
            else:
                seed = self._rng.uniform(self._low, self._high)
            res = self._solver.solve(T, q0=seed, tol=IK_TOLERANCE, timeout=IK_TIMEOUT,
                                     seed=attempt, max_iterations=IK_ITERATIONS)
            self._spent = SLICE_SAMPLES          # an IK solve is a slice of its own
            if res.success:
                x = self._nearest(q, res.q)
                sigma_x = self._sigma(x)
                floor = max(guard, 0.95 * min(base_floor, sigma_x))
                if not (np.any(x < inner_lo) or np.any(x > inner_hi)) and sigma_x >= floor \
                        and not any(np.allclose(x, g, atol=1e-6) for _s, g in goals):
                    if (yield from self._clear(q, x, floor)):
                        if blocked:
                            yield [x]
                            return
                        straight.append((self._tip_travel(q, x), x))
                    goals.append((sigma_x, x))
            yield SEARCHING
        if straight:
            travel, x = min(straight, key=lambda c: c[0])
            distance = float(np.linalg.norm(T[:3, 3] - self.robot.fk(q_live)[:3, 3]))
            if preview or travel <= MAX_DETOUR * distance:
                yield [x]
            return
        if not (blocked or preview):
            return              # sliding: straight paths only
        if not goals or not waypoints:
            return
        q = q_live.copy()
        base_floor = min(params.sigma_warn, self._sigma(q))

        def floor_of(sigma_x: float) -> float:
            return max(guard, 0.95 * min(base_floor, sigma_x))

        # two-segment paths
        back = yield from self._clear(q, origin, guard)     # back to where the goal began
        yield SEARCHING
        if back:
            for sigma_x, x in goals:
                if (yield from self._clear(origin, x, floor_of(sigma_x))):
                    yield [origin, x]
                    return
                yield SEARCHING
        half = n // 2
        for sigma_x, x in goals:         # one group of joints first, then the other
            for first in (slice(0, half), slice(half, n)):
                w = q.copy()
                w[first] = x[first]
                f = floor_of(sigma_x)
                clear = yield from self._clear(q, w, f)
                yield SEARCHING
                if clear and (yield from self._clear(w, x, f)):
                    yield [w, x]
                    return
                yield SEARCHING
        lowest = floor_of(min(sigma_x for sigma_x, _x in goals))
        for _ in range(RANDOM_WAYPOINTS):
            w = self._rng.uniform(np.maximum(self._low, inner_lo),
                                  np.minimum(self._high, inner_hi))
            clear = yield from self._clear(q, w, lowest)
            yield SEARCHING
            if clear:
                for sigma_x, x in goals:
                    if (yield from self._clear(w, x, floor_of(sigma_x))):
                        yield [w, x]
                        return
                    yield SEARCHING
