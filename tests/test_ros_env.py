"""Properties of the ROS isolation fixtures in tests/conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

DOMAIN_ID_FIRST, DOMAIN_ID_LAST = 100, 200
_seen_domain_ids: list[int] = []


def test_discovery_is_limited_to_localhost_in_process():
    """os.environ has ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST for in-process rclpy."""
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


@pytest.mark.parametrize("attempt", range(3))
def test_each_test_gets_its_own_domain_id_in_range(ros_domain_id, ros_env, attempt):
    """Every test runs with its own ROS_DOMAIN_ID in 100..200, set in os.environ and ros_env."""
    assert DOMAIN_ID_FIRST <= ros_domain_id <= DOMAIN_ID_LAST
    assert os.environ["ROS_DOMAIN_ID"] == str(ros_domain_id)
    assert ros_env["ROS_DOMAIN_ID"] == str(ros_domain_id)
    assert ros_env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert ros_domain_id not in _seen_domain_ids
    _seen_domain_ids.append(ros_domain_id)


def test_allocated_domain_ids_cycle_through_the_whole_range_without_repeats(
        domain_id_allocator):
    """101 consecutive allocations in one process are 101 distinct valid ids."""
    ids = [domain_id_allocator() for _ in range(DOMAIN_ID_LAST - DOMAIN_ID_FIRST + 1)]
    assert len(set(ids)) == len(ids)
    assert all(DOMAIN_ID_FIRST <= i <= DOMAIN_ID_LAST for i in ids)


@pytest.mark.ros
def test_rclpy_subprocess_uses_the_test_domain_id(ros_env, ros_domain_id):
    """A ROS process started with env=ros_env joins this test's domain."""
    pytest.importorskip("rclpy")
    code = ("import rclpy; rclpy.init(); "
            "print(rclpy.get_default_context().get_domain_id()); rclpy.shutdown()")
    proc = subprocess.run([sys.executable, "-c", code], env=ros_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(ros_domain_id)
