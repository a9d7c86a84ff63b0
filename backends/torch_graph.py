"""Evaluates a spiking graph with torch ops; stateful nodes and the bias policy come from the backend.

Both the dense QANN reference and the SpikingJelly SNN walk the same stateless operators, so
they live here once.  Nodes whose meaning differs between a QANN and an SNN (neurons, max
pooling) are evaluated by handlers the backend passes in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from vistream_neuro import ir


def as_tensor(array: np.ndarray | None, device, dtype) -> torch.Tensor | None:
    return None if array is None else torch.as_tensor(array, dtype=dtype, device=device)


def per_channel(array: np.ndarray, shape: ir.Shape, device, dtype) -> torch.Tensor:
    """A scalar or per-channel array shaped to broadcast over a ``(N, *shape)`` batch."""
    tensor = as_tensor(array, device, dtype)
    if tensor.ndim == 1:
        tensor = tensor.reshape(-1, *([1] * (len(shape) - 1)))
    return tensor


def scale_for(neuron: ir.Neuron, shape: ir.Shape, device, dtype) -> torch.Tensor:
    """The neuron's scale (threshold) shaped to broadcast over a ``(N, *shape)`` batch."""
    return per_channel(neuron.scale, shape, device, dtype)


def payload_for(neuron: ir.Neuron, shape: ir.Shape, device, dtype) -> torch.Tensor:
    """What one released quantum of the neuron sends on, shaped like :func:`scale_for`."""
    return per_channel(neuron.output_scale, shape, device, dtype)


Handlers = dict[type, Callable[[ir.Node, torch.Tensor], torch.Tensor]]


def max_pool(node: ir.MaxPool, x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, node.kernel, node.stride, node.padding)


class TorchGraph:
    """Linear operators of the graph as torch tensors on one device and dtype."""

    def __init__(self, graph: ir.SpikingGraph, device: torch.device, dtype: torch.dtype) -> None:
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but torch sees no CUDA device here")
        if device.type == "cuda":  # TF32 rounds float32 products to 10 mantissa bits: never exact
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.graph, self.device, self.dtype = graph, device, dtype
        self.weights = {
            n.name: (as_tensor(n.weight, device, dtype), as_tensor(n.bias, device, dtype))
            for n in graph.nodes
            if isinstance(n, ir.SYNAPTIC)
        }

    def run(self, x: torch.Tensor, handlers: Handlers, with_bias: bool) -> dict[str, torch.Tensor]:
        """Values of all nodes for input ``x``; ``handlers[type(node)]`` evaluates stateful nodes."""
        values: dict[str, torch.Tensor] = {ir.INPUT: x}
        for node in self.graph.nodes:
            args = [values[i] for i in node.inputs]
            handler = handlers.get(type(node))
            values[node.name] = handler(node, args[0]) if handler else self._op(node, args, with_bias)
        return values

    def _op(self, node, args, with_bias) -> torch.Tensor:
        if isinstance(node, ir.Conv):
            weight, bias = self.weights[node.name]
            return F.conv2d(args[0], weight, bias if with_bias else None,
                            node.stride, node.padding, 1, node.groups)
        if isinstance(node, ir.Linear):
            weight, bias = self.weights[node.name]
            return F.linear(args[0], weight, bias if with_bias else None)
        if isinstance(node, ir.Add):
            return torch.stack(args).sum(0)
        if isinstance(node, ir.AvgPool):
            return F.avg_pool2d(args[0], node.kernel, node.stride, node.padding)
        if isinstance(node, ir.Flatten):
            return torch.flatten(args[0], 1)
        raise TypeError(f"{node.name}: node type {type(node).__name__} has no torch lowering")
