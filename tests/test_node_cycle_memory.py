"""The controller node's cycle keeps no memory, runs no garbage collection, and
publishes the diagnostics once a second after a cycle's command.

The real node is built in this process (its publishers are real; nobody
needs to listen) and its cycle function, ``_on_cycle``, is driven directly
10,000 times with a moving pose target, as the executor's timer would.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

import jacobian_ik.node as node_package  # noqa: E402
from jacobian_ik import bundled  # noqa: E402
from jacobian_ik.node import realtime  # noqa: E402
from jacobian_ik.node.client import pose_message  # noqa: E402
from jacobian_ik.node.ik_controller import DIAGNOSTICS_PERIOD, IkControllerNode  # noqa: E402

CYCLES = 10_000
NODE_DIR = str(Path(node_package.__file__).parent)


@pytest.fixture
def node(ros_domain_id):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    base, tip = bundled.robot_links("panda")
    overrides = [Parameter("urdf_path", value=str(bundled.urdf_path("panda"))),
                 Parameter("base_link", value=base), Parameter("tip_link", value=tip),
                 Parameter("control_rate", value=1000.0)]
    node = IkControllerNode(context=context, parameter_overrides=overrides)
    yield node
    node.destroy_node()
    rclpy.try_shutdown(context=context)


def _drive(node, cycles: int) -> None:
    """Joint states in, cycle, as the executor would interleave them; the measured
    position follows the command so the arm moves toward the target."""
    msg = JointState()
    msg.name = list(node.robot.joint_names)
    q = np.array(node.robot.q_mid)
    msg.position = q.tolist()
    position = np.frombuffer(msg.position, dtype=np.float64)
    for _ in range(cycles):
        node._on_joint_state(msg)
        node._on_cycle()
        result = node.last_result
        if result is not None:
            np.copyto(position, result.q_command)


def _moving_target(node):
    T = node.robot.fk(node.robot.q_mid)
    T[:3, 3] += [0.0, 0.1, -0.05]
    node._on_target_pose(pose_message(T, node.robot.base_link))


def test_cycles_keep_no_memory_in_the_node_code(node):
    """After 10,000 cycles no line of jacobian_ik/node holds more than a few new
    objects (the latest value of a counter, a time, a state text: a leak of one
    object per cycle would hold thousands), the node code holds < 1 KiB more,
    and the whole process's traced memory grows by < 64 KiB."""
    _moving_target(node)
    _drive(node, 500)  # warm-up: first messages, state changes, log lines
    gc.collect()
    tracemalloc.start(1)
    try:
        _drive(node, 100)
        # rclpy's publish leaves reference cycles behind; the process collects
        # them from its 1 Hz timer, so count what survives a collection.
        gc.collect()
        before = tracemalloc.take_snapshot()
        current_before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _drive(node, CYCLES)
        gc.collect()
        after = tracemalloc.take_snapshot()
        current_after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert node.stats.cycles >= CYCLES
    assert node.internal_errors == 0
    in_node = [stat for stat in after.compare_to(before, "lineno")
               if stat.traceback[0].filename.startswith(NODE_DIR)]
    report = "\n".join(str(stat) for stat in in_node if stat.size_diff > 0)
    assert all(stat.count_diff <= 3 for stat in in_node), report
    assert sum(stat.size_diff for stat in in_node) < 1024, report
    # rclpy's publish keeps an occasional ~60 B object (about 0.15 per metrics
    # message here); a leak of 8 bytes a cycle would exceed this bound.
    assert current_after - current_before < 64 * 1024
    assert peak - current_before < 64 * 1024


def _collections_inside_cycles(node, apply_policy: bool) -> tuple[int, int]:
    """(collections started inside a cycle, all collections) over 10,000 cycles,
    while between cycles other code keeps one new container object each time
    (as callbacks that keep messages do), pushing the collector's counters up."""
    _moving_target(node)
    _drive(node, 500)
    inside = [False]
    started = [0, 0]

    def count(phase, info):
        if phase == "start":
            started[0] += inside[0]
            started[1] += 1

    cycle = node._on_cycle

    def timed_cycle():
        inside[0] = True
        cycle()
        inside[0] = False

    node._on_cycle = timed_cycle
    kept = []
    if apply_policy:
        realtime.keep_gc_out_of_cycles()
    gc.callbacks.append(count)
    try:
        for _ in range(CYCLES // 1000):
            for _ in range(1000):
                kept.append({})
                _drive(node, 1)
            if apply_policy:
                realtime.collect_garbage()   # the process's 1 Hz timer, between cycles
    finally:
        gc.callbacks.remove(count)
        gc.enable()
        gc.unfreeze()
        node._on_cycle = cycle
    return started[0], started[1]


def test_no_garbage_collection_starts_inside_cycles_with_the_policy(node):
    """With the process's GC policy (freeze, automatic collection off, collection
    from a timer between cycles) no collection starts inside any of 10,000 cycles,
    and the only collections are the timer's, although the objects kept between
    cycles would start about one automatic collection per 700."""
    inside, total = _collections_inside_cycles(node, apply_policy=True)
    assert inside == 0
    assert total == CYCLES // 1000


def test_diagnostics_follow_the_command_once_per_diagnostics_period(node):
    """At 1 kHz the diagnostics go out every DIAGNOSTICS_PERIOD worth of cycles, each
    time from the cycle callback after that cycle's command and statistics (so they
    never delay a cycle's command), and describe the cycles so far."""
    every = round(DIAGNOSTICS_PERIOD * 1000.0)
    published = []
    commands = []
    output = node._output.publish
    diagnostics = node._diagnostics.publish

    def record_command(*args):
        commands.append(node.stats.cycles)
        output(*args)

    def record_diagnostics(state_name, reason, last_result, stats, *args, **kwargs):
        published.append((stats.cycles, len(commands)))
        diagnostics(state_name, reason, last_result, stats, *args, **kwargs)

    node._output.publish = record_command
    node._diagnostics.publish = record_diagnostics
    _moving_target(node)
    _drive(node, 2 * every + every // 2)
    assert published == [(every, every), (2 * every, 2 * every)]
