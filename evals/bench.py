"""`make bench`: median milliseconds per frame of ANN, QANN, `reset` SNN and `locc` SNN.

All four run on the same frames in one process (CPU); results go to ``bench_results/stream.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from backends.registry import lower
from evals.stream import PRECISIONS
from evals.synthetic import synthetic_video
from vistream_neuro.accounting import OpCounter
from vistream_neuro.pipeline import convert_model, normalise
from vistream_neuro.streaming import run_stream

CASES = [("mobilenetv2", (128, 64)), ("tiny", (64, 64))]


def _median_ms(fn, items) -> float:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def _stream_timings(sim, frames, mode, t_max, counter=None):
    times, steps = [], []
    stream = run_stream(sim, frames, mode, t_max, counter)
    while True:
        start = time.perf_counter()
        result = next(stream, None)
        if result is None:
            return times, steps
        times.append(1e3 * (time.perf_counter() - start))
        steps.append(result.timesteps)


def bench_stream(model: str, size: tuple[int, int], frames: int, precision: str,
                 backend: str = "spikingjelly", seed: int = 0) -> dict:
    dtype = PRECISIONS[precision]
    h, w = size
    video = normalise(torch.from_numpy(synthetic_video(frames, h, w, seed=seed)).double(), model)
    net = convert_model(model, video, act_bits=4, seed=seed)
    batch = [f[None].to(dtype) for f in video]
    result = {"model": model, "input_size": [h, w], "frames": frames, "precision": precision,
              "backend": backend, "device": "cpu", "threads": torch.get_num_threads()}
    with torch.no_grad():
        for name, module in (("ann", net.ann), ("qann", net.qann)):
            module = copy.deepcopy(module).to(dtype)
            module(batch[0])  # warm-up
            result[f"{name}_ms_per_frame_median"] = _median_ms(module, batch)
    for mode in ("reset", "locc"):
        ms, steps = _stream_timings(lower(net.graph, backend, dtype=dtype), batch, mode, 1000)
        result[f"{mode}_ms_per_frame_median"] = statistics.median(ms[1:] or ms)
        result[f"{mode}_timesteps_mean"] = statistics.fmean(steps)
        result[f"{mode}_timesteps_max"] = max(steps)
    counted, _ = _stream_timings(lower(net.graph, backend, dtype=dtype), batch, "locc", 1000,
                                 OpCounter(net.graph))
    result["locc_counted_ms_per_frame_median"] = statistics.median(counted[1:] or counted)
    result["counting_overhead"] = (result["locc_counted_ms_per_frame_median"]
                                   / result["locc_ms_per_frame_median"] - 1)
    qann_ms = result["qann_ms_per_frame_median"]
    result["locc_over_qann_time"] = result["locc_ms_per_frame_median"] / qann_ms
    result["reset_over_qann_time"] = result["reset_ms_per_frame_median"] / qann_ms
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results"))
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args(argv)
    runs = [(m, s, prec) for m, s in CASES for prec in ("float32", "float64")]
    results = [bench_stream(m, s, args.frames, prec) for m, s, prec in tqdm(runs, desc="bench")]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "stream.json"
    path.write_text(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                                "torch": torch.__version__, "results": results}, indent=2))
    for r in results:
        print(f"{r['model']:>12} {r['precision']:>8}  ANN {r['ann_ms_per_frame_median']:8.2f} ms  "
              f"QANN {r['qann_ms_per_frame_median']:8.2f} ms  reset {r['reset_ms_per_frame_median']:9.1f} ms "
              f"({r['reset_timesteps_mean']:.1f} steps)  locc {r['locc_ms_per_frame_median']:9.1f} ms "
              f"({r['locc_timesteps_mean']:.1f} steps)  locc/QANN {r['locc_over_qann_time']:.1f}x  "
              f"counting +{100 * r['counting_overhead']:.0f}%")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
