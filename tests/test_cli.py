"""`python -m evals.run`: the demo table, report files and one-line errors with exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

from evals.run import main
from tests.conftest import requires_lava

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "evals.run", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_stream_task_prints_table_with_float_rounding_errors(tmp_path):
    result = _cli("--backend", "spikingjelly", "--task", "stream", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line[:5].strip().isdigit()]
    assert [int(r[0]) for r in rows] == list(range(10))
    assert all(int(r[1]) >= 1 for r in rows)
    assert max(float(r[6]) for r in rows) < 1e-12
    report = json.loads((tmp_path / "report.json").read_text())
    assert {"backend", "task", "model", "mode", "precision", "input_size", "act_bits", "frames",
            "summary"} <= set(report)
    assert len(report["frames"]) == 10 and report["summary"]["max_abs_err"] < 1e-12
    assert (tmp_path / "frames.csv").read_text().count("\n") == 11


def test_help_lists_the_options():
    result = _cli("--help")
    assert result.returncode == 0
    for option in ("--backend", "--mode", "--frames", "--t-max", "--precision", "--device", "--out"):
        assert option in result.stdout


def test_unknown_backend_is_one_line_naming_valid_backends():
    result = _cli("--backend", "nope")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and all(b in lines[0] for b in ("torch", "spikingjelly", "lava"))


def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path):
    for args in (["--backend", "torch", "--frames", "0"],
                 ["--backend", "torch", "--input-size", "64by64"],
                 ["--backend", "torch", "--mode", "sometimes"],
                 ["--backend", "torch", "--task", "pose"],
                 ["--backend", "torch", "--det-noise", "2"]):
        assert main([*args, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("evals.run: error:"), err
    assert not (tmp_path / "report.json").exists()


@requires_lava
def test_lava_fixed_point_run_equals_the_integer_qann(tmp_path):
    result = _cli("--backend", "lava", "--task", "stream", "--precision", "fixed", "--compare",
                  "--frames", "4", "--input-size", "32x48", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "report.json").read_text())["summary"]
    assert summary["max_abs_err"] == 0 and summary["compare"]["locc"]["max_abs_err"] == 0
    assert 0.95 < summary["fixed_cosine_to_float_qann"] <= 1


def test_impractical_lava_run_is_one_line_with_the_estimate(capsys, tmp_path):
    assert main(["--backend", "lava", "--task", "stream", "--model", "resnet50",
                 "--input-size", "256x256", "--frames", "50", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "min estimated" in err[0] and "--force" in err[0], err
    assert not (tmp_path / "report.json").exists()


def test_nan_frames_are_a_one_line_error(monkeypatch, capsys, tmp_path):
    import numpy as np

    import evals.harness.stream

    def nan_video(frames, h, w, seed=0):
        video = np.zeros((frames, 3, h, w), dtype=np.float32)
        video[1, 0, 2, 3] = np.nan
        return video

    monkeypatch.setattr(evals.harness.stream, "synthetic_video", nan_video)
    assert main(["--backend", "torch", "--task", "stream", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN" in err[0]
    assert not (tmp_path / "report.json").exists()
