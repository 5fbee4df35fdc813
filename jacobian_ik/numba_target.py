"""Set up numba's CPU target for loading the cached kernels, without importing SciPy.

The first kernel a process compiles or loads from the cache makes numba set up
its CPU target: it imports its implementation modules, and one of them probes
for a BLAS by importing ``scipy.linalg.cython_blas``.  When SciPy is installed
(the ``audit`` extra brings it) that import pulls in ``scipy.linalg`` and, through
it, ``numpy.testing``, ``unittest`` and ``numpy.f2py``: about 0.15 s of CPU time
and 130 modules, a large share of the controller node's start-up, although no
kernel uses BLAS.

``load_cpu_target()`` sets the target up while ``import scipy.linalg`` fails, so
the probe finds no BLAS, then lets SciPy be imported again.  The probe only
chooses how numba compiles ``np.convolve``/``np.correlate`` (a loop instead of a
BLAS call; the kernels use neither).  ``np.dot`` and ``np.linalg`` look for SciPy
again when a function that uses them is compiled, so they keep working.  The
controller node calls it before its first kernel; elsewhere numba sets its
target up the usual way.
"""

from __future__ import annotations

import sys

#: The module numba's BLAS probe imports first (``scipy.linalg.cython_blas``'s parent).
_PROBED = "scipy.linalg"

#: Imported when numba's CPU target is set up (and never before).
_TARGET_MODULE = "numba.np.arraymath"


def load_cpu_target() -> bool:
    """Set up numba's CPU target with ``scipy.linalg`` kept out; True if this call
    set it up, False if it was set up before (nothing to gain then) or SciPy's
    linear algebra is already imported (it costs nothing more)."""
    if _TARGET_MODULE in sys.modules or _PROBED in sys.modules:
        return False
    from numba.core.registry import cpu_target

    sys.modules[_PROBED] = None  # type: ignore[assignment]  # import fails: ImportError
    try:
        cpu_target.target_context.refresh()
    finally:
        if sys.modules.get(_PROBED, ...) is None:
            del sys.modules[_PROBED]
    return True
