"""Shared test fixtures: ROS 2 isolation and the example-robot-data models.

ROS isolation: every test runs with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``
(set here at import, so in-process rclpy stays on loopback too) and its own
``ROS_DOMAIN_ID`` (set in ``os.environ`` for the duration of each test by an
autouse fixture), so ROS processes of one test never see those of another,
nor those of a concurrent test run.  Tests that start processes pass
``env=ros_env`` (or rely on inheriting ``os.environ``); in-process rclpy picks
the domain up from the environment at ``rclpy.init()``.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import pytest

from jacobian_ik.bundled import example_robot_data_dir

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# ROS_HOME (logs, the controller's flight-recorder files) in a folder of this
# run, not in the user's ~/.ros.
os.environ.setdefault("ROS_HOME", tempfile.mkdtemp(prefix="jacobian_ik_test_ros_home_"))

#: Domain ids handed to tests: [DOMAIN_ID_FIRST, DOMAIN_ID_LAST].
DOMAIN_ID_FIRST = 100
DOMAIN_ID_LAST = 200
#: Largest domain id ROS 2 accepts with the default DDS port mapping.
DOMAIN_ID_MAX = 232

_domain_counter = itertools.count()


def _xdist_worker() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker; (0, 1) without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    count = max(count, index + 1)
    return index, count


def allocate_domain_id() -> int:
    """A ROS domain id not used by any other test of this run, while it runs.

    The range DOMAIN_ID_FIRST..DOMAIN_ID_LAST is split into one block per
    xdist worker; within its block a worker hands out ids in turn, starting at
    an offset taken from the process id so that two concurrent test runs are
    unlikely to start on the same id.
    """
    index, count = _xdist_worker()
    span = DOMAIN_ID_LAST - DOMAIN_ID_FIRST + 1
    block = max(span // count, 1)
    first = DOMAIN_ID_FIRST + (index * block) % span
    offset = (os.getpid() + next(_domain_counter)) % block
    domain_id = first + offset
    if not 0 <= domain_id <= DOMAIN_ID_MAX:
        raise RuntimeError(f"allocated ROS_DOMAIN_ID {domain_id} is outside 0..{DOMAIN_ID_MAX}")
    return domain_id


@pytest.fixture(scope="session")
def domain_id_allocator():
    """The function that hands out ROS domain ids (for tests that need several)."""
    return allocate_domain_id


@pytest.fixture(autouse=True)
def ros_domain_id(monkeypatch) -> int:
    """This test's ROS domain id, also set as ``ROS_DOMAIN_ID`` in os.environ."""
    domain_id = allocate_domain_id()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return domain_id


@pytest.fixture
def ros_env(ros_domain_id) -> dict[str, str]:
    """A copy of os.environ for ROS subprocesses of this test: loopback
    discovery only and this test's own ROS_DOMAIN_ID."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(ros_domain_id)
    return env


@pytest.fixture(scope="session")
def erd_robots_dir() -> Path:
    """The example-robot-data ``robots/`` folder (reference URDFs of real arms)."""
    path = example_robot_data_dir()
    if path is None:
        pytest.skip("example-robot-data is not installed (pip install example-robot-data)")
    return path
