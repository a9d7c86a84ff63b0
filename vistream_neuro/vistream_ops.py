"""ViStream's op-counting convention, as a second accounting beside ours (docs/ARCHITECTURE.md,
"Accounting", and docs/vistream_ops.md for the differences and their size).

ViStream prices its SNN with counters adapted from syops-counter (its
``energy_consumption_calculation``).  Applied to the values our nodes carry in each step (what
:class:`vistream_neuro.accounting.OpCounter` reads), its rules are:

- a conv / linear layer is looked at in every step in which its input is not all zero; its dense
  ops are its MACs plus, when it has a bias, ``C_out x H_out x W_out`` (``C_out`` for a linear);
- that input counts as spikes when it holds at most 3 distinct values (all in [-1, 1] once divided
  by its largest magnitude, which they then are); its ACs are the dense ops times the mean of
  ``|x| / max |x|`` (so borders and strides are not exact); any other input is charged the dense
  ops as MACs;
- every neuron is charged one AC per step (the ``IFNeuron`` hook counts its inputs every call);
- a layer's rate is summed over its calls and divided by 32 steps per forward, which are
  hard-coded (``Tsteps``), conv layers multiplied back by 32; a layer whose rate is exactly 100%
  is priced by its MACs, every other by its ACs (so MACs of a layer that also saw spikes vanish);
- energy: 4.6 pJ per MAC, 0.9 pJ per AC.

One stream per counter (batch 1, as the runner runs it); multi-step simulators hand several steps
stacked along the batch dimension, one row each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vistream_neuro import ir

MAC_PJ, AC_PJ = 4.6, 0.9  # ViStream's get_energy_cost (Horowitz's 45 nm float32 MAC and add)
STEPS_PER_FORWARD = 32  # ViStream's counter divides every rate by 32 steps per forward, whatever ran
FULL_RATE_TOLERANCE = 1e-4  # percent: ViStream's test for a layer at a 100% rate


@dataclass(frozen=True)
class Layout:
    """What a counter's per-frame array holds: per synaptic layer its dense and bias ops per call;
    per neuron layer its size; and where each kind sits in the array."""

    synaptic: tuple[str, ...]
    conv: tuple[bool, ...]  # per synaptic layer: a conv (its rate is multiplied back by 32)
    dense: np.ndarray  # per synaptic layer: MACs + bias ops of one call
    bias: np.ndarray  # per synaptic layer: bias ops of one call
    neurons: tuple[str, ...]
    size: np.ndarray  # per neuron layer: neurons

    @classmethod
    def of(cls, graph: ir.SpikingGraph) -> Layout:
        synaptic = [n for n in graph.nodes if isinstance(n, ir.SYNAPTIC)]
        dense, bias = [], []
        for node in synaptic:
            out = int(np.prod(graph.shapes[node.name]))
            fan_in = int(np.prod(node.weight.shape[1:]))  # in channels per group x kernel
            has_bias = node.bias is not None
            dense.append(out * fan_in + (out if has_bias else 0))
            bias.append(out if has_bias else 0)
        neurons = [n for n in graph.nodes if isinstance(n, ir.SPIKING)]
        return cls(tuple(n.name for n in synaptic), tuple(isinstance(n, ir.Conv) for n in synaptic),
                   np.asarray(dense, dtype=np.float64), np.asarray(bias, dtype=np.float64),
                   tuple(n.name for n in neurons),
                   np.asarray([np.prod(graph.shapes[n.name]) for n in neurons], dtype=np.float64))


@dataclass(frozen=True, eq=False)
class VistreamFrame:
    """One frame under ViStream's convention, before pricing (which needs the whole run): per
    synaptic layer the calls charged as MACs and the summed spike rates of the others, per neuron
    layer the summed rates of its outputs, and the steps.  Frames compare equal up to the order in
    which rates were summed (stepping and multi-step execution add them differently)."""

    layout: Layout
    mac_calls: np.ndarray
    spike_rates: np.ndarray
    neuron_rates: np.ndarray
    steps: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VistreamFrame):
            return NotImplemented
        return (self.layout.synaptic == other.layout.synaptic and self.layout.neurons == other.layout.neurons
                and self.steps == other.steps and np.array_equal(self.mac_calls, other.mac_calls)
                and np.allclose(self.spike_rates, other.spike_rates, rtol=1e-12, atol=0)
                and np.allclose(self.neuron_rates, other.neuron_rates, rtol=1e-12, atol=0))


def _rows(value: torch.Tensor, shape: ir.Shape) -> torch.Tensor:
    """One row per step (batch 1), in float64 (rates summed in float32 would depend on how a
    simulator batches its steps)."""
    return value.reshape(-1, int(np.prod(shape))).double()


def spike_rate(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: whether it is nonzero, whether ViStream takes it for spikes (at most 3 distinct
    values) and its rate (mean of ``|x| / max |x|``; 1 for a row that is not spikes)."""
    peak = rows.abs().amax(1)
    nonzero = peak > 0
    lo, hi = rows.amin(1, keepdim=True), rows.amax(1, keepdim=True)
    middle = (rows != lo) & (rows != hi)
    mid_hi = torch.where(middle, rows, -torch.inf).amax(1)
    mid_lo = torch.where(middle, rows, torch.inf).amin(1)
    spikes = ~middle.any(1) | (mid_hi == mid_lo)
    rate = rows.abs().sum(1) / peak.clamp_min(torch.finfo(rows.dtype).tiny) / rows.shape[1]
    return nonzero, spikes, torch.where(spikes, rate, torch.ones_like(rate))


class VistreamCounter:
    """ViStream's counts of a simulated :class:`SpikingGraph`, fed the node values of every step
    (by :class:`vistream_neuro.accounting.OpCounter`); totals stay on the device until a frame ends."""

    def __init__(self, graph: ir.SpikingGraph) -> None:
        self.graph = graph
        self.layout = Layout.of(graph)
        self._inputs = [graph.node(name).input for name in self.layout.synaptic]
        self.reset()

    def reset(self) -> None:
        """Drop the counts of an unfinished frame (the simulator was reset)."""
        self._steps = 0
        self._counts: list[torch.Tensor] = []

    def count_step(self, values: dict[str, torch.Tensor], steps: int = 1) -> None:
        self._steps += steps
        row = []
        for source in self._inputs:
            nonzero, spikes, rate = spike_rate(_rows(values[source], self.graph.shapes[source]))
            row += [(nonzero & ~spikes).sum().double(), torch.where(nonzero & spikes, rate, 0).sum().double()]
        for name in self.layout.neurons:
            nonzero, spikes, rate = spike_rate(_rows(values[name], self.graph.shapes[name]))
            row.append(torch.where(nonzero, rate, 0).sum().double())
        self._counts.append(torch.stack(row) if row else torch.zeros(0, dtype=torch.float64))

    def take_frame(self) -> VistreamFrame:
        n = len(self.layout.synaptic)
        flat = (torch.stack(self._counts).sum(0).cpu().numpy() if self._counts
                else np.zeros(2 * n + len(self.layout.neurons)))
        frame = VistreamFrame(self.layout, flat[: 2 * n: 2].copy(), flat[1: 2 * n: 2].copy(),
                              flat[2 * n:].copy(), self._steps)
        self.reset()
        return frame


def summary(frames: list[VistreamFrame]) -> dict:
    """A run's ops per frame and energy under ViStream's convention (each layer priced by MACs or
    ACs over the whole run, as its counter does at the end of a dataset).  ``macs_dropped``: MACs
    of calls whose input was not spikes on layers priced by their ACs (charged nothing);
    ``non_spike_calls``: such layer calls per frame, on any layer."""
    if not frames:
        raise ValueError("no frames to price")
    layout, count = frames[0].layout, len(frames)
    mac_calls = sum(f.mac_calls for f in frames)
    spike_rates = sum(f.spike_rates for f in frames)
    neuron_rates = sum(f.neuron_rates for f in frames)
    steps = sum(f.steps for f in frames)
    # percent rate as ViStream's get_energy_cost sees it (every call's rate / 32 steps per frame)
    synaptic_pct = 100 * (mac_calls + spike_rates) / (STEPS_PER_FORWARD * count)
    synaptic_pct = np.where(layout.conv, synaptic_pct * STEPS_PER_FORWARD, synaptic_pct)
    neuron_pct = 100 * neuron_rates / (STEPS_PER_FORWARD * count)
    as_macs = np.abs(synaptic_pct - 100) < FULL_RATE_TOLERANCE
    macs = float(np.sum(np.where(as_macs, mac_calls * layout.dense, 0))) / count
    synaptic_acs = float(np.sum(np.where(as_macs, 0, spike_rates * layout.dense))) / count
    neuron_acs = float(np.sum(np.where(np.abs(neuron_pct - 100) < FULL_RATE_TOLERANCE, 0,
                                       layout.size * steps))) / count
    share = np.divide(layout.bias, layout.dense, out=np.zeros_like(layout.dense), where=layout.dense > 0)
    bias_macs = float(np.sum(np.where(as_macs, share * mac_calls * layout.dense, 0))) / count
    bias_acs = float(np.sum(np.where(as_macs, 0, share * spike_rates * layout.dense))) / count
    acs = synaptic_acs + neuron_acs
    dropped = float(np.sum(np.where(as_macs, 0, mac_calls * layout.dense))) / count
    ops = {"macs": macs, "acs": acs, "acs_synaptic": synaptic_acs, "acs_neuron": neuron_acs,
           "bias_ops": bias_macs + bias_acs, "bias_ops_in_acs": bias_acs, "total": macs + acs,
           "macs_dropped": dropped,
           "non_spike_calls": float(np.sum(mac_calls)) / count}
    return {"ops_per_frame": ops,
            "energy_pj_per_frame": macs * MAC_PJ + acs * AC_PJ,
            "layers_as_macs": [n for n, m in zip(layout.synaptic, as_macs, strict=True) if m]}
