"""The spiking graph (IR): plain dataclasses holding numpy arrays, with shape checks.

Nodes are listed in topological order; each names its inputs.  Shapes are per sample:
``(C, H, W)`` for maps, ``(F,)`` after flatten.  Weights and neuron scales are float64 arrays;
a neuron's ``scale`` is a scalar or one value per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

Shape = tuple[int, ...]


class GraphError(ValueError):
    """A spiking graph is malformed: unknown input, shape mismatch, bad parameter."""


def pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


def sliding_window_size(name: str, shape: Shape, kernel, stride, padding, what: str) -> tuple[int, int]:
    """Output height and width of a ``kernel`` sliding over a ``(C, H, W)`` input."""
    if len(shape) != 3:
        raise GraphError(f"{name}: {what} needs a (C, H, W) input, got {shape}")
    _, h, w = shape
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise GraphError(f"{name}: input {shape} too small for {what} window {kh}x{kw}")
    return oh, ow


@dataclass(frozen=True)
class _OneInput:
    """A node fed by exactly one other node."""

    name: str
    input: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True)
class Conv(_OneInput):
    weight: np.ndarray  # (out, in / groups, kh, kw)
    bias: np.ndarray | None = None  # (out,)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1

    def out_shape(self, shapes: list[Shape]) -> Shape:
        (shape,) = shapes
        out_c, in_per_group, kh, kw = self.weight.shape
        oh, ow = sliding_window_size(self.name, shape, (kh, kw), self.stride, self.padding, "conv")
        c = shape[0]
        if c != in_per_group * self.groups or out_c % self.groups:
            raise GraphError(
                f"{self.name}: weight {self.weight.shape} with groups={self.groups} "
                f"does not fit {c} input channels"
            )
        if self.bias is not None and self.bias.shape != (out_c,):
            raise GraphError(f"{self.name}: bias shape {self.bias.shape}, expected ({out_c},)")
        return (out_c, oh, ow)


@dataclass(frozen=True)
class Linear(_OneInput):
    weight: np.ndarray  # (out, in)
    bias: np.ndarray | None = None

    def out_shape(self, shapes: list[Shape]) -> Shape:
        (shape,) = shapes
        if shape != (self.weight.shape[1],):
            raise GraphError(f"{self.name}: linear weight {self.weight.shape} does not fit {shape}")
        return (self.weight.shape[0],)


@dataclass(frozen=True)
class Neuron(_OneInput):
    """ST-BIF neurons; converge to ``payload * clamp(round(x / scale), neg_min, pos_max)``.

    ``scale`` is the threshold (the quantisation step of the input); ``payload`` is what one
    released quantum sends on (defaults to ``scale``).  They differ in fixed-point graphs, where
    the threshold is in the units of the neuron's input and the payload in its consumers'.

    ``hysteresis`` ``h`` (in steps, ``0 <= h < 1``): after a stream's first frame a level moves
    only once the input leaves ``[level - 0.5 - h, level + 0.5 + h)`` steps, then to the nearest
    level inside that band, so noise near a boundary stops flipping it.  The level then depends
    on the previous one (the QANN has memory); ``h = 0`` is plain rounding.
    """

    scale: np.ndarray  # () or (C,)
    pos_max: int
    neg_min: int = 0
    payload: np.ndarray | None = None  # () or (C,); None: the scale
    hysteresis: float = 0.0

    @property
    def output_scale(self) -> np.ndarray:
        return self.scale if self.payload is None else self.payload

    def out_shape(self, shapes: list[Shape]) -> Shape:
        (shape,) = shapes
        for what, value in (("scale", self.scale), ("payload", self.output_scale)):
            if value.ndim > 1 or (value.ndim == 1 and value.shape[0] != shape[0]):
                raise GraphError(f"{self.name}: {what} {value.shape} does not fit {shape}")
            if not (np.all(np.isfinite(value)) and np.all(value > 0)):
                raise GraphError(f"{self.name}: {what}s must be finite and > 0")
        if not (self.neg_min <= 0 < self.pos_max):
            raise GraphError(f"{self.name}: bounds need neg_min <= 0 < pos_max")
        if not 0 <= self.hysteresis < 1:
            raise GraphError(f"{self.name}: hysteresis must be in [0, 1) steps, got {self.hysteresis}")
        return shape


@dataclass(frozen=True)
class SigmaDelta(_OneInput):
    """A sigma-delta neuron as Lava's ``SigmaDelta`` defines it (the sigma-delta baseline).

    It integrates its input (sigma), applies ReLU (``relu``) or the identity, and sends the change
    of that activation since its last message, as one graded spike, whenever the change reaches
    ``threshold`` in magnitude.  No quantiser: it converges to within ``threshold`` of the float
    activation, not to a QANN level.
    """

    threshold: np.ndarray  # () or (C,)
    relu: bool = True

    def out_shape(self, shapes: list[Shape]) -> Shape:
        (shape,) = shapes
        value = self.threshold
        if value.ndim > 1 or (value.ndim == 1 and value.shape[0] != shape[0]):
            raise GraphError(f"{self.name}: threshold {value.shape} does not fit {shape}")
        if not (np.all(np.isfinite(value)) and np.all(value >= 0)):
            raise GraphError(f"{self.name}: thresholds must be finite and >= 0")
        return shape


@dataclass(frozen=True)
class Add:
    name: str
    inputs: tuple[str, ...]

    def out_shape(self, shapes: list[Shape]) -> Shape:
        if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
            raise GraphError(f"{self.name}: add needs two or more equal shapes, got {shapes}")
        return shapes[0]


@dataclass(frozen=True)
class _Pool(_OneInput):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)

    def out_shape(self, shapes: list[Shape]) -> Shape:
        (shape,) = shapes
        (kh, kw), (ph, pw) = pair(self.kernel), pair(self.padding)
        if 2 * ph > kh or 2 * pw > kw:
            raise GraphError(f"{self.name}: padding {self.padding} exceeds half the kernel")
        oh, ow = sliding_window_size(self.name, shape, self.kernel, self.stride, self.padding, "pool")
        return (shape[0], oh, ow)


@dataclass(frozen=True)
class AvgPool(_Pool):
    """Average pooling (zero padding counted); global pooling is a kernel of the map's size."""


def pool_as_conv(pool: AvgPool, channels: int, weight: float = 1.0) -> Conv:
    """An average pool's connectivity as the depthwise conv it is, every weight ``weight``: ones for
    its (integer) window sum, ``1 / window`` for the mean itself."""
    kh, kw = pair(pool.kernel)
    return Conv(pool.name, pool.input, np.full((channels, 1, kh, kw), float(weight)), None,
                pair(pool.stride), pair(pool.padding), groups=channels)


@dataclass(frozen=True)
class MaxPool(_Pool):
    """Max pooling (padding never wins).  In an SNN it pools the accumulated input and emits the
    change of the pooled value, so its output converges to the max of the quantised input."""


@dataclass(frozen=True)
class Flatten(_OneInput):

    def out_shape(self, shapes: list[Shape]) -> Shape:
        (shape,) = shapes
        return (int(np.prod(shape)),)


Node = Conv | Linear | Neuron | SigmaDelta | Add | AvgPool | MaxPool | Flatten
SYNAPTIC = (Conv, Linear)
SPIKING = (Neuron, SigmaDelta)
INPUT = "input"


@dataclass
class SpikingGraph:
    """A converted network: input shape, nodes in topological order, name of the output node."""

    input_shape: Shape
    nodes: list[Node]
    output: str
    shapes: dict[str, Shape] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(d) for d in self.input_shape)
        shapes: dict[str, Shape] = {INPUT: self.input_shape}
        for node in self.nodes:
            if node.name in shapes:
                raise GraphError(f"duplicate node name {node.name!r}")
            missing = [i for i in node.inputs if i not in shapes]
            if missing:
                raise GraphError(f"{node.name}: inputs {missing} are not defined before it")
            shapes[node.name] = node.out_shape([shapes[i] for i in node.inputs])
        if self.output not in shapes:
            raise GraphError(f"output {self.output!r} is not a node of the graph")
        self.shapes = shapes

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def neurons(self) -> list[Neuron]:
        return [n for n in self.nodes if isinstance(n, Neuron)]

    @property
    def sigma_deltas(self) -> list[SigmaDelta]:
        return [n for n in self.nodes if isinstance(n, SigmaDelta)]


def with_hysteresis(graph: SpikingGraph, hysteresis: float) -> SpikingGraph:
    """``graph`` with every ST-BIF neuron's ``hysteresis`` set (see :class:`Neuron`)."""
    nodes = [replace(n, hysteresis=float(hysteresis)) if isinstance(n, Neuron) else n
             for n in graph.nodes]
    return SpikingGraph(graph.input_shape, nodes, graph.output)


def hysteresis_of(graph: SpikingGraph) -> float:
    """The largest hysteresis of the graph's neurons (0: none has any)."""
    return max((n.hysteresis for n in graph.neurons), default=0.0)
