"""Typed exceptions raised for definition and configuration errors.

Everything the package raises on purpose derives from :class:`JacobianIkError`,
so a caller can catch one class.  Runtime events of the control loop (near
singularity, joint limit, stale input) are never exceptions: they are states
and flags in the controller's result.
"""


class JacobianIkError(Exception):
    """Base class of every error raised by jacobian_ik."""


class UrdfError(JacobianIkError):
    """The robot description cannot be read: missing file, malformed XML,
    non-finite numbers, or a model pinocchio rejects."""


class ChainError(JacobianIkError):
    """The requested kinematic chain cannot be built from the description:
    unknown link, tip not below base, empty chain, unsupported joint."""


class ConfigurationError(JacobianIkError):
    """A parameter or option is outside its valid set or range."""
