"""The small protocol every backend's simulator implements; the streaming driver uses only this."""

from __future__ import annotations

from typing import Protocol

import torch

from vistream_neuro import ir


class Simulator(Protocol):
    """Time-stepped network state for a batch of inputs.

    ``step(None)`` means zero input current.  Biases enter as charge once after ``reset()``
    (at the next step), not once per step.  ``graph`` is the graph it simulates.
    """

    graph: ir.SpikingGraph

    def reset(self) -> None:
        """Clear all state (residuals, accumulators, pending input, outputs)."""

    def step(self, current: torch.Tensor | None) -> None:
        """Advance one time step with ``current`` injected at the input layer."""

    def is_quiet(self) -> bool:
        """True when nothing will change without new input (no spike, nothing in flight)."""

    def output(self) -> torch.Tensor:
        """Output accumulated since the last reset."""

    def levels(self) -> dict[str, torch.Tensor]:
        """Per neuron layer, the integer count of released quanta since the last reset."""

    def step_values(self) -> dict[str, torch.Tensor]:
        """What each node (and ``"input"``) carried in the last step: currents, spikes x scale."""

    def close(self) -> None:
        """Release what the simulator holds outside this process (Lava's runtime)."""


class FrameRunner(Simulator, Protocol):
    """A simulator that runs a whole frame per call (multi-step execution); the streaming driver
    uses :meth:`run_frame` instead of stepping when a simulator has it."""

    def run_frame(self, current: torch.Tensor, t_max: int, counter) -> tuple[int, bool]:
        """Inject ``current``, run until quiet or ``t_max`` steps, count every step with
        ``counter`` (an :class:`~vistream_neuro.accounting.OpCounter` or None); return the steps
        taken and whether the network went quiet."""
