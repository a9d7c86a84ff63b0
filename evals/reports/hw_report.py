"""The ``hw_map`` section of a report: the graph mapped onto a chip preset and every run's frames
priced on it (dense ANN, reset, LoCC, sigma-delta), with a per-layer CSV and a plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from evals.reports.plots import save_figure
from evals.reports.tables import write_csv
from vistream_neuro.hardware import hardware_model
from vistream_neuro.hw_mapping import Mapper, dense_frame_ops

PER_FRAME = ("timesteps", "sops", "messages", "input_messages", "messages_off_chip", "hops", "neuron_updates",
             "energy_pj", "latency_us")


def _means(costs: list[dict]) -> dict:
    return {k: float(np.mean([c[k] for c in costs])) for k in PER_FRAME}


def run_costs(mapper: Mapper, frames: list) -> dict:
    """Per-frame means over all frames and in steady state (from the second frame), and per layer
    the steady-state energy and messages."""
    costs = [mapper.frame_cost(ops) for ops in frames]
    steady = costs[1:] or costs
    layers = {name: {k: float(np.mean([c["layers"][name][k] for c in steady]))
                     for k in ("sops", "messages", "energy_pj")} for name in mapper.layers}
    return {"per_frame": _means(costs), "per_frame_steady": _means(steady), "layers": layers}


def hw_map_section(result, preset: str) -> dict:
    """Map ``result.graph`` onto ``preset`` and price the dense ANN and each SNN run of ``result``."""
    hw = hardware_model(preset)
    mapper = Mapper(result.graph, hw)
    runs = {"ann": run_costs(mapper, [dense_frame_ops(result.graph)])}  # the same cost every frame
    runs |= {mode: run_costs(mapper, [r.ops for r in records]) for mode, records in result.runs.items()}
    return {"hardware": hw.describe(), **mapper.summary(),
            "layers": [layer.row() for layer in mapper.layers.values()], "runs": runs}


def write_hw_map(out: Path, section: dict) -> None:
    """``hw_layers.csv`` (placement and per-run steady-state cost per layer) and ``hw_map.png``."""
    runs = section["runs"]
    rows = [row | {f"{k}_{run}": costs["layers"][row["layer"]][k] for run, costs in runs.items()
                   for k in ("sops", "messages", "energy_pj")} for row in section["layers"]]
    write_csv(out / "hw_layers.csv", rows)
    names = [row["layer"] for row in section["layers"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 0.2 * len(names)), 7), sharex=True)
    x = np.arange(len(names))
    top.bar(x, [row["cores"] for row in section["layers"]])
    top.set(ylabel="cores", title=f"{section['hardware']['name']}: {section['cores']} cores on "
                                  f"{section['chips']} chip(s); steady-state energy per frame by layer")
    width = 0.8 / len(runs)
    for i, (run, costs) in enumerate(runs.items()):
        bottom.bar(x - 0.4 + (i + 0.5) * width, [costs["layers"][n]["energy_pj"] * 1e-6 for n in names],
                   width, label=run)
    bottom.set_yscale("log")
    bottom.set(ylabel="energy per frame (uJ)")
    bottom.set_xticks(x, names, rotation=90, fontsize=6)
    bottom.legend(fontsize=7)
    save_figure(fig, out / "hw_map.png")


def print_hw_map(section: dict) -> None:
    """One line per run: steady-state cost per frame on the chip."""
    hw = section["hardware"]
    print(f"\nhw map {hw['name']}: {section['cores']} cores, {section['chips']} chip(s), "
          f"{section['synapses']:.4g} synapses ({section['shared_weights']:.4g} shared weights), "
          f"depth {section['depth']}"
          + ("" if section["fits"] else f"; DOES NOT FIT: {section['violations']}"))
    print(f"{'run':>11} {'steps':>6} {'SOPs':>11} {'messages':>11} {'off chip':>10} {'hops':>11} "
          f"{'energy uJ':>10} {'latency us':>10}")
    for run, costs in section["runs"].items():
        c = costs["per_frame_steady"]
        messages = c["messages"] + c["input_messages"]
        print(f"{run:>11} {c['timesteps']:>6.1f} {c['sops']:>11.4g} {messages:>11.4g} "
              f"{c['messages_off_chip']:>10.4g} "
              f"{c['hops']:>11.4g} {c['energy_pj'] * 1e-6:>10.4g} {c['latency_us']:>10.4g}")
