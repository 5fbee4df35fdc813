"""Per-cycle cost of ``Controller.step`` against a pinocchio + NumPy version of the same cycle.

Each bundled arm follows a moving pose target (a 0.1 m circle at 0.2 Hz with a
±0.2 rad wobble of the orientation, around a comfortable pose) at 500 Hz in closed
loop (q += dq·dt).  The same sequence of measured positions and targets is then
replayed through ``Controller.step``, ``Controller.step_into`` (the same cycle
written into one reused ``StepOutput``; its results must be bit-identical to
step's), the bare kernel call both make (``kernels.control.control_cycle``, its
arguments as step passes them; step's or step_into's p50 minus its p50 is the
Python around the kernel), and ``NumpyCycle``:
pinocchio forward kinematics and frame Jacobian, ``numpy.linalg.svd`` for σ, a
NumPy damped least squares solve, and the same speed scale, look-ahead, velocity,
acceleration and joint position braking (the trajectory stays clear of joint
limits and singularities, so the baseline leaves out the re-solve at a joint
bound and the stop branches).  All run in this process, interleaved in blocks of
500 cycles so that machine load falls on each alike, timed per call with
perf_counter; the ratio is baseline / ours.  The largest difference of the
velocity commands from the recorded run is reported to show they compute the
same thing.  For reference, the bare pinocchio + NumPy DLS cycle (FK, Jacobian,
SVD, twist, solve; no limits, no look-ahead) is timed too, with its ratio to
``Controller.step``.

Usage (repository root): ``python -m bench.bench_controller [--cycles N]``.
Prints a markdown table and writes ``bench/results/controller.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import pinocchio as pin

from bench.common import REPOSITORY, percentiles, write_results
from jacobian_ik import bundled
from jacobian_ik.controller import Controller
from jacobian_ik.kernels import control as K
from jacobian_ik.kernels import lookahead
from jacobian_ik.params import ControllerParams
from jacobian_ik.robot import Robot

RATE = 500.0
DT = 1.0 / RATE

#: Start configuration and task per arm.
ARMS = {
    "panda": (np.array([0.0, -0.4, 0.0, -2.2, 0.0, 1.9, 0.8]), "pose"),
    "ur5": (np.array([0.3, -1.4, 1.6, -1.8, -1.6, 0.3]), "pose"),
    "planar2": (np.array([0.3, 1.4]), "position"),
}


class NumpyCycle:
    """The controller's tracking cycle written with pinocchio and NumPy.

    Same law as ``kernels.control.control_step`` on its tracking path: pose error,
    uniform twist clamp, DLS with Nakamura damping, singularity speed scale with its
    rate limit, uniform velocity limit, direction-keeping acceleration limit, joint
    position braking, look-ahead (with the same Lipschitz shortcut), and the
    position command.
    """

    def __init__(self, robot: Robot, params: ControllerParams):
        self.model = pin.buildModelFromXML(robot.urdf_xml)
        self.data = self.model.createData()
        self.frame = self.model.getFrameId(robot.tip_link)
        base = self.model.getFrameId(robot.base_link)
        pin.framesForwardKinematics(self.model, self.data, pin.neutral(self.model))
        self.base_inv = self.data.oMf[base].inverse()
        self.idx = np.array([self.model.joints[self.model.getJointId(name)].idx_q
                             for name in robot.joint_names])
        self.rows = robot.task_rows(params.task)
        self.p = params
        limits = params.resolve(robot)
        self.vmax = limits.max_joint_velocity
        self.amax = limits.max_joint_acceleration
        self.lower, self.upper = robot.lower, robot.upper
        self.lipschitz = lookahead.sigma_lipschitz(robot.placements, robot.joint_types, self.rows)
        self.q_full = pin.neutral(self.model)
        self.dq_prev = np.zeros(robot.dof)
        self.q_cmd: np.ndarray | None = None
        self.scale = 0.0

    def kinematics(self, q: np.ndarray) -> tuple[pin.SE3, np.ndarray]:
        """(T_base_tip, J (6, n) in the base frame at the tip) from pinocchio."""
        self.q_full[self.idx] = q
        pin.framesForwardKinematics(self.model, self.data, self.q_full)
        pin.computeJointJacobians(self.model, self.data, self.q_full)
        J = pin.getFrameJacobian(self.model, self.data, self.frame,
                                 pin.LOCAL_WORLD_ALIGNED)[:, self.idx]
        M = self.base_inv * self.data.oMf[self.frame]
        R = self.base_inv.rotation
        J = np.vstack((R @ J[:3], R @ J[3:]))
        return M, J

    def sigma(self, q: np.ndarray) -> float:
        return np.linalg.svd(self.kinematics(q)[1][self.rows], compute_uv=False)[-1]

    def rest_sigma(self, q: np.ndarray, dq: np.ndarray, sigma_min: float,
                   guard: float) -> float:
        horizon = lookahead.LOOKAHEAD_CYCLES * DT + 0.5 * np.max(np.abs(dq) / self.amax)  # age 0
        reach = self.lipschitz * np.abs(dq).sum() * horizon
        if sigma_min - reach >= guard:
            return sigma_min
        s_end = self.sigma(q + dq * horizon)
        if sigma_min - 0.5 * reach >= guard or s_end - 0.5 * reach >= guard:
            return s_end
        return min(s_end, self.sigma(q + dq * 0.5 * horizon))

    def bare(self, q: np.ndarray, T_target: np.ndarray) -> tuple[float, np.ndarray]:
        """FK, Jacobian, SVD, twist and the DLS solve: (σ_min, dq).  Alone, this is the
        bare pinocchio + NumPy DLS cycle timed for reference."""
        p = self.p
        M, J = self.kinematics(q)
        Jt = J[self.rows]
        sigma_min = np.linalg.svd(Jt, compute_uv=False)[-1]
        v = np.empty(6)
        v[:3] = p.position_gain * (T_target[:3, 3] - M.translation)
        v[3:] = p.orientation_gain * pin.log3(T_target[:3, :3] @ M.rotation.T)
        if p.task == "position":
            v[3:] = 0.0
        nv, nw = math.hypot(*v[:3]), math.hypot(*v[3:])
        f = 1.0
        if nv * f > p.max_linear_speed:
            f = p.max_linear_speed / nv
        if nw * f > p.max_angular_speed:
            f = p.max_angular_speed / nw
        v *= f
        lam2 = 0.0
        if sigma_min < p.sigma_damp:
            lam2 = p.lambda_max ** 2 * (1.0 - (sigma_min / p.sigma_damp) ** 2)
        if len(self.rows) <= Jt.shape[1]:
            dq = Jt.T @ np.linalg.solve(Jt @ Jt.T + lam2 * np.eye(len(self.rows)), v[self.rows])
        else:       # fewer joints than task rows: the n × n form, as dls_step
            dq = np.linalg.solve(Jt.T @ Jt + lam2 * np.eye(Jt.shape[1]), Jt.T @ v[self.rows])
        return sigma_min, dq

    def step(self, q: np.ndarray, T_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The whole tracking cycle: (dq, q_command)."""
        p = self.p
        sigma_min, dq = self.bare(q, T_target)
        ramp = min(max((sigma_min - p.sigma_stop) / (p.sigma_warn - p.sigma_stop), 0.0), 1.0)
        s_sigma = p.speed_scale_floor + (1.0 - p.speed_scale_floor) * ramp
        self.scale = min(s_sigma, self.scale + p.speed_scale_rate * DT)
        dq *= self.scale
        peak = np.max(np.abs(dq) / self.vmax)
        if peak > 1.0:
            dq /= peak
        # acceleration: γ closest to 1 with |γ dq − dq_prev| ≤ a dt, |γ dq| ≤ vmax
        c = self.amax * DT
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (self.dq_prev - c) / dq
            b = (self.dq_prev + c) / dq
            cap = self.vmax / np.abs(dq)
        zero = dq == 0.0
        lo = max(0.0, np.max(np.where(zero, 0.0, np.minimum(a, b))))
        hi = np.min(np.where(zero, np.inf, np.minimum(np.maximum(a, b), cap)))
        if lo <= hi and not np.any(zero & (np.abs(self.dq_prev) > c)):
            dq *= hi if hi < 1.0 else (lo if lo > 1.0 else 1.0)
        else:
            beta = min(1.0, np.min(c / np.maximum(np.abs(dq - self.dq_prev), 1e-300)))
            dq = self.dq_prev + beta * (dq - self.dq_prev)
        if self.q_cmd is None:
            self.q_cmd = q.copy()
        dq = np.minimum(dq, self._braking(self.upper - p.joint_limit_margin
                                          - np.maximum(q, self.q_cmd)))
        dq = np.maximum(dq, -self._braking(np.minimum(q, self.q_cmd) - self.lower
                                           - p.joint_limit_margin))
        guard = p.sigma_stop * (1.0 + lookahead.LOOKAHEAD_MARGIN)
        s_a = self.rest_sigma(q, dq, sigma_min, guard)
        if s_a < guard and s_a < sigma_min:
            t_stop = np.max(np.abs(self.dq_prev) / self.amax)
            dq = self.dq_prev * max(0.0, 1.0 - DT / t_stop) if t_stop > DT else 0.0 * dq
        if np.max(np.abs(self.q_cmd - q)) > p.max_command_drift:
            self.q_cmd = q.copy()
        self.q_cmd = self.q_cmd + dq * DT
        self.dq_prev = dq
        return dq, self.q_cmd

    def _braking(self, d: np.ndarray) -> np.ndarray:
        a = self.amax
        d_eff = np.maximum(d - 0.125 * a * DT * DT, 0.0)
        v = a * (np.sqrt(0.25 * DT * DT + 2.0 * d_eff / a) - 0.5 * DT)
        small = (v * DT > d) | ((v < a * DT) & (d < a * DT * DT))
        return np.maximum(np.where(small, d / DT, v), 0.0)


def trajectory(robot: Robot, q0: np.ndarray, k: int) -> np.ndarray:
    """Target pose at cycle k: circle of 0.1 m at 0.2 Hz, orientation wobble ±0.2 rad."""
    T0 = robot.fk(q0)
    t = k * DT
    w = 2.0 * math.pi * 0.2
    T = T0.copy()
    T[:3, 3] += 0.1 * np.array([math.cos(w * t) - 1.0, math.sin(w * t), 0.0])
    a = 0.2 * math.sin(w * t)
    Rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0],
                   [0.0, 0.0, 1.0]])
    T[:3, :3] = T0[:3, :3] @ Rz
    return T


def measure(name: str, cycles: int, block: int = 500) -> dict:
    """Record the closed-loop run, then time each implementation on it, interleaved in
    blocks of ``block`` cycles so that machine load falls on all of them alike."""
    robot = Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))
    q0, task = ARMS[name]
    params = ControllerParams(task=task, control_rate=RATE)
    record = Controller(robot, params)
    record.warm_up()
    targets = [trajectory(robot, q0, k) for k in range(cycles)]
    qs = np.empty((cycles, robot.dof))
    dq_ref = np.empty((cycles, robot.dof))
    q_ref = np.empty((cycles, robot.dof))
    states: dict[str, int] = {}
    q = q0.copy()
    for k in range(cycles):
        qs[k] = q
        res = record.step(q, targets[k], DT)
        dq_ref[k] = res.dq_command
        q_ref[k] = res.q_command
        states[res.state.name] = states.get(res.state.name, 0) + 1
        q = q + res.dq_command * DT

    # Controller.step, step_into and the bare kernel call run on three controllers
    # alike, each walking the whole recorded run: in each block every controller runs
    # one of the three, and the next block the next one.  So each is timed on every
    # cycle and, a third of its blocks each, on every controller: how fast the kernel
    # runs depends by up to ~25 % on where a controller's buffers lie in memory, which
    # would otherwise count as (or hide) Python around the kernel.
    controllers = [Controller(robot, params) for _ in range(3)]
    outputs = []
    for controller in controllers:
        controller.warm_up()
        outputs.append(controller.new_output())
    base = NumpyCycle(robot, params)
    bare = NumpyCycle(robot, params)
    kinds = ("step", "step_into", "kernel")
    times = {key: np.empty(cycles) for key in (*kinds, "numpy", "bare")}
    diff = 0.0
    identical = True        # step, step_into and the kernel call: bit-identical commands
    for number, start in enumerate(range(0, cycles, block)):
        span = range(start, min(start + block, cycles))
        for i, (ctl, out) in enumerate(zip(controllers, outputs)):
            kind = kinds[(i + number) % 3]
            t = times[kind]
            if kind == "step":
                for k in span:
                    t0 = time.perf_counter()
                    res = ctl.step(qs[k], targets[k], DT)
                    t[k] = time.perf_counter() - t0
                    identical = identical and bool(np.array_equal(res.dq_command, dq_ref[k])
                                                   and np.array_equal(res.q_command, q_ref[k]))
            elif kind == "step_into":
                for k in span:
                    t0 = time.perf_counter()
                    ctl.step_into(qs[k], targets[k], DT, out)
                    t[k] = time.perf_counter() - t0
                    identical = identical and bool(np.array_equal(out.dq_command, dq_ref[k])
                                                   and np.array_equal(out.q_command, q_ref[k]))
            else:   # the call step and step_into make
                rows, buf, (geo, pairs) = ctl._rows, ctl._buf, ctl._geometry
                for k in span:
                    t0 = time.perf_counter()
                    K.control_cycle(rows, buf, geo, pairs, qs[k], targets[k], DT, 0.0, 0.0,
                                    False)
                    t[k] = time.perf_counter() - t0
                    identical = identical and bool(np.array_equal(ctl._dq_out, dq_ref[k]))
        for k in span:
            t0 = time.perf_counter()
            dq, _ = base.step(qs[k], targets[k])
            times["numpy"][k] = time.perf_counter() - t0
            diff = max(diff, float(np.abs(dq - dq_ref[k]).max()))
        for k in span:
            t0 = time.perf_counter()
            bare.bare(qs[k], targets[k])
            times["bare"][k] = time.perf_counter() - t0
    us = {key: percentiles(t * 1e6) for key, t in times.items()}
    return {"dof": robot.dof, "task": task, "cycles": cycles, "states": states,
            "controller_step_us": us["step"], "controller_step_into_us": us["step_into"],
            "kernel_only_us": us["kernel"],
            "python_overhead_p50_us": us["step"]["p50"] - us["kernel"]["p50"],
            "step_into_python_overhead_p50_us": us["step_into"]["p50"] - us["kernel"]["p50"],
            "commands_identical": identical,
            "pinocchio_numpy_us": us["numpy"], "pinocchio_numpy_bare_dls_us": us["bare"],
            "ratio_p50": us["numpy"]["p50"] / us["step"]["p50"],
            "ratio_p99": us["numpy"]["p99"] / us["step"]["p99"],
            "bare_dls_ratio_p50": us["bare"]["p50"] / us["step"]["p50"],
            "max_dq_difference": diff}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10000)
    args = parser.parse_args(argv)
    results = {name: measure(name, args.cycles) for name in ARMS}
    print(f"\nPer-cycle time, {args.cycles} cycles at {RATE:g} Hz along a moving pose target "
          f"(closed loop), µs\n")
    print("| arm | DOF | Controller.step p50 / p99 | step_into p50 / p99 | "
          "kernel call alone p50 / p99 | Python around it p50, step / step_into | "
          "pinocchio + NumPy, same cycle p50 / p99 | "
          "speed-up p50 / p99 | max abs Δdq | bare pinocchio + NumPy DLS p50 / p99 | "
          "speed-up over bare DLS p50 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        o, i, k = r["controller_step_us"], r["controller_step_into_us"], r["kernel_only_us"]
        b, m = r["pinocchio_numpy_us"], r["pinocchio_numpy_bare_dls_us"]
        print(f"| {name} | {r['dof']} | {o['p50']:.1f} / {o['p99']:.1f} | "
              f"{i['p50']:.1f} / {i['p99']:.1f} | "
              f"{k['p50']:.1f} / {k['p99']:.1f} | {r['python_overhead_p50_us']:.2f} / "
              f"{r['step_into_python_overhead_p50_us']:.2f} | "
              f"{b['p50']:.1f} / {b['p99']:.1f} | "
              f"{r['ratio_p50']:.1f}× / {r['ratio_p99']:.1f}× | {r['max_dq_difference']:.1e} | "
              f"{m['p50']:.1f} / {m['p99']:.1f} | {r['bare_dls_ratio_p50']:.1f}× |")
    path = write_results("controller", {
        "benchmark": "bench_controller", "rate_hz": RATE, "cycles": args.cycles,
        "numpy": np.__version__, "pinocchio": pin.__version__, "arms": results})
    print(f"\nwritten {path.relative_to(REPOSITORY)}")
    if not all(r["commands_identical"] for r in results.values()):
        print("step, step_into and the kernel call gave different commands", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
