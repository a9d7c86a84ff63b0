"""A user's network, traced with ``torch.fx`` into the one form the quantizer and converter read.

Networks write the same layer in many ways (``nn.ReLU()`` or ``F.relu``, ``torch.flatten`` or
``x.flatten(1)``, ``x + y`` or ``x += y``).  Tracing rewrites each into one canonical form:
activations and pooling as modules, flatten as ``torch.flatten``, additions as ``operator.add``;
and a module called at several places (ResNet's shared ReLU) is copied so that each place can get
its own quantisation scale.  What cannot be traced is a :class:`ConversionError` naming the
module and why.
"""

from __future__ import annotations

import copy
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn


class ConversionError(ValueError):
    """The network has a layer or construct the spiking graph cannot express."""


def _pool_args(node: fx.Node, names: tuple[str, ...]) -> dict:
    """Positional and keyword arguments of a functional pooling call, by parameter name."""
    values = dict(zip(names, node.args[1:], strict=False)) | dict(node.kwargs)
    return {k: v for k, v in values.items() if k in names}


_POOL_NAMES = ("kernel_size", "stride", "padding")


def _module_for(node: fx.Node) -> nn.Module | None:
    """The module a functional activation or pooling call stands for (None: leave it)."""
    target = node.target
    if node.op == "call_method" and target == "relu" or node.op == "call_function" and target in (
            F.relu, torch.relu):
        return nn.ReLU()
    if node.op != "call_function":
        return None
    if target is F.relu6:
        return nn.ReLU6()
    if target is F.max_pool2d:
        return nn.MaxPool2d(**_pool_args(node, (*_POOL_NAMES, "dilation", "ceil_mode")))
    if target is F.avg_pool2d:
        return nn.AvgPool2d(**_pool_args(node, (*_POOL_NAMES, "ceil_mode", "count_include_pad")))
    if target is F.adaptive_avg_pool2d:
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return nn.AdaptiveAvgPool2d(size)
    return None


def _canonical(gm: fx.GraphModule) -> None:
    """Rewrite the graph's functional forms into the canonical ones (in place)."""
    for node in list(gm.graph.nodes):
        module = _module_for(node)
        if module is not None:
            name = f"{node.name}_module"
            gm.add_submodule(name, module)
            with gm.graph.inserting_before(node):
                replacement = gm.graph.call_module(name, (node.args[0],))
            node.replace_all_uses_with(replacement)
            gm.graph.erase_node(node)
        elif node.op == "call_method" and node.target == "flatten":
            with gm.graph.inserting_before(node):
                replacement = gm.graph.call_function(torch.flatten, node.args, node.kwargs)
            node.replace_all_uses_with(replacement)
            gm.graph.erase_node(node)
        elif node.op == "call_function" and node.target in (operator.iadd, torch.add) and not node.kwargs:
            node.target = operator.add


def _unshare(gm: fx.GraphModule) -> None:
    """Give every call of a module its own copy, so each place gets its own scale."""
    seen: set[str] = set()
    for node in gm.graph.nodes:
        if node.op == "call_module":
            if node.target in seen:
                clone = f"{node.target.replace('.', '_')}_{node.name}"
                gm.add_submodule(clone, copy.deepcopy(gm.get_submodule(node.target)))
                node.target = clone
            seen.add(node.target)


def trace(model: nn.Module, tracer: fx.Tracer | None = None) -> fx.GraphModule:
    """A traced copy of ``model`` (eval mode) in canonical form; ``model`` is left untouched."""
    model = copy.deepcopy(model).eval()
    try:
        graph = (tracer or fx.Tracer()).trace(model)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConversionError(f"{type(model).__name__}: torch.fx cannot trace this network "
                              f"({type(exc).__name__}: {first})") from None
    gm = fx.GraphModule(model, graph)
    _canonical(gm)
    _unshare(gm)
    gm.graph.lint()
    gm.recompile()
    return gm
