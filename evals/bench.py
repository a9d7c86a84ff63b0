"""`make bench`: median milliseconds per frame of the dense ANN, the QANN and the SNN, per device.

For each device (the CPU, and CUDA where torch sees a GPU), model, input size and batch (streams
run together), every network runs the same frames in one process: the float ANN and the dense
integer QANN (the reference the SNN equals), then the SNN on the integer graph (``--precision
fixed``): ``reset`` and ``locc`` in the ``timestep`` schedule on the multi-step path, ``locc`` on the
plain one-step-at-a-time path (batch 1 only: it is the slow baseline), and ``locc`` in the
``layerwise`` schedule (graded and ternary spikes differ only in how they are counted).  Ratios to
the QANN come from the same process.  A long ``locc`` run reports memory at its start and end.

Results go to ``OUT/stream_<device>.json``.  The script needs only torch, SpikingJelly and
deep-sort-realtime (no Lava), so it runs in a plain CUDA Python environment too.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from evals.data.synthetic import synthetic_video
from vistream_neuro import pipeline
from vistream_neuro.backend import lower
from vistream_neuro.deploy import integer_graph
from vistream_neuro.fixed_point import check_float32_exact
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.reference import DenseQANN
from vistream_neuro.streaming import run_stream

MODELS = ("mobilenetv2", "resnet18")
SIZES = ((128, 64), (240, 320))
BATCHES = (1, 16)
# run name -> (streaming mode, schedule, multi-step path)
SNN_RUNS = {"reset": ("reset", "timestep", True), "locc": ("locc", "timestep", True),
            "locc_plain": ("locc", "timestep", False), "layerwise": ("locc", "layerwise", True)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frame_times(items: Iterable, device: torch.device) -> tuple[list, list[float]]:
    """Each item of ``items`` (a lazy stream) and the milliseconds it took, device synchronised."""
    results, times = [], []
    _sync(device)
    start = time.perf_counter()
    for item in items:
        _sync(device)
        now = time.perf_counter()
        results.append(item)
        times.append(1e3 * (now - start))
        start = now
    return results, times


def steady_median(times: list[float]) -> float:
    """Median over frames after the first (warm-up; a LoCC stream's first frame is a full one)."""
    return statistics.median(times[1:] or times)


def streams(model: str, size: tuple[int, int], frames: int, batch: int) -> torch.Tensor:
    """``(frames, batch, 3, H, W)`` normalised inputs: ``batch`` synthetic sequences (seeds 0..)."""
    video = np.stack([synthetic_video(frames, *size, seed=seed) for seed in range(batch)], axis=1)
    flat = pipeline.normalise(torch.from_numpy(video).double().flatten(0, 1), model)
    return flat.unflatten(0, (frames, batch))


def prepared(model: str, size: tuple[int, int], batch: int, frames: int, device: torch.device):
    """The converted network, its integer graph, the float video and its encoded frames on
    ``device``, checked to stay exact in float32."""
    video = streams(model, size, frames, batch)
    net = pipeline.convert_model(model, video[:, 0], act_bits=4)
    fx = integer_graph(net)
    inputs = [fx.encode(f).float().to(device) for f in video]
    check_float32_exact(fx.graph, 2 * max(float(x.abs().max()) for x in inputs))
    return net, fx, video, inputs


def snn_timing(sim, inputs: list[torch.Tensor], options: ExecutionOptions, reference: list[dict],
               qann_ms: float) -> dict:
    """Median ms per frame of ``sim`` on ``inputs``, its ratio to the QANN's ``qann_ms`` and its
    level mismatch against the dense QANN's ``reference`` levels (0 = exact)."""
    results, times = frame_times(run_stream(sim, inputs, options), sim.net.device)
    return {"ms_per_frame": steady_median(times), "over_qann": steady_median(times) / qann_ms,
            "timesteps_mean": statistics.fmean(r.timesteps for r in results[1:] or results),
            "converged": all(r.converged for r in results),
            "level_mismatch": sum(int((r.levels[k] != v).sum())
                                  for r, ref in zip(results, reference, strict=True) for k, v in ref.items())}


def bench_case(model: str, size: tuple[int, int], batch: int, frames: int, device: torch.device,
               runs: dict[str, tuple[str, str, bool]] = SNN_RUNS, t_max: int = 1000) -> dict:
    """One model, size and batch on one device: ms per frame (of the whole batch) of each network."""
    net, fx, video, inputs = prepared(model, size, batch, frames, device)
    row = {"model": model, "input_size": list(size), "batch": batch, "frames": frames,
           "device": device_name(device), "precision": "fixed"}
    ann = net.ann.float().to(device)
    qann = DenseQANN(fx.graph, device, torch.float32)
    reference = [r.levels for r in run_stream(qann, inputs, ExecutionOptions(mode="reset"))]
    with torch.no_grad():
        for name, forward, feed in (("ann", ann, [f.float().to(device) for f in video]),
                                    ("qann", qann.forward, inputs)):
            _, times = frame_times((forward(x) for x in feed), device)
            row[f"{name}_ms_per_frame"] = steady_median(times)
    for name, (mode, schedule, multistep) in runs.items():
        if not multistep and batch > 1:
            continue
        options = ExecutionOptions(mode=mode, schedule=schedule, device=device.type, multistep=multistep,
                                   t_max=t_max)
        sim = lower(fx.graph, "spikingjelly", options, torch.float32)
        row[name] = snn_timing(sim, inputs, options, reference, row["qann_ms_per_frame"])
    return row


def memory_run(model: str, size: tuple[int, int], frames: int, device: torch.device,
               distinct: int = 50) -> dict:
    """Resident memory (and CUDA memory) after the first tenth and after all of a long ``locc``
    stream on the multi-step path (``distinct`` synthetic frames, repeated): growth shows a leak."""
    _, fx, _, inputs = prepared(model, size, 1, distinct, device)
    feed = (inputs[i % distinct if (i // distinct) % 2 == 0 else distinct - 1 - i % distinct]
            for i in range(frames))  # back and forth: no jump at the wrap
    options = ExecutionOptions(device=device.type, t_max=1000)
    sim = lower(fx.graph, "spikingjelly", options, torch.float32)
    marks: dict[str, float] = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for result in tqdm(run_stream(sim, feed, options), total=frames, desc="memory", leave=False):
        if result.index + 1 in (frames // 10, frames):
            key = "first_tenth" if result.index + 1 < frames else "end"
            marks[f"rss_mib_{key}"] = _rss_mib()
            if device.type == "cuda":
                marks[f"cuda_mib_{key}"] = torch.cuda.memory_allocated(device) / 2**20
    if device.type == "cuda":
        marks["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return {"model": model, "input_size": list(size), "frames": frames, "device": device_name(device),
            **marks, "rss_growth_mib": marks["rss_mib_end"] - marks["rss_mib_first_tenth"]}


def _rss_mib() -> float:
    """Current resident set size of this process (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def bench_device(device: torch.device, models, sizes, batches, frames: int, memory_frames: int,
                 progress: Callable = tqdm) -> dict:
    cases = [(m, s, b) for m in models for s in sizes for b in batches]
    rows = [bench_case(m, s, b, frames, device) for m, s, b in progress(cases, desc=f"bench {device.type}")]
    report = {"device": device_name(device), "python": platform.python_version(), "torch": torch.__version__,
              "cases": rows}
    if memory_frames:
        report["memory"] = memory_run("tiny", (64, 64), memory_frames, device)
    return report


def _print(report: dict) -> None:
    print(f"{report['device']}")
    for r in report["cases"]:
        snn = "  ".join(f"{name} {r[name]['ms_per_frame']:8.1f} ms ({r[name]['over_qann']:5.1f}x, "
                        f"{r[name]['timesteps_mean']:5.1f} steps)" for name in SNN_RUNS if name in r)
        print(f"  {r['model']:>11} {'x'.join(map(str, r['input_size'])):>7} batch {r['batch']:>2}  "
              f"ANN {r['ann_ms_per_frame']:7.2f} ms  QANN {r['qann_ms_per_frame']:7.2f} ms  {snn}")
    if "memory" in report:
        m = report["memory"]
        print(f"  memory over {m['frames']} frames: RSS {m['rss_mib_first_tenth']:.0f} -> "
              f"{m['rss_mib_end']:.0f} MiB")


def _csv(kind):
    return lambda text: tuple(kind(v) for v in text.split(","))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results"))
    p.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                   help="all (default): the CPU, and CUDA where a GPU is visible")
    p.add_argument("--models", type=_csv(str), default=MODELS)
    p.add_argument("--sizes", type=_csv(lambda s: tuple(int(v) for v in s.split("x"))), default=SIZES,
                   help="HxW,HxW (default 128x64,240x320)")
    p.add_argument("--batches", type=_csv(int), default=BATCHES)
    p.add_argument("--frames", type=int, default=4, help="frames per case (the first is warm-up)")
    p.add_argument("--memory-frames", type=int, default=1000, help="length of the memory run (0: none)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device here")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [torch.device(d) for d in devices if d == "cpu" or torch.cuda.is_available()]
    args.out.mkdir(parents=True, exist_ok=True)
    for device in devices:
        report = bench_device(device, args.models, args.sizes, args.batches, args.frames, args.memory_frames)
        path = args.out / f"stream_{device.type}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(path)
        _print(report)
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
