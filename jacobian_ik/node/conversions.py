"""ROS message → array conversion, with validation, for the controller node.

Every reader writes into an array the caller preallocated and returns an
``InputCheck``: ``ok`` and, when not ok, a one-line ``reason`` for the status
topic.  Nothing here raises on bad message content; a bad message is a state
(INVALID_INPUT), never an exception in a callback.  Joint states are merged by
``jacobian_ik.node.joint_states``.

Conventions: poses and twists are in the chain's base frame; a message header
``frame_id`` must be the base link or empty (empty means the base frame).
Twists are ``(vx, vy, vz, wx, wy, wz)`` [m/s, rad/s], linear first.  Joint
positions are in the chain's joint order [rad | m].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from jacobian_ik.rotations import quaternion_to_matrix

if TYPE_CHECKING:
    from geometry_msgs.msg import PoseStamped, TwistStamped

    from jacobian_ik.robot import Robot

#: A target quaternion whose norm differs from 1 by at most this much is
#: normalised; a larger deviation (zero, garbage) rejects the message.
QUATERNION_NORM_TOLERANCE = 0.01


@dataclass(frozen=True)
class InputCheck:
    """Outcome of reading one message: ``ok`` or not, and why not.

    ``ignored`` marks a message that is not about this arm at all (a
    /joint_states message naming none of the chain's joints, see
    ``node.joint_states``): it is neither used nor an error.
    """

    ok: bool
    reason: str = ""
    ignored: bool = False


ACCEPTED = InputCheck(True)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def check_frame(frame_id: str, base_link: str, what: str) -> InputCheck:
    """A header frame must be the base link or empty (= the base link)."""
    if frame_id in ("", base_link):
        return ACCEPTED
    return InputCheck(False, f"{what} frame_id '{frame_id}' is not the base frame "
                             f"'{base_link}' (or empty); message rejected")


def chain_reach(robot: Robot) -> float:
    """Upper bound [m] on the tip's distance from the base over all joint values:
    the sum of the chain's link offsets plus the travel of prismatic joints."""
    offsets = np.linalg.norm(np.asarray(robot.placements)[:, :3, 3], axis=1).sum()
    prismatic = np.asarray(robot.joint_types) != 0
    travel = np.maximum(np.abs(robot.lower[prismatic]), np.abs(robot.upper[prismatic]))
    travel = travel[np.isfinite(travel)].sum() if travel.size else 0.0
    return float(offsets + travel)


def read_pose(msg: PoseStamped, base_link: str, max_distance: float,
              T_out: np.ndarray) -> InputCheck:
    """``geometry_msgs/PoseStamped`` → ``T_base_target`` (4, 4) in ``T_out``.

    Rejected: a frame other than the base link (or empty), non-finite numbers,
    a position farther than ``max_distance`` [m] from the base origin, a
    quaternion whose norm is not within ``QUATERNION_NORM_TOLERANCE`` of 1
    (a small deviation is normalised).  ``T_out`` is written only when accepted.
    """
    check = check_frame(msg.header.frame_id, base_link, "target_pose")
    if not check.ok:
        return check
    p = msg.pose.position
    o = msg.pose.orientation
    if not _finite(p.x, p.y, p.z, o.x, o.y, o.z, o.w):
        return InputCheck(False, f"target_pose has non-finite numbers: position "
                                 f"({p.x}, {p.y}, {p.z}), orientation "
                                 f"({o.x}, {o.y}, {o.z}, {o.w})")
    distance = math.hypot(p.x, p.y, p.z)
    if distance > max_distance:
        return InputCheck(False, f"target_pose position is {distance:.4g} m from the base, "
                                 f"beyond {max_distance:.3g} m (twice the arm's reach)")
    norm = math.hypot(o.x, o.y, o.z, o.w)
    if not abs(norm - 1.0) <= QUATERNION_NORM_TOLERANCE:
        return InputCheck(False, f"target_pose quaternion has norm {norm:.4g}; it must be 1 "
                                 f"within {QUATERNION_NORM_TOLERANCE}")
    quaternion_to_matrix(o.x / norm, o.y / norm, o.z / norm, o.w / norm, T_out)
    T_out[0, 3] = p.x
    T_out[1, 3] = p.y
    T_out[2, 3] = p.z
    T_out[3, 0] = 0.0
    T_out[3, 1] = 0.0
    T_out[3, 2] = 0.0
    T_out[3, 3] = 1.0
    return ACCEPTED


def read_twist(msg: TwistStamped, base_link: str, twist_out: np.ndarray) -> InputCheck:
    """``geometry_msgs/TwistStamped`` → twist (6,) [m/s, rad/s] in ``twist_out``.

    Rejected: a frame other than the base link (or empty), non-finite numbers.
    Large finite values are accepted: the controller scales the twist down to
    its speed limits.  ``twist_out`` is written only when accepted.
    """
    check = check_frame(msg.header.frame_id, base_link, "target_twist")
    if not check.ok:
        return check
    v = msg.twist.linear
    w = msg.twist.angular
    if not _finite(v.x, v.y, v.z, w.x, w.y, w.z):
        return InputCheck(False, f"target_twist has non-finite numbers: linear "
                                 f"({v.x}, {v.y}, {v.z}), angular ({w.x}, {w.y}, {w.z})")
    twist_out[0] = v.x
    twist_out[1] = v.y
    twist_out[2] = v.z
    twist_out[3] = w.x
    twist_out[4] = w.y
    twist_out[5] = w.z
    return ACCEPTED
