"""Input normalisation, applied to frames outside the network so that frame differences stay
linear in the input, and the integer input grid it implies.

Means are moved onto the 8-bit grid (by less than 0.5/255), so a normalised 8-bit frame is an
exact integer multiple of a per-channel unit, one pixel step: the integer graph then encodes
8-bit frames and their differences losslessly (:func:`pixel_unit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NORMS = ("none", "imagenet")


@dataclass(frozen=True)
class InputNorm:
    """``(x - mean) / std`` per channel of RGB frames in [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not all(s > 0 for s in self.std):
            raise ValueError(f"input normalisation needs one mean and one std > 0 per channel, got "
                             f"{self.mean}, {self.std}")
        object.__setattr__(self, "mean", tuple(round(255 * float(m)) / 255 for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def apply(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[1] != len(self.mean):
            raise ValueError(f"input normalisation has {len(self.mean)} channels, frames have "
                             f"{frames.shape[1]}")
        mean, std = (torch.tensor(v, dtype=frames.dtype, device=frames.device).view(-1, 1, 1)
                     for v in (self.mean, self.std))
        return (frames - mean) / std


IMAGENET = InputNorm((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def input_norm(spec: str | InputNorm | tuple | None) -> InputNorm | None:
    """``None``/``"none"``, ``"imagenet"``, an :class:`InputNorm` or a ``(mean, std)`` pair."""
    if spec is None or spec == "none":
        return None
    if spec == "imagenet":
        return IMAGENET
    if isinstance(spec, InputNorm):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:
        return InputNorm(tuple(spec[0]), tuple(spec[1]))
    raise ValueError(f"input normalisation {spec!r}: use one of {', '.join(NORMS)} or (mean, std)")


def normalise(frames: torch.Tensor, norm: InputNorm | None) -> torch.Tensor:
    """``frames`` as the network takes them (unchanged without a normalisation)."""
    return frames if norm is None else norm.apply(frames)


def pixel_unit(norm: InputNorm | None) -> np.ndarray:
    """One 8-bit pixel step in normalised input units, per input channel (a scalar without a
    normalisation): the integer input grid of fixed-point execution."""
    return np.array(1.0 / 255.0) if norm is None else 1.0 / (255.0 * np.asarray(norm.std))
