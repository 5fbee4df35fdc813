"""Properties of the package as installed by colcon (ament_python) and by pip.

These tests build a copy of the repository, never the working tree itself, so
no build output lands in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "jacobian_ik"
ROBOTS = ("panda", "planar2", "ur5")
ROS_SCRIPTS = ("ik_controller", "sim_arm", "jacobian-ik-bringup")
ALL_SCRIPTS = ROS_SCRIPTS + ("jacobian-ik",)

# Never copied into the build workspace: VCS data, environments, build output.
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "install", "log", "__pycache__", ".pytest_cache",
    ".hypothesis", "*.egg-info", "*.nbi", "*.nbc")


def _copy_package(dest: Path) -> Path:
    shutil.copytree(REPO, dest, ignore=_IGNORE, symlinks=True)
    return dest


def _run(cmd, cwd, env=None, timeout=240):
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}"
    return proc.stdout


def _colcon_command() -> list[str]:
    """colcon of the interpreter running the tests (the venv's)."""
    script = Path(sys.executable).parent / "colcon"
    if script.is_file():
        return [str(script)]
    pytest.importorskip("colcon_core")
    return [sys.executable, "-c",
            "import sys; from colcon_core.command import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    """A real `colcon build` of a copy of the package; returns its install base."""
    pytest.importorskip("colcon_ros", reason="colcon-common-extensions is not installed")
    pytest.importorskip("ament_package", reason="ros-ament-package is not installed")
    ws = tmp_path_factory.mktemp("colcon_ws")
    _copy_package(ws / "src" / PACKAGE)
    env = dict(os.environ)
    env["COLCON_HOME"] = str(ws / "colcon_home")  # no user defaults
    env.pop("COLCON_DEFAULTS_FILE", None)
    _run(_colcon_command() + [
        "--log-base", str(ws / "log"),
        "build",
        "--base-paths", str(ws / "src"),
        "--build-base", str(ws / "build"),
        "--install-base", str(ws / "install"),
        "--event-handlers", "console_direct+",
    ], cwd=ws, env=env)
    return ws / "install"


@pytest.mark.slow
def test_colcon_build_installs_share_files(colcon_install):
    """colcon build installs package.xml, launch/, config/ (three yaml) and urdf/
    (three urdf) to share/jacobian_ik, and the ament index marker."""
    share = colcon_install / PACKAGE / "share" / PACKAGE
    assert (share / "package.xml").is_file()
    assert (share / "launch").is_dir()
    for robot in ROBOTS:
        assert (share / "config" / f"{robot}.yaml").is_file(), robot
        assert (share / "urdf" / f"{robot}.urdf").is_file(), robot
    marker = (colcon_install / PACKAGE / "share" / "ament_index" / "resource_index"
              / "packages" / PACKAGE)
    assert marker.is_file()


@pytest.mark.slow
def test_colcon_build_puts_console_scripts_where_ros2_run_looks(colcon_install):
    """colcon build writes the console scripts to install/jacobian_ik/lib/jacobian_ik/."""
    lib = colcon_install / PACKAGE / "lib" / PACKAGE
    for script in ALL_SCRIPTS:
        path = lib / script
        assert path.is_file(), f"{path} missing; lib holds {sorted(os.listdir(lib))}"
        assert os.access(path, os.X_OK), path


@pytest.mark.slow
def test_colcon_install_finds_its_share_dir_through_the_ament_index(colcon_install):
    """Imported from the colcon install, bundled.share_dir() is the installed
    share/jacobian_ik (found through AMENT_PREFIX_PATH)."""
    prefix = colcon_install / PACKAGE
    site = sorted(prefix.glob("lib/python*/site-packages"))
    assert site, f"no site-packages under {prefix}"
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = str(prefix)
    env["PYTHONPATH"] = os.pathsep.join([str(site[0]), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    out = _run([sys.executable, "-c",
                "import jacobian_ik.bundled as b; print(b.__file__); print(b.share_dir()); "
                "print(*b.robot_links('panda'))"],
               cwd=colcon_install, env=env)
    module_file, share, links = out.strip().splitlines()[-3:]
    assert Path(module_file).is_relative_to(prefix)
    assert Path(share) == prefix / "share" / PACKAGE
    assert links == "panda_link0 panda_hand_tcp"


def _pip_install(tmp_path: Path, editable: bool) -> Path:
    pytest.importorskip("setuptools")
    src = _copy_package(tmp_path / "src")
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip would first uninstall the package
    # from the environment running the tests (the project venv), --prefix or not.
    # --no-build-isolation: offline, with the venv's setuptools and wheel.
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
           "--ignore-installed", "--no-build-isolation", "--disable-pip-version-check",
           "--no-input", "--prefix", str(prefix)]
    cmd += ["-e", str(src)] if editable else [str(src)]
    _run(cmd, cwd=tmp_path)
    return prefix


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False], ids=["editable", "regular"])
def test_pip_install_puts_console_scripts_on_bin(tmp_path, editable):
    """pip install (-e) writes the console scripts to <prefix>/bin (the venv's
    PATH), not to lib/jacobian_ik: setup.cfg's colcon settings do not leak into pip.  A
    regular install ships py.typed (PEP 561: type checkers read the package's annotations)."""
    prefix = _pip_install(tmp_path, editable)
    for script in ALL_SCRIPTS:
        assert (prefix / "bin" / script).is_file(), script
    assert not (prefix / "lib" / PACKAGE).exists()
    if not editable:
        share = prefix / "share" / PACKAGE
        for robot in ROBOTS:
            assert (share / "urdf" / f"{robot}.urdf").is_file(), robot
            assert (share / "config" / f"{robot}.yaml").is_file(), robot
        site = sorted(prefix.glob("lib/python*/site-packages"))
        assert site and (site[0] / PACKAGE / "py.typed").is_file()


def test_package_xml_declares_ament_python_and_runtime_dependencies():
    """package.xml is format 3, ament_python, and depends on rclpy and the message packages."""
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == PACKAGE
    assert root.findtext("export/build_type") == "ament_python"
    exec_depends = {e.text for e in root.findall("exec_depend")}
    for dep in ("rclpy", "sensor_msgs", "geometry_msgs", "trajectory_msgs", "std_msgs",
                "std_srvs", "diagnostic_msgs", "ament_index_python", "python3-numpy",
                "python3-yaml"):
        assert dep in exec_depends, dep
    assert "python3-pytest" in {e.text for e in root.findall("test_depend")}


def test_setup_py_version_matches_package_xml():
    """setup.py and package.xml carry the same version."""
    import re
    import xml.etree.ElementTree as ET

    version = ET.parse(REPO / "package.xml").getroot().findtext("version")
    match = re.search(r'version\s*=\s*"([^"]+)"', (REPO / "setup.py").read_text())
    assert match and match.group(1) == version
