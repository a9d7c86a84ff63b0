"""Lava CPU emulation cost: milliseconds per time step of our ST-BIF process vs Lava's stock LIF,
and the wall time of a whole network (MobileNetV2, real weights, a 64x32 crop) against SpikingJelly.

Neurons run behind the same source and Dense (or Conv) connection, same shape, input and tag; the
network runs the same frames in ``locc`` on both backends.  Results go to
``bench_results/lava.json``.  Medians over repeats; the machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from backends.lava.timing import compare_neurons
from evals.data.synthetic import synthetic_video
from vistream_neuro.backend import lower
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import convert_model, normalise
from vistream_neuro.streaming import run_stream


def network_run(model: str, size: tuple[int, int], frames: int) -> dict:
    """Wall time of ``frames`` locc frames on Lava (floating_pt) and SpikingJelly, same frames."""
    video = normalise(torch.from_numpy(synthetic_video(frames, *size, seed=3)).double(), model)
    graph = convert_model(model, video, act_bits=4, seed=3).graph
    batch = [f[None] for f in video]
    result = {"network": model, "input_size": list(size), "frames": frames, "mode": "locc"}
    options = ExecutionOptions(precision="float64", t_max=1000)
    for backend in ("spikingjelly", "lava"):
        sim = lower(graph, backend, options)
        start = time.perf_counter()
        steps = sum(r.timesteps for r in run_stream(sim, batch, options))
        result[f"{backend}_s"] = time.perf_counter() - start
        result["timesteps"] = steps
        if backend == "lava":
            result["lava_steps_run"] = sim.net.steps_run
            result["lava_ms_per_step"] = 1e3 * result["lava_s"] / sim.net.steps_run
        sim.close()
    result["lava_over_spikingjelly"] = result["lava_s"] / result["spikingjelly_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench_lava", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results"))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frames", type=int, default=5, help="frames of the whole-network run")
    args = p.parse_args(argv)
    cases = [((1024,), False), ((16, 16, 16), True)]
    results = [compare_neurons(shape, conv, args.steps, args.repeats, tag)
               for shape, conv in cases for tag in ("floating_pt", "fixed_pt")]
    for r in results:
        print(f"{r['layer']:>8} {str(r['shape']):>14} {r['tag']:>11}  "
              f"LIF {r['lif_ms_per_step']:.3f} ms/step  ST-BIF {r['stbif_ms_per_step']:.3f} ms/step  "
              f"ratio {r['stbif_over_lif']:.2f}")
    net = network_run("mobilenetv2", (64, 32), args.frames)
    print(f"mobilenetv2 64x32, {net['frames']} locc frames: Lava {net['lava_s']:.1f} s "
          f"({net['lava_steps_run']} Lava steps, {net['lava_ms_per_step']:.0f} ms/step), "
          f"SpikingJelly {net['spikingjelly_s']:.1f} s ({net['timesteps']} steps)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lava.json").write_text(json.dumps({"neurons": results, "network": net}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
