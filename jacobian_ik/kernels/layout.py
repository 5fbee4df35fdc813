"""The controller's memory: one float64 array, laid out by the tables below.

``Controller`` keeps everything a control cycle reads, writes and remembers in one
array ``buf`` so that a cycle costs the dispatch of two array arguments (``buf`` and
the int64 task ``rows``).  Each table here is the single declaration of a layout;
the slot constants (``C_*``, ``J_*``, ``M_*``, ``O_*``, ``B_*``), the kernels'
offsets (``block_offset``) and the Python-side views (``python_views``) are all
generated from them.

``BLOCKS``        the blocks of ``buf`` in order, each with its size
                  ``c0 + cn·n + cn2·n² + cs2·s²`` for n joints, s = max(6, n).
``CFG_SLOTS``     tuning values in the ``cfg`` block (ControllerParams fields and a few
                  values derived from them).
``JOINT_SLOTS``   per-joint vectors of length n in the ``joints`` block.
``MEM_SLOTS``     state kept between cycles in the ``mem`` block.
``OUT_SLOTS``     the cycle's results in the ``out`` block.
``GEO_HEADER``    the counts at the head of the collision buffer ``geo`` (a second
                  float64 array, sized by the collision model and the scene), whose
                  arrays ``geo_views`` cuts out in ``GEO_ARRAYS`` order.
"""

import numpy as np

from jacobian_ik.kernels.derivatives import GRADIENT_SCRATCH_PLANES
from jacobian_ik.kernels.jit import kernel, view

#: (name, meaning) of each tuning slot; a name equal to a ControllerParams field is
#: filled from it (see ``jacobian_ik.controller``); the others are derived.
CFG_SLOTS = (
    ("n", "number of joints"),
    ("position_gain", "[1/s]"),
    ("orientation_gain", "[1/s]"),
    ("max_linear_speed", "[m/s]"),
    ("max_angular_speed", "[rad/s]"),
    ("lambda_max", "[σ unit]"),
    ("sigma_damp", "[σ unit]"),
    ("sigma_warn", "[σ unit]"),
    ("sigma_stop", "[σ unit]"),
    ("sigma_resume", "[σ unit]"),
    ("speed_scale_floor", "[1]"),
    ("speed_scale_rate", "[1/s]"),
    ("joint_limit_margin", "[rad | m]"),
    ("stale_timeout", "[s]"),
    ("frozen_timeout", "[s]"),
    ("goal_position_tolerance", "[m]"),
    ("goal_orientation_tolerance", "[rad]"),
    ("max_command_drift", "[rad | m]"),
    ("barrier_gain", "[1/s] rate γ of the σ_min barrier"),
    ("nullspace_weight", "[σ unit²] weight of the secondary objective"),
    ("nullspace_sigma_gain", "[rad/s per σ unit/rad] secondary: raise σ_min"),
    ("nullspace_limit_gain", "[1/s] secondary: keep away from joint limits"),
    ("stall_timeout", "[s] no progress this long: blocked"),
    ("self_collision", "1: the self pairs of the collision model are checked"),
    ("collision_stop_distance", "[m] no pair comes closer"),
    ("collision_influence_distance", "[m] closer pairs add a QP row"),
    ("collision_gain", "[1/s] rate of the collision barrier"),
    ("pose_task", "1: pose task (6 rows), 0: position task (derived)"),
    ("dt_max", "[s] largest dt used for limits (derived)"),
    ("period", "[s] nominal control period 1/control_rate (derived)"),
    ("lipschitz", "bound L on |Δσ_min| / ‖Δq‖₁ (derived, see lookahead.sigma_lipschitz)"),
)

#: Per-joint vectors, each Shape (n,).
JOINT_SLOTS = (
    ("lower", "position limits [rad | m] (±inf when continuous)"),
    ("upper", ""),
    ("vmax", "velocity limit [rad/s | m/s]"),
    ("amax", "acceleration limit [rad/s² | m/s²]"),
    ("cont", "1.0 for continuous joints"),
    ("mid", "middle of the position range [rad | m] (0 when continuous)"),
    ("half", "half the position range [rad | m] (inf when continuous)"),
    ("dq_prev", "last commanded velocity"),
    ("q_cmd", "last position command"),
    ("q_valid", "last valid measured position"),
    ("q_in", "input: measured position"),
    ("dq_out", "output: velocity command"),
    ("q_out", "output: position command"),
    ("q_goal", "joint-space goal of a JOINT_MOVE"),
    ("q_origin", "measured position when the current pose target arrived"),
    ("dq_sec", "scratch: secondary (null-space) velocity"),
    ("grad", "scratch: ∂σ_min/∂q"),
    ("lo", "scratch: lower velocity bound of the QP"),
    ("hi", "scratch: upper velocity bound of the QP"),
    ("dq_brake", "scratch: the braking command (always admissible)"),
    ("cap_lo", "scratch: velocity bounds from the position limits"),
    ("cap_hi", ""),
    ("q_probe", "scratch: look-ahead configuration"),
    ("dq_free", "scratch: the QP's unconstrained minimiser"),
    ("qp_g", "scratch: QP linear term"),
    ("qp_c", "scratch: QP gradient"),
    ("qp_p", "scratch: QP step"),
    ("qp_y", "scratch: QP solve"),
    ("qp_z", "scratch: QP solve"),
    ("qp_w", "scratch: QP working set (−1 lower, +1 upper, 0 free)"),
    ("dq_task", "scratch: the task command before the look-ahead"),
)

#: State kept between cycles.
MEM_SLOTS = (
    ("scale", "singularity speed scale of the last cycle"),
    ("latch", "1: singularity safe stop latched (σ_min fell below sigma_stop)"),
    ("anchor", "ANCHOR_*: when q_cmd is next re-anchored on the measured position"),
    ("warm", "1: σ subspaces hold the last cycle's"),
    ("approach", "1: APPROACHING_SINGULARITY (hysteresis flag)"),
    ("moving", "1: the last cycle was a motion (not a stop)"),
    ("dwell", "[s] APPROACHING_SINGULARITY is still held after a look-ahead brake"),
    ("best_error", "smallest task error of this goal so far (progress watch)"),
    ("stall", "[s] time since the task error last improved"),
    ("joint_move", "1: moving in joint space to q_goal (JOINT_MOVE)"),
    ("unreachable", "1: this pose goal was found unreachable: hold (SAFE_STOP)"),
    ("have_prev_target", "1: target_prev holds the last pose target"),
    ("blocked_kind", "what blocks progress: 0 none, 1 singularity, 2 joint limits, "
                     "3 a collision pair"),
    ("frozen_t", "[s] commanded-motion time over which q stayed bit-identical"),
    ("frozen_travel", "[rad | m] commanded travel Σ maxᵢ|dq_prevᵢ| dt over that time"),
    ("frozen_peak", "[rad/s | m/s] largest commanded joint speed over that time"),
    ("rest", "[s] how long the command has been at rest (dq = 0)"),
    ("frozen", "1: the measurement was found frozen (until it changes)"),
    ("block_pair", "index of the collision pair that blocked this goal (−1: none)"),
    ("block_distance", "[m] its distance then"),
)

#: Results of one cycle.
OUT_SLOTS = (
    ("sigma_min", ""),
    ("sigma_max", ""),
    ("cond", "condition number"),
    ("w", "manipulability"),
    ("scale", "speed scale"),
    ("lambda", "damping λ"),
    ("perr", "position error [m]"),
    ("oerr", "orientation error [rad]"),
    ("goal", "1: goal reached"),
    ("limited", "bits L_*"),
    ("state", "state code S_*"),
    ("reason", "reason code R_*"),
    ("val1", "values of the reason"),
    ("val2", ""),
    ("blocked", "1: the task makes no progress (fallback may start)"),
    ("barrier", "1: the σ_min barrier shaped the command"),
    ("new_goal", "1: a new pose target arrived this cycle"),
    ("pose_cycle", "1: a valid cycle toward a pose target"),
    ("goal_event", "1: a pose cycle with new_goal, blocked or the barrier reason "
                   "(the only cycles on which Controller.step's fallback logic starts)"),
    ("min_distance", "[m] smallest distance of a checked collision pair (inf: none)"),
    ("pair", "index of that pair (−1: none)"),
    ("collision_rows", "number of collision rows in this cycle's QP"),
    ("collision_active", "1: a collision row shaped the command"),
    ("collision_in_way", "1: the unconstrained command x* breaks a collision row"),
)

#: (name, c0, cn, cn2, cs2): block of size c0 + cn·n + cn2·n² + cs2·s², s = max(6, n).
BLOCKS = (
    ("cfg", len(CFG_SLOTS), 0, 0, 0),
    ("joints", 0, len(JOINT_SLOTS), 0, 0),
    ("mem", len(MEM_SLOTS), 0, 0, 0),
    ("target", 16, 0, 0, 0),        # pose row-major (4, 4) or twist (6,)
    ("target_prev", 16, 0, 0, 0),   # the last pose target (progress watch)
    ("out", len(OUT_SLOTS), 0, 0, 0),
    ("twist", 18, 0, 0, 0),         # twist v (6), pose error (6), scratch (6)
    ("placements", 16, 16, 0, 0),   # (n+1, 4, 4), the chain (kernels.kinematics)
    ("axes", 0, 3, 0, 0),           # (n, 3)
    ("types", 0, 1, 0, 0),          # (n,) joint types as float
    ("frames", 16, 16, 0, 0),       # (n+1, 4, 4) FK scratch
    ("jac", 0, 6, 0, 0),            # (6, n) Jacobian
    ("djac", 0, 0, 6, 0),           # (n, 6, n) ∂J/∂q
    ("hess", 0, 0, 2, 0),           # (2, n, n) QP Hessian and its Cholesky factor
    ("sigma", 0, 0, 0, 15),         # (3, 5, s, s) σ scratch at q, look-ahead end, middle
    # σ_min gradient: the Gram matrix, then its work array (kernels.derivatives)
    ("gradwork", 0, 0, 0, 1 + GRADIENT_SCRATCH_PLANES),
)


def _constants(prefix, table):
    return {f"{prefix}{name.upper()}": i for i, (name, *_rest) in enumerate(table)}


# The slot constants: C_N, C_POSITION_GAIN, ..., J_LOWER, ..., M_SCALE, ..., O_SIGMA_MIN,
# ..., B_CFG, ...; numba reads them as compile-time constants.
globals().update(_constants("C_", CFG_SLOTS))
globals().update(_constants("J_", JOINT_SLOTS))
globals().update(_constants("M_", MEM_SLOTS))
globals().update(_constants("O_", OUT_SLOTS))
globals().update(_constants("B_", BLOCKS))
NCFG = len(CFG_SLOTS)
NJB = len(JOINT_SLOTS)
NMEM = len(MEM_SLOTS)
NOUT = len(OUT_SLOTS)
NBLOCKS = len(BLOCKS)


def _cumulative(column: int) -> tuple[int, ...]:
    """Running sums of one size coefficient over the blocks (NBLOCKS + 1 entries)."""
    sums = [0]
    for row in BLOCKS:
        sums.append(sums[-1] + int(row[column]))
    return tuple(sums)


#: Offset of block b = _C0[b] + _CN[b]·n + _CN2[b]·n² + _CS2[b]·s², s = max(6, n):
#: the sizes of the blocks before it, summed once here.
_C0, _CN, _CN2, _CS2 = (_cumulative(c) for c in (1, 2, 3, 4))


@kernel
def block_offset(n, block):
    """Offset in ``buf`` of block number ``block`` (``B_*``) for n joints; with
    ``block = NBLOCKS`` the total size."""
    s = n if n > 6 else 6
    return _C0[block] + _CN[block] * n + _CN2[block] * n * n + _CS2[block] * s * s


@view
def block(buf, n, b):
    """Block ``b`` (``B_*``) of ``buf`` as a flat view."""
    return buf[block_offset(n, b):block_offset(n, b + 1)]


@view
def joint_vector(buf, n, slot):
    """Per-joint vector ``slot`` (``J_*``) of ``buf``, Shape (n,)."""
    o = block_offset(n, B_JOINTS) + slot * n  # noqa: F821  (generated constant)
    return buf[o:o + n]


def buffer_size(n: int) -> int:
    """Length of ``buf`` for n joints."""
    return int(block_offset(n, NBLOCKS))


def python_views(buf: np.ndarray, n: int) -> dict:
    """Named numpy views of ``buf``: every block by name, and every per-joint vector by
    its ``JOINT_SLOTS`` name prefixed with ``j_`` (e.g. ``views['j_q_in']``)."""
    views = {}
    for b, (name, *_sizes) in enumerate(BLOCKS):
        views[name] = buf[block_offset(n, b):block_offset(n, b + 1)]
    joints = views["joints"].reshape(len(JOINT_SLOTS), n)
    for j, (name, _meaning) in enumerate(JOINT_SLOTS):
        views["j_" + name] = joints[j]
    return views


#: Counts at the head of ``geo``: capsules G, obstacles O, pairs P (the first P_self of
#: them self pairs, the others capsule-obstacle pairs), QP rows R (row 0 the σ_min
#: barrier, then at most R − 1 collision rows).
GEO_HEADER = (
    ("caps", "G: robot capsules"),
    ("obstacles", "O: scene obstacles"),
    ("pairs", "P: checked pairs"),
    ("self_pairs", "P_self: the self pairs among them (first)"),
    ("rows", "R: QP rows (1 + most collision rows)"),
)
globals().update(_constants("G_", GEO_HEADER))
NGEO = len(GEO_HEADER)

#: (name, shape) of each array of ``geo`` after the header, in order; a shape is
#: written in the counts (G, O, P, R), n joints and literal sizes.
GEO_ARRAYS = (
    ("caps", "(G, 8) robot capsules in their chain frame: frame, a, b, radius"),
    ("world", "(G, 7) the capsules in the base frame: a, b, radius"),
    ("obstacles", "(O, 16) obstacles in the base frame (kernels.distance)"),
    ("dist", "(P, 10) per pair: distance, closest points, normal (kernels.distance)"),
    ("A", "(R, n) QP rows: A dq ≥ b"),
    ("b", "(R,)"),
    ("row_pair", "(R,) pair index of each row (−1: the σ_min row)"),
    ("active", "(R,) 1: the row was active at the QP's solution"),
    ("mu", "(R,) the rows' multipliers"),
    ("qp_s", "(R + 2, R + n + 2) QP scratch (kernels.qp.rows_qp)"),
)


def geo_size(n: int, caps: int, obstacles: int, pairs: int, rows: int) -> int:
    """Length of ``geo`` for n joints and these counts."""
    return (NGEO + 8 * caps + 7 * caps + 16 * obstacles + 10 * pairs + rows * n + 4 * rows
            + (rows + 2) * (rows + n + 2))


@view
def geo_views(geo, n):
    """The arrays of ``geo`` (``GEO_ARRAYS``), for n joints, as a tuple of views."""
    g = int(geo[G_CAPS])  # noqa: F821  (generated constants)
    o_ = int(geo[G_OBSTACLES])  # noqa: F821
    p = int(geo[G_PAIRS])  # noqa: F821
    r = int(geo[G_ROWS])  # noqa: F821
    k = NGEO
    caps = geo[k:k + 8 * g].reshape((g, 8))
    k += 8 * g
    world = geo[k:k + 7 * g].reshape((g, 7))
    k += 7 * g
    obstacles = geo[k:k + 16 * o_].reshape((o_, 16))
    k += 16 * o_
    dist = geo[k:k + 10 * p].reshape((p, 10))
    k += 10 * p
    A = geo[k:k + r * n].reshape((r, n))
    k += r * n
    b = geo[k:k + r]
    k += r
    row_pair = geo[k:k + r]
    k += r
    active = geo[k:k + r]
    k += r
    mu = geo[k:k + r]
    k += r
    qp_s = geo[k:k + (r + 2) * (r + n + 2)].reshape((r + 2, r + n + 2))
    return caps, world, obstacles, dist, A, b, row_pair, active, mu, qp_s


def python_geo_views(geo: np.ndarray, n: int) -> dict:
    """Named numpy views of ``geo`` (the ``GEO_ARRAYS`` names)."""
    return dict(zip((name for name, _shape in GEO_ARRAYS), geo_views.py_func(geo, n)))


def __getattr__(name: str) -> int:
    """Static view of the generated slot constants for type checkers; at run time every
    constant is a module global already, so only an unknown name gets here."""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
