"""Batch kernel: the collision pair distances of many joint configurations at once.

``batch_pair_distances`` is the controller's per-cycle distance computation
(``kinematics.fk_frames``, ``distance.capsules_to_base``,
``distance.pair_distances``) run over a batch ``Q`` Shape (N, n) of joint
positions [rad | m], in parallel chunks as the kernels of ``batch`` are; each
chunk allocates its scratch once.  The audit's ``--collisions`` uses it
(``jacobian_ik.audit.collisions``).  No distance math of its own: every
distance is ``pair_distances``'s.
"""

import numpy as np
from numba import njit, prange

from jacobian_ik.kernels.distance import OUT_D, OUT_WIDTH, capsules_to_base, pair_distances
from jacobian_ik.kernels.kinematics import fk_frames


@njit(cache=True, parallel=True)
def batch_pair_distances(placements, axes, joint_types, Q, caps, obstacles, pairs, cutoff,
                         chunk, dist):
    """``dist[s, p]`` = signed distance [m] of pair p at configuration ``Q[s]``.

    Exact where it is at most ``cutoff`` [m] (negative: penetration depth), else
    a lower bound above ``cutoff`` (``pair_distances``' bounding spheres), so the
    comparisons ``d <= x`` for every x <= cutoff are exact.  Shapes: placements
    (n+1, 4, 4), axes (n, 3), joint_types (n,), Q (N, n), caps (G, 8), obstacles
    (O, 16), pairs (P, 2) int64 (the ``kernels.distance`` layouts), dist (N, P),
    written in place.  ``chunk`` samples per parallel task.
    """
    N = Q.shape[0]
    n = Q.shape[1]
    G = caps.shape[0]
    P = pairs.shape[0]
    n_chunks = (N + chunk - 1) // chunk
    for c in prange(n_chunks):
        frames = np.empty((n + 1, 4, 4))
        world = np.empty((G, 7))
        out = np.empty((P, OUT_WIDTH))
        stop = min(N, (c + 1) * chunk)
        for s in range(c * chunk, stop):
            fk_frames(placements, axes, joint_types, Q[s], frames)
            capsules_to_base(frames, caps, world)
            pair_distances(world, obstacles, pairs, cutoff, out)
            for p in range(P):
                dist[s, p] = out[p, OUT_D]
