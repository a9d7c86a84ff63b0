"""The CLI contract under bad input (issue 22): every bad argument is one line and exit code 2 before
any computation, warnings are one line each and kept in report.json, output folders appear whole,
and a fuzz over the arguments never yields a traceback or a partial report."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evals import calibrate as calibrate_cli
from evals.run import main
from tests.conftest import requires_lava

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--backend", "spikingjelly", "--task", "stream", "--frames", "2", "--input-size", "16x16"]


def _one_line_error(capsys, argv, command=main) -> str:
    assert command(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("argv,message", [
    (["--act-bits", "1"], "activation bits must be an integer from 2 to 16"),
    (["--act-bits", "99"], "activation bits must be an integer from 2 to 16"),
    (["--act-bits", "four"], "expected an integer"),
    (["--input-size", "100000x100000"], "input size must be from 8x8 to 8192x8192"),
    (["--input-size", "8000x8000", "--frames", "100000"], "the frames alone need about"),
    (["--crop", "-5,0,10,10", "--video", "clip.mp4"], r"--crop: expected X,Y >= 0 and W,H >= 1"),
    (["--crop", "0,0,10"], "expected X,Y,W,H"),
    (["--t-max", "0"], "must be >= 1"),
    (["--hysteresis", "nan"], "must be a finite number"),
    (["--out", "/proc/vistream-neuro-test"], "cannot write there"),
])
def test_bad_arguments_are_one_line_errors_before_any_computation(argv, message, capsys):
    line = _one_line_error(capsys, [*SMALL, *argv])
    assert line.startswith("evals.run: error:") and message in line, line


def test_an_out_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert "exists and is not a folder" in _one_line_error(capsys, [*SMALL, "--out", str(target)])
    assert target.read_text() == "mine"


def test_calibrate_refuses_a_folder_and_bad_bits(tmp_path, capsys):
    assert "is a folder; give a file name" in _one_line_error(
        capsys, ["--frames", "2", "--out", str(tmp_path)], calibrate_cli.main)
    assert "from 2 to 16" in _one_line_error(
        capsys, ["--act-bits", "1", "--out", str(tmp_path / "c.h5")], calibrate_cli.main)


def test_a_file_that_is_no_checkpoint_is_one_short_line(tmp_path, capsys):
    bad = tmp_path / "weights.pt"
    bad.write_text("not a checkpoint")
    line = _one_line_error(capsys, [*SMALL, "--weights", str(bad), "--out", str(tmp_path / "run")])
    assert "not a torch checkpoint" in line and "weights_only" not in line


def test_unsettled_frames_warn_in_one_line_and_in_the_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SMALL, "--t-max", "1", "--out", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "did not settle within t_max=1" in err[0]
    report = json.loads((out / "report.json").read_text())
    assert report["warnings"] == [err[0].removeprefix("evals.run: warning: ")]


def test_a_calibration_made_at_another_size_warns(tmp_path, capsys):
    cal = tmp_path / "cal.h5"
    assert calibrate_cli.main(["--model", "tiny", "--calibration", "percentile", "--frames", "2",
                               "--input-size", "16x16", "--out", str(cal)]) == 0
    out = tmp_path / "run"
    assert main(["--backend", "spikingjelly", "--task", "stream", "--frames", "2", "--input-size", "24x24",
                 "--weights", str(cal), "--out", str(out)]) == 0
    assert "calibrated at 16x16, used at 24x24" in capsys.readouterr().err
    assert any("calibrated at 16x16" in w for w in json.loads((out / "report.json").read_text())["warnings"])


def test_an_empty_det_file_warns_instead_of_a_silent_mota_of_zero(tmp_path, capsys):
    from evals.tasks.mot.data import synthetic_mot, write_mot

    folder = write_mot(synthetic_mot(frames=4, height=64, width=64, seed=1), tmp_path / "data")
    (folder / "det" / "det.txt").write_text("")
    out = tmp_path / "run"
    assert main(["--backend", "spikingjelly", "--data", str(folder), "--detections", "det",
                 "--out", str(out)]) == 0
    assert "no det detections in any frame" in capsys.readouterr().err
    assert json.loads((out / "report.json").read_text())["warnings"]


def test_a_run_replaces_its_folder_whole_and_files_follow_the_umask(tmp_path):
    out = tmp_path / "run"
    assert main(["--backend", "spikingjelly", "--frames", "3", "--out", str(out)]) == 0  # mot: tracks/
    assert (out / "tracks").is_dir()
    assert main([*SMALL, "--out", str(out)]) == 0  # a stream run into the same folder
    assert not (out / "tracks").exists()  # only its own files remain
    mask = os.umask(0)
    os.umask(mask)
    for name in ("report.json", "frames.csv", "layers.csv", "ops_per_frame.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~mask, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_an_interrupted_run_leaves_the_previous_folder_untouched(tmp_path):
    out = tmp_path / "run"
    assert main([*SMALL, "--out", str(out)]) == 0
    before = (out / "report.json").read_text()
    script = ("import sys; from evals.reports import plots\n"
              "def stop(*a, **k): raise KeyboardInterrupt\n"
              "plots.write_plots = stop\n"
              "import evals.reports.report as r; r.write_plots = stop\n"
              "from evals.run import main\n"
              f"sys.exit(main({[*SMALL[:-1], '24x24', '--out', str(out)]!r}))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0 and "KeyboardInterrupt" in result.stderr
    assert (out / "report.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@requires_lava
def test_all_schedules_run_on_lava_as_on_spikingjelly(tmp_path):
    reports = {}
    for backend in ("lava", "spikingjelly"):
        out = tmp_path / backend
        assert main(["--backend", backend, "--task", "stream", "--frames", "2", "--input-size", "16x16",
                     "--compare", "--schedule", "all", "--out", str(out)]) == 0
        reports[backend] = json.loads((out / "report.json").read_text())["summary"]["compare"]
    for run in ("reset", "locc", "layerwise", "layerwise_graded"):
        lava, sj = reports["lava"][run], reports["spikingjelly"][run]
        assert lava["level_mismatch_max"] == 0 and lava["sops_per_frame"] == sj["sops_per_frame"], run


# the fuzz: argument values, good and bad, for the flags a user types most
VALUES = {
    "--task": ["stream", "mot", "pose", ""],
    "--model": ["tiny", "nope", "tests.test_api:user_net", "x:"],
    "--act-bits": ["2", "4", "1", "17", "-3", "x"],
    "--input-size": ["16x16", "8x8", "7x7", "16x", "0x0", "99999x99999"],
    "--frames": ["2", "0", "-1", "x"],
    "--t-max": ["1", "64", "0"],
    "--mode": ["locc", "reset", "sometimes"],
    "--schedule": ["timestep", "layerwise", "all", "weekly"],
    "--spikes": ["ternary", "graded", "analog"],
    "--precision": ["fixed", "float64", "float32", "half"],
    "--hysteresis": ["0", "0.25", "1", "-1", "inf"],
    "--crop": ["0,0,8,8", "-5,0,10,10", "1,2", "a,b,c,d"],
    "--input-deadband": ["0", "4", "-2"],
    "--sigma-delta": ["1.0", "-1"],
    "--calibration": ["percentile", "perchannel", "guess"],
    "--hw-map": ["loihi2", "tpu"],
    "--backend": ["spikingjelly", "torch", "nope"],
}


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_arguments_exit_0_or_2_never_a_traceback_nor_a_partial_report(tmp_path_factory, capsys, data):
    argv = {"--backend": "spikingjelly", "--task": "stream", "--frames": "2", "--input-size": "16x16"}
    for flag in data.draw(st.lists(st.sampled_from(sorted(VALUES)), unique=True, max_size=4)):
        argv[flag] = data.draw(st.sampled_from(VALUES[flag]))
    if argv["--task"] != "stream":  # keep tracking runs short: the synthetic sequences, 2 frames
        argv.pop("--input-size", None)
    out = tmp_path_factory.mktemp("fuzz") / "run"
    args = [v for kv in argv.items() for v in kv] + ["--out", str(out)]
    code = main(args)
    err = capsys.readouterr().err
    assert code in (0, 2), (args, err)
    assert "Traceback" not in err
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("evals.run: error:")]
        assert len(errors) == 1, (args, err)
        assert not out.exists()
    else:
        assert (out / "report.json").is_file() and (out / "frames.csv").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_a_bad_argument_through_the_interpreter_exits_2_in_one_line():
    argv = [sys.executable, "-m", "evals.run", "--backend", "spikingjelly", "--act-bits", "1"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
