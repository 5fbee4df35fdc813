"""Properties of the exporter's collector (jacobian_ik.telemetry.collector): the
exposition text, the fixed series budget and the naming conventions."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jacobian_ik.telemetry import names
from jacobian_ik.telemetry.aggregate import AGGREGATES_LABEL, CycleAggregates, PairCounts
from jacobian_ik.telemetry.collector import (
    COUNTER_SOURCES,
    GAUGE_SOURCES,
    ControllerCollector,
    layout_offsets,
)

STOP, WARN = 0.02, 0.05
D_STOP, D_INFLUENCE = 0.01, 0.1     # [m]
INFO = {"version": "0.1.0", "urdf_sha256": "ab" * 32, "base_link": "base",
        "tip_link": "tool", "parameters_sha256": "cd" * 32}


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _message(agg, sigma_min=0.3):
    """(layout offsets, data) of a metrics message as the controller node builds it."""
    values = {"sigma_min": sigma_min, "sigma_max": 2.0, "condition_number": 2.0 / sigma_min,
              "manipulability": 0.1, "speed_scale": 1.0, "damping": 0.0,
              "position_error": 0.01, "orientation_error": 0.02, "compute_time": 1e-4,
              "state": 0.0, "goal_reached": 0.0, "step_time": 5e-5,
              "min_distance": 0.03}
    dims = [(name, 1) for name in values] + [(AGGREGATES_LABEL, len(agg.values))]
    return layout_offsets(dims), list(values.values()) + list(agg.values)


def _samples(registry):
    text = generate_latest(registry).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _fed_collector(robot="arm1", controller="/ik_controller", clock=None):
    collector = ControllerCollector(robot, controller, clock=clock or _Clock())
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    for sigma, distance in ((0.01, 0.03), (0.03, 0.005), (0.3, 0.2), (0.3, math.inf)):
        agg.cycle(sigma, 2e-4, distance)
    agg.transition("SAFE_STOP", "sigma_stop")
    agg.rejected("joint_states")
    agg.set_overruns(1)
    collector.update_metrics(*_message(agg))
    collector.update_state("SAFE_STOP")
    collector.update_diagnostics({"rate_achieved_hz": "499.5", **INFO})
    return collector


def test_series_per_controller_is_fixed_and_within_budget():
    """87 series per controller once the controller has reported, whatever happened,
    and 2 more per collision pair it has counted."""
    registry = CollectorRegistry(auto_describe=False)
    collector = _fed_collector()
    registry.register(collector)
    samples = _samples(registry)
    assert len(samples) == names.SERIES_PER_CONTROLLER == 87
    collector.update_diagnostics(_pair_diagnostics())
    assert len(_samples(registry)) == 87 + 2 * 2 == (
        names.SERIES_PER_CONTROLLER + 2 * names.SERIES_PER_PAIR)
    assert names.SERIES_PER_CONTROLLER <= 150


def _pair_diagnostics():
    counts = PairCounts()
    counts.stop("panda_link7 – table")
    counts.approaching("panda_link7 – table")
    counts.approaching("panda_hand – wall")
    return {"rate_achieved_hz": "499.5", **INFO,
            **{key: str(total) for key, total in counts.diagnostics_pairs()}}


def test_collision_counts_are_labelled_by_the_pair_the_diagnostics_name():
    registry = CollectorRegistry(auto_describe=False)
    collector = _fed_collector()
    collector.update_diagnostics(_pair_diagnostics())
    registry.register(collector)
    samples = _samples(registry)
    stops = {s.labels["pair"]: s.value for s in samples
             if s.name == names.COLLISION_STOPS.name}
    cycles = {s.labels["pair"]: s.value for s in samples
              if s.name == names.APPROACHING_COLLISION_CYCLES.name}
    assert stops == {"panda_link7 – table": 1.0, "panda_hand – wall": 0.0}
    assert cycles == {"panda_link7 – table": 1.0, "panda_hand – wall": 1.0}
    distance = next(s for s in samples if s.name == names.MIN_DISTANCE.name)
    assert distance.value == 0.03
    buckets = {float(s.labels["le"]): s.value for s in samples
               if s.name == names.DISTANCE_HISTOGRAM.name + "_bucket"}
    assert buckets[D_STOP] == 1.0 and buckets[math.inf] == 3.0   # the inf cycle: none


def test_two_controllers_double_the_series_and_keep_them_apart():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_fed_collector("arm1"))
    registry.register(_fed_collector("arm2"))
    samples = _samples(registry)
    assert len(samples) == 2 * names.SERIES_PER_CONTROLLER
    assert {s.labels["robot"] for s in samples} == {"arm1", "arm2"}


def test_labels_are_bounded_names_follow_the_conventions():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_fed_collector())
    allowed_labels = set(names.COMMON_LABELS) | {"le"} | {
        label for m in names.METRICS for label in m.labels}
    for sample in _samples(registry):
        assert sample.name.startswith(names.NAMESPACE + "_")
        assert set(sample.labels) <= allowed_labels, sample
        for key in names.COMMON_LABELS:
            assert key in sample.labels
    for metric in names.METRICS:
        assert metric.name.startswith(names.NAMESPACE + "_")
        if metric.kind == "counter":
            assert metric.name.endswith("_total")
        else:
            assert not metric.name.endswith("_total")
        if metric.kind == "info":
            assert metric.name.endswith("_info")
        assert "_ms" not in metric.name and "milli" not in metric.name   # base units


def test_values_come_through_histograms_cumulative():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_fed_collector())
    by_name = {}
    for s in _samples(registry):
        by_name.setdefault(s.name, []).append(s)
    assert by_name[names.SIGMA_MIN.name][0].value == 0.3
    assert by_name[names.LOOP_RATE.name][0].value == 499.5
    states = {s.labels["state"]: s.value for s in by_name[names.STATE.name]}
    assert states["SAFE_STOP"] == 1.0 and sum(states.values()) == 1.0
    buckets = by_name[names.SIGMA_HISTOGRAM.name + "_bucket"]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and counts[-1] == 4.0
    assert buckets[-1].labels["le"] == "+Inf"
    le_stop = next(s.value for s in buckets if float(s.labels["le"]) == STOP)
    assert le_stop == 1.0
    assert by_name[names.SIGMA_HISTOGRAM.name + "_count"][0].value == 4.0
    transitions = {(s.labels["state"], s.labels["reason_class"]): s.value
                   for s in by_name[names.TRANSITIONS.name]}
    assert transitions[("SAFE_STOP", "sigma_stop")] == 1.0
    assert by_name[names.OVERRUNS.name][0].value == 1.0
    info = by_name[names.INFO.name][0]
    assert {k: info.labels[k] for k in names.INFO_LABELS} == INFO


def test_before_the_first_message_only_the_age_is_exported_and_it_is_infinite():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControllerCollector("arm1", "/ik_controller"))
    samples = _samples(registry)
    assert [s.name for s in samples] == [names.TELEMETRY_AGE.name]
    assert math.isinf(samples[0].value)


def test_age_grows_when_the_controller_stops_reporting():
    clock = _Clock()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_fed_collector(clock=clock))
    clock.now += 12.5
    age = next(s for s in _samples(registry) if s.name == names.TELEMETRY_AGE.name)
    assert age.value == pytest.approx(12.5)


def test_every_source_value_exists_in_the_controller_message():
    rclpy = pytest.importorskip("rclpy")  # noqa: F841
    from jacobian_ik.node.status import METRIC_NAMES
    from jacobian_ik.telemetry.aggregate import SCALARS

    assert {source for _, source in GAUGE_SOURCES} <= set(METRIC_NAMES)
    assert {source for _, source in COUNTER_SOURCES} <= set(SCALARS)
