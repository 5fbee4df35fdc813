"""A frozen /joint_states stream stops the arm: STALE_INPUT, commands braked to zero."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from node_support import acceleration_violations, bundled_robot, controller_params_for, running

from jacobian_ik.node.bringup import BringupConfig

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOT = "panda"
#: The simulator stops publishing this long after its first message [s]: time
#: for both processes to start and the arm to be moving.
FREEZE_AFTER = 8.0


def test_frozen_joint_states_give_stale_input_and_a_braked_stop(domain_id_allocator):
    """Servoing when the simulator freezes: the node reports STALE_INPUT (the joint
    measurement is too old), keeps publishing velocity commands, and brakes them to
    zero within the acceleration limits."""
    robot = bundled_robot(ROBOT)
    params = controller_params_for(ROBOT)
    limits = params.resolve(robot)
    config = BringupConfig(robot=ROBOT, faults={"freeze_after": FREEZE_AFTER})
    with running(config, domain_id_allocator(), robot=robot,
                 client_kwargs={"record_commands": True}) as (bringup, client, _lines):
        direction = 1.0
        switch = time.monotonic() + 1.0
        deadline = time.monotonic() + FREEZE_AFTER + 30.0
        stale = None
        while stale is None and time.monotonic() < deadline:
            if time.monotonic() > switch:
                direction, switch = -direction, time.monotonic() + 1.0
            client.send_twist([0.0, 0.05 * direction, 0.0, 0.0, 0.0, 0.0], robot.base_link)
            time.sleep(0.02)
            state = client.state
            silent = time.monotonic() - client.q_time > 0.5   # the freeze, not a hiccup
            if state is not None and state.name == "STALE_INPUT" and silent:
                stale = state
        assert stale is not None, client.states[-5:]
        assert "joint measurement" in stale.reason
        count = client.command_count
        assert client.wait_for(lambda: client.command_count > count + 100, 10.0), \
            "commands must go on (zeros) while the input is stale"
        assert np.all(client.command == 0.0)
        _, commands, _ = client.recorded()
        assert acceleration_violations(commands, limits.max_joint_acceleration,
                                       1.0 / params.control_rate) == []
        moving = [dq for _, dq in commands if np.any(dq != 0.0)]
        assert moving, "the arm was not moving when the measurement froze"
        assert bringup.failed() is None
