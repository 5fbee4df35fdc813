"""ROS 2 nodes of jacobian_ik: the controller node ``ik_controller``, the
simulated arm ``sim_arm`` and the bring-up runner.

Only modules in this package import rclpy or ROS message types.
"""
