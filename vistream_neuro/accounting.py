"""Synaptic operations, MACs, spikes and neuron updates: one counter for every backend.

The counter reads only the IR and the values each node carried in one time step (what any
simulator can hand over), never framework internals (DESIGN.md section 5):

- SOPs of a conv/linear layer in a step = sum over the nonzero entries (events) of its input of
  their fan-out, exact at borders and for strides and groups.  A ternary spike is one event;
  the outputs of adds and pooling are events for the next layer but cost nothing themselves.
- The analog input (a frame or a frame difference) is not a spike: it costs MACs, counted the
  same way on its nonzero entries.
- Spikes (+1 and -1 separately), neuron updates (dense: every neuron every step; event-driven:
  neurons that received a nonzero current or fired), and the minimum spikes a layer needed (the
  sum of |change of its quantised level| over the frame).

Totals accumulate on the simulator's device; the host reads them once per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vistream_neuro import ir


def conv_fanout(node: ir.Conv, in_shape: ir.Shape) -> np.ndarray:
    """Fan-out of each input position of a conv: how many (output channel, position) pairs it feeds."""
    c, h, w = in_shape
    out_c, _, kh, kw = node.weight.shape
    _, oh, ow = node.out_shape([in_shape])
    (sh, sw), (ph, pw) = ir.pair(node.stride), ir.pair(node.padding)
    cover = F.conv_transpose2d(torch.ones(1, 1, oh, ow, dtype=torch.float64),
                               torch.ones(1, 1, kh, kw, dtype=torch.float64), stride=(sh, sw))
    cover = cover[0, 0, ph:ph + h, pw:pw + w]
    spatial = np.zeros((h, w))
    spatial[: cover.shape[0], : cover.shape[1]] = cover.numpy()
    return np.broadcast_to(spatial * (out_c // node.groups), (c, h, w)).copy()


def fanout(node: ir.Conv | ir.Linear, in_shape: ir.Shape) -> np.ndarray:
    if isinstance(node, ir.Conv):
        return conv_fanout(node, in_shape)
    return np.full(in_shape, float(node.weight.shape[0]))


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


@dataclass
class FrameOps:
    """Operation counts of one frame (all steps), per layer; ints on the host."""

    timesteps: int
    sops: dict[str, int]  # per synaptic layer fed by events
    input_macs: dict[str, int]  # per synaptic layer fed by the analog input
    spikes_pos: dict[str, int]
    spikes_neg: dict[str, int]
    updates_dense: dict[str, int]
    updates_event: dict[str, int]
    min_spikes: dict[str, int] = field(default_factory=dict)

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


class OpCounter:
    """Counts operations from per-step node values of a simulated :class:`SpikingGraph`."""

    def __init__(self, graph: ir.SpikingGraph, device: torch.device | str = "cpu") -> None:
        self.graph = graph
        self.device = torch.device(device)
        self._synaptic = [n for n in graph.nodes if isinstance(n, ir.SYNAPTIC)]
        self._neurons = graph.neurons
        self._fanout = {n.name: torch.as_tensor(fanout(n, graph.shapes[n.input]), device=self.device)
                        for n in self._synaptic}
        self._size = {n.name: int(np.prod(graph.shapes[n.name])) for n in self._neurons}
        self._prev_levels: dict[str, torch.Tensor] | None = None
        self.reset_stream()

    def reset_stream(self) -> None:
        """Forget the levels of the previous frame (call when the simulator is reset)."""
        self._prev_levels = None
        self._start_frame()

    def _start_frame(self) -> None:
        zero = lambda: torch.zeros((), dtype=torch.float64, device=self.device)  # noqa: E731
        self._steps = 0
        self._events = {n.name: zero() for n in self._synaptic}
        self._pos = {n.name: zero() for n in self._neurons}
        self._neg = {n.name: zero() for n in self._neurons}
        self._active = {n.name: zero() for n in self._neurons}

    def count_step(self, values: dict[str, torch.Tensor]) -> None:
        """Add one step, given each node's value in it (``values[ir.INPUT]`` is the input current)."""
        self._steps += 1
        for node in self._synaptic:
            x = values[node.input]
            weight = self._fanout[node.name]
            self._events[node.name] += ((x != 0).to(weight.dtype) * weight).sum()
        for node in self._neurons:
            out, current = values[node.name], values[node.input]
            self._pos[node.name] += (out > 0).sum()
            self._neg[node.name] += (out < 0).sum()
            self._active[node.name] += ((current != 0) | (out != 0)).sum()

    def take_frame(self, levels: dict[str, torch.Tensor] | None = None) -> FrameOps:
        """Counts since the last call; ``levels`` (end-of-frame) give the minimum spikes."""
        as_int = lambda d: {k: int(round(float(v))) for k, v in d.items()}  # noqa: E731
        events = as_int(self._events)
        analog = {n.name for n in self._synaptic if n.input == ir.INPUT}
        ops = FrameOps(
            timesteps=self._steps,
            sops={k: v for k, v in events.items() if k not in analog},
            input_macs={k: v for k, v in events.items() if k in analog},
            spikes_pos=as_int(self._pos), spikes_neg=as_int(self._neg),
            updates_dense={k: n * self._steps for k, n in self._size.items()},
            updates_event=as_int(self._active),
        )
        if levels is not None:
            prev = self._prev_levels
            ops.min_spikes = {k: int((v - (prev[k] if prev else 0)).abs().sum()) for k, v in levels.items()}
            self._prev_levels = {k: v.clone() for k, v in levels.items()}
        self._start_frame()
        return ops
