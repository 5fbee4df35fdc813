"""Joint commands of the simulated arm and their checks.

A ``Command`` is what the joints are told during one backend step:

* mode ``"velocity"``: follow ``velocity`` [rad/s | m/s], one per joint;
* mode ``"position"``: go to ``position`` [rad | m], with ``velocity`` as a
  feed-forward (zero for a plain position command, the trajectory's velocity
  when following a trajectory).

``check_joint_vector`` is the forward_command_controller rule for one command
message: exactly one finite value per simulated joint, else the message is
dropped (the reason is returned for the log).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

VELOCITY = "velocity"
POSITION = "position"
MODES = (VELOCITY, POSITION)


@dataclass(frozen=True)
class Command:
    """A joint command held constant over one backend step.

    ``position``: Shape (n,) target [rad | m] (mode "position"; ignored in mode
    "velocity").  ``velocity``: Shape (n,) [rad/s | m/s], the commanded velocity
    (mode "velocity") or a feed-forward velocity (mode "position").
    """

    mode: str
    position: np.ndarray
    velocity: np.ndarray

    @classmethod
    def velocity_command(cls, velocity: np.ndarray) -> Command:
        velocity = np.array(velocity, dtype=np.float64)
        return cls(VELOCITY, np.full_like(velocity, math.nan), velocity)

    @classmethod
    def position_command(cls, position: np.ndarray,
                         velocity: np.ndarray | None = None) -> Command:
        position = np.array(position, dtype=np.float64)
        velocity = np.zeros_like(position) if velocity is None else np.array(velocity, float)
        return cls(POSITION, position, velocity)


def check_joint_vector(values: ArrayLike, joint_names: tuple[str, ...],
                       what: str) -> tuple[np.ndarray | None, str | None]:
    """``(array, None)`` if ``values`` is one finite number per joint, else ``(None, reason)``.

    ``what`` names the command in the reason ("velocity command", ...).
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"{what} is not an array of numbers; dropped"
    n = len(joint_names)
    if array.shape != (n,):
        return None, (f"{what} has {array.size} values; expected {n}, one per joint "
                      f"({', '.join(joint_names)}); dropped")
    if not np.all(np.isfinite(array)):
        bad = [joint_names[i] for i in np.flatnonzero(~np.isfinite(array))]
        return None, f"{what} has non-finite values for {', '.join(bad)}; dropped"
    return array, None
