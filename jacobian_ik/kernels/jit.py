"""How the kernels are compiled: the two decorators every kernel module uses.

``kernel``  numba nopython mode, cached on disk (``cache=True``), and compiled
            without numba's reference-counting runtime (NRT).  The kernels never
            allocate: they read and write arrays they are given, and views of
            them.  With the runtime every view a kernel takes (a block of the
            controller's buffer, a joint vector, a reshaped matrix) costs an
            atomic increment and decrement of its owner's count, which took about
            half of a control cycle.  Without it numba refuses to compile a kernel
            that allocates an array or returns a view it made, so the compiler
            checks the no-allocation rule.
``view``    the same for the small functions that return a view of an argument
            (``layout.block``, ``layout.joint_vector``, ``control._chain``,
            ``kinematics.scratch_views``): inlined into their callers at numba's
            IR level, so the view is made inside the caller.

Kernels that allocate on purpose (``batch``'s parallel sweeps, which give each
thread its scratch) keep ``njit(cache=True, parallel=True)``.
"""

from numba import njit

#: Decorator of a kernel (see the module docstring).
kernel = njit(cache=True, _nrt=False)
#: Decorator of a function returning a view of an argument, inlined where it is called.
view = njit(cache=True, _nrt=False, inline="always")
