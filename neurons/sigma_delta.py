"""The sigma-delta neuron of Lava (``lava.proc.sdn``) as a pure function, for the baseline.

Per step with input ``a_in``: ``sigma += a_in``; ``act = relu(sigma)`` (or ``sigma``);
``delta = act - act_prev + residue``; the neuron sends ``delta`` as one graded spike when
``|delta| >= threshold`` and keeps it as ``residue`` otherwise.  This is Lava's floating-point
model without cumulative error; biases reach ``sigma`` as charge (the IR's convention) instead
of sitting inside the activation, which is the same once they have entered.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class SigmaDeltaStep(NamedTuple):
    spike: torch.Tensor  # graded: the value sent (0 where nothing is sent)
    sigma: torch.Tensor
    act: torch.Tensor
    residue: torch.Tensor


def initial_state(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero sigma, activation and residue shaped, typed and placed like ``like``."""
    return torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like)


def sigma_delta_step(current: torch.Tensor, sigma: torch.Tensor, act: torch.Tensor,
                     residue: torch.Tensor, threshold: torch.Tensor, relu: bool) -> SigmaDeltaStep:
    """One time step; inputs untouched.  ``threshold`` broadcasts against ``current``."""
    sigma = sigma + current
    new_act = torch.clamp(sigma, min=0) if relu else sigma
    delta = new_act - act + residue
    spike = torch.where(delta.abs() >= threshold, delta, torch.zeros_like(delta))
    return SigmaDeltaStep(spike, sigma, new_act, delta - spike)
