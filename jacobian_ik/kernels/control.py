"""The control cycle kernel: one call per control cycle, no allocation.

``control_step`` runs the cycle of ``jacobian_ik.controller.Controller`` as a
sequence of phases, each a function of its own:

1. ``input_phase``      input checks; an invalid input brakes the last command
                        (``reject_phase``); the frozen-measurement watch.
2. ``kinematics_phase`` FK, Jacobian, σ_min/σ_max, damping and ∂σ_min/∂q at the
                        measured position.
3. ``case_phase``       which case the cycle is in (stale, paused, joint outside its
                        limits, latched safe stop, no target, a task).
4. ``twist_phase``      the task twist, the goal test and the progress watch.
5. ``bounds_phase``     the admissible box of joint velocities (velocity, acceleration
                        and position limits) and the braking command, which is always
                        inside it.
6. ``inverse_phase``    the joint velocity: a small QP (``kernels.qp``)
                        ``min ‖J dq − s·v‖² + λ²‖dq‖² + w‖dq − dq_sec‖²`` over the box,
                        with the σ_min barrier ``∇σ_min·dq ≥ −γ(σ_min − σ_b)``.
7. ``decision_phase``   the safety state machine.
8. ``lookahead_phase``  σ_min where the arm would come to rest: brake if too low.
9. ``integrate_phase``  the position command.

Everything it needs and keeps lives in one float64 array ``buf`` laid out by
``kernels.layout`` (one table), plus the int64 task ``rows``.  The control law and
the states are documented in docs/controller.md; the equations:

* DLS damping ``λ² = λ_max²(1 − (σ_min/σ_damp)²)`` below σ_damp; without the box and
  the barrier, and with w = 0, the QP's solution is ``dq = Jᵀ(JJᵀ + λ²I)⁻¹ s·v``.
* singularity scale ``s(σ) = f + (1 − f)·clip((σ − σ_stop)/(σ_warn − σ_stop), 0, 1)``
  (f = speed_scale_floor), rate-limited upward: ``s_k ≤ s_{k−1} + rate·dt``.
* barrier: ``σ_b = σ_stop (1 + BARRIER_MARGIN)``; in discrete time σ_min approaches
  σ_b no faster than ``(1 − γ dt)`` per cycle, so the arm slides along σ_b.
* secondary objective ``dq_sec = k_σ w(σ) ∇σ_min + k_l (q_mid − q)`` (w fades the σ
  term out between 2 and GRADIENT_RANGE × sigma_warn): for a redundant arm
  it is the null-space motion (J ignores it), elsewhere a small bias of weight w.
* box: ``max(−v_max, cap_lo, dq_prev − a_max dt) ≤ dq ≤ min(v_max, cap_hi, dq_prev +
  a_max dt)``, widened to contain the brake; ``cap`` from the position limits: toward
  a bound, the speed from which braking at a_max stops within the margin.
* look-ahead: σ at ``q + dq (2.5 dt + age + t_brake/2)`` (and halfway), and its
  first-order value ``σ + ∇σ·dq (2.5 dt + age + t_brake/2)``; below
  ``(1 + LOOKAHEAD_MARGIN) σ_stop`` the arm brakes now.
* progress: a pose goal whose task error has not improved by PROGRESS_FRACTION for
  stall_timeout is blocked; the Controller then looks for a joint-space path
  (JOINT_MOVE) or declares it unreachable (SAFE_STOP).
* brake (every stop, including a rejected or non-finite input): from the last
  command, ``dq ← dq_prev · max(0, 1 − dt/t_stop)``, ``t_stop = maxᵢ |dq_prevᵢ|/a_maxᵢ``:
  straight-line deceleration at the acceleration limit.
* frozen measurement: while the last command moves (``dq_prev ≠ 0``), the time t_f
  (Σ h) and the travel ``Σ maxᵢ|dq_prevᵢ| h`` over which q stayed bit-identical add up;
  ``t_f − measurement_age ≥ frozen_timeout`` and travel ``≥ FROZEN_MIN_TRAVEL`` is
  STALE_INPUT until q changes (a stream that stops ages instead: the stale check).
* position command: ``q_cmd ← q_cmd + dq dt``, never re-anchored during a stop.  It
  is re-anchored on the measured q (``q_cmd := q``) only in motion cycles: when
  motion starts from a command that has rested ``ANCHOR_SETTLE`` (or after
  ``resume``/``reset``) and the measurement is at most one control period old,
  and when ``maxᵢ |q_cmdᵢ − qᵢ| > max_command_drift`` (the arm does not follow)
  on a measurement at most MAX_DT_PERIODS periods old.
  The one exception: before the first valid measurement there is no command to
  continue, and the first valid measurement anchors q_cmd whatever its age.
"""

import math

from jacobian_ik.kernels import layout as L
from jacobian_ik.kernels.barriers import (
    COLLISION_MARGIN,
    collision_rows,
    rows_margin,
    sigma_row,
)
from jacobian_ik.kernels.codes import (
    L_ACCELERATION,
    L_CARTESIAN,
    L_COLLISION,
    L_POSITION,
    L_SINGULARITY,
    L_VELOCITY,
    MODE_BAD,
    MODE_BAD_TARGET,
    MODE_HOLD,
    MODE_POSE,
    MODE_TWIST,
    R_AHEAD,
    R_APPROACH,
    R_APPROACH_BAND,
    R_BAD_INPUT,
    R_BAD_Q,
    R_BARRIER,
    R_BLOCKED_COLLISION,
    R_BLOCKED_JOINT,
    R_BLOCKED_SIGMA,
    R_BRAKING,
    R_COLLISION,
    R_COLLISION_BRAKING,
    R_FROZEN,
    R_GOAL,
    R_IDLE,
    R_JOINT_LEAVING,
    R_JOINT_MOVE,
    R_JOINT_OUT,
    R_LATCHED,
    R_LEAVING,
    R_PAUSED,
    R_STALE_MEAS,
    R_STALE_TARGET,
    R_STOP_SIGMA,
    R_TARGET_EXPIRED,
    R_TRACKING,
    R_UNREACHABLE,
    R_UNREACHABLE_COLLISION,
    S_APPROACHING,
    S_APPROACHING_COLLISION,
    S_IDLE,
    S_INVALID,
    S_JOINT_LIMIT,
    S_JOINT_MOVE,
    S_PAUSED,
    S_SAFE_STOP,
    S_STALE,
    S_TRACKING,
)
from jacobian_ik.kernels.derivatives import (
    GRADIENT_SCRATCH_PLANES,
    jacobian_derivative,
    sigma_min_gradient,
)
from jacobian_ik.kernels.jit import kernel, view
from jacobian_ik.kernels.kinematics import damping_nakamura, dls_step, normal_matrix
from jacobian_ik.kernels.distance import capsules_to_base, pair_distances
from jacobian_ik.kernels.layout import block, block_offset, geo_views
from jacobian_ik.kernels.layout import joint_vector as _jv  # a short name: used throughout
from jacobian_ik.kernels.limits import brake_velocity, clamp_to_bounds, joint_velocity_bounds
from jacobian_ik.kernels.lookahead import (
    LOOKAHEAD_MARGIN,
    linear_rest_sigma,
    rest_sigma,
    sigma_at,
)
from jacobian_ik.kernels.qp import rows_qp
from jacobian_ik.kernels.task import check_inputs, task_twist

#: Length [rad] of the probe step that tells whether a command leaves a singularity.
LEAVE_PROBE = 0.01
#: APPROACHING_SINGULARITY clears only above sigma_warn · (1 + this): no flicker.
WARN_HYSTERESIS = 0.05
#: After the look-ahead braked, APPROACHING_SINGULARITY is held this long [s] even
#: where σ_min is above sigma_warn, so a fast approach does not flip back to TRACKING
#: between two braking cycles.
APPROACH_DWELL = 0.2
#: Reported condition number when σ_min = 0 (keeps every output finite).
MAX_CONDITION = 1e12
#: The barrier holds σ_min above sigma_stop·(1 + this): above the look-ahead's guard
#: (LOOKAHEAD_MARGIN), so an arm sliding along the barrier is not braked by it.
BARRIER_MARGIN = 1.5 * LOOKAHEAD_MARGIN
#: Temperature of the soft-min of the singular values whose gradient the barrier
#: uses, as a fraction of sigma_stop (smooth where the smallest two cross).
SOFTMIN_FRACTION = 0.1
#: The task error (a twist: position_gain·m and orientation_gain·rad) must fall by
#: this fraction of its best value, or by PROGRESS_ABSOLUTE, to count as progress.
PROGRESS_FRACTION = 0.05
PROGRESS_ABSOLUTE = 0.03
#: A twist command is blocked while the QP delivers less than this share of it.
TWIST_PROGRESS = 0.05
#: A JOINT_MOVE ends when every joint is this close to q_goal [rad | m].
JOINT_MOVE_TOLERANCE = 1e-4
#: The σ_min gradient is computed only while σ_min < this × sigma_warn: above, the
#: barrier cannot bind and raising σ_min is no concern (saves its cost most cycles).
GRADIENT_RANGE = 4.0
#: Relative excess of a tip speed limit tolerated before tip_speed_cut acts
#: (rounding: the twist is clamped to the limit exactly).
TIP_SPEED_SLACK = 1e-9
#: Damping [σ unit] of the null-space projector I − Jᵀ(JJᵀ + ε²I)⁻¹J: far below
#: sigma_stop, so the projector is exact wherever the arm may be.
NULLSPACE_DAMPING = 1e-5
#: Commanded travel [rad | m] (Σ maxᵢ|dq_prevᵢ|·dt) an unchanged measurement must
#: have missed, besides frozen_timeout, to count as frozen: well above the resolution
#: of a joint encoder, so a slowly commanded arm is not flagged between two counts.
FROZEN_MIN_TRAVEL = 1e-3
#: A motion starting from rest re-anchors the position command on the measurement
#: only after the command has rested this long [s]: an arm that follows position
#: commands has caught up with the command by then (no step back onto a lagging
#: measurement after a short stop).
ANCHOR_SETTLE = 0.1
#: Values of the anchor memory: q_cmd continues from the last command; re-anchor in
#: the next motion cycle with a fresh measurement; no command yet (anchor on the next
#: valid measurement).
ANCHOR_NONE = 0.0
ANCHOR_FRESH = 1.0
ANCHOR_FIRST = 2.0
#: Active-set iterations of the QP per cycle (each iterate is admissible).
QP_ITERATIONS = 40
#: mem ``unreachable`` of a goal found unreachable because a collision pair blocks it
#: (1.0: because of a singularity).
UNREACHABLE_COLLISION = 2.0
#: mem ``blocked_kind`` of a goal that a collision pair blocks (1: the σ_min barrier,
#: 2: the joint limit margins).
BLOCKED_COLLISION = 3


@view
def _chain(buf, n):
    """Views of the chain and its kinematics scratch: (placements (n+1, 4, 4), axes
    (n, 3), types (n,), frames (n+1, 4, 4), J (6, n), σ scratch (3, 5, s, s))."""
    s_ = n if n > 6 else 6
    return (block(buf, n, L.B_PLACEMENTS).reshape((n + 1, 4, 4)),
            block(buf, n, L.B_AXES).reshape((n, 3)),
            block(buf, n, L.B_TYPES),
            block(buf, n, L.B_FRAMES).reshape((n + 1, 4, 4)),
            block(buf, n, L.B_JAC).reshape((6, n)),
            block(buf, n, L.B_SIGMA).reshape((3, 5, s_, s_)))


# ============================================================================ phases
@kernel
def input_phase(q, target, mode, dt, measurement_age, target_age, out):
    """Phase 1: reason code of an invalid input (values in out), −1 when valid."""
    if mode == MODE_BAD:
        return R_BAD_INPUT
    values = out[L.O_VAL1:L.O_VAL2 + 1]
    reason = check_inputs(q, target, mode, dt, measurement_age, target_age, values)
    if mode == MODE_BAD_TARGET and reason < 0:     # the caller's verdict
        reason = R_BAD_INPUT
    return reason


@kernel
def reject_phase(buf, n, reason, q_ok, dt):
    """Phase 1 (invalid input): the input is not used (except a finite measurement,
    kept as the last valid one when ``q_ok``); the last command brakes at the
    acceleration limits (``brake_velocity``, then the position-limit bounds at the
    last valid position) and the position command keeps integrating it: no velocity
    or position step.  Without any command yet (``ANCHOR_FIRST``) the position
    command is the last valid measured position and the velocity zero.  A
    non-positive or non-finite dt counts as one nominal period."""
    cfg = block(buf, n, L.B_CFG)
    mem = block(buf, n, L.B_MEM)
    out = block(buf, n, L.B_OUT)
    amax = _jv(buf, n, L.J_AMAX)
    dq_prev = _jv(buf, n, L.J_DQ_PREV)
    q_cmd = _jv(buf, n, L.J_Q_CMD)
    q_valid = _jv(buf, n, L.J_Q_VALID)
    q = _jv(buf, n, L.J_Q_IN)
    dq = _jv(buf, n, L.J_DQ_OUT)
    q_out = _jv(buf, n, L.J_Q_OUT)
    if q_ok:
        for i in range(n):          # the measurement itself is fine: keep it
            q_valid[i] = q[i]
    h = cfg[L.C_PERIOD]
    if math.isfinite(dt) and dt > 0.0:
        h = dt if dt < cfg[L.C_DT_MAX] else cfg[L.C_DT_MAX]
    if mem[L.M_ANCHOR] == ANCHOR_FIRST:
        for i in range(n):
            dq[i] = 0.0
            q_cmd[i] = q_valid[i]
        if q_ok:
            mem[L.M_ANCHOR] = ANCHOR_NONE
    else:
        cap_lo = _jv(buf, n, L.J_CAP_LO)
        cap_hi = _jv(buf, n, L.J_CAP_HI)
        brake_velocity(dq_prev, amax, h, dq)
        joint_velocity_bounds(dq_prev, q_valid, q_cmd, _jv(buf, n, L.J_LOWER),
                              _jv(buf, n, L.J_UPPER), amax, _jv(buf, n, L.J_CONT),
                              cfg[L.C_JOINT_LIMIT_MARGIN], h, cap_lo, cap_hi)
        clamp_to_bounds(dq, cap_lo, cap_hi)
    for i in range(n):
        q_out[i] = q_cmd[i] + dq[i] * h
        q_cmd[i] = q_out[i]
        dq_prev[i] = dq[i]
    update_rest(dq, h, mem)
    mem[L.M_MOVING] = 0.0
    mem[L.M_SCALE] = 0.0
    out[L.O_STATE] = S_INVALID
    out[L.O_REASON] = reason


@kernel
def update_frozen(q, q_last, dq_prev, dt, age, mem, timeout):
    """Frozen-measurement watch; True when q counts as frozen.

    While q is bit-identical to the last valid measurement ``q_last`` and the last
    command moves (``dq_prev ≠ 0``), the time, the commanded travel
    ``Σ maxᵢ|dq_prevᵢ|·dt`` and the largest commanded speed add up (mem
    ``frozen_t``, ``frozen_travel``, ``frozen_peak``); any change of q clears them.
    Frozen: time minus the measurement's ``age`` ≥ ``timeout``, and travel ≥
    ``FROZEN_MIN_TRAVEL``; it stays frozen (``frozen``) until q changes.  Subtracting
    the age leaves a stream that stopped (its age grows with the time) to the stale
    check: frozen means measurements keep arriving and do not change.  ``dt`` is the
    cycle's clamped step h: a late cycle of the controller itself, during which an
    arm following position commands rightly stood still, counts as one step.
    """
    changed = False
    peak = 0.0
    for i in range(q.shape[0]):
        if q[i] != q_last[i]:
            changed = True
        a = abs(dq_prev[i])
        if a > peak:
            peak = a
    if changed:
        mem[L.M_FROZEN_T] = 0.0
        mem[L.M_FROZEN_TRAVEL] = 0.0
        mem[L.M_FROZEN_PEAK] = 0.0
        mem[L.M_FROZEN] = 0.0
        return False
    if peak > 0.0:
        mem[L.M_FROZEN_T] += dt
        mem[L.M_FROZEN_TRAVEL] += peak * dt
        if peak > mem[L.M_FROZEN_PEAK]:
            mem[L.M_FROZEN_PEAK] = peak
    if mem[L.M_FROZEN_T] - age >= timeout and mem[L.M_FROZEN_TRAVEL] >= FROZEN_MIN_TRAVEL:
        mem[L.M_FROZEN] = 1.0
    return mem[L.M_FROZEN] != 0.0


@kernel
def update_rest(dq, h, mem):
    """mem ``rest``: time [s] the command has been at rest (every dqᵢ = 0), else 0."""
    for i in range(dq.shape[0]):
        if dq[i] != 0.0:
            mem[L.M_REST] = 0.0
            return
    mem[L.M_REST] += h


@kernel
def anchor_decision(q, q_cmd, dq_prev, cont, mem, moving, fresh, recent, drift):
    """Whether q_cmd is re-anchored on the measured q this cycle (updates the anchor
    memory).

    ``ANCHOR_FIRST`` (no command yet): now, whatever the cycle.  A stop never
    re-anchors: the braking command is integrated on.  A motion cycle starting from a
    command at rest asks for an anchor (``ANCHOR_FRESH``, as ``resume``/``reset`` do);
    it is taken in the first motion cycle whose measurement is ``fresh`` (at most one
    control period old) if the command has been at rest for ``ANCHOR_SETTLE``
    (``rest``: an arm following position commands has caught up with it), and
    dropped otherwise (the command continues, never a step back onto a lagging
    measurement).  A motion cycle whose measurement is ``recent`` (at most
    MAX_DT_PERIODS periods old: a loaded ROS loop may not see one younger than a
    period for long, and a stream that stopped is not followed) also re-anchors
    when ``maxᵢ |q_cmdᵢ − qᵢ| > drift`` (the arm does not follow).
    """
    if mem[L.M_ANCHOR] == ANCHOR_FIRST:
        mem[L.M_ANCHOR] = ANCHOR_NONE
        return True
    if not moving:
        return False
    at_rest = True
    for i in range(q.shape[0]):
        if dq_prev[i] != 0.0:
            at_rest = False
            break
    if mem[L.M_MOVING] == 0.0 and at_rest:
        mem[L.M_ANCHOR] = ANCHOR_FRESH
    if fresh and mem[L.M_ANCHOR] == ANCHOR_FRESH:
        mem[L.M_ANCHOR] = ANCHOR_NONE
        if at_rest and mem[L.M_REST] >= ANCHOR_SETTLE:
            return True
    if not recent:
        return False
    for i in range(q.shape[0]):
        d = q_cmd[i] - q[i]
        if cont[i] != 0.0:
            d -= 2.0 * math.pi * math.floor(d / (2.0 * math.pi) + 0.5)
        if abs(d) > drift:
            return True
    return False


@kernel
def kinematics_phase(buf, n, rows, q, want_gradient):
    """Phase 2: FK, J, σ at q into out; ∂σ_min/∂q into the grad vector when asked and
    σ_min < GRADIENT_RANGE·sigma_warn (else zero: no barrier, no σ term in the
    secondary objective; the look-ahead computes it itself if its rest path may
    reach its guard).  Returns (σ_min, soft-min h of the singular values, whether
    the gradient was computed)."""
    cfg = block(buf, n, L.B_CFG)
    mem = block(buf, n, L.B_MEM)
    out = block(buf, n, L.B_OUT)
    placements, axes, types, frames, J, scratch = _chain(buf, n)
    warm = mem[L.M_WARM] != 0.0
    sigma_min, sigma_max, w = sigma_at(placements, axes, types, q, rows, frames, J,
                                       scratch[0], warm)
    if not warm:
        # the look-ahead subspaces start from the ones just found at q
        s_ = scratch.shape[2]
        for i in range(s_):
            for j in range(s_):
                scratch[1, 3, i, j] = scratch[0, 3, i, j]
                scratch[2, 3, i, j] = scratch[0, 3, i, j]
    mem[L.M_WARM] = 1.0
    out[L.O_SIGMA_MIN] = sigma_min
    out[L.O_SIGMA_MAX] = sigma_max
    out[L.O_W] = w
    out[L.O_COND] = sigma_max / sigma_min if sigma_min * MAX_CONDITION > sigma_max \
        else MAX_CONDITION
    out[L.O_LAMBDA] = damping_nakamura(sigma_min, cfg[L.C_LAMBDA_MAX], cfg[L.C_SIGMA_DAMP])
    if want_gradient and sigma_min < GRADIENT_RANGE * cfg[L.C_SIGMA_WARN]:
        return sigma_min, sigma_gradient(buf, n, rows), True
    grad = _jv(buf, n, L.J_GRAD)
    for i in range(n):
        grad[i] = 0.0           # far from any singularity: nothing binds, nothing to raise
    return sigma_min, sigma_min, False


@kernel
def sigma_gradient(buf, n, rows):
    """∂σ_min/∂q (of the soft-min h) into the grad vector from the J and frames in
    the buffer (at q); returns h."""
    cfg = block(buf, n, L.B_CFG)
    _placements, axes, types, frames, J, _scratch = _chain(buf, n)
    dJ = block(buf, n, L.B_DJAC).reshape((n, 6, n))
    s_ = n if n > 6 else 6
    work = block(buf, n, L.B_GRADWORK).reshape((1 + GRADIENT_SCRATCH_PLANES, s_, s_))
    jacobian_derivative(frames, axes, types, J, dJ)
    return sigma_min_gradient(J, dJ, rows, work[0], work[1:], _jv(buf, n, L.J_GRAD),
                              SOFTMIN_FRACTION * cfg[L.C_SIGMA_STOP])


@kernel
def twist_phase(buf, n, mode, h, moving_task):
    """Phase 4: task twist (twist block), errors and goal test (out), progress watch
    (mem).  Returns True if the twist was clamped to the Cartesian speed limits."""
    cfg = block(buf, n, L.B_CFG)
    mem = block(buf, n, L.B_MEM)
    out = block(buf, n, L.B_OUT)
    tw = block(buf, n, L.B_TWIST)
    target = block(buf, n, L.B_TARGET)
    frames = block(buf, n, L.B_FRAMES).reshape((n + 1, 4, 4))
    pose_task = cfg[L.C_POSE_TASK] != 0.0
    kp = cfg[L.C_POSITION_GAIN]
    ko = cfg[L.C_ORIENTATION_GAIN]
    perr, oerr, clamped = task_twist(tw, target, frames, n, mode, pose_task, kp, ko,
                                     cfg[L.C_MAX_LINEAR_SPEED], cfg[L.C_MAX_ANGULAR_SPEED])
    if mode != MODE_POSE:
        mem[L.M_HAVE_PREV_TARGET] = 0.0
        return clamped
    out[L.O_PERR] = perr
    out[L.O_OERR] = oerr
    goal = perr <= cfg[L.C_GOAL_POSITION_TOLERANCE] and (
        not pose_task or oerr <= cfg[L.C_GOAL_ORIENTATION_TOLERANCE])
    if goal:
        out[L.O_GOAL] = 1.0
        mem[L.M_JOINT_MOVE] = 0.0           # the pose is reached: the task holds it
    # a new pose target starts a new watch (and ends a joint move or a verdict)
    prev = block(buf, n, L.B_TARGET_PREV)
    same = mem[L.M_HAVE_PREV_TARGET] != 0.0
    if same:
        for r in range(16):
            if prev[r] != target[r]:
                same = False
                break
    if not same:
        for r in range(16):
            prev[r] = target[r]
        q_origin = _jv(buf, n, L.J_Q_ORIGIN)
        q_in = _jv(buf, n, L.J_Q_IN)
        for i in range(n):
            q_origin[i] = q_in[i]
        mem[L.M_HAVE_PREV_TARGET] = 1.0
        out[L.O_NEW_GOAL] = 1.0
        mem[L.M_BEST_ERROR] = math.inf
        mem[L.M_STALL] = 0.0
        mem[L.M_JOINT_MOVE] = 0.0
        mem[L.M_UNREACHABLE] = 0.0
    if mem[L.M_JOINT_MOVE] != 0.0:
        q = _jv(buf, n, L.J_Q_IN)
        q_goal = _jv(buf, n, L.J_Q_GOAL)
        e = 0.0
        for i in range(n):
            d = abs(q_goal[i] - q[i])
            if d > e:
                e = d
        e *= kp
    else:
        e = math.sqrt((kp * perr) ** 2 + ((ko * oerr) ** 2 if pose_task else 0.0))
    if goal and mem[L.M_JOINT_MOVE] == 0.0:
        mem[L.M_STALL] = 0.0
        mem[L.M_BEST_ERROR] = e
    elif e < mem[L.M_BEST_ERROR] * (1.0 - PROGRESS_FRACTION) \
            or e < mem[L.M_BEST_ERROR] - PROGRESS_ABSOLUTE:
        mem[L.M_BEST_ERROR] = e
        mem[L.M_STALL] = 0.0
    elif moving_task:
        mem[L.M_STALL] += h
    return clamped


@kernel
def bounds_phase(buf, n, h, q):
    """Phase 5: position caps, the braking command (clamped to the caps) and the QP
    box ``lo ≤ dq ≤ hi`` (velocity, acceleration, position), widened to contain the
    brake so that the QP always has an admissible start."""
    cfg = block(buf, n, L.B_CFG)
    mem = block(buf, n, L.B_MEM)
    dq_prev = _jv(buf, n, L.J_DQ_PREV)
    q_cmd = _jv(buf, n, L.J_Q_CMD)
    amax = _jv(buf, n, L.J_AMAX)
    vmax = _jv(buf, n, L.J_VMAX)
    cap_lo = _jv(buf, n, L.J_CAP_LO)
    cap_hi = _jv(buf, n, L.J_CAP_HI)
    lo = _jv(buf, n, L.J_LO)
    hi = _jv(buf, n, L.J_HI)
    brake = _jv(buf, n, L.J_DQ_BRAKE)
    joint_velocity_bounds(dq_prev, q, q_cmd if mem[L.M_ANCHOR] != ANCHOR_FIRST else q,
                          _jv(buf, n, L.J_LOWER), _jv(buf, n, L.J_UPPER), amax,
                          _jv(buf, n, L.J_CONT), cfg[L.C_JOINT_LIMIT_MARGIN], h, cap_lo, cap_hi)
    brake_velocity(dq_prev, amax, h, brake)
    clamp_to_bounds(brake, cap_lo, cap_hi)
    for i in range(n):
        a = dq_prev[i] - amax[i] * h
        b = dq_prev[i] + amax[i] * h
        lo_i = -vmax[i]
        if cap_lo[i] > lo_i:
            lo_i = cap_lo[i]
        if a > lo_i:
            lo_i = a
        hi_i = vmax[i]
        if cap_hi[i] < hi_i:
            hi_i = cap_hi[i]
        if b < hi_i:
            hi_i = b
        if brake[i] < lo_i:
            lo_i = brake[i]
        if brake[i] > hi_i:
            hi_i = brake[i]
        lo[i] = lo_i
        hi[i] = hi_i


@kernel
def secondary_velocity(q, grad, mid, cont, k_sigma, k_limit, sigma_min, sigma_warn, dq_sec):
    """``dq_sec = k_σ w(σ_min) ∇σ_min + k_l (q_mid − q)`` (no centring for continuous
    joints); ``w`` is 1 below ½·GRADIENT_RANGE·sigma_warn and falls linearly to 0 at
    GRADIENT_RANGE·sigma_warn, where the gradient is no longer computed."""
    top = GRADIENT_RANGE * sigma_warn
    w = 2.0 * (top - sigma_min) / top
    if w > 1.0:
        w = 1.0
    elif w < 0.0:
        w = 0.0
    for i in range(q.shape[0]):
        v = k_sigma * w * grad[i]
        if cont[i] == 0.0:
            v += k_limit * (mid[i] - q[i])
        dq_sec[i] = v


@kernel
def collision_phase(buf, n, geo, pairs):
    """Phase 2b: the distance of every checked pair of the collision model at the
    measured q (frames in the buffer) into geo's ``dist`` (exact below
    collision_influence_distance, a lower bound above it; the self pairs only with
    self_collision on), the smallest one and its pair into out (inf and −1 for
    none)."""
    cfg = block(buf, n, L.B_CFG)
    out = block(buf, n, L.B_OUT)
    caps, world, obstacles, dist, _A, _b, _rp, _act, _mu, _s = geo_views(geo, n)
    out[L.O_MIN_DISTANCE] = math.inf
    out[L.O_PAIR] = -1.0
    first = 0 if cfg[L.C_SELF_COLLISION] != 0.0 else int(geo[L.G_SELF_PAIRS])
    if dist.shape[0] <= first:
        return
    frames = block(buf, n, L.B_FRAMES).reshape((n + 1, 4, 4))
    capsules_to_base(frames, caps, world)
    k = pair_distances(world, obstacles, pairs[first:], cfg[L.C_COLLISION_INFLUENCE_DISTANCE],
                       dist[first:])
    if k >= 0:
        out[L.O_MIN_DISTANCE] = dist[first + k, 0]
        out[L.O_PAIR] = first + k


@kernel
def inverse_phase(buf, n, rows, geo, pairs, scale, h_sigma, joint_move, dq):
    """Phase 6: the joint velocity dq (n,) from the QP; returns (limited bits,
    barrier active, share of the task twist delivered ``(J dq)·v / ‖v‖²``, whether
    the unconstrained target x* keeps the barriers and the position bounds).
    Writes the number of collision rows and whether one was active into out.

    The QP ``min ½(dq − x*)ᵀH(dq − x*)`` over the box, with the rows of
    ``kernels.barriers`` (each relaxed so that the brake keeps it): the σ_min
    barrier ``∇h·dq ≥ min(−γ(h − σ_b), ∇h·dq_brake)`` and a collision row
    ``∂d/∂q·dq ≥ min(−γ_c(d − d_stop), ∂d/∂q·dq_brake)`` per pair nearer than
    collision_influence_distance:

    * task: ``x* = Jᵀ(JJᵀ + λ²I)⁻¹ s·v + (dq_sec − Jᵀ(JJᵀ + εI)⁻¹ J dq_sec)``, the DLS
      solution plus the secondary velocity projected on the null space (ε =
      NULLSPACE_DAMPING²; none where k ≥ n), and
      ``H = JᵀJ + (λ² + w)I``: unconstrained, the twist is tracked exactly (λ = 0);
      constrained, a task-space deviation costs σ², a null-space one only w;
    * joint move: ``H = I``, x* the straight joint-space motion toward q_goal that
      can still brake within the acceleration limits, slowed so that the tip keeps
      max_linear_speed and max_angular_speed (at q).

    Where x* itself lies in the box and keeps the barrier it is the solution (H is
    positive definite): H and the active-set solver are then not needed.
    """
    cfg = block(buf, n, L.B_CFG)
    out = block(buf, n, L.B_OUT)
    tw = block(buf, n, L.B_TWIST)
    J = block(buf, n, L.B_JAC).reshape((6, n))
    HL = block(buf, n, L.B_HESS).reshape((2, n, n))
    H = HL[0]
    Lf = HL[1]
    q = _jv(buf, n, L.J_Q_IN)
    grad = _jv(buf, n, L.J_GRAD)
    g = _jv(buf, n, L.J_QP_G)
    lo = _jv(buf, n, L.J_LO)
    hi = _jv(buf, n, L.J_HI)
    brake = _jv(buf, n, L.J_DQ_BRAKE)
    x_star = _jv(buf, n, L.J_DQ_TASK)
    dq_sec = _jv(buf, n, L.J_DQ_SEC)
    work = _jv(buf, n, L.J_QP_W)
    k = rows.shape[0]
    if joint_move:
        q_goal = _jv(buf, n, L.J_Q_GOAL)
        vmax = _jv(buf, n, L.J_VMAX)
        amax = _jv(buf, n, L.J_AMAX)
        cont = _jv(buf, n, L.J_CONT)
        f = cfg[L.C_POSITION_GAIN]
        for i in range(n):
            e = q_goal[i] - q[i]
            if cont[i] != 0.0:
                e -= 2.0 * math.pi * math.floor(e / (2.0 * math.pi) + 0.5)
            x_star[i] = e
            a = abs(e)
            if a > 0.0:
                if vmax[i] / a < f:
                    f = vmax[i] / a
                r = math.sqrt(amax[i] / a)
                if r < f:
                    f = r
        # the tip keeps the Cartesian speed limits in a joint move too
        lin = 0.0
        ang = 0.0
        for r in range(6):
            t = 0.0
            for j in range(n):
                t += J[r, j] * x_star[j]
            if r < 3:
                lin += t * t
            else:
                ang += t * t
        lin = math.sqrt(lin) * f
        ang = math.sqrt(ang) * f
        if lin > cfg[L.C_MAX_LINEAR_SPEED]:
            f *= cfg[L.C_MAX_LINEAR_SPEED] / lin
            ang *= cfg[L.C_MAX_LINEAR_SPEED] / lin
        if ang > cfg[L.C_MAX_ANGULAR_SPEED]:
            f *= cfg[L.C_MAX_ANGULAR_SPEED] / ang
        for i in range(n):
            x_star[i] *= f
    else:
        lam = out[L.O_LAMBDA]
        secondary_velocity(q, grad, _jv(buf, n, L.J_MID), _jv(buf, n, L.J_CONT),
                           cfg[L.C_NULLSPACE_SIGMA_GAIN], cfg[L.C_NULLSPACE_LIMIT_GAIN],
                           out[L.O_SIGMA_MIN], cfg[L.C_SIGMA_WARN], dq_sec)
        v_s = tw[12:18]          # s·v, then J dq_sec
        for r in range(6):
            v_s[r] = scale * tw[r]
        tmp = _jv(buf, n, L.J_QP_Y)
        dls_step(J, rows, v_s, lam, Lf, tmp, x_star)
        p = _jv(buf, n, L.J_QP_P)
        if k < n:
            for r in range(6):
                s = 0.0
                for j in range(n):
                    s += J[r, j] * dq_sec[j]
                v_s[r] = s
            dls_step(J, rows, v_s, NULLSPACE_DAMPING, Lf, tmp, p)
        else:
            for i in range(n):
                p[i] = dq_sec[i]        # no null space: no secondary motion
        for i in range(n):
            x_star[i] += dq_sec[i] - p[i]
    # the rows: the sigma_min barrier, then the collision barrier
    _caps, _world, _obs, dist, A, bv, row_pair, active, mu, qp_s = geo_views(geo, n)
    sigma_b = cfg[L.C_SIGMA_STOP] * (1.0 + BARRIER_MARGIN)
    bv[0] = sigma_row(grad, brake, h_sigma, sigma_b, cfg[L.C_BARRIER_GAIN], A[0])
    row_pair[0] = -1.0
    first = 0 if cfg[L.C_SELF_COLLISION] != 0.0 else int(geo[L.G_SELF_PAIRS])
    n_coll = 0
    if A.shape[0] > 1:
        n_coll = collision_rows(block(buf, n, L.B_FRAMES).reshape((n + 1, 4, 4)),
                                block(buf, n, L.B_AXES).reshape((n, 3)),
                                block(buf, n, L.B_TYPES), _caps, pairs, dist, first,
                                cfg[L.C_COLLISION_STOP_DISTANCE],
                                cfg[L.C_COLLISION_INFLUENCE_DISTANCE],
                                cfg[L.C_COLLISION_GAIN], brake, A, bv, row_pair, 1)
    m = 1 + n_coll
    out[L.O_COLLISION_ROWS] = n_coll
    for r in range(m):
        active[r] = 0.0
    # x* minimises the (strictly convex) objective: where it is feasible it is the
    # QP's solution, no constraint active
    feasible = rows_margin(A, bv, m, x_star) >= 0.0
    for i in range(n):
        if not (lo[i] <= x_star[i] <= hi[i]):
            feasible = False
    if feasible:
        for i in range(n):
            dq[i] = x_star[i]
            work[i] = 0.0
    else:
        if joint_move:
            for i in range(n):
                for j in range(n):
                    H[i, j] = 0.0
                H[i, i] = 1.0
        else:
            lam = out[L.O_LAMBDA]
            w = cfg[L.C_NULLSPACE_WEIGHT]
            if w < 1e-12:
                w = 1e-12
            normal_matrix(J, rows, H)
            for i in range(n):
                H[i, i] += lam * lam + w
        for i in range(n):
            s = 0.0
            for j in range(n):
                s += H[i, j] * x_star[j]
            g[i] = -s
        for i in range(n):
            dq[i] = brake[i]
        rows_qp(H, g, lo, hi, A, bv, m, dq, Lf, work, active, _jv(buf, n, L.J_QP_C),
                _jv(buf, n, L.J_QP_P), _jv(buf, n, L.J_QP_Y), _jv(buf, n, L.J_QP_Z),
                _jv(buf, n, L.J_DQ_FREE), qp_s, mu, QP_ITERATIONS)
    barrier = active[0] != 0.0
    coll_active = False
    for r in range(1, m):
        if active[r] != 0.0:
            coll_active = True
    out[L.O_COLLISION_ACTIVE] = 1.0 if coll_active else 0.0
    # the tip's speed limits hold for the command itself: where a bound moved dq off
    # x* so that the tip would go faster, pull it toward the (admissible) brake
    limited = 0
    if tip_speed_cut(J, rows, brake, dq, cfg[L.C_MAX_LINEAR_SPEED],
                     cfg[L.C_MAX_ANGULAR_SPEED]):
        limited |= L_CARTESIAN
    vmax = _jv(buf, n, L.J_VMAX)
    cap_lo = _jv(buf, n, L.J_CAP_LO)
    cap_hi = _jv(buf, n, L.J_CAP_HI)
    for i in range(n):
        if work[i] == 0.0:
            continue
        bound = hi[i] if work[i] > 0.0 else lo[i]
        if abs(bound) >= vmax[i] * (1.0 - 1e-12):
            limited |= L_VELOCITY
        elif bound == cap_hi[i] or bound == cap_lo[i]:
            limited |= L_POSITION
        else:
            limited |= L_ACCELERATION
    if barrier:
        limited |= L_SINGULARITY
    if coll_active:
        limited |= L_COLLISION
    # the unconstrained target is admissible: it keeps the (unrelaxed) barrier, the
    # collision rows and the position bounds (then only the acceleration ramp stands
    # between it and the arm)
    ax = 0.0
    admissible = True
    for i in range(n):
        ax += grad[i] * x_star[i]
        if x_star[i] > cap_hi[i] or x_star[i] < cap_lo[i]:
            admissible = False
    if ax < -cfg[L.C_BARRIER_GAIN] * (h_sigma - sigma_b):
        admissible = False
    out[L.O_COLLISION_IN_WAY] = 0.0
    if n_coll > 0 and rows_margin(A[1:], bv[1:], n_coll, x_star) < 0.0:
        admissible = False
        out[L.O_COLLISION_IN_WAY] = 1.0
    # share of the task twist delivered: (J dq)·v / ‖v‖²
    progress = 1.0
    if not joint_move:
        vv = 0.0
        vd = 0.0
        for r in range(k):
            row = rows[r]
            s = 0.0
            for j in range(n):
                s += J[row, j] * dq[j]
            vd += s * tw[row]
            vv += tw[row] * tw[row]
        if vv > 0.0:
            progress = vd / vv
    return limited, barrier, progress, admissible


@kernel
def tip_speed_cut(J, rows, brake, dq, v_max, w_max):
    """Bring the tip's speed ``‖J_v dq‖`` to at most v_max (and ``‖J_ω dq‖`` to w_max
    when the task has angular rows) by moving dq toward ``brake``: ``dq ← brake +
    c (dq − brake)`` with the largest c in [0, 1] that keeps both (c = 0 if the brake
    itself does not).  Both ends lie in the QP's box and keep the barrier, so the
    result does too.  Returns True if dq changed."""
    n = dq.shape[0]
    angular = False
    for r in range(rows.shape[0]):
        if rows[r] >= 3:
            angular = True
    c = 1.0
    for part in range(2 if angular else 1):
        limit = v_max if part == 0 else w_max
        aa = 0.0            # ‖J brake‖², 2 (J brake)·(J d), ‖J d‖², d = dq − brake
        ab = 0.0
        bb = 0.0
        for r in range(3 * part, 3 * part + 3):
            a = 0.0
            b = 0.0
            for j in range(n):
                a += J[r, j] * brake[j]
                b += J[r, j] * (dq[j] - brake[j])
            aa += a * a
            ab += a * b
            bb += b * b
        top = limit * (1.0 + TIP_SPEED_SLACK)
        if aa + 2.0 * ab + bb <= top * top:
            continue
        if aa >= top * top or bb <= 0.0:
            c = 0.0
            continue
        # largest c with aa + 2c·ab + c²·bb = limit²
        root = (-ab + math.sqrt(ab * ab - bb * (aa - limit * limit))) / bb
        if root < c:
            c = root if root > 0.0 else 0.0
    if c >= 1.0:
        return False
    for i in range(n):
        dq[i] = brake[i] + c * (dq[i] - brake[i])
    return True


@kernel
def lookahead_phase(buf, n, rows, q, dq, h, age, sigma_min, h_sigma, have_grad):
    """Phase 8: if braking after this cycle would end below the guard
    ``(1 + LOOKAHEAD_MARGIN)·sigma_stop``, brake now (blended with the command so the
    arm rests at the guard where that is possible).  The first-order rest value
    needs ∂σ_min/∂q: where kinematics_phase left it out and the samples of the rest
    path do not prove it above the guard, it is computed here (J at q again).
    Returns True if it braked (values of R_BRAKING in out)."""
    cfg = block(buf, n, L.B_CFG)
    mem = block(buf, n, L.B_MEM)
    out = block(buf, n, L.B_OUT)
    placements, axes, types, frames, J, scratch = _chain(buf, n)
    amax = _jv(buf, n, L.J_AMAX)
    q_probe = _jv(buf, n, L.J_Q_PROBE)
    dq_task = _jv(buf, n, L.J_DQ_TASK)
    dq_prev = _jv(buf, n, L.J_DQ_PREV)
    cap_lo = _jv(buf, n, L.J_CAP_LO)
    cap_hi = _jv(buf, n, L.J_CAP_HI)
    s_guard = cfg[L.C_SIGMA_STOP] * (1.0 + LOOKAHEAD_MARGIN)
    grad = _jv(buf, n, L.J_GRAD)
    s_a, certified = rest_sigma(placements, axes, types, q, dq, amax, h, age, rows, frames,
                                J, scratch, q_probe, sigma_min, s_guard, cfg[L.C_LIPSCHITZ])
    if not (have_grad or certified):
        sigma_at(placements, axes, types, q, rows, frames, J, scratch[0], True)
        h_sigma = sigma_gradient(buf, n, rows)
    s_lin = linear_rest_sigma(h_sigma, grad, dq, amax, h, age)
    if s_lin < s_a:
        s_a = s_lin
    if not (s_a < s_guard and s_a < sigma_min):
        return False
    out[L.O_VAL1] = s_a
    out[L.O_VAL2] = sigma_min
    mem[L.M_APPROACH] = 1.0
    mem[L.M_DWELL] = APPROACH_DWELL + h
    for i in range(n):
        dq_task[i] = dq[i]
    brake_velocity(dq_prev, amax, h, dq)
    clamp_to_bounds(dq, cap_lo, cap_hi)
    s_b, _ = rest_sigma(placements, axes, types, q, dq, amax, h, age, rows, frames, J,
                        scratch, q_probe, sigma_min, s_guard, cfg[L.C_LIPSCHITZ])
    s_lin = linear_rest_sigma(h_sigma, grad, dq, amax, h, age)
    if s_lin < s_b:
        s_b = s_lin
    if s_b > s_guard:
        t = (s_b - s_guard) / (s_b - s_a)
        for i in range(n):
            dq[i] += t * (dq_task[i] - dq[i])
    return True


@kernel
def integrate_phase(buf, n, q, dq, h, moving, fresh, recent):
    """Phase 9: ``q_out = q_cmd + dq·h``; q_cmd re-anchored on the measured q only as
    ``anchor_decision`` says (never during a stop); dq becomes dq_prev."""
    cfg = block(buf, n, L.B_CFG)
    mem = block(buf, n, L.B_MEM)
    q_cmd = _jv(buf, n, L.J_Q_CMD)
    q_out = _jv(buf, n, L.J_Q_OUT)
    dq_prev = _jv(buf, n, L.J_DQ_PREV)
    if anchor_decision(q, q_cmd, dq_prev, _jv(buf, n, L.J_CONT), mem, moving, fresh, recent,
                       cfg[L.C_MAX_COMMAND_DRIFT]):
        for i in range(n):
            q_cmd[i] = q[i]
    mem[L.M_MOVING] = 1.0 if moving else 0.0
    for i in range(n):
        q_out[i] = q_cmd[i] + dq[i] * h
        q_cmd[i] = q_out[i]
        dq_prev[i] = dq[i]
    update_rest(dq, h, mem)


@kernel
def singularity_scale(sigma_min, cfg, mem, h):
    """Speed scale ``min(s(σ_min), s_prev + rate·h)`` (see the module docstring)."""
    s_stop = cfg[L.C_SIGMA_STOP]
    ramp = 0.0
    if sigma_min > s_stop:
        ramp = (sigma_min - s_stop) / (cfg[L.C_SIGMA_WARN] - s_stop)
        if ramp > 1.0:
            ramp = 1.0
    s_sigma = cfg[L.C_SPEED_SCALE_FLOOR] + (1.0 - cfg[L.C_SPEED_SCALE_FLOOR]) * ramp
    scale = mem[L.M_SCALE] + cfg[L.C_SPEED_SCALE_RATE] * h
    return s_sigma if s_sigma < scale else scale


# ============================================================================ the cycle
@kernel
def control_step(rows, buf, geo, pairs, mode, dt, measurement_age, target_age, paused):
    """One control cycle on the controller memory ``buf`` (see the module docstring).

    ``geo`` is the collision buffer (``layout.GEO_HEADER``: the capsules, obstacles and
    QP rows) and ``pairs`` (Shape (P, 2) int64) its checked pairs
    (``kernels.distance.pair_distances``).
    Inputs: measured q in the ``J_Q_IN`` vector and the target in the target block
    (written by the caller), ``mode`` (``MODE_*``), ``dt`` [s] since the last cycle,
    ``measurement_age`` and ``target_age`` [s], ``paused`` (bool).  Outputs: the
    ``J_DQ_OUT`` and ``J_Q_OUT`` vectors and the out block; returns the state code.
    """
    n = int(buf[L.C_N])
    cfg = block(buf, n, L.B_CFG)
    mem = block(buf, n, L.B_MEM)
    out = block(buf, n, L.B_OUT)
    target = block(buf, n, L.B_TARGET)
    q = _jv(buf, n, L.J_Q_IN)
    q_valid = _jv(buf, n, L.J_Q_VALID)
    dq = _jv(buf, n, L.J_DQ_OUT)
    dq_prev = _jv(buf, n, L.J_DQ_PREV)
    lower = _jv(buf, n, L.J_LOWER)
    upper = _jv(buf, n, L.J_UPPER)
    cont = _jv(buf, n, L.J_CONT)
    for r in range(L.O_VAL1, L.NOUT):
        out[r] = 0.0
    out[L.O_PERR] = 0.0
    out[L.O_OERR] = 0.0
    out[L.O_GOAL] = 0.0
    out[L.O_LIMITED] = 0.0
    out[L.O_SCALE] = 0.0
    out[L.O_MIN_DISTANCE] = math.inf        # (not measured in a rejected cycle)
    out[L.O_PAIR] = -1.0

    # ------------------------------------------------------------ 1. input checks
    reason = input_phase(q, target, mode, dt, measurement_age, target_age, out)
    if reason >= 0:
        reject_phase(buf, n, reason, mode != MODE_BAD and reason != R_BAD_Q, dt)
        return S_INVALID
    h = dt if dt < cfg[L.C_DT_MAX] else cfg[L.C_DT_MAX]   # dt for limits and integration
    if mem[L.M_DWELL] > 0.0:
        mem[L.M_DWELL] = mem[L.M_DWELL] - h if mem[L.M_DWELL] > h else 0.0
    frozen = update_frozen(q, q_valid, dq_prev, h, measurement_age, mem,
                           cfg[L.C_FROZEN_TIMEOUT])
    for i in range(n):
        q_valid[i] = q[i]

    # ------------------------------------------------------------ 3. which case
    state = S_TRACKING
    reason = R_TRACKING
    have_task = False
    out_index = -1          # first joint outside its URDF limits
    for i in range(n):
        if cont[i] == 0.0 and (q[i] < lower[i] or q[i] > upper[i]):
            out_index = i
            break
    if measurement_age > cfg[L.C_STALE_TIMEOUT]:
        state = S_STALE
        reason = R_STALE_MEAS
        out[L.O_VAL1] = measurement_age
    elif frozen:
        state = S_STALE
        reason = R_FROZEN
        out[L.O_VAL1] = mem[L.M_FROZEN_T]
        out[L.O_VAL2] = mem[L.M_FROZEN_PEAK]
    elif paused:
        state = S_PAUSED
        reason = R_PAUSED
    elif mode == MODE_TWIST and target_age > cfg[L.C_STALE_TIMEOUT]:
        # the twist stream ended: brake (STALE_INPUT), then hold (IDLE)
        state = S_IDLE
        reason = R_TARGET_EXPIRED
        for i in range(n):
            if dq_prev[i] != 0.0:
                state = S_STALE
                reason = R_STALE_TARGET
        out[L.O_VAL1] = target_age
    else:
        have_task = mode != MODE_HOLD
        if out_index >= 0:
            state = S_JOINT_LIMIT
            reason = R_JOINT_OUT
            out[L.O_VAL1] = out_index
            out[L.O_VAL2] = q[out_index]
        elif not have_task:
            state = S_IDLE
            reason = R_IDLE

    # ------------------------------------------------------------ 2. kinematics at q
    sigma_min, h_sigma, have_grad = kinematics_phase(buf, n, rows, q, have_task)
    collision_phase(buf, n, geo, pairs)
    s_stop = cfg[L.C_SIGMA_STOP]
    s_warn = cfg[L.C_SIGMA_WARN]
    if mem[L.M_LATCH] != 0.0 and sigma_min > cfg[L.C_SIGMA_RESUME]:
        mem[L.M_LATCH] = 0.0
    if (state == S_TRACKING or state == S_IDLE) and mem[L.M_LATCH] != 0.0:
        state = S_SAFE_STOP
        reason = R_LATCHED
        out[L.O_VAL1] = sigma_min

    # ------------------------------------------------------------ 4. task twist
    limited = 0
    if have_task or mode == MODE_POSE:
        moving_task = have_task and state == S_TRACKING
        if twist_phase(buf, n, mode, h, moving_task) and have_task:
            limited = L_CARTESIAN
    joint_move = mode == MODE_POSE and mem[L.M_JOINT_MOVE] != 0.0   # (ends at the goal)

    # ------------------------------------------------------------ 5. bounds
    bounds_phase(buf, n, h, q)

    # ------------------------------------------------------------ 6. inverse
    moving = False
    check_ahead = False
    scale = 0.0
    barrier = False
    progress = 1.0
    peak_qp = 0.0
    if have_task:
        scale = singularity_scale(sigma_min, cfg, mem, h)
        if state == S_JOINT_LIMIT or state == S_SAFE_STOP:
            # leaving a joint limit or a latched stop happens at the reduced speed
            if scale > cfg[L.C_SPEED_SCALE_FLOOR]:
                scale = cfg[L.C_SPEED_SCALE_FLOOR]
        if sigma_min < s_warn:
            limited |= L_SINGULARITY
        bits, barrier, progress, admissible = inverse_phase(buf, n, rows, geo, pairs, scale,
                                                            h_sigma, joint_move, dq)
        peak_qp = _peak(dq)
        limited |= bits
        out[L.O_BARRIER] = 1.0 if barrier else 0.0

    # ------------------------------------------------------------ 7. decisions
        peak = peak_qp
        if state == S_JOINT_LIMIT:
            # outside the URDF limits: only a command taking every such joint back moves
            leaves = peak > 0.0
            for i in range(n):
                if cont[i] == 0.0 and ((q[i] < lower[i] and not dq[i] > 0.0)
                                       or (q[i] > upper[i] and not dq[i] < 0.0)):
                    leaves = False
            if leaves:
                reason = R_JOINT_LEAVING
                moving = True
        elif state == S_SAFE_STOP:
            # latched: only a command that raises sigma_min moves (reduced speed)
            if peak > 0.0:
                moving = _leaves_singularity(buf, n, rows, q, dq, peak, sigma_min)
                if moving:
                    reason = R_LEAVING
        elif sigma_min < s_stop:
            state = S_SAFE_STOP
            reason = R_STOP_SIGMA
            out[L.O_VAL1] = sigma_min
            mem[L.M_LATCH] = 1.0
        elif mode == MODE_POSE and mem[L.M_UNREACHABLE] != 0.0:
            state = S_SAFE_STOP
            if mem[L.M_UNREACHABLE] == UNREACHABLE_COLLISION:
                reason = R_UNREACHABLE_COLLISION
                out[L.O_VAL1] = mem[L.M_BLOCK_DISTANCE]
                out[L.O_VAL2] = mem[L.M_BLOCK_PAIR]
            else:
                reason = R_UNREACHABLE
                out[L.O_VAL1] = sigma_min
        else:
            coll_active = out[L.O_COLLISION_ACTIVE] != 0.0
            if mode == MODE_TWIST:
                if admissible or progress > 2.0 * TWIST_PROGRESS:
                    mem[L.M_STALL] = 0.0
                elif progress < TWIST_PROGRESS and (barrier or coll_active
                                                    or limited & L_POSITION):
                    mem[L.M_STALL] += h
            blocked = mem[L.M_STALL] > cfg[L.C_STALL_TIMEOUT]
            kind = 0
            if blocked:
                # what blocks is decided when the goal becomes blocked and kept while
                # it is held (the held arm's QP no longer sees the same constraints)
                kind = int(mem[L.M_BLOCKED_KIND])
                if kind == 0:
                    if (coll_active or out[L.O_COLLISION_IN_WAY] != 0.0) and not barrier:
                        kind = BLOCKED_COLLISION
                    else:
                        kind = 1 if (barrier or sigma_min < s_warn) else 2
            mem[L.M_BLOCKED_KIND] = kind
            if blocked:
                out[L.O_BLOCKED] = 1.0
                out[L.O_VAL2] = mem[L.M_STALL]
                if kind == BLOCKED_COLLISION:
                    state = S_SAFE_STOP
                    reason = R_BLOCKED_COLLISION
                    p_block, d_block = _active_pair(geo, n)
                    mem[L.M_BLOCK_PAIR] = p_block
                    mem[L.M_BLOCK_DISTANCE] = d_block
                    out[L.O_VAL1] = d_block
                    out[L.O_VAL2] = p_block
                elif kind == 1:
                    state = S_SAFE_STOP
                    reason = R_BLOCKED_SIGMA
                    out[L.O_VAL1] = sigma_min
                else:
                    state = S_JOINT_LIMIT
                    reason = R_BLOCKED_JOINT
                    out[L.O_VAL1] = _bound_joint(buf, n)
                # hold; the QP is solved every cycle, so an admissible command
                # (progress again) moves the arm at once
                moving = False
            else:
                moving = True
                check_ahead = True
                if joint_move:
                    state = S_JOINT_MOVE
                    reason = R_JOINT_MOVE
                    out[L.O_VAL1] = mem[L.M_BEST_ERROR] / cfg[L.C_POSITION_GAIN]
                    if mem[L.M_BEST_ERROR] <= JOINT_MOVE_TOLERANCE * cfg[L.C_POSITION_GAIN]:
                        mem[L.M_JOINT_MOVE] = 0.0          # arrived: back to the task
                        mem[L.M_BEST_ERROR] = math.inf
                elif coll_active and not barrier:
                    state = S_APPROACHING_COLLISION
                    reason = R_COLLISION
                    p_near, d_near = _active_pair(geo, n)
                    out[L.O_VAL1] = d_near
                    out[L.O_VAL2] = p_near
                elif sigma_min < s_warn:
                    state = S_APPROACHING
                    reason = R_BARRIER if barrier else R_APPROACH
                    out[L.O_VAL1] = sigma_min
                    mem[L.M_APPROACH] = 1.0
                elif mem[L.M_APPROACH] != 0.0 and sigma_min < s_warn * (1.0 + WARN_HYSTERESIS):
                    state = S_APPROACHING
                    reason = R_APPROACH_BAND
                    out[L.O_VAL1] = sigma_min
                elif mem[L.M_DWELL] > 0.0:
                    state = S_APPROACHING
                    reason = R_AHEAD
                    out[L.O_VAL1] = sigma_min
                    out[L.O_VAL2] = APPROACH_DWELL - mem[L.M_DWELL]
                else:
                    mem[L.M_APPROACH] = 0.0
                    reason = R_GOAL if out[L.O_GOAL] != 0.0 else R_TRACKING

    # ------------------------------------------------------------ 8. stops, look-ahead
    if not moving:
        brake_velocity(dq_prev, _jv(buf, n, L.J_AMAX), h, dq)
        clamp_to_bounds(dq, _jv(buf, n, L.J_CAP_LO), _jv(buf, n, L.J_CAP_HI))
    if check_ahead:
        age = measurement_age if measurement_age < cfg[L.C_STALE_TIMEOUT] \
            else cfg[L.C_STALE_TIMEOUT]
        if lookahead_phase(buf, n, rows, q, dq, h, age, sigma_min, h_sigma, have_grad):
            limited |= L_SINGULARITY
            if state != S_JOINT_MOVE:
                state = S_APPROACHING
                reason = R_BRAKING
        if out[L.O_COLLISION_ROWS] > 0.0 and collision_lookahead(buf, n, geo, dq, h, age):
            limited |= L_COLLISION
            if state != S_JOINT_MOVE:
                state = S_APPROACHING_COLLISION
                reason = R_COLLISION_BRAKING

    # ------------------------------------------------------------ 9. position command
    if moving:
        mem[L.M_SCALE] = scale
        if joint_move:
            out[L.O_SCALE] = 1.0
        elif progress > 0.0:
            # the share of the twist delivered, after any look-ahead brake
            peak = _peak(dq)
            r = peak / peak_qp if peak < peak_qp else 1.0
            share = progress * r if progress < 1.0 else r
            out[L.O_SCALE] = share if share < scale else scale
    else:
        mem[L.M_SCALE] = 0.0
        limited = 0
    integrate_phase(buf, n, q, dq, h, moving, measurement_age <= cfg[L.C_PERIOD],
                    measurement_age <= cfg[L.C_DT_MAX])
    out[L.O_LIMITED] = limited
    out[L.O_STATE] = state
    out[L.O_REASON] = reason
    if mode == MODE_POSE:
        out[L.O_POSE_CYCLE] = 1.0
        if out[L.O_NEW_GOAL] != 0.0 or out[L.O_BLOCKED] != 0.0 or reason == R_BARRIER:
            out[L.O_GOAL_EVENT] = 1.0
    return state


@kernel
def _active_pair(geo, n):
    """(pair index, distance [m]) of the nearest collision row active at the QP's
    solution (of the nearest row if none is)."""
    _caps, _world, _obs, dist, _A, _b, row_pair, active, _mu, _s = geo_views(geo, n)
    best = -1.0
    best_d = math.inf
    for pass_ in range(2):
        for r in range(1, row_pair.shape[0]):
            if row_pair[r] < 0.0 or (pass_ == 0 and active[r] == 0.0):
                continue
            d = dist[int(row_pair[r]), 0]
            if d < best_d:
                best_d = d
                best = row_pair[r]
        if best >= 0.0:
            break
    return best, best_d


@kernel
def collision_lookahead(buf, n, geo, dq, h, age):
    """Brake now (dq ← the braking command, clamped to the position caps) if a
    collision row's pair, moving on at ``dq`` for ``2.5 h + age + t_brake/2`` (the
    braking time ``t_brake = maxᵢ |dqᵢ|/a_maxᵢ``), would come closer than the rows'
    aim, collision_stop_distance + ``COLLISION_MARGIN``, to first order; the prediction and the pair go into
    out's values.  Returns True when it braked."""
    cfg = block(buf, n, L.B_CFG)
    out = block(buf, n, L.B_OUT)
    amax = _jv(buf, n, L.J_AMAX)
    _caps, _world, _obs, dist, A, _b, row_pair, _act, _mu, _s = geo_views(geo, n)
    t_brake = 0.0
    for i in range(n):
        t = abs(dq[i]) / amax[i]
        if t > t_brake:
            t_brake = t
    horizon = 2.5 * h + age + 0.5 * t_brake
    m = 1 + int(out[L.O_COLLISION_ROWS])
    stop = cfg[L.C_COLLISION_STOP_DISTANCE] + COLLISION_MARGIN
    for r in range(1, m):
        rate = 0.0
        for i in range(n):
            rate += A[r, i] * dq[i]
        if rate >= 0.0:
            continue
        d = dist[int(row_pair[r]), 0]
        ahead = d + rate * horizon
        if ahead < stop:
            out[L.O_VAL1] = ahead
            out[L.O_VAL2] = row_pair[r]
            brake_velocity(_jv(buf, n, L.J_DQ_PREV), amax, h, dq)
            clamp_to_bounds(dq, _jv(buf, n, L.J_CAP_LO), _jv(buf, n, L.J_CAP_HI))
            return True
    return False


@kernel
def control_cycle(rows, buf, geo, pairs, q, target, dt, measurement_age, target_age, paused):
    """``control_step`` with its inputs passed in: the measured q (Shape (n,)) is
    copied to the ``J_Q_IN`` vector and the target (None: hold; a (4, 4)
    ``T_base_target``: pose; a (6,) twist) to the target block, then the cycle runs
    with the mode the target's shape gives.  Returns the state code, or −1 without
    touching ``buf`` when q is not Shape (n,) or the target has another shape (the
    caller then checks the input itself and calls ``control_step``).

    One call instead of Python copies and a call: ``Controller.step`` passes its
    inputs straight through when they are float64 arrays of these kinds (C order).
    """
    n = int(buf[L.C_N])
    if q.shape[0] != n:
        return -1
    mode = MODE_HOLD
    if target is not None:
        if target.ndim == 2 and target.shape[0] == 4 and target.size == 16:
            mode = MODE_POSE
        elif target.ndim == 1 and target.size == 6:
            mode = MODE_TWIST
        else:
            return -1
        flat = target.reshape(target.size)
        o = block_offset(n, L.B_TARGET)
        for i in range(flat.shape[0]):
            buf[o + i] = flat[i]
    o = block_offset(n, L.B_JOINTS) + L.J_Q_IN * n
    for i in range(n):
        buf[o + i] = q[i]
    return control_step(rows, buf, geo, pairs, mode, dt, measurement_age, target_age, paused)


@kernel
def _peak(v):
    """maxᵢ |vᵢ|."""
    peak = 0.0
    for i in range(v.shape[0]):
        if abs(v[i]) > peak:
            peak = abs(v[i])
    return peak


@kernel
def _bound_joint(buf, n):
    """Index of the first joint the QP held at a position bound (0 if none)."""
    work = _jv(buf, n, L.J_QP_W)
    lo = _jv(buf, n, L.J_LO)
    hi = _jv(buf, n, L.J_HI)
    cap_lo = _jv(buf, n, L.J_CAP_LO)
    cap_hi = _jv(buf, n, L.J_CAP_HI)
    for i in range(n):
        if (work[i] > 0.0 and hi[i] == cap_hi[i]) or (work[i] < 0.0 and lo[i] == cap_lo[i]):
            return i
    return 0


@kernel
def _leaves_singularity(buf, n, rows, q, dq, peak, sigma_min):
    """True if a probe step of LEAVE_PROBE along dq raises σ_min (values in out)."""
    out = block(buf, n, L.B_OUT)
    placements, axes, types, frames, J, scratch = _chain(buf, n)
    q_probe = _jv(buf, n, L.J_Q_PROBE)
    step = LEAVE_PROBE / peak
    for i in range(n):
        q_probe[i] = q[i] + dq[i] * step
    s_probe, _, _ = sigma_at(placements, axes, types, q_probe, rows, frames, J, scratch[1],
                             True)
    if s_probe > sigma_min * (1.0 + 1e-4) + 1e-6:
        out[L.O_VAL2] = s_probe
        return True
    return False
