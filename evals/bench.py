"""`make bench`: median milliseconds per frame of ANN, QANN, `reset` SNN and `locc` SNN.

All four run on the same frames in one process; results go to ``bench_results/stream.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from backends.registry import lower
from evals.synthetic import synthetic_video
from vistream_neuro import models
from vistream_neuro.convert import to_spiking_graph
from vistream_neuro.quant import calibrate, quantize_activations
from vistream_neuro.streaming import run_stream


def _timed_stream(sim, frames, mode, t_max):
    times, steps = [], []
    stream = run_stream(sim, frames, mode, t_max)
    while True:
        start = time.perf_counter()
        result = next(stream, None)
        if result is None:
            return times, steps
        times.append(1e3 * (time.perf_counter() - start))
        steps.append(result.timesteps)


def bench_stream(model_name: str, size: tuple[int, int], frames: int, precision: str,
                 backend: str, seed: int = 0) -> dict:
    dtype = {"float32": torch.float32, "float64": torch.float64}[precision]
    h, w = size
    video = torch.from_numpy(synthetic_video(frames, h, w, seed=seed)).to(dtype)
    ann = models.build(model_name, seed=seed).to(dtype)
    qann = quantize_activations(models.build(model_name, seed=seed), 4).to(dtype)
    calibrate(qann, video[:8])
    graph = to_spiking_graph(qann, (3, h, w))
    batch = [f[None] for f in video]
    result = {"model": model_name, "input_size": [h, w], "frames": frames,
              "precision": precision, "backend": backend, "threads": torch.get_num_threads()}
    with torch.no_grad():
        for name, net in (("ann", ann), ("qann", qann)):
            ms = []
            for frame in batch:
                start = time.perf_counter()
                net(frame)
                ms.append(1e3 * (time.perf_counter() - start))
            result[f"{name}_ms_per_frame_median"] = statistics.median(ms)
    for mode in ("reset", "locc"):
        ms, steps = _timed_stream(lower(graph, backend, dtype=dtype), batch, mode, 512)
        result[f"{mode}_ms_per_frame_median"] = statistics.median(ms)
        result[f"{mode}_timesteps_mean"] = statistics.fmean(steps)
        result[f"{mode}_timesteps_max"] = max(steps)
    result["locc_over_qann_time"] = result["locc_ms_per_frame_median"] / result["qann_ms_per_frame_median"]
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results"))
    p.add_argument("--frames", type=int, default=20)
    args = p.parse_args(argv)
    results = [bench_stream("tiny", (64, 64), args.frames, precision, "spikingjelly")
               for precision in ("float32", "float64")]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "stream.json"
    path.write_text(json.dumps(results, indent=2))
    for r in results:
        print(json.dumps(r))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
