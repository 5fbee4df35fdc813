"""σ_min at the measured position and ahead of it: the look-ahead of a control cycle.

Pure ``jit.kernel`` functions, no allocation.

* ``sigma_at``: (σ_min, σ_max, manipulability) of the task Jacobian at q.
* ``rest_sigma``: σ_min where the arm would come to rest if it braked after this
  cycle, ``q + dq (LOOKAHEAD_CYCLES dt + age + t_brake/2)``, ``t_brake = maxᵢ
  |dqᵢ|/a_maxᵢ`` (and halfway there).
"""

import math

from jacobian_ik.kernels.jit import kernel
from jacobian_ik.kernels.kinematics import fk_jacobian, scratch_views, sigma_extremes

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


@kernel
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


@kernel
def sigma_at(placements, axes, types, q, rows, frames, J, scratch, warm):
    """(σ_min, σ_max, manipulability) of the task Jacobian at q (frames, J overwritten)."""
    G, L, M, X_min, X_max, Y, tmp = scratch_views(scratch)
    fk_jacobian(placements, axes, types, q, frames, J)
    return sigma_extremes(J, rows, G, L, X_min, X_max, Y, warm, 50, 1e-5)


@kernel
def rest_sigma(placements, axes, types, q, dq, amax, dt, age, rows, frames, J, scratch,
                q_probe, sigma_min, sigma_stop, lipschitz):
    """Smallest σ_min at the middle and the end of the straight joint-space path on
    which the arm comes to rest if it moves with dq for one cycle and then brakes at
    its acceleration limits: ``q + dq·(LOOKAHEAD_CYCLES dt + age + t_brake/2)``,
    ``t_brake = maxᵢ |dqᵢ|/aᵢ`` (the discrete braking adds half a cycle, the command
    taking effect one more, and the measurement was taken ``age`` [s] ago).

    σ_min is Lipschitz in q: ``|σ(q + Δq) − σ(q)| ≤ lipschitz·‖Δq‖₁``.  Returns
    (value, certified): (``sigma_min``, True) when the whole path is provably above
    ``sigma_stop`` from q alone; (the end's σ, True) when both halves are (from q and
    from the end); else the smaller of the end's and the middle's, and whether the
    three samples prove each half above ``sigma_stop`` (a half of length ℓ between
    values a and b stays above ``(a + b − lipschitz·ℓ)/2``).
    """
    n = q.shape[0]
    step = 0.0
    for i in range(n):
        step += abs(dq[i])
    horizon = rest_horizon(dq, amax, dt, age)
    reach = lipschitz * step * horizon       # bound on |σ change| over the whole path
    if sigma_min - reach >= sigma_stop:
        return sigma_min, True
    for i in range(n):
        q_probe[i] = q[i] + dq[i] * horizon
    s_end, _, _ = sigma_at(placements, axes, types, q_probe, rows, frames, J, scratch[1],
                            True)
    if sigma_min - 0.5 * reach >= sigma_stop and s_end - 0.5 * reach >= sigma_stop:
        return s_end, True                   # both halves provably above
    for i in range(n):
        q_probe[i] = q[i] + dq[i] * (0.5 * horizon)
    s_mid, _, _ = sigma_at(placements, axes, types, q_probe, rows, frames, J, scratch[2],
                            True)
    certified = (sigma_min + s_mid - 0.5 * reach >= 2.0 * sigma_stop
                 and s_mid + s_end - 0.5 * reach >= 2.0 * sigma_stop)
    return (s_mid if s_mid < s_end else s_end), certified


@kernel
def rest_horizon(dq, amax, dt, age):
    """[s] how long the arm moves along dq if it brakes after this cycle:
    ``LOOKAHEAD_CYCLES dt + age + t_brake/2``, ``t_brake = maxᵢ |dqᵢ|/aᵢ``."""
    t_brake = 0.0
    for i in range(dq.shape[0]):
        t = abs(dq[i]) / amax[i]
        if t > t_brake:
            t_brake = t
    return LOOKAHEAD_CYCLES * dt + age + 0.5 * t_brake


@kernel
def linear_rest_sigma(sigma, grad, dq, amax, dt, age):
    """First-order σ_min at the rest point: ``σ + (∇σ·dq)·rest_horizon``.  Near a
    singularity σ_min is V-shaped (|distance| to the singular set), so this bound is
    below the true value, and it sees a crossing that samples on both sides of the
    singular set would miss."""
    rate = 0.0
    for i in range(dq.shape[0]):
        rate += grad[i] * dq[i]
    return sigma + rate * rest_horizon(dq, amax, dt, age)


@kernel
def path_min_sigma(placements, axes, types, q_start, step, rows, samples, frames, J, scratch,
                   q_probe):
    """Smallest σ_min of the task Jacobian at ``q_start + step·t`` for t = i/samples,
    i = 1..samples (the straight joint-space path, without its start).  ``scratch``
    Shape (5, s, s); σ is found from a cold start at the first sample, then each
    sample starts from the last one's subspaces."""
    lowest = math.inf
    n = q_start.shape[0]
    for i in range(1, samples + 1):
        t = i / samples
        for j in range(n):
            q_probe[j] = q_start[j] + step[j] * t
        s, _, _ = sigma_at(placements, axes, types, q_probe, rows, frames, J, scratch, i > 1)
        if s < lowest:
            lowest = s
    return lowest
