"""`python -m evals.sweep`: the cost/accuracy trade-off over activation bits, input size and frame
stride, on a chip preset.

Every configuration runs the stream task with the dense ANN, QANN, ``reset``, ``locc`` and the
sigma-delta baseline on the same frames; one row per configuration gives the accuracy proxy (cosine
of the outputs to the float ANN; the SNNs equal the QANN, whose figure they share), SOPs per frame
and energy per frame on the chip.  Writes ``sweep.json``, ``sweep.csv`` and ``sweep.png``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from evals.cli.arguments import ArgParser, output_folder, parse_size
from evals.harness.config import EvalConfig
from evals.harness.stream import StreamOptions, stream_compare, stream_options
from evals.harness.workers import JobFailed, map_ordered, session
from evals.reports.hw_report import hw_map_section
from evals.reports.plots import save_figure
from evals.reports.tables import write_csv
from evals.run import INPUT_ERRORS, add_worker_arguments, job_failed, workers_of
from vistream_neuro import models
from vistream_neuro.atomic import write_atomic
from vistream_neuro.hardware import PRESETS
from vistream_neuro.quant import check_bits
from vistream_neuro.runner import SIGMA_DELTA

RUNS = ("ann", "reset", "locc", SIGMA_DELTA)


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"values must be >= 1, got {text!r}")
    return values


def _sizes(text: str) -> list[tuple[int, int]]:
    return [parse_size(v) for v in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="python -m evals.sweep", description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="spikingjelly", help="spikingjelly (default), torch or lava")
    p.add_argument("--model", default="tiny", help=f"one of: {', '.join(models.MODELS)} (default tiny)")
    p.add_argument("--video", type=Path, help="video file or frame folder (default: synthetic)")
    p.add_argument("--act-bits", type=_ints, default=[2, 3, 4, 6], help="e.g. 2,3,4,6")
    p.add_argument("--input-size", type=_sizes, help="e.g. 64x64,128x128 (default: the model's)")
    p.add_argument("--stride", type=_ints, default=[1, 2, 4], help="frame strides, e.g. 1,2,4")
    p.add_argument("--frames", type=int, default=6, help="frames per configuration (default 6)")
    p.add_argument("--sigma-delta", type=float, default=1.0, help="threshold factor of the baseline")
    p.add_argument("--hw", choices=tuple(PRESETS), default="loihi2")
    add_worker_arguments(p, "the configurations")
    p.add_argument("--out", type=Path, default=Path("runs/sweep"))
    p.add_argument("--seed", type=int, default=0)
    return p


def sweep_row(_: None, config: EvalConfig) -> dict:
    """One configuration's row (a job of :func:`evals.harness.workers.map_ordered`)."""
    result = stream_compare(config)
    section = hw_map_section(result, config.hw_map)
    runs = section["runs"]
    locc = result.runs["locc"]
    return {
        "act_bits": config.act_bits, "input_size": "x".join(map(str, config.input_size)),
        "stride": stream_options(config).frame_stride, "cores": section["cores"], "chips": section["chips"],
        "cosine_qann_snn": result.qann_cosine_to_ann, "cosine_sigma_delta": result.sigma_delta_cosine_to_ann,
        "snn_max_abs_err_vs_qann": max(r.max_abs_err for r in locc),
        **{f"sops_{run}": runs[run]["per_frame_steady"]["sops"] for run in RUNS},
        **{f"energy_uj_{run}": runs[run]["per_frame_steady"]["energy_pj"] * 1e-6 for run in RUNS},
        **{f"timesteps_{run}": runs[run]["per_frame_steady"]["timesteps"] for run in RUNS},
    }


def plot_sweep(path: Path, rows: list[dict]) -> None:
    labels = [f"{r['act_bits']}b {r['input_size']} s{r['stride']}" for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 0.45 * len(rows)), 9), sharex=True)
    axes[0].plot(x, [r["cosine_qann_snn"] for r in rows], "o-", label="QANN = SNN (reset, locc)")
    axes[0].plot(x, [r["cosine_sigma_delta"] for r in rows], "s-", label="sigma-delta")
    axes[0].set(ylabel="cosine to float ANN", title="Accuracy proxy, SOPs and chip energy per frame "
                                                      "(steady state)")
    for run in RUNS:
        axes[1].plot(x, [r[f"sops_{run}"] for r in rows], "o-", label=run)
        axes[2].plot(x, [r[f"energy_uj_{run}"] for r in rows], "o-", label=run)
    axes[1].set(ylabel="SOPs (ANN: MACs)", yscale="log")
    axes[2].set(ylabel="energy per frame (uJ)", yscale="log")
    axes[2].set_xticks(x, labels, rotation=60, fontsize=7)
    for ax in axes:
        ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        models.check_model(args.model)
        for bits in args.act_bits:
            check_bits(bits)
        sizes = args.input_size or [models.default_input_size(args.model)]
        grid = list(itertools.product(args.act_bits, sizes, args.stride))
        points = [EvalConfig(backend=args.backend, model=args.model, source=args.video or "synthetic",
                             frames=args.frames, input_size=size, act_bits=bits, compare=True,
                             sigma_delta=args.sigma_delta, hw_map=args.hw, seed=args.seed,
                             task_options={"stream": StreamOptions(stride)})
                  for bits, size, stride in grid]
        names = [f"configuration {bits} bits {h}x{w} stride {stride}" for bits, (h, w), stride in grid]
        workers = workers_of(args)
        with session(workers), output_folder(args.out) as folder:  # the whole folder appears at the end
            rows = map_ordered(sweep_row, None, points, names, workers, desc="configurations")
            write_csv(folder.path / "sweep.csv", rows)
            plot_sweep(folder.path / "sweep.png", rows)
            write_atomic(folder.path / "sweep.json", lambda f: json.dump(
                {"hardware": args.hw, "model": args.model, "rows": rows}, f, indent=2))
    except (*INPUT_ERRORS, ValueError) as exc:  # ValueError: a bad value in a comma-separated list
        print(f"evals.sweep: error: {exc}", file=sys.stderr)
        return 2
    except JobFailed as exc:
        return job_failed("evals.sweep", exc)
    for row in rows:
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    print(f"sweep: {args.out / 'sweep.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
