"""Ray workers (issue 25): a parallel run gives the serial run's files exactly; a failing job is
named with its exit code; without the flags Ray is never imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals import bench_workers, run, sweep
from evals.data.errors import DataError
from evals.harness.workers import JobFailed, Workers, map_ordered, session

TWO = Workers(2)


def _same_tree(a: Path, b: Path) -> None:
    assert any(p.is_file() for p in a.rglob("*")), f"{a} is empty"
    differ = bench_workers.differing_files(a, b)
    assert not differ, f"differ between serial and parallel: {differ}"


def test_task_all_on_two_workers_equals_serial(tmp_path):
    args = ["--backend", "spikingjelly", "--task", "all", "--frames", "4", "--input-size", "32x32"]
    assert run.main([*args, "--out", str(tmp_path / "serial")]) == 0
    assert run.main([*args, "--workers", "2", "--out", str(tmp_path / "parallel")]) == 0
    _same_tree(tmp_path / "serial", tmp_path / "parallel")


def test_sweep_on_two_workers_equals_serial(tmp_path):
    args = ["--act-bits", "2,4", "--stride", "1", "--frames", "3", "--input-size", "32x32"]
    assert sweep.main([*args, "--out", str(tmp_path / "serial")]) == 0
    assert sweep.main([*args, "--workers", "2", "--out", str(tmp_path / "parallel")]) == 0
    _same_tree(tmp_path / "serial", tmp_path / "parallel")


def _fails_on_b(_, job: str) -> str:
    if job == "b":
        raise DataError("b.txt: expected 4 columns")
    if job == "c":
        raise ZeroDivisionError("a bug")
    return job.upper()


@pytest.mark.parametrize("workers", [Workers(), TWO], ids=["serial", "ray"])
def test_a_failing_job_is_named_and_keeps_its_exit_code(workers, capsys):
    with session(workers):
        assert map_ordered(_fails_on_b, None, ["a", "d"], ["job a", "job d"], workers, "jobs") == ["A", "D"]
        with pytest.raises(JobFailed) as bad_input:
            map_ordered(_fails_on_b, None, ["a", "b"], ["job a", "job b"], workers, "jobs")
        with pytest.raises(JobFailed) as bug:
            map_ordered(_fails_on_b, None, ["c"], ["job c"], workers, "jobs")
    assert bad_input.value.name == "job b" and isinstance(bad_input.value.cause, DataError)
    assert run.job_failed("evals.run", bad_input.value) == 2
    assert "evals.run: error: job b: b.txt: expected 4 columns" in capsys.readouterr().err
    assert isinstance(bug.value.cause, ZeroDivisionError)
    assert run.job_failed("evals.run", bug.value) == 1


def test_no_ray_import_without_the_flag(tmp_path):
    args = ["--backend", "torch", "--frames", "3", "--input-size", "32x32", "--out", str(tmp_path)]
    code = (f"import sys; from evals import run; rc = run.main({args!r}); "
            "assert rc == 0, rc; assert 'ray' not in sys.modules, 'ray was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]


def test_workers_do_not_apply_to_a_stream(capsys):
    assert run.main(["--backend", "torch", "--task", "stream", "--workers", "2", "--out", "/tmp/x"]) == 2
    assert "apply to tracking tasks" in capsys.readouterr().err


def test_bench_of_workers_times_both_and_checks_the_files(tmp_path):
    args = ["--only", "sweep", "--frames", "2", "--input-size", "16x16", "--repeats", "1",
            "--out", str(tmp_path)]
    assert bench_workers.main(args) == 0
    row = json.loads((tmp_path / "workers.json").read_text())["runs"]["sweep"]
    assert row["identical_files"] and row["serial_median_s"] > 0 and row["parallel_median_s"] > 0
    assert row["speedup"] == row["serial_median_s"] / row["parallel_median_s"]
