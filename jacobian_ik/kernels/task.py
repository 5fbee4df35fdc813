"""Task side of a control cycle: input checks and the task twist.

Pure ``jit.kernel`` functions, no allocation.

* pose mode ``v = [K_p (p_target − p_tip); K_o log(R_target R_tipᵀ)]``, servo mode
  ``v = twist``; scaled uniformly so ``‖v_lin‖ ≤ v_max`` and ``‖ω‖ ≤ ω_max``
  (position task: linear rows only).
"""

import math

from jacobian_ik.kernels.codes import (
    MODE_POSE,
    MODE_TWIST,
    R_BAD_AGE,
    R_BAD_DT,
    R_BAD_POSE,
    R_BAD_Q,
    R_BAD_TARGET,
)
from jacobian_ik.kernels.jit import kernel
from jacobian_ik.kernels.kinematics import pose_error

#: Largest error of RᵀR − I (each entry) and of the bottom row for a valid target pose.
POSE_TOLERANCE = 1e-6


@kernel
def task_twist(tw, target, frames, n, mode, pose_task, kp, ko, vlin, vang):
    """Task twist into tw[0:6] (pose error into tw[6:12] in pose mode); returns
    (position error, orientation error, clamped)."""
    perr = 0.0
    oerr = 0.0
    if mode == MODE_POSE:
        err = tw[6:12]
        T_tip = frames[n]
        T_target = target.reshape((4, 4))
        pose_error(T_tip, T_target, err)
        perr = math.sqrt(err[0] * err[0] + err[1] * err[1] + err[2] * err[2])
        oerr = math.sqrt(err[3] * err[3] + err[4] * err[4] + err[5] * err[5])
        for r in range(3):
            tw[r] = kp * err[r]
            tw[3 + r] = ko * err[3 + r]
    else:
        for r in range(6):
            tw[r] = target[r]
    if not pose_task:
        tw[3] = 0.0
        tw[4] = 0.0
        tw[5] = 0.0
    nv = math.sqrt(tw[0] * tw[0] + tw[1] * tw[1] + tw[2] * tw[2])
    nw = math.sqrt(tw[3] * tw[3] + tw[4] * tw[4] + tw[5] * tw[5])
    f = 1.0
    if nv * f > vlin:
        f = vlin / nv
    if nw * f > vang:
        f = vang / nw
    if f < 1.0:
        for r in range(6):
            tw[r] *= f
    return perr, oerr, f < 1.0


@kernel
def check_inputs(q, target, mode, dt, measurement_age, target_age, values):
    """Reason code (``R_BAD_*``) of an invalid input, or −1 when all are valid;
    ``values`` (2,) gets the reason's values."""
    for i in range(q.shape[0]):
        if not math.isfinite(q[i]):
            values[0] = i
            return R_BAD_Q
    if not (math.isfinite(dt) and dt > 0.0):
        values[0] = dt if math.isfinite(dt) else 0.0
        return R_BAD_DT
    if not (math.isfinite(measurement_age) and measurement_age >= 0.0
            and math.isfinite(target_age) and target_age >= 0.0):
        values[0] = measurement_age if math.isfinite(measurement_age) else -1.0
        values[1] = target_age if math.isfinite(target_age) else -1.0
        return R_BAD_AGE
    if mode == MODE_POSE or mode == MODE_TWIST:
        m = 16 if mode == MODE_POSE else 6
        for r in range(m):
            if not math.isfinite(target[r]):
                return R_BAD_TARGET
    if mode == MODE_POSE:
        worst = 0.0
        for a in range(3):
            for b in range(3):
                s = 0.0
                for r in range(3):
                    s += target[4 * r + a] * target[4 * r + b]
                e = abs(s - (1.0 if a == b else 0.0))
                if e > worst:
                    worst = e
        for c in range(3):
            if abs(target[12 + c]) > worst:
                worst = abs(target[12 + c])
        if abs(target[15] - 1.0) > worst:
            worst = abs(target[15] - 1.0)
        det = (target[0] * (target[5] * target[10] - target[6] * target[9])
               - target[1] * (target[4] * target[10] - target[6] * target[8])
               + target[2] * (target[4] * target[9] - target[5] * target[8]))
        if worst > POSE_TOLERANCE or det <= 0.0:
            values[0] = worst
            return R_BAD_POSE
    return -1


