"""Lava's sigma-delta neuron as a SpikingJelly neuron, for the sigma-delta baseline.

A ``MemoryModule`` like :class:`neurons.sj_stbif.STBIFNeuron`, so ``functional.reset_net`` clears
it; its step is :func:`neurons.sigma_delta.sigma_delta_step`.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import base

from neurons.sigma_delta import initial_state, sigma_delta_step


class SigmaDeltaNeuron(base.MemoryModule):
    """``threshold``: a scalar, or a tensor broadcasting against the input (``(C, 1, 1)``);
    ``relu``: ReLU activation (else the identity).  Forward returns the graded spikes."""

    def __init__(self, threshold, relu: bool = True) -> None:
        super().__init__()
        threshold_t = torch.as_tensor(threshold, dtype=torch.float64).detach().clone()
        if not torch.isfinite(threshold_t).all() or (threshold_t < 0).any():
            raise ValueError(f"sigma-delta threshold must be finite and >= 0, got {threshold!r}")
        self.register_buffer("threshold", threshold_t)
        self.relu = bool(relu)
        self.step_mode = "s"
        for name in ("sigma", "act", "residue", "spike"):
            self.register_memory(name, None)

    def extra_repr(self) -> str:
        return f"relu={self.relu}"

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma is None or self.sigma.shape != x.shape:
            self.sigma, self.act, self.residue = initial_state(x)
        self.spike, self.sigma, self.act, self.residue = sigma_delta_step(
            x, self.sigma, self.act, self.residue, self.threshold.to(x), self.relu)
        return self.spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Step by step through ``x_seq`` (``(T, ...)``), as the multi-step simulator calls it."""
        return torch.stack([self.single_step_forward(x) for x in x_seq])

    @property
    def quiet(self) -> torch.Tensor:
        """0-dim bool tensor: nothing sent in the last step (no host synchronisation)."""
        if self.spike is None:
            return torch.tensor(True)
        return ~self.spike.bool().any()
