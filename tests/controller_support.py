"""Shared helpers of the controller-core tests (test_params, test_controller*,
test_safety*, test_ik): the bundled robots, built once per test process."""

from __future__ import annotations

from functools import cache

from jacobian_ik import bundled
from jacobian_ik.controller import Controller
from jacobian_ik.params import ControllerParams
from jacobian_ik.robot import Robot


@cache
def bundled_arm(name: str) -> Robot:
    """The bundled robot ``name`` (its configured chain), shared between tests."""
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def warm_controller(name: str, *, collision: bool | None = None, **params) -> Controller:
    """A fresh controller for bundled robot ``name`` with ``params``, kernels compiled;
    ``collision=False``: without the arm's collision model (a test of another
    guarantee, on configurations the arm's own links may come near)."""
    ctl = Controller(bundled_arm(name), ControllerParams(**params), collision=collision)
    ctl.warm_up()
    return ctl
