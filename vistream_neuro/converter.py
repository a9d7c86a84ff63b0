"""QANN (a torch module with quantizers in place of activations) -> SpikingGraph.

The module is traced with ``torch.fx`` (:mod:`vistream_neuro.tracing`); BatchNorm is folded into
the conv that feeds it.  Anything the IR cannot express is a :class:`ConversionError` naming the
module path and type.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import fx, nn

from vistream_neuro import ir
from vistream_neuro.quant import Quantizer
from vistream_neuro.tracing import ConversionError, trace

_PASSTHROUGH = (nn.Identity, nn.Dropout)


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().double().numpy().copy()


def _fold_bn(conv: ir.Conv, bn: nn.BatchNorm2d, path: str) -> ir.Conv:
    if not bn.track_running_stats or bn.running_mean is None:
        raise ConversionError(f"{path} (BatchNorm2d): needs running statistics to fold")
    gamma = _np(bn.weight) if bn.affine else np.ones(bn.num_features)
    beta = _np(bn.bias) if bn.affine else np.zeros(bn.num_features)
    factor = gamma / np.sqrt(_np(bn.running_var) + bn.eps)
    bias = conv.bias if conv.bias is not None else np.zeros(conv.weight.shape[0])
    return ir.Conv(
        conv.name, conv.input, conv.weight * factor[:, None, None, None],
        (bias - _np(bn.running_mean)) * factor + beta, conv.stride, conv.padding, conv.groups,
    )


class _Builder:
    def __init__(self, module: nn.Module, input_shape: tuple[int, ...]) -> None:
        self.module = module
        self.nodes: list[ir.Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {ir.INPUT: tuple(input_shape)}

    def add(self, node: ir.Node) -> str:
        self.shapes[node.name] = node.out_shape([self.shapes[i] for i in node.inputs])
        self.nodes.append(node)
        return node.name

    def replace(self, name: str, node: ir.Node) -> None:
        index = next(i for i, n in enumerate(self.nodes) if n.name == name)
        self.nodes[index] = node

    def module_node(self, name: str, path: str, mod: nn.Module, src: str, src_shared: bool) -> str:
        if isinstance(mod, nn.Conv2d):
            if mod.dilation != (1, 1) or mod.padding_mode != "zeros" or isinstance(mod.padding, str):
                raise ConversionError(
                    f"{path} (Conv2d): only zero padding given as numbers and dilation 1 are supported"
                )
            return self.add(ir.Conv(name, src, _np(mod.weight), _np(mod.bias),
                                    tuple(mod.stride), tuple(mod.padding), mod.groups))
        if isinstance(mod, nn.BatchNorm2d):
            prev = next((n for n in self.nodes if n.name == src), None)
            if not isinstance(prev, ir.Conv) or src_shared:
                raise ConversionError(f"{path} (BatchNorm2d): can only fold into a conv it alone follows")
            self.replace(src, _fold_bn(prev, mod, path))
            return src
        if isinstance(mod, nn.Linear):
            return self.add(ir.Linear(name, src, _np(mod.weight), _np(mod.bias)))
        if isinstance(mod, Quantizer):
            return self.add(ir.Neuron(name, src, _np(mod.scale), mod.pos_max, mod.neg_min))
        if isinstance(mod, nn.AvgPool2d):
            if mod.ceil_mode or not mod.count_include_pad and mod.padding:
                raise ConversionError(f"{path} (AvgPool2d): ceil_mode / excluded padding unsupported")
            k = ir.pair(mod.kernel_size)
            return self.add(ir.AvgPool(name, src, k, ir.pair(mod.stride or k), ir.pair(mod.padding)))
        if isinstance(mod, nn.MaxPool2d):
            if mod.ceil_mode or ir.pair(mod.dilation) != (1, 1):
                raise ConversionError(f"{path} (MaxPool2d): ceil_mode / dilation unsupported")
            k = ir.pair(mod.kernel_size)
            return self.add(ir.MaxPool(name, src, k, ir.pair(mod.stride or k), ir.pair(mod.padding)))
        if isinstance(mod, nn.AdaptiveAvgPool2d) and ir.pair(mod.output_size) == (1, 1):
            _, h, w = self.shapes[src]
            return self.add(ir.AvgPool(name, src, (h, w), (h, w)))
        if isinstance(mod, nn.Flatten):
            return self.add(ir.Flatten(name, src))
        if isinstance(mod, _PASSTHROUGH):
            return src
        if isinstance(mod, nn.ReLU | nn.ReLU6):
            raise ConversionError(f"{path} ({type(mod).__name__}): quantize activations before converting")
        raise ConversionError(f"{path} ({type(mod).__name__}): no spiking equivalent")


class _Tracer(fx.Tracer):
    """Keeps quantizers as leaves, so they reach the converter as modules."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, Quantizer) or super().is_leaf_module(m, qualname)


def to_spiking_graph(qann: nn.Module, input_shape: tuple[int, int, int]) -> ir.SpikingGraph:
    """Convert a quantized network taking ``(N, *input_shape)`` into a :class:`SpikingGraph`."""
    traced = trace(qann, _Tracer())
    modules = dict(traced.named_modules())
    b = _Builder(qann, input_shape)
    value: dict[str, str] = {}
    output = None
    for node in traced.graph.nodes:
        srcs = [value[a.name] for a in node.all_input_nodes]
        if node.op == "placeholder":
            if value:
                raise ConversionError("only networks with a single input are supported")
            value[node.name] = ir.INPUT
        elif node.op == "call_module":
            shared = len(node.all_input_nodes[0].users) > 1
            value[node.name] = b.module_node(node.name, node.target, modules[node.target], srcs[0], shared)
        elif node.op == "call_function" and node.target is operator.add:
            if len(srcs) != 2:
                raise ConversionError(f"{node.name}: add of a tensor and a constant is unsupported")
            value[node.name] = b.add(ir.Add(node.name, tuple(srcs)))
        elif node.op == "call_function" and node.target is torch.flatten:
            if node.args[1:] not in ((1,), ()) or node.kwargs:
                raise ConversionError(f"{node.name}: only torch.flatten(x, 1) is supported")
            value[node.name] = b.add(ir.Flatten(node.name, srcs[0]))
        elif node.op == "output":
            if len(srcs) != 1 or not isinstance(node.args[0], fx.Node):
                raise ConversionError("only networks with a single tensor output are supported")
            output = srcs[0]
        else:
            what = getattr(node.target, "__name__", node.target)
            raise ConversionError(f"{node.name} ({node.op} {what}): no spiking equivalent")
    return ir.SpikingGraph(input_shape, b.nodes, output)


def neuron_modules(qann: nn.Module) -> dict[str, str]:
    """The module path of the quantizer behind each neuron layer of ``qann``'s spiking graph."""
    traced = trace(qann, _Tracer())
    return {node.name: node.target for node in traced.graph.nodes
            if node.op == "call_module" and isinstance(qann.get_submodule(node.target), Quantizer)}
