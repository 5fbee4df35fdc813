"""The rclpy executor a node process spins on.

``events``  ``rclpy.experimental.EventsExecutor``: the middleware's events
            drive a C++ event queue and timers, with far less Python work per
            callback than the wait-set executors (Jazzy and later).
``single``  ``rclpy.executors.SingleThreadedExecutor``: the classic wait-set
            executor.

``make_executor`` returns the chosen one; when ``events`` is asked for but
cannot be created (an rclpy without it), it logs one warning and returns a
``SingleThreadedExecutor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rclpy.executors import Executor, SingleThreadedExecutor

from jacobian_ik.node.parameters import EXECUTOR_CHOICES

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.impl.rcutils_logger import RcutilsLogger


def _events_executor(context: Context | None) -> Executor:
    from rclpy.experimental import EventsExecutor

    return EventsExecutor(context=context)


def make_executor(name: str, context: Context | None = None,
                  logger: RcutilsLogger | None = None) -> tuple[Executor, str]:
    """(executor, the name of the one actually made) for ``name`` in EXECUTOR_CHOICES."""
    if name not in EXECUTOR_CHOICES:
        raise ValueError(f"executor '{name}' is unknown; choices: {', '.join(EXECUTOR_CHOICES)}")
    if name == "events":
        try:
            return _events_executor(context), "events"
        except Exception as exc:  # ImportError, or an rclpy that cannot build it
            if logger is not None:
                logger.warning(f"EventsExecutor unavailable ({type(exc).__name__}: {exc}); "
                               "running on SingleThreadedExecutor")
    return SingleThreadedExecutor(context=context), "single"
