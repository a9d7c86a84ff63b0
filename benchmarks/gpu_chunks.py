"""How the multi-step path's chunk length and quiet-layer skipping trade off on one device: the
``timestep`` LoCC stream's median ms per frame for each setting, next to the dense QANN, with the
level mismatch of every run (0 = exact).  The defaults of ``MultiStepSimulator`` come from this.

    python benchmarks/gpu_chunks.py OUT.json [--device cuda] [--frames 6]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from backends.spikingjelly_backend import MultiStepSimulator
from evals.bench import device_name, frame_times, prepared, snn_timing, steady_median
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.reference import DenseQANN
from vistream_neuro.streaming import run_stream

CASES = (("mobilenetv2", (128, 64), 1), ("mobilenetv2", (240, 320), 1), ("mobilenetv2", (240, 320), 16),
         ("resnet18", (240, 320), 16))
SETTINGS = ((8, True), (16, True), (32, True), (8, False), (32, False), (64, False))  # (chunk, skip_quiet)


def sweep(model: str, size: tuple[int, int], batch: int, frames: int, device: torch.device) -> dict:
    _, fx, _, inputs = prepared(model, size, batch, frames, device)
    qann = DenseQANN(fx.graph, device, torch.float32)
    reference = [r.levels for r in run_stream(qann, inputs, ExecutionOptions(mode="reset"))]
    with torch.no_grad():
        qann_ms = steady_median(frame_times((qann.forward(x) for x in inputs), device)[1])
    runs = {}
    for chunk, skip in SETTINGS:
        name = f"chunk{chunk}_{'skip' if skip else 'noskip'}"
        sim = MultiStepSimulator(fx.graph, device, torch.float32, chunk, skip)
        try:
            runs[name] = snn_timing(sim, inputs, ExecutionOptions(device=device.type, t_max=1000), reference,
                                    qann_ms)
        except torch.OutOfMemoryError as error:  # long chunks of big batches may not fit
            runs[name] = {"error": str(error).splitlines()[0]}
        del sim
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"model": model, "input_size": list(size), "batch": batch, "frames": frames,
            "qann_ms_per_frame": qann_ms, "runs": runs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--frames", type=int, default=6)
    args = p.parse_args()
    device = torch.device(args.device)
    rows = [sweep(*case, args.frames, device) for case in tqdm(CASES, desc="chunk sweep")]
    args.out.write_text(json.dumps({"device": device_name(device), "torch": torch.__version__,
                                    "cases": rows}, indent=2))
    for row in rows:
        print(row["model"], row["input_size"], "batch", row["batch"],
              f"QANN {row['qann_ms_per_frame']:.2f} ms",
              "  ".join(f"{k} {v['over_qann']:.1f}x/{v['level_mismatch']}" if "error" not in v else f"{k} OOM"
                        for k, v in row["runs"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
