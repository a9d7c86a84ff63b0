"""Which neuron sent a message in which step: a run's spike trains, recorded while it is counted.

A simulator that prices a run event by event on a chip model (SANA-FE, through its adapter backend)
replays these trains, so every neuron sends exactly the messages the run sent.  The recorder is an
:class:`~vistream_neuro.accounting.OpCounter` that also keeps, per step, the flat indices of the
nonzero entries of the input and of every population (ST-BIF and sigma-delta neurons, max pools):
it reads the same per-step node values as the counter, nothing of a framework.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vistream_neuro import ir
from vistream_neuro.accounting import FrameOps, OpCounter
from vistream_neuro.options import ExecutionOptions

SOURCES = (ir.Neuron, ir.SigmaDelta, ir.MaxPool)  # the nodes that send messages (the mapper's populations)


class ReplayError(ValueError):
    """A run whose messages cannot be replayed one per neuron and step (the message says why)."""


@dataclass(frozen=True)
class FrameTrains:
    """One frame's messages: per step, per sender (``ir.INPUT`` and each population), the flat
    indices of the entries that sent one."""

    steps: list[dict[str, np.ndarray]]

    def count(self, name: str) -> int:
        return sum(len(step.get(name, ())) for step in self.steps)


def check_replayable(options: ExecutionOptions) -> None:
    """Binary-spike replay needs at most one message per neuron and step: the timestep schedule
    with ternary spikes (the layerwise schedule sends a neuron's whole change in one step)."""
    if (options.schedule, options.spikes) != ("timestep", "ternary"):
        raise ReplayError(f"spike replay needs --schedule timestep with --spikes ternary (one spike per "
                          f"neuron and step); got {options.schedule} / {options.spikes}")


class SpikeRecorder(OpCounter):
    """Counts a run as :class:`OpCounter` does and keeps its spike trains in :attr:`frames`."""

    def __init__(self, graph: ir.SpikingGraph, options: ExecutionOptions | None = None) -> None:
        options = options or ExecutionOptions()
        check_replayable(options)
        super().__init__(graph, options)
        self._senders = [ir.INPUT, *(n.name for n in graph.nodes if isinstance(n, SOURCES))]
        self.frames: list[FrameTrains] = []
        self._steps_recorded: list[dict[str, np.ndarray]] = []

    def count_step(self, values: dict[str, torch.Tensor], steps: int = 1) -> None:
        super().count_step(values, steps)
        for k in range(steps):  # multi-step simulators stack their steps along the batch dimension
            self._steps_recorded.append({
                name: torch.nonzero(values[name][k].flatten()).flatten().cpu().numpy().astype(np.int32)
                for name in self._senders})

    def take_frame(self, levels: dict[str, torch.Tensor]) -> FrameOps:
        ops = super().take_frame(levels)
        self.frames.append(FrameTrains(self._steps_recorded))
        self._steps_recorded = []
        return ops
