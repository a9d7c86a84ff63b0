"""CUDA check of the integer path: the fixed-point graph in float32 on the GPU (TF32 off) reaches
the same levels as the float64 dense QANN on the CPU, frame by frame, in both schedules, and how
long a frame takes there next to the dense QANN on the same GPU (medians over frames).

    python benchmarks/cuda_exactness.py OUT.json   # needs a CUDA device
"""

from __future__ import annotations

import json
import statistics
import sys

import torch

from evals.bench import frame_times, steady_median
from evals.data.synthetic import synthetic_video
from vistream_neuro import pipeline
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.deploy import integer_graph
from vistream_neuro.fixed_point import check_float32_exact
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.reference import DenseQANN
from vistream_neuro.streaming import run_stream

CASES = (("tiny", (64, 64), 30), ("mobilenetv2", (128, 64), 16), ("mobilenetv2", (240, 320), 8),
         ("resnet18", (128, 64), 16), ("resnet18", (240, 320), 8))


def case(model: str, size: tuple[int, int], frames: int) -> dict:
    video = pipeline.normalise(torch.from_numpy(synthetic_video(frames, *size, seed=0)).double(), model)
    fx = integer_graph(pipeline.convert_model(model, video, 4))
    inputs = [fx.encode(f[None]) for f in video]
    check_float32_exact(fx.graph, 2 * max(float(x.abs().max()) for x in inputs))
    reference = list(run_stream(lower(fx.graph, "torch"), inputs, ExecutionOptions(mode="reset")))
    gpu = [x.cuda().float() for x in inputs]
    dense = DenseQANN(fx.graph, "cuda", torch.float32)
    cuda = torch.device("cuda")
    _, qann = frame_times((dense.forward(x) for x in gpu), cuda)
    row = {"model": model, "input": f"{size[0]}x{size[1]}", "frames": frames,
           "device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "qann_ms_per_frame": steady_median(qann)}
    for schedule in ("timestep", "layerwise"):
        options = ExecutionOptions(schedule=schedule, device="cuda")
        sim = lower(fx.graph, "spikingjelly", options, torch.float32)
        results, times = frame_times(run_stream(sim, gpu, options, OpCounter(fx.graph, options)), cuda)
        mismatch = sum(int((res.levels[k].cpu().double() != v).sum())
                       for ref, res in zip(reference, results, strict=True) for k, v in ref.levels.items())
        ms = steady_median(times)
        row[schedule] = {"level_mismatch": mismatch, "ms_per_frame": ms,
                         "ratio_to_qann": ms / row["qann_ms_per_frame"],
                         "timesteps_mean": statistics.mean(r.timesteps for r in results),
                         "sops_per_frame": statistics.mean(r.ops.total_sops for r in results[1:])}
    return row


def main(path: str) -> int:
    if not torch.cuda.is_available():
        print("cuda_exactness: no CUDA device here", file=sys.stderr)
        return 2
    rows = []
    for model, size, frames in CASES:
        rows.append(case(model, size, frames))
        print(json.dumps(rows[-1]), flush=True)
    with open(path, "w") as f:
        json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
