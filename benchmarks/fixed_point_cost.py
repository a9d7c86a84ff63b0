"""Accuracy cost of the integer graph (``--precision fixed``) per calibration method, weight mantissa
bits (8 is Loihi's) and with or without its bias correction: cosine of the integer QANN's outputs
to the float QANN's, and of each to the float ANN (the quality a user keeps), on held-out frames.

MobileNetV2 (real weights), 4-bit activations, 128x64, the synthetic sequence and bikes.mp4; the
first 8 frames calibrate (scales and the integer bias correction), the next ones are measured.
Writes ``benchmarks/results/fixed_point_cost.json``.

    python benchmarks/fixed_point_cost.py [--frames 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from evals.data.sample_videos import sample_video
from evals.data.synthetic import synthetic_video
from vistream_neuro import ir
from vistream_neuro.deploy import integer_graph
from vistream_neuro.fixed_point import to_fixed_point
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import CALIBRATION_FRAMES, convert_model, normalise, pixel_unit
from vistream_neuro.reference import DenseQANN
from vistream_neuro.streaming import run_stream
from vistream_neuro.video import read_video

MODEL, SIZE = "mobilenetv2", (128, 64)
BIKES_CROP = (256, 8, 128, 256)


def outputs(graph: ir.SpikingGraph, frames: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([r.output for r in run_stream(DenseQANN(graph), frames, ExecutionOptions(mode="reset"))])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(1), b.flatten(1)).mean())


def measure(video: torch.Tensor, method: str, bits: tuple[int, ...]) -> list[dict]:
    frames = normalise(video.double(), MODEL)
    net = convert_model(MODEL, frames, 4, method=method)  # calibrates on the first CALIBRATION_FRAMES
    held_out = frames[CALIBRATION_FRAMES:]
    with torch.no_grad():
        ann = net.ann(held_out)
    batch = [f[None] for f in held_out]
    qann = outputs(net.graph, batch)
    rows = []
    for weight_bits, corrected in itertools.product(bits, (False, True)):
        row = {"calibration": method, "weight_bits": weight_bits, "bias_corrected": corrected,
               "float_qann_cosine_to_ann": cosine(qann, ann)}
        try:
            fx = (integer_graph(net, weight_bits=weight_bits) if corrected
                  else to_fixed_point(net.graph, pixel_unit(MODEL), weight_bits=weight_bits))
        except ir.GraphError as exc:
            row["error"] = str(exc)
        else:
            fixed = fx.decode(outputs(fx.graph, [fx.encode(f) for f in batch]))
            row |= {"fixed_cosine_to_ann": cosine(fixed, ann),
                    "fixed_cosine_to_float_qann": cosine(fixed, qann)}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8, help="held-out frames measured per source")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/fixed_point_cost.json"))
    args = p.parse_args(argv)
    total = CALIBRATION_FRAMES + args.frames
    sources = {
        "synthetic": torch.from_numpy(synthetic_video(total, *SIZE, seed=0)),
        "bikes": torch.from_numpy(read_video(sample_video("bikes"), start=100, frames=total,
                                             crop=BIKES_CROP, size=SIZE)),
    }
    results = {}
    for name, video in sources.items():
        results[name] = []
        for method in ("percentile", "perchannel"):
            for row in measure(video, method, (8, 12, 16)):
                print(name, json.dumps(row), flush=True)
                results[name].append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "model": MODEL, "input_size": list(SIZE), "act_bits": 4, "calibration_frames": CALIBRATION_FRAMES,
        "held_out_frames": args.frames,
        "max_threshold_bits": 16, "sources": {"synthetic": "evals.data.synthetic seed 0",
                                              "bikes": f"bikes.mp4 from frame 100, crop {BIKES_CROP}"},
        "results": results}, indent=2))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
