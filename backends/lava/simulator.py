"""The Lava network behind the simulator protocol, in the delay-free simulation's time frame.

In Lava every synapse delays by one step, so a node at depth ``d`` (synaptic hops from the
input) does in frame step ``t + d`` what the delay-free simulators do in step ``t``.  The host
runs Lava in chunks and hands the streaming driver step ``t`` once the deepest probe has done
it, so quiescence, time steps, SOPs and levels come out as for the other backends; the pipeline
fill (``depth`` steps per frame) is reported in :attr:`LavaSimulator.pipeline_steps`.

A frame that hits ``t_max`` unconverged leaves Lava up to a chunk of zero-input steps ahead of
the delay-free schedule when the next frame enters; outputs still converge to the same values.
"""

from __future__ import annotations

import numpy as np
import torch

from backends.lava.network import LavaNetwork
from vistream_neuro import ir


class LavaSimulator:
    def __init__(self, graph: ir.SpikingGraph, fixed: bool = False, chunk: int = 16) -> None:
        self.graph, self.fixed, self.chunk = graph, fixed, chunk
        self.net = LavaNetwork(graph, fixed, chunk)
        self._payloads = {n.name: n.output_scale for n in graph.neurons}
        self._history: dict[int, list[np.ndarray]] = {}
        self.reset()

    @property
    def pipeline_steps(self) -> int:
        """Lava steps a frame takes beyond the delay-free schedule (the network's depth)."""
        return self.net.depth

    def reset(self) -> None:
        self.net.reset()
        self._frame_start: int | None = None
        self._t = 0
        self._bias_pending = True
        self._levels = {n.name: torch.zeros((1, *self.graph.shapes[n.name]), dtype=torch.float64)
                        for n in self.graph.neurons}
        self._out: torch.Tensor | None = None
        self._values: dict[str, torch.Tensor] = {}
        self._quiet = True

    def _sample(self, current: torch.Tensor) -> np.ndarray:
        if current.shape[0] != 1:
            raise ValueError(f"the Lava backend simulates one stream; got a batch of {current.shape[0]}")
        sample = current[0].detach().cpu().double().numpy()
        if self.fixed and np.any(sample != np.round(sample)):
            raise ValueError("fixed_pt input must be integer (encode frames with the graph's input unit)")
        return sample

    def step(self, current: torch.Tensor | None) -> None:
        if current is not None:
            self.net.inject(self._sample(current))
            self._frame_start, self._t = self.net.steps_run + 1, 0
            self._input = current.detach().cpu().double()
        elif self._frame_start is None:
            raise RuntimeError("the first step after reset needs an input")
        self._t += 1
        now = self._frame_start - 1 + self._t
        while self.net.steps_run < now + self.net.depth:
            steps = min(self.net.max_run, max(now + self.net.depth - self.net.steps_run, self.chunk))
            first = self.net.steps_run + 1
            for i, data in enumerate(self.net.run(steps)):
                self._history[first + i] = data
        values = {ir.INPUT: self._input if self._t == 1 else torch.zeros_like(self._input)}
        for i, name in enumerate(self.net.probes):
            flat = self._history[now + self.net.latency[name]][i]
            values[name] = torch.from_numpy(self.net.from_lava(name, flat).copy())[None]
        for old in [s for s in self._history if s <= now]:
            del self._history[old]
        if self._bias_pending:  # biases live in the neurons (and the host's output) in Lava
            for name, bias in self.net.biases.items():
                shape = (-1, *[1] * (values[name].ndim - 2))
                values[name] = values[name] + torch.as_tensor(bias).reshape(shape)
        self._bias_pending = False
        out = values[self.graph.output]
        self._out = out.clone() if self._out is None else self._out + out
        spiked = False
        for name, level in self._levels.items():
            spikes = torch.sign(values[name])
            level += spikes
            spiked = spiked or bool(spikes.any())
        self._quiet = not spiked
        self._values = values

    def is_quiet(self) -> bool:
        return self._quiet

    def output(self) -> torch.Tensor:
        if self._out is None:
            raise RuntimeError("no output before the first step")
        return self._out

    def levels(self) -> dict[str, torch.Tensor]:
        return self._levels

    def step_values(self) -> dict[str, torch.Tensor]:
        return self._values

    def close(self) -> None:
        """Stop the Lava runtime (its processes)."""
        self.net.close()
