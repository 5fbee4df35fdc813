"""Telemetry of the controller: Prometheus metrics and the flight recorder.

No module here imports rclpy or message types; the ROS glue is in
``jacobian_ik.node.telemetry_exporter`` (the exporter process) and
``jacobian_ik.node.telemetry_hooks`` (inside the controller node).

names       every metric name, label and bounded label value (declared once)
aggregate   per-cycle counters and histogram buckets kept by the controller node
info        version, URDF and parameter-set hashes for the info metric
collector   the Prometheus collector of the exporter process
server      the exporter's HTTP endpoint (loopback unless told otherwise)
recorder    the flight recorder: ring buffer of recent cycles, rosbag2 dumps
bagfile     the flight-recorder file format and its writer process
scrape      one scrape of an exporter, parsed (demo, benchmark)
"""
