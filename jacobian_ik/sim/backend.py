"""The interface every simulation backend implements, and the limit rules they share.

A backend owns the joint state of one chain (``robot.joint_names``, in chain
order) and advances it by ``step(dt, command)``.  It enforces the URDF limits
the way the hardware's joint servos would: commanded velocities are saturated
at ``robot.velocity_limits``, position targets are clipped into
[``robot.lower``, ``robot.upper``], and a joint at a position limit is not
driven further out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from jacobian_ik.sim.command import Command

if TYPE_CHECKING:
    from jacobian_ik.robot import Robot


class Backend(ABC):
    """Joint-level simulation of a chain.

    Subclasses set ``name`` and implement ``step``, ``displace``, ``position``
    and ``velocity``.
    """

    name = ""

    def __init__(self, robot: Robot) -> None:
        self.robot = robot
        self.joint_names = robot.joint_names
        self.dof = robot.dof
        self.sim_time = 0.0  # [s] simulated time since start

    @abstractmethod
    def step(self, dt: float, command: Command) -> None:
        """Advance the simulation by ``dt`` [s] with ``command`` held constant."""

    @abstractmethod
    def displace(self, position: np.ndarray) -> None:
        """Put the joints at ``position`` at once (within limits), keeping velocities;
        the servos take it as their new set point (a velocity command holds it)."""

    @property
    @abstractmethod
    def position(self) -> np.ndarray:
        """Measured joint positions [rad | m]. Shape (n,), a copy."""

    @property
    @abstractmethod
    def velocity(self) -> np.ndarray:
        """Measured joint velocities [rad/s | m/s]. Shape (n,), a copy."""

    # ------------------------------------------------------------ limit rules
    def clip_position(self, position: np.ndarray) -> np.ndarray:
        """``position`` clipped into the URDF position limits. Shape (n,)."""
        return np.clip(position, self.robot.lower, self.robot.upper)

    def saturate_velocity(self, velocity: np.ndarray) -> np.ndarray:
        """``velocity`` saturated at ± the URDF velocity limits. Shape (n,)."""
        vmax = self.robot.velocity_limits
        return np.clip(velocity, -vmax, vmax)

    def hold_at_limits(self, position: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        """``velocity`` with the components that push a joint at or past a limit
        further out set to zero. Shape (n,)."""
        out = (((position >= self.robot.upper) & (velocity > 0.0))
               | ((position <= self.robot.lower) & (velocity < 0.0)))
        return np.where(out, 0.0, velocity)
