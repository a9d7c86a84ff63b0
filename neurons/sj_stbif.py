"""ST-BIF with LoCC semantics as a SpikingJelly neuron.

Built on SpikingJelly's ``MemoryModule`` so that ``functional.reset_net`` and step modes work as
for any SpikingJelly neuron.  Unlike SpikingJelly's own ``STBIFNode`` it takes explicit bounds
(no ``level``), keeps its state in the input's dtype (float64 runs stay float64) and accepts
per-channel scales.  Its state persists across frames until ``reset()``.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import base
from spikingjelly.activation_based.functional import stbif_multi_step

from neurons.stbif import initial_state, stbif_settle, stbif_step


def _param(value, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float64).detach().clone()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"ST-BIF {name} must be finite, got {value!r}")
    return tensor


class STBIFNeuron(base.MemoryModule):
    """Signed ternary bounded integrate-and-fire neuron.

    ``scale``: quantisation step ``s`` (> 0; a scalar, or a tensor that broadcasts against the
    input, e.g. shape ``(C, 1, 1)`` for per-channel scales of a conv output); ``pos_max`` > 0 and
    ``neg_min`` <= 0: bounds of the released count.
    ``payload``: what one released quantum sends on (defaults to ``scale``).
    ``hysteresis``: band of :meth:`settle` after the first settle since a reset (the first
    rounds to nearest, as the QANN's first frame does); stepping does not take it.
    Forward returns the output current ``spike * payload``; ``spike`` holds the last ternary spikes.
    """

    def __init__(self, scale, pos_max: int, neg_min: int = 0, step_mode: str = "s",
                 payload=None, hysteresis: float = 0.0) -> None:
        super().__init__()
        if int(pos_max) != pos_max or pos_max <= 0:
            raise ValueError(f"pos_max must be a positive integer, got {pos_max!r}")
        if int(neg_min) != neg_min or neg_min > 0:
            raise ValueError(f"neg_min must be an integer <= 0, got {neg_min!r}")
        scale_t = _param(scale, "scale")
        if (scale_t <= 0).any():
            raise ValueError(f"ST-BIF scale must be > 0, got {scale!r}")
        self.register_buffer("scale", scale_t)
        payload_t = scale_t.clone() if payload is None else _param(payload, "payload")
        if (payload_t <= 0).any():
            raise ValueError(f"ST-BIF payload must be > 0, got {payload!r}")
        self.register_buffer("payload", payload_t)
        self.register_buffer("pos_max", torch.tensor(float(pos_max), dtype=torch.float64))
        self.register_buffer("neg_min", torch.tensor(float(neg_min), dtype=torch.float64))
        self.step_mode = step_mode
        self.hysteresis = float(hysteresis)
        self.register_memory("q", None)
        self.register_memory("acc", None)
        self.register_memory("spike", None)

    def extra_repr(self) -> str:
        return (f"pos_max={int(self.pos_max)}, neg_min={int(self.neg_min)}, hysteresis={self.hysteresis}, "
                f"step_mode={self.step_mode}")

    def _params_like(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Scale, bounds and payload in ``x``'s dtype and device, converted once, not every step."""
        source, cast = self.__dict__.get("_cast", (None, None))
        if source is not self.scale or cast[0].dtype != x.dtype or cast[0].device != x.device:
            cast = tuple(t.to(x) for t in (self.scale, self.pos_max, self.neg_min, self.payload))
            self.__dict__["_cast"] = (self.scale, cast)  # dropped when .to() replaces the buffer
        return cast

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.q is None or self.q.shape != x.shape:
            self.q, self.acc = initial_state(x)
        scale, pos_max, neg_min, payload = self._params_like(x)
        self.spike, self.q, self.acc = stbif_step(x, self.q, self.acc, scale, pos_max, neg_min)
        return self.spike * payload

    def settle(self, x: torch.Tensor) -> torch.Tensor:
        """Integrate ``x`` and fire until quiet in one call (the ``layerwise`` schedule); returns
        the output ``change * payload`` and keeps the change of the count in ``spike``."""
        fresh = self.q is None or self.q.shape != x.shape
        if fresh:
            self.q, self.acc = initial_state(x)
        scale, pos_max, neg_min, payload = self._params_like(x)
        band = 0.0 if fresh else self.hysteresis  # the first settle since a reset rounds to nearest
        self.spike, self.q, self.acc = stbif_settle(x, self.q, self.acc, scale, pos_max, neg_min, band)
        return self.spike * payload

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All steps of ``x_seq`` (``(T, ...)``): fused in one kernel on CUDA; on the CPU step by
        step, since SpikingJelly's CPU operator also steps in Python, with more operations a step."""
        if x_seq.is_cuda:
            return self.fused_multi_step(x_seq)
        return torch.stack([self.single_step_forward(x) for x in x_seq])

    def fused_multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All steps of ``x_seq`` in SpikingJelly's fused ST-BIF operator (one launch on CUDA).
        Its threshold is one scalar, so the input enters in units of our per-channel scale (the
        division :func:`stbif_step` makes) with threshold 1; each step then makes the operations of
        :func:`stbif_step`, and the results are identical."""
        if self.q is None or self.q.shape != x_seq.shape[1:]:
            self.q, self.acc = initial_state(x_seq[0])
        scale, pos_max, neg_min, payload = self._params_like(x_seq)
        one = torch.ones((), dtype=x_seq.dtype, device=x_seq.device)
        spikes, self.q, self.acc, self.spike = stbif_multi_step(
            x_seq / scale, self.q, self.acc, one, pos_max.reshape(()), neg_min.reshape(()))
        return spikes * payload

    @property
    def settled(self) -> bool:
        """Whether the neuron holds state from an earlier call (a reset clears it)."""
        return self.q is not None

    @property
    def quiet(self) -> torch.Tensor:
        """0-dim bool tensor: no spike in the last step (no host synchronisation)."""
        if self.spike is None:
            return torch.tensor(True)
        return ~self.spike.bool().any()

    @property
    def accumulated(self) -> torch.Tensor:
        """Output released since the last reset, ``payload * acc``."""
        if self.acc is None:
            raise RuntimeError("STBIFNeuron has no state before its first step")
        return self.acc * self.payload.to(self.acc)
