"""A one-line progress bar on a text stream (stderr), redrawn in place."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """Callable ``(done, total)``; draws ``[#####.....]  45%  90000/200000  1.2 s``.

    Redraws at most every ``interval`` seconds and always at the end, where it
    ends the line.  ``enabled=False`` makes it silent.
    """

    def __init__(self, label: str, enabled: bool, stream: TextIO | None = None,
                 interval: float = 0.1) -> None:
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._start = time.perf_counter()
        self._last = -1.0

    @staticmethod
    def wanted(flag: bool | None, stream: TextIO | None = None) -> bool:
        """``--progress`` / ``--no-progress`` if given, else only when the stream is a TTY."""
        if flag is not None:
            return flag
        stream = stream if stream is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        final = done >= total
        if not final and now - self._last < self.interval:
            return
        self._last = now
        share = done / total if total else 1.0
        filled = int(round(WIDTH * share))
        bar = "#" * filled + "." * (WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {100 * share:3.0f}%  {done}/{total}  "
                          f"{now - self._start:.1f} s")
        if final:
            self.stream.write("\n")
        self.stream.flush()
