"""Simulated arm for jacobian_ik: joint-level backends, commands and fault injection.

Pure Python (numpy; ``mujoco`` only for the MuJoCo backend), no ROS: the ROS
node ``jacobian_ik.node.sim_arm`` is a thin adapter over ``SimArm``.

* ``SimConfig``   every simulator parameter, validated (``config``);
* ``SimArm``      backend + commands + faults, stepped by ``tick(now)`` (``arm``);
* backends        ``KinematicBackend`` (``kinematic``, exact integration like
                  ros2_control's mock hardware) and ``MujocoBackend``
                  (``mujoco_backend``, rigid-body dynamics with joint servos);
* ``FaultInjector`` noise, latency, drops, freeze, jump (``faults``).
"""

from jacobian_ik.sim.arm import MAX_STEP, SimArm, make_backend
from jacobian_ik.sim.command import Command
from jacobian_ik.sim.config import BACKENDS, MUJOCO_ACTUATORS, SimConfig
from jacobian_ik.sim.faults import FaultInjector, JointSample
from jacobian_ik.sim.kinematic import KinematicBackend

__all__ = [
    "BACKENDS",
    "MAX_STEP",
    "MUJOCO_ACTUATORS",
    "Command",
    "FaultInjector",
    "JointSample",
    "KinematicBackend",
    "SimArm",
    "SimConfig",
    "make_backend",
]
