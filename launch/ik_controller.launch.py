"""Launch the jacobian_ik controller node with a simulated arm.

    ros2 launch jacobian_ik ik_controller.launch.py robot:=panda sim:=kinematic output:=velocity

The arguments, their defaults and the simulator faults are the table
``jacobian_ik.node.interface.ARGUMENTS``, which the bring-up runner
``jacobian-ik-bringup`` reads too:

    robot             bundled robot: panda (default), ur5, planar2
    sim               simulator backend: kinematic (default), mujoco, or none
                      (controller only, for a real arm driven by ros2_control)
    output            controller output: velocity (default), position, trajectory
    params_file       extra parameter file applied after config/<robot>.yaml
    noise_std, latency, drop_probability, freeze_after, freeze_mode,
    jump_after, jump_offset, seed
                      simulator faults (see sim_arm's parameters)
    metrics_port      Prometheus exporter port (empty: no exporter)
    metrics_address   address the exporter binds (default 127.0.0.1)

Both nodes read share/jacobian_ik/config/<robot>.yaml (base_link, tip_link,
controller and simulator parameters), then params_file, then the URDF as the
``robot_description`` parameter.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from jacobian_ik.node.interface import (
    ARGUMENTS,
    CONTROLLER_NODE,
    EXPORTER_NODE,
    FAULT_PARAMETERS,
    PACKAGE,
    SIM_NODE,
)


def _node(node, parameters):
    """A Node action for (node name, module): the executable has the node's name."""
    name = node[0]
    return Node(package=PACKAGE, executable=name, name=name, output='screen',
                parameters=parameters)


def _nodes(context, *args, **kwargs):
    """The nodes, built once the launch arguments are known."""
    share = get_package_share_directory(PACKAGE)
    robot = LaunchConfiguration('robot').perform(context)
    sim = LaunchConfiguration('sim').perform(context)
    output = LaunchConfiguration('output').perform(context)
    params_file = LaunchConfiguration('params_file').perform(context)

    with open(os.path.join(share, 'urdf', robot + '.urdf'), encoding='utf-8') as stream:
        urdf = stream.read()
    # A string parameter must not be parsed as YAML: wrap it with its type.
    robot_description = ParameterValue(urdf, value_type=str)

    files = [os.path.join(share, 'config', robot + '.yaml')]
    if params_file:
        files.append(params_file)

    controller = _node(CONTROLLER_NODE,
                       files + [{'robot_description': robot_description, 'output': output}])
    nodes = [controller]
    metrics_port = LaunchConfiguration('metrics_port').perform(context)
    if metrics_port:
        nodes.append(_node(EXPORTER_NODE, [{
            'metrics_port': int(metrics_port),
            'metrics_address': LaunchConfiguration('metrics_address').perform(context),
            'controller': '/' + CONTROLLER_NODE[0],
        }]))
    if sim == 'none':
        return nodes

    sim_parameters = {'robot_description': robot_description, 'backend': sim}
    for name, kind in FAULT_PARAMETERS.items():
        sim_parameters[name] = kind(LaunchConfiguration(name).perform(context))
    simulator = _node(SIM_NODE, files + [sim_parameters])
    return [simulator] + nodes


def _declare(argument):
    """DeclareLaunchArgument of one row of the shared table."""
    extra = {'choices': list(argument.choices)} if argument.choices else {}
    return DeclareLaunchArgument(argument.name, default_value=argument.default,
                                 description=argument.description, **extra)


def generate_launch_description():
    return LaunchDescription([_declare(argument) for argument in ARGUMENTS]
                             + [OpaqueFunction(function=_nodes)])
