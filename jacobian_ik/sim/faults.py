"""Fault injection between the simulated joints and the published joint states.

``FaultInjector`` decides, tick by tick, what a /joint_states publisher would
send.  Faults (all off by default; times are counted from the first tick):

* ``noise_std`` [rad]: zero-mean Gaussian noise added to each published
  position (velocities are not touched);
* ``latency`` [s]: the published sample is the newest one measured at least
  ``latency`` ago; its stamp stays the time it was measured, so a receiver
  can see the delay by comparing stamps with its clock;
* ``drop_probability``: each message is left out with this probability;
* ``freeze_after`` [s] (> 0): from then on the published state is frozen;
  ``freeze_mode`` says how: ``silent`` publishes nothing, ``repeat`` the last
  published sample again (same measurement time, so the same stamp: a hung
  bridge), ``stuck`` its positions and velocities with the current time (fresh
  stamps: a stuck encoder);
* ``jump_after`` [s] (> 0) and ``jump_offset`` [rad]: once, at that time, the
  simulated configuration is moved by ``jump_offset`` on every joint
  (``jump_due`` tells the caller when; the caller moves the backend).

Randomness comes from one ``numpy`` generator seeded with ``seed``, split
into independent streams for drops and noise, so a run is reproducible and
the noise does not depend on the drop probability.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jacobian_ik.sim.config import SimConfig


@dataclass(frozen=True)
class JointSample:
    """Joint state measured at ``time`` [s] (the simulator's monotonic clock).

    position Shape (n,) [rad | m], velocity Shape (n,) [rad/s | m/s].
    """

    time: float
    position: np.ndarray
    velocity: np.ndarray


class FaultInjector:
    """Turns the stream of measured samples into the stream of published ones."""

    def __init__(self, *, noise_std: float = 0.0, latency: float = 0.0,
                 drop_probability: float = 0.0, freeze_after: float = 0.0,
                 freeze_mode: str = "silent", jump_after: float = 0.0,
                 jump_offset: float = 0.0, seed: int = 0):
        self.noise_std = float(noise_std)            # [rad]
        self.latency = float(latency)                # [s]
        self.drop_probability = float(drop_probability)
        self.freeze_after = float(freeze_after)      # [s]; <= 0: never
        self.freeze_mode = freeze_mode               # silent | repeat | stuck
        self._last: JointSample | None = None        # last published sample
        self.jump_after = float(jump_after)          # [s]; <= 0: never
        self.jump_offset = float(jump_offset)        # [rad | m]
        drop_seed, noise_seed = np.random.SeedSequence(seed).spawn(2)
        self._drop_rng = np.random.default_rng(drop_seed)
        self._noise_rng = np.random.default_rng(noise_seed)
        self._pending: deque[JointSample] = deque()
        self._jumped = False
        self.dropped = 0      # messages left out by drop_probability
        self.frozen = False   # freeze_after has passed

    @classmethod
    def from_config(cls, config: SimConfig) -> FaultInjector:
        return cls(noise_std=config.noise_std, latency=config.latency,
                   drop_probability=config.drop_probability,
                   freeze_after=config.freeze_after, freeze_mode=config.freeze_mode,
                   jump_after=config.jump_after,
                   jump_offset=config.jump_offset, seed=config.seed)

    def jump_due(self, elapsed: float) -> bool:
        """True exactly once: at the first call with ``elapsed`` [s] ≥ ``jump_after`` > 0."""
        if self._jumped or self.jump_after <= 0.0 or elapsed < self.jump_after:
            return False
        self._jumped = True
        return True

    def publish(self, sample: JointSample, elapsed: float) -> JointSample | None:
        """The sample to publish now, or None.

        ``sample`` is the state just measured; ``elapsed`` [s] the time since
        the first tick.
        """
        if self.freeze_after > 0.0 and elapsed >= self.freeze_after:
            self.frozen = True
            self._pending.clear()
            last = self._last
            if last is None or self.freeze_mode == "silent":
                return None
            if self.freeze_mode == "repeat":
                return last
            return JointSample(sample.time, last.position, last.velocity)
        delayed = self._delay(sample)
        if delayed is None:
            return None
        if self.drop_probability > 0.0 and self._drop_rng.random() < self.drop_probability:
            self.dropped += 1
            return None
        if self.noise_std > 0.0:
            noise = self._noise_rng.normal(0.0, self.noise_std, size=delayed.position.shape)
            delayed = JointSample(delayed.time, delayed.position + noise, delayed.velocity)
        self._last = delayed
        return delayed

    def _delay(self, sample: JointSample) -> JointSample | None:
        """Newest queued sample at least ``latency`` old at ``sample.time``, or None."""
        if self.latency <= 0.0:
            return sample
        self._pending.append(sample)
        due = sample.time - self.latency
        chosen = None
        while self._pending and self._pending[0].time <= due + 1e-12:
            chosen = self._pending.popleft()
        return chosen
