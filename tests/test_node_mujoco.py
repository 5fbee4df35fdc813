"""Closed loop with the MuJoCo simulator (rigid-body dynamics, gravity, joint servos).

Tolerance.  The bundled configuration drives MuJoCo's "position" servo: each
velocity command is integrated into a set point that a PD loop (kp = 5000 N·m/rad,
kv = 500 N·m·s/rad) tracks, with a static lag of τ_g/kp ≲ 0.01 rad under gravity.
The controller closes its Cartesian loop on the *measured* joints, and the set
point integrates the velocity command, so the loop has an integrator: that lag is
removed at steady state, and the goal tolerances of the controller (1 mm,
0.01 rad) are the right test tolerances, the same as for the kinematic simulator.
The goal is judged after the servo has settled (0.3 s ≫ kv/kp = 0.1 s).
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("mujoco")

from node_support import bundled_robot, controller_params_for, pose_errors, running

from jacobian_ik.node.bringup import BringupConfig

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOT = "panda"


def test_goal_is_reached_with_the_mujoco_backend(domain_id_allocator):
    robot = bundled_robot(ROBOT)
    params = controller_params_for(ROBOT)
    with running(BringupConfig(robot=ROBOT, sim="mujoco"), domain_id_allocator(),
                 robot=robot) as (bringup, client, _lines):
        target = robot.fk(client.q)
        target[:3, 3] += [0.06, -0.05, 0.04]
        client.send_pose(target, robot.base_link)

        def reached():
            return (client.metrics.get("goal_reached") == 1.0
                    and pose_errors(robot, client.q, target)[0]
                    <= 1.2 * params.goal_position_tolerance)

        assert client.wait_for(reached, 20.0), client.states[-5:]
        time.sleep(0.3)
        position_error, orientation_error = pose_errors(robot, client.q, target)
        assert position_error <= params.goal_position_tolerance
        assert orientation_error <= params.goal_orientation_tolerance
        assert bringup.failed() is None
