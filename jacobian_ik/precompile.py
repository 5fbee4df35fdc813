"""``jacobian-ik precompile``: compile every numba kernel into numba's cache.

Run once after installing (``make venv`` does): later starts load the compiled
kernels from the cache instead of compiling them (tens of seconds on a small
computer), so the controller is ready in about a second.  The cache folder is
the one ``jacobian_ik.numba_cache`` chooses (next to the kernels when that is
writable, else ``$XDG_CACHE_HOME/jacobian_ik/numba``); run the command as the
user that runs the node when the install folder is read-only.

The kernels are compiled by calling them the way the package does (the
controller's warm-up for both tasks, one IK solve, a small Jacobian audit with
its collision counts), so the cached signatures are the ones used at run time.
``--only controller`` compiles just what the node needs (a robot computer that
never runs the IK solver or the audit).  A kernel that none of these reaches
(one used only by tests or benchmarks) is named in the output and compiles on
its first use.

It also writes the package's Python bytecode (``__pycache__/*.pyc``, as
``pip install`` does for a regular install) where the package folder is
writable: an editable install or a checkout otherwise compiles every module
from source at each start when ``PYTHONDONTWRITEBYTECODE`` is set.  A read-only
install keeps the bytecode its installer wrote.
"""

from __future__ import annotations

import compileall
import importlib
import io
import pkgutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from jacobian_ik.numba_cache import choose_cache_dir, writable

#: The package folder whose modules ``compile_bytecode`` compiles.
PACKAGE_DIR = Path(__file__).resolve().parent

if TYPE_CHECKING:
    from numba.core.registry import CPUDispatcher

    from jacobian_ik.robot import Robot

#: The robot whose chain drives the compilation (every chain has the same types).
ROBOT = "panda"


def kernel_dispatchers() -> dict[str, CPUDispatcher]:
    """Every numba dispatcher defined in ``jacobian_ik.kernels``: "module.name" → dispatcher."""
    from numba.core.registry import CPUDispatcher

    import jacobian_ik.kernels as package

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                found[f"{info.name}.{name}"] = value
    return found


def _robot() -> Robot:
    from jacobian_ik import bundled
    from jacobian_ik.robot import Robot

    return Robot.from_urdf(bundled.urdf_path(ROBOT), *bundled.robot_links(ROBOT))


def _controller_kernels() -> None:
    from jacobian_ik.controller import Controller
    from jacobian_ik.params import ControllerParams

    robot = _robot()
    q = robot.q_mid
    robot.jacobian(q, "base")
    robot.jacobian(q, "tip")
    robot.singular_values(q)
    for task in ("pose", "position"):
        Controller(robot, ControllerParams(task=task)).warm_up()


def _ik_kernels() -> None:
    from jacobian_ik.ik import solve_ik

    robot = _robot()
    solve_ik(robot, robot.fk(robot.q_mid))


def _audit_kernels() -> None:
    from jacobian_ik.audit.cli import main as audit_main

    code = audit_main(["audit", ROBOT, "--samples", "64", "--worst", "2", "--json",
                       "--no-progress", "--collisions"], out=io.StringIO(),
                      err=io.StringIO())
    if code != 0:
        raise RuntimeError(f"the audit used to compile the batch kernels exited {code}")


#: Groups of kernels: what each group's run time needs (the node needs "controller").
PARTS = {"controller": _controller_kernels, "ik": _ik_kernels, "audit": _audit_kernels}


def exercise_kernels(parts: Iterable[str] = tuple(PARTS)) -> None:
    """Call the kernel paths of ``parts`` once (compiles or loads each kernel)."""
    for part in parts:
        PARTS[part]()


def compile_bytecode(package_dir: Path = PACKAGE_DIR) -> bool:
    """Write the bytecode of every module below ``package_dir`` (up to date ones are
    kept); False, writing nothing, when the package folder is not writable."""
    if not writable(package_dir / "__pycache__"):
        return False
    return bool(compileall.compile_dir(str(package_dir), quiet=2))


def precompile(out: TextIO = sys.stdout, parts: Iterable[str] = tuple(PARTS)) -> int:
    """Fill the cache for ``parts``, write the package's bytecode and report;
    returns 0 (an error raises)."""
    folder = choose_cache_dir()
    started = time.monotonic()
    if compile_bytecode():
        out.write(f"jacobian-ik precompile: Python bytecode written below {PACKAGE_DIR}\n")
    exercise_kernels(parts)
    elapsed = time.monotonic() - started
    dispatchers = kernel_dispatchers()
    # A kernel called only from other kernels shows no signature when its
    # callers came from the cache: their cached code includes it.
    loaded = sum(bool(d.stats.cache_hits) for d in dispatchers.values())
    compiled = sum(bool(d.stats.cache_misses) for d in dispatchers.values())
    out.write(f"jacobian-ik precompile: kernels ready in {elapsed:.1f} s ({compiled} "
              f"compiled, {loaded} loaded from the cache); cache: {folder}\n")
    if compiled == 0 and loaded == 0:
        raise RuntimeError("no kernel was compiled or loaded")
    return 0


def main(argv: list[str] | None = None) -> int:
    return precompile()  # every part; the jacobian-ik command offers --only


if __name__ == "__main__":
    sys.exit(main())
