"""``spikingjelly`` backend: the graph's ST-BIF (or sigma-delta) neurons on SpikingJelly (CPU or CUDA)."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional
from torch import nn

from backends.torch_graph import TorchGraph, max_pool, payload_for, per_channel, scale_for
from neurons.sj_sigma_delta import SigmaDeltaNeuron
from neurons.sj_stbif import STBIFNeuron
from vistream_neuro import ir
from vistream_neuro.accounting import SCHEDULES


class SpikingJellySimulator:
    """``schedule``: ``timestep`` (every layer advances one step together, ViStream) or
    ``layerwise`` (in one step each layer takes all its input and fires until quiet, in graph
    order: every neuron sends exactly its change of level, and a frame settles in one step)."""

    def __init__(self, graph: ir.SpikingGraph, device: torch.device, dtype: torch.dtype,
                 schedule: str = "timestep") -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
        self.schedule = schedule
        self.net = TorchGraph(graph, device, dtype)
        self.neurons = nn.ModuleDict({
            n.name: STBIFNeuron(scale_for(n, graph.shapes[n.name], "cpu", torch.float64),
                                n.pos_max, n.neg_min, step_mode="s",
                                payload=payload_for(n, graph.shapes[n.name], "cpu", torch.float64))
            for n in graph.neurons
        } | {
            n.name: SigmaDeltaNeuron(per_channel(n.threshold, graph.shapes[n.name], "cpu", torch.float64),
                                     n.relu)
            for n in graph.sigma_deltas
        }).to(device)
        self.reset()

    def reset(self) -> None:
        functional.reset_net(self.neurons)
        self._pool_in: dict[str, torch.Tensor] = {}
        self._pool_out: dict[str, torch.Tensor] = {}
        self._bias_pending = True
        self._out: torch.Tensor | None = None
        self._values: dict[str, torch.Tensor] = {}
        self._zero: torch.Tensor | None = None

    def _fire(self, node: ir.Neuron | ir.SigmaDelta, current: torch.Tensor) -> torch.Tensor:
        if self.schedule == "layerwise" and isinstance(node, ir.Neuron):
            return self.neurons[node.name].settle(current)
        return self.neurons[node.name](current)

    def _max_pool(self, node: ir.MaxPool, current: torch.Tensor) -> torch.Tensor:
        """Pool the accumulated input; emit the change of the pooled value."""
        total = self._pool_in.get(node.name, 0) + current
        pooled = max_pool(node, total)
        change = pooled - self._pool_out[node.name] if node.name in self._pool_out else pooled
        self._pool_in[node.name], self._pool_out[node.name] = total, pooled
        return change

    @torch.no_grad()
    def step(self, current: torch.Tensor | None) -> None:
        if current is None:
            if self._zero is None:
                raise RuntimeError("the first step after reset needs an input to fix the shape")
            current = self._zero
        else:
            current = current.to(self.net.device, self.net.dtype)
            self._zero = torch.zeros_like(current)
        handlers = {ir.Neuron: self._fire, ir.SigmaDelta: self._fire, ir.MaxPool: self._max_pool}
        values = self.net.run(current, handlers, with_bias=self._bias_pending)
        self._bias_pending = False
        self._values = values
        out = values[self.net.graph.output]
        self._out = out.clone() if self._out is None else self._out + out

    def is_quiet(self) -> bool:
        if self.schedule == "layerwise" and not self.net.graph.sigma_deltas:
            return True  # every layer fired until quiet within the step
        return bool(torch.stack([n.quiet for n in self.neurons.values()]).all())

    def output(self) -> torch.Tensor:
        if self._out is None:
            raise RuntimeError("no output before the first step")
        return self._out

    def levels(self) -> dict[str, torch.Tensor]:
        return {name: n.acc for name, n in self.neurons.items() if isinstance(n, STBIFNeuron)}

    def step_values(self) -> dict[str, torch.Tensor]:
        return self._values

    def close(self) -> None:
        """Nothing lives outside this process."""


def lower(graph: ir.SpikingGraph, *, device: torch.device, dtype: torch.dtype, fixed_point: bool = False,
          schedule: str = "timestep"):
    return SpikingJellySimulator(graph, device, dtype, schedule)
