"""`make bench`, scale-out part: wall time of `--task all` and of a sweep, serial and on Ray workers.

Each command runs as a whole process (Ray's start included, as a user sees it), serially and with
``--workers N``, alternating, ``--repeats`` times; the JSON gives the medians, their ratio and
whether the two runs wrote the same files (they must: docs/ARCHITECTURE.md, "Scale-out").  Results
go to ``OUT/workers.json``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vistream_neuro.atomic import write_atomic


def commands(frames: int | None, size: str | None) -> dict[str, list[str]]:
    """The two commands timed, without ``--out`` and ``--workers``."""
    sized = [*(["--frames", str(frames)] if frames else []), *(["--input-size", size] if size else [])]
    return {"task_all": ["-m", "evals.run", "--backend", "spikingjelly", "--task", "all", *sized],
            "sweep": ["-m", "evals.sweep", "--act-bits", "2,3,4,6", "--stride", "1,2", *sized]}


def _timed(args: list[str], out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args, "--out", str(out)], check=True, capture_output=True,
                   env={**os.environ, "TQDM_DISABLE": "1"})
    return time.perf_counter() - start


def differing_files(a: Path, b: Path) -> list[str]:
    """The files that are in only one of the trees ``a`` and ``b``, or differ in content."""
    mine = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    theirs = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    return sorted(str(f) for f in mine ^ theirs) + sorted(
        str(f) for f in mine & theirs if not filecmp.cmp(a / f, b / f, shallow=False))


def bench(args: list[str], workers: int, repeats: int) -> dict:
    serial, parallel = [], []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for i in range(repeats):
            serial.append(_timed(args, base / f"serial{i}"))
            parallel.append(_timed([*args, "--workers", str(workers)], base / f"parallel{i}"))
        same = not any(differing_files(base / f"serial{i}", base / f"parallel{i}") for i in range(repeats))
    s, p = statistics.median(serial), statistics.median(parallel)
    return {"command": " ".join(["python", *args]), "workers": workers, "repeats": repeats,
            "serial_s": serial, "parallel_s": parallel, "serial_median_s": s, "parallel_median_s": p,
            "speedup": s / p, "identical_files": same}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench_workers", description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frames", type=int, help="frames per sequence or point (default: the commands' own)")
    p.add_argument("--input-size", help="HxW (default: the commands' own)")
    p.add_argument("--only", choices=("task_all", "sweep"), help="one of the two commands")
    p.add_argument("--out", type=Path, default=Path("bench_results"))
    args = p.parse_args(argv)
    rows = {name: bench(cmd, args.workers, args.repeats)
            for name, cmd in commands(args.frames, args.input_size).items() if args.only in (None, name)}
    report = {"cpus": len(os.sched_getaffinity(0)), "torch_threads": os.environ.get("OMP_NUM_THREADS"),
              "runs": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "workers.json", lambda f: json.dump(report, f, indent=2))
    for name, row in rows.items():
        print(f"{name}: serial {row['serial_median_s']:.1f} s, {row['workers']} workers "
              f"{row['parallel_median_s']:.1f} s, speed-up {row['speedup']:.2f}x, "
              f"identical files: {row['identical_files']}")
    return 0 if all(row["identical_files"] for row in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
