"""Real-time options of a node process: CPU affinity, SCHED_FIFO, memory lock, GC.

``apply_realtime(settings, warn)`` applies the ``ProcessSettings`` options to
the calling process at start-up.  Each option the OS refuses (no permission,
a core that does not exist, a memlock limit) costs one warning line through
``warn`` and is skipped: the node runs on without it, never crashes.  Returns
a one-line summary of what was applied.

``keep_gc_out_of_cycles()`` is called once after warm-up: it collects,
freezes every object alive at that point (``gc.freeze``: the collector never
scans them again) and switches automatic collection off, so no collection can
start inside a control cycle.  ``collect_garbage()`` then runs from a slow
timer (between cycles) and frees reference cycles made since; it scans only
the objects made after the freeze, so it takes microseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jacobian_ik.node.parameters import ProcessSettings

#: mlockall flags (Linux <sys/mman.h>).
MCL_CURRENT = 1
MCL_FUTURE = 2
#: Bit of CAP_IPC_LOCK in /proc/self/status CapEff.
CAP_IPC_LOCK = 14

#: Period of ``collect_garbage`` [s].
GC_PERIOD = 1.0


def set_cpu_affinity(cores: Sequence[int]) -> str | None:
    """Restrict this process to ``cores``; the reason when refused, else None."""
    try:
        os.sched_setaffinity(0, set(cores))
    except (OSError, ValueError, AttributeError) as exc:
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        return (f"cpu_affinity {list(cores)} refused ({exc}); running on cores {available}")
    return None


def set_realtime_priority(priority: int) -> str | None:
    """SCHED_FIFO at ``priority`` for this process; the reason when refused, else None."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        return (f"realtime_priority {priority} refused ({exc}); running with normal "
                "scheduling (grant CAP_SYS_NICE or an rtprio limit, see docs/node.md)")
    return None


def _has_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


def lock_memory() -> str | None:
    """mlockall(MCL_CURRENT | MCL_FUTURE); the reason when refused, else None.

    Without CAP_IPC_LOCK and with a finite memlock limit the lock is not
    tried: MCL_FUTURE would make every later allocation beyond the limit fail.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft != resource.RLIM_INFINITY and not _has_capability(CAP_IPC_LOCK):
        return (f"lock_memory skipped: the memlock limit is {soft // 1024} KiB and the "
                "process lacks CAP_IPC_LOCK (set 'memlock unlimited', see docs/node.md)")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
            errno = ctypes.get_errno()
            return f"lock_memory refused: mlockall failed ({os.strerror(errno)})"
    except (OSError, AttributeError) as exc:
        return f"lock_memory unavailable: {exc}"
    return None


def apply_realtime(settings: ProcessSettings, warn: Callable[[str], object]) -> str:
    """Apply ``settings`` (a ``ProcessSettings``) to this process; returns a summary."""
    applied = []
    if settings.cpu_affinity:
        refused = set_cpu_affinity(settings.cpu_affinity)
        if refused:
            warn(refused)
        else:
            applied.append(f"cores {sorted(settings.cpu_affinity)}")
    if settings.realtime_priority > 0:
        refused = set_realtime_priority(settings.realtime_priority)
        if refused:
            warn(refused)
        else:
            applied.append(f"SCHED_FIFO {settings.realtime_priority}")
    if settings.lock_memory:
        refused = lock_memory()
        if refused:
            warn(refused)
        else:
            applied.append("memory locked")
    return ", ".join(applied) if applied else "none"


def keep_gc_out_of_cycles() -> None:
    """Collect, freeze the survivors and stop automatic collection (see the module doc)."""
    gc.collect()
    gc.freeze()
    gc.disable()


def collect_garbage() -> None:
    """Collect the objects not frozen (call between cycles)."""
    gc.collect()
