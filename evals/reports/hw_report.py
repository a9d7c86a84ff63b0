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


def sanafe_section(result, preset: str, run: str) -> dict:
    """Replay run ``run`` of ``result`` (its recorded spike trains) on SANA-FE's Loihi with the
    mapping onto ``preset``, beside the mapper's own price of the same frames."""
    from backends.sanafe_sim import SOURCE, replay

    mapper = Mapper(result.graph, hardware_model(preset))
    sim = replay(mapper, result.spike_trains)
    own = [mapper.frame_cost(r.ops) for r in result.runs[run]]
    energy, latency = float(np.mean(sim.energy_j)), float(np.mean(sim.latency_s))
    own_energy = float(np.mean([c["energy_pj"] for c in own])) * 1e-12
    own_latency = float(np.mean([c["latency_us"] for c in own])) * 1e-6
    return {
        "source": SOURCE, "run": run, "frames": len(sim.energy_j), "synapse": sim.synapse,
        "energy_j_per_frame": energy, "latency_s_per_frame": latency,
        "own_energy_j_per_frame": own_energy, "own_latency_s_per_frame": own_latency,
        "energy_ratio_sanafe_to_own": energy / own_energy,
        "latency_ratio_sanafe_to_own": latency / own_latency,
        "energy_parts_j_per_frame": {k: v / len(sim.energy_j) for k, v in sim.energy_parts_j.items()},
        "spikes_sent_per_frame": float(np.mean(sim.neurons_fired)),
        "synaptic_events_per_frame": float(np.mean(sim.synaptic_events)),
        "timesteps_per_frame": float(np.mean(sim.timesteps)),
        "layers": {name: {"energy_j_per_frame": e / len(sim.energy_j),
                          "own_energy_j_per_frame": 1e-12 * float(np.mean([c["layers"][name]["energy_pj"]
                                                                           for c in own]))}
                   for name, e in sim.layer_energy_j.items()},
    }


def write_sanafe(out: Path, section: dict) -> None:
    """``sanafe_layers.png``: energy per frame of each layer, SANA-FE and the mapper side by side."""
    names = list(section["layers"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(8, 0.25 * len(names)), 4))
    bars = (("energy_j_per_frame", "SANA-FE"), ("own_energy_j_per_frame", "mapper"))
    for i, (key, label) in enumerate(bars):
        ax.bar(x - 0.2 + 0.4 * i, [section["layers"][n][key] * 1e6 for n in names], 0.4, label=label)
    ax.set_yscale("log")
    ax.set(ylabel="energy per frame (uJ)", title=f"SANA-FE Loihi vs mapper, {section['frames']} frames, "
                                                 f"ratio {section['energy_ratio_sanafe_to_own']:.2f}")
    ax.set_xticks(x, names, rotation=90, fontsize=6)
    ax.legend(fontsize=7)
    save_figure(fig, out / "sanafe_layers.png")
