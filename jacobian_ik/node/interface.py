"""Names shared by the launch file, the bring-up runner and the nodes.

Each launch argument, simulator fault, output mode and the controller's ready
text is declared here once.  ``launch/ik_controller.launch.py`` imports this
module from the installed package and the bring-up runner
(``jacobian_ik.node.bringup``) reads the same tables, so both start the same
nodes with the same arguments.  No ROS (or ``launch``) import here.
"""

from __future__ import annotations

from dataclasses import dataclass

from jacobian_ik import bundled
from jacobian_ik.sim.config import BACKENDS, FREEZE_MODES
from jacobian_ik.telemetry.names import DEFAULT_METRICS_ADDRESS

#: The ROS package (share directory, executables).
PACKAGE = bundled.PACKAGE_NAME

#: Nodes started, as (node name, module).  The node name is also the console
#: script (executable) name, see setup.py.
CONTROLLER_NODE = ("ik_controller", "jacobian_ik.node.ik_controller")
SIM_NODE = ("sim_arm", "jacobian_ik.node.sim_arm")
NODES = (SIM_NODE, CONTROLLER_NODE)
#: The Prometheus exporter, started when a metrics port is given; optional: its
#: exit does not stop the others.
EXPORTER_NODE = ("telemetry_exporter", "jacobian_ik.node.telemetry_exporter")
OPTIONAL_NODES = (EXPORTER_NODE[0],)

#: Logged by the controller node once its kernels are compiled and its loop
#: runs; the bring-up runner waits for it.
READY_TEXT = "controller ready"

#: Output modes of the controller node and the topic each publishes on by default.
DEFAULT_TOPICS = {
    "velocity": "/forward_velocity_controller/commands",
    "position": "/forward_position_controller/commands",
    "trajectory": "/joint_trajectory_controller/joint_trajectory",
}
OUTPUT_MODES = tuple(DEFAULT_TOPICS)

#: ``sim`` choices: a simulator backend, or "none" for the controller alone.
SIM_CHOICES = (*BACKENDS, "none")


@dataclass(frozen=True)
class LaunchArgument:
    """One argument of the launch file and of the bring-up runner.

    ``default`` is text, as ``ros2 launch`` takes it.  ``choices`` (empty: any)
    restricts the value.  ``fault_type`` is set for a simulator fault: the value
    goes to the sim_arm parameter of the same name, converted by it.
    """

    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()
    fault_type: type | None = None


def _fault(name: str, default: str, kind: type, description: str,
           choices: tuple[str, ...] = ()) -> LaunchArgument:
    return LaunchArgument(name, default, "simulator: " + description, choices, fault_type=kind)


#: Every launch argument, in declaration order.
ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("robot", bundled.DEFAULT_ROBOT,
                   f"bundled robot: {', '.join(bundled.BUNDLED_ROBOTS)}"),
    LaunchArgument("sim", "kinematic",
                   "simulator backend, or none for the controller only", SIM_CHOICES),
    LaunchArgument("output", "velocity", "controller command output", OUTPUT_MODES),
    LaunchArgument("params_file", "",
                   "extra parameter file applied after config/<robot>.yaml (empty: none)"),
    _fault("noise_std", "0.0", float, "joint position noise std [rad]"),
    _fault("latency", "0.0", float, "age of the published state [s]"),
    _fault("drop_probability", "0.0", float, "probability of dropping a joint state"),
    _fault("freeze_after", "0.0", float, "freeze /joint_states from then on [s] (<= 0: never)"),
    _fault("freeze_mode", FREEZE_MODES[0], str,
           "once frozen: publish nothing, the last message again, or its positions with "
           "fresh stamps", FREEZE_MODES),
    _fault("jump_after", "0.0", float, "jump the joints at this time [s] (<= 0: never)"),
    _fault("jump_offset", "0.0", float, "size of the joint jump [rad]"),
    _fault("seed", "0", int, "seed of the fault random numbers"),
    LaunchArgument("metrics_port", "", "Prometheus exporter port (empty: no exporter)"),
    LaunchArgument("metrics_address", DEFAULT_METRICS_ADDRESS,
                   "address the exporter binds (127.0.0.1: this host only)"),
)

#: Launch argument name → default (text).
LAUNCH_ARGUMENTS: dict[str, str] = {a.name: a.default for a in ARGUMENTS}

#: Launch arguments forwarded to the simulator as parameters of the same name,
#: with the type each parameter takes.
FAULT_PARAMETERS: dict[str, type] = {
    a.name: a.fault_type for a in ARGUMENTS if a.fault_type is not None}
