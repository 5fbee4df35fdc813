"""Typed errors of the audit's input files (besides the package's own errors)."""

from jacobian_ik.errors import JacobianIkError


class TrajectoryError(JacobianIkError):
    """A recorded path cannot be read: missing file, malformed CSV, a rosbag2
    without the topic, or configurations that lack joints of the chain."""


class ReportError(JacobianIkError):
    """A saved audit report (a baseline) cannot be read or is of another schema."""
