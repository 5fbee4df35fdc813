"""numba kernels: pure functions over float64 arrays, compiled as ``jit.kernel``
(``njit``, cached, without numba's reference-counting runtime).

``kinematics`` holds forward kinematics, the Jacobian, singular values and the
damped least squares step; the other modules build on it.  Nothing here imports
ROS or allocates in a per-cycle function.
"""

from jacobian_ik.kernels.kinematics import (  # noqa: F401
    PRISMATIC,
    REVOLUTE,
    damping_nakamura,
    dls_cycle,
    dls_step,
    fk_frames,
    fk_jacobian,
    gram_matrix,
    sigma_extremes,
    jacobi_svd,
    jacobian_from_frames,
    pose_error,
    rotate_jacobian_to_tip,
    rotation_log,
    scratch_views,
    singular_value_count,
    singular_values,
)
from jacobian_ik.kernels.batch import batch_exact, batch_metrics, gram_extremes  # noqa: F401,E402
