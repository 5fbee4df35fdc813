"""jacobian_ik: a real-time damped-least-squares Jacobian controller for robot arms.

The core (this package without ``jacobian_ik.node``) never imports ROS: use it
from plain Python, tests or another framework.
"""

from jacobian_ik.numba_cache import choose_cache_dir

choose_cache_dir()  # before the kernels import numba

from jacobian_ik.controller import Controller, StepOutput, StepResult  # noqa: E402
from jacobian_ik.errors import ChainError, ConfigurationError, JacobianIkError, UrdfError  # noqa: E402
from jacobian_ik.ik import IkResult, solve_ik  # noqa: E402
from jacobian_ik.params import PARAMETER_SPECS, ControllerParams  # noqa: E402
from jacobian_ik.robot import TASK_ROWS, Robot, Workspace  # noqa: E402
from jacobian_ik.safety import SafetyState  # noqa: E402

__all__ = [
    "PARAMETER_SPECS",
    "TASK_ROWS",
    "ChainError",
    "ConfigurationError",
    "Controller",
    "ControllerParams",
    "IkResult",
    "JacobianIkError",
    "Robot",
    "SafetyState",
    "StepOutput",
    "StepResult",
    "UrdfError",
    "Workspace",
    "solve_ik",
]
