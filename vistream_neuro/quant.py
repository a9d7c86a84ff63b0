"""QANN activations: quantizers with explicit bounds, and their calibration on sample frames.

Bits to bounds: an unsigned ``b``-bit quantizer (after ReLU/ReLU6) has ``pos_max = 2**b - 1`` and
``neg_min = 0``; a signed one ``pos_max = 2**(b-1) - 1`` and ``neg_min = -2**(b-1)``.  ViStream's
``level`` is another convention (its ``MyQuan(level, sym)``): ``pos_max = level // 2 - 1`` for both,
``neg_min = -level // 2`` (floor) signed, 0 unsigned; ``level=16`` is [0, 7] unsigned (``--act-bits 3``)
but [-8, 7] signed, which no bit width gives.  :class:`NeuronBounds` holds both ranges of a network.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn

from neurons.stbif import quantize
from vistream_neuro.tracing import trace

ACT_BITS = range(2, 17)  # signed quantizers need 2 bits; beyond 16 no integer graph fits 24-bit states


def check_bits(bits: int) -> int:
    """``bits`` if it is a usable activation width (:data:`ACT_BITS`), else a ``ValueError`` saying so."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in ACT_BITS:
        raise ValueError(f"activation bits must be an integer from {ACT_BITS.start} to {ACT_BITS.stop - 1} "
                         f"(signed layers need 2), got {bits!r}")
    return bits


LEVELS = range(4, 65537)  # level 4 is [0, 1] unsigned; 65536 is [-32768, 32767] signed (16 bits)


def check_level(level: int) -> int:
    """``level`` if ViStream's ``level`` gives usable bounds (:data:`LEVELS`), else a ``ValueError``."""
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise ValueError(f"level must be an integer from {LEVELS.start} to {LEVELS.stop - 1} (below "
                         f"{LEVELS.start}, pos_max = level // 2 - 1 is not positive), got {level!r}")
    return level


@dataclass(frozen=True)
class NeuronBounds:
    """The integer ranges ``(neg_min, pos_max)`` of a network's unsigned (ReLU / ReLU6) and signed
    (linear layer outputs feeding a synapse) quantizers."""

    unsigned: tuple[int, int]
    signed: tuple[int, int]

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("unsigned", self.unsigned), ("signed", self.signed)):
            if not lo <= 0 < hi or (name == "unsigned" and lo != 0):
                raise ValueError(f"{name} bounds need neg_min <= 0 < pos_max (0 unsigned), got {lo}, {hi}")

    @classmethod
    def from_bits(cls, bits: int) -> NeuronBounds:
        """``bits``-bit quantizers, this project's convention (:func:`bounds`)."""
        check_bits(bits)
        (upos, uneg), (spos, sneg) = bounds(bits, signed=False), bounds(bits, signed=True)
        return cls((uneg, upos), (sneg, spos))

    @classmethod
    def from_level(cls, level: int) -> NeuronBounds:
        """ViStream's ``MyQuan(level, sym)``: ``pos_max = level // 2 - 1``, ``neg_min = -level // 2``
        (Python's floor division, so an odd level reaches one step further down) or 0."""
        check_level(level)
        return cls((0, level // 2 - 1), (-level // 2, level // 2 - 1))

    def of(self, signed: bool) -> tuple[int, int]:
        """(pos_max, neg_min) of a signed or unsigned quantizer, as :func:`bounds` gives them."""
        lo, hi = self.signed if signed else self.unsigned
        return hi, lo

    def as_dict(self) -> dict[str, list[int]]:
        """As report.json's ``neuron_bounds`` has it: ``{"unsigned": [lo, hi], "signed": [lo, hi]}``."""
        return {"unsigned": list(self.unsigned), "signed": list(self.signed)}


def neuron_bounds(activation: int | NeuronBounds) -> NeuronBounds:
    """Activation bits (this project's convention) or explicit bounds, as bounds."""
    return activation if isinstance(activation, NeuronBounds) else NeuronBounds.from_bits(activation)


def bounds(bits: int, signed: bool) -> tuple[int, int]:
    """(pos_max, neg_min) of a ``bits``-bit quantizer."""
    if bits < 1 or (signed and bits < 2):
        raise ValueError(f"activation bits must be >= {2 if signed else 1}, got {bits}")
    return (2 ** (bits - 1) - 1, -(2 ** (bits - 1))) if signed else (2**bits - 1, 0)


class Quantizer(nn.Module):
    """``Q(x) = s * clamp(floor(x / s + 0.5), neg_min, pos_max)`` with its float counterpart.

    ``float_fn`` is the activation the quantizer replaces (ReLU, ReLU6 or identity); it is used
    while observing activations for calibration, so that later layers see float inputs.  ``scale``
    is a scalar or one value per channel (dim 1 of the input), as the IR's neurons allow.
    """

    def __init__(self, pos_max: int, neg_min: int = 0, float_fn: nn.Module | None = None) -> None:
        super().__init__()
        if not (neg_min <= 0 < pos_max):
            raise ValueError(f"quantizer bounds need neg_min <= 0 < pos_max, got {neg_min}, {pos_max}")
        self.pos_max, self.neg_min = int(pos_max), int(neg_min)
        self.float_fn = float_fn if float_fn is not None else nn.Identity()
        self.register_buffer("scale", torch.tensor(1.0, dtype=torch.float64))
        self.observed: list[torch.Tensor] | None = None

    def extra_repr(self) -> str:
        channels = f", channels={self.scale.numel()}" if self.scale.ndim else ""
        return f"pos_max={self.pos_max}, neg_min={self.neg_min}{channels}"

    def set_scale(self, scale: torch.Tensor | float) -> None:
        """Replace the scale by a scalar or a ``(C,)`` tensor (the buffer may change shape)."""
        scale = torch.as_tensor(scale, dtype=self.scale.dtype, device=self.scale.device).detach().clone()
        if scale.ndim > 1 or not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
            raise ValueError(f"quantizer scales must be a scalar or (C,), finite and > 0; got {scale}")
        self.scale = scale

    def broadcast_scale(self, like: torch.Tensor) -> torch.Tensor:
        """The scale shaped to broadcast over ``like`` (per channel: over dim 1)."""
        scale = self.scale.to(like)
        return scale.reshape(-1, *([1] * (like.ndim - 2))) if scale.ndim else scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observed is not None:
            self.observed.append(x.detach().double().cpu())
            return self.float_fn(x)
        return quantize(x, self.broadcast_scale(x), torch.tensor(self.pos_max).to(x),
                        torch.tensor(self.neg_min).to(x))


def quantize_activations(model: nn.Module, bits: int | NeuronBounds) -> nn.Module:
    """Replace every ReLU / ReLU6 of ``model`` (in place) by an unsigned quantizer of ``bits`` bits
    (or the unsigned range of explicit :class:`NeuronBounds`)."""
    pos_max, neg_min = neuron_bounds(bits).of(signed=False)
    for name, child in list(model.named_children()):
        if isinstance(child, nn.ReLU | nn.ReLU6):
            setattr(model, name, Quantizer(pos_max, neg_min, float_fn=child))
        else:
            quantize_activations(child, bits)
    return model


_SYNAPTIC = (nn.Conv2d, nn.Linear)
_ANALOG_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)
_TRANSPARENT = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Dropout)


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _feeds_synapse(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Does ``node``'s value reach a conv/linear through pooling/flatten only?"""
    for user in node.users:
        mod = _module(gm, user)
        if isinstance(mod, _SYNAPTIC):
            return True
        transparent = isinstance(mod, _TRANSPARENT) or (
            user.op == "call_function" and user.target is torch.flatten)
        if transparent and _feeds_synapse(gm, user):
            return True
    return False


def _is_analog(gm: fx.GraphModule, node: fx.Node) -> bool:
    return isinstance(_module(gm, node), _ANALOG_MODULES) or (
        node.op == "call_function" and node.target in (operator.add, torch.add))


def make_qann(model: nn.Module, bits: int | NeuronBounds) -> fx.GraphModule:
    """The QANN of a float network, ready for calibration and conversion.

    ReLU / ReLU6 become unsigned ``bits``-bit quantizers.  A value without activation that feeds
    a conv or linear layer (MobileNetV2's linear bottlenecks, after their residual add) gets a
    signed quantizer, or the next layer would receive analog values instead of spikes.  The
    network is traced into canonical form first (:func:`vistream_neuro.tracing.trace`).  ``bits``:
    activation bits, or explicit :class:`NeuronBounds` (e.g. ViStream's ``level``).
    """
    gm = trace(model)
    pos_max, neg_min = neuron_bounds(bits).of(signed=True)
    for node in list(gm.graph.nodes):
        if _is_analog(gm, node) and _feeds_synapse(gm, node):
            name = f"{node.name}_quant"
            gm.add_submodule(name, Quantizer(pos_max, neg_min))
            with gm.graph.inserting_after(node):
                quant = gm.graph.call_module(name, (node,))
            node.replace_all_uses_with(quant, delete_user_cb=lambda user, q=quant: user is not q)
    gm.recompile()
    return quantize_activations(gm, bits)


def _percentile_scale(x: np.ndarray, q: Quantizer, percentile: float) -> float:
    hi = np.percentile(x, percentile) / q.pos_max if q.pos_max else 0.0
    lo = np.percentile(-x, percentile) / -q.neg_min if q.neg_min else 0.0
    return max(hi, lo)


def _mse_scale(x: np.ndarray, q: Quantizer, float_fn: nn.Module, candidates: int = 100) -> float:
    target = float_fn(torch.from_numpy(x)).numpy()
    top = _percentile_scale(x, q, 100.0)
    best, best_err = top, np.inf
    for s in np.linspace(top / candidates, top, candidates):
        err = np.mean((s * np.clip(np.floor(x / s + 0.5), q.neg_min, q.pos_max) - target) ** 2)
        if err < best_err:
            best, best_err = s, err
    return float(best)


@torch.no_grad()
def observe(model: nn.Module, frames: torch.Tensor) -> list[torch.Tensor]:
    """The float inputs of every quantizer of ``model`` (in ``modules()`` order) on ``frames``,
    float64, each shaped ``(N, C, ...)`` like the input it sees."""
    quantizers = [m for m in model.modules() if isinstance(m, Quantizer)]
    if not quantizers:
        raise ValueError("model has no quantizers to calibrate")
    for q in quantizers:
        q.observed = []
    try:
        model(frames.to(next(model.parameters()).dtype))
        return [torch.cat(q.observed) for q in quantizers]
    finally:
        for q in quantizers:
            q.observed = None


@torch.no_grad()
def calibrate(
    model: nn.Module,
    frames: torch.Tensor,
    method: str = "percentile",
    percentile: float = 99.9,
    max_samples: int = 200_000,
    seed: int = 0,
) -> nn.Module:
    """Set every quantizer's scale from the float activations it sees on ``frames``.

    ``percentile``: the ``percentile``-th value of the input maps to the bound; ``mse``: the
    scale minimising the squared quantisation error of that input (grid search).
    """
    if method not in ("percentile", "mse"):
        raise ValueError(f"unknown calibration method {method!r}: use 'percentile' or 'mse'")
    quantizers = [m for m in model.modules() if isinstance(m, Quantizer)]
    observed = list(zip(quantizers, observe(model, frames), strict=True))
    observed = [(q, x.flatten().numpy()) for q, x in observed]
    rng = np.random.default_rng(seed)
    for q, x in observed:
        if x.size > max_samples:
            x = rng.choice(x, max_samples, replace=False)
        s = _percentile_scale(x, q, percentile) if method == "percentile" else _mse_scale(x, q, q.float_fn)
        q.set_scale(s if s > 0 else 1.0)
    return model
