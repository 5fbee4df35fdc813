"""Properties of jacobian_ik.node.status: state text, metric names, diagnostic levels."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus

from jacobian_ik.node.status import (
    METRIC_NAMES,
    STATE_LEVELS,
    STATE_QOS,
    parse_state_text,
    state_text,
)
from jacobian_ik.safety import SafetyState


@pytest.mark.parametrize("name, reason", [("TRACKING", "goal reached"),
                                          ("SAFE_STOP", "sigma_min 0.019 < sigma_stop 0.02"),
                                          ("IDLE", "")])
def test_state_text_round_trips(name, reason):
    """"STATE: reason" parses back to the state and the reason, colons in it included."""
    assert parse_state_text(state_text(name, reason)) == (name, reason)


def test_every_safety_state_has_a_diagnostic_level():
    """No controller state falls back to the default level by accident."""
    assert set(STATE_LEVELS) == {s.name for s in SafetyState}


def test_stops_are_errors_and_normal_states_ok():
    assert STATE_LEVELS["SAFE_STOP"] == DiagnosticStatus.ERROR
    assert STATE_LEVELS["STALE_INPUT"] == DiagnosticStatus.ERROR
    assert STATE_LEVELS["TRACKING"] == DiagnosticStatus.OK
    assert STATE_LEVELS["APPROACHING_SINGULARITY"] == DiagnosticStatus.WARN


def test_metric_names_are_unique_and_include_the_jacobian_metrics():
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES)
    for name in ("sigma_min", "sigma_max", "condition_number", "manipulability",
                 "speed_scale", "damping", "position_error", "orientation_error",
                 "compute_time"):
        assert name in METRIC_NAMES


def test_state_topic_keeps_the_last_message_for_late_subscribers():
    from rclpy.qos import DurabilityPolicy
    assert STATE_QOS.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert STATE_QOS.depth >= 1
