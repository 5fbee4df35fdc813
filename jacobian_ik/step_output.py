"""``StepOutput``: a cycle's result that ``Controller.step_into`` overwrites in place.

``Controller.step`` returns a fresh, immutable ``StepResult`` every cycle (two new
arrays and a new tuple); ``Controller.step_into`` writes the same fields into one
``StepOutput`` made beforehand by ``Controller.new_output()``, so that a control loop
allocates nothing per cycle::

    out = ctl.new_output()                          # once, before the loop
    while running:
        ctl.step_into(q_measured, T_base_target, dt, out)
        send(out.dq_command)                        # or out.q_command

The next ``step_into`` with the same ``out`` overwrites it: its arrays (the same
two array objects for the output's whole life) and every field.  Keep a copy
(``out.to_result()``, a ``StepResult`` of its own) for anything that must outlive
the cycle.  Which to use: docs/controller.md ("step or step_into").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.safety import SafetyState

if TYPE_CHECKING:
    from jacobian_ik.controller import StepResult

__all__ = ["StepOutput"]

#: The reason of an output no cycle has written yet.
NO_CYCLE_REASON = "no cycle yet"


class StepOutput:
    """Result of the last control cycle written into it by ``Controller.step_into``
    (mutable, reused: every call overwrites it in place).

    Its fields have the names and meanings of ``StepResult``'s (see there):
    ``dq_command``, ``q_command`` (Shape (dof,) arrays: the same two array objects
    every cycle, overwritten in place), ``state``, ``reason``, ``sigma_min``,
    ``sigma_max``, ``condition_number``, ``manipulability``, ``speed_scale``,
    ``damping``, ``position_error``, ``orientation_error``, ``goal_reached``,
    ``limited``, ``min_distance``, ``closest_pair``.  The reason and limited texts
    and the pair tuples are the controller's cached objects: step_into allocates
    nothing for them.

    Before its first cycle: state IDLE, reason "no cycle yet", zero commands and
    numbers, min_distance inf, closest_pair ("", "").

    Get one from ``Controller.new_output()`` (or ``StepOutput(dof)``); a controller
    refuses an output of another dof (``ConfigurationError``).  ``to_result()``
    copies it into a ``StepResult`` that later cycles leave unchanged.
    Not thread-safe: read it in the thread that steps the controller.
    """

    __slots__ = ("_dof", "_into", "closest_pair", "condition_number", "damping", "dq_command",
                 "goal_reached", "limited", "manipulability", "min_distance",
                 "orientation_error", "position_error", "q_command", "reason", "sigma_max",
                 "sigma_min", "speed_scale", "state")

    dq_command: np.ndarray
    q_command: np.ndarray
    state: SafetyState
    reason: str
    sigma_min: float
    sigma_max: float
    condition_number: float
    manipulability: float
    speed_scale: float
    damping: float
    position_error: float
    orientation_error: float
    goal_reached: bool
    limited: str
    min_distance: float
    closest_pair: tuple[str, str]

    def __init__(self, dof: int) -> None:
        if isinstance(dof, bool) or not isinstance(dof, (int, np.integer)) or dof < 1:
            raise ConfigurationError(
                f"StepOutput dof must be a positive integer (the robot's joint count), "
                f"got {dof!r}", parameter="dof", value=dof, valid_range=(1, None))
        dof = int(dof)
        # Both commands in one array (velocities, then positions), as in the
        # controller's buffer: step_into fills them with one copy, through _into.
        commands = np.zeros(2 * dof)
        self.dq_command = commands[:dof]
        self.q_command = commands[dof:]
        self._into = commands.data             # a memoryview of it
        self._dof = dof
        self.state = SafetyState.IDLE
        self.reason = NO_CYCLE_REASON
        self.sigma_min = self.sigma_max = self.condition_number = 0.0
        self.manipulability = self.speed_scale = self.damping = 0.0
        self.position_error = self.orientation_error = 0.0
        self.goal_reached = False
        self.limited = ""
        self.min_distance = math.inf
        self.closest_pair = ("", "")

    @property
    def dof(self) -> int:
        """Length of the command arrays (the robot's joint count)."""
        return self._dof

    def to_result(self) -> StepResult:
        """A ``StepResult`` of the values now in this output, with copies of its
        arrays: later cycles leave it unchanged."""
        from jacobian_ik.controller import result_of

        return result_of(self)

    def __repr__(self) -> str:
        text = repr(self.to_result())
        return "StepOutput" + text[text.index("("):]
