"""Per-step cost of Lava processes in CPU emulation: our ST-BIF process vs Lava's stock LIF.

Lava is imported only in backends and neurons; the CLI lives in ``evals/bench_lava.py``.
"""

from __future__ import annotations

import statistics
import time

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


def compare_neurons(shape, conv: bool, steps: int, repeats: int, tag: str) -> dict:
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
