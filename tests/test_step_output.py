"""Controller.step_into and StepOutput: the same cycles as step, written in place into
one output, with no allocation per cycle."""

from __future__ import annotations

import gc
import itertools
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from controller_support import bundled_arm, warm_controller

import jacobian_ik
from jacobian_ik import controller as controller_module
from jacobian_ik import step_output as step_output_module
from jacobian_ik.controller import StepOutput, StepResult
from jacobian_ik.errors import ConfigurationError, JacobianIkError
from jacobian_ik.safety import SafetyState

DT = 0.002
#: The files whose lines must not allocate in a cycle.
CORE_FILES = {Path(controller_module.__file__), Path(step_output_module.__file__)}


def _assert_same(out: StepOutput, res: StepResult, where: object) -> None:
    """Every field of ``out`` equals ``res``'s, bit for bit, and has its type."""
    for name in StepResult._fields:
        mine, theirs = getattr(out, name), getattr(res, name)
        if isinstance(theirs, np.ndarray):
            np.testing.assert_array_equal(mine, theirs, err_msg=f"{name}, {where}")
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        else:
            assert type(mine) is type(theirs), (name, where, mine, theirs)
            assert mine == theirs or (mine != mine and theirs != theirs), \
                (name, where, mine, theirs)


def _panda_inputs():
    """(q, target, dt, keywords, action) per cycle, and whether to move the arm: a far
    pose goal (the joint-space fallback plans and moves), a near one, a late cycle, a
    rejected input, a non-finite target, a twist, a stale measurement, a pause and a
    resume, a hold."""
    robot = bundled_arm("panda")
    far = robot.fk(np.array([1.2, 0.4, -0.8, -1.2, 0.6, 1.2, -0.5]))
    near = robot.fk(np.array([0.15, -0.25, 0.25, -1.95, 0.15, 1.95, 0.35]))
    twist = np.array([0.05, -0.02, 0.03, 0.0, 0.2, 0.0])
    bad = twist.copy()
    bad[2] = math.nan
    for k in range(900):
        kwargs: dict = {}
        dt = DT
        action = None
        target = far if k < 300 else near if k < 500 else twist if k < 750 else None
        if k == 420:
            dt = 3 * DT
        if 450 <= k < 460:
            kwargs["rejected"] = "target_pose frame_id 'world' is not the base frame"
        if k == 470:
            dt = math.nan
        if 520 <= k < 525:
            target = bad
        if 560 <= k < 600:
            kwargs["measurement_age"] = 0.25             # stale: brakes
        if k == 620:
            action = "pause"
        if k == 700:
            action = "resume"
        yield target, dt, kwargs, action


@pytest.mark.slow
def test_step_into_and_step_give_identical_results_over_a_closed_loop_run():
    """Two Panda controllers, one stepped with step, one with step_into into a single
    output, on the same closed-loop inputs (far and near pose goals with the
    joint-space fallback, a late cycle, rejected and non-finite input, a twist, a
    stale measurement, pause and resume, hold): every field of every cycle is
    bit-identical, and so are the state, reset() and reason_pair() of the two."""
    robot = bundled_arm("panda")
    stepped, into = warm_controller("panda"), warm_controller("panda")
    out = into.new_output()
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    seen = set()
    for k, (target, dt, kwargs, action) in enumerate(_panda_inputs()):
        if action is not None:
            for ctl in (stepped, into):
                getattr(ctl, action)()
        res = stepped.step(q, target, dt, **kwargs)
        assert into.step_into(q, target, dt, out, **kwargs) is out
        _assert_same(out, res, k)
        assert stepped.state is into.state is res.state
        assert stepped.reason_pair() == into.reason_pair()
        seen.add(res.state)
        q = q + res.dq_command * DT
    assert {SafetyState.TRACKING, SafetyState.INVALID_INPUT, SafetyState.STALE_INPUT,
            SafetyState.PAUSED, SafetyState.IDLE} <= seen, seen
    assert stepped.reset() == into.reset()
    assert np.all(np.isfinite(robot.fk(q)))


#: A UR5 start and goal whose Cartesian route meets the σ_min barrier: the goal is
#: reached through a joint-space search and JOINT_MOVE (as in tests/test_fallback.py).
UR5_START = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
UR5_FAR = np.array([-5.825815, -3.240424, -1.240515, -1.946769, -5.716047, -2.394867])


def test_step_into_matches_step_through_a_joint_space_fallback():
    """The UR5 toward a goal beyond the barrier, with one cycle of measurement delay:
    the joint-space search (a slice per cycle) and JOINT_MOVE run alike for step and
    step_into, every field of every cycle bit-identical, until the goal is reached."""
    stepped = warm_controller("ur5", collision=False)
    into = warm_controller("ur5", collision=False)
    out = into.new_output()
    T_goal = stepped.robot.fk(UR5_FAR)
    q = UR5_START.copy()
    measured = q.copy()
    seen = set()
    for k in range(5000):
        res = stepped.step(measured, T_goal, DT)
        into.step_into(measured, T_goal, DT, out)
        _assert_same(out, res, k)
        seen.add(res.state)
        measured = q.copy()
        q = q + res.dq_command * DT
        if res.goal_reached:
            break
    assert res.goal_reached and SafetyState.JOINT_MOVE in seen, (res.reason, seen)


def test_step_into_matches_step_into_a_singular_safe_stop_and_out_again():
    """A twist driving the planar arm into its stretched singularity (APPROACHING,
    then SAFE_STOP on the barrier: reasons with values), then the way back: step and
    step_into agree on every field of every cycle, and reset() says the same."""
    kwargs = {"task": "position", "collision": False}
    stepped, into = warm_controller("planar2", **kwargs), warm_controller("planar2", **kwargs)
    out = into.new_output()
    q = np.array([0.3, 1.2])
    twist = np.array([0.25, 0.05, 0, 0, 0, 0], dtype=float)
    seen = set()
    for k in range(4000):
        if k == 3000:
            assert stepped.reset() == into.reset()
        target = twist if k < 3000 else -twist
        res = stepped.step(q, target, DT)
        into.step_into(q, target, DT, out)
        _assert_same(out, res, k)
        seen.add(res.state)
        q = q + res.dq_command * DT
    assert {SafetyState.APPROACHING_SINGULARITY, SafetyState.SAFE_STOP,
            SafetyState.TRACKING} <= seen, seen


def test_step_into_with_collision_geometry_names_the_same_pairs():
    """With the Panda's collision model and a scene: min_distance and closest_pair
    (the controller's cached tuples, the same objects) agree with step's."""
    from jacobian_ik.collision.scene import Scene

    stepped, into = warm_controller("panda"), warm_controller("panda")
    for ctl in (stepped, into):
        scene = Scene()
        scene.add_box("table", [1.0, 1.0, 0.05], T_base_obj=_translation(0.5, 0.0, 0.2))
        ctl.set_scene(scene)
    out = into.new_output()
    robot = bundled_arm("panda")
    q = robot.q_mid.copy()
    goal = robot.fk(q)
    goal[2, 3] -= 0.25
    for k in range(400):
        res = stepped.step(q, goal, DT)
        into.step_into(q, goal, DT, out)
        _assert_same(out, res, k)
        assert any(out.closest_pair is pair for pair in into._pair_names)   # cached
        q = q + res.dq_command * DT
    assert math.isfinite(out.min_distance)


def _translation(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def test_out_is_overwritten_in_place_and_to_result_keeps_a_copy():
    """step_into writes into the output it is given: the same two array objects every
    cycle (a view each of one array), new values; to_result() is a StepResult with
    arrays of its own that later cycles leave unchanged.  Before its first cycle an
    output says IDLE, no cycle yet."""
    ctl = warm_controller("panda")
    out = ctl.new_output()
    assert isinstance(out, StepOutput) and out.dof == 7
    assert out.state is SafetyState.IDLE and out.reason == "no cycle yet"
    assert np.all(out.dq_command == 0.0) and out.min_distance == math.inf
    assert out.closest_pair == ("", "") and out.limited == "" and not out.goal_reached
    dq, qc = out.dq_command, out.q_command
    q = bundled_arm("panda").q_mid.copy()
    twist = np.array([0.05, 0.0, 0.02, 0.0, 0.0, 0.1])
    for _ in range(50):
        ctl.step_into(q, twist, DT, out)
        q = q + out.dq_command * DT
    kept = out.to_result()
    assert type(kept) is StepResult
    _assert_same(out, kept, "to_result")
    assert kept.dq_command is not out.dq_command
    assert not np.shares_memory(kept.dq_command, out.dq_command)
    for _ in range(20):
        ctl.step_into(q, twist, DT, out)
        q = q + out.dq_command * DT
    assert out.dq_command is dq and out.q_command is qc
    assert np.any(out.q_command != kept.q_command)
    assert np.all(kept.q_command != out.q_command) or np.any(kept.dq_command != out.dq_command)
    assert repr(out).startswith("StepOutput(dq_command=array(")
    with pytest.raises(AttributeError):
        out.extra = 1.0         # __slots__: no new fields


def test_step_output_has_step_results_fields():
    out = StepOutput(3)
    assert set(StepResult._fields) <= set(dir(out))
    assert out.dq_command.shape == out.q_command.shape == (3,)
    assert jacobian_ik.StepOutput is StepOutput


@pytest.mark.parametrize("other", ["ur5", "planar2"])
def test_an_output_for_another_dof_is_refused_before_the_cycle(other):
    """An output of another controller with another dof (or no StepOutput at all) is
    refused with a ConfigurationError naming the valid dof and how to get an output;
    the controller's state is untouched (the cycle did not run)."""
    ctl = warm_controller("panda")
    foreign = warm_controller(other).new_output()
    q = bundled_arm("panda").q_mid.copy()
    T = bundled_arm("panda").fk(q)
    ctl.step(q, T, DT)
    before = ctl._buf.copy()
    with pytest.raises(ConfigurationError) as info:
        ctl.step_into(q, T, DT, foreign)
    error = info.value
    assert isinstance(error, JacobianIkError)
    assert error.parameter == "out" and error.value == foreign.dof and error.choices == (7,)
    assert "7 joints" in str(error) and "new_output()" in str(error) \
        and "StepOutput(7)" in str(error) and f"{foreign.dof} joints" in str(error)
    with pytest.raises(ConfigurationError, match="got a list"):
        ctl.step_into(q, T, DT, [])     # type: ignore[arg-type]
    np.testing.assert_array_equal(ctl._buf, before)
    # an output of another controller with the same dof is fine
    ctl.step_into(q, T, DT, warm_controller("panda").new_output())


@pytest.mark.parametrize("dof", [0, -1, 2.0, True, "7"])
def test_step_output_needs_a_positive_integer_dof(dof):
    with pytest.raises(ConfigurationError, match="positive integer"):
        StepOutput(dof)


#: A comfortable start configuration (away from singularities and limits) and the task,
#: per arm (those of bench/bench_controller.py).
STARTS = {
    "panda": ([0.0, -0.4, 0.0, -2.2, 0.0, 1.9, 0.8], "pose"),
    "ur5": ([0.3, -1.4, 1.6, -1.8, -1.6, 0.3], "pose"),
    "planar2": ([0.3, 1.4], "position"),
}


def _streamed_inputs(name: str, cycles: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """A closed-loop run toward a moving pose target (a new goal every cycle), then a
    twist, then a hold: (q, target) per cycle, recorded with step()."""
    start, task = STARTS[name]
    ctl = warm_controller(name, task=task)
    robot = ctl.robot
    q = np.array(start)
    home = robot.fk(q)
    twist = np.array([0.02, 0.0, 0.01, 0.0, 0.0, 0.05])
    inputs = []
    for k in range(cycles):
        if k < cycles // 2:
            target: np.ndarray | None = home.copy()
            target[:3, 3] += 0.03 * np.array([math.cos(0.01 * k) - 1.0, math.sin(0.01 * k), 0])
        elif k < 3 * cycles // 4:
            target = twist
        else:
            target = None
        inputs.append((q.copy(), target))
        q = q + ctl.step(q, target, DT).dq_command * DT
    return inputs


def _traced(loop, inputs: list) -> tuple[int, int, list]:
    """(peak, bytes still held, line statistics of the core files) of what
    ``loop(iter(inputs))`` allocates, traced by tracemalloc from its start (nothing
    traced before it, nothing read in between: a reading allocates itself; the
    iterator is made before).  A full collection empties CPython's free lists (of
    floats and tuples among others): the loop runs once more untraced after it, so
    that they are as a running loop has them."""
    gc.collect()
    loop(iter(inputs))
    items = iter(inputs)
    tracemalloc.start(1)
    try:
        loop(items)
        held, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    lines = [stat for stat in snapshot.statistics("lineno")
             if Path(stat.traceback[0].filename) in CORE_FILES]
    return peak, held, lines


@pytest.mark.parametrize("name", ["panda", "ur5", "planar2"])
def test_step_into_allocates_nothing_per_cycle_after_warm_up(name):
    """After a first pass (warm-up), step_into over a streamed pose target (a new goal
    every cycle), a twist and a hold allocates no memory at all that tracemalloc
    sees, not even for a moment (its peak stays at the start: no arrays, tuples
    beyond CPython's free lists, strings or ints), and no line of controller.py or
    step_output.py holds anything new.  step() on the same run, for contrast,
    allocates its fresh result every cycle."""
    inputs = _streamed_inputs(name, 800)
    ctl = warm_controller(name, task=STARTS[name][1])
    out = ctl.new_output()

    def run_into(items):
        for q, target in items:
            ctl.step_into(q, target, DT, out)

    def run_step(items):
        for q, target in items:
            ctl.step(q, target, DT)

    run_into(inputs)            # warm-up: caches, free lists, specialised bytecode
    run_into(inputs)
    peak, held, lines = _traced(run_into, inputs)
    assert peak == 0 and held == 0 and not lines, (peak, held, [str(stat) for stat in lines])
    peak, _held, lines = _traced(run_step, inputs)
    assert peak >= 2 * 8 * ctl.robot.dof         # step's two new arrays, at least


def test_step_into_allocates_nothing_with_self_collision_and_the_demo_cell():
    """The same on the Panda with its self pairs and the demo cell's four obstacles
    (a table plane and three primitives): the collision rows and the pair names in
    the result allocate nothing either, while pairs are within influence."""
    from jacobian_ik import bundled
    from jacobian_ik.collision.scene import Scene

    inputs = _streamed_inputs("panda", 800)
    scene = Scene.from_yaml(bundled.share_dir() / "config" / "scenes" / "panda_cell.yaml")
    ctl = warm_controller("panda", task=STARTS["panda"][1])
    ctl.set_scene(scene)
    out = ctl.new_output()
    distances = []

    def run_into(items):
        for q, target in items:
            ctl.step_into(q, target, DT, out)

    for q, target in inputs:     # warm-up, and the pairs it met
        ctl.step_into(q, target, DT, out)
        distances.append(out.min_distance)
    assert np.isfinite(distances).any() and len(ctl.pair_names) > len(scene)
    run_into(inputs)
    peak, held, lines = _traced(run_into, inputs)
    assert peak == 0 and held == 0 and not lines, (peak, held, [str(stat) for stat in lines])


@pytest.mark.slow
def test_step_into_makes_no_numba_runtime_allocations_per_cycle():
    """The kernel call behind step_into allocates nothing from numba's runtime: the
    NRT allocation count is the same after one cycle and after 1,000."""
    from kernel_support import nrt_allocations

    code = """
import numpy as np
from jacobian_ik import Controller, Robot, bundled
r = Robot.from_urdf(bundled.urdf_path('panda'), *bundled.robot_links('panda'))
ctl = Controller(r)
ctl.warm_up()
out = ctl.new_output()
q = r.q_mid.copy()
twist = np.array([0.02, 0.0, 0.01, 0.0, 0.0, 0.05])

def allocations(n):
    global q
    before = rtsys.get_allocation_stats().alloc
    for _ in range(n):
        ctl.step_into(q, twist, 0.002, out)
        q = q + out.dq_command * 0.002
    return rtsys.get_allocation_stats().alloc - before

allocations(1)
print(allocations(1), allocations(1000))
"""
    once, many = nrt_allocations(code)
    assert once == many == 0


def test_the_read_slots_match_the_kernel_layout():
    """The out slots step_into reads, and the tuple positions it reads them at, are
    the layout's (the struct skips exactly the others)."""
    from jacobian_ik.kernels import layout as L

    M = controller_module
    values = np.arange(L.NOUT, dtype=np.float64) + 0.5
    got = M._read_out(memoryview(values))
    assert got == tuple(values[list(M._READ_SLOTS)])
    for name in ("SCALE", "PERR", "GOAL", "LIMITED", "REASON", "BLOCKED", "GOAL_EVENT",
                 "MIN_DISTANCE", "PAIR"):
        assert got[getattr(M, f"_R_{name}")] == values[getattr(L, f"O_{name}")], name
    assert M._read_values(memoryview(values)) == (values[L.O_VAL1], values[L.O_VAL2])
    assert list(itertools.islice(got, 8)) == list(values[:8])
