"""PNG plots of a run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ops_per_frame(path: Path, result, ann_macs: int) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    frames = range(len(next(iter(result.runs.values()))))
    ax.plot(frames, [ann_macs] * len(frames), "k--", label="ANN (MACs)")
    for mode, records in result.runs.items():
        ax.plot(frames, [r.ops.total_sops + r.ops.total_input_macs for r in records], "o-", ms=3,
                label=f"{mode} SNN (SOPs + input MACs)")
    ax.set_yscale("log")
    ax.set(xlabel="frame", ylabel="operations per frame", title="Operations per frame")
    ax.legend()
    save_figure(fig, path)


def plot_layer_ops(path: Path, result) -> None:
    mode = "locc" if "locc" in result.runs else next(iter(result.runs))
    records = result.runs[mode]
    layers = list(result.ann_macs)
    first = records[0].ops
    steady = records[1:] or records

    fig, ax = plt.subplots(figsize=(max(7, 0.18 * len(layers)), 4))
    x = range(len(layers))
    ax.bar([i - 0.3 for i in x], [result.ann_macs[n] for n in layers], 0.3, label="ANN MACs")
    ax.bar(x, [first.layer_cost(n) for n in layers], 0.3, label=f"{mode}: first frame")
    ax.bar([i + 0.3 for i in x], [sum(r.ops.layer_cost(n) for r in steady) / len(steady) for n in layers],
           0.3, label=f"{mode}: steady state (mean)")
    ax.set_yscale("log")
    ax.set_xticks(list(x), layers, rotation=90, fontsize=6)
    ax.set(ylabel="operations per frame", title="Per-layer cost")
    ax.legend()
    save_figure(fig, path)


def plot_energy(path: Path, report: dict) -> None:
    summary = report["summary"]
    entries = summary.get("compare") or {report["mode"]: summary}
    models = list(next(iter(entries.values()))["energy_pj_per_frame"])
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(entries)
    for i, (run, s) in enumerate(entries.items()):
        ax.bar([j + i * width for j in range(len(models))],
               [s["energy_pj_per_frame"][m] * 1e-6 for m in models], width, label=run)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models)
    ax.set_yscale("log")
    ax.set(ylabel="energy per frame (uJ)", title="Energy per frame by model")
    ax.legend()
    save_figure(fig, path)


def plot_sops_by_task(path: Path, results: dict) -> None:
    """Operations per frame (SOPs + input MACs) of each task's SNN runs over its frames, with each
    task's dense ANN MACs per frame dotted; ``results`` maps task name to its StreamResult."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    styles = {"locc": "-", "reset": "--"}
    for i, (task, result) in enumerate(results.items()):
        colour = f"C{i}"
        for mode, records in result.runs.items():
            ax.plot([r.ops.total_sops + r.ops.total_input_macs for r in records], styles.get(mode, "-"),
                    color=colour, label=f"{task} {mode}")
        ax.axhline(sum(result.ann_macs.values()), color=colour, ls=":", lw=1)
    ax.set_yscale("log")
    ax.set(xlabel="frame (sequences of a task in order)", ylabel="operations per frame",
           title="SNN operations per frame by task (dotted: dense ANN MACs)")
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def write_plots(out: Path, result, report: dict) -> None:
    plot_ops_per_frame(out / "ops_per_frame.png", result, report["summary"]["ann_macs_per_frame"])
    plot_layer_ops(out / "layer_ops.png", result)
    plot_energy(out / "energy_per_frame.png", report)
