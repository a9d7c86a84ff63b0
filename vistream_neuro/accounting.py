"""Synaptic operations, MACs, spikes and neuron updates: one counter for every backend.

The counter reads only the IR and the values each node carried in one time step (what any
simulator can hand over), never framework internals (docs/ARCHITECTURE.md, "Accounting"):

- SOPs of a conv/linear layer in a step = sum over the nonzero entries (events) of its input of
  their fan-out, exact at borders and for strides and groups.  A ternary spike is one event;
  the outputs of adds and pooling are events for the next layer but cost nothing themselves.
- The analog input (a frame or a frame difference) is not a spike: it costs MACs, counted the
  same way on its nonzero entries.
- The same steps under ViStream's counting convention (:mod:`vistream_neuro.vistream_ops`), kept
  beside ours in each frame's counts.
- Spikes (+1 and -1 separately; sigma-delta: graded events by sign), neuron updates (dense: every
  neuron every step; event-driven: neurons that received a nonzero current or fired), the minimum
  spikes a layer needed (the sum of |change of its quantised level| over the frame), and the events
  of the input and of max pools (what a chip would send as messages).

Totals accumulate on the simulator's device; the host reads them once per frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import InitVar, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vistream_neuro import ir
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.vistream_ops import VistreamCounter, VistreamFrame


def spatial_fanout(node: ir.Conv, in_shape: ir.Shape) -> np.ndarray:
    """For each input pixel of a conv, how many output positions its kernel windows reach.

    The fan-out of input ``(c, y, x)`` is this times the output channels of ``c``'s group.
    """
    _, h, w = in_shape
    _, _, kh, kw = node.weight.shape
    _, oh, ow = node.out_shape([in_shape])
    (sh, sw), (ph, pw) = ir.pair(node.stride), ir.pair(node.padding)
    cover = F.conv_transpose2d(torch.ones(1, 1, oh, ow, dtype=torch.float64),
                               torch.ones(1, 1, kh, kw, dtype=torch.float64), stride=(sh, sw))
    cover = cover[0, 0, ph:ph + h, pw:pw + w]
    spatial = np.zeros((h, w))
    spatial[: cover.shape[0], : cover.shape[1]] = cover.numpy()
    return spatial


def channel_fanout(node: ir.Conv | ir.Linear) -> int:
    """Output channels (or features) each input channel connects to."""
    if isinstance(node, ir.Conv):
        return node.weight.shape[0] // node.groups
    return node.weight.shape[0]


def fanout(node: ir.Conv | ir.Linear, in_shape: ir.Shape) -> np.ndarray:
    """Fan-out of every input entry: how many (output channel, position) pairs it feeds."""
    if isinstance(node, ir.Conv):
        return np.broadcast_to(spatial_fanout(node, in_shape) * channel_fanout(node), in_shape).copy()
    return np.full(in_shape, float(channel_fanout(node)))


def neuron_fanout(graph: ir.SpikingGraph) -> dict[str, np.ndarray]:
    """Per ST-BIF neuron layer, the synaptic operations one event of each of its entries costs:
    the fan-out into every conv/linear it reaches, through adds and flattens as they are, through
    a pool as the pool's outputs' cost shared among its inputs (all of a window changing together).

    A graded layer-wise frame costs the sum of this over the entries whose level changed, so this
    is what a calibration weighs level changes by (:func:`vistream_neuro.calibration.distill`).
    """
    cost: dict[str, np.ndarray] = {}  # per node: what one event of each output entry costs
    for node in reversed(graph.nodes):
        shape = graph.shapes[node.name]
        total = np.zeros(shape)
        for user in (u for u in graph.nodes if node.name in u.inputs):
            if isinstance(user, ir.Conv | ir.Linear):
                total += fanout(user, shape)
            elif isinstance(user, ir.Add | ir.Flatten):
                total += cost[user.name].reshape(shape)
            elif isinstance(user, ir.AvgPool | ir.MaxPool):
                total += cost[user.name].sum() / total.size
        cost[node.name] = total
    return {n.name: cost[n.name] for n in graph.neurons}


def dense_macs(graph: ir.SpikingGraph) -> dict[str, int]:
    """MACs per conv/linear layer of one dense (ANN) forward pass."""
    macs = {}
    for node in graph.nodes:
        if isinstance(node, ir.Conv):
            _, in_per_group, kh, kw = node.weight.shape
            macs[node.name] = int(np.prod(graph.shapes[node.name])) * in_per_group * kh * kw
        elif isinstance(node, ir.Linear):
            macs[node.name] = int(node.weight.size)
    return macs


class Counts(Mapping[str, int]):
    """Per-layer counts of one frame as a read-only mapping, held as one int64 array beside layer
    names shared by every frame of a run: a run keeps one of these per frame and kind, and a dict
    of Python ints would cost about seven times the memory (~20 KB per frame for MobileNetV2)."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: np.ndarray) -> None:
        self._index, self._values = index, values

    @classmethod
    def of(cls, counts: Mapping[str, int], shared: dict[tuple, dict[str, int]] | None = None) -> Counts:
        """``counts`` compacted; ``shared`` maps layer-name tuples to one index each, so that frames
        with the same layers share it."""
        names = tuple(counts)
        index = {n: i for i, n in enumerate(names)} if shared is None else shared.get(names)
        if index is None:
            index = shared[names] = {n: i for i, n in enumerate(names)}
        return cls(index, np.fromiter(counts.values(), dtype=np.int64, count=len(names)))

    def __getitem__(self, name: str) -> int:
        return int(self._values[self._index[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def values(self):  # one conversion instead of one per item
        return self._values.tolist()

    def __repr__(self) -> str:
        return f"Counts({dict(self.items())})"


_KINDS = ("sops", "input_macs", "spikes_pos", "spikes_neg", "updates_dense", "updates_event", "min_spikes",
          "events")


@dataclass
class FrameOps:
    """Operation counts of one frame (all steps), per layer; ints on the host (given as dicts,
    kept as :class:`Counts`)."""

    timesteps: int
    sops: Mapping[str, int]  # per synaptic layer fed by events
    input_macs: Mapping[str, int]  # per synaptic layer fed by the analog input
    spikes_pos: Mapping[str, int]
    spikes_neg: Mapping[str, int]
    updates_dense: Mapping[str, int]
    updates_event: Mapping[str, int]
    min_spikes: Mapping[str, int]
    events: Mapping[str, int] = field(default_factory=dict)  # nonzero entries of the input and max pools
    vistream: VistreamFrame | None = None  # the same frame under ViStream's convention (vistream_ops)
    shared: InitVar[dict | None] = None

    def __post_init__(self, shared: dict | None) -> None:
        for kind in _KINDS:
            counts = getattr(self, kind)
            if not isinstance(counts, Counts):
                setattr(self, kind, Counts.of(counts, shared))

    def layer_cost(self, name: str) -> int:
        """SOPs of a spike-fed layer, or MACs of the layer fed by the analog input."""
        return self.sops.get(name, self.input_macs.get(name, 0))

    @property
    def total_sops(self) -> int:
        return sum(self.sops.values())

    @property
    def total_input_macs(self) -> int:
        return sum(self.input_macs.values())

    @property
    def total_spikes(self) -> int:
        return sum(self.spikes_pos.values()) + sum(self.spikes_neg.values())

    @property
    def total_min_spikes(self) -> int:
        return sum(self.min_spikes.values())


def _unit(value: np.ndarray, shape: ir.Shape, device: torch.device) -> torch.Tensor:
    """A neuron's payload shaped to broadcast over its ``(N, *shape)`` values."""
    unit = torch.as_tensor(value, dtype=torch.float64, device=device)
    return unit.reshape(-1, *([1] * (len(shape) - 1))) if unit.ndim == 1 else unit


class OpCounter:
    """Counts operations from per-step node values of a simulated :class:`SpikingGraph`.

    It reads the run's :class:`~vistream_neuro.options.ExecutionOptions`: with ``spikes="ternary"``
    one event per released quantum, with ``"graded"`` one per message (a neuron's nonzero output,
    however many quanta it carries); in the ``layerwise`` schedule a neuron sends its whole change
    in one step, so a ternary count reads the number of quanta from the value, while ``timestep``
    simulators send one quantum per step.  Counts stay on the simulator's ``device``.
    """

    def __init__(self, graph: ir.SpikingGraph, options: ExecutionOptions | None = None) -> None:
        options = options or ExecutionOptions()
        self.graph = graph
        self.device = torch.device(options.device)
        self._synaptic = [n for n in graph.nodes if isinstance(n, ir.SYNAPTIC)]
        self._neurons = [n for n in graph.nodes if isinstance(n, ir.SPIKING)]
        graded = [n.name for n in graph.neurons] if options.spikes == "graded" else []
        self._graded = [n.name for n in graph.sigma_deltas] + graded  # signs counted per step
        ternary_layerwise = (options.spikes, options.schedule) == ("ternary", "layerwise")
        self._quanta = ({n.name: _unit(n.output_scale, graph.shapes[n.name], self.device)
                         for n in graph.neurons} if ternary_layerwise else {})
        self._sources = [ir.INPUT, *(n.name for n in graph.nodes if isinstance(n, ir.MaxPool))]
        self._spatial = {n.name: torch.as_tensor(spatial_fanout(n, graph.shapes[n.input]).round(),
                                                 dtype=torch.int64, device=self.device)
                         for n in self._synaptic if isinstance(n, ir.Conv)}
        self._channel = {n.name: channel_fanout(n) for n in self._synaptic}
        self._size = {n.name: int(np.prod(graph.shapes[n.name])) for n in self._neurons}
        # what each step's row of counts holds, in order: (kind, layer names)
        self._layout = [("events", [n.name for n in self._synaptic]),
                        ("fired", [n.name for n in self._neurons]),
                        ("active", [n.name for n in self._neurons]),
                        ("graded_pos", self._graded),
                        ("sources", self._sources)]
        self._prev_levels: dict[str, torch.Tensor] | None = None
        self._vistream = VistreamCounter(graph)
        self._shared: dict[tuple, dict[str, int]] = {}  # layer names -> index, one per kind for all frames
        self.reset_stream()

    def reset_stream(self) -> None:
        """Forget the levels of the previous frame (call when the simulator is reset)."""
        self._prev_levels = None
        self._vistream.reset()
        self._start_frame()

    def _start_frame(self) -> None:
        self._steps = 0
        self._counts: list[torch.Tensor] = []  # per step: one row of per-layer counts

    def count_step(self, values: dict[str, torch.Tensor], steps: int = 1) -> None:
        """Add one step, given each node's value in it (``values[ir.INPUT]`` is the input current).

        Multi-step simulators pass ``steps`` steps at once, stacked along the batch dimension.

        Counts stay on the device as 0-dim tensors, stacked once per step; nothing syncs here.
        Per node, the events of each pixel (its nonzero channels, or its quanta) are counted once
        and serve both the node's own spike count and the SOPs of every layer it feeds.
        """
        self._steps += steps
        self._vistream.count_step(values, steps)
        pixels: dict[str, torch.Tensor] = {}

        def nonzero_per_pixel(name: str) -> torch.Tensor:
            if name not in pixels:
                unit = self._quanta.get(name)
                pixels[name] = (torch.count_nonzero(values[name], dim=1) if unit is None
                                else torch.round(values[name].abs() / unit.to(values[name])).sum(1).long())
            return pixels[name]

        def events(node: ir.Conv | ir.Linear) -> torch.Tensor:
            spatial, per_pixel = self._spatial.get(node.name), nonzero_per_pixel(node.input)
            weighted = per_pixel.sum() if spatial is None else (per_pixel * spatial).sum()
            return weighted * self._channel[node.name]

        row = {
            "events": [events(n) for n in self._synaptic],
            "fired": [nonzero_per_pixel(n.name).sum() for n in self._neurons],
            "active": [torch.count_nonzero(torch.logical_or(values[n.input], values[n.name]))
                       for n in self._neurons],
            "graded_pos": [torch.count_nonzero(values[name] > 0) for name in self._graded],
            "sources": [nonzero_per_pixel(name).sum() for name in self._sources],
        }
        self._counts.append(torch.stack([c for kind, _ in self._layout for c in row[kind]]))

    def _totals(self) -> dict[str, dict[str, int]]:
        """The frame's counts per kind and layer (one host read)."""
        width = sum(len(names) for _, names in self._layout)
        flat = torch.stack(self._counts).sum(0).tolist() if self._counts else [0] * width
        totals, at = {}, 0
        for kind, names in self._layout:
            totals[kind] = dict(zip(names, flat[at:at + len(names)], strict=True))
            at += len(names)
        return totals

    def take_frame(self, levels: dict[str, torch.Tensor]) -> FrameOps:
        """Counts since the last call, given the end-of-frame levels of every neuron layer.

        The level change splits the spikes by sign (it is +1 spikes minus -1 spikes) and gives
        the minimum spikes (the sum of its absolute values).
        """
        totals = self._totals()
        fired = totals["fired"]
        prev = self._prev_levels
        change = {k: v - prev[k] if prev else v for k, v in levels.items()}
        net = {k: int(v.sum()) for k, v in change.items()}
        pos = {k: (fired[k] + net[k]) // 2 for k in net}
        pos.update(totals["graded_pos"])
        analog = {n.name for n in self._synaptic if n.input == ir.INPUT}
        ops = FrameOps(
            timesteps=self._steps,
            sops={k: v for k, v in totals["events"].items() if k not in analog},
            input_macs={k: v for k, v in totals["events"].items() if k in analog},
            spikes_pos=pos, spikes_neg={k: fired[k] - pos[k] for k in pos},
            updates_dense={k: n * self._steps for k, n in self._size.items()},
            updates_event=totals["active"],
            min_spikes={k: int(v.abs().sum()) for k, v in change.items()},
            events=totals["sources"], vistream=self._vistream.take_frame(), shared=self._shared,
        )
        self._prev_levels = {k: v.clone() for k, v in levels.items()}
        self._start_frame()
        return ops
