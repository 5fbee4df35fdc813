"""Pictures of audit reports (matplotlib, Agg canvas: no display, no pyplot state).

``plot_audit``: the histogram of σ_min with ``sigma_warn`` and ``sigma_stop``
marked, and the sampled tip positions (of the samples the sweep keeps: all,
or the first ``sweep.KEPT_SAMPLES``) in two projections (top view x–y, side
view x–z of the base frame) coloured by σ_min, the worst configurations
crossed out.  ``plot_path``: σ_min along a recorded path with the thresholds
and first crossings, above the joint positions.  ``plot_flight``: a
flight-recorder file: σ_min (exact and as the controller saw it) and the
controller's state timeline around the event, above the joint positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jacobian_ik.errors import ConfigurationError

if TYPE_CHECKING:
    from jacobian_ik.audit.sweep import ExactResult, SweepResult
    from jacobian_ik.audit.trajectory import Trajectory

#: Largest number of tip positions drawn in a scatter (a seeded subsample beyond).
MAX_SCATTER_POINTS = 20_000

WARN_COLOUR = "#e69f00"
STOP_COLOUR = "#d62728"


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigurationError(
            "--plot needs matplotlib (pip install matplotlib, or the package's 'audit' "
            "extra)") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, out: str | Path) -> Path:
    out = Path(out)
    try:
        fig.savefig(out, dpi=100)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot write picture '{out}': {exc}") from None
    return out


def _threshold_lines(ax: Any, report: dict, vertical: bool = True) -> None:
    th = report["thresholds"]
    for key, colour in (("sigma_warn", WARN_COLOUR), ("sigma_stop", STOP_COLOUR)):
        frac = report[key.replace("sigma_", "") + "_fraction"]
        label = f"{key} = {th[key]:g} ({100 * frac:.1f} % below)"
        if vertical:
            ax.axvline(th[key], color=colour, lw=1.5, ls="--", label=label)
        else:
            ax.axhline(th[key], color=colour, lw=1.5, ls="--", label=label)


def plot_audit(report: dict, result: SweepResult, out: str | Path) -> Path:
    """Write the audit picture (see the module docstring) as PNG to ``out``."""
    fig = _figure(15.0, 4.8)
    axes = fig.subplots(1, 3, width_ratios=[1.15, 1, 1])
    robot, task = report["robot"], report["task"]
    fig.suptitle(f"{robot['source']}: {robot['base_link']} -> {robot['tip_link']}, task "
                 f"{task['name']}, {report['sampling']['samples']} {report['sampling']['method']}"
                 f" samples")

    sigma = result.sigma_min
    ax = axes[0]
    ax.hist(sigma, bins=120, color="#4c72b0", alpha=0.85)
    ax.axvspan(0.0, report["thresholds"]["sigma_stop"], color=STOP_COLOUR, alpha=0.08)
    _threshold_lines(ax, report)
    ax.set_xlabel("σ_min of the task Jacobian [m/rad | 1]")
    ax.set_ylabel("samples")
    ax.set_xlim(left=0.0)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("σ_min over joint space")

    tip = result.tip_position
    count = tip.shape[0]
    rng = np.random.default_rng(0)
    idx = rng.permutation(count)[:MAX_SCATTER_POINTS]
    # random drawing order (the subsample's): no σ range hides the others
    vmax = max(report["sigma_min"]["p95"], 2.0 * report["thresholds"]["sigma_warn"])
    worst = np.array([w["tip_position"] for w in report["worst"]]).reshape(-1, 3)
    image = None
    for ax, (a, b), title in ((axes[1], (0, 1), "top view"), (axes[2], (0, 2), "side view")):
        image = ax.scatter(tip[idx, a], tip[idx, b], c=sigma[idx], s=2.5, cmap="viridis",
                           vmin=0.0, vmax=vmax, linewidths=0, rasterized=True)
        ax.scatter(worst[:, a], worst[:, b], marker="x", s=40, color=STOP_COLOUR,
                   label="worst configurations")
        ax.plot([0.0], [0.0], marker="+", color="black", ms=10)
        ax.set_xlabel(f"{'xyz'[a]} [m] ({robot['base_link']})")
        ax.set_ylabel(f"{'xyz'[b]} [m]")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"tip positions, {title}")
        ax.legend(loc="upper right", fontsize=8)
    bar = fig.colorbar(image, ax=axes[1:], shrink=0.9)
    bar.set_label("σ_min")
    for key, colour in (("sigma_warn", WARN_COLOUR), ("sigma_stop", STOP_COLOUR)):
        bar.ax.axhline(report["thresholds"][key], color=colour, lw=2)
    return _save(fig, out)


def plot_path(report: dict, trajectory: Trajectory, exact_result: ExactResult,
              out: str | Path) -> Path:
    """Write the path picture (see the module docstring) as PNG to ``out``."""
    fig = _figure(11.0, 6.5)
    ax, axq = fig.subplots(2, 1, sharex=True, height_ratios=[1.3, 1])
    x = trajectory.time if trajectory.time is not None else np.arange(trajectory.q.shape[0])
    xlabel = "time [s]" if trajectory.time is not None else "sample"
    robot = report["robot"]
    fig.suptitle(f"{robot['source']}: {robot['base_link']} -> {robot['tip_link']}, "
                 f"task {report['task']['name']}, {report['input']['path']}")
    ax.plot(x, exact_result.sv[:, -1], color="#4c72b0", lw=1.2, label="σ_min")
    _threshold_lines(ax, report, vertical=False)
    for key, colour in (("first_warn", WARN_COLOUR), ("first_stop", STOP_COLOUR)):
        rec = report[key]
        if rec is not None:
            ax.plot([x[rec["index"]]], [rec["sigma_min"]], "o", color=colour,
                    label=f"{key.replace('_', ' ')}: sample {rec['index']}")
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel("σ_min [m/rad | 1]")
    ax.legend(loc="upper right", fontsize=8)
    for j, name in enumerate(robot["joint_names"]):
        axq.plot(x, trajectory.q[:, j], lw=1.0, label=name)
    axq.set_xlabel(xlabel)
    axq.set_ylabel("joint position [rad | m]")
    axq.legend(loc="upper right", fontsize=7, ncol=min(4, len(robot["joint_names"])))
    return _save(fig, out)


def plot_flight(report: dict, trajectory: Trajectory, exact_result: ExactResult, record: Any,
                out: str | Path) -> Path:
    """Write the flight-record picture (see the module docstring) as PNG to ``out``.

    ``record`` is a ``jacobian_ik.audit.flight.FlightRecord``; times are relative
    to its first event.
    """
    fig = _figure(11.0, 8.0)
    ax, axs, axq = fig.subplots(3, 1, sharex=True, height_ratios=[1.3, 0.8, 1])
    t0 = record.event_time
    x = trajectory.time - t0
    robot = report["robot"]
    fig.suptitle(f"flight record {Path(report['input']['path']).name}: "
                 f"{robot['base_link']} -> {robot['tip_link']}")
    ax.plot(x, exact_result.sv[:, -1], color="#4c72b0", lw=1.2, label="σ_min (exact SVD)")
    ax.plot(record.time - t0, record.sigma_min, color="black", lw=0.8, ls=":",
            label="σ_min (controller)")
    _threshold_lines(ax, report, vertical=False)
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel("σ_min [m/rad | 1]")
    ax.legend(loc="upper right", fontsize=8)
    if np.isfinite(record.min_distance).any():
        axd = ax.twinx()
        axd.plot(record.time - t0, np.where(np.isfinite(record.min_distance),
                                            record.min_distance, np.nan),
                 color="#c44e52", lw=1.0, label="closest collision pair (controller)")
        axd.set_ylim(bottom=0.0)
        axd.set_ylabel("collision distance [m]", color="#c44e52")
        axd.legend(loc="lower right", fontsize=8)
    axs.step(record.time - t0, record.state, where="post", color="#55a868", lw=1.5)
    axs.set_yticks(range(len(record.state_names)), record.state_names, fontsize=7)
    axs.set_ylim(-0.5, len(record.state_names) - 0.5)
    axs.set_ylabel("state")
    for axis in (ax, axs, axq):
        for t, _ in record.events:
            axis.axvline(t - t0, color=STOP_COLOUR, lw=1.0, ls="--")
    for j, name in enumerate(robot["joint_names"]):
        axq.plot(x, trajectory.q[:, j], lw=1.0, label=name)
    axq.set_xlabel("time from the event [s]")
    axq.set_ylabel("joint position [rad | m]")
    axq.legend(loc="upper right", fontsize=7, ncol=min(4, len(robot["joint_names"])))
    return _save(fig, out)
