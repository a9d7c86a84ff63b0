"""Reports of a run: terminal tables, ``report.json``, ``frames.csv``, ``layers.csv`` and plots.

Keys follow docs/ARCHITECTURE.md, "Command line and reports"; every figure of a comparison comes
from the same run.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from evals.harness.config import EvalConfig
from evals.harness.tasks import Task
from evals.reports.hw_report import hw_map_section, print_hw_map, sanafe_section, write_hw_map, write_sanafe
from evals.reports.plots import write_plots
from evals.reports.tables import write_csv
from vistream_neuro import calibration, ir
from vistream_neuro.atomic import write_atomic
from vistream_neuro.energy import MODELS as ENERGY_MODELS
from vistream_neuro.runner import SCHEDULE_RUNS, SIGMA_DELTA, FrameRecord, StreamResult
from vistream_neuro.vistream_ops import summary as vistream_summary


def _mean(values) -> float:
    return float(np.mean(list(values)))


def frame_energy(record: FrameRecord) -> dict[str, float]:
    return {name: m.snn_pj(record.ops) for name, m in ENERGY_MODELS.items()}


def _mean_energy(records: list[FrameRecord]) -> dict[str, float]:
    energies = [frame_energy(r) for r in records]
    return {name: _mean(e[name] for e in energies) for name in ENERGY_MODELS}


def snn_summary(records: list[FrameRecord], ann_macs: int) -> dict:
    steady = records[1:] or records
    return {
        "frames": len(records),
        "sops_per_frame": _mean(r.ops.total_sops for r in records),
        "sops_per_frame_steady": _mean(r.ops.total_sops for r in steady),
        "input_macs_per_frame": _mean(r.ops.total_input_macs for r in records),
        "ann_macs_per_frame": ann_macs,
        "timesteps_mean": _mean(r.timesteps for r in records),
        "timesteps_max": max(r.timesteps for r in records),
        "quiescence": records[0].quiescence,
        "timesteps_mean_by_rule": {rule: _mean(r.timesteps_by_rule[rule] for r in records)
                                   for rule in ("spikes", "vistream")},
        "spikes_per_frame": _mean(r.ops.total_spikes for r in records),
        "spikes_pos_per_frame": _mean(sum(r.ops.spikes_pos.values()) for r in records),
        "spikes_neg_per_frame": _mean(sum(r.ops.spikes_neg.values()) for r in records),
        "min_spikes_per_frame": _mean(r.ops.total_min_spikes for r in records),
        "neuron_updates_dense_per_frame": _mean(sum(r.ops.updates_dense.values()) for r in records),
        "neuron_updates_event_per_frame": _mean(sum(r.ops.updates_event.values()) for r in records),
        "max_abs_err": max(r.max_abs_err for r in records),
        "level_mismatch_max": max((r.level_mismatch for r in records if not np.isnan(r.level_mismatch)),
                                  default=None),
        "frames_not_converged": sum(not r.converged for r in records),
        "energy_pj_per_frame": _mean_energy(records),
        "energy_pj_per_frame_steady": _mean_energy(steady),
        **_vistream_keys(records),
    }


def _vistream_keys(records: list[FrameRecord]) -> dict:
    """The run under ViStream's counting convention (docs/vistream_ops.md), beside ours."""
    frames = [r.ops.vistream for r in records if r.ops.vistream is not None]
    if len(frames) != len(records):
        return {}
    v = vistream_summary(frames)
    return {"vistream_ops_per_frame": v["ops_per_frame"],
            "vistream_energy_pj_per_frame": v["energy_pj_per_frame"],
            "vistream_layers_as_macs": v["layers_as_macs"]}


def dense_summary(ann_macs: int, frames: int) -> dict:
    energy = {name: m.ann_pj(ann_macs) for name, m in ENERGY_MODELS.items()}
    return {"frames": frames, "ann_macs_per_frame": ann_macs, "sops_per_frame": 0,
            "timesteps_mean": 1, "energy_pj_per_frame": energy, "energy_pj_per_frame_steady": energy}


def stability_weight(config: EvalConfig) -> float | None:
    """The stable calibration's penalty weight behind the run's QANN (None for other methods)."""
    if config.weights is not None and calibration.is_calibration_file(config.weights):
        return calibration.calibration_meta(config.weights).get("stability_weight")
    if config.calibration != "stable":
        return None
    return config.stability_weight if config.stability_weight is not None else calibration.STABILITY_WEIGHT


def build_report(config: EvalConfig, result: StreamResult) -> dict:
    ann_macs = sum(result.ann_macs.values())
    records = result.runs[config.mode]
    frames = [{**r.as_dict(ann_macs), "energy_pj": frame_energy(r)} for r in records]
    summary = snn_summary(records, ann_macs)
    summary["metrics"] = result.metrics.get(config.mode, {})
    summary["qann_cosine_to_ann"] = result.qann_cosine_to_ann
    if result.fixed_cosine_to_qann is not None:
        summary["fixed_cosine_to_float_qann"] = result.fixed_cosine_to_qann
        summary["float_qann_cosine_to_ann"] = result.float_qann_cosine_to_ann
        summary["fixed_dtype"] = result.fixed_dtype
    summary["energy_models"] = {name: m.source for name, m in ENERGY_MODELS.items()}
    if config.compare:
        summary["compare"] = {
            "ann": dense_summary(ann_macs, len(records)),
            "qann": {**dense_summary(ann_macs, len(records)),
                     "qann_cosine_to_ann": result.qann_cosine_to_ann},
            **{mode: snn_summary(runs, ann_macs) for mode, runs in result.runs.items()},
        }
        for name, entry in summary["compare"].items():
            entry["metrics"] = result.metrics.get(name, {})
        if result.sigma_delta_cosine_to_ann is not None:
            summary["compare"][SIGMA_DELTA].update(threshold_factor=config.sigma_delta,
                                                   cosine_to_ann=result.sigma_delta_cosine_to_ann)
    report = {
        "backend": config.backend, "task": config.task, "model": config.model, "mode": config.mode,
        "precision": config.execution.precision, "schedule": config.schedule,
        "spikes": config.execution.spikes,
        "input_size": list(result.graph.input_shape[1:]),
        "act_bits": config.act_bits, "level": config.level, "neuron_bounds": config.neuron_bounds.as_dict(),
        "source": str(config.source), "start": config.start,
        "calibration": config.calibration, "input_deadband": config.input_deadband,
        "stability_weight": stability_weight(config),
        "hysteresis": config.execution.hysteresis, "quiescence": config.execution.quiescence,
        "warnings": list(result.warnings), "frames": frames,
        "summary": summary,
    }
    if config.weights is not None and calibration.is_calibration_file(config.weights):
        report["calibration_file"] = {"path": str(config.weights),
                                      **calibration.calibration_meta(config.weights)}
    if config.hw_map is not None:
        report["hw_map"] = hw_map_section(result, config.hw_map)
        if config.hw_sim == "sanafe":
            report["hw_map"]["sanafe"] = sanafe_section(result, config.hw_map, config.mode)
    if result.sequences:
        report["sequences"] = [
            {**s, "compare": {mode: snn_summary([r for r in runs if r.sequence == s["name"]], ann_macs)
                              for mode, runs in result.runs.items()}}
            for s in result.sequences]
    return report


def layer_rows(result: StreamResult) -> list[dict]:
    """Per SNN run and layer: ANN MACs, SOPs (first frame, steady-state mean), spikes, minimum."""
    rows = []
    kinds = {n.name: type(n).__name__ for n in result.graph.nodes}
    for mode, records in result.runs.items():
        steady = records[1:] or records
        first = records[0].ops
        layers = [n.name for n in result.graph.nodes if isinstance(n, (*ir.SYNAPTIC, ir.Neuron))]
        for name in layers:
            rows.append({
                "mode": mode, "layer": name, "type": kinds[name],
                "ann_macs": result.ann_macs.get(name, 0),
                "sops_first_frame": first.layer_cost(name),
                "sops_steady_mean": _mean(r.ops.layer_cost(name) for r in steady),
                "analog_input": name in first.input_macs,
                "spikes_pos": sum(r.ops.spikes_pos.get(name, 0) for r in records),
                "spikes_neg": sum(r.ops.spikes_neg.get(name, 0) for r in records),
                "min_spikes": sum(r.ops.min_spikes.get(name, 0) for r in records),
                "updates_event": sum(r.ops.updates_event.get(name, 0) for r in records),
                "updates_dense": sum(r.ops.updates_dense.get(name, 0) for r in records),
            })
    return rows


def write_report(out: Path, config: EvalConfig, result: StreamResult, task: Task | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(config, result)
    flat = [{k: v for k, v in f.items() if k != "energy_pj"}
            | {f"energy_pj_{m}": v for m, v in f["energy_pj"].items()} for f in report["frames"]]
    write_csv(out / "frames.csv", flat)
    write_csv(out / "layers.csv", layer_rows(result))
    write_plots(out, result, report)
    if "hw_map" in report:
        write_hw_map(out, report["hw_map"])
        if "sanafe" in report["hw_map"]:
            write_sanafe(out, report["hw_map"]["sanafe"])
    if task is not None:
        write_tracks(out / "tracks", result, task)
    for name, image in result.images.items():
        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise RuntimeError(f"{name}: OpenCV could not encode the picture")
        write_atomic(out / name, png.tofile, binary=True)
    write_atomic(out / "report.json", lambda f: json.dump(report, f, indent=2))
    return report


def write_tracks(out: Path, result: StreamResult, task: Task) -> None:
    """Tracker output per network and sequence in the dataset's own result format, so the official
    tools can score it too (MOTChallenge txt, MOTS txt, OTB txt, DAVIS PNGs, PoseTrack JSON)."""
    for network, sequences in result.tracks.items():
        for name, output in sequences.items():
            task.write(out / network, name, output)


def print_sequences(config: EvalConfig, result: StreamResult, task: Task) -> None:
    """Task metrics per sequence and network, the overall row last; for a sequence without ground
    truth (a plain video), the tracks each network found.  ``=QANN``: output identical to the QANN's."""
    print(f"task={config.task} backend={config.backend} model={config.model} "
          f"precision={config.execution.precision} input={'x'.join(map(str, result.graph.input_shape[1:]))} "
          f"{_bounds_label(config)} source={config.source}")
    print(f"{'sequence':>12} {'network':>7} " + " ".join(f"{c.header:>8}" for c in task.columns)
          + f" {'frames':>6} {'=QANN':>5}")
    rows = [(s["name"], s["frames"], s["metrics"], s["same_as_qann"]) for s in result.sequences]
    if result.metrics:
        rows.append(("OVERALL", sum(s["frames"] for s in result.sequences), result.metrics, {}))
    width = 9 * len(task.columns) - 1
    for name, frames, metrics, same in rows:
        for network in same or metrics:
            m = metrics.get(network)
            scores = (" ".join(f"{m[c.key]:>8{c.fmt}}" if m[c.key] is not None else f"{'-':>8}"
                               for c in task.columns) if m
                      else f"{'(no ground truth)':>{width}}")
            equal = {True: "yes", False: "NO"}.get(same.get(network), "")
            print(f"{name:>12} {network:>7} {scores} {frames:>6} {equal:>5}")


def _bounds_label(config: EvalConfig) -> str:
    return f"act_bits={config.act_bits}" if config.level is None else f"level={config.level}"


def print_frames(config: EvalConfig, records: list[FrameRecord]) -> None:
    print(f"backend={config.backend} model={config.model} mode={config.mode} "
          f"precision={config.execution.precision} input={config.input_size[0]}x{config.input_size[1]} "
          f"{_bounds_label(config)} source={config.source}")
    print(f"{'frame':>5} {'timesteps':>9} {'SOPs':>12} {'input MACs':>11} {'spikes':>10} "
          f"{'min spikes':>10} {'max|SNN-QANN|':>14} {'level_mismatch':>14}")
    for r in records:
        flag = "" if r.converged else f"  (not quiet after --t-max {config.execution.t_max})"
        print(f"{r.index:>5} {r.timesteps:>9} {r.ops.total_sops:>12} {r.ops.total_input_macs:>11} "
              f"{r.ops.total_spikes:>10} {r.ops.total_min_spikes:>10} {r.max_abs_err:>14.3e} "
              f"{r.level_mismatch:>14.3e}{flag}")


def print_summary(report: dict) -> None:
    summary = report["summary"]
    entries = summary.get("compare") or {report["mode"]: summary}
    models = list(ENERGY_MODELS)
    print(f"\n{'run':>16} {'ops/frame':>14} {'steady':>14} {'steps':>6} {'spikes':>11} "
          + " ".join(f"{'pJ ' + m:>16}" for m in models))
    for run, s in entries.items():
        ops = s["ann_macs_per_frame"] if run in ("ann", "qann") else s["sops_per_frame"]
        steady = s["ann_macs_per_frame"] if run in ("ann", "qann") else s["sops_per_frame_steady"]
        print(f"{run:>16} {ops:>14.4g} {steady:>14.4g} {s['timesteps_mean']:>6.1f} "
              f"{s.get('spikes_per_frame', 0):>11.4g} "
              + " ".join(f"{s['energy_pj_per_frame'][m]:>16.4g}" for m in models))
    ann = summary["ann_macs_per_frame"]
    for run in ("locc", *SCHEDULE_RUNS):
        if run not in entries:
            continue
        ops = entries[run]["sops_per_frame_steady"] + entries[run]["input_macs_per_frame"]
        print(f"steady state: {run} ops / ANN MACs = {ops / max(ann, 1):.3g}", end="")
        if "reset" in entries:
            reset = entries["reset"]["sops_per_frame_steady"] + entries["reset"]["input_macs_per_frame"]
            print(f", reset / {run} ops = {reset / max(ops, 1):.3g}", end="")
        print()
    if "hw_map" in report:
        print_hw_map(report["hw_map"])
