"""``jacobian-ik precompile`` and the numba cache location, on a read-only install.

The package is copied the way it is installed (the ``jacobian_ik`` folder and,
next to it, ``urdf/`` and ``config/``) and made read-only; the child processes
cannot write it (as root they run without CAP_DAC_OVERRIDE).  Precompile must
then fill ``$XDG_CACHE_HOME/jacobian_ik/numba``, and a later process must load
every kernel of the control cycle from there instead of compiling it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import jacobian_ik
from jacobian_ik import numba_cache
from jacobian_ik.precompile import compile_bytecode

PACKAGE_DIR = Path(jacobian_ik.__file__).resolve().parent
SHARE_FOLDERS = ("urdf", "config")


def test_an_explicit_numba_cache_dir_is_kept(tmp_path):
    environ = {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    assert numba_cache.choose_cache_dir(environ) == tmp_path / "mine"
    assert environ == {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}


def test_a_writable_kernels_folder_keeps_numbas_default(tmp_path):
    environ = {}
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    assert numba_cache.choose_cache_dir(environ, kernels) == kernels / "__pycache__"
    assert "NUMBA_CACHE_DIR" not in environ


def test_user_cache_dir_follows_xdg_cache_home(tmp_path):
    assert numba_cache.user_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == \
        tmp_path / "jacobian_ik" / "numba"


def _make_read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def read_only_install(tmp_path):
    install = tmp_path / "install"
    shutil.copytree(PACKAGE_DIR, install / "jacobian_ik", copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
    for folder in SHARE_FOLDERS:
        shutil.copytree(PACKAGE_DIR.parent / folder, install / folder)
    _make_read_only(install)
    yield install
    _make_writable(install)


def _run(install: Path, cache_home: Path, code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    env["PYTHONPATH"] = str(install)
    env["XDG_CACHE_HOME"] = str(cache_home)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root writes anywhere unless it drops CAP_DAC_OVERRIDE
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and util-linux setpriv is missing")
        command = [setpriv, "--bounding-set", "-dac_override", "--", *command]
    return subprocess.run(command, env=env, cwd=install, capture_output=True, text=True,
                          timeout=600)


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def _copy_package(target: Path) -> Path:
    shutil.copytree(PACKAGE_DIR, target / "jacobian_ik", copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
    return target / "jacobian_ik"


def test_compile_bytecode_writes_a_pyc_for_every_module(tmp_path):
    """(On a read-only install it writes nothing: the read-only precompile test below.)"""
    package = _copy_package(tmp_path)
    modules = sorted(package.rglob("*.py"))
    assert compile_bytecode(package)
    missing = [m for m in modules if not Path(importlib.util.cache_from_source(str(m))).is_file()]
    assert missing == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_precompile_on_a_read_only_install_fills_the_user_cache_and_a_new_process_loads_it(
        read_only_install, tmp_path):
    cache_home = tmp_path / "cache home"
    before = _files(read_only_install)
    precompile = _run(read_only_install, cache_home, textwrap.dedent("""
        import sys
        import jacobian_ik
        print("PACKAGE", jacobian_ik.__file__)
        from jacobian_ik.audit.cli import main
        sys.exit(main(["precompile", "--only", "controller"]))
    """))
    assert precompile.returncode == 0, precompile.stdout + precompile.stderr
    assert f"PACKAGE {read_only_install / 'jacobian_ik' / '__init__.py'}" in precompile.stdout
    cache = cache_home / "jacobian_ik" / "numba"
    assert f"cache: {cache}" in precompile.stdout
    assert list(cache.rglob("*.nbi")), "no numba index written to the user cache"
    assert _files(read_only_install) == before, "precompile wrote into the install"

    started = _run(read_only_install, cache_home, textwrap.dedent("""
        import json
        from jacobian_ik import bundled
        from jacobian_ik.controller import Controller
        from jacobian_ik.params import ControllerParams
        from jacobian_ik.precompile import kernel_dispatchers
        from jacobian_ik.robot import Robot
        robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
        Controller(robot, ControllerParams()).warm_up()
        used = {name: (sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))
                for name, d in kernel_dispatchers().items()
                if d.stats.cache_hits or d.stats.cache_misses}
        print(json.dumps(used))
    """))
    assert started.returncode == 0, started.stderr
    used = json.loads(started.stdout.strip().splitlines()[-1])
    assert used, "the controller's warm-up used no kernel"
    compiled = {name: counts for name, counts in used.items() if counts[1] > 0}
    assert compiled == {}, f"compiled again instead of loaded from the cache: {compiled}"
