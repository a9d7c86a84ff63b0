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


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int],
           padding: tuple[int, int], groups: int) -> torch.Tensor:
    """``F.conv2d``, exact on integer values below 2^24 on CUDA too.  cuDNN may choose Winograd or
    FFT algorithms for full (not depthwise) convolutions with a kernel wider than 1, whose
    transforms round: ResNet-18's 3x3 convolutions missed levels on an H200.  Those run on CUDA as
    one matrix product over the unfolded input (cuBLAS, no TF32), where every partial sum is an
    exact integer; the others stay with cuDNN, which computes them directly."""
    if x.device.type != "cuda" or groups != 1 or weight.shape[-2:] == (1, 1):
        return F.conv2d(x, weight, bias, stride, padding, 1, groups)
    return unfolded_conv2d(x, weight, bias, stride, padding)


def unfolded_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """A full convolution as unfold and one matrix product."""
    (h, w), (kh, kw) = x.shape[-2:], weight.shape[-2:]
    out_h = (h + 2 * padding[0] - kh) // stride[0] + 1
    out_w = (w + 2 * padding[1] - kw) // stride[1] + 1
    columns = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    out = (weight.flatten(1) @ columns).unflatten(-1, (out_h, out_w))
    return out if bias is None else out + bias.reshape(-1, 1, 1)


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
        self._zeros: dict[tuple[int, ...], torch.Tensor] = {}

    def zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The shared all-zero tensor of ``shape`` (read only): the value of a node known to be
        quiet, which :meth:`run` passes through stateless operators without computing them."""
        if shape not in self._zeros:
            self._zeros[shape] = torch.zeros(shape, device=self.device, dtype=self.dtype)
        return self._zeros[shape]

    def is_zero(self, value: torch.Tensor) -> bool:
        return self._zeros.get(tuple(value.shape)) is value

    def run(self, x: torch.Tensor, handlers: Handlers, with_bias: bool,
            steps: int = 1, hook: Callable[[ir.Node, torch.Tensor], torch.Tensor] | None = None,
            ) -> dict[str, torch.Tensor]:
        """Values of all nodes for input ``x``; ``handlers[type(node)]`` evaluates stateful nodes.

        ``x`` may stack ``steps`` time steps of a batch (step-major rows, as multi-step execution
        needs): biases then enter the first step's rows only.  ``hook(node, value)``, if given, sees
        each node's value and returns the value later nodes get.
        """
        values: dict[str, torch.Tensor] = {ir.INPUT: x}
        for node in self.graph.nodes:
            args = [values[i] for i in node.inputs]
            handler = handlers.get(type(node))
            biased = with_bias and getattr(node, "bias", None) is not None
            if handler:
                values[node.name] = handler(node, args[0])
            elif not biased and all(self.is_zero(a) for a in args):
                values[node.name] = self.zeros((x.shape[0], *self.graph.shapes[node.name]))
            else:
                values[node.name] = self._op(node, args, with_bias, steps)
            if hook is not None:
                values[node.name] = hook(node, values[node.name])
        return values

    def _op(self, node, args, with_bias, steps=1) -> torch.Tensor:
        if isinstance(node, ir.SYNAPTIC):
            weight, bias = self.weights[node.name]
            fused = bias if with_bias and steps == 1 else None
            out = (conv2d(args[0], weight, fused, node.stride, node.padding, node.groups)
                   if isinstance(node, ir.Conv) else F.linear(args[0], weight, fused))
            if with_bias and steps > 1 and bias is not None:
                first = out[: out.shape[0] // steps]
                first += bias.reshape(-1, *([1] * (out.ndim - 2)))
            return out
        if isinstance(node, ir.Add):
            return torch.stack(args).sum(0)
        if isinstance(node, ir.AvgPool):
            return F.avg_pool2d(args[0], node.kernel, node.stride, node.padding)
        if isinstance(node, ir.Flatten):
            return torch.flatten(args[0], 1)
        raise TypeError(f"{node.name}: node type {type(node).__name__} has no torch lowering")
