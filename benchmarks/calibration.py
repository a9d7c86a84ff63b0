"""QANN quality per calibration method: MobileNetV2 (real weights), 4-bit activations, 128x64.

For each method: cosine of the QANN's final features to the float network's (all frames, and the
held-out frames after the calibration ones), calibration time, and the LoCC SNN's time steps and
SOPs per frame (integer graph, as runs use it); on the synthetic sequence and on bikes.mp4 from
frame 100 (its held-out frames cross a cut to a new scene) and from frame 137 (all in one shot).
Writes ``benchmarks/results/calibration/calibration.json``.

    python benchmarks/calibration.py [--calibration-frames 32 --held-out 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from evals.data.sample_videos import sample_video
from evals.data.synthetic import synthetic_video
from vistream_neuro import calibration
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.deploy import integer_graph
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import CALIBRATION_FRAMES, convert_model, normalise
from vistream_neuro.streaming import run_stream
from vistream_neuro.video import read_video

MODEL, SIZE, BITS = "mobilenetv2", (128, 64), 4


BIKES_STARTS = {"bikes": 100, "bikes_one_shot": 137}  # bikes.mp4 cuts at 137: the second stays in a shot


def sources(frames: int) -> dict[str, torch.Tensor]:
    bikes = {name: read_video(sample_video("bikes"), start=start, frames=frames, crop=(256, 8, 128, 256),
                              size=SIZE) for name, start in BIKES_STARTS.items()}
    return {"synthetic": torch.from_numpy(synthetic_video(frames, *SIZE, seed=0)),
            **{name: torch.from_numpy(video) for name, video in bikes.items()}}


def measure(video: torch.Tensor, method: str, snn_frames: int, count: int) -> dict:
    frames = normalise(video.double(), MODEL)
    start = time.perf_counter()
    net = convert_model(MODEL, frames, BITS, seed=0, method=method, count=count)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        ann = net.ann(frames)
        cos = F.cosine_similarity(ann, net.qann(frames))
    fx = integer_graph(net)
    held_out = [fx.encode(f[None]) for f in frames[count:]]
    dense = run_stream(lower(fx.graph, "torch"), held_out, ExecutionOptions(mode="reset"))
    integer = torch.cat([fx.decode(r.output) for r in dense])
    options = ExecutionOptions(precision="fixed", t_max=1000)
    sim = lower(fx.graph, "spikingjelly", options, torch.float64)
    runs = list(run_stream(sim, held_out[:snn_frames], options, OpCounter(fx.graph, options)))
    return {"method": method, "convert_seconds": round(seconds, 1),
            "cosine_all": float(cos.mean()), "cosine_held_out": float(cos[count:].mean()),
            "cosine_min": float(cos.min()),
            "integer_cosine_held_out": float(F.cosine_similarity(ann[count:], integer.flatten(1)).mean()),
            "snn_frames": len(runs), "locc_timesteps_mean": statistics.fmean(r.timesteps for r in runs),
            "locc_timesteps_max": max(r.timesteps for r in runs),
            "locc_sops_per_frame": statistics.fmean(r.ops.total_sops for r in runs),
            "locc_sops_per_frame_steady": statistics.fmean(r.ops.total_sops for r in runs[1:]),
            "converged": all(r.converged for r in runs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibration-frames", type=int, default=4 * CALIBRATION_FRAMES,
                   help="frames that calibrate (evals.calibrate's default)")
    p.add_argument("--held-out", type=int, default=8, help="frames measured after the calibration ones")
    p.add_argument("--snn-frames", type=int, default=6, help="held-out frames streamed through the LoCC SNN")
    p.add_argument("--methods", nargs="+", default=list(calibration.METHODS))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/calibration"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "calibration.json"
    results = []
    for name, video in sources(args.calibration_frames + args.held_out).items():
        for method in args.methods:
            row = {"source": name, **measure(video, method, args.snn_frames, args.calibration_frames)}
            print(json.dumps(row), flush=True)
            results.append(row)
            path.write_text(json.dumps({  # after every row, so a cut-short run keeps what it measured
                "model": MODEL, "input_size": list(SIZE), "act_bits": BITS,
                "calibration_frames": args.calibration_frames, "held_out_frames": args.held_out,
                "snn_frames": args.snn_frames,
                "bikes": "bikes.mp4 from frame 100, crop 256,8,128,256 (held-out frames cross a cut at 137)",
                "bikes_one_shot": "bikes.mp4 from frame 137, same crop (all frames in the shot 137-186)",
                "synthetic": "evals.data.synthetic.synthetic_video(seed=0)",
                "distill": vars(calibration.DistillConfig()), "threads": torch.get_num_threads(),
                "machine": platform.machine(), "results": results}, indent=2))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
