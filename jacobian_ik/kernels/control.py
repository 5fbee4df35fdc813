"""The control cycle kernel: one call per control cycle, no allocation.

``control_step`` runs the whole cycle of ``jacobian_ik.controller.Controller``:
input checks, forward kinematics and Jacobian at the measured position, σ_min,
the task twist, the damped least squares inverse, the singularity speed scale,
the look-ahead, the safety state machine, the velocity, acceleration and joint
position limits, and the position command.  Everything it needs and keeps lives
in one float64 array ``buf`` (plus the int64 task ``rows``), so a call costs two
array arguments of dispatch.  ``buf`` is laid out by ``layout(n)``:

=============  ==========================  =======================================
block          size                        content
=============  ==========================  =======================================
cfg            NCFG                        tuning values, slots ``C_*``
joints         NJB · n                     per-joint blocks, block ``J_*`` at
                                           ``joints + J_* · n``
mem            NMEM                        state kept between cycles, ``M_*``
target         16                          pose row-major (4, 4) or twist (6,)
out            NOUT                        result metrics, ``O_*``
twist          18                          scratch: twist v (6), pose error (6), (6)
placements     16 (n+1)                    the chain (``kernels.kinematics``)
axes           3 n
types          n                           joint types as float
frames         16 (n+1)                    FK scratch
J              12 n                        Jacobian and free-column Jacobian scratch
scratch        3 · 5 s², s = max(6, n)     three ``scratch_views`` scratches: σ at q,
                                           at the look-ahead end and middle (each
                                           keeps its own warm start)
=============  ==========================  =======================================

States (``S_*``) and reasons (``R_*``) are small integers; the Python side turns
them into ``SafetyState`` members and messages.  The control law and the state
machine are documented in docs/controller.md; the pieces are:

* twist: pose mode ``v = [K_p (p_target − p_tip); K_o log(R_target R_tipᵀ)]``,
  servo mode ``v = twist``; scaled uniformly so ``‖v_lin‖ ≤ v_max`` and
  ``‖ω‖ ≤ ω_max`` (position task: linear rows only).
* DLS: ``dq = Jᵀ(JJᵀ + λ²I)⁻¹ v``, ``λ² = λ_max²(1 − (σ_min/σ_damp)²)`` below σ_damp.
* singularity scale ``s(σ) = f + (1 − f)·clip((σ − σ_stop)/(σ_warn − σ_stop), 0, 1)``
  (f = speed_scale_floor), rate-limited upward: ``s_k ≤ s_{k−1} + rate·dt``.
* velocity limit: ``dq ← dq · min(1, minᵢ v_maxᵢ/|dqᵢ|)``.
* joint position limits: toward a bound, ``dqᵢ ≤ v_brake(dᵢ)``, the speed from which
  braking at a_maxᵢ stops within the distance dᵢ to the margin; inside the margin 0.
  A joint the command would drive past its bound is held there and the other
  joints solve for the rest of the twist (``resolve_with_clamped_joints``).
* acceleration limit: the γ ≥ 0 closest to 1 with ``|γ dqᵢ − dq_prevᵢ| ≤ a_maxᵢ dt``
  (direction kept); if none exists, ``dq_prev + β (dq − dq_prev)`` with the largest
  admissible β.
* look-ahead: σ at ``q + dq (2.5 dt + age + t_brake/2)`` (and halfway), ``t_brake = maxᵢ
  |dqᵢ|/a_maxᵢ``, i.e. where the arm would come to rest if it braked after this
  cycle; below ``(1 + LOOKAHEAD_MARGIN) σ_stop`` the arm brakes now.
* brake (every stop, including a rejected or non-finite input):
  ``dq ← dq_prev · max(0, 1 − dt/t_stop)``, ``t_stop = maxᵢ |dq_prevᵢ|/a_maxᵢ``:
  straight-line deceleration at the acceleration limit from the last command.
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

from numba import njit

from jacobian_ik.kernels.kinematics import (
    damping_nakamura,
    dls_step,
    fk_jacobian,
    pose_error,
    scratch_views,
    sigma_extremes,
)

# ---------------------------------------------------------------- cfg slots
C_N = 0            # number of joints n
C_KP = 1           # position gain [1/s]
C_KO = 2           # orientation gain [1/s]
C_VLIN = 3         # max linear speed [m/s]
C_VANG = 4         # max angular speed [rad/s]
C_LMAX = 5         # lambda_max
C_SDAMP = 6        # sigma_damp
C_SWARN = 7        # sigma_warn
C_SSTOP = 8        # sigma_stop
C_SRES = 9         # sigma_resume
C_FLOOR = 10       # speed_scale_floor
C_SRATE = 11       # speed_scale_rate [1/s]
C_MARGIN = 12      # joint_limit_margin [rad]
C_STALE = 13       # stale_timeout [s]
C_TOLP = 14        # goal_position_tolerance [m]
C_TOLO = 15        # goal_orientation_tolerance [rad]
C_DRIFT = 16       # max_command_drift [rad]
C_POSE = 17        # 1: pose task (6 rows), 0: position task
C_DTMAX = 18       # largest dt used for limits [s]
C_LIPSCHITZ = 19   # bound L on |Δσ_min| / ‖Δq‖₁ (see sigma_lipschitz)
C_PERIOD = 20      # nominal control period 1/control_rate [s]
C_FROZEN = 21      # frozen_timeout [s]
NCFG = 24

# ---------------------------------------------------------------- per-joint blocks
J_LOWER = 0        # position limits [rad | m] (±inf when continuous)
J_UPPER = 1
J_VMAX = 2         # velocity limit [rad/s]
J_AMAX = 3         # acceleration limit [rad/s²]
J_CONT = 4         # 1.0 for continuous joints
J_DQPREV = 5       # last commanded velocity
J_QCMD = 6         # last position command
J_QVALID = 7       # last valid measured position
J_QIN = 8          # input: measured position
J_DQOUT = 9        # output: velocity command
J_QOUT = 10        # output: position command
J_DQTASK = 11      # scratch: DLS solution
J_QPROBE = 12      # scratch: look-ahead configuration
J_CAPLO = 13       # scratch: velocity bounds from the position limits
J_CAPHI = 14
J_HELD = 15        # scratch: velocities of joints held at their bounds (NaN: free)
NJB = 16

# ---------------------------------------------------------------- mem slots
M_SCALE = 0        # singularity speed scale of the last cycle
M_LATCH = 1        # 1: singularity safe stop latched
M_ANCHOR = 2       # ANCHOR_*: when q_cmd is next re-anchored on the measured position
M_WARM = 3         # 1: sigma subspaces hold the last cycle's
M_APPROACH = 4     # 1: APPROACHING_SINGULARITY (hysteresis flag)
M_MOVING = 5       # 1: the last cycle was a motion (not a stop)
M_DWELL = 6        # [s] APPROACHING_SINGULARITY is still held after a look-ahead brake
M_FROZEN_T = 7     # [s] commanded-motion time over which q stayed bit-identical
M_FROZEN_TRAVEL = 8  # [rad | m] commanded travel (Σ maxᵢ|dq_prevᵢ| dt) over that time
M_FROZEN_PEAK = 9  # [rad/s | m/s] largest commanded joint speed over that time
M_REST = 10        # [s] how long the command has been at rest (dq = 0)
M_FROZEN = 11      # 1: the measurement was found frozen (until it changes)
NMEM = 12

# ---------------------------------------------------------------- M_ANCHOR values
ANCHOR_NONE = 0.0      # q_cmd continues from the last command
ANCHOR_FRESH = 1.0     # re-anchor in the next motion cycle with a fresh measurement
ANCHOR_FIRST = 2.0     # no command yet: anchor on the next valid measurement

# ---------------------------------------------------------------- out slots
O_SIGMIN = 0
O_SIGMAX = 1
O_COND = 2
O_W = 3
O_SCALE = 4
O_LAMBDA = 5
O_PERR = 6
O_OERR = 7
O_GOAL = 8
O_LIMITED = 9
O_STATE = 10
O_REASON = 11
O_VAL1 = 12
O_VAL2 = 13
NOUT = 16

# ---------------------------------------------------------------- modes (target kinds)
MODE_HOLD = 0      # no target
MODE_POSE = 1      # (4, 4) T_base_target
MODE_TWIST = 2     # (6,) twist, base frame, linear first
MODE_BAD = 3       # the caller found the input malformed (shape, type)
MODE_BAD_TARGET = 4  # the caller rejected the target or its own input; q was read

# ---------------------------------------------------------------- states
S_TRACKING = 0
S_APPROACHING = 1
S_SAFE_STOP = 2
S_INVALID = 3
S_STALE = 4
S_JOINT_LIMIT = 5
S_PAUSED = 6
S_IDLE = 7

# ---------------------------------------------------------------- reasons
R_TRACKING = 0
R_GOAL = 1
R_APPROACH = 2          # val1 = sigma_min
R_STOP_SIGMA = 3        # val1 = sigma_min
R_STOP_PREDICT = 4      # val1 = predicted sigma_min, val2 = sigma_min
R_LATCHED = 5           # val1 = sigma_min
R_LEAVING = 6           # val1 = sigma_min, val2 = predicted sigma_min
R_BAD_INPUT = 7         # set by the caller
R_BAD_Q = 8             # val1 = joint index
R_BAD_TARGET = 9
R_BAD_POSE = 10         # val1 = orthonormality error
R_BAD_DT = 11           # val1 = dt
R_BAD_AGE = 12          # val1 = measurement age, val2 = target age
R_STALE_MEAS = 13       # val1 = age
R_STALE_TARGET = 14     # val1 = age
R_JOINT_OUT = 15        # val1 = joint index, val2 = position
R_JOINT_LEAVING = 16    # val1 = joint index, val2 = position
R_PAUSED = 17
R_IDLE = 18
R_BRAKING = 19        # val1 = predicted sigma_min, val2 = sigma_min
R_AHEAD = 20          # val1 = sigma_min, val2 = seconds since the look-ahead braked
R_FROZEN = 21         # val1 = frozen time [s], val2 = largest commanded speed
R_TARGET_EXPIRED = 22  # val1 = twist target age [s]; the brake has finished

# ---------------------------------------------------------------- limited bits
L_CARTESIAN = 1
L_VELOCITY = 2
L_ACCELERATION = 4
L_POSITION = 8
L_SINGULARITY = 16

#: Largest error of RᵀR − I (each entry) and of the bottom row for a valid target pose.
POSE_TOLERANCE = 1e-6
#: Length [rad] of the probe step that tells whether a command leaves a singularity.
LEAVE_PROBE = 0.01
#: APPROACHING_SINGULARITY clears only above sigma_warn · (1 + this): no flicker.
WARN_HYSTERESIS = 0.05
#: After the look-ahead braked, APPROACHING_SINGULARITY is held this long [s] even
#: where σ_min is above sigma_warn, so a fast approach does not flip back to TRACKING
#: between two braking cycles.
APPROACH_DWELL = 0.2
#: Cycles of travel the look-ahead adds to the braking distance: this one, half of one
#: for the discrete braking, and one for the command to take effect (a ros2_control
#: write, or a simulator tick).  The age of the measurement is added on top of it:
#: in a ROS loop the joint state is up to a cycle old when the cycle runs.
LOOKAHEAD_CYCLES = 2.5
#: The look-ahead brakes when the rest point's σ_min would fall below
#: sigma_stop·(1 + this): a guard band for the curvature of the real path (the
#: command turns from cycle to cycle, joints braking at their position limits bend
#: it), which the straight-line prediction does not see.
LOOKAHEAD_MARGIN = 0.1
#: Commanded travel [rad | m] (Σ maxᵢ|dq_prevᵢ|·dt) an unchanged measurement must
#: have missed, besides frozen_timeout, to count as frozen: well above the resolution
#: of a joint encoder, so a slowly commanded arm is not flagged between two counts.
FROZEN_MIN_TRAVEL = 1e-3
#: A motion starting from rest re-anchors the position command on the measurement
#: only after the command has rested this long [s]: an arm that follows position
#: commands has caught up with the command by then (no step back onto a lagging
#: measurement after a short stop).
ANCHOR_SETTLE = 0.1
#: Reported condition number when σ_min = 0 (keeps every output finite).
MAX_CONDITION = 1e12


@njit(cache=True)
def layout(n):
    """Offsets in ``buf`` for n joints: (cfg, joints, mem, target, out, twist,
    placements, axes, types, frames, J, scratch, total)."""
    s = n if n > 6 else 6
    cfg = 0
    joints = cfg + NCFG
    mem = joints + NJB * n
    target = mem + NMEM
    out = target + 16
    twist = out + NOUT
    placements = twist + 18
    axes = placements + 16 * (n + 1)
    types = axes + 3 * n
    frames = types + n
    jac = frames + 16 * (n + 1)
    scratch = jac + 12 * n      # J, then J_free
    total = scratch + 15 * s * s
    return cfg, joints, mem, target, out, twist, placements, axes, types, frames, jac, scratch, total


@njit(cache=True)
def sigma_lipschitz(placements, joint_types, rows):
    """A bound L with ``|σ_min(q + Δq) − σ_min(q)| ≤ L‖Δq‖₁`` for every q.

    Singular values move no more than the matrix (``|Δσ| ≤ ‖ΔJ‖₂ ≤ ‖ΔJ‖_F``).  A
    revolute joint k turns every distal axis zᵢ and lever ``p − pᵢ``: a linear entry of
    column i changes at most at ``2R`` and an angular one at 1 per rad, with R the
    largest joint-to-tip distance (at most the sum of the link offsets), so
    ``‖∂J/∂q_k‖_F ≤ √(n (4R² + 1))`` (``√(n 4R²)`` for a position task); a prismatic
    joint moves the tip, not the axes: at most 1 per m.
    """
    n = joint_types.shape[0]
    reach = 0.0
    for i in range(1, n + 1):
        P = placements[i]
        reach += math.sqrt(P[0, 3] * P[0, 3] + P[1, 3] * P[1, 3] + P[2, 3] * P[2, 3])
    angular = False
    for r in range(rows.shape[0]):
        if rows[r] >= 3:
            angular = True
    per_column = 4.0 * reach * reach + (1.0 if angular else 0.0)
    if per_column < 1.0:
        per_column = 1.0
    return math.sqrt(n * per_column)


@njit(cache=True)
def _sigma_at(placements, axes, types, q, rows, frames, J, scratch, warm):
    """(σ_min, σ_max, manipulability) of the task Jacobian at q (frames, J overwritten)."""
    G, L, M, X_min, X_max, Y, tmp = scratch_views(scratch)
    fk_jacobian(placements, axes, types, q, frames, J)
    return sigma_extremes(J, rows, G, L, X_min, X_max, Y, warm, 50, 1e-5)


@njit(cache=True)
def _rest_sigma(placements, axes, types, q, dq, amax, dt, age, rows, frames, J, scratch,
                q_probe, sigma_min, sigma_stop, lipschitz):
    """Smallest σ_min at the middle and the end of the straight joint-space path on
    which the arm comes to rest if it moves with dq for one cycle and then brakes at
    its acceleration limits: ``q + dq·(LOOKAHEAD_CYCLES dt + age + t_brake/2)``,
    ``t_brake = maxᵢ |dqᵢ|/aᵢ`` (the discrete braking adds half a cycle, the command
    taking effect one more, and the measurement was taken ``age`` [s] ago).

    σ_min is Lipschitz in q: ``|σ(q + Δq) − σ(q)| ≤ lipschitz·‖Δq‖₁``.  A point whose
    bound from a known σ (``sigma_min`` at q, or the end's) stays ≥ ``sigma_stop`` is
    not evaluated; returns ``sigma_min`` when the whole path is provably above it.
    """
    n = q.shape[0]
    t_brake = 0.0
    step = 0.0
    for i in range(n):
        t = abs(dq[i]) / amax[i]
        if t > t_brake:
            t_brake = t
        step += abs(dq[i])
    horizon = LOOKAHEAD_CYCLES * dt + age + 0.5 * t_brake
    reach = lipschitz * step * horizon       # bound on |σ change| over the whole path
    if sigma_min - reach >= sigma_stop:
        return sigma_min
    for i in range(n):
        q_probe[i] = q[i] + dq[i] * horizon
    s_end, _, _ = _sigma_at(placements, axes, types, q_probe, rows, frames, J, scratch[1],
                            True)
    if sigma_min - 0.5 * reach >= sigma_stop or s_end - 0.5 * reach >= sigma_stop:
        return s_end
    for i in range(n):
        q_probe[i] = q[i] + dq[i] * (0.5 * horizon)
    s_mid, _, _ = _sigma_at(placements, axes, types, q_probe, rows, frames, J, scratch[2],
                            True)
    return s_mid if s_mid < s_end else s_end


@njit(cache=True)
def brake_velocity(dq_prev, amax, dt, dq):
    """Straight-line braking: ``dq = dq_prev·max(0, 1 − dt/t_stop)`` with
    ``t_stop = maxᵢ |dq_prevᵢ|/amaxᵢ``; every |Δdqᵢ| ≤ amaxᵢ·dt."""
    n = dq.shape[0]
    t_stop = 0.0
    for i in range(n):
        t = abs(dq_prev[i]) / amax[i]
        if t > t_stop:
            t_stop = t
    f = 0.0
    if t_stop > dt:
        f = 1.0 - dt / t_stop
    for i in range(n):
        dq[i] = dq_prev[i] * f


@njit(cache=True)
def limit_velocity(dq, vmax):
    """Uniform scaling ``dq ← dq·min(1, minᵢ vmaxᵢ/|dqᵢ|)``; returns the factor."""
    r = 1.0
    for i in range(dq.shape[0]):
        a = abs(dq[i])
        if a * r > vmax[i]:
            r = vmax[i] / a
    if r < 1.0:
        for i in range(dq.shape[0]):
            dq[i] *= r
    return r


@njit(cache=True)
def limit_acceleration(dq, dq_prev, amax, vmax, dt):
    """Acceleration limit against the previous command, in place; returns the factor.

    First the γ ≥ 0 closest to 1 with ``|γ dqᵢ − dq_prevᵢ| ≤ amaxᵢ dt`` and
    ``|γ dqᵢ| ≤ vmaxᵢ`` for all i: the direction of dq is kept (γ < 1 while speeding
    up, γ > 1 while slowing down faster than the limits allow); returns γ.  If no
    such γ exists (a sharp turn), ``dq ← dq_prev + β (dq − dq_prev)`` with the largest
    admissible β ∈ [0, 1]; returns −β − 1 < 0 to tell the two apart.
    """
    n = dq.shape[0]
    lo = 0.0
    hi = math.inf
    feasible = True
    for i in range(n):
        c = amax[i] * dt
        d = dq[i]
        p = dq_prev[i]
        if d == 0.0:
            if abs(p) > c:
                feasible = False
        else:
            a = (p - c) / d
            b = (p + c) / d
            if a > b:
                a, b = b, a
            if a > lo:
                lo = a
            if b < hi:
                hi = b
            v = vmax[i] / abs(d)
            if v < hi:
                hi = v
    if feasible and lo <= hi:
        gamma = 1.0
        if hi < 1.0:
            gamma = hi
        elif lo > 1.0:
            gamma = lo
        if gamma != 1.0:
            for i in range(n):
                dq[i] *= gamma
        return gamma
    beta = 1.0
    for i in range(n):
        diff = abs(dq[i] - dq_prev[i])
        c = amax[i] * dt
        if diff * beta > c:
            beta = c / diff
    for i in range(n):
        dq[i] = dq_prev[i] + beta * (dq[i] - dq_prev[i])
    return -beta - 1.0


@njit(cache=True)
def braking_speed(d, a, dt):
    """Largest speed [rad/s] toward a bound d ≥ 0 away from which a joint braking at a
    (one step of dt, then a·dt less each step) still stops within d; 0 when d ≤ 0."""
    if d <= 0.0:
        return 0.0
    # v²/(2a) + v·dt/2 = d − a·dt²/8: the discrete braking distance exceeds the first
    # two terms by at most a·dt²/8
    d_eff = d - 0.125 * a * dt * dt
    v = 0.0
    if d_eff > 0.0:
        v = a * (math.sqrt(0.25 * dt * dt + 2.0 * d_eff / a) - 0.5 * dt)
    if v * dt > d or v < a * dt and d / dt < a * dt:
        v = d / dt
    return v


@njit(cache=True)
def joint_velocity_bounds(dq_prev, q, q_cmd, lower, upper, amax, cont, margin, dt,
                          cap_lo, cap_hi):
    """Per-joint velocity bounds ``cap_lo ≤ dq ≤ cap_hi`` from the position limits.

    Toward the upper bound the speed is at most ``braking_speed(upper − margin − q)``
    (0 inside the margin), so the joint reaches the margin at zero speed; likewise
    toward the lower bound.  q is the larger (smaller) of the measured position and
    the position command.  Where the acceleration limit cannot brake that hard (the
    measured position jumped close to a bound), the joint brakes at its acceleration
    limit into the margin, but never in one step beyond the URDF limit itself.
    Continuous joints are unbounded (±inf).
    """
    for i in range(dq_prev.shape[0]):
        if cont[i] != 0.0:
            cap_lo[i] = -math.inf
            cap_hi[i] = math.inf
            continue
        q_hi = q[i] if q[i] > q_cmd[i] else q_cmd[i]
        q_lo = q[i] if q[i] < q_cmd[i] else q_cmd[i]
        a = amax[i]
        cap = braking_speed(upper[i] - margin - q_hi, a, dt)
        slowest = dq_prev[i] - a * dt
        if cap < slowest:
            hard = (upper[i] - q_hi) / dt
            cap = slowest if slowest < hard else hard
            if cap < 0.0:
                cap = 0.0
        cap_hi[i] = cap
        cap = braking_speed(q_lo - (lower[i] + margin), a, dt)
        slowest = -dq_prev[i] - a * dt
        if cap < slowest:
            hard = (q_lo - lower[i]) / dt
            cap = slowest if slowest < hard else hard
            if cap < 0.0:
                cap = 0.0
        cap_lo[i] = -cap


@njit(cache=True)
def clamp_to_bounds(dq, cap_lo, cap_hi):
    """``dq ← clip(dq, cap_lo, cap_hi)`` per joint; returns True if any joint changed."""
    limited = False
    for i in range(dq.shape[0]):
        if dq[i] > cap_hi[i]:
            dq[i] = cap_hi[i]
            limited = True
        elif dq[i] < cap_lo[i]:
            dq[i] = cap_lo[i]
            limited = True
    return limited


@njit(cache=True)
def resolve_with_clamped_joints(J, J_free, rows, v, lam, M, tmp, cap_lo, cap_hi, held,
                                v_rest, dq):
    """Keep the task when joints reach their position bounds.

    Each joint that dq would drive past its bound is held at the bound, and the
    twist it no longer delivers is solved again by the other joints (damped least
    squares on the free columns): ``dq_free = DLS(J_free, v − Σ_held J_j dq_j)``.
    Worst violation first, at most n times.  ``v`` (6,) is the twist dq was solved
    for; ``held`` (n,) gets the held velocities (NaN for free joints); ``J_free``
    (6, n) and ``v_rest`` (6,) are scratch.  Returns the number of held joints.
    """
    n = dq.shape[0]
    for i in range(n):
        held[i] = math.nan
    count = 0
    for _ in range(n):
        worst = -1
        excess = 0.0
        for i in range(n):
            if not math.isnan(held[i]):
                continue
            e = dq[i] - cap_hi[i]
            if cap_lo[i] - dq[i] > e:
                e = cap_lo[i] - dq[i]
            if e > excess:
                excess = e
                worst = i
        if worst < 0:
            break
        held[worst] = cap_hi[worst] if dq[worst] > cap_hi[worst] else cap_lo[worst]
        count += 1
        for r in range(6):
            v_rest[r] = v[r]
        for j in range(n):
            if math.isnan(held[j]):
                for r in range(6):
                    J_free[r, j] = J[r, j]
            else:
                for r in range(6):
                    v_rest[r] -= J[r, j] * held[j]
                    J_free[r, j] = 0.0
        dls_step(J_free, rows, v_rest, lam, M, tmp, dq)
        for j in range(n):
            if not math.isnan(held[j]):
                dq[j] = held[j]
    return count


@njit(cache=True)
def _twist(tw, target, frames, n, mode, pose_task, kp, ko, vlin, vang):
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


@njit(cache=True)
def _check_inputs(q, target, mode, dt, measurement_age, target_age, out):
    """Reason code of an invalid input (values in out), or −1 when all are valid."""
    for i in range(q.shape[0]):
        if not math.isfinite(q[i]):
            out[O_VAL1] = i
            return R_BAD_Q
    if not (math.isfinite(dt) and dt > 0.0):
        out[O_VAL1] = dt if math.isfinite(dt) else 0.0
        return R_BAD_DT
    if not (math.isfinite(measurement_age) and measurement_age >= 0.0
            and math.isfinite(target_age) and target_age >= 0.0):
        out[O_VAL1] = measurement_age if math.isfinite(measurement_age) else -1.0
        out[O_VAL2] = target_age if math.isfinite(target_age) else -1.0
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
            out[O_VAL1] = worst
            return R_BAD_POSE
    return -1


@njit(cache=True)
def _update_frozen(q, q_last, dq_prev, dt, age, mem, timeout):
    """Frozen-measurement bookkeeping; True when q counts as frozen.

    While q is bit-identical to the last valid measurement ``q_last`` and the last
    command moves (``dq_prev ≠ 0``), the time (``M_FROZEN_T``), the commanded travel
    ``Σ maxᵢ|dq_prevᵢ|·dt`` (``M_FROZEN_TRAVEL``) and the largest commanded speed
    (``M_FROZEN_PEAK``) add up; any change of q clears them.  Frozen: time minus the
    measurement's ``age`` ≥ ``timeout``, and travel ≥ ``FROZEN_MIN_TRAVEL``; it stays
    frozen (``M_FROZEN``) until q changes.  Subtracting the age leaves a stream that stopped (the
    age grows with the time) to the stale check: frozen means measurements keep
    arriving and do not change.  ``dt`` is the cycle's clamped step h (at most
    MAX_DT_PERIODS periods): a late cycle of the controller itself, during which an
    arm that follows position commands rightly stood still, counts as one step.
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
        mem[M_FROZEN_T] = 0.0
        mem[M_FROZEN_TRAVEL] = 0.0
        mem[M_FROZEN_PEAK] = 0.0
        mem[M_FROZEN] = 0.0
        return False
    if peak > 0.0:
        mem[M_FROZEN_T] += dt
        mem[M_FROZEN_TRAVEL] += peak * dt
        if peak > mem[M_FROZEN_PEAK]:
            mem[M_FROZEN_PEAK] = peak
    if mem[M_FROZEN_T] - age >= timeout and mem[M_FROZEN_TRAVEL] >= FROZEN_MIN_TRAVEL:
        mem[M_FROZEN] = 1.0
    return mem[M_FROZEN] != 0.0


@njit(cache=True)
def _update_rest(dq, h, mem):
    """``M_REST``: time [s] the command has been at rest (every dqᵢ = 0), else 0."""
    for i in range(dq.shape[0]):
        if dq[i] != 0.0:
            mem[M_REST] = 0.0
            return
    mem[M_REST] += h


@njit(cache=True)
def _anchor(q, q_cmd, dq_prev, cont, mem, moving, fresh, recent, drift):
    """Whether q_cmd is re-anchored on the measured q this cycle (updates M_ANCHOR).

    ``ANCHOR_FIRST`` (no command yet): now, whatever the cycle.  A stop never
    re-anchors: the braking command is integrated on.  A motion cycle starting from a
    command at rest asks for an anchor (``ANCHOR_FRESH``, as ``resume``/``reset`` do);
    it is taken in the first motion cycle whose measurement is ``fresh`` (at most one
    control period old) if the command has been at rest for ``ANCHOR_SETTLE``
    (``M_REST``: an arm following position commands has caught up with it), and
    dropped otherwise (the command continues, never a step back onto a lagging
    measurement).  A motion cycle whose measurement is ``recent`` (at most
    MAX_DT_PERIODS periods old: a loaded ROS loop may not see one younger than a
    period for long, and a stream that stopped is not followed) also re-anchors
    when ``maxᵢ |q_cmdᵢ − qᵢ| > drift`` (the arm does not follow).
    """
    if mem[M_ANCHOR] == ANCHOR_FIRST:
        mem[M_ANCHOR] = ANCHOR_NONE
        return True
    if not moving:
        return False
    at_rest = True
    for i in range(q.shape[0]):
        if dq_prev[i] != 0.0:
            at_rest = False
            break
    if mem[M_MOVING] == 0.0 and at_rest:
        mem[M_ANCHOR] = ANCHOR_FRESH
    if fresh and mem[M_ANCHOR] == ANCHOR_FRESH:
        mem[M_ANCHOR] = ANCHOR_NONE
        if at_rest and mem[M_REST] >= ANCHOR_SETTLE:
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


@njit(cache=True)
def _reject(buf, o_j, n, mem, out, cfg, reason, q_ok, dt, cap_lo, cap_hi):
    """An INVALID_INPUT cycle: the input is not used (except a finite measurement,
    kept as the last valid one when ``q_ok``); the last command brakes at the
    acceleration limits (``brake_velocity``, then the position-limit bounds at the last
    valid position) and the position command keeps integrating it: no velocity or
    position step.  Without any command yet (``ANCHOR_FIRST``) the position command is
    the last valid measured position and the velocity zero.  A non-positive or
    non-finite dt counts as one nominal period."""
    amax = buf[o_j + J_AMAX * n:o_j + (J_AMAX + 1) * n]
    dq_prev = buf[o_j + J_DQPREV * n:o_j + (J_DQPREV + 1) * n]
    q_cmd = buf[o_j + J_QCMD * n:o_j + (J_QCMD + 1) * n]
    q_valid = buf[o_j + J_QVALID * n:o_j + (J_QVALID + 1) * n]
    q = buf[o_j + J_QIN * n:o_j + (J_QIN + 1) * n]
    dq = buf[o_j + J_DQOUT * n:o_j + (J_DQOUT + 1) * n]
    q_out = buf[o_j + J_QOUT * n:o_j + (J_QOUT + 1) * n]
    if q_ok:
        for i in range(n):          # the measurement itself is fine: keep it
            q_valid[i] = q[i]
    h = cfg[C_PERIOD]
    if math.isfinite(dt) and dt > 0.0:
        h = dt if dt < cfg[C_DTMAX] else cfg[C_DTMAX]
    if mem[M_ANCHOR] == ANCHOR_FIRST:
        for i in range(n):
            dq[i] = 0.0
            q_cmd[i] = q_valid[i]
        if q_ok:
            mem[M_ANCHOR] = ANCHOR_NONE
    else:
        brake_velocity(dq_prev, amax, h, dq)
        joint_velocity_bounds(dq_prev, q_valid, q_cmd,
                              buf[o_j + J_LOWER * n:o_j + (J_LOWER + 1) * n],
                              buf[o_j + J_UPPER * n:o_j + (J_UPPER + 1) * n], amax,
                              buf[o_j + J_CONT * n:o_j + (J_CONT + 1) * n], cfg[C_MARGIN], h,
                              cap_lo, cap_hi)
        clamp_to_bounds(dq, cap_lo, cap_hi)
    for i in range(n):
        q_out[i] = q_cmd[i] + dq[i] * h
        q_cmd[i] = q_out[i]
        dq_prev[i] = dq[i]
    _update_rest(dq, h, mem)
    mem[M_MOVING] = 0.0
    mem[M_SCALE] = 0.0
    out[O_STATE] = S_INVALID
    out[O_REASON] = reason


@njit(cache=True)
def control_step(rows, buf, mode, dt, measurement_age, target_age, paused):
    """One control cycle on the controller memory ``buf`` (see the module docstring).

    Inputs: measured q in the ``J_QIN`` block and the target in the target block
    (written by the caller), ``mode`` (``MODE_*``), ``dt`` [s] since the last cycle,
    ``measurement_age`` and ``target_age`` [s], ``paused`` (bool).  Outputs: the
    ``J_DQOUT`` and ``J_QOUT`` blocks and the out block; returns the state code.
    """
    n = int(buf[C_N])
    (o_cfg, o_j, o_mem, o_tgt, o_out, o_tw, o_pl, o_ax, o_ty, o_fr, o_jac, o_sc,
     total) = layout(n)
    cfg = buf[o_cfg:o_cfg + NCFG]
    mem = buf[o_mem:o_mem + NMEM]
    target = buf[o_tgt:o_tgt + 16]
    out = buf[o_out:o_out + NOUT]
    tw = buf[o_tw:o_tw + 18]
    placements = buf[o_pl:o_ax].reshape((n + 1, 4, 4))
    axes = buf[o_ax:o_ty].reshape((n, 3))
    types = buf[o_ty:o_fr]
    frames = buf[o_fr:o_jac].reshape((n + 1, 4, 4))
    J = buf[o_jac:o_jac + 6 * n].reshape((6, n))
    J_free = buf[o_jac + 6 * n:o_sc].reshape((6, n))
    s_ = n if n > 6 else 6
    scratch = buf[o_sc:total].reshape((3, 5, s_, s_))
    lower = buf[o_j + J_LOWER * n:o_j + (J_LOWER + 1) * n]
    upper = buf[o_j + J_UPPER * n:o_j + (J_UPPER + 1) * n]
    vmax = buf[o_j + J_VMAX * n:o_j + (J_VMAX + 1) * n]
    amax = buf[o_j + J_AMAX * n:o_j + (J_AMAX + 1) * n]
    cont = buf[o_j + J_CONT * n:o_j + (J_CONT + 1) * n]
    dq_prev = buf[o_j + J_DQPREV * n:o_j + (J_DQPREV + 1) * n]
    q_cmd = buf[o_j + J_QCMD * n:o_j + (J_QCMD + 1) * n]
    q_valid = buf[o_j + J_QVALID * n:o_j + (J_QVALID + 1) * n]
    q = buf[o_j + J_QIN * n:o_j + (J_QIN + 1) * n]
    dq = buf[o_j + J_DQOUT * n:o_j + (J_DQOUT + 1) * n]
    q_out = buf[o_j + J_QOUT * n:o_j + (J_QOUT + 1) * n]
    dq_task = buf[o_j + J_DQTASK * n:o_j + (J_DQTASK + 1) * n]
    q_probe = buf[o_j + J_QPROBE * n:o_j + (J_QPROBE + 1) * n]
    cap_lo = buf[o_j + J_CAPLO * n:o_j + (J_CAPLO + 1) * n]
    cap_hi = buf[o_j + J_CAPHI * n:o_j + (J_CAPHI + 1) * n]
    held = buf[o_j + J_HELD * n:o_j + (J_HELD + 1) * n]
    G, L, M, X_min, X_max, Y, tmp = scratch_views(scratch[0])

    out[O_VAL1] = 0.0
    out[O_VAL2] = 0.0
    out[O_PERR] = 0.0
    out[O_OERR] = 0.0
    out[O_GOAL] = 0.0
    out[O_LIMITED] = 0.0
    out[O_SCALE] = 0.0

    # ------------------------------------------------------------ 1. input checks
    reason = R_BAD_INPUT
    if mode != MODE_BAD:
        reason = _check_inputs(q, target, mode, dt, measurement_age, target_age, out)
        if mode == MODE_BAD_TARGET and reason < 0:
            reason = R_BAD_INPUT
    if reason >= 0:
        _reject(buf, o_j, n, mem, out, cfg, reason, mode != MODE_BAD and reason != R_BAD_Q,
                dt, cap_lo, cap_hi)
        return S_INVALID
    h = dt if dt < cfg[C_DTMAX] else cfg[C_DTMAX]   # dt used for limits and integration
    if mem[M_DWELL] > 0.0:
        mem[M_DWELL] = mem[M_DWELL] - h if mem[M_DWELL] > h else 0.0
    frozen = _update_frozen(q, q_valid, dq_prev, h, measurement_age, mem, cfg[C_FROZEN])
    for i in range(n):
        q_valid[i] = q[i]

    # ------------------------------------------------------------ 2. kinematics at q
    sigma_min, sigma_max, w = _sigma_at(placements, axes, types, q, rows, frames, J,
                                        scratch[0], mem[M_WARM] != 0.0)
    if mem[M_WARM] == 0.0:
        # the look-ahead subspaces start from the ones just found at q
        scratch[1, 3, :, :] = scratch[0, 3, :, :]
        scratch[2, 3, :, :] = scratch[0, 3, :, :]
    mem[M_WARM] = 1.0
    out[O_SIGMIN] = sigma_min
    out[O_SIGMAX] = sigma_max
    out[O_W] = w
    out[O_COND] = sigma_max / sigma_min if sigma_min * MAX_CONDITION > sigma_max \
        else MAX_CONDITION
    lam = damping_nakamura(sigma_min, cfg[C_LMAX], cfg[C_SDAMP])
    out[O_LAMBDA] = lam
    s_stop = cfg[C_SSTOP]
    s_warn = cfg[C_SWARN]
    if mem[M_LATCH] != 0.0 and sigma_min > cfg[C_SRES]:
        mem[M_LATCH] = 0.0

    # ------------------------------------------------------------ 3. which case
    out_index = -1          # first joint outside its URDF limits
    for i in range(n):
        if cont[i] == 0.0 and (q[i] < lower[i] or q[i] > upper[i]):
            out_index = i
            break
    state = S_TRACKING
    reason = R_TRACKING
    moving = False
    have_task = False
    scale = 0.0
    r = 1.0
    peak_task = 0.0         # largest joint speed of the unscaled DLS solution
    if measurement_age > cfg[C_STALE]:
        state = S_STALE
        reason = R_STALE_MEAS
        out[O_VAL1] = measurement_age
    elif frozen:
        state = S_STALE
        reason = R_FROZEN
        out[O_VAL1] = mem[M_FROZEN_T]
        out[O_VAL2] = mem[M_FROZEN_PEAK]
    elif paused:
        state = S_PAUSED
        reason = R_PAUSED
    elif mode == MODE_TWIST and target_age > cfg[C_STALE]:
        # the twist stream ended: brake (STALE_INPUT), then hold (IDLE)
        state = S_IDLE
        reason = R_TARGET_EXPIRED
        for i in range(n):
            if dq_prev[i] != 0.0:
                state = S_STALE
                reason = R_STALE_TARGET
        out[O_VAL1] = target_age
    else:
        # stops that a target may leave (decided below), then the free cases
        have_task = mode != MODE_HOLD
        if out_index >= 0:
            state = S_JOINT_LIMIT
            reason = R_JOINT_OUT
            out[O_VAL1] = out_index
            out[O_VAL2] = q[out_index]
        elif mem[M_LATCH] != 0.0:
            state = S_SAFE_STOP
            reason = R_LATCHED
            out[O_VAL1] = sigma_min
        elif not have_task:
            state = S_IDLE
            reason = R_IDLE

    if have_task or mode == MODE_POSE:
        perr, oerr, clamped = _twist(tw, target, frames, n, mode, cfg[C_POSE] != 0.0,
                                     cfg[C_KP], cfg[C_KO], cfg[C_VLIN], cfg[C_VANG])
        if mode == MODE_POSE:
            out[O_PERR] = perr
            out[O_OERR] = oerr
            if perr <= cfg[C_TOLP] and (cfg[C_POSE] == 0.0 or oerr <= cfg[C_TOLO]):
                out[O_GOAL] = 1.0
        if clamped and have_task:
            out[O_LIMITED] = L_CARTESIAN

    limited = int(out[O_LIMITED])
    # velocity bounds from the joint position limits, for every path below
    joint_velocity_bounds(dq_prev, q, q_cmd if mem[M_ANCHOR] != ANCHOR_FIRST else q, lower,
                          upper, amax, cont, cfg[C_MARGIN], h, cap_lo, cap_hi)
    check_ahead = False     # a motion that must pass the look-ahead
    if have_task:
        # ---------------------------------------------------- 4. DLS and scaling
        dls_step(J, rows, tw, lam, M, tmp, dq_task)
        for i in range(n):
            a = abs(dq_task[i])
            if a > peak_task:
                peak_task = a
        ramp = 0.0
        if sigma_min > s_stop:
            ramp = (sigma_min - s_stop) / (s_warn - s_stop)
            if ramp > 1.0:
                ramp = 1.0
        s_sigma = cfg[C_FLOOR] + (1.0 - cfg[C_FLOOR]) * ramp
        scale = mem[M_SCALE] + cfg[C_SRATE] * h
        if s_sigma < scale:
            scale = s_sigma
        if s_sigma < 1.0:
            limited |= L_SINGULARITY
        for i in range(n):
            dq[i] = scale * dq_task[i]
        r = limit_velocity(dq, vmax)
        out_of_bounds = False
        for i in range(n):
            if dq[i] > cap_hi[i] or dq[i] < cap_lo[i]:
                out_of_bounds = True
        if out_of_bounds:
            # joints at their position bounds: the others take over their share
            v_eff = tw[6:12]
            for k in range(6):
                v_eff[k] = scale * r * tw[k]
            lam_free = lam if lam > cfg[C_LMAX] else cfg[C_LMAX]
            resolve_with_clamped_joints(J, J_free, rows, v_eff, lam_free, M, tmp, cap_lo,
                                        cap_hi, held, tw[12:18], dq)
            r *= limit_velocity(dq, vmax)
            limited |= L_POSITION
        if r < 1.0:
            limited |= L_VELOCITY
        peak = 0.0
        for i in range(n):
            a = abs(dq[i])
            if a > peak:
                peak = a

        # ---------------------------------------------------- 5. safety decisions
        if state == S_JOINT_LIMIT:
            # outside the URDF limits: only a command taking every such joint back moves
            leaves = peak > 0.0
            for i in range(n):
                if cont[i] == 0.0 and ((q[i] < lower[i] and not dq[i] > 0.0)
                                       or (q[i] > upper[i] and not dq[i] < 0.0)):
                    leaves = False
            if leaves:
                reason = R_JOINT_LEAVING
                f = cfg[C_FLOOR] / scale if scale > cfg[C_FLOOR] else 1.0
                for i in range(n):
                    dq[i] *= f
                moving = True
        elif state == S_SAFE_STOP:
            # safe stop latched: only a command that raises sigma_min moves (reduced speed)
            if peak > 0.0:
                step = LEAVE_PROBE / peak
                for i in range(n):
                    q_probe[i] = q[i] + dq[i] * step
                s_probe, _, _ = _sigma_at(placements, axes, types, q_probe, rows, frames, J,
                                          scratch[1], True)
                if s_probe > sigma_min * (1.0 + 1e-4) + 1e-6:
                    reason = R_LEAVING
                    out[O_VAL2] = s_probe
                    moving = True
        elif sigma_min < s_stop:
            state = S_SAFE_STOP
            reason = R_STOP_SIGMA
            out[O_VAL1] = sigma_min
            mem[M_LATCH] = 1.0
        else:
            moving = True
            check_ahead = True
            if sigma_min < s_warn or (mem[M_APPROACH] != 0.0
                                      and sigma_min < s_warn * (1.0 + WARN_HYSTERESIS)):
                state = S_APPROACHING
                reason = R_APPROACH
                out[O_VAL1] = sigma_min
                mem[M_APPROACH] = 1.0
            elif mem[M_DWELL] > 0.0:
                state = S_APPROACHING
                reason = R_AHEAD
                out[O_VAL1] = sigma_min
                out[O_VAL2] = APPROACH_DWELL - mem[M_DWELL]
            else:
                mem[M_APPROACH] = 0.0
                reason = R_GOAL if out[O_GOAL] != 0.0 else R_TRACKING

    # ------------------------------------------------------------ 6. limits, look-ahead
    if moving:
        if limit_acceleration(dq, dq_prev, amax, vmax, h) != 1.0:
            limited |= L_ACCELERATION
    else:
        brake_velocity(dq_prev, amax, h, dq)
    if clamp_to_bounds(dq, cap_lo, cap_hi):
        limited |= L_POSITION
    if check_ahead:
        s_guard = s_stop * (1.0 + LOOKAHEAD_MARGIN)
        age = min(measurement_age, cfg[C_STALE])
        s_a = _rest_sigma(placements, axes, types, q, dq, amax, h, age, rows, frames, J,
                          scratch, q_probe, sigma_min, s_guard, cfg[C_LIPSCHITZ])
        if s_a < s_guard and s_a < sigma_min:
            # Braking after this cycle would end below the guard: brake now.  Far from
            # the stop, blend the command with the brake so the arm rests at the guard
            # (both are within the acceleration limits, so is the blend); near it
            # (sigma_min < sigma_resume), latch the safe stop.
            out[O_VAL1] = s_a
            out[O_VAL2] = sigma_min
            limited |= L_SINGULARITY
            mem[M_APPROACH] = 1.0
            mem[M_DWELL] = APPROACH_DWELL + h
            for i in range(n):
                dq_task[i] = dq[i]
            brake_velocity(dq_prev, amax, h, dq)
            clamp_to_bounds(dq, cap_lo, cap_hi)
            if sigma_min < cfg[C_SRES]:
                state = S_SAFE_STOP
                reason = R_STOP_PREDICT
                mem[M_LATCH] = 1.0
                moving = False
            else:
                state = S_APPROACHING
                reason = R_BRAKING
                s_b = _rest_sigma(placements, axes, types, q, dq, amax, h, age, rows, frames,
                                  J, scratch, q_probe, sigma_min, s_guard, cfg[C_LIPSCHITZ])
                if s_b > s_guard:
                    t = (s_b - s_guard) / (s_b - s_a)
                    for i in range(n):
                        dq[i] += t * (dq_task[i] - dq[i])

    # ------------------------------------------------------------ 7. position command
    if moving:
        mem[M_SCALE] = scale
        peak = 0.0
        for i in range(n):
            a = abs(dq[i])
            if a > peak:
                peak = a
        if peak_task > 0.0:
            out[O_SCALE] = peak / peak_task if peak < peak_task else 1.0
    else:
        mem[M_SCALE] = 0.0
        limited = 0
    anchor = _anchor(q, q_cmd, dq_prev, cont, mem, moving, measurement_age <= cfg[C_PERIOD],
                     measurement_age <= cfg[C_DTMAX], cfg[C_DRIFT])
    if anchor:
        for i in range(n):
            q_cmd[i] = q[i]
    mem[M_MOVING] = 1.0 if moving else 0.0
    for i in range(n):
        q_out[i] = q_cmd[i] + dq[i] * h
        q_cmd[i] = q_out[i]
        dq_prev[i] = dq[i]
    _update_rest(dq, h, mem)
    out[O_LIMITED] = limited
    out[O_STATE] = state
    out[O_REASON] = reason
    return state
