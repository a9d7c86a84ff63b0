"""`python -m evals.run`: convert a quantized CNN to ST-BIF neurons and stream video through it.

Prints per frame the time steps to quiescence and the deviation of the SNN from the QANN; writes
``report.json`` and ``frames.csv`` (DESIGN.md section 7) under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from backends.registry import BACKENDS, BackendUnavailableError, UnknownBackendError, lower
from evals.synthetic import synthetic_video
from vistream_neuro import models
from vistream_neuro.convert import ConversionError, to_spiking_graph
from vistream_neuro.quant import calibrate, quantize_activations
from vistream_neuro.streaming import MODES, run_stream

PRECISIONS = {"float64": torch.float64, "float32": torch.float32}
TASKS = ("stream",)


class UsageError(ValueError):
    """Bad argument or input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(message)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 64x64, got {text!r}") from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f"input size must be at least 8x8, got {text!r}")
    return h, w


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m evals.run", description=__doc__.splitlines()[0])
    p.add_argument("--backend", required=True, help=f"one of: {', '.join(BACKENDS)}")
    p.add_argument("--task", default="stream", help="stream: backbone only (default)")
    p.add_argument("--model", default="tiny", help=f"one of: {', '.join(models.MODELS)}")
    p.add_argument("--data", default="synthetic", help="synthetic (built-in moving pattern)")
    p.add_argument("--frames", type=_positive, default=10, help="number of frames (default 10)")
    p.add_argument("--input-size", type=_size, default=(64, 64), help="HxW (default 64x64)")
    p.add_argument("--act-bits", type=_positive, default=4, help="activation bits (default 4)")
    p.add_argument("--mode", choices=MODES, default="locc", help="locc (default) or reset")
    p.add_argument("--t-max", type=_positive, default=256, help="max time steps per frame")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="float64")
    p.add_argument("--out", type=Path, default=Path("runs/latest"), help="report directory")
    p.add_argument("--seed", type=int, default=0)
    return p


@dataclass
class FrameRow:
    index: int
    timesteps: int
    converged: bool
    spikes: int
    max_abs_err: float
    level_mismatch: float


def _check_args(args: argparse.Namespace) -> None:
    if args.backend not in BACKENDS:
        raise UnknownBackendError(args.backend)
    if args.task not in TASKS:
        raise UsageError(f"--task {args.task}: only {', '.join(TASKS)} is available so far")
    if args.model not in models.MODELS:
        raise UsageError(f"--model {args.model}: valid models are {', '.join(models.MODELS)}")
    if args.data != "synthetic":
        raise UsageError(f"--data {args.data}: only the built-in 'synthetic' data is available so far")


def stream_compare(args: argparse.Namespace) -> list[FrameRow]:
    """Run the QANN (torch) and the SNN (``args.backend``) on the same frames."""
    h, w = args.input_size
    video = torch.from_numpy(synthetic_video(args.frames, h, w, seed=args.seed))
    if not torch.isfinite(video).all():
        raise UsageError("input frames contain NaN or infinite values")
    model = quantize_activations(models.build(args.model, seed=args.seed), args.act_bits).double()
    calibrate(model, video[: min(len(video), 8)].double(), method="percentile")
    graph = to_spiking_graph(model, (3, h, w))
    dtype = PRECISIONS[args.precision]
    qann = lower(graph, "torch", device=args.device, dtype=dtype)
    snn = lower(graph, args.backend, device=args.device, dtype=dtype)
    frames = [f[None] for f in video]
    rows = []
    reference = run_stream(qann, frames, "reset")
    for ref, res in tqdm(zip(reference, run_stream(snn, frames, args.mode, args.t_max), strict=False),
                         total=len(frames), desc="frames", disable=None, leave=False):
        err = (res.output - ref.output).abs().max().item()
        total = sum(v.numel() for v in ref.levels.values())
        differ = sum(int((res.levels[k] != v).sum()) for k, v in ref.levels.items())
        rows.append(FrameRow(res.index, res.timesteps, res.converged, res.spikes, err, differ / total))
    return rows


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file so that no partial file is left looking complete."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_report(args: argparse.Namespace, rows: list[FrameRow]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    h, w = args.input_size
    frames = [{"index": r.index, "timesteps": r.timesteps, "converged": r.converged,
               "sops": None, "input_macs": None, "ann_macs": None, "spikes": r.spikes,
               "max_abs_err": r.max_abs_err, "level_mismatch": r.level_mismatch} for r in rows]
    steps = [r.timesteps for r in rows]
    report = {
        "backend": args.backend, "task": args.task, "model": args.model, "mode": args.mode,
        "precision": args.precision, "input_size": [h, w], "act_bits": args.act_bits,
        "frames": frames,
        "summary": {"frames": len(rows), "sops_per_frame": None, "ann_macs_per_frame": None,
                    "timesteps_mean": float(np.mean(steps)), "timesteps_max": int(max(steps)),
                    "max_abs_err": max(r.max_abs_err for r in rows),
                    "energy_pj_per_frame": {}, "metrics": {}},
    }
    _write_atomic(args.out / "report.json", lambda f: json.dump(report, f, indent=2))

    def write_csv(f):
        writer = csv.DictWriter(f, fieldnames=list(frames[0]))
        writer.writeheader()
        writer.writerows(frames)

    _write_atomic(args.out / "frames.csv", write_csv)


def print_table(args: argparse.Namespace, rows: list[FrameRow]) -> None:
    print(f"backend={args.backend} model={args.model} mode={args.mode} precision={args.precision} "
          f"input={args.input_size[0]}x{args.input_size[1]} act_bits={args.act_bits}")
    print(f"{'frame':>5} {'timesteps':>9} {'spikes':>9} {'max|SNN-QANN|':>14} {'level_mismatch':>14}")
    for r in rows:
        flag = "" if r.converged else f"  (not quiet after --t-max {args.t_max})"
        print(f"{r.index:>5} {r.timesteps:>9} {r.spikes:>9} {r.max_abs_err:>14.3e} "
              f"{r.level_mismatch:>14.3e}{flag}")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _check_args(args)
        rows = stream_compare(args)
    except (UsageError, UnknownBackendError, BackendUnavailableError, ConversionError) as exc:
        print(f"evals.run: error: {exc}", file=sys.stderr)
        return 2
    print_table(args, rows)
    write_report(args, rows)
    print(f"report: {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
