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


def _fire(q: torch.Tensor, acc: torch.Tensor, pos_max: torch.Tensor, neg_min: torch.Tensor,
          hysteresis: float) -> torch.Tensor:
    """The ternary spike at residual ``q``: up from ``1 + h``, down below ``-h``, within the bounds."""
    pos = (q >= 1 + hysteresis) & (acc < pos_max)
    neg = (q < -hysteresis) & (acc > neg_min)
    return pos.to(q.dtype) - neg.to(q.dtype)


def stbif_step(
    current: torch.Tensor,
    q: torch.Tensor,
    acc: torch.Tensor,
    scale: torch.Tensor,
    pos_max: torch.Tensor,
    neg_min: torch.Tensor,
    hysteresis: float = 0.0,
) -> STBIFStep:
    """One time step; returns the ternary spike (-1, 0, +1) and the new state, inputs untouched.

    ``scale``, ``pos_max`` and ``neg_min`` broadcast against ``current`` (per tensor or per
    channel).  The output current of the neuron is ``spike * scale``.  With ``hysteresis`` ``h``
    the thresholds move out to ``q >= 1 + h`` and ``q < -h`` (the rule :func:`stbif_settle`
    settles by; the timestep schedule runs without).
    """
    q = q + current / scale
    spike = _fire(q, acc, pos_max, neg_min, hysteresis)
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

    Returns the change of the released count and the new state: exactly what :func:`stbif_step`
    (with the same ``hysteresis``) reaches by stepping with ``current`` and then zeros until no
    neuron spikes, bit for bit, in float32 and float64 alike, while ``|q + current / scale|``
    stays below ``2**digits`` of the dtype (``2**24`` in float32), where integers subtract
    exactly.  With ``hysteresis`` ``h`` the neuron fires up while ``q >= 1 + h`` and down while
    ``q < -h``: its level stays put while the input stays within ``h`` steps beyond its rounding
    band (see :class:`vistream_neuro.ir.Neuron`).

    Stepping's residuals ``q - i`` are exact but for the last of a run down, ``q + k``, which
    rounds: a residual a hair below 0 can come back as exactly 1 (``+ h``), and stepping then
    fires one up again.  So the steps are counted on exact values (``floor(q)``, and with ``h``
    whether the residual one step before the end still crosses its threshold), taken in one
    subtraction that rounds as stepping's last, and the one step stepping can still take
    follows (docs/stbif.md).
    """
    q = q + current / scale
    up, down = 1 + hysteresis, -hysteresis
    fire = torch.floor(q)
    if hysteresis:  # without, the residual one step before the end always crosses its threshold
        fire = torch.where(q >= up, fire - (q - (fire - 1) < up).to(q.dtype),  # 1 + frac(q), exact
                           torch.where(q < down, fire + (q - (fire + 1) >= down).to(q.dtype),  # frac(q) - 1
                                       torch.zeros_like(q)))
    settled = torch.clamp(acc + fire, neg_min, pos_max)
    change = settled - acc
    q = q - change
    again = ((q >= up) & (settled < pos_max)).to(q.dtype)  # after a run down, from q + k rounded to 1 + h
    return STBIFStep(change + again, q - again, settled + again)


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
