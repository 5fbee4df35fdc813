"""The real-time Cartesian controller: ``Controller.step`` once per control cycle.

Pure Python around one compiled kernel call (``kernels.control.control_step``);
no ROS.  Typical use::

    robot = Robot.from_urdf(path, "panda_link0", "panda_hand_tcp")
    ctl = Controller(robot, ControllerParams())
    ctl.warm_up()                                   # compile before the first cycle
    while running:
        res = ctl.step(q_measured, T_base_target, dt)   # or a (6,) twist, or None
        send(res.dq_command)                        # or res.q_command

or, allocating nothing per cycle, into one ``StepOutput`` that every call overwrites::

    out = ctl.new_output()
    while running:
        ctl.step_into(q_measured, T_base_target, dt, out)
        send(out.dq_command)                        # valid until the next step_into

The control law, the safety states and every parameter are described in
docs/controller.md.  Runtime events (singularity, joint limit, stale or bad
input) never raise: they are reported in ``StepResult.state`` and ``reason``.
"""

from __future__ import annotations

import struct
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.fallback import SEARCHING, JointPathFinder
from jacobian_ik.kernels import codes as C
from jacobian_ik.kernels import control as K
from jacobian_ik.kernels import layout as L
from jacobian_ik.kernels.lookahead import sigma_lipschitz
from jacobian_ik.params import PARAMETER_SPECS, ControllerParams, JointLimits
from jacobian_ik.safety import (
    COLLISION_REASONS,
    FIXED_REASONS,
    LIMITED_TEXT,
    SafetyState,
    reason_text,
)
from jacobian_ik.step_output import StepOutput

if TYPE_CHECKING:
    from jacobian_ik.collision.model import CollisionModel
    from jacobian_ik.collision.scene import Scene
    from jacobian_ik.robot import Robot

__all__ = ["Controller", "StepResult", "StepOutput", "SafetyState"]

_STATES = tuple(SafetyState(i) for i in range(len(SafetyState)))
#: Whether a state says the cycle's inputs were valid and fresh (reset() needs that).
_VALID = tuple(state is not SafetyState.INVALID_INPUT and state is not SafetyState.STALE_INPUT
               for state in _STATES)

#: Marks, while an input is read, that q_measured has been read but the target not yet.
_Q_READ = -1

#: Largest dt [s] used for the limits and the position integration, in control periods:
#: a late cycle must not license a larger velocity change.
MAX_DT_PERIODS = 5.0

#: Joint-space fallbacks per pose goal; blocked once more, the goal is unreachable.
MAX_FALLBACKS = 2
#: A joint move heads for the next waypoint of its path once every joint is this
#: close to the current one [rad | m]: the arm passes waypoints without stopping.
WAYPOINT_PASS = 0.05

#: Most collision rows (pairs nearer than collision_influence_distance) in one cycle's QP;
#: with more pairs in range, the nearest ones.
MAX_COLLISION_ROWS = 16

#: cfg slots filled from the ControllerParams field of the same name.
_PARAM_SLOTS = tuple((getattr(L, "C_" + name.upper()), name)
                     for name, _meaning in L.CFG_SLOTS if name in PARAMETER_SPECS
                     and PARAMETER_SPECS[name].kind == "float")


class StepResult(NamedTuple):
    """Result of one control cycle (immutable; its arrays are this cycle's own copies,
    which later cycles do not touch).  Every number is finite.

    dq_command        Shape (n,): joint velocity command [rad/s | m/s].
    q_command         Shape (n,): position command for the end of this cycle
                      [rad | m], integrated from the last command and re-anchored on
                      the measured position (never a jump from it).
    state, reason     Safety state and its human-readable explanation.
    sigma_min, sigma_max, condition_number, manipulability:
                      of the task Jacobian at the measured position (condition number
                      capped at 1e12).
    speed_scale       0..1: share of the task twist this command delivers
                      ((J dq)·v/‖v‖²; 1 in a joint-space move).
    damping           λ of the damped least squares inverse this cycle.
    position_error    [m], orientation_error [rad]: of the tip to a pose target (0 else).
    goal_reached      both errors within the goal tolerances (pose target only).
    limited           comma-separated limits that shaped the command ("" if none):
                      cartesian_speed, singularity, joint_velocity, joint_acceleration,
                      joint_position, collision.
    min_distance      [m] smallest distance of a checked collision pair at the measured
                      position (exact below collision_influence_distance, a lower bound
                      above it; inf without collision geometry or in a rejected cycle).
    closest_pair      the two names of that pair (link, link or obstacle); ("", "")
                      when there is none.

    ``Controller.step_into`` writes the same fields into a reused ``StepOutput``
    instead (``StepOutput.to_result()`` makes a StepResult of one).
    """

    dq_command: np.ndarray
    q_command: np.ndarray
    state: SafetyState
    reason: str
    sigma_min: float
    sigma_max: float
    condition_number: float
    manipulability: float
    speed_scale: float
    damping: float
    position_error: float
    orientation_error: float
    goal_reached: bool
    limited: str
    min_distance: float
    closest_pair: tuple[str, str]


#: Builds a StepResult from the tuple of its fields (no argument parsing).
_new_result = tuple.__new__
#: Read by every cycle, as module globals (a module attribute costs one more lookup).
_control_cycle = K.control_cycle
_ndarray = np.ndarray
_ALL = slice(None)
# The texts by their code as the float the out block holds: a float key finds a float
# key faster than an int one.  (And a bound method: looking up the dict's get in the
# cycle allocated 72 bytes per call under CPython 3.11's tracemalloc.)
_fixed_reason = {float(code): text for code, text in FIXED_REASONS.items()}.get
_LIMITED_TEXT = {float(bits): text for bits, text in LIMITED_TEXT.items()}
_NO_PAIR = ("", "")


def result_of(out: StepOutput) -> StepResult:
    """A StepResult of ``out``'s values, with copies of its arrays (``step`` and
    ``StepOutput.to_result``)."""
    return _new_result(StepResult, (
        out.dq_command.copy(), out.q_command.copy(), out.state, out.reason,
        out.sigma_min, out.sigma_max, out.condition_number, out.manipulability,
        out.speed_scale, out.damping, out.position_error, out.orientation_error,
        out.goal_reached, out.limited, out.min_distance, out.closest_pair))

#: The out slots every cycle reads, in slot order: StepResult's float fields sigma_min
#: to orientation_error first (slots 0-7, in StepResult's order), then the others.
#: (Each float costs ~20 ns next to the kernel: the values of a formatted reason,
#: val1 and val2, are read only for those reasons, by _read_values, and _goal_logic
#: reads the whole out block.)
_READ_SLOTS = (L.O_SIGMA_MIN, L.O_SIGMA_MAX, L.O_COND, L.O_W, L.O_SCALE, L.O_LAMBDA,
               L.O_PERR, L.O_OERR, L.O_GOAL, L.O_LIMITED, L.O_REASON, L.O_BLOCKED,
               L.O_GOAL_EVENT, L.O_MIN_DISTANCE, L.O_PAIR)
assert _READ_SLOTS[:8] == tuple(range(8)) and list(_READ_SLOTS) == sorted(set(_READ_SLOTS))
#: Reads _READ_SLOTS from the out block into one tuple of floats, skipping the other
#: slots: fewer than 20 items, so CPython takes the tuple from its free list (and the
#: floats from theirs): nothing is allocated.
_read_out = struct.Struct("=" + "".join(
    ("" if slot == prev + 1 else f"{8 * (slot - prev - 1)}x") + "d"
    for prev, slot in zip((-1, *_READ_SLOTS), _READ_SLOTS))).unpack_from
assert len(_READ_SLOTS) < 20
assert L.O_VAL2 == L.O_VAL1 + 1
#: (val1, val2) of the out block.
_read_values = struct.Struct(f"={8 * L.O_VAL1}x2d").unpack_from
#: Positions in that tuple (step_into unpacks it whole, in this order).
(_R_SCALE, _R_PERR, _R_GOAL, _R_LIMITED, _R_REASON, _R_BLOCKED, _R_GOAL_EVENT,
 _R_MIN_DISTANCE, _R_PAIR) = (
    _READ_SLOTS.index(slot) for slot in (
        L.O_SCALE, L.O_PERR, L.O_GOAL, L.O_LIMITED, L.O_REASON, L.O_BLOCKED, L.O_GOAL_EVENT,
        L.O_MIN_DISTANCE, L.O_PAIR))
_BARRIER = float(C.R_BARRIER)
# The out slots _goal_logic reads from the out list, as module globals (kernels.layout's
# constants are module attributes of a module with __getattr__, read more slowly).
_O_NEW_GOAL, _O_BLOCKED, _O_PERR, _O_REASON = L.O_NEW_GOAL, L.O_BLOCKED, L.O_PERR, L.O_REASON
_O_POSE_CYCLE = L.O_POSE_CYCLE
#: The two commands are adjacent in the joints block (velocities, then positions):
#: step_into copies both at once.
assert L.J_Q_OUT == L.J_DQ_OUT + 1


class Controller:
    """Damped-least-squares Cartesian controller with a σ_min barrier, a joint-space
    fallback and a graded, recoverable safe stop.

    ``robot`` is a ``jacobian_ik.robot.Robot``; ``params`` a ``ControllerParams``
    (checked against the robot: per-joint tuples must have robot.dof values).
    ``scene``: static obstacles in the base frame (``collision.scene.Scene``; none by
    default, ``set_scene`` replaces it while running).  ``collision``: the robot's
    collision model (``collision.model.CollisionModel``); by default the one of
    the robot's URDF when it has ``<collision>`` elements, ``False`` for none.
    One instance per control loop; not thread-safe.

    Two ways to run a cycle, with the same arguments and bit-identical results:
    ``step()`` returns a new, immutable ``StepResult`` whose arrays are its own (keep
    it as long as you like); ``step_into(..., out)`` overwrites one ``StepOutput``
    made once by ``new_output()``, allocating nothing per cycle and spending about
    half of step's Python time around the kernel: for a loop that uses each result
    within its cycle (publishes it, logs numbers).  The next step_into overwrites
    ``out``: keep ``out.to_result()`` where a result must outlive the cycle.
    """

    def __init__(self, robot: Robot, params: ControllerParams | None = None,
                 scene: Scene | None = None,
                 collision: CollisionModel | bool | None = None) -> None:
        params = ControllerParams() if params is None else params
        if not isinstance(params, ControllerParams):
            raise ConfigurationError(
                f"params must be a ControllerParams, got {type(params).__name__}")
        self.robot = robot
        n = robot.dof
        self._n = n
        self._buf = np.zeros(L.buffer_size(n))
        v = L.python_views(self._buf, n)
        self._cfg = v["cfg"]
        self._mem = v["mem"]
        self._q_in = v["j_q_in"]
        self._dq_out = v["j_dq_out"]
        self._q_out = v["j_q_out"]
        self._q_goal = v["j_q_goal"]
        self._q_origin = v["j_q_origin"]
        self._q_shape = (n,)
        self._target = v["target"]
        self._pose_in = self._target.reshape(4, 4)
        self._twist_in = self._target[:6]
        self._out = v["out"]
        self._out_bytes = memoryview(self._out)     # read by _read_out
        # both commands, velocities then positions (one copy in step_into)
        self._commands = memoryview(v["joints"][L.J_DQ_OUT * n:(L.J_Q_OUT + 1) * n])
        self._own = StepOutput(n)                   # what step() runs step_into into
        v["placements"][:] = robot.placements.ravel()
        v["axes"][:] = robot.axes.ravel()
        v["types"][:] = robot.joint_types
        v["j_lower"][:] = robot.lower
        v["j_upper"][:] = robot.upper
        v["j_cont"][:] = robot.continuous
        bounded = robot.continuous == 0
        v["j_mid"][:] = np.where(bounded, 0.5 * (robot.lower + robot.upper), 0.0)
        v["j_half"][:] = np.where(bounded, 0.5 * (robot.upper - robot.lower), np.inf)
        v["j_q_valid"][:] = robot.q_mid
        self._views = v
        self._cfg[L.C_N] = n
        self._params: ControllerParams = params
        self._apply_params(params)
        self._rows = robot.task_rows(params.task)
        self._cfg[L.C_LIPSCHITZ] = sigma_lipschitz(robot.placements, robot.joint_types,
                                                   self._rows)
        self._fallback = JointPathFinder(robot, self._rows)
        self._planning = False                  # a fallback search or move is running
        self._blocked_search = False            # ... started because the goal was blocked
        self._fallbacks = 0                     # blocked fallbacks of this goal
        self._slide_time = 0.0                  # [s] this goal slid along the barrier
        self._slide_searched = False            # ... and searched for a joint path
        self._waypoints: list[np.ndarray] = []  # joint goals still to come
        self._paused = False
        self._last_state: SafetyState | None = None  # the last cycle's state (None: none yet)
        self._last_reason = ""                  # ... and its reason
        self._reason_key: tuple | None = None   # values the last formatted reason shows
        self._reason_text = ""                  # ... and its text
        self._fast = False      # inputs go straight to K.control_cycle (after warm_up)
        self._mem[L.M_ANCHOR] = K.ANCHOR_FIRST
        self._mem[L.M_BLOCK_PAIR] = -1.0
        if collision is None or collision is True:
            from jacobian_ik.collision.model import default_model
            collision = default_model(robot)
        self._collision: CollisionModel | None = collision or None
        self._scene: Scene | None = None
        self._model_geometry_cache: tuple | None = None   # (model, _model_geometry's value)
        self.set_scene(scene)

    # ------------------------------------------------------------------ geometry
    @property
    def collision_model(self) -> CollisionModel | None:
        """The robot's collision model (None: the controller checks no distances)."""
        return self._collision

    @property
    def scene(self) -> Scene | None:
        """The scene last given to ``set_scene`` (its obstacles as they were then)."""
        return self._scene

    @property
    def pair_names(self) -> tuple[str, ...]:
        """Name of every checked pair ("panda_link7 – table"), by pair index."""
        return self._pair_text

    def reason_pair(self) -> str:
        """The pair the last cycle's reason names ("panda_link7 – table"), "" when
        that reason is not about a collision pair."""
        o = self._out
        if int(o[L.O_REASON]) not in COLLISION_REASONS:
            return ""
        index = int(o[L.O_VAL2])
        names = self._pair_text
        return names[index] if 0 <= index < len(names) else ""

    def set_passive_positions(self, positions: dict[str, float]) -> None:
        """Move the geometry that hangs off the chain through joints outside it (a
        gripper's fingers; ``collision_model.passive_joints``) to ``positions``
        (joint name → [rad | m]) from the next cycle on.  Names that are not passive
        joints are ignored; without a collision model nothing changes."""
        model = self._collision
        if model is None or not model.passive_joints:
            return
        known = {name: float(v) for name, v in positions.items()
                 if name in model.passive_joints}
        if known:
            self._collision = model.with_passive_positions(known)
            self.set_scene(self._scene)

    def set_scene(self, scene: Scene | None) -> None:
        """Use the obstacles of ``scene`` (None: none) from the next cycle on.

        The pairs are every self pair of the collision model, then every capsule
        that moves with a joint against every obstacle.  The scene's arrays are
        copied: later changes to ``scene`` need another call.  Array operations
        only, nothing per pair in Python but its names (kept for the obstacle names
        seen before), and the model's part is kept while the model stays: about
        0.1 ms for 100 obstacles; no kernel is called, so nothing is compiled.
        """
        model = self._collision
        n = self._n
        caps, self_pairs, moving, moving_names, self_names, self_text, by_obstacle = \
            self._model_geometry(model)
        if scene is None or model is None:
            obstacles = np.zeros((0, 16))
            obstacle_names: tuple[str, ...] = ()
        else:
            obstacles = np.asarray(scene.array(), dtype=np.float64).reshape(-1, 16)
            obstacle_names = scene.names
        count = len(obstacles)
        scene_pairs = np.empty((len(moving) * count, 2), dtype=np.int64)
        scene_pairs[:, 0] = np.repeat(moving, count)             # capsule by capsule
        scene_pairs[:, 1] = np.tile(np.arange(-1, -1 - count, -1), len(moving))
        pairs = np.concatenate([self_pairs, scene_pairs])
        rows = 1 + min(MAX_COLLISION_ROWS, len(pairs))
        geo = np.zeros(L.geo_size(n, len(caps), count, len(pairs), rows))
        geo[L.G_CAPS] = len(caps)
        geo[L.G_OBSTACLES] = count
        geo[L.G_PAIRS] = len(pairs)
        geo[L.G_SELF_PAIRS] = len(self_pairs)
        geo[L.G_ROWS] = rows
        views = L.python_geo_views(geo, n)
        views["caps"][:] = caps
        views["obstacles"][:] = obstacles
        views["dist"][:, 0] = np.inf
        views["row_pair"][:] = -1.0
        if len(by_obstacle) > 2 * count + 256:     # names of obstacles long gone
            by_obstacle_now = {name: by_obstacle[name] for name in obstacle_names
                               if name in by_obstacle}
            by_obstacle.clear()
            by_obstacle.update(by_obstacle_now)
        for name in set(obstacle_names).difference(by_obstacle):
            # (capsule, name) and "capsule – name" for each moving capsule
            pair_names = tuple((capsule, name) for capsule in moving_names)
            by_obstacle[name] = (pair_names, tuple(map(" – ".join, pair_names)))
        blocks = list(map(by_obstacle.__getitem__, obstacle_names))
        # capsule by capsule, as the pairs: the transpose of the blocks
        self._pair_names = self_names + tuple(chain.from_iterable(
            zip(*map(itemgetter(0), blocks))))
        self._pair_text = self_text + tuple(chain.from_iterable(
            zip(*map(itemgetter(1), blocks))))
        self._reason_key = None
        self._scene = scene
        self._fallback.set_geometry(views["caps"], views["obstacles"], pairs, len(self_pairs))
        # one swap: a cycle sees the old arrays or the new ones
        self._geometry = (geo, pairs)

    def _model_geometry(self, model: CollisionModel | None) -> tuple:
        """The collision model's part of ``set_scene``: (capsules (G, 8), self pairs
        (S, 2), indices and names of the capsules that move with a joint, self pair
        names and texts, and {obstacle name: its pairs' names and texts} filled by
        set_scene); kept while the model stays the same object."""
        cached = self._model_geometry_cache
        if cached is not None and cached[0] is model:
            return cached[1]
        if model is None:
            caps = np.zeros((0, 8))
            names: tuple[str, ...] = ()
            self_pairs = np.zeros((0, 2), dtype=np.int64)
        else:
            caps = np.asarray(model.caps, dtype=np.float64)
            names = tuple(model.names)
            self_pairs = np.asarray(model.self_pairs, dtype=np.int64).reshape(-1, 2)
        moving = np.flatnonzero(caps[:, 0] >= 0.0)
        moving_names = tuple(names[i] for i in moving.tolist())
        self_names = tuple((names[i], names[j]) for i, j in self_pairs.tolist())
        self_text = tuple(map(" – ".join, self_names))
        by_obstacle: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {}
        value = (caps, self_pairs, moving, moving_names, self_names, self_text, by_obstacle)
        self._model_geometry_cache = (model, value)
        return value

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> ControllerParams:
        return self._params

    @property
    def state(self) -> SafetyState:
        """State of the last cycle (IDLE before the first)."""
        state = self._last_state
        return SafetyState.IDLE if state is None else state

    @property
    def joint_limits(self) -> JointLimits:
        """Resolved per-joint velocity and acceleration limits (``params.JointLimits``)."""
        return self._limits

    def _apply_params(self, p: ControllerParams) -> None:
        limits = p.resolve(self.robot)
        c = self._cfg
        for slot, name in _PARAM_SLOTS:
            c[slot] = getattr(p, name)
        c[L.C_SELF_COLLISION] = 1.0 if p.self_collision else 0.0
        c[L.C_POSE_TASK] = 1.0 if p.task == "pose" else 0.0
        c[L.C_DT_MAX] = MAX_DT_PERIODS / p.control_rate
        c[L.C_PERIOD] = 1.0 / p.control_rate
        self._views["j_vmax"][:] = limits.max_joint_velocity
        self._views["j_amax"][:] = limits.max_joint_acceleration
        self._limits = limits
        self._params = p
        self._reason_key = None     # reason texts show parameters
        # [m] a new pose goal farther than this starts a joint-space search (_new_goal)
        self._fallback_distance = p.joint_move_distance \
            if p.joint_fallback and p.joint_move_distance > 0.0 else np.inf

    def update_params(self, new_params: ControllerParams) -> None:
        """Switch to new parameters while running; only tunable fields may differ.

        Raises ``ConfigurationError`` naming the non-tunable fields that changed.
        """
        if not isinstance(new_params, ControllerParams):
            raise ConfigurationError(
                f"params must be a ControllerParams, got {type(new_params).__name__}")
        fixed = [name for name in self._params.changed_fields(new_params)
                 if not PARAMETER_SPECS[name].tunable]
        if fixed:
            tunable = sorted(name for name, spec in PARAMETER_SPECS.items() if spec.tunable)
            raise ConfigurationError(
                f"parameter(s) {', '.join(fixed)} cannot change while the controller runs; "
                f"tunable parameters are: {', '.join(tunable)}")
        self._apply_params(new_params)

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self) -> None:
        """Compile every kernel of the cycle and of the joint-space fallback (call
        before the first cycle; takes seconds the first time, milliseconds once
        numba's cache holds them)."""
        saved = self._buf.copy()
        q = self.robot.q_mid
        T = self.robot.fk(q)
        dt = 1.0 / self._params.control_rate
        self._fast = False
        self.step(q, T, dt)                     # the checked path (K.control_step)
        for target in (T, np.zeros(6), None):   # the direct path, each kind of target
            K.control_cycle(self._rows, self._buf, *self._geometry, q, target, dt, 0.0, 0.0,
                            False)
        # From now on an input of another type raises TypeError (then step takes the
        # checked path) instead of compiling inside a control cycle.
        K.control_cycle.disable_compile()
        self._fast = True
        self._fallback.warm_up()
        self._buf[:] = saved
        self._last_state = None

    def pause(self) -> None:
        """Decelerate and hold (state PAUSED) until ``resume()``."""
        self._paused = True

    def resume(self) -> None:
        """Leave PAUSED; motion restarts from the measured position."""
        if self._paused:
            self._paused = False
            self._anchor_on_next_measurement()

    @property
    def paused(self) -> bool:
        return self._paused

    def reset(self) -> tuple[bool, str]:
        """Clear a latched safe stop or an unreachable-goal verdict, if that is safe.
        Returns (ok, message).

        Safe means: the last cycle's inputs were valid and fresh, and σ_min at the
        last measured position exceeds sigma_resume.  The next cycle restarts from
        the measured position, at zero speed, and watches the goal's progress anew.
        Also restarts the frozen-measurement timer: a stop for a frozen measurement
        ends, and comes back after frozen_timeout of commanded motion if the
        measurement still does not change.
        """
        mem = self._mem
        frozen = mem[L.M_FROZEN_T] > 0.0
        mem[L.M_FROZEN_T] = 0.0        # a frozen measurement is timed afresh
        mem[L.M_FROZEN_TRAVEL] = 0.0
        mem[L.M_FROZEN_PEAK] = 0.0
        mem[L.M_FROZEN] = 0.0
        if mem[L.M_LATCH] == 0.0 and mem[L.M_UNREACHABLE] == 0.0:
            if frozen:
                return True, "frozen-measurement timer restarted; no safe stop is latched"
            return True, "no safe stop is latched"
        last = self._last_state
        if last is None or not _VALID[last]:
            state, reason = ("IDLE", "no cycle yet") if last is None \
                else (last.name, self._last_reason)
            return False, (f"cannot reset: the last input was {state} ({reason}); send a "
                           f"valid, fresh measurement first")
        sigma_min = float(self._out[L.O_SIGMA_MIN])
        if mem[L.M_LATCH] != 0.0 and not sigma_min > self._params.sigma_resume:
            return False, (f"cannot reset: sigma_min {sigma_min:.4g} <= sigma_resume "
                           f"{self._params.sigma_resume:g} at the measured position; command "
                           f"a motion that leaves the singularity")
        mem[L.M_LATCH] = 0.0
        mem[L.M_UNREACHABLE] = 0.0
        mem[L.M_JOINT_MOVE] = 0.0
        mem[L.M_HAVE_PREV_TARGET] = 0.0
        self._anchor_on_next_measurement()
        return True, f"safe stop cleared (sigma_min {sigma_min:.4g})"

    def _anchor_on_next_measurement(self) -> None:
        """Motion restarts from the measured position: the position command is
        re-anchored in the next motion cycle with a fresh measurement (if the command
        is at rest by then; see ``kernels.control._anchor``)."""
        if self._mem[L.M_ANCHOR] != K.ANCHOR_FIRST:
            self._mem[L.M_ANCHOR] = K.ANCHOR_FRESH

    # ------------------------------------------------------------------ the cycle
    def step(self, q_measured: ArrayLike, target: ArrayLike | None, dt: float, *,
             measurement_age: float = 0.0, target_age: float = 0.0,
             rejected: str | None = None) -> StepResult:
        """One control cycle.

        q_measured       Shape (n,): measured joint positions [rad | m].
        target           None (hold), a (4, 4) ``T_base_target`` (pose mode), or a (6,)
                         twist (v [m/s], ω [rad/s], base frame, linear first; servo mode).
                         A twist older than stale_timeout brakes (STALE_INPUT), then
                         holds (IDLE, "twist target expired").
        dt               [s] since the previous cycle (clamped to 5 control periods
                         for the limits).
        measurement_age  [s] how old q_measured is; target_age [s] how old the target is.
        rejected         None, or a short text saying why the caller rejected this
                         cycle's input (what and why, e.g. "target_pose frame_id 'world'
                         is not the base frame"): the cycle is INVALID_INPUT with that
                         reason; a finite q_measured is still kept as the last valid one.
        Malformed, non-finite or rejected input gives state INVALID_INPUT: the input
        is not used, the last command brakes within the acceleration limits and the
        position command continues from the last one (never a step).

        Returns a new ``StepResult`` (its arrays its own) every cycle.  A loop that
        uses each result only within its cycle can use ``step_into`` instead: the
        same cycle, written into one reused ``StepOutput``, allocating nothing.
        """
        out = self.step_into(q_measured, target, dt, self._own,
                             measurement_age=measurement_age, target_age=target_age,
                             rejected=rejected)
        return result_of(out)

    def new_output(self) -> StepOutput:
        """A ``StepOutput`` for ``step_into`` (for this robot's dof); make it once,
        before the loop.  Until its first cycle it holds state IDLE, reason "no
        cycle yet" and zeros."""
        return StepOutput(self._n)

    def step_into(self, q_measured: ArrayLike, target: ArrayLike | None, dt: float,
                  out: StepOutput, *, measurement_age: float = 0.0,
                  target_age: float = 0.0, rejected: str | None = None) -> StepOutput:
        """One control cycle, as ``step``, written into ``out`` (from ``new_output()``);
        returns ``out``.

        The arguments and the cycle are step()'s (step runs this one, into an output
        of its own, and copies that into its StepResult), and ``out`` ends up with the
        values of the StepResult step() would return, field by field.  It is
        overwritten in place: its two arrays (the same objects every cycle) and every
        field; the texts and pair tuples are the controller's cached objects.  Once
        warmed up, a cycle with float64 array inputs allocates nothing (no arrays,
        tuples or strings; tests/test_step_output.py counts it with tracemalloc).

        ``out`` holds this cycle's values only until the next step_into with it:
        keep ``out.to_result()`` (a StepResult with copies) or copies of its arrays
        for anything that must outlive the cycle.

        Raises ``ConfigurationError`` before running the cycle when ``out`` is not
        a StepOutput for this robot's dof (e.g. one of another controller's).
        """
        try:
            dof = out._dof
        except AttributeError:
            dof = None
        if dof != self._n:
            raise self._output_error(out)
        code = -1
        bad = ""
        if self._fast and rejected is None and type(q_measured) is _ndarray \
                and (target is None or type(target) is _ndarray):
            # float64 arrays of the right shapes go straight to the kernel, which
            # copies them (no Python copies); anything else takes the checked path.
            # (The geometry is read once: a set_scene swap is seen whole; and passed
            # as two arguments: *-unpacking it would build a list every call.)
            geo, pairs = self._geometry
            try:
                code = _control_cycle(self._rows, self._buf, geo, pairs, q_measured, target,
                                      dt, measurement_age, target_age, self._paused)
            except TypeError:
                # an input type warm_up() did not compile: this controller checks
                # its input in Python from now on (and never compiles in the loop)
                self._fast = False
        if code < 0:
            bad, code = self._checked_step(q_measured, target, dt, measurement_age,
                                           target_age, rejected)
        o = _read_out(self._out_bytes)
        if o[_R_GOAL_EVENT] != 0.0 or self._planning:
            if o[_R_BLOCKED] == 0.0 and o[_R_REASON] != _BARRIER and not self._planning \
                    and o[_R_PERR] <= self._fallback_distance:
                # A goal event neither blocked nor at the barrier is a new pose goal;
                # near and with no fallback running (each cycle of a streamed target),
                # all _goal_logic would do is _new_goal's resets: here.
                self._fallbacks = 0
                self._slide_time = 0.0
                self._slide_searched = False
            else:
                self._goal_logic(self._out.tolist(), dt)
        reason = _fixed_reason(o[_R_REASON])
        if reason is None:
            val1, val2 = _read_values(self._out_bytes)
            key = (o[_R_REASON], val1, val2, o[_R_SCALE], bad)
            if key == self._reason_key:
                reason = self._reason_text
            else:
                reason = reason_text(int(key[0]), key[1], key[2], self._params,
                                     self.robot.joint_names, key[3], bad, self._pair_text)
                self._reason_key = key
                self._reason_text = reason
        self._last_state = out.state = _STATES[code]
        self._last_reason = out.reason = reason
        out._into[_ALL] = self._commands        # both commands, one copy
        (out.sigma_min, out.sigma_max, out.condition_number, out.manipulability,
         out.speed_scale, out.damping, out.position_error, out.orientation_error,
         goal, limited, _reason, _blocked, _event, out.min_distance, pair) = o
        out.goal_reached = goal != 0.0
        out.limited = _LIMITED_TEXT[limited]
        out.closest_pair = _NO_PAIR if pair < 0.0 else self._pair_names[int(pair)]
        return out

    def _output_error(self, out: object) -> ConfigurationError:
        dof = getattr(out, "_dof", None)
        what = f"a StepOutput for {dof} joints" if dof is not None \
            else f"a {type(out).__name__}"
        return ConfigurationError(
            f"step_into: out must be a StepOutput for this robot's {self._n} joints "
            f"(valid: this controller's new_output(), or StepOutput({self._n})); got {what}",
            parameter="out", value=dof, choices=(self._n,))

    def _goal_logic(self, o: list[float], dt: float) -> None:
        """The joint-space fallback's part of a cycle (``o``: the out block): on a
        pose cycle, a new goal, a blocked goal or a slide along the barrier may start
        a search, and a running search or move advances; any other cycle ends it."""
        if o[_O_POSE_CYCLE] != 0.0:
            if o[_O_NEW_GOAL] != 0.0:
                self._new_goal(self._pose_in, o[_O_PERR])
            elif o[_O_BLOCKED] != 0.0 and not self._blocked_search:
                self._start_fallback(self._pose_in)
            elif o[_O_REASON] == C.R_BARRIER and not self._planning:
                self._slide(self._pose_in, float(dt))  # (a number: the kernel took it)
            if self._planning:
                self._advance_fallback()
        elif self._planning:
            self._stop_fallback(False)

    def _checked_step(self, q_measured: ArrayLike, target: ArrayLike | None, dt: float,
                      measurement_age: float, target_age: float,
                      rejected: str | None) -> tuple[str, int]:
        """The cycle for any input: checked and copied here, then the kernel.  Returns
        (text of a malformed input, state code)."""
        mode = C.MODE_BAD
        bad = ""
        try:
            dt = float(dt)
            measurement_age = float(measurement_age)
            target_age = float(target_age)
            shape = q_measured.shape if type(q_measured) is np.ndarray \
                else np.shape(q_measured)
            if shape != self._q_shape:
                raise ValueError(f"q_measured must have shape ({self._n},), got {shape}")
            self._q_in[:] = q_measured
            mode = _Q_READ
            if target is None:
                mode = C.MODE_HOLD
            else:
                shape = target.shape if type(target) is np.ndarray else np.shape(target)
                if shape == (4, 4):
                    self._pose_in[:] = target
                    mode = C.MODE_POSE
                elif shape == (6,):
                    self._twist_in[:] = target
                    mode = C.MODE_TWIST
                else:
                    mode = C.MODE_BAD_TARGET
                    bad = (f"target must be None, a (4, 4) pose or a (6,) twist; got shape "
                           f"{shape}")
        except (TypeError, ValueError) as exc:
            bad = f"malformed input: {exc}"
            mode = C.MODE_BAD_TARGET if mode == _Q_READ else C.MODE_BAD
            if not isinstance(dt, float):
                dt = 0.0
            if not isinstance(measurement_age, float):
                measurement_age = 0.0
            if not isinstance(target_age, float):
                target_age = 0.0
        if rejected is not None and mode != C.MODE_BAD:
            mode = C.MODE_BAD_TARGET
            bad = str(rejected) or "input rejected"
        code = K.control_step(self._rows, self._buf, *self._geometry, mode, dt,
                              measurement_age, target_age, self._paused)
        return bad, code

    def _new_goal(self, T_base_target: np.ndarray, position_error: float) -> None:
        """A new pose goal: any fallback of the last one ends; a far goal (position
        error [m] above joint_move_distance) starts a search, ahead of any blockage,
        while the arm starts toward the goal in Cartesian space: it previews the
        Cartesian route and, where σ_min would fall toward the barrier on it, looks
        for a joint-space path that keeps σ_min up."""
        if self._planning:      # (else nothing runs: the kernel ended any joint move)
            self._stop_fallback(False)
        self._fallbacks = 0
        self._slide_time = 0.0                  # [s] spent sliding along the barrier
        self._slide_searched = False
        if position_error > self._fallback_distance:   # (joint_fallback on, > 0)
            self._planning = True
            self._fallback.start(self._q_in, T_base_target, self._params, preview=True)

    def _slide(self, T_base_target: np.ndarray, dt: float) -> None:
        """The pose goal's Cartesian motion slides along the σ_min barrier: after
        stall_timeout of it (once per goal), search for a straight joint path that
        keeps σ_min up and along which the tip travels at most MAX_DETOUR times the
        distance to the goal (else the slide goes on)."""
        self._slide_time += dt
        if self._slide_time >= self._params.stall_timeout and not self._slide_searched \
                and self._params.joint_fallback:
            self._slide_searched = True
            self._planning = True
            self._fallback.start(self._q_in, T_base_target, self._params, self._q_origin)

    def _start_fallback(self, T_base_target: np.ndarray) -> None:
        """The pose goal makes no progress: search (one slice per cycle while the arm
        holds) for a joint-space path that keeps σ_min up, or, with joint_fallback off,
        after MAX_FALLBACKS for this goal or when a joint move is itself blocked,
        declare the goal unreachable (effective from the next cycle)."""
        mem = self._mem
        if mem[L.M_UNREACHABLE] != 0.0:
            return
        self._fallbacks += 1
        if not self._params.joint_fallback or self._fallbacks > MAX_FALLBACKS \
                or mem[L.M_JOINT_MOVE] != 0.0:
            self._stop_fallback(True)
            return
        self._planning = True
        self._blocked_search = True
        self._waypoints = []
        self._fallback.start(self._q_in, T_base_target, self._params, self._q_origin,
                             blocked=True)

    def _stop_fallback(self, unreachable: bool) -> None:
        mem = self._mem
        self._planning = False
        self._blocked_search = False
        self._waypoints = []
        self._fallback.stop()
        if mem[L.M_JOINT_MOVE] != 0.0 or unreachable:
            mem[L.M_BEST_ERROR] = np.inf
            mem[L.M_STALL] = 0.0
        mem[L.M_JOINT_MOVE] = 0.0
        if unreachable:
            mem[L.M_UNREACHABLE] = K.UNREACHABLE_COLLISION \
                if mem[L.M_BLOCKED_KIND] == K.BLOCKED_COLLISION else 1.0

    def _advance_fallback(self) -> None:
        """One cycle of a running fallback: a search slice, or the next waypoint."""
        mem = self._mem
        if mem[L.M_JOINT_MOVE] != 0.0:          # moving; the kernel says when it arrives
            if self._waypoints and np.max(np.abs(self._q_goal - self._q_in)) < WAYPOINT_PASS:
                self._next_waypoint()
            return
        if self._out[L.O_GOAL] != 0.0:
            self._stop_fallback(False)          # reached in Cartesian space meanwhile
            return
        if self._fallback.searching:
            result = self._fallback.step()
            if result is SEARCHING:
                return
            if result is None:
                self._stop_fallback(self._blocked_search)
                return
            self._waypoints = list(result)
        if not self._waypoints:                 # arrived: the pose task takes over
            self._planning = False
            self._blocked_search = False
            return
        self._next_waypoint()

    def _next_waypoint(self) -> None:
        mem = self._mem
        self._q_goal[:] = self._waypoints.pop(0)
        mem[L.M_JOINT_MOVE] = 1.0
        mem[L.M_BEST_ERROR] = np.inf
        mem[L.M_STALL] = 0.0
