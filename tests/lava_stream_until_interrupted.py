"""Streams frames through a small Lava network until interrupted, printing ``running`` once the
first frame is through (driven by tests/test_lava_interrupt.py).  It never closes the simulator:
the backend must stop Lava by itself."""

import torch

from tests.test_fixed_point import small_graph
from vistream_neuro.backend import lower
from vistream_neuro.streaming import run_stream


def frames():
    gen = torch.Generator().manual_seed(0)
    while True:
        yield torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=gen)


if __name__ == "__main__":
    for result in run_stream(lower(small_graph("out"), "lava"), frames()):
        if result.index == 0:
            print("running", flush=True)
