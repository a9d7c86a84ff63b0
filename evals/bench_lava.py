"""Lava CPU emulation cost: milliseconds per time step of our ST-BIF process vs Lava's stock LIF.

Both run behind the same source and Dense (or Conv) connection, same shape, same input, same tag;
results go to ``bench_results/lava.json``.  Median over repeats; the machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from neurons.lava_compat import import_lava, run_checked


def _time_per_step(make_neuron, shape, steps: int, tag: str, conv: bool) -> float:
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer as Source

    rng = np.random.default_rng(0)
    n = int(np.prod(shape))
    if conv:  # Lava's conv layout: (X, Y, C); weights (C_out, kx, ky, C_in)
        source = Source(data=(rng.random((*shape, steps)) < 0.1).astype(int))
        synapse = Conv(weight=rng.integers(-8, 8, size=(shape[2], 3, 3, shape[2])),
                       input_shape=shape, padding=1)
        neuron = make_neuron(synapse.output_shape)
    else:
        source = Source(data=(rng.random((n, steps)) < 0.1).astype(int))
        synapse = Dense(weights=rng.integers(-8, 8, size=(n, n)))
        neuron = make_neuron((n,))
    source.s_out.connect(synapse.s_in)
    synapse.a_out.connect(neuron.a_in)
    try:
        run_checked(neuron, RunSteps(5), Loihi2SimCfg(select_tag=tag))  # warm-up: compile, spawn
        start = time.perf_counter()
        run_checked(neuron, RunSteps(steps), Loihi2SimCfg(select_tag=tag))
        return 1e3 * (time.perf_counter() - start) / steps
    finally:
        neuron.stop()


def bench(shape, conv: bool, steps: int, repeats: int, tag: str) -> dict:
    import_lava()
    from lava.proc.lif.process import LIF

    from neurons.lava_stbif import STBIF

    threshold = 64 if tag == "fixed_pt" else 1.0
    makers = {
        "lif": lambda s: LIF(shape=s, du=4095 if tag == "fixed_pt" else 1.0, dv=0, vth=10),
        "stbif": lambda s: STBIF(shape=s, scale=threshold, pos_max=7, neg_min=-8),
    }
    result = {"layer": "conv3x3" if conv else "dense", "shape": list(shape), "tag": tag, "steps": steps}
    for name, make in makers.items():
        result[f"{name}_ms_per_step"] = statistics.median(
            _time_per_step(make, shape, steps, tag, conv) for _ in range(repeats))
    result["stbif_over_lif"] = result["stbif_ms_per_step"] / result["lif_ms_per_step"]
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench_lava", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results"))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    cases = [((1024,), False), ((16, 16, 16), True)]
    results = [bench(shape, conv, args.steps, args.repeats, tag)
               for shape, conv in cases for tag in ("floating_pt", "fixed_pt")]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lava.json").write_text(json.dumps(results, indent=2))
    for r in results:
        print(f"{r['layer']:>8} {str(r['shape']):>14} {r['tag']:>11}  "
              f"LIF {r['lif_ms_per_step']:.3f} ms/step  ST-BIF {r['stbif_ms_per_step']:.3f} ms/step  "
              f"ratio {r['stbif_over_lif']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
