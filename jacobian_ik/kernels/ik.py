"""Inverse kinematics kernels: Levenberg–Marquardt iterations with joint limits.

``ik_attempt`` runs one descent from a seed; ``random_seed_configuration`` draws a
restart within the limits; ``seed_rng`` seeds numba's generator so a solve is
deterministic.  The driver with restarts and the time budget is
``jacobian_ik.ik.solve_ik``.

Error of a configuration q (``ik_error``): with ``T = T_base_tip(q)`` and the target
``T_t = (R_t, p_t)``, ``e = [p_t − p; log(R_t Rᵀ)]`` in the base frame (the
controller's ``pose_error``).  The success test expresses it in the target frame,
``e_t = diag(R_tᵀ, R_tᵀ) e``, and needs ``maxᵢ |e_tᵢ| ≤ tol``: each of x, y, z [m] and
of the rotation vector's components about the target's x, y, z axes [rad] (roll,
pitch, yaw to first order) within tol, the test TRAC-IK uses.

Step (Sugihara's Levenberg–Marquardt): ``dq = Jᵀ(JJᵀ + λ²I)⁻¹ e`` with
``λ² = ½‖e‖² + λ_bias²``; the step is shortened so no joint moves more than
``max_step``; then revolute/prismatic joints are clipped to their limits and
continuous joints wrapped to [−π, π].
"""

import math

import numpy as np

from jacobian_ik.kernels.jit import kernel
from jacobian_ik.kernels.kinematics import dls_step, fk_jacobian, pose_error

#: Damping bias λ_bias² of the Levenberg–Marquardt step (keeps it finite at singularities).
LAMBDA_BIAS2 = 1e-9
#: Largest change of any joint in one iteration [rad | m].
MAX_STEP = 0.6
#: An attempt gives up when the error has not fallen below this fraction of its value
#: STALL_WINDOW iterations earlier.
STALL_RATIO = 0.9
STALL_WINDOW = 8


@kernel
def seed_rng(seed):
    """Seed numba's random generator (used by ``random_seed_configuration``)."""
    np.random.seed(seed)


@kernel
def random_seed_configuration(lower, upper, cont, q):
    """Uniform configuration within the limits ([−π, π] for continuous joints) into q."""
    for i in range(q.shape[0]):
        if cont[i] != 0.0:
            q[i] = np.random.uniform(-math.pi, math.pi)
        else:
            q[i] = np.random.uniform(lower[i], upper[i])


@kernel
def ik_error(T_tip, T_target, err):
    """Base-frame error ``err`` (6,) and the largest component of it expressed in the
    target frame (the success measure); returns (max |e_t|, ‖err‖²)."""
    pose_error(T_tip, T_target, err)
    worst = 0.0
    norm2 = 0.0
    for blk in range(2):
        o = 3 * blk
        for c in range(3):
            v = T_target[0, c] * err[o] + T_target[1, c] * err[o + 1] + T_target[2, c] * err[o + 2]
            if abs(v) > worst:
                worst = abs(v)
        for r in range(3):
            norm2 += err[o + r] * err[o + r]
    return worst, norm2


@kernel
def ik_attempt(placements, axes, joint_types, lim, T_target, tol, max_iter, rows,
               frames, J, M, tmp, err, dq, history, q):
    """Levenberg–Marquardt descent from q (updated in place) for at most max_iter steps.

    Returns (converged, iterations, max |e_t| at the returned q).  Stops early when
    the error stalls (not below STALL_RATIO of its value STALL_WINDOW steps before).
    ``lim`` (3, n): lower, upper, continuous flag.  Workspace: frames (n+1, 4, 4),
    J (6, n), M (≥ m, ≥ m), tmp (≥ m,), m = min(6, n), err (6,), dq (n,),
    history (STALL_WINDOW,); rows = arange(6).
    """
    n = q.shape[0]
    lower = lim[0]
    upper = lim[1]
    cont = lim[2]
    worst = math.inf
    it = 0
    while True:
        fk_jacobian(placements, axes, joint_types, q, frames, J)
        worst, norm2 = ik_error(frames[n], T_target, err)
        if worst <= tol:
            return True, it, worst
        if it >= max_iter:
            break
        slot = it % STALL_WINDOW
        if it >= STALL_WINDOW and norm2 > STALL_RATIO * STALL_RATIO * history[slot]:
            break
        history[slot] = norm2
        it += 1
        lam = math.sqrt(0.5 * norm2 + LAMBDA_BIAS2)
        dls_step(J, rows, err, lam, M, tmp, dq)
        big = 0.0
        for i in range(n):
            if abs(dq[i]) > big:
                big = abs(dq[i])
        f = MAX_STEP / big if big > MAX_STEP else 1.0
        for i in range(n):
            v = q[i] + f * dq[i]
            if cont[i] != 0.0:
                v -= 2.0 * math.pi * math.floor((v + math.pi) / (2.0 * math.pi))
            elif v < lower[i]:
                v = lower[i]
            elif v > upper[i]:
                v = upper[i]
            q[i] = v
    return False, it, worst


@kernel
def ik_search(placements, axes, joint_types, lim, T_target, rows, ws, q, q_best, tol,
              budget, attempt_iter, restart):
    """Attempts of ``ik_attempt`` until success or ``budget`` iterations are spent.

    The first attempt starts from q unless ``restart``; later ones from random
    configurations (``random_seed_configuration``).  q ends as the solution (on
    success) and q_best as the best configuration seen (smallest max |e_t|, whose
    value is kept in ``ws[0]``, +inf initially).  ``ws`` is the flat workspace of
    ``ik_workspace_size(n)``.  Returns (success, iterations, best max |e_t|).
    """
    n = q.shape[0]
    s = 6 if n > 6 else n
    o = 1
    frames = ws[o:o + 16 * (n + 1)].reshape((n + 1, 4, 4))
    o += 16 * (n + 1)
    J = ws[o:o + 6 * n].reshape((6, n))
    o += 6 * n
    M = ws[o:o + s * s].reshape((s, s))
    o += s * s
    tmp = ws[o:o + s]
    o += s
    err = ws[o:o + 6]
    o += 6
    dq = ws[o:o + n]
    o += n
    history = ws[o:o + STALL_WINDOW]
    used = 0
    first = not restart
    while used < budget:
        if not first:
            random_seed_configuration(lim[0], lim[1], lim[2], q)
        first = False
        limit = attempt_iter if attempt_iter < budget - used else budget - used
        ok, it, worst = ik_attempt(placements, axes, joint_types, lim, T_target, tol, limit,
                                   rows, frames, J, M, tmp, err, dq, history, q)
        used += it + 1
        if worst < ws[0]:
            ws[0] = worst
            for i in range(n):
                q_best[i] = q[i]
        if ok:
            return True, used, worst
    return False, used, ws[0]


@kernel
def ik_workspace_size(n):
    """Length of the flat ``ik_search`` workspace for n joints."""
    s = 6 if n > 6 else n
    return 1 + 16 * (n + 1) + 6 * n + s * s + s + 6 + n + STALL_WINDOW
