"""``--task all``: the five tracking tasks in one run, one table of metrics and cost per task.

Each task runs as it would alone and writes its full report under ``<out>/<task>/``; the combined
``tasks.json`` / ``tasks.csv`` put, per task and network (ANN, QANN, reset, LoCC), the task's
metrics next to operations, time steps and energy per frame, and ``sops_by_task.png`` plots the
operations per frame of each task over its frames.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from evals.harness.config import EvalConfig
from evals.harness.tasks import Task
from evals.reports.plots import plot_sops_by_task
from vistream_neuro.atomic import write_atomic
from vistream_neuro.runner import StreamResult

ENERGY_MODEL = "loihi"


def task_row(task: Task, report: dict) -> dict[str, dict]:
    """Per network: the task's metrics (its table columns), ops/frame, time steps and energy."""
    compare = report["summary"].get("compare") or {report["mode"]: report["summary"]}
    rows = {}
    for network, entry in compare.items():
        dense = network in ("ann", "qann")
        rows[network] = {
            **{c.key: entry.get("metrics", {}).get(c.key, float("nan")) for c in task.columns},
            "ops_per_frame": entry["ann_macs_per_frame"] if dense else entry["sops_per_frame"],
            "input_macs_per_frame": 0 if dense else entry["input_macs_per_frame"],
            "timesteps_mean": entry["timesteps_mean"],
            "energy_pj_per_frame": entry["energy_pj_per_frame"][ENERGY_MODEL],
        }
    return rows


def run_all(config: EvalConfig, out: Path, tasks: dict[str, Callable[[EvalConfig], Task]],
            run: Callable[[list[tuple[Task, EvalConfig, Path]]], list[tuple[StreamResult, dict]]]) -> dict:
    """Run every task of ``tasks`` together with ``run([(task, config, folder), ...])`` (which writes
    each task's report in its folder); write and return the table."""
    runs = []
    for name, make in tasks.items():
        task_config = replace(config, task=name)
        runs.append((make(task_config), task_config, out / name))
    table, results = {}, {}
    for (task, _, _), (result, report) in zip(runs, run(runs), strict=True):
        results[task.name] = result
        table[task.name] = {"columns": [c.key for c in task.columns], "networks": task_row(task, report)}
    write_atomic(out / "tasks.json", lambda f: json.dump({"energy_model": ENERGY_MODEL, "tasks": table}, f,
                                                         indent=2))
    write_atomic(out / "tasks.csv", lambda f: _write_csv(f, table))
    plot_sops_by_task(out / "sops_by_task.png", results)
    return table


def _write_csv(f, table: dict) -> None:
    keys = sorted({k for entry in table.values() for row in entry["networks"].values() for k in row})
    writer = csv.DictWriter(f, fieldnames=["task", "network", *keys])
    writer.writeheader()
    for name, entry in table.items():
        for network, row in entry["networks"].items():
            writer.writerow({"task": name, "network": network, **row})


def print_table(table: dict) -> None:
    print(f"\n{'task':>10} {'network':>7} {'metrics':<40} {'ops/frame':>11} {'steps':>6} "
          f"{'uJ/frame (' + ENERGY_MODEL + ')':>18}")
    for name, entry in table.items():
        for network, row in entry["networks"].items():
            metrics = " ".join(f"{k}={row[k]:.3f}" for k in entry["columns"][:3])
            print(f"{name:>10} {network:>7} {metrics:<40} {row['ops_per_frame']:>11.4g} "
                  f"{row['timesteps_mean']:>6.1f} {row['energy_pj_per_frame'] * 1e-6:>18.4g}")
