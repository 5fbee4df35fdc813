"""The chain's measured joint positions, merged from ``sensor_msgs/JointState`` messages.

Several publishers may share /joint_states (an arm driver, a gripper, a second
driver for some joints), each naming only its own joints.  As
robot_state_publisher and MoveIt's state monitor do, the messages are merged by
joint name: each chain joint keeps its latest value and the time it was
received.  The measurement is complete once every chain joint has a value, and
its age is that of the oldest value: the controller treats it as stale when
that exceeds ``stale_timeout``.

A message is used or rejected whole.  Rejected: a position (or non-empty
velocity / effort) array whose length differs from the name list, a joint named
twice, a non-finite position of a chain joint.  Ignored (neither used nor an
error): a message naming no chain joint.

A message whose header stamp is set (non-zero) and equal to the stamp of a
joint's current value repeats it: the value stays, the publisher is alive.  The
controller then sees an unchanged measurement that keeps arriving, which it
calls frozen once the arm is commanded to move (``frozen_timeout``); and a joint
whose stamp has repeated for longer than ``stale_after`` (the controller's
``stale_timeout``) counts as old as the message that brought the stamp, so a
publisher repeating one message is stale even while the arm is at rest.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from jacobian_ik.node.conversions import ACCEPTED, InputCheck

if TYPE_CHECKING:
    from sensor_msgs.msg import JointState

#: Result of a message naming none of the chain's joints.
IGNORED = InputCheck(False, "joint_states names none of the chain's joints", ignored=True)


class JointStateMerger:
    """Merges /joint_states messages by joint name into the chain's positions.

    ``positions`` Shape (n,): latest value of each chain joint [rad | m], in chain
    order (0 until received); ``received`` (n values): receipt time of the last
    message naming the joint [s, the caller's clock], −inf until received;
    ``renewed`` (n values): receipt time of the last one that brought a new stamp
    (or had none).  The index map of the last seen name list
    is cached, so a publisher that always sends the same names costs one comparison
    per message (two publishers alternating cost a rebuild each).

    Per-joint values are kept in ``array('d')`` objects (``positions`` is a NumPy
    view of one): the per-message and per-cycle work reads and writes them as
    Python floats, without NumPy's per-element calls.
    """

    def __init__(self, joint_names: Iterable[str]) -> None:
        self.joint_names = tuple(joint_names)
        n = len(self.joint_names)
        self._slot = {name: i for i, name in enumerate(self.joint_names)}
        self._positions = array("d", bytes(8 * n))
        self.positions = np.frombuffer(self._positions, dtype=np.float64)
        self.received = array("d", [-math.inf] * n)
        self.renewed = array("d", [-math.inf] * n)
        self._stamps = array("q", bytes(8 * n))     # [ns] header stamp of each value
        self._complete = n == 0
        self._last_names: list[str] | None = None
        self._last_map: tuple[list[int], list[int]] | None = None   # (message k, slot)
        self._last_check: InputCheck = ACCEPTED
        self.repeated = 0          # accepted messages that repeated a joint's stamp

    # ------------------------------------------------------------ reading
    def _map_for(self, names: Sequence[str]
                 ) -> tuple[tuple[list[int], list[int]] | None, InputCheck]:
        """(message indices, chain slots) of the chain joints a name list holds."""
        if self._last_names is not None and names == self._last_names:
            return self._last_map, self._last_check
        ks: list[int] = []
        slots: list[int] = []
        check = ACCEPTED
        seen = set()
        for k, name in enumerate(names):
            if name in seen:
                check = InputCheck(False, f"joint_states names joint '{name}' twice")
                break
            seen.add(name)
            slot = self._slot.get(name)
            if slot is not None:
                ks.append(k)
                slots.append(slot)
        if check.ok and not slots:
            check = IGNORED
        self._last_names = list(names)
        self._last_map = (ks, slots) if check.ok else None
        self._last_check = check
        return self._last_map, check

    def update(self, msg: JointState, now: float) -> InputCheck:
        """Merge ``msg`` (``sensor_msgs/JointState``) received at ``now`` [s].

        Returns ``ACCEPTED``, ``IGNORED`` (no chain joint named) or a rejection with
        its reason; only an accepted message changes the measurement.
        """
        names = msg.name
        n_names = len(names)
        if len(msg.position) != n_names:
            return InputCheck(False, f"joint_states has {n_names} names but "
                                     f"{len(msg.position)} positions")
        for field in ("velocity", "effort"):
            length = len(getattr(msg, field))
            if length not in (0, n_names):
                return InputCheck(False, f"joint_states has {n_names} names but "
                                         f"{length} {field} values (must be 0 or {n_names})")
        mapping, check = self._map_for(names)
        if mapping is None or not check.ok:
            return check
        ks, slots = mapping
        position = msg.position
        for k, slot in zip(ks, slots):
            if not math.isfinite(position[k]):
                return InputCheck(False, f"joint_states position of "
                                         f"'{self.joint_names[slot]}' is {position[k]}")
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        repeated = False
        received, renewed, stamps, positions = (self.received, self.renewed, self._stamps,
                                                self._positions)
        for k, slot in zip(ks, slots):
            received[slot] = now
            if stamp != 0 and stamp == stamps[slot]:
                repeated = True
                continue
            positions[slot] = position[k]
            renewed[slot] = now
            stamps[slot] = stamp
        self.repeated += repeated
        if not self._complete:
            self._complete = min(received) > -math.inf
        return ACCEPTED

    # ------------------------------------------------------------ the measurement
    @property
    def complete(self) -> bool:
        """Every chain joint has a value."""
        return self._complete

    def missing(self) -> list[str]:
        """Chain joints with no value yet."""
        return [name for name, t in zip(self.joint_names, self.received) if t == -math.inf]

    def age(self, now: float, stale_after: float) -> float:
        """Age [s] of the measurement at ``now``: the largest over the chain joints of
        the time since the last message naming the joint, or, for a joint whose stamp
        has repeated for longer than ``stale_after`` [s], since the message that
        brought the stamp (inf while incomplete)."""
        age = 0.0
        for received, renewed in zip(self.received, self.renewed):
            since = now - renewed
            joint_age = since if since > stale_after else now - received
            if joint_age > age:
                age = joint_age
        return age
