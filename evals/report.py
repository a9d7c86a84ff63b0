"""Reports of a run: terminal table, ``report.json`` and ``frames.csv`` (DESIGN.md section 7)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def write_atomic(path: Path, write) -> None:
    """Write through a temporary file so that no partial file is left looking complete."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def build_report(config, result) -> dict:
    frames = [{"index": r.index, "timesteps": r.timesteps, "converged": r.converged,
               "sops": None, "input_macs": None, "ann_macs": None, "spikes": r.spikes,
               "max_abs_err": r.max_abs_err, "level_mismatch": r.level_mismatch}
              for r in result.rows]
    steps = [r.timesteps for r in result.rows]
    return {
        "backend": config.backend, "task": "stream", "model": config.model, "mode": config.mode,
        "precision": config.precision, "input_size": list(config.input_size),
        "act_bits": config.act_bits,
        "source": str(config.source), "start": config.start, "calibration": config.calibration,
        "frames": frames,
        "summary": {
            "frames": len(frames), "sops_per_frame": None, "ann_macs_per_frame": None,
            "timesteps_mean": float(np.mean(steps)), "timesteps_max": int(max(steps)),
            "max_abs_err": max(r.max_abs_err for r in result.rows),
            "level_mismatch_max": max(r.level_mismatch for r in result.rows),
            "frames_not_converged": sum(not r.converged for r in result.rows),
            "spikes_per_frame": float(np.mean([r.spikes for r in result.rows])),
            "spikes_by_layer": result.spikes_by_layer,
            "qann_cosine_to_ann": result.qann_cosine_to_ann,
            "energy_pj_per_frame": {}, "metrics": {},
        },
    }


def write_report(out: Path, config, result) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(config, result)
    frames = report["frames"]

    def write_csv(f):
        writer = csv.DictWriter(f, fieldnames=list(frames[0]))
        writer.writeheader()
        writer.writerows(frames)

    write_atomic(out / "frames.csv", write_csv)
    write_atomic(out / "report.json", lambda f: json.dump(report, f, indent=2))


def print_table(config, rows) -> None:
    print(f"backend={config.backend} model={config.model} mode={config.mode} "
          f"precision={config.precision} input={config.input_size[0]}x{config.input_size[1]} "
          f"act_bits={config.act_bits} source={config.source}")
    print(f"{'frame':>5} {'timesteps':>9} {'spikes':>10} {'max|SNN-QANN|':>14} {'level_mismatch':>14}")
    for r in rows:
        flag = "" if r.converged else f"  (not quiet after --t-max {config.t_max})"
        print(f"{r.index:>5} {r.timesteps:>9} {r.spikes:>10} {r.max_abs_err:>14.3e} "
              f"{r.level_mismatch:>14.3e}{flag}")


