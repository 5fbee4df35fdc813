"""Build script of jacobian_ik: a ROS 2 ament_python package and a pip package.

Both `colcon build` (ament_python) and `pip install [-e] .` use this file.
The data files (package.xml, the ament resource marker, and everything under
launch/, config/ and urdf/) go to share/jacobian_ik/ below the install prefix,
where ament_index_python and ``jacobian_ik.bundled.share_dir()`` find them.
Console scripts: see setup.cfg for where colcon puts them.
"""

import os

from setuptools import find_namespace_packages, setup

PACKAGE_NAME = "jacobian_ik"
HERE = os.path.dirname(os.path.abspath(__file__))

# Folders installed whole (files only, sub-folders kept) to share/jacobian_ik/.
SHARE_FOLDERS = ("launch", "config", "urdf")


def share_data_files(folder):
    """data_files entries for every file below ``folder``, keeping its layout.

    The top folder always gets an entry, even when it is missing or empty,
    so the install has the folder (setuptools creates it for an empty list).
    """
    entries = {os.path.join("share", PACKAGE_NAME, folder): []}
    top = os.path.join(HERE, folder)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel_dir = os.path.relpath(dirpath, HERE)
        target = os.path.join("share", PACKAGE_NAME, rel_dir)
        files = [os.path.join(rel_dir, name) for name in sorted(filenames)
                 if not name.startswith(".")]
        if files:
            entries.setdefault(target, []).extend(files)
    return sorted(entries.items())


data_files = [
    ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE_NAME]),
    ("share/" + PACKAGE_NAME, ["package.xml"]),
]
for _folder in SHARE_FOLDERS:
    data_files.extend(share_data_files(_folder))

ROS_REQUIRES = [
    "ros-rclpy",
    # rclpy needs an RMW implementation; the wheel must be named explicitly.
    "ros-rmw-fastrtps-cpp",
    "ros-sensor-msgs",
    "ros-geometry-msgs",
    "ros-trajectory-msgs",
    "ros-std-msgs",
    "ros-std-srvs",
    "ros-diagnostic-msgs",
    "ros-visualization-msgs",
]

setup(
    name=PACKAGE_NAME,
    version="0.1.0",
    description=("Real-time damped-least-squares Jacobian controller for robot "
                 "arms, built from a URDF, with a singularity safe stop"),
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_namespace_packages(
        include=[PACKAGE_NAME, PACKAGE_NAME + ".*"],
        exclude=["*.__pycache__"]),
    # py.typed: the package's annotations are meant for type checkers (PEP 561).
    package_data={PACKAGE_NAME: ["py.typed"]},
    data_files=data_files,
    install_requires=[
        "numpy",
        "numba",
        "pin",
        "pyyaml",
    ],
    extras_require={
        "ros": ROS_REQUIRES,
        "sim": ["mujoco"],
        "audit": ["matplotlib", "rosbags", "scipy"],
        # The Prometheus exporter (jacobian_ik.telemetry, telemetry_exporter node).
        "telemetry": ["prometheus-client", "rosbags"],
        "test": [
            "pytest",
            "pytest-timeout",
            "hypothesis",
            "example-robot-data",
            "colcon-common-extensions",
            "ros-ament-package",
            # tests/test_packaging.py builds the package without build
            # isolation (offline), which needs these in the venv.
            "setuptools>=64",
            "wheel",
        ],
        # `make lint`: the versions whose rules pyproject.toml's configuration is
        # written for.
        "lint": [
            "ruff>=0.17,<0.18",
            "mypy>=2.4,<2.5",
            "types-PyYAML",
        ],
        # `make bench` only: the closed-loop peer benchmark (bench/bench_peer.py)
        # runs pink, a QP differential IK, with the daqp solver.
        "bench": ["example-robot-data", "pin-pink", "daqp"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "ik_controller = jacobian_ik.node.ik_controller:main",
            "sim_arm = jacobian_ik.node.sim_arm:main",
            "jacobian-ik-bringup = jacobian_ik.node.bringup:main",
            "jacobian-ik = jacobian_ik.audit.cli:main",
            "telemetry_exporter = jacobian_ik.node.telemetry_exporter:main",
        ],
    },
)
