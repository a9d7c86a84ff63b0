"""The ST-BIF neuron as a pure function: the spec every backend is tested against.

State ``q`` is the residual in units of the scale ``s`` (starts at 0.5, so that releasing quanta
rounds to nearest); ``acc`` is the integer count of released quanta (starts at 0).  Once the input
stops changing, ``s * acc`` equals ``s * clamp(floor(total / s + 0.5), neg_min, pos_max)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class STBIFStep(NamedTuple):
    spike: torch.Tensor
    q: torch.Tensor
    acc: torch.Tensor


def initial_state(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh residual (0.5) and accumulator (0) shaped, typed and placed like ``like``."""
    return torch.full_like(like, 0.5), torch.zeros_like(like)


def stbif_step(
    current: torch.Tensor,
    q: torch.Tensor,
    acc: torch.Tensor,
    scale: torch.Tensor,
    pos_max: torch.Tensor,
    neg_min: torch.Tensor,
) -> STBIFStep:
    """One time step; returns the ternary spike (-1, 0, +1) and the new state, inputs untouched.

    ``scale``, ``pos_max`` and ``neg_min`` broadcast against ``current`` (per tensor or per
    channel).  The output current of the neuron is ``spike * scale``.
    """
    q = q + current / scale
    pos = (q >= 1) & (acc < pos_max)
    neg = (q < 0) & (acc > neg_min)
    spike = pos.to(q.dtype) - neg.to(q.dtype)
    return STBIFStep(spike, q - spike, acc + spike)


def stbif_settle(
    current: torch.Tensor,
    q: torch.Tensor,
    acc: torch.Tensor,
    scale: torch.Tensor,
    pos_max: torch.Tensor,
    neg_min: torch.Tensor,
    hysteresis: float = 0.0,
) -> STBIFStep:
    """Integrate ``current`` and fire until quiet, at once: the ``layerwise`` schedule.

    Returns the change of the released count (all its spikes have one sign, ``|change|`` of them)
    and the new state: exactly what :func:`stbif_step` reaches by stepping with ``current`` and
    then zeros until no neuron spikes.  With ``hysteresis`` ``h`` the neuron fires up while
    ``q >= 1 + h`` and down while ``q < -h``: its level stays put while the input stays within
    ``h`` steps beyond its rounding band (see :class:`vistream_neuro.ir.Neuron`).
    """
    q = q + current / scale
    if hysteresis:
        fire = torch.where(q >= 1 + hysteresis, torch.floor(q - hysteresis),
                           torch.where(q < -hysteresis, torch.floor(q + hysteresis), torch.zeros_like(q)))
    else:
        fire = torch.floor(q)
    change = torch.minimum(torch.maximum(fire, neg_min - acc), pos_max - acc) + 0.0  # no -0
    return STBIFStep(change, q - change, acc + change)


def quantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    pos_max: torch.Tensor,
    neg_min: torch.Tensor,
    payload: torch.Tensor | None = None,
) -> torch.Tensor:
    """The QANN activation the neuron converges to: ``p * clamp(floor(x/s + 0.5), neg_min, pos_max)``
    with ``p`` the payload per released quantum (the scale unless given)."""
    level = torch.minimum(torch.maximum(torch.floor(x / scale + 0.5), neg_min), pos_max)
    return (scale if payload is None else payload) * level
