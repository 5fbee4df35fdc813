"""Properties of the joint-space audit: sampling, sweep, statistics and the report."""

from __future__ import annotations

import numpy as np
import pytest

from jacobian_ik import bundled
from jacobian_ik.audit import stats, streaming
from jacobian_ik.audit.report import run_audit
from jacobian_ik.audit.sampling import Sampler, joint_bounds
from jacobian_ik.audit.source import load_target
from jacobian_ik.audit.sweep import exact, sweep
from jacobian_ik.errors import ConfigurationError
from jacobian_ik.robot import Robot


@pytest.fixture(scope="module")
def planar():
    return load_target("planar2", task="position")


@pytest.fixture(scope="module")
def planar_audit(planar):
    return run_audit(planar, samples=20_000, seed=1, worst=8)


def test_stretched_planar_arm_worst_configurations_have_q2_near_zero(planar_audit):
    """planar2 (position task) is singular at q2 = 0 only (±π is beyond its ±3 rad
    limits): the audit's worst configurations all have |q2| < 0.01 and σ_min ≈ 0,
    and joint2 is involved in every one's singular direction."""
    report, _ = planar_audit
    assert len(report["worst"]) == 8
    for rec in report["worst"]:
        assert abs(rec["q"]["joint2"]) < 0.01
        assert rec["sigma_min"] < 0.002
        assert "joint2" in rec["involved_joints"]
    assert report["sigma_min"]["min"] == pytest.approx(report["worst"][0]["sigma_min"],
                                                       abs=1e-9)
    sigmas = [rec["sigma_min"] for rec in report["worst"]]
    assert sigmas == sorted(sigmas)


def test_planar_fractions_match_the_analytic_singular_band(planar_audit):
    """For the planar arm σ_min ≈ 0.2|sin q2|/σ_max, so the share below sigma_stop is
    the share of q2 in a thin band around 0; the audit's stop_fraction equals the
    share of its own samples whose exact σ_min is below sigma_stop."""
    report, _result = planar_audit
    target = load_target("planar2", task="position")
    q = Sampler(target.robot, seed=1).block(20_000)
    ex = exact(target.robot, target.robot.task_rows("position"), q)
    expected = np.mean(ex.sv[:, -1] < report["thresholds"]["sigma_stop"])
    assert report["stop_fraction"] == pytest.approx(expected, abs=1e-4)
    assert 0.0 < report["stop_fraction"] < report["warn_fraction"] < 0.2


def test_summary_percentiles_are_observed_values_in_order():
    """summary() gives p1 ≤ p5 ≤ p50 ≤ p95 ≤ p99 between min and max, each one of the
    samples, and handles +inf (a condition number at σ_min = 0)."""
    values = np.random.default_rng(0).exponential(size=1001)
    values[3] = np.inf
    s = stats.summary(values)
    ordered = [s["min"], s["p1"], s["p5"], s["p50"], s["p95"], s["p99"], s["max"]]
    assert ordered == sorted(ordered)
    assert s["max"] == np.inf
    for key in ("p1", "p5", "p50", "p95", "p99"):
        assert s[key] in values
    assert s["p50"] == pytest.approx(np.log(2.0), rel=0.15)


def test_sampler_is_seeded_within_limits_and_sobol_differs_from_uniform():
    """Same seed, same configurations; all within the limits; Sobol' samples are
    another sequence that fills [lo, hi] at least as evenly (per-joint means)."""
    base, tip = bundled.robot_links("panda")
    robot = Robot.from_urdf(bundled.urdf_path("panda"), base, tip)
    lo, hi = joint_bounds(robot)
    a = Sampler(robot, 5).block(4096)
    b = Sampler(robot, 5).block(4096)
    np.testing.assert_array_equal(a, b)
    pytest.importorskip("scipy")
    s = Sampler(robot, 5, "sobol").block(4096)
    assert np.all((s >= lo) & (s <= hi)) and np.all((a >= lo) & (a <= hi))
    assert not np.allclose(s, a)
    mid = 0.5 * (lo + hi)
    assert np.all(np.abs(s.mean(axis=0) - mid) <= 0.01 * (hi - lo))


def test_sweep_keeps_the_worst_across_blocks(monkeypatch):
    """The worst configurations kept block by block are the K smallest σ_min of all
    samples, whatever the block size."""
    from jacobian_ik.audit import sweep as sweep_mod

    target = load_target("ur5")
    rows = target.robot.task_rows("pose")
    monkeypatch.setattr(sweep_mod, "BLOCK", 1000)
    res = sweep(target.robot, rows, Sampler(target.robot, 2), 5500, worst=6)
    q_all = Sampler(target.robot, 2).block(5500)
    smallest = np.sort(res.sigma_min)[:6]
    worst_from_blocks = exact(target.robot, rows, res.worst_q).sv[:, -1]
    np.testing.assert_allclose(np.sort(worst_from_blocks), smallest, atol=1e-6)
    assert np.all(np.isin(res.worst_q[:, 0], q_all[:, 0]))


def test_voxel_fractions_count_voxels_reached_only_below_a_threshold():
    """Two voxels: one reached only by samples with σ below the threshold, one by a
    sample above it too → half the workspace is cut away."""
    tip = np.array([[0.01, 0.01, 0.01], [0.02, 0.01, 0.01], [0.51, 0.5, 0.5],
                    [0.52, 0.5, 0.5]])
    sigma = np.array([0.001, 0.005, 0.001, 0.5])
    count, cut = streaming.voxel_fractions(tip, sigma, 0.1, {"stop": 0.02, "tiny": 0.0001})
    assert count == 2
    assert cut == {"stop": 0.5, "tiny": 0.0}


def test_involved_joints_hold_the_required_share_and_no_more():
    """involved_joints lists the fewest largest components that hold 90 % of ‖v‖²."""
    names = ("a", "b", "c", "d")
    v = np.array([0.1, 0.8, -0.55, 0.2])
    v /= np.linalg.norm(v)
    assert stats.involved_joints(v, names) == ["b", "c"]
    assert stats.involved_joints(np.array([0.0, 0.0, 1.0, 0.0]), names) == ["c"]


def test_run_audit_rejects_nonsense_sizes(planar):
    """samples < 1, worst < 1 or a non-positive voxel raise ConfigurationError."""
    for kwargs in ({"samples": 0}, {"worst": 0}, {"voxel": 0.0}, {"voxel": -1.0}):
        with pytest.raises(ConfigurationError):
            run_audit(planar, **{"samples": 10, **kwargs})


CONTINUOUS_ARM = """<?xml version="1.0"?>
<robot name="wheel_arm">
  <link name="base"/>
  <link name="l1"/>
  <link name="tool"/>
  <joint name="spin" type="continuous">
    <parent link="base"/><child link="l1"/>
    <origin xyz="0 0 0"/><axis xyz="0 0 1"/>
  </joint>
  <joint name="elbow" type="revolute">
    <parent link="l1"/><child link="tool"/>
    <origin xyz="0.3 0 0"/><axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" velocity="1" effort="1"/>
  </joint>
</robot>
"""


def test_continuous_joints_are_sampled_in_plus_minus_pi_and_written_as_null(tmp_path):
    """A continuous joint is sampled within [−π, π]; its infinite limits are JSON null."""
    import json

    from jacobian_ik.audit.schema import to_json

    urdf = tmp_path / "arm.urdf"
    urdf.write_text(CONTINUOUS_ARM)
    target = load_target(str(urdf), base="base", tip="tool", task="position")
    q = Sampler(target.robot, 0).block(5000)
    assert np.all(np.abs(q[:, 0]) <= np.pi) and np.ptp(q[:, 0]) > 6.0
    report, _ = run_audit(target, samples=2000)
    data = json.loads(to_json(report))
    assert data["robot"]["lower"] == [None, -1.0] and data["robot"]["upper"] == [None, 1.0]
    assert data["robot"]["joint_names"] == ["spin", "elbow"]


def _exact_and_streamed(monkeypatch, samples, kept):
    """The same audit twice: every sample kept, and only ``kept`` of them."""
    from jacobian_ik.audit import sweep as sweep_mod

    target = load_target("panda")
    exact_report, _ = run_audit(target, samples=samples, seed=4, voxel=0.1)
    monkeypatch.setattr(sweep_mod, "KEPT_SAMPLES", kept)
    streamed_report, result = run_audit(target, samples=samples, seed=4, voxel=0.1)
    assert not result.complete and result.sigma_min.size == kept
    return exact_report, streamed_report


def test_streamed_statistics_match_the_exact_ones(monkeypatch):
    """Beyond KEPT_SAMPLES the statistics come from streaming summaries: every
    percentile within RELATIVE_ACCURACY of the exact one (so equal to 3 significant
    digits here), min, max, fractions, tip bounds and worst configurations equal."""
    exact_report, streamed = _exact_and_streamed(monkeypatch, 150_000, 20_000)
    for metric in ("sigma_min", "sigma_max", "condition", "manipulability", "reach"):
        for key, value in exact_report[metric].items():
            got = streamed[metric][key]
            if key in ("min", "max"):
                assert got == value, (metric, key)
            else:
                assert got == pytest.approx(value, rel=streaming.RELATIVE_ACCURACY), (metric, key)
                assert f"{got:.3g}" == f"{value:.3g}", (metric, key)
    for key in ("warn_fraction", "stop_fraction", "worst"):
        assert streamed[key] == exact_report[key]
    for key in ("tip_min", "tip_max", "voxel_size"):
        assert streamed["workspace"][key] == exact_report["workspace"][key]
    # The voxel grid is anchored at the kept samples' corner: almost the same cells.
    for key in ("warn_voxel_fraction", "stop_voxel_fraction"):
        assert streamed["workspace"][key] == pytest.approx(exact_report["workspace"][key],
                                                           abs=0.02)


def test_metric_stream_percentiles_follow_the_inverted_cdf_rule():
    """Zeros and +inf land in the end bins and are reported exactly; finite values
    within RELATIVE_ACCURACY of numpy's inverted_cdf percentile, fed in any blocks."""
    rng = np.random.default_rng(1)
    values = np.concatenate([np.zeros(30), rng.lognormal(size=5000) * 1e-3, [np.inf] * 20])
    rng.shuffle(values)
    stream = streaming.MetricStream()
    for part in np.array_split(values, 7):
        stream.add(part)
    for p in (0.1, 1, 5, 50, 95, 99, 99.9):
        expected = np.percentile(values, p, method="inverted_cdf")
        if np.isinf(expected) or expected == 0.0:
            assert stream.percentile(p) == expected
        else:
            assert stream.percentile(p) == pytest.approx(expected,
                                                         rel=streaming.RELATIVE_ACCURACY)
    summary = stream.summary()
    assert summary["min"] == 0.0 and summary["max"] == np.inf and summary["mean"] == np.inf


def test_voxel_map_fed_in_blocks_equals_one_pass():
    """Folding tip positions block by block gives the same voxels as all at once."""
    rng = np.random.default_rng(2)
    tip = rng.uniform(-1.0, 1.0, size=(10_000, 3))
    sigma = rng.uniform(0.0, 0.1, size=10_000)
    whole = streaming.VoxelMap(tip.min(axis=0), 0.2)
    whole.add(tip, sigma)
    parts = streaming.VoxelMap(tip.min(axis=0), 0.2)
    for sl in np.array_split(np.arange(10_000), 9):
        parts.add(tip[sl], sigma[sl])
    np.testing.assert_array_equal(parts.keys, whole.keys)
    np.testing.assert_array_equal(parts.best, whole.best)
    assert parts.fractions({"a": 0.05}) == whole.fractions({"a": 0.05})
