"""Running one node as a process: init, spin until Ctrl-C / SIGTERM, clean exit.

Both nodes of the package run through ``run_node``.  It installs its own SIGINT
and SIGTERM handlers, which only set a flag: rclpy's default handler raises from
inside the executor, which can interrupt rclpy half-way through taking a message
and make a clean shutdown exit with an error.  With the flag, the executor
finishes its current callback, ``on_stop`` still has a valid context (the
controller publishes its final stop command there) and the process exits 0.

After the node is built (the controller's kernels compiled), ``run_node``
declares the process parameters (``PROCESS_PARAMETERS``: executor, CPU
affinity, real-time priority, memory lock), applies the real-time options
(each refusal is one warning line), keeps the garbage collector out of the
callbacks (``realtime.keep_gc_out_of_cycles`` plus a 1 Hz collection timer)
and spins the chosen executor.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from jacobian_ik.errors import JacobianIkError
from jacobian_ik.node import realtime
from jacobian_ik.node.executors import make_executor
from jacobian_ik.node.parameters import declare_process_parameters

#: [s] Longest wait for one executor event, and how often the spin loop checks that
#: the rclpy context is still up.
CONTEXT_CHECK_PERIOD = 0.1

#: The node class a process runs.
NodeT = TypeVar("NodeT", bound=Node)


class _StopRequest:
    """Set by SIGINT / SIGTERM; the handler does nothing else."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run_node(node_name: str, make_node: Callable[[], NodeT],
             on_stop: Callable[[NodeT], None] | None = None,
             args: list[str] | None = None) -> int:
    """Create the node with ``make_node`` and spin it until a stop is requested.

    Returns 0 after a clean stop, 1 if rclpy rejects the ROS arguments or
    parameter files, or if ``make_node`` raises a ``JacobianIkError`` (bad
    parameters: logged as one line, no traceback).
    """
    if args is None:
        args = sys.argv
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as exc:  # rclpy raises its own RCLError for bad --ros-args / files
        print(f"[{node_name}] cannot start: invalid ROS arguments or parameter file: "
              f"{str(exc).strip()}", file=sys.stderr)
        return 1
    stop = _StopRequest()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        try:
            node = make_node()
        except JacobianIkError as exc:
            rclpy.logging.get_logger(node_name).error(f"cannot start: {exc}")
            return 1
        try:
            settings = declare_process_parameters(node)
        except JacobianIkError as exc:
            node.get_logger().error(f"cannot start: {exc}")
            node.destroy_node()
            return 1
        logger = node.get_logger()
        applied = realtime.apply_realtime(settings, logger.warning)
        executor, executor_name = make_executor(settings.executor, logger=logger)
        executor.add_node(node)
        realtime.keep_gc_out_of_cycles()
        gc_timer = node.create_timer(realtime.GC_PERIOD, realtime.collect_garbage)
        logger.info(f"spinning on the {executor_name} executor; real-time options: {applied}")
        try:
            # Timers wake the executor every period, so a stop request is seen
            # within one period (the timeout covers a node without timers).  The
            # context (rclpy.ok(), a lock and a C call) is checked once per
            # CONTEXT_CHECK_PERIOD rather than after every callback.
            next_check = 0.0
            while not stop.requested:
                executor.spin_once(timeout_sec=CONTEXT_CHECK_PERIOD)
                now = time.monotonic()
                if now >= next_check:
                    if not rclpy.ok():
                        break
                    next_check = now + CONTEXT_CHECK_PERIOD
        except ExternalShutdownException:
            pass
        if on_stop is not None:
            on_stop(node)
        node.destroy_timer(gc_timer)
        executor.remove_node(node)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return 0
