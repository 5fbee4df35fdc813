"""jacobian_ik: a real-time damped-least-squares Jacobian controller for robot arms.

The core (this package without ``jacobian_ik.node``) never imports ROS: use it
from plain Python, tests or another framework.
"""

from jacobian_ik.errors import ChainError, ConfigurationError, JacobianIkError, UrdfError
from jacobian_ik.robot import TASK_ROWS, Robot, Workspace

__all__ = [
    "ChainError",
    "ConfigurationError",
    "JacobianIkError",
    "Robot",
    "TASK_ROWS",
    "UrdfError",
    "Workspace",
]
