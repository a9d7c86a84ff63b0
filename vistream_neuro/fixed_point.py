"""Integer-exact version of a spiking graph, for Loihi-style fixed-point execution (Lava ``fixed_pt``).

Every edge of the fixed graph carries integers (stored as float64): weights are even mantissas
times one power of two per layer, thresholds are powers of two chosen per channel, payloads and
biases are integers.  Float arithmetic on it is exact while sums stay below 2^24 (float32) or 2^53
(float64), so the dense QANN, SpikingJelly and Lava ``fixed_pt`` agree bit for bit.  Its dense
evaluation is "the integer QANN"; it approximates the float QANN through the rounding of weights,
biases and payloads (8-bit frames encode losslessly, see :func:`vistream_neuro.pipeline.pixel_unit`).

A *unit* is what one integer step on an edge is worth in the float graph.  Edges joined by an Add,
a MaxPool or a Flatten share one unit (a union-find group).  A neuron's input group has unit
``scale / theta`` per channel, so the neuron compares integers with its threshold ``theta``.
Thresholds are as large as the weight mantissa, the bias range and a worst-case bound of the
neuron's state allow, so sums stay below 2^23 for any 8-bit input (inside Loihi's 24-bit state,
exact in float32) with a margin for rounding; :func:`exact_dtype` checks the bound it relies on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from neurons.loihi import STATE_LIMIT, WEIGHT_BITS, weight_limit
from vistream_neuro import ir
from vistream_neuro.reference import dense_values

MAX_BIAS = STATE_LIMIT  # a bias is charge in the neuron's state
STATE_SHARE = 7 / 8  # of it for a threshold's estimated reach: the rest absorbs weight and payload rounding
INPUT_STEPS = 255  # 8-bit frames: a pixel or a pixel difference spans at most 255 input units
FLOAT32_EXACT = 2**24  # every integer of smaller magnitude is exact in float32
FLOAT64_EXACT = 2**53


@dataclass(frozen=True, eq=False)
class FixedPointGraph:
    """An integer graph and the units that map its input and output to the float graph's."""

    graph: ir.SpikingGraph
    input_unit: np.ndarray  # () or one value per input channel
    output_unit: np.ndarray  # () or one value per output channel / feature
    units: dict[str, np.ndarray] = field(default_factory=dict)  # per node, as output_unit

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Float network input -> integer input (rounded to the input unit), same dtype."""
        return torch.round(x / _over_channels(self.input_unit, x))

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Integer output -> float output."""
        return y * _over_channels(self.output_unit, y)


def _over_channels(unit: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A scalar or per-channel unit shaped to broadcast over dim 1 of the batch ``like``."""
    unit = torch.as_tensor(unit, dtype=like.dtype, device=like.device)
    return unit.reshape(-1, *([1] * (like.ndim - 2))) if unit.ndim == 1 else unit


def quantize_weight(w: np.ndarray, weight_bits: int) -> np.ndarray:
    """``m * 2**e`` with the smallest exponent ``e >= 0`` that fits and even mantissas ``m`` (Loihi
    drops the lowest mantissa bit of mixed-sign weights)."""
    limit = weight_limit(weight_bits)
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


def _to_channels(values: np.ndarray, channels: int, reduce) -> np.ndarray:
    """Per-channel or per-feature ``values`` as ``channels`` values: repeated, or reduced over the
    features of each channel (C-major flatten of ``(C, H, W)``)."""
    if len(values) == channels:
        return values
    if channels % len(values) == 0:
        return np.repeat(values, channels // len(values))
    return reduce(values.reshape(channels, -1), axis=1)


def _input_peaks(node: ir.Conv | ir.Linear, weight: np.ndarray) -> np.ndarray:
    """The largest entry of ``weight`` (shaped like ``node.weight``) reading each input channel."""
    if isinstance(node, ir.Linear):
        return weight.max(0)
    out, per_group = weight.shape[:2]
    peaks = weight.reshape(out, per_group, -1).max(2)
    first = (np.arange(out) // (out // node.groups) * per_group)[:, None]
    result = np.zeros(node.groups * per_group)
    np.maximum.at(result, first + np.arange(per_group)[None, :], peaks)
    return result


def scaled_weight(node: ir.Conv | ir.Linear, u_x: np.ndarray) -> np.ndarray:
    """``W * u_x``: each weight times the (scalar or per-channel) unit of the input channel it reads."""
    weight = node.weight
    columns = weight.shape[1] * (node.groups if isinstance(node, ir.Conv) else 1)
    u_x = np.broadcast_to(u_x, (columns,))
    if isinstance(node, ir.Linear):
        return weight * u_x[None, :]
    per_group = np.repeat(u_x.reshape(node.groups, weight.shape[1]), weight.shape[0] // node.groups, 0)
    return weight * per_group[:, :, None, None]


def channel_bounds(graph: ir.SpikingGraph, input_bound: float | np.ndarray) -> dict[str, np.ndarray]:
    """Per channel (or feature), an upper bound of ``|value|`` of every node, for inputs (frames or
    frame differences) within ``input_bound`` (a scalar or one per input channel); a conv or linear
    bound also bounds its partial sums.  In the units of ``graph``: float or integer.

    A neuron's value is at most its payload times its level range, which covers the QANN's output,
    one spike and a layer-wise change alike.
    """
    shapes = graph.shapes
    bounds = {ir.INPUT: np.broadcast_to(np.asarray(input_bound, dtype=np.float64), (graph.input_shape[0],))}
    for node in graph.nodes:
        if isinstance(node, ir.SYNAPTIC):
            rows = np.abs(scaled_weight(node, bounds[node.input]))
            value = rows.reshape(len(rows), -1).sum(1) + (0 if node.bias is None else np.abs(node.bias))
        elif isinstance(node, ir.Neuron):
            value = node.output_scale * (node.pos_max - node.neg_min) * np.ones(shapes[node.name][0])
        elif isinstance(node, ir.Add):
            value = sum(bounds[i] for i in node.inputs)
        else:
            value = _to_channels(bounds[node.input], shapes[node.name][0], np.max)
        bounds[node.name] = value
    return bounds


class _Units:
    """Resolves group units and neuron thresholds on demand: each depends on those upstream."""

    def __init__(self, graph: ir.SpikingGraph, input_unit: np.ndarray, weight_bits: int,
                 max_threshold_bits: int, payload_bits: int) -> None:
        self.graph, self.input_unit, self.payload_bits = graph, input_unit, payload_bits
        self.limit = weight_limit(weight_bits)
        self.thetas = 2.0 ** np.arange(1, max_threshold_bits + 1)
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
        self.bounds = channel_bounds(graph, INPUT_STEPS * input_unit)  # float units
        self._units: dict[str, np.ndarray | None] = {}  # None: being resolved
        self._thetas: dict[str, np.ndarray] = {}

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
                                "output's unit group, e.g. a residual branch with no activation inside); run "
                                "the float graph (precision float64)")
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
                return scales[0] / self._subdivision(root, scales[0])
            unit = np.minimum.reduce(scales) / 2**self.payload_bits
            return unit / self._subdivision(root, unit)
        if pools:
            units = [self.at(p.input) / np.prod(ir.pair(p.kernel)) for p in pools]
            if any(not np.array_equal(*np.broadcast_arrays(units[0], u)) for u in units[1:]):
                raise ir.GraphError(f"average pools {', '.join(p.name for p in pools)} add sums "
                                    "of different units")
            return units[0]
        peak = max(float(np.abs(scaled_weight(n, self.at(n.input))).max(initial=0.0))
                   for n in members if isinstance(n, ir.SYNAPTIC))
        if peak == 0:
            raise ir.GraphError(f"{members[-1].name}: all weights feeding it are zero")
        return peak / self.limit

    def _subdivision(self, root: str, unit: np.ndarray) -> int:
        """The power of two by which to refine the unit of the neuron outputs in group ``root`` so
        that the weights reading them fit the mantissa even at the smallest threshold (else those
        layers would need a weight exponent, losing bits in every row)."""
        peak = max((float(w.max()) for _, w in self._read_weights(root, unit, self.thetas[0])), default=0.0)
        return 2 ** max(0, int(np.ceil(np.log2(peak / self.limit)))) if peak > 0 else 1

    def _read_weights(self, root: str, unit: np.ndarray, theta: float):
        """``|W * u_x / u_out|`` of each synaptic layer reading group ``root`` and feeding neurons,
        for inputs worth ``unit`` and outputs at threshold ``theta``: (layer, weights) pairs."""
        for node in self.readers.get(root, []):
            if isinstance(node, ir.SYNAPTIC) and (outs := self.neurons_reading(node.name)):
                u_x = _fit(unit, self.graph.shapes[node.input], node.name)
                u_out = _fit(outs[0].scale, self.graph.shapes[node.name], outs[0].name) / theta
                yield node, np.abs(scaled_weight(node, u_x) / _rows(u_out, node.weight))

    def theta(self, neuron: ir.Neuron) -> np.ndarray:
        """Per channel, the power-of-two threshold that best balances the precision of what meets
        in the neuron's input group.  The peak of the feeding weights and the payloads of neuron
        outputs grow with theta; weights of synaptic layers reading the group shrink with it (their
        own thresholds are capped).  Without such readers: the largest theta that fits.  Per
        channel, so every row of a feeding layer uses the upper half of the mantissa although the
        layer shares one weight exponent (as a Loihi synapse group does).  Powers of two, because
        ST-BIF neurons (ours and SpikingJelly's ``STBIFNode``) keep their residual in units of the
        threshold: an integer current divided by a power of two stays exact."""
        if neuron.name not in self._thetas:
            feed, pay, read, cap = self._balance(neuron)
            thetas = self.thetas[:, None]
            with np.errstate(divide="ignore"):
                peaks = np.stack([np.where(feed > 0, feed * thetas, np.inf), pay * thetas,
                                  np.where(read > 0, np.minimum(self.limit, read / thetas), np.inf)])
            fits = thetas <= np.maximum(cap, thetas[0])  # the smallest where none fits: fixed_synapse raises
            score = np.where(fits, peaks.min(0), -np.inf)  # the coarsest precision at each threshold
            best = len(thetas) - 1 - np.argmax(score[::-1] == score.max(0), axis=0)  # ties: the largest
            self._thetas[neuron.name] = self.thetas[best]
        return self._thetas[neuron.name]

    def _balance(self, neuron: ir.Neuron) -> tuple[np.ndarray, ...]:
        """Per channel of ``neuron``, in steps of its threshold per unit of theta: the peak feeding
        weight, the smallest payload and the peak weight reading the group at the finest unit; and
        the largest threshold the mantissa, the bias range and the 24-bit state allow."""
        channels = self.graph.shapes[neuron.name][0]
        feed, read, bias = np.zeros(channels), np.zeros(channels), np.zeros(channels)
        pay = np.full(channels, np.inf)
        for node in self.members[self.group[neuron.input]]:
            if isinstance(node, ir.AvgPool):
                raise ir.GraphError(f"{neuron.name}: fed by average pool {node.name}, which the integer "
                                    "graph cannot scale to a power-of-two threshold; pool after the "
                                    "activation, or run the float graph (precision float64)")
            if isinstance(node, (*ir.SYNAPTIC, ir.Neuron)):
                scale = _fit(neuron.scale, self.graph.shapes[node.name], neuron.name)
            if isinstance(node, ir.SYNAPTIC):
                rows = _rows(scale, node.weight)
                scaled = np.abs(scaled_weight(node, self.at(node.input)) / rows).reshape(len(rows), -1)
                feed = np.maximum(feed, _to_channels(scaled.max(1), channels, np.max))
                if node.bias is not None:
                    bias += _to_channels(np.abs(node.bias) / rows.ravel(), channels, np.max)
            elif isinstance(node, ir.Neuron):
                ratio = node.scale / scale * np.ones(self.graph.shapes[node.name][0])
                pay = np.minimum(pay, _to_channels(ratio, channels, np.min))
        for node, weights in self._read_weights(self.group[neuron.input], neuron.scale, self.thetas[-1]):
            read = np.maximum(read, _to_channels(_input_peaks(node, weights), channels, np.max))
        state = self.bounds[neuron.input] / np.broadcast_to(neuron.scale, (channels,)) + (
            neuron.pos_max - neuron.neg_min)  # the residual's reach, in steps of the threshold
        with np.errstate(divide="ignore"):
            cap = np.minimum.reduce([self.limit / feed, (MAX_BIAS - 1) / bias,
                                     STATE_SHARE * STATE_LIMIT / state, np.full(channels, self.thetas[-1])])
        return feed, pay, read, cap

    def fixed_synapse(self, node: ir.Conv | ir.Linear, weight_bits: int) -> ir.Node:
        u_out = _rows(self.at(node.name), node.weight)
        weight = quantize_weight(scaled_weight(node, self.at(node.input)) / u_out, weight_bits)
        bias = None if node.bias is None else np.round(node.bias / u_out.ravel())
        if bias is not None and np.abs(bias).max(initial=0) >= MAX_BIAS:
            raise ir.GraphError(f"{node.name}: integer bias {np.abs(bias).max():.0f} is not below 2^23")
        return dataclasses.replace(node, weight=weight, bias=bias)

    def fixed_neuron(self, node: ir.Neuron) -> ir.Neuron:
        payload = np.round(node.scale / self.at(node.name))
        if payload.min() < 1:
            raise ir.GraphError(f"{node.name}: its output unit exceeds its scale (payload rounds to 0)")
        return dataclasses.replace(node, scale=self.theta(node), payload=payload)

    def fixed_pool(self, node: ir.AvgPool) -> ir.Conv:
        """Average pooling as a sum (depthwise conv of ones): exact in integers."""
        return ir.pool_as_conv(node, self.graph.shapes[node.input][0])


def input_units(graph: ir.SpikingGraph, input_unit: float | np.ndarray) -> np.ndarray:
    """``input_unit`` checked: a positive scalar or one per input channel of ``graph``."""
    unit = np.asarray(input_unit, dtype=np.float64)
    if unit.ndim > 1 or unit.size not in (1, graph.input_shape[0]) or not np.all(unit > 0):
        raise ValueError(f"input unit {input_unit!r}: need a value > 0 or one per input channel "
                         f"({graph.input_shape[0]})")
    return unit.reshape(()) if unit.size == 1 else unit


def to_fixed_point(graph: ir.SpikingGraph, input_unit: float | np.ndarray, *, weight_bits: int = WEIGHT_BITS,
                   max_threshold_bits: int = 16, payload_bits: int = 6) -> FixedPointGraph:
    """The integer version of ``graph``: same node names and topology, AvgPool becomes a Conv.

    ``input_unit`` is what one integer step of the encoded input is worth (a scalar or one per
    input channel).  Raises :class:`ir.GraphError` naming the node where the unit rules cannot be met.
    """
    input_unit = input_units(graph, input_unit)
    if not (weight_bits >= 3 and max_threshold_bits >= 1 and payload_bits >= 0):
        raise ValueError(f"need weight_bits >= 3, max_threshold_bits >= 1, payload_bits >= 0; got "
                         f"{weight_bits}, {max_threshold_bits}, {payload_bits}")
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
    return FixedPointGraph(fixed, input_unit, units.at(graph.output).copy(),
                           {name: units.at(name).copy() for name in graph.shapes if name != ir.INPUT})


def correct_bias(fx: FixedPointGraph, graph: ir.SpikingGraph, frames: torch.Tensor) -> FixedPointGraph:
    """Empirical bias correction of the integer graph (as :func:`vistream_neuro.calibration.correct_bias`
    does for the QANN): rounding weights and payloads shifts the mean of a layer's output, so each
    conv/linear with a bias has its integer bias moved by the mean shift, in its own integer units,
    that ``frames`` (float network inputs) show against the float graph ``graph``.  One pass, layer
    after layer: each correction sees the corrected layers before it."""
    reference = dense_values(graph, frames)
    biases: dict[str, np.ndarray] = {}

    def correct(node: ir.Node, value: torch.Tensor) -> torch.Tensor:
        if not (isinstance(node, ir.SYNAPTIC) and node.bias is not None):
            return value
        dims = [d for d in range(value.ndim) if d != 1]
        unit = torch.as_tensor(fx.units[node.name], dtype=value.dtype).expand(node.bias.shape)
        shift = torch.round(reference[node.name].mean(dims) / unit - value.mean(dims))
        biases[node.name] = node.bias + shift.numpy()
        if np.abs(biases[node.name]).max() >= MAX_BIAS:
            raise ir.GraphError(f"{node.name}: corrected integer bias is not below 2^23")
        return value + shift.reshape(-1, *([1] * (value.ndim - 2)))

    dense_values(fx.graph, fx.encode(frames), correct)
    nodes = [dataclasses.replace(n, bias=biases[n.name]) if n.name in biases else n for n in fx.graph.nodes]
    return dataclasses.replace(fx, graph=ir.SpikingGraph(fx.graph.input_shape, nodes, fx.graph.output))


def magnitude_bounds(graph: ir.SpikingGraph, input_bound: float) -> dict[str, float]:
    """Per node of an integer graph, the largest of :func:`channel_bounds`."""
    return {name: float(bound.max(initial=0.0)) for name, bound in channel_bounds(graph, input_bound).items()}


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
