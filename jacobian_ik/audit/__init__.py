"""Jacobian audit: where a chain's Jacobian becomes ill-conditioned, offline.

The ``jacobian-ik`` command (``jacobian_ik.audit.cli``) samples joint space or
replays a recorded path and reports the smallest singular value σ_min of the
task Jacobian, σ_max, the condition number σ_max/σ_min and the manipulability
∏σ, against the controller's thresholds ``sigma_warn`` and ``sigma_stop``.
Reports are tables, JSON (``schema.SCHEMA_VERSION``) and pictures; gate
expressions and a baseline report turn it into a CI check.

Pipeline: ``source`` (robot and settings) → ``sampling`` → ``sweep`` (batch
kernels of ``jacobian_ik.kernels.batch``) → ``report`` → ``table`` / JSON /
``plot`` → ``gates`` and ``baseline``.  ``trajectory`` and ``path`` do the same
for a recorded path.  Nothing here imports ROS: rosbag2 files are read with the
pure-Python ``rosbags`` package.
"""

from jacobian_ik.audit.errors import ReportError, TrajectoryError

__all__ = ["ReportError", "TrajectoryError"]
