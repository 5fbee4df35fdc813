"""The position and trajectory outputs close the loop with the simulator too.

The velocity output is covered by test_node_closed_loop.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from node_support import bundled_robot, controller_params_for, pose_errors, running

from jacobian_ik.node.bringup import BringupConfig

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOT = "panda"


@pytest.mark.parametrize("output", ["position", "trajectory"])
def test_goal_is_reached_and_idle_output_holds_the_measured_position(domain_id_allocator,
                                                                     output):
    """Idle: the published position is the measured one (a hold, never nothing).
    A goal 8 cm away is reached within 1 mm / 0.01 rad.  The trajectory message has
    the chain's joint names and one point one control period ahead."""
    robot = bundled_robot(ROBOT)
    params = controller_params_for(ROBOT)
    with running(BringupConfig(robot=ROBOT, output=output), domain_id_allocator(),
                 robot=robot) as (bringup, client, _lines):
        n = robot.dof
        assert client.wait_for(lambda: client.command is not None, 10.0)
        held = client.command[:n]
        np.testing.assert_allclose(held, client.q, atol=1e-6)
        if output == "trajectory":
            msg = client.last_command_message
            assert list(msg.joint_names) == list(robot.joint_names)
            assert len(msg.points) == 1
            point = msg.points[0]
            period = point.time_from_start.sec + 1e-9 * point.time_from_start.nanosec
            assert period == pytest.approx(1.0 / params.control_rate)
            np.testing.assert_array_equal(np.array(point.velocities), np.zeros(n))
        target = robot.fk(client.q)
        target[:3, 3] += [0.04, 0.04, -0.05]
        client.send_pose(target, robot.base_link)

        def reached():
            return (client.metrics.get("goal_reached") == 1.0
                    and pose_errors(robot, client.q, target)[0] <= 1.2e-3)

        assert client.wait_for(reached, 20.0), client.states[-5:]
        time.sleep(0.3)
        position_error, orientation_error = pose_errors(robot, client.q, target)
        assert position_error <= 1e-3 and orientation_error <= 1e-2
        assert bringup.failed() is None
