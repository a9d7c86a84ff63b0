"""The dense QANN evaluated from the spiking graph: the reference every simulated run must equal.

As a :class:`~vistream_neuro.simulator.Simulator` it settles in one step: it integrates its input
current and evaluates the QANN on the total, so ``reset`` and ``locc`` streaming both give
``QANN(x_t)``.  Neurons with hysteresis remember their levels from frame to frame until a reset
(``locc`` then carries them).  The integer graph's bias correction evaluates it too
(:func:`vistream_neuro.fixed_point.correct_bias`).
"""

from __future__ import annotations

import torch

from neurons.stbif import initial_state, quantize, stbif_settle
from vistream_neuro import ir
from vistream_neuro.torch_graph import TorchGraph, max_pool, payload_for, scale_for


def _activation(node: ir.SigmaDelta, x: torch.Tensor) -> torch.Tensor:
    """What a sigma-delta neuron approximates: its activation, without quantiser."""
    return torch.clamp(x, min=0) if node.relu else x


class DenseQANN:
    def __init__(self, graph: ir.SpikingGraph, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float64) -> None:
        device = torch.device(device)
        self.graph = graph
        self.net = TorchGraph(graph, device, dtype)
        self._scales = {n.name: scale_for(n, graph.shapes[n.name], device, dtype) for n in graph.neurons}
        self._payloads = {n.name: payload_for(n, graph.shapes[n.name], device, dtype) for n in graph.neurons}
        self._bounds = {
            n.name: (torch.tensor(float(n.pos_max), dtype=dtype, device=device),
                     torch.tensor(float(n.neg_min), dtype=dtype, device=device))
            for n in graph.neurons
        }
        self.reset()

    def reset(self) -> None:
        self._x: torch.Tensor | None = None
        self._values: dict[str, torch.Tensor] = {}
        self._levels: dict[str, torch.Tensor] = {}  # of neurons with hysteresis, from the last forward

    @torch.no_grad()
    def forward(self, x: torch.Tensor, hook=None) -> dict[str, torch.Tensor]:
        """All node values of the QANN for input ``x`` (``hook``: see :meth:`TorchGraph.run`)."""
        handlers = {ir.Neuron: self._quantize, ir.SigmaDelta: _activation, ir.MaxPool: max_pool}
        return self.net.run(x.to(self.net.device, self.net.dtype), handlers, with_bias=True, hook=hook)

    def _quantize(self, node: ir.Neuron, x: torch.Tensor) -> torch.Tensor:
        scale, bounds, payload = self._scales[node.name], self._bounds[node.name], self._payloads[node.name]
        if not node.hysteresis:
            return quantize(x, scale, *bounds, payload)
        previous = self._levels.get(node.name)
        if previous is None or previous.shape != x.shape:  # the first frame rounds to nearest
            q, previous = initial_state(x)
            band = 0.0
        else:
            q, band = 0.5 - previous, node.hysteresis
        # the neuron's rule on the residual a neuron at level `previous` holds with total input x
        level = stbif_settle(x, q, previous, scale, *bounds, band).acc
        self._levels[node.name] = level
        return level * payload

    def step(self, current: torch.Tensor | None) -> None:
        if current is not None:
            current = current.to(self.net.device, self.net.dtype)
            self._x = current if self._x is None else self._x + current
            self._values = self.forward(self._x)
        elif self._x is None:
            raise RuntimeError("the dense QANN needs an input at its first step after reset")

    def is_quiet(self) -> bool:
        return True

    def output(self) -> torch.Tensor:
        return self._values[self.net.graph.output]

    def levels(self) -> dict[str, torch.Tensor]:
        return {name: torch.round(self._values[name] / payload) for name, payload in self._payloads.items()}

    def step_values(self) -> dict[str, torch.Tensor]:
        return self._values

    def close(self) -> None:
        """Nothing lives outside this process."""


def dense_values(graph: ir.SpikingGraph, x: torch.Tensor, hook=None) -> dict[str, torch.Tensor]:
    """All node values of the QANN of ``graph`` for input ``x``, on the CPU in float64."""
    return DenseQANN(graph).forward(x, hook)
