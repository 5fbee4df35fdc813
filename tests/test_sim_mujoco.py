"""MujocoBackend: the URDF as a MuJoCo model, joint servos, limits, speed."""

from __future__ import annotations

import functools
import re
import time

import numpy as np
import pytest

from jacobian_ik import Robot, UrdfError, bundled
from jacobian_ik.sim.command import Command

mujoco = pytest.importorskip("mujoco")

from jacobian_ik.sim.mujoco_backend import MujocoBackend  # noqa: E402
from jacobian_ik.sim.mujoco_model import build_mujoco_model, chain_urdf  # noqa: E402

ARMS = bundled.BUNDLED_ROBOTS
ACTUATORS = ("velocity", "position")
KP, KV, TIMESTEP = 5.0e5, 1.0e4, 0.001  # the SimConfig defaults


@functools.cache
def load(name: str) -> Robot:
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def make(robot, actuator="velocity", q0=None, **kwargs):
    gains = dict(kp=KP, kv=KV, timestep=TIMESTEP)
    gains.update(kwargs)
    return MujocoBackend(robot, robot.q_mid if q0 is None else q0, actuator=actuator, **gains)


def alternating(n: int) -> np.ndarray:
    return np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def run(backend, command, duration, dt=0.002):
    for _ in range(int(round(duration / dt))):
        backend.step(dt, command)


def gravity_torque(backend) -> np.ndarray:
    """Joint torques gravity exerts at the current configuration at rest [N·m]."""
    data = mujoco.MjData(backend.model)
    data.qpos[:] = backend.data.qpos
    mujoco.mj_forward(backend.model, data)
    return data.qfrc_bias[backend._dadr].copy()


@pytest.mark.parametrize("arm", ARMS)
def test_model_has_the_chain_joints_and_tip_body(arm):
    """The MuJoCo model's degrees of freedom are the chain's joints; the tip link is a body."""
    robot = load(arm)
    backend = make(robot)
    model = backend.model
    assert model.nv == robot.dof and model.nu == robot.dof
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(model.njnt)]
    assert names == list(robot.joint_names)
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, robot.tip_link) >= 0


@pytest.mark.parametrize("arm", ARMS)
def test_mujoco_tip_pose_agrees_with_robot_fk(arm):
    """MuJoCo's tip body pose equals Robot.fk of the measured joints to 1e-9, along a motion."""
    robot = load(arm)
    rng = np.random.default_rng(7)
    for q in robot.random_configurations(5, rng):
        backend = make(robot, q0=q)
        run(backend, Command.velocity_command(0.2 * alternating(robot.dof)), 0.02)
        np.testing.assert_allclose(backend.tip_pose(), robot.fk(backend.position), atol=1e-9)


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize("actuator", ACTUATORS)
def test_velocity_command_is_followed(arm, actuator):
    """After 1 s of a 0.3 rad/s command, joint velocities are within 0.01 rad/s of it and
    positions within 0.01 rad of q0 + v·t."""
    robot = load(arm)
    backend = make(robot, actuator)
    v = 0.3 * alternating(robot.dof)
    run(backend, Command.velocity_command(v), 1.0)
    assert np.abs(backend.velocity - v).max() < 0.01
    assert np.abs(backend.position - (robot.q_mid + v * backend.sim_time)).max() < 0.01


@pytest.mark.parametrize("arm", ARMS)
def test_tip_follows_an_open_loop_velocity_command_within_a_few_mm(arm):
    """With the default (velocity) servo, 1 s of a 0.3 rad/s joint velocity command puts the
    tip within 1 cm of where exact integration would (the gravity sag without any feedback:
    about 3 mm on the panda, 6 mm on the ur5)."""
    robot = load(arm)
    backend = make(robot)
    v = 0.3 * alternating(robot.dof)
    run(backend, Command.velocity_command(v), 1.0)
    ideal = robot.fk(robot.q_mid + v * backend.sim_time)
    assert np.linalg.norm(backend.tip_pose()[:3, 3] - ideal[:3, 3]) < 0.01


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize("actuator", ACTUATORS)
def test_position_command_is_reached(arm, actuator):
    """A 0.4 rad position step is reached within 1e-3 rad in 1.5 s, overshooting by less
    than 0.05 rad (the step saturates the servos; coupled joints overshoot a little)."""
    robot = load(arm)
    backend = make(robot, actuator)
    target = robot.q_mid + 0.4 * alternating(robot.dof)
    lo, hi = np.minimum(robot.q_mid, target) - 0.05, np.maximum(robot.q_mid, target) + 0.05
    for _ in range(750):
        backend.step(0.002, Command.position_command(target))
        assert np.all((backend.position >= lo) & (backend.position <= hi))
    assert np.abs(backend.position - target).max() < 1e-3


def test_velocity_servo_sags_by_gravity_torque_over_kv():
    """With a zero velocity command the velocity actuator drifts at q̇ = −τ_g/kv."""
    robot = load("ur5")
    kv = 2000.0
    backend = make(robot, "velocity", kv=kv, kp=KP / 5)
    run(backend, Command.velocity_command(np.zeros(robot.dof)), 0.2)
    expected = -gravity_torque(backend) / kv
    assert np.abs(expected).max() > 0.01  # the arm is loaded: the check can fail
    np.testing.assert_allclose(backend.velocity, expected, atol=2e-4)


def test_position_servo_holds_with_static_error_gravity_torque_over_kp():
    """With a zero velocity command the position actuator does not drift: q0 − q = τ_g/kp."""
    robot = load("ur5")
    kp = 5.0e4
    backend = make(robot, "position", kp=kp)
    run(backend, Command.velocity_command(np.zeros(robot.dof)), 1.0)
    expected = robot.q_mid - gravity_torque(backend) / kp
    assert np.abs(expected - robot.q_mid).max() > 1e-4
    np.testing.assert_allclose(backend.position, expected, atol=5e-5)
    assert np.abs(backend.velocity).max() < 1e-4


@pytest.mark.parametrize("arm", ARMS)
def test_commanded_velocity_is_saturated_at_the_urdf_limit(arm):
    """A command of 10× the velocity limit moves no joint faster than ~ the limit."""
    robot = load(arm)
    backend = make(robot)
    command = Command.velocity_command(10.0 * robot.velocity_limits * alternating(robot.dof))
    for _ in range(100):
        backend.step(0.002, command)
        assert np.all(np.abs(backend.velocity) <= robot.velocity_limits * 1.01)


@pytest.mark.parametrize("arm", ARMS)
def test_servo_torques_stay_within_the_urdf_effort(arm):
    """During a violent position step the servo torques never exceed the URDF effort."""
    robot = load(arm)
    backend = make(robot, "position")
    effort = backend.model.actuator_forcerange[:, 1]
    target = robot.q_mid + 1.0 * alternating(robot.dof)
    saturated = False
    for _ in range(200):
        backend.step(0.002, Command.position_command(target))
        assert np.all(np.abs(backend.joint_torque) <= effort + 1e-9)
        saturated |= bool(np.any(np.abs(backend.joint_torque) >= effort - 1e-9))
    assert saturated  # the step is violent enough to reach the limit


@pytest.mark.parametrize("actuator", ACTUATORS)
def test_joints_stop_at_the_position_limits(actuator):
    """Driven toward a limit, joints settle at it (within 2 mrad) and do not pass it."""
    robot = load("planar2")
    backend = make(robot, actuator, q0=np.array([2.5, -2.5]))
    command = Command.velocity_command(np.array([2.0, -2.0]))
    for _ in range(500):
        backend.step(0.002, command)
        assert np.all(backend.position <= robot.upper + 2e-3)
        assert np.all(backend.position >= robot.lower - 2e-3)
    np.testing.assert_allclose(backend.position, [robot.upper[0], robot.lower[1]], atol=2e-3)


#: Arms of example-robot-data: (URDF, base, tip).  Bases that are not the URDF root (Baxter
#: torso, PR2 torso, Talos arm), many joints outside the chain (PR2, TIAGo, Baxter),
#: continuous joints (double pendulum), meshes, and a link whose inertia is not positive
#: definite (TIAGo's antennas).
ERD_ARMS = [
    ("ur_description/urdf/ur10_robot.urdf", "world", "ee_link"),
    ("baxter_description/urdf/baxter.urdf", "torso", "right_hand_link"),
    ("pr2_description/urdf/pr2.urdf", "torso_lift_link", "r_gripper_tool_frame"),
    ("tiago_description/robots/tiago_no_hand.urdf", "base_footprint", "arm_7_link"),
    ("talos_data/robots/talos_left_arm.urdf", "arm_left_1_link", "wrist_left_ft_tool_link"),
    ("double_pendulum_description/urdf/double_pendulum_continuous.urdf", "base_link", "link2"),
]


@pytest.mark.parametrize("path, base, tip", ERD_ARMS, ids=[a[0].split("/")[0] for a in ERD_ARMS])
def test_other_arms_build_and_agree_with_robot_fk(erd_robots_dir, path, base, tip):
    """Real-world URDFs build into MuJoCo models with only the chain's joints free, and the tip
    pose agrees with Robot.fk to 1e-9 after some motion."""
    robot = Robot.from_urdf(erd_robots_dir / path, base, tip)
    q0 = robot.random_configurations(1, np.random.default_rng(1))[0]
    backend = make(robot, "position", q0=q0)
    assert backend.model.nv == robot.dof
    run(backend, Command.velocity_command(0.2 * alternating(robot.dof)), 0.05)
    np.testing.assert_allclose(backend.tip_pose(), robot.fk(backend.position), atol=1e-9)


def test_joints_outside_the_chain_are_locked():
    """A chain ending mid-arm simulates only its joints; the links below it ride along."""
    robot = Robot.from_urdf(bundled.urdf_path("panda"), "panda_link0", "panda_link4")
    backend = make(robot)
    assert backend.model.nv == 4
    run(backend, Command.velocity_command(np.full(4, 0.2)), 0.1)
    np.testing.assert_allclose(backend.tip_pose(), robot.fk(backend.position), atol=1e-9)


def test_chain_urdf_keeps_only_links_below_the_base():
    """The reduced URDF's root is base_link and links above it are gone."""
    robot = Robot.from_urdf(bundled.urdf_path("panda"), "panda_link2", "panda_hand_tcp")
    xml = chain_urdf(robot)
    links = re.findall(r'<link name="([^"]+)"', xml)
    assert links[0] == "panda_link2"
    assert "panda_link0" not in links and "panda_link1" not in links
    assert build_mujoco_model(robot, TIMESTEP).nv == robot.dof


def test_links_without_inertial_are_accepted():
    """A URDF whose links have no <inertial> still builds and steps (MuJoCo mass bounds)."""
    xml = re.sub(r"<inertial>.*?</inertial>", "", bundled.urdf_path("planar2").read_text(),
                 flags=re.S)
    robot = Robot.from_urdf(xml, "base_link", "tool")
    backend = make(robot)
    run(backend, Command.velocity_command(np.full(2, 0.5)), 0.1)
    assert np.all(np.isfinite(backend.position))


@pytest.mark.parametrize("change, words", [
    (('ixx="0.0003125"', 'ixx="nan"'), "link 'link1' <inertial> <inertia> ixx='nan'"),
    (('ixx="0.0003125"', 'ixx="heavy"'), "ixx='heavy' is not a finite number"),
    (('<mass value="1.0"/>', '<mass value="-1.0"/>'), "negative mass -1.0"),
])
def test_bad_inertials_raise_urdf_error_naming_the_link(change, words):
    """Non-finite inertia or negative mass in the URDF is a UrdfError naming link and value
    (MuJoCo would otherwise simulate NaN or clamp silently)."""
    xml = bundled.urdf_path("planar2").read_text().replace(*change)
    robot = Robot.from_urdf(xml, "base_link", "tool")
    with pytest.raises(UrdfError) as info:
        make(robot)
    assert words in str(info.value)


def test_inertia_that_is_not_positive_definite_is_repaired():
    """An inertia tensor with a zero eigenvalue still builds (raised to the MuJoCo bound)."""
    xml = bundled.urdf_path("planar2").read_text().replace('ixx="0.0003125"', 'ixx="0"')
    robot = Robot.from_urdf(xml, "base_link", "tool")
    assert make(robot).model.nv == 2


@pytest.mark.parametrize("arm", ARMS)
def test_mujoco_backend_runs_faster_than_real_time(arm):
    """Simulating 1 s at 500 ticks/s costs less than 1 s of this process's CPU time."""
    robot = load(arm)
    backend = make(robot)
    command = Command.velocity_command(0.2 * alternating(robot.dof))
    start = time.process_time()
    run(backend, command, 1.0)
    cpu = time.process_time() - start
    assert backend.sim_time == pytest.approx(1.0)
    assert cpu < 1.0, f"real-time factor {backend.sim_time / cpu:.2f} < 1"


def test_time_step_remainder_is_carried_over():
    """Ticks that are not multiples of the time step still add up: 3 × 2.5 ms = 7 steps of 1 ms
    plus a carried 0.5 ms."""
    robot = load("planar2")
    backend = make(robot)
    for _ in range(3):
        backend.step(0.0025, Command.velocity_command(np.zeros(2)))
    assert backend.physics_steps == 7
    assert backend.sim_time == pytest.approx(0.007)
