"""Accuracy cost of the integer graph (``--precision fixed``): cosine of the integer QANN's outputs to
the float QANN's, per calibration method and weight mantissa bits (8 is Loihi's).

MobileNetV2 (real weights), 4-bit activations, 128x64, synthetic frames.  Writes
``benchmarks/results/fixed_point_cost.json``.

    python benchmarks/fixed_point_cost.py [--frames 4]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from backends.registry import lower
from evals.synthetic import synthetic_video
from vistream_neuro import ir
from vistream_neuro.fixed_point import to_fixed_point
from vistream_neuro.pipeline import convert_model, normalise, pixel_unit
from vistream_neuro.streaming import run_stream

MODEL, SIZE = "mobilenetv2", (128, 64)


def outputs(graph: ir.SpikingGraph, frames: list[torch.Tensor]) -> list[torch.Tensor]:
    return [r.output for r in run_stream(lower(graph, "torch"), frames, "reset")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/fixed_point_cost.json"))
    args = p.parse_args(argv)
    video = normalise(torch.from_numpy(synthetic_video(args.frames, *SIZE, seed=0)).double(), MODEL)
    frames = [f[None] for f in video]
    rows = []
    for method in ("percentile", "perchannel"):
        net = convert_model(MODEL, video, 4, method=method)
        reference = outputs(net.graph, frames)
        for bits in (8, 12, 16):
            row = {"calibration": method, "weight_bits": bits, "max_threshold_bits": 12}
            try:
                fx = to_fixed_point(net.graph, pixel_unit(MODEL), weight_bits=bits)
            except ir.GraphError as exc:
                row["error"] = str(exc)
            else:
                decoded = [fx.decode(y) for y in outputs(fx.graph, [fx.encode(f) for f in frames])]
                row["cosine_to_float_qann"] = sum(
                    F.cosine_similarity(a.flatten(1), b.flatten(1)).item()
                    for a, b in zip(reference, decoded, strict=True)) / len(frames)
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": MODEL, "input_size": list(SIZE), "act_bits": 4,
                                    "frames": args.frames, "results": rows}, indent=2))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
