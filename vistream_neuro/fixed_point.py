"""Integer-exact version of a spiking graph, for Loihi-style fixed-point execution (Lava ``fixed_pt``).

Every edge of the fixed graph carries integers (stored as float64): weights are even mantissas
times a power of two, thresholds are powers of two, payloads and biases are integers.  Float
arithmetic on it is exact while sums stay below 2^24 (float32) or 2^53 (float64), so the dense
QANN, SpikingJelly and Lava ``fixed_pt`` agree bit for bit.  Its dense evaluation is "the integer
QANN"; it approximates the float QANN through the rounding of the input, weights, biases and
payloads.

A *unit* is what one integer step on an edge is worth in the float graph.  Edges joined by an Add,
a MaxPool or a Flatten share one unit (a union-find group).  A neuron's input group has unit
``scale / theta``, so the neuron compares integers with its power-of-two threshold ``theta``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from vistream_neuro import ir

MAX_BIAS = 2**23
FLOAT32_EXACT = 2**24  # every integer of smaller magnitude is exact in float32
FLOAT64_EXACT = 2**53


@dataclass(frozen=True, eq=False)
class FixedPointGraph:
    """An integer graph and the units that map its input and output to the float graph's."""

    graph: ir.SpikingGraph
    input_unit: float
    output_unit: np.ndarray  # () or one value per output channel / feature

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Float network input -> integer input (rounded to the input unit), same dtype."""
        return torch.round(x / self.input_unit)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Integer output -> float output (per-channel units broadcast over dim 1)."""
        unit = torch.as_tensor(self.output_unit, dtype=y.dtype, device=y.device)
        if unit.ndim == 1:
            unit = unit.reshape(-1, *([1] * (y.ndim - 2)))
        return y * unit


def quantize_weight(w: np.ndarray, weight_bits: int) -> np.ndarray:
    """``m * 2**e`` with the smallest exponent ``e >= 0`` that fits and even mantissas ``m`` (Loihi
    drops the lowest mantissa bit of mixed-sign weights)."""
    limit = 2 ** (weight_bits - 1) - 2
    peak, e = float(np.abs(w).max(initial=0.0)), 0
    while peak / 2**e > limit:
        e += 1
    return 2 * np.round(w / 2 ** (e + 1)) * 2**e


def _fit(unit: np.ndarray, shape: ir.Shape, name: str) -> np.ndarray:
    """A scalar or per-channel unit for a node of ``shape`` (per-channel repeats after a Flatten)."""
    unit = np.asarray(unit, dtype=np.float64)
    if unit.ndim == 0 or unit.shape[0] == shape[0]:
        return unit
    if len(shape) == 1 and shape[0] % unit.shape[0] == 0:
        return np.repeat(unit, shape[0] // unit.shape[0])  # C-major flatten of (C, H, W)
    raise ir.GraphError(f"{name}: per-channel unit {unit.shape} does not fit shape {shape}")


def _rows(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per-output-channel values (or a scalar) shaped to broadcast over ``weight``'s rows."""
    return np.broadcast_to(values, (weight.shape[0],)).reshape(-1, *([1] * (weight.ndim - 1)))


class _Units:
    """Resolves group units and neuron thresholds on demand: each depends on those upstream."""

    def __init__(self, graph: ir.SpikingGraph, input_unit: float, weight_bits: int,
                 max_threshold_bits: int, payload_bits: int) -> None:
        self.graph, self.input_unit, self.payload_bits = graph, float(input_unit), payload_bits
        self.limit = 2 ** (weight_bits - 1) - 2
        self.thetas = [2**k for k in range(1, max_threshold_bits + 1)]
        parent = {ir.INPUT: ir.INPUT}

        def find(name: str) -> str:
            while parent[name] != name:
                name = parent[name]
            return name

        for node in graph.nodes:
            if not isinstance(node, (*ir.SYNAPTIC, ir.Neuron, ir.Add, ir.AvgPool, ir.MaxPool, ir.Flatten)):
                raise ir.GraphError(f"{node.name}: node type {type(node).__name__} has no fixed-point form")
            parent[node.name] = node.name
            if isinstance(node, ir.Add | ir.MaxPool | ir.Flatten):
                for i in node.inputs:
                    parent[find(i)] = node.name
        self.group = {name: find(name) for name in parent}
        self.members: dict[str, list[ir.Node]] = {}
        self.readers: dict[str, list[ir.Node]] = {}  # nodes whose input is in the group
        for node in graph.nodes:
            self.members.setdefault(self.group[node.name], []).append(node)
            if isinstance(node, (*ir.SYNAPTIC, ir.Neuron)):
                self.readers.setdefault(self.group[node.input], []).append(node)
        self._units: dict[str, np.ndarray | None] = {}  # None: being resolved
        self._thetas: dict[str, int] = {}

    def neurons_reading(self, name: str) -> list[ir.Neuron]:
        return [n for n in self.readers.get(self.group[name], []) if isinstance(n, ir.Neuron)]

    def at(self, name: str) -> np.ndarray:
        """The unit of ``name``'s output, shaped () or ``(shape[0],)``."""
        root = self.group[name]
        if root not in self._units:
            self._units[root] = None
            self._units[root] = np.asarray(self._resolve(root), dtype=np.float64)
        if self._units[root] is None:
            raise ir.GraphError(f"{name}: its unit depends on itself (a synaptic layer reads its own "
                                "output's unit group)")
        return _fit(self._units[root], self.graph.shapes[name], name)

    def _resolve(self, root: str) -> np.ndarray | float:
        """In order: a neuron's input, the network input, neuron outputs, pooled sums, free."""
        members = self.members.get(root, [])
        pools = [n for n in members if isinstance(n, ir.AvgPool)]
        if neurons := self.neurons_reading(root):
            if root == self.group[ir.INPUT]:
                raise ir.GraphError(f"{neurons[0].name}: its input unit group holds the network input")
            units = [n.scale / self.theta(n) for n in neurons]
            if any(not np.array_equal(*np.broadcast_arrays(units[0], u)) for u in units[1:]):
                raise ir.GraphError(f"neurons {', '.join(n.name for n in neurons)} read one group "
                                    "with different input units")
            return units[0]
        if pools and (root == self.group[ir.INPUT] or any(isinstance(n, ir.Neuron) for n in members)):
            raise ir.GraphError(f"{pools[0].name}: an average pool's sum cannot share the unit of "
                                "the network input or of neuron outputs")
        if root == self.group[ir.INPUT]:
            return self.input_unit
        if scales := [n.scale for n in members if isinstance(n, ir.Neuron)]:
            scales = np.broadcast_arrays(*scales)
            if all(np.array_equal(scales[0], s) for s in scales[1:]):
                return scales[0]
            return np.minimum.reduce(scales) / 2**self.payload_bits
        if pools:
            units = [self.at(p.input) / np.prod(ir.pair(p.kernel)) for p in pools]
            if any(not np.array_equal(*np.broadcast_arrays(units[0], u)) for u in units[1:]):
                raise ir.GraphError(f"average pools {', '.join(p.name for p in pools)} add sums "
                                    "of different units")
            return units[0]
        peak = max(float(np.abs(self.scaled_weight(n, self.at(n.input))).max(initial=0.0))
                   for n in members if isinstance(n, ir.SYNAPTIC))
        if peak == 0:
            raise ir.GraphError(f"{members[-1].name}: all weights feeding it are zero")
        return peak / self.limit

    def theta(self, neuron: ir.Neuron) -> int:
        """The power-of-two threshold that best balances the precision of what meets in its input
        group.  Feeding weights must fit the mantissa; their peak and the payloads of neuron outputs
        grow with theta.  Weights of synaptic layers reading the group shrink with it, since their
        own neurons' thresholds are capped.  Without such readers: the largest theta that fits."""
        if neuron.name in self._thetas:
            return self._thetas[neuron.name]
        feed, pay, read = 0.0, np.inf, 0.0
        for node in self.members[self.group[neuron.input]]:
            if isinstance(node, ir.AvgPool):
                raise ir.GraphError(f"{neuron.name}: fed by average pool {node.name}")
            if isinstance(node, (*ir.SYNAPTIC, ir.Neuron)):
                scale = _fit(neuron.scale, self.graph.shapes[node.name], neuron.name)
            if isinstance(node, ir.SYNAPTIC):
                scaled = self.scaled_weight(node, self.at(node.input)) / _rows(scale, node.weight)
                feed = max(feed, float(np.abs(scaled).max(initial=0.0)))
            elif isinstance(node, ir.Neuron):
                pay = min(pay, float((node.scale / scale).min()))
        for node in self.readers[self.group[neuron.input]]:
            outs = self.neurons_reading(node.name) if isinstance(node, ir.SYNAPTIC) else []
            if outs:  # the finest unit its output can get: the largest threshold
                u_x = _fit(neuron.scale, self.graph.shapes[node.input], neuron.name)
                u_out = _fit(outs[0].scale, self.graph.shapes[node.name], outs[0].name) / self.thetas[-1]
                scaled = self.scaled_weight(node, u_x) / _rows(u_out, node.weight)
                read = max(read, float(np.abs(scaled).max()))

        def score(theta: int) -> tuple[float, int]:
            peaks = (feed * theta or np.inf, pay * theta, min(self.limit, read / theta) or np.inf)
            return min(peaks), theta

        fitting = [t for t in self.thetas if feed * t <= self.limit] or self.thetas[:1]
        self._thetas[neuron.name] = max(fitting, key=score)
        return self._thetas[neuron.name]

    def scaled_weight(self, node: ir.Conv | ir.Linear, u_x: np.ndarray) -> np.ndarray:
        """``W * u_x``: each weight times the unit of the input channel it reads."""
        weight = node.weight
        u_x = np.broadcast_to(u_x, (self.graph.shapes[node.input][0],))
        if isinstance(node, ir.Linear):
            return weight * u_x[None, :]
        per_group = np.repeat(u_x.reshape(node.groups, weight.shape[1]), weight.shape[0] // node.groups, 0)
        return weight * per_group[:, :, None, None]

    def fixed_synapse(self, node: ir.Conv | ir.Linear, weight_bits: int) -> ir.Node:
        u_out = _rows(self.at(node.name), node.weight)
        weight = quantize_weight(self.scaled_weight(node, self.at(node.input)) / u_out, weight_bits)
        bias = None if node.bias is None else np.round(node.bias / u_out.ravel())
        if bias is not None and np.abs(bias).max(initial=0) >= MAX_BIAS:
            raise ir.GraphError(f"{node.name}: integer bias {np.abs(bias).max():.0f} is not below 2^23")
        return dataclasses.replace(node, weight=weight, bias=bias)

    def fixed_neuron(self, node: ir.Neuron) -> ir.Neuron:
        payload = np.round(node.scale / self.at(node.name))
        if payload.min() < 1:
            raise ir.GraphError(f"{node.name}: its output unit exceeds its scale (payload rounds to 0)")
        return dataclasses.replace(node, scale=np.array(float(self.theta(node))), payload=payload)

    def fixed_pool(self, node: ir.AvgPool) -> ir.Conv:
        """Average pooling as a sum (depthwise conv of ones): exact in integers."""
        c = self.graph.shapes[node.input][0]
        return ir.Conv(node.name, node.input, np.ones((c, 1, *ir.pair(node.kernel))), None,
                       ir.pair(node.stride), ir.pair(node.padding), groups=c)


def to_fixed_point(graph: ir.SpikingGraph, input_unit: float, *, weight_bits: int = 8,
                   max_threshold_bits: int = 12, payload_bits: int = 6) -> FixedPointGraph:
    """The integer version of ``graph``: same node names and topology, AvgPool becomes a Conv.

    ``input_unit`` is what one integer step of the encoded input is worth.  Raises
    :class:`ir.GraphError` naming the node where the unit rules cannot be met.
    """
    if not (input_unit > 0 and weight_bits >= 3 and max_threshold_bits >= 1 and payload_bits >= 0):
        raise ValueError(f"need input_unit > 0, weight_bits >= 3, max_threshold_bits >= 1, payload_bits "
                         f">= 0; got {input_unit!r}, {weight_bits}, {max_threshold_bits}, {payload_bits}")
    units = _Units(graph, input_unit, weight_bits, max_threshold_bits, payload_bits)
    nodes = []
    for node in graph.nodes:
        if isinstance(node, ir.SYNAPTIC):
            node = units.fixed_synapse(node, weight_bits)
        elif isinstance(node, ir.Neuron):
            node = units.fixed_neuron(node)
        elif isinstance(node, ir.AvgPool):
            node = units.fixed_pool(node)
        nodes.append(node)
    fixed = ir.SpikingGraph(graph.input_shape, nodes, graph.output)
    return FixedPointGraph(fixed, float(input_unit), units.at(graph.output).copy())


def magnitude_bounds(graph: ir.SpikingGraph, input_bound: float) -> dict[str, float]:
    """An upper bound of ``|value|`` of every node of an integer graph, for inputs (frames or frame
    differences) within ``input_bound``; a conv or linear bound also bounds its partial sums.

    A neuron's value is at most its payload times its level range, which covers the QANN's output,
    one spike and a layer-wise change alike.
    """
    bounds = {ir.INPUT: float(input_bound)}
    for node in graph.nodes:
        if isinstance(node, ir.SYNAPTIC):
            rows = np.abs(node.weight).reshape(node.weight.shape[0], -1).sum(1) * bounds[node.input]
            bias = 0.0 if node.bias is None else np.abs(node.bias)
            bounds[node.name] = float(np.max(rows + bias))
        elif isinstance(node, ir.Neuron):
            bounds[node.name] = float(np.max(node.output_scale)) * (node.pos_max - node.neg_min)
        elif isinstance(node, ir.Add):
            bounds[node.name] = sum(bounds[i] for i in node.inputs)
        else:
            bounds[node.name] = bounds[node.input]
    return bounds


def check_float32_exact(graph: ir.SpikingGraph, input_bound: float) -> None:
    """Raise naming the first node whose sums could reach 2^24, where float32 stops being exact."""
    for name, bound in magnitude_bounds(graph, input_bound).items():
        if bound >= FLOAT32_EXACT:
            raise ir.GraphError(f"{name}: its integer sums may reach {bound:.3g} >= 2^24, beyond what "
                                "float32 holds exactly; use --precision float64")


def exact_dtype(graph: ir.SpikingGraph, input_bound: float) -> torch.dtype:
    """float32 where every sum of the integer graph provably stays below 2^24, else float64 (exact
    below 2^53, checked): the cheapest dtype in which the integer graph runs exactly."""
    name, peak = max(magnitude_bounds(graph, input_bound).items(), key=lambda kv: kv[1])
    if peak < FLOAT32_EXACT:
        return torch.float32
    if peak >= FLOAT64_EXACT:
        raise ir.GraphError(f"{name}: its integer sums may reach {peak:.3g} >= 2^53, beyond what float64 "
                            "holds exactly")
    return torch.float64
