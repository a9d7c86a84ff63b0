"""ANN -> QANN -> spiking graph in one call, as the CLI, the benchmarks and the tests need it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vistream_neuro import calibration, ir, models
from vistream_neuro.convert import to_spiking_graph
from vistream_neuro.quant import make_qann

CALIBRATION_FRAMES = 8


@dataclass
class Converted:
    ann: nn.Module
    qann: nn.Module
    graph: ir.SpikingGraph
    frames: torch.Tensor  # the calibration frames (normalised), for the integer graph's bias correction


def normalise(frames: torch.Tensor, model: str) -> torch.Tensor:
    """Apply the model's input normalisation to ``(N, 3, H, W)`` RGB frames in [0, 1]."""
    norm = models.NORMALISATION[model]
    if norm is None:
        return frames
    mean, std = (torch.tensor(v, dtype=frames.dtype).view(3, 1, 1) for v in norm)
    return (frames - mean) / std


def pixel_unit(model: str) -> np.ndarray:
    """One 8-bit pixel step in the model's (normalised) input units, per input channel: the integer
    input grid of fixed-point execution, so 8-bit frames and their differences lose nothing."""
    norm = models.NORMALISATION[model]
    return np.array(1.0 / 255.0) if norm is None else 1.0 / (255.0 * np.asarray(norm[1]))


def convert_model(
    model: str,
    calibration_frames: torch.Tensor,
    act_bits: int = 4,
    seed: int = 0,
    weights: str | Path | None = None,
    method: str = "percentile",
    spatial: bool = False,
    *,
    distill_config: calibration.DistillConfig | None = None,
    count: int = CALIBRATION_FRAMES,
) -> Converted:
    """Build ``model``, quantise its activations, calibrate on frames, convert to the IR.

    ``calibration_frames`` are normalised network inputs; the first ``count`` are used.  ``method`` is one
    of :data:`calibration.METHODS`.  ``weights`` is a float state dict, or a calibration file
    (:func:`calibration.save_calibration`): then the float network and the QANN come from the file
    as they are (no recalibration; ``method`` is ignored) and only the input shape comes from the
    frames.
    """
    frames = calibration_frames[:count].double()
    if weights is not None and calibration.is_calibration_file(weights):
        arch = models.build(model, seed=seed, spatial=spatial)
        ann, qann, _ = calibration.load_calibration(weights, model, act_bits, arch, make_qann)
    else:
        ann = models.build(model, seed=seed, weights=weights, spatial=spatial).double()
        qann = make_qann(ann, act_bits).double()
        calibration.calibrate_qann(qann, frames, method, seed=seed,
                                   distill_config=distill_config)
    return Converted(ann, qann, to_spiking_graph(qann, tuple(frames.shape[1:])), frames)
