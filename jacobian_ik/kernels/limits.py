"""Joint limits of one control cycle: velocity, acceleration and position bounds,
and the straight-line brake that every stop uses.

Pure ``jit.kernel`` functions over float64 arrays of Shape (n,), writing in
place; no allocation.
"""

import math

from jacobian_ik.kernels.jit import kernel


@kernel
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


@kernel
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


@kernel
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


@kernel
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


@kernel
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


@kernel
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


