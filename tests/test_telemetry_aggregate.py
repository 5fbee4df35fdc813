"""Properties of jacobian_ik.telemetry.aggregate: per-cycle totals and their parsing."""

from __future__ import annotations

import itertools
import math

import pytest

from jacobian_ik.telemetry import names
from jacobian_ik.telemetry.aggregate import (
    HEADER,
    PAIR_KEYS,
    SIGMA_BOUNDS,
    CycleAggregates,
    PairCounts,
    parse_block,
    parse_pair_counts,
    reason_class,
    split_message,
)

STOP, WARN = 0.02, 0.05
D_STOP, D_INFLUENCE = 0.01, 0.1     # [m]


def _totals(agg):
    return split_message(parse_block(agg.values))


def test_every_cycle_lands_in_one_band_and_one_bucket_of_each_histogram():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    sigmas = [0.001, STOP, 0.03, WARN, 0.2, 10.0]
    for i, sigma in enumerate(sigmas):
        agg.cycle(sigma, 1e-4 * (i + 1), math.inf)
    parts = _totals(agg)
    assert parts["scalars"]["cycles"] == len(sigmas)
    assert parts["bands"] == {"above_warn": 3, "warn": 2, "below_stop": 1}
    assert sum(c for _, c in parts["sigma_buckets"]) == len(sigmas)
    assert sum(c for _, c in parts["duration_buckets"]) == len(sigmas)
    assert parts["sigma_sum"] == pytest.approx(sum(sigmas))
    assert parts["duration_sum"] == pytest.approx(sum(1e-4 * (i + 1) for i in range(6)))


def test_bucket_bounds_are_inclusive_upper_bounds_like_prometheus_le():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    agg.cycle(STOP, 1e-4, math.inf)          # exactly on a bound: counted in that bucket
    buckets = dict(_totals(agg)["sigma_buckets"])
    assert buckets[STOP] == 1
    assert sum(buckets.values()) == 1


def test_sigma_buckets_surround_both_thresholds():
    bounds = names.sigma_min_buckets(STOP, WARN)
    assert len(bounds) == names.SIGMA_HISTOGRAM.buckets
    assert list(bounds) == sorted(set(bounds))
    assert STOP in bounds and WARN in bounds
    assert bounds[0] < STOP and bounds[-1] > WARN


def test_close_thresholds_still_give_strictly_increasing_buckets():
    bounds = names.sigma_min_buckets(0.04, 0.05)
    assert all(b > a for a, b in itertools.pairwise(bounds))


def test_a_nan_sigma_counts_the_cycle_but_no_sigma_bucket():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    agg.cycle(math.nan, 1e-4, math.inf)
    parts = _totals(agg)
    assert parts["scalars"]["cycles"] == 1
    assert sum(c for _, c in parts["sigma_buckets"]) == 0
    assert parts["sigma_sum"] == 0.0


def test_transitions_rejections_goals_and_recorder_counts_round_trip():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    agg.transition("SAFE_STOP", "sigma_stop")
    agg.transition("SAFE_STOP", "sigma_stop")
    agg.rejected("target_pose")
    agg.goal_reached()
    agg.recorder_file()
    agg.recorder_failure()
    agg.set_overruns(7)
    parts = _totals(agg)
    assert parts["transitions"][("SAFE_STOP", "sigma_stop")] == 2
    assert parts["rejected"]["target_pose"] == 1
    assert parts["scalars"] == {"cycles": 0, "overruns": 7, "goals_reached": 1,
                                "recorder_files": 1, "recorder_failures": 1}


def test_live_threshold_change_moves_the_bands_not_the_buckets():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    bounds = agg.sigma_bounds
    agg.set_thresholds(STOP, 0.1)
    agg.cycle(0.08, 1e-4, math.inf)
    assert _totals(agg)["bands"]["warn"] == 1
    assert agg.sigma_bounds == bounds


@pytest.mark.parametrize("state, sigma, kwargs, expected", [
    ("SAFE_STOP", 0.01, {}, "sigma_stop"),
    ("SAFE_STOP", 0.03, {}, "blocked"),
    ("SAFE_STOP", 0.03, {"collision": True}, "collision"),
    ("APPROACHING_COLLISION", 0.3, {"collision": True}, "collision"),
    ("APPROACHING_SINGULARITY", 0.04, {}, "sigma_warn"),
    ("APPROACHING_SINGULARITY", 0.3, {}, "look_ahead"),
    ("INVALID_INPUT", 0.3, {"node_rejected": True}, "rejected_message"),
    ("INVALID_INPUT", 0.3, {}, "controller_check"),
    ("STALE_INPUT", 0.3, {"measurement_stale": True}, "measurement"),
    ("STALE_INPUT", 0.3, {}, "target"),
    ("JOINT_LIMIT", 0.3, {}, "joint_limit"),
    ("JOINT_MOVE", 0.3, {}, "joint_path"),
    ("IDLE", 0.3, {}, "no_target"),
])
def test_reason_class_follows_the_cycle_numbers(state, sigma, kwargs, expected):
    flags = {"node_rejected": False, "measurement_stale": False, **kwargs}
    cls = reason_class(state, sigma, False, STOP, WARN, **flags)
    assert cls == expected
    assert cls in names.TRANSITION_CLASSES[state]


def test_every_state_has_reason_classes():
    assert set(names.TRANSITION_CLASSES) == set(names.STATE_NAMES)
    assert set(names.RECORDER_TRIGGER_STATES) <= set(names.STATE_NAMES)


def test_block_carries_its_bucket_bounds_and_rejects_another_layout():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    agg.cycle(0.03, 1e-4, math.inf)
    parsed = parse_block(agg.values)
    assert tuple(agg.values[1:1 + SIGMA_BOUNDS]) == agg.sigma_bounds
    assert tuple(agg.values[1 + SIGMA_BOUNDS:HEADER]) == agg.distance_bounds
    assert list(parsed) == list(agg.names)
    with pytest.raises(ValueError):
        parse_block(agg.values[:-1])
    other = agg.values[:]
    other[0] = 99.0
    with pytest.raises(ValueError):
        parse_block(other)


def test_every_cycle_with_geometry_lands_in_one_distance_bucket_and_the_sum():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    distances = [-0.003, 0.0, D_STOP, 0.04, D_INFLUENCE, 0.5]
    for d in distances:
        agg.cycle(0.3, 1e-4, d)
    buckets = dict(_totals(agg)["distance_buckets"])
    assert sum(buckets.values()) == len(distances)
    assert buckets[0.0] == 2              # penetrating and touching: le 0
    assert buckets[D_STOP] == 1 and buckets[D_INFLUENCE] == 1 and buckets[math.inf] == 1
    assert _totals(agg)["distance_sum"] == pytest.approx(sum(distances))


def test_a_cycle_without_collision_geometry_counts_in_no_distance_bucket():
    agg = CycleAggregates(STOP, WARN, D_STOP, D_INFLUENCE)
    agg.cycle(0.3, 1e-4, math.inf)
    agg.cycle(0.3, 1e-4, math.nan)
    parts = _totals(agg)
    assert parts["scalars"]["cycles"] == 2
    assert sum(c for _, c in parts["distance_buckets"]) == 0
    assert parts["distance_sum"] == 0.0


def test_distance_buckets_surround_the_stop_and_influence_distances():
    bounds = names.min_distance_buckets(D_STOP, D_INFLUENCE)
    assert len(bounds) == names.DISTANCE_HISTOGRAM.buckets
    assert all(b > a for a, b in itertools.pairwise(bounds))
    assert bounds[0] == 0.0 and D_STOP in bounds and D_INFLUENCE in bounds
    close = names.min_distance_buckets(0.05, 0.06)
    assert all(b > a for a, b in itertools.pairwise(close))


def test_pair_counts_go_through_diagnostics_key_values_by_pair_name():
    counts = PairCounts()
    for _ in range(3):
        counts.approaching("panda_link7 – table")
    counts.stop("panda_link7 – table")
    counts.approaching("panda_hand – panda_link1")
    values = {key: str(total) for key, total in counts.diagnostics_pairs()}
    values["rate_achieved_hz"] = "500"
    values[PAIR_KEYS[0][1] + "bad"] = "n/a"          # not a number: skipped
    parsed = parse_pair_counts(values)
    stops, cycles = (parsed[metric.name] for metric, _ in PAIR_KEYS)
    assert stops == {"panda_link7 – table": 1.0, "panda_hand – panda_link1": 0.0}
    assert cycles == {"panda_link7 – table": 3.0, "panda_hand – panda_link1": 1.0}


def test_no_counted_pair_no_pair_keys():
    assert PairCounts().diagnostics_pairs() == []
    assert all(not v for v in parse_pair_counts({"state": "TRACKING"}).values())
