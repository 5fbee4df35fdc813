"""Launch the jacobian_ik controller node with a simulated arm.

    ros2 launch jacobian_ik ik_controller.launch.py robot:=panda sim:=kinematic output:=velocity

Arguments (the bring-up runner ``jacobian-ik-bringup`` takes the same ones):

    robot             bundled robot: panda (default), ur5, planar2
    sim               simulator backend: kinematic (default), mujoco, or none
                      (controller only, for a real arm driven by ros2_control)
    output            controller output: velocity (default), position, trajectory
    params_file       extra parameter file applied after config/<robot>.yaml
    noise_std, latency, drop_probability, freeze_after, jump_after,
    jump_offset, seed simulator faults (see sim_arm's parameters)
    metrics_port      start the Prometheus exporter (telemetry_exporter) on this
                      port (empty, the default: no exporter)
    metrics_address   address the exporter binds (default 127.0.0.1: this host only)

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

PACKAGE = 'jacobian_ik'

# Simulator fault arguments and the type of the parameter each one sets.
FAULTS = {
    'noise_std': float,
    'latency': float,
    'drop_probability': float,
    'freeze_after': float,
    'jump_after': float,
    'jump_offset': float,
    'seed': int,
}


def _nodes(context, *args, **kwargs):
    """The two nodes, built once the launch arguments are known."""
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

    controller = Node(
        package=PACKAGE,
        executable='ik_controller',
        name='ik_controller',
        output='screen',
        parameters=files + [{'robot_description': robot_description, 'output': output}],
    )
    nodes = [controller]
    metrics_port = LaunchConfiguration('metrics_port').perform(context)
    if metrics_port:
        nodes.append(Node(
            package=PACKAGE,
            executable='telemetry_exporter',
            name='telemetry_exporter',
            output='screen',
            parameters=[{
                'metrics_port': int(metrics_port),
                'metrics_address': LaunchConfiguration('metrics_address').perform(context),
                'controller': '/ik_controller',
            }],
        ))
    if sim == 'none':
        return nodes

    sim_parameters = {'robot_description': robot_description, 'backend': sim}
    for name, kind in FAULTS.items():
        sim_parameters[name] = kind(LaunchConfiguration(name).perform(context))
    simulator = Node(
        package=PACKAGE,
        executable='sim_arm',
        name='sim_arm',
        output='screen',
        parameters=files + [sim_parameters],
    )
    return [simulator] + nodes


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('robot', default_value='panda',
                              description='bundled robot: panda, ur5, planar2'),
        DeclareLaunchArgument('sim', default_value='kinematic',
                              choices=['kinematic', 'mujoco', 'none'],
                              description='simulator backend, or none for the controller only'),
        DeclareLaunchArgument('output', default_value='velocity',
                              choices=['velocity', 'position', 'trajectory'],
                              description='controller command output'),
        DeclareLaunchArgument('params_file', default_value='',
                              description='extra parameter file applied after '
                                          'config/<robot>.yaml (empty: none)'),
        DeclareLaunchArgument('noise_std', default_value='0.0',
                              description='simulator: joint position noise std [rad]'),
        DeclareLaunchArgument('latency', default_value='0.0',
                              description='simulator: age of the published state [s]'),
        DeclareLaunchArgument('drop_probability', default_value='0.0',
                              description='simulator: probability of dropping a joint state'),
        DeclareLaunchArgument('freeze_after', default_value='0.0',
                              description='simulator: stop publishing after this time [s] '
                                          '(<= 0: never)'),
        DeclareLaunchArgument('jump_after', default_value='0.0',
                              description='simulator: jump the joints at this time [s] '
                                          '(<= 0: never)'),
        DeclareLaunchArgument('jump_offset', default_value='0.0',
                              description='simulator: size of the joint jump [rad]'),
        DeclareLaunchArgument('seed', default_value='0',
                              description='simulator: seed of the fault random numbers'),
        DeclareLaunchArgument('metrics_port', default_value='',
                              description='Prometheus exporter port (empty: no exporter)'),
        DeclareLaunchArgument('metrics_address', default_value='127.0.0.1',
                              description='address the exporter binds (127.0.0.1: this '
                                          'host only)'),
        OpaqueFunction(function=_nodes),
    ])
