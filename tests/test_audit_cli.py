"""Properties of the jacobian-ik command line: exit status, outputs, pictures."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jacobian_ik.audit.cli import main

REPO = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLANAR = ["planar2", "--task", "position"]


def _subprocess(args):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "jacobian_ik.audit", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=240)


def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _csv(tmp_path):
    """planar2 path through the stretched configuration (q2 = 0 at sample 10)."""
    path = tmp_path / "path.csv"
    path.write_text("joint1,joint2\n" + "".join(f"0.1,{0.5 - 0.05 * i}\n" for i in range(21)))
    return path


@pytest.mark.slow
def test_subprocess_gate_pass_gives_status_0_and_json_on_stdout():
    """`python -m jacobian_ik.audit audit ... --json` with a passing gate exits 0 and
    prints a JSON report with its schema_version and the gate's verdict."""
    run = _subprocess(["audit", *PLANAR, "--samples", "3000", "--json",
                       "--fail-if", "stop_fraction>0.5"])
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["schema_version"] == 1
    assert report["gates"] == [{"expression": "stop_fraction>0.5", "metric": "stop_fraction",
                                "value": report["stop_fraction"], "failed": False}]


@pytest.mark.slow
def test_subprocess_gate_failure_gives_status_1_with_the_reason_on_stderr():
    """A failing gate exits 1 and names the gate and the value on stderr; the
    report still goes to stdout."""
    run = _subprocess(["audit", *PLANAR, "--samples", "3000",
                       "--fail-if", "sigma_min.p50>0.001", "--fail-if", "stop_fraction>0.999"])
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("jacobian-ik audit: gate failed: sigma_min.p50>0.001 "
                               "(sigma_min.p50 = ")
    assert "jacobian-ik audit" in run.stdout and "worst configurations" in run.stdout


@pytest.mark.slow
def test_subprocess_bad_input_gives_status_2_and_one_line():
    """An unknown tip link exits 2 with one line on stderr listing the links."""
    run = _subprocess(["audit", "planar2", "--tip", "nowhere", "--samples", "10"])
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "tip_link 'nowhere'" in lines[0] and "links are" in lines[0]
    assert run.stdout == ""


@pytest.mark.parametrize("argv, fragment", [
    (["audit", "no_such_robot"], "bundled robots are: panda, planar2, ur5"),
    (["audit", "planar2", "--base", "nowhere"], "base_link 'nowhere'"),
    (["audit", "planar2", "--sigma-warn", "0.01", "--sigma-stop", "0.02"], "below sigma_warn"),
    (["audit", "planar2", "--sigma-stop", "-1"], ">= 0"),
    (["audit", "planar2", "--fail-if", "stop_fraction=>0.1"], "NAME OP NUMBER"),
    (["audit", "planar2", "--fail-if", "stop_fracton>0.1"], "unknown metric"),
    (["audit", "planar2", "--voxel", "0"], "voxel size"),
    (["audit", "planar2", "--plot", "/no/such/dir/a.png"], "folder does not exist"),
    (["audit", "planar2", "--config", "/no/such.yaml"], "cannot read parameter file"),
    (["audit-path", "planar2", "/no/such.csv"], "does not exist"),
])
def test_bad_input_exits_2_with_one_clear_line(argv, fragment):
    """Bad robots, links, thresholds, gates, options and files: status 2, nothing on
    stdout, one stderr line 'jacobian-ik <command>: error: ...'."""
    code, out, err = _main(argv + ["--samples", "10"] if argv[0] == "audit" else argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jacobian-ik {argv[0]}: error: ")
    assert fragment in lines[0]


def test_unreadable_urdf_exits_2(tmp_path):
    """A URDF that is not XML: status 2, one line naming the file."""
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot name='x'><link name='a'>")
    code, _, err = _main(["audit", str(bad), "--base", "a", "--tip", "a"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bad.urdf" in err


@pytest.mark.parametrize("argv", [
    ["audit", "planar2", "--samples", "abc"],
    ["audit", "planar2", "--sigma-warn", "nan"],
    ["audit", "planar2", "--task", "orientation"],
    ["audit"],
])
def test_argument_errors_exit_2_with_one_line(argv, capsys):
    """Malformed arguments: status 2 and a single 'error:' line (no usage dump)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]


@pytest.mark.slow
def test_plot_is_a_valid_png_of_nontrivial_size(tmp_path):
    """--plot writes a PNG (signature, IHDR of at least 800 × 300 px, > 20 kB)."""
    png = tmp_path / "audit.png"
    code, _, _ = _main(["audit", *PLANAR, "--samples", "5000", "--plot", str(png)])
    assert code == 0
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 300
    assert len(data) > 20_000


def test_path_plot_is_a_valid_png(tmp_path):
    """audit-path --plot writes a PNG of non-trivial size."""
    png = tmp_path / "path.png"
    code, _, _ = _main(["audit-path", *PLANAR[:1], str(_csv(tmp_path)), *PLANAR[1:],
                        "--plot", str(png)])
    assert code == 0
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 20_000


def test_baseline_passes_against_itself_and_fails_after_a_stricter_threshold(tmp_path):
    """A report saved with --output is its own passing baseline; raising sigma_stop
    makes stop_fraction regress: status 1 with a 'regression:' line."""
    saved = tmp_path / "old.json"
    args = ["audit", *PLANAR, "--samples", "4000", "--seed", "3"]
    assert _main(args + ["--output", str(saved)])[0] == 0
    assert json.loads(saved.read_text())["kind"] == "audit"
    code, out, err = _main(args + ["--baseline", str(saved)])
    assert code == 0 and err == "" and "baseline" in out
    code, _, err = _main(args + ["--sigma-stop", "0.035", "--baseline", str(saved)])
    assert code == 1
    assert "regression: stop_fraction" in err


def test_path_gate_on_stop_samples(tmp_path):
    """audit-path: `stop_samples>0` fails on a path through the singularity and the
    table names the first crossing."""
    csv = str(_csv(tmp_path))
    code, out, err = _main(["audit-path", "planar2", csv, "--task", "position",
                            "--fail-if", "stop_samples>0"])
    assert code == 1 and "gate failed: stop_samples>0" in err
    assert "first stop" in out
    code, _, _ = _main(["audit-path", "planar2", csv, "--task", "position",
                        "--fail-if", "stop_samples>20"])
    assert code == 0


def test_progress_bar_only_when_asked():
    """--progress draws a bar ending at 100 % on stderr; without it (not a TTY) none."""
    code, _, err = _main(["audit", *PLANAR, "--samples", "3000", "--progress"])
    assert code == 0 and "100%" in err and "3000/3000" in err
    code, _, err = _main(["audit", *PLANAR, "--samples", "3000"])
    assert code == 0 and err == ""


def test_sobol_sampling_is_reported_and_reproducible():
    """--sobol is recorded in the report, and the same seed gives the same numbers."""
    pytest.importorskip("scipy")
    runs = [json.loads(_main(["audit", *PLANAR, "--samples", "1024", "--sobol", "--json"])[1])
            for _ in range(2)]
    assert runs[0]["sampling"]["method"] == "sobol"
    assert runs[0]["sigma_min"] == runs[1]["sigma_min"]


@pytest.mark.slow
def test_audit_commands_do_not_import_ros(tmp_path):
    """Running both commands in a fresh interpreter never imports rclpy or ROS messages."""
    csv = _csv(tmp_path)
    code = (
        "import io, sys\n"
        "from jacobian_ik.audit.cli import main\n"
        "quiet = (io.StringIO(), io.StringIO())\n"
        "assert main(['audit', 'planar2', '--samples', '500'], *quiet) == 0\n"
        f"assert main(['audit-path', 'planar2', {str(csv)!r}], *quiet) == 0\n"
        "ros = ('rclpy', 'sensor_msgs', 'rosidl_runtime_py')\n"
        "ros = [m for m in sys.modules if m.split('.')[0] in ros]\n"
        "print(ros)\n"
        "sys.exit(1 if ros else 0)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
