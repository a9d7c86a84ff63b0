"""The Lava network behind the simulator protocol, in the delay-free simulation's time frame.

In Lava every synapse delays by one step, so a node at depth ``d`` (synaptic hops from the
input) does in frame step ``t + d`` what the delay-free simulators do in step ``t``.  The host
runs Lava in chunks and hands the streaming driver step ``t`` once the deepest probe has done
it, so quiescence, time steps, SOPs and levels come out as for the other backends; the pipeline
fill (``depth`` steps per frame) is reported in :attr:`LavaSimulator.pipeline_steps`.

A frame that hits ``t_max`` unconverged leaves Lava up to a chunk of zero-input steps ahead of
the delay-free schedule when the next frame enters; outputs still converge to the same values.

Sigma-delta neurons (Lava's ``SigmaDelta``) hold their bias in the activation from the first Lava
step after a reset at every depth, as netx does, so a layer at depth ``d`` may send its bias ``d``
steps before its delay-free step 1.  In the first step after a reset the host therefore hands
over, for graphs with sigma-delta neurons, each probe's sum over the Lava steps up to its step 1:
outputs and quiescence stay exact, while an early bias message and the first input message of a
neuron can merge into one event there.  They are quiet when no sigma-delta (and no ST-BIF) neuron
sent anything in a step of the delay-free schedule, which has nothing in flight.  In ``fixed_pt``
a sigma-delta input beyond Loihi's 24-bit messages raises ``OverflowError`` naming the neuron
(netx's ``Conv`` would clamp it).
"""

from __future__ import annotations

import numpy as np
import torch

from backends.lava.network import LavaNetwork
from neurons.loihi import MESSAGE_LIMIT
from vistream_neuro import ir
from vistream_neuro.torch_graph import payload_for


class LavaSimulator:
    """``schedule``: ``timestep`` or ``layerwise`` (neurons settle within their step; a frame is one
    step of the delay-free schedule, as on the spikingjelly backend)."""

    def __init__(self, graph: ir.SpikingGraph, fixed: bool = False, chunk: int = 16,
                 schedule: str = "timestep") -> None:
        self.graph, self.fixed, self.chunk = graph, fixed, chunk
        self.settles = schedule == "layerwise"
        self.net = LavaNetwork(graph, fixed, chunk, settle=self.settles)
        self._payloads = {n.name: payload_for(n, graph.shapes[n.name], "cpu", torch.float64)
                          for n in graph.neurons}
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
        early = self._bias_pending and bool(self.net.sigma_deltas)  # Lava SigmaDelta biases, see above
        for i, name in enumerate(self.net.probes):
            at = now + self.net.latency[name]
            flat = sum(self._history[s][i] for s in range(self._frame_start, at + 1)) if early \
                else self._history[at][i]
            values[name] = torch.from_numpy(self.net.from_lava(name, flat).copy())[None]
        for old in [s for s in self._history if s <= now]:
            del self._history[old]
        if self.fixed:
            for node in self.graph.sigma_deltas:
                if values[node.input].abs().max() >= MESSAGE_LIMIT:
                    raise OverflowError(f"{node.name}: input current at step {self._t} exceeds Loihi's "
                                        "24-bit messages")
        if self._bias_pending:  # biases live in the neurons (and the host's output) in Lava
            for name, bias in self.net.biases.items():
                shape = (-1, *[1] * (values[name].ndim - 2))
                values[name] = values[name] + torch.as_tensor(bias).reshape(shape)
        self._bias_pending = False
        out = values[self.graph.output]
        self._out = out.clone() if self._out is None else self._out + out
        spiked = False
        for name, level in self._levels.items():
            spikes = torch.round(values[name] / self._payloads[name])  # ternary, or a settled change
            level += spikes
            spiked = spiked or bool(spikes.any())
        self._quiet = not (spiked or any(values[n.name].any() for n in self.graph.sigma_deltas))
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
