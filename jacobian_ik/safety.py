"""Safety states of the controller and the messages that explain them.

The state machine itself runs inside the control kernel
(``jacobian_ik.kernels.control.control_step``); this module names its states and
turns its reason codes into messages.  One state is reported every cycle:

``TRACKING``                 moving toward the target at full (limit-bounded) speed.
``APPROACHING_SINGULARITY``  σ_min < sigma_warn: speed scaled down smoothly, from 1 at
                             sigma_warn to speed_scale_floor at sigma_stop, and the
                             σ_min barrier lets the arm slide along its floor
                             (1.15·sigma_stop) toward the goal; also while the look-ahead
                             brakes, and 0.2 s after it last did.
``JOINT_MOVE``               the Cartesian path to a pose goal was blocked; the arm moves
                             in joint space to an IK solution along a path on which
                             σ_min stays up, then tracks the pose again.
``SAFE_STOP``                no admissible direction makes progress: the barrier holds a
                             pose goal and no joint-space path keeps σ_min up ("goal
                             unreachable without crossing a singularity", held until the
                             target changes or ``reset()``), a twist pushes into the
                             barrier, or σ_min fell below sigma_stop (latched: a command
                             whose probe step raises σ_min is allowed at reduced speed;
                             the latch clears once σ_min > sigma_resume or on ``reset()``).
                             The arm decelerates at its acceleration limits from the
                             measured position, then holds.
``INVALID_INPUT``            non-finite or malformed input (measurement, target, dt,
                             ages; a target pose that is not a rigid transform), or
                             input the caller rejected (``step(..., rejected=...)``):
                             the input is not used; decelerate and hold.
``STALE_INPUT``              the measurement (or, in servo mode, the twist target) is
                             older than stale_timeout, or the measurement is frozen
                             (bit-identical for frozen_timeout beyond its age while
                             the command moves): decelerate and hold.  An expired twist target
                             turns into IDLE once the arm has stopped.
``JOINT_LIMIT``              a measured joint is outside its URDF limits: decelerate and
                             hold; a command moving every such joint back inside is
                             allowed at reduced speed.  Also: the joint limit margins
                             block all progress (the pose goal is then handed to the
                             joint-space fallback, like a singularity).
``PAUSED``                   ``pause()`` was called: decelerate and hold until ``resume()``.
``IDLE``                     no target: decelerate and hold.

All stops brake along the current direction at the acceleration limits from the
last command (never a jump), and the position command integrates the braking
command (it is never re-anchored during a stop).  ``SafetyState.is_fault`` marks the
states that report a fault (``FAULT_STATES``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jacobian_ik.kernels import codes as K
from jacobian_ik.kernels.barriers import COLLISION_MARGIN
from jacobian_ik.kernels.control import BARRIER_MARGIN, WARN_HYSTERESIS
from jacobian_ik.kernels.lookahead import LOOKAHEAD_MARGIN
from jacobian_ik.kernels.task import POSE_TOLERANCE

if TYPE_CHECKING:
    from jacobian_ik.params import ControllerParams


class SafetyState(enum.IntEnum):
    """The controller's state, one per cycle (values are the kernel's codes)."""

    TRACKING = K.S_TRACKING
    APPROACHING_SINGULARITY = K.S_APPROACHING
    SAFE_STOP = K.S_SAFE_STOP
    INVALID_INPUT = K.S_INVALID
    STALE_INPUT = K.S_STALE
    JOINT_LIMIT = K.S_JOINT_LIMIT
    PAUSED = K.S_PAUSED
    IDLE = K.S_IDLE
    JOINT_MOVE = K.S_JOINT_MOVE
    APPROACHING_COLLISION = K.S_APPROACHING_COLLISION

    def __str__(self) -> str:
        return self.name

    @property
    def is_fault(self) -> bool:
        """True for the states that report a fault (``FAULT_STATES``): the arm stops
        because something is wrong, not because it was asked to."""
        return self in FAULT_STATES


#: States that report a fault: a singularity stop, rejected or stale input, a joint
#: outside its limits.  TRACKING, APPROACHING_SINGULARITY, PAUSED and IDLE are not.
FAULT_STATES = frozenset({SafetyState.SAFE_STOP, SafetyState.INVALID_INPUT,
                          SafetyState.STALE_INPUT, SafetyState.JOINT_LIMIT})


#: Names of the ``limited`` bits, in the order they are listed.
LIMIT_NAMES = (
    (K.L_CARTESIAN, "cartesian_speed"),
    (K.L_SINGULARITY, "singularity"),
    (K.L_VELOCITY, "joint_velocity"),
    (K.L_ACCELERATION, "joint_acceleration"),
    (K.L_POSITION, "joint_position"),
    (K.L_COLLISION, "collision"),
)

#: ``limited`` text of each bit mask: comma-separated names of the limits that shaped
#: the command ("" for none); also found by the mask as a float.
LIMITED_TEXT = {
    bits: ",".join(name for bit, name in LIMIT_NAMES if bits & bit)
    for bits in range(2 * K.L_COLLISION)
}


#: Message of each reason code; fields: v1, v2 (the kernel's values), p (params),
#: joint (name of joint v1), scale (speed scale), guard (look-ahead margin), bad.
_REASONS = {
    K.R_TRACKING: "tracking",
    K.R_GOAL: "goal reached",
    K.R_APPROACH: "sigma_min {v1:.4g} < sigma_warn {p.sigma_warn:g}: speed scaled to "
                  "{scale:.2f}",
    K.R_STOP_SIGMA: "sigma_min {v1:.4g} < sigma_stop {p.sigma_stop:g}",
    K.R_STOP_PREDICT: "sigma_min would fall to {v1:.4g} within the braking distance, below "
                      "sigma_stop {p.sigma_stop:g} + {guard:.0%} (now {v2:.4g})",
    K.R_BRAKING: "braking: sigma_min would fall to {v1:.4g} within the braking distance, "
                 "below sigma_stop {p.sigma_stop:g} + {guard:.0%} (now {v2:.4g})",
    K.R_AHEAD: "sigma_stop ahead: the look-ahead braked {v2:.2f} s ago (sigma_min {v1:.4g})",
    K.R_LATCHED: "holding: sigma_min {v1:.4g} <= sigma_resume {p.sigma_resume:g}; send a "
                 "command that leaves the singularity, or reset",
    K.R_LEAVING: "leaving the singularity at reduced speed: sigma_min {v1:.4g} -> {v2:.4g}",
    K.R_BAD_INPUT: "{bad}",
    K.R_BAD_Q: "measured position of joint '{joint}' is not finite",
    K.R_BAD_TARGET: "target has a non-finite value",
    K.R_BAD_POSE: "target pose is not a rigid transform (orthonormality error {v1:.3g} > "
                  "{tolerance:g}, or a reflection)",
    K.R_BAD_DT: "dt = {v1:g} s is not a positive finite time step",
    K.R_BAD_AGE: "measurement_age = {v1:g} s or target_age = {v2:g} s is not a non-negative "
                 "finite age",
    K.R_STALE_MEAS: "joint measurement is {v1:.3f} s old > stale_timeout {p.stale_timeout:g} s",
    K.R_STALE_TARGET: "twist target is {v1:.3f} s old > stale_timeout {p.stale_timeout:g} s",
    K.R_FROZEN: "joint measurement frozen for {ms:.0f} ms while commanding {v2:.2g} rad/s "
                "(frozen_timeout {p.frozen_timeout:g} s)",
    K.R_TARGET_EXPIRED: "twist target expired ({v1:.3f} s old > stale_timeout "
                        "{p.stale_timeout:g} s): holding",
    K.R_JOINT_OUT: "joint '{joint}' at {v2:.4f} is outside its limits",
    K.R_JOINT_LEAVING: "joint '{joint}' at {v2:.4f} is outside its limits; moving back at "
                       "reduced speed",
    K.R_PAUSED: "paused",
    K.R_IDLE: "no target: holding",
    K.R_APPROACH_BAND: "sigma_min {v1:.4g} is within the {hysteresis:.0%} hysteresis band "
                       "above sigma_warn {p.sigma_warn:g}: speed scaled to {scale:.2f}",
    K.R_BARRIER: "sliding along the sigma_min barrier (sigma_min {v1:.4g}, floor "
                 "{floor:.4g}): speed scaled to {scale:.2f}",
    K.R_BLOCKED_SIGMA: "no admissible direction makes progress: the sigma_min barrier "
                       "holds the arm (sigma_min {v1:.4g}, no progress for {v2:.2f} s)",
    K.R_BLOCKED_JOINT: "no admissible direction makes progress: joint '{joint}' is held at "
                       "its limit margin (no progress for {v2:.2f} s)",
    K.R_UNREACHABLE: "goal unreachable without crossing a singularity: no Cartesian "
                     "progress and no joint-space path that keeps sigma_min up; holding "
                     "(sigma_min {v1:.4g}); send another goal, or reset",
    K.R_JOINT_MOVE: "moving in joint space, along a path that keeps sigma_min up, to a "
                    "configuration that reaches the goal ({v1:.4f} rad to go)",
    K.R_COLLISION: "sliding along the collision barrier: {pair} at {v1:.3f} m (stop "
                   "distance {p.collision_stop_distance:g} m)",
    K.R_COLLISION_BRAKING: "braking: {pair} would come to {v1:.3f} m within the braking "
                           "distance, below the stop distance "
                           "{p.collision_stop_distance:g} m + {collision_margin_mm:g} mm",
    K.R_BLOCKED_COLLISION: "no admissible direction makes progress: blocked by {pair} at "
                           "{v1:.3f} m (stop distance {p.collision_stop_distance:g} m)",
    K.R_UNREACHABLE_COLLISION: "goal unreachable without collision: blocked by {pair} at "
                               "{v1:.3f} m; holding; send another goal, or reset",
}

#: The messages that have no fields, by reason code (also found by the code as a float);
#: the other codes need ``reason_text``.
FIXED_REASONS = {code: template for code, template in _REASONS.items() if "{" not in template}

#: Reasons whose v2 is the index of a collision pair.
COLLISION_REASONS = frozenset({K.R_COLLISION, K.R_COLLISION_BRAKING, K.R_BLOCKED_COLLISION,
                               K.R_UNREACHABLE_COLLISION})

#: Reasons whose v1 is a joint index.
_JOINT_REASONS = frozenset({K.R_BAD_Q, K.R_JOINT_OUT, K.R_JOINT_LEAVING, K.R_BLOCKED_JOINT})


def reason_text(code: int, val1: float, val2: float, params: ControllerParams,
                joint_names: Sequence[str], speed_scale: float, bad_input: str = "",
                pair_names: Sequence[str] = ()) -> str:
    """The human-readable reason of a cycle's state; ``pair_names`` names the
    collision pairs ("panda_link7 – table") by their index."""
    template = _REASONS[code]
    if "{" not in template:
        return template
    joint = joint_names[int(val1)] if code in _JOINT_REASONS else ""
    pair = ""
    if code in COLLISION_REASONS:
        index = int(val2)
        pair = pair_names[index] if 0 <= index < len(pair_names) else f"pair {index}"
    return template.format(v1=val1, v2=val2, ms=1e3 * val1, p=params, joint=joint, pair=pair,
                           scale=speed_scale, guard=LOOKAHEAD_MARGIN,
                           tolerance=POSE_TOLERANCE, hysteresis=WARN_HYSTERESIS,
                           floor=params.sigma_stop * (1.0 + BARRIER_MARGIN),
                           collision_margin_mm=1e3 * COLLISION_MARGIN,
                           bad=bad_input or "malformed input")
