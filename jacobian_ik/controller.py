"""The real-time Cartesian controller: ``Controller.step`` once per control cycle.

Pure Python around one compiled kernel call (``kernels.control.control_step``);
no ROS.  Typical use::

    robot = Robot.from_urdf(path, "panda_link0", "panda_hand_tcp")
    ctl = Controller(robot, ControllerParams())
    ctl.warm_up()                                   # compile before the first cycle
    while running:
        res = ctl.step(q_measured, T_base_target, dt)   # or a (6,) twist, or None
        send(res.dq_command)                        # or res.q_command

The control law, the safety states and every parameter are described in
docs/controller.md.  Runtime events (singularity, joint limit, stale or bad
input) never raise: they are reported in ``StepResult.state`` and ``reason``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.kernels import control as K
from jacobian_ik.params import PARAMETER_SPECS, ControllerParams
from jacobian_ik.safety import SafetyState, limited_text, reason_text

__all__ = ["Controller", "StepResult", "SafetyState"]

_STATES = tuple(SafetyState(i) for i in range(len(SafetyState)))

#: Marks, while an input is read, that q_measured has been read but the target not yet.
_Q_READ = -1

#: Largest dt [s] used for the limits and the position integration, in control periods:
#: a late cycle must not license a larger velocity change.
MAX_DT_PERIODS = 5.0


@dataclass(slots=True)
class StepResult:
    """Result of one control cycle.  Every number is finite.

    dq_command        Shape (n,): joint velocity command [rad/s | m/s].
    q_command         Shape (n,): position command for the end of this cycle
                      [rad | m], integrated from the last command and re-anchored on
                      the measured position (never a jump from it).
    state, reason     Safety state and its human-readable explanation.
    sigma_min, sigma_max, condition_number, manipulability:
                      of the task Jacobian at the measured position (condition number
                      capped at 1e12).
    speed_scale       0..1: commanded speed relative to the unlimited task command.
    damping           λ of the damped least squares inverse this cycle.
    position_error    [m], orientation_error [rad]: of the tip to a pose target (0 else).
    goal_reached      both errors within the goal tolerances (pose target only).
    limited           comma-separated limits that shaped the command ("" if none):
                      cartesian_speed, singularity, joint_velocity, joint_acceleration,
                      joint_position.
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


class Controller:
    """Damped-least-squares Cartesian controller with a graded, recoverable safe stop.

    ``robot`` is a ``jacobian_ik.robot.Robot``; ``params`` a ``ControllerParams``
    (checked against the robot: per-joint tuples must have robot.dof values).
    One instance per control loop; not thread-safe.
    """

    def __init__(self, robot, params: ControllerParams | None = None):
        params = ControllerParams() if params is None else params
        if not isinstance(params, ControllerParams):
            raise ConfigurationError(
                f"params must be a ControllerParams, got {type(params).__name__}")
        self.robot = robot
        n = robot.dof
        self._n = n
        (o_cfg, o_j, o_mem, o_tgt, o_out, _tw, o_pl, o_ax, o_ty, _fr, _jac, _sc,
         total) = K.layout(n)
        self._buf = np.zeros(total)
        buf = self._buf
        self._cfg = buf[o_cfg:o_cfg + K.NCFG]
        self._mem = buf[o_mem:o_mem + K.NMEM]
        self._joint = buf[o_j:o_j + K.NJB * n].reshape(K.NJB, n)
        self._q_in = self._joint[K.J_QIN]
        self._commands = self._joint[K.J_DQOUT:K.J_QOUT + 1]   # (2, n): dq, q commands
        self._q_shape = (n,)
        self._target = buf[o_tgt:o_tgt + 16]
        self._pose_in = self._target.reshape(4, 4)
        self._twist_in = self._target[:6]
        self._out = buf[o_out:o_out + K.NOUT]
        buf[o_pl:o_ax] = robot.placements.ravel()
        buf[o_ax:o_ty] = robot.axes.ravel()
        buf[o_ty:_fr] = robot.joint_types
        self._joint[K.J_LOWER] = robot.lower
        self._joint[K.J_UPPER] = robot.upper
        self._joint[K.J_CONT] = robot.continuous
        self._joint[K.J_QVALID] = robot.q_mid
        self._cfg[K.C_N] = n
        self._params = None
        self._apply_params(params)
        self._rows = robot.task_rows(params.task)
        self._cfg[K.C_LIPSCHITZ] = K.sigma_lipschitz(robot.placements, robot.joint_types,
                                                     self._rows)
        self._paused = False
        self._last_state = SafetyState.IDLE
        self._last_valid = False
        self._last_reason = "no cycle yet"
        self._mem[K.M_ANCHOR] = K.ANCHOR_FIRST

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> ControllerParams:
        return self._params

    @property
    def state(self) -> SafetyState:
        """State of the last cycle (IDLE before the first)."""
        return self._last_state

    @property
    def joint_limits(self):
        """Resolved per-joint velocity and acceleration limits (``params.JointLimits``)."""
        return self._limits

    def _apply_params(self, p: ControllerParams) -> None:
        limits = p.resolve(self.robot)
        c = self._cfg
        c[K.C_KP] = p.position_gain
        c[K.C_KO] = p.orientation_gain
        c[K.C_VLIN] = p.max_linear_speed
        c[K.C_VANG] = p.max_angular_speed
        c[K.C_LMAX] = p.lambda_max
        c[K.C_SDAMP] = p.sigma_damp
        c[K.C_SWARN] = p.sigma_warn
        c[K.C_SSTOP] = p.sigma_stop
        c[K.C_SRES] = p.sigma_resume
        c[K.C_FLOOR] = p.speed_scale_floor
        c[K.C_SRATE] = p.speed_scale_rate
        c[K.C_MARGIN] = p.joint_limit_margin
        c[K.C_STALE] = p.stale_timeout
        c[K.C_TOLP] = p.goal_position_tolerance
        c[K.C_TOLO] = p.goal_orientation_tolerance
        c[K.C_DRIFT] = p.max_command_drift
        c[K.C_POSE] = 1.0 if p.task == "pose" else 0.0
        c[K.C_DTMAX] = MAX_DT_PERIODS / p.control_rate
        c[K.C_PERIOD] = 1.0 / p.control_rate
        c[K.C_FROZEN] = p.frozen_timeout
        self._joint[K.J_VMAX] = limits.max_joint_velocity
        self._joint[K.J_AMAX] = limits.max_joint_acceleration
        self._limits = limits
        self._params = p

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
        """Compile every kernel of the cycle (call before the first cycle; takes a few
        seconds the first time, milliseconds once numba's cache holds them)."""
        saved = self._buf.copy()
        q = self.robot.q_mid
        T = self.robot.fk(q)
        self.step(q, T, 1.0 / self._params.control_rate)
        self.step(q, np.zeros(6), 1.0 / self._params.control_rate)
        self.step(q, None, 1.0 / self._params.control_rate)
        self._buf[:] = saved
        self._last_state = SafetyState.IDLE
        self._last_valid = False

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
        """Clear a latched safe stop, if that is safe.  Returns (ok, message).

        Safe means: the last cycle's inputs were valid and fresh, and σ_min at the
        last measured position exceeds sigma_resume.  The next cycle restarts from
        the measured position, at zero speed.  Also restarts the frozen-measurement
        timer: a stop for a frozen measurement ends, and comes back after
        frozen_timeout of commanded motion if the measurement still does not change.
        """
        frozen = self._mem[K.M_FROZEN_T] > 0.0
        self._mem[K.M_FROZEN_T] = 0.0        # a frozen measurement is timed afresh
        self._mem[K.M_FROZEN_TRAVEL] = 0.0
        self._mem[K.M_FROZEN_PEAK] = 0.0
        self._mem[K.M_FROZEN] = 0.0
        if self._mem[K.M_LATCH] == 0.0:
            if frozen:
                return True, "frozen-measurement timer restarted; no safe stop is latched"
            return True, "no safe stop is latched"
        if not self._last_valid:
            return False, (f"cannot reset: the last input was {self._last_state.name} "
                           f"({self._last_reason}); send a valid, fresh measurement first")
        sigma_min = float(self._out[K.O_SIGMIN])
        if not sigma_min > self._params.sigma_resume:
            return False, (f"cannot reset: sigma_min {sigma_min:.4g} <= sigma_resume "
                           f"{self._params.sigma_resume:g} at the measured position; command "
                           f"a motion that leaves the singularity")
        self._mem[K.M_LATCH] = 0.0
        self._anchor_on_next_measurement()
        return True, f"safe stop cleared (sigma_min {sigma_min:.4g})"

    def _anchor_on_next_measurement(self) -> None:
        """Motion restarts from the measured position: the position command is
        re-anchored in the next motion cycle with a fresh measurement (if the command
        is at rest by then; see ``kernels.control._anchor``)."""
        if self._mem[K.M_ANCHOR] != K.ANCHOR_FIRST:
            self._mem[K.M_ANCHOR] = K.ANCHOR_FRESH

    # ------------------------------------------------------------------ the cycle
    def step(self, q_measured, target, dt, *, measurement_age=0.0, target_age=0.0,
             rejected=None) -> StepResult:
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
        """
        mode = K.MODE_BAD
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
                mode = K.MODE_HOLD
            else:
                shape = target.shape if type(target) is np.ndarray else np.shape(target)
                if shape == (4, 4):
                    self._pose_in[:] = target
                    mode = K.MODE_POSE
                elif shape == (6,):
                    self._twist_in[:] = target
                    mode = K.MODE_TWIST
                else:
                    mode = K.MODE_BAD_TARGET
                    bad = (f"target must be None, a (4, 4) pose or a (6,) twist; got shape "
                           f"{shape}")
        except (TypeError, ValueError) as exc:
            bad = f"malformed input: {exc}"
            mode = K.MODE_BAD_TARGET if mode == _Q_READ else K.MODE_BAD
            if not isinstance(dt, float):
                dt = 0.0
            if not isinstance(measurement_age, float):
                measurement_age = 0.0
            if not isinstance(target_age, float):
                target_age = 0.0
        if rejected is not None and mode != K.MODE_BAD:
            mode = K.MODE_BAD_TARGET
            bad = str(rejected) or "input rejected"
        code = K.control_step(self._rows, self._buf, mode, dt, measurement_age, target_age,
                              self._paused)
        o = self._out.tolist()
        state = _STATES[code]
        reason = reason_text(int(o[K.O_REASON]), o[K.O_VAL1], o[K.O_VAL2], self._params,
                             self.robot.joint_names, o[K.O_SCALE], bad)
        self._last_state = state
        self._last_reason = reason
        self._last_valid = state is not SafetyState.INVALID_INPUT \
            and state is not SafetyState.STALE_INPUT
        commands = self._commands.copy()
        return StepResult(
            dq_command=commands[0],
            q_command=commands[1],
            state=state,
            reason=reason,
            sigma_min=o[K.O_SIGMIN],
            sigma_max=o[K.O_SIGMAX],
            condition_number=o[K.O_COND],
            manipulability=o[K.O_W],
            speed_scale=o[K.O_SCALE],
            damping=o[K.O_LAMBDA],
            position_error=o[K.O_PERR],
            orientation_error=o[K.O_OERR],
            goal_reached=o[K.O_GOAL] != 0.0,
            limited=limited_text(int(o[K.O_LIMITED])),
        )
