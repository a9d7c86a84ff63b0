"""ANN -> QANN -> spiking graph in one call: :func:`convert` for any network, :func:`convert_model`
for the built-in models (by name) and for calibration files."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vistream_neuro import calibration, ir, models, vistream_resnet
from vistream_neuro.converter import to_spiking_graph
from vistream_neuro.normalisation import InputNorm
from vistream_neuro.normalisation import input_norm as parse_norm
from vistream_neuro.normalisation import normalise as apply_norm
from vistream_neuro.normalisation import pixel_unit as norm_pixel_unit
from vistream_neuro.quant import NeuronBounds, Quantizer, make_qann
from vistream_neuro.tracing import ConversionError

CALIBRATION_FRAMES = 8


@dataclass
class Converted:
    """A converted network: the float ANN, its calibrated QANN and the spiking graph of the QANN.

    ``frames`` are the calibration frames as network inputs (normalised; the integer graph's bias
    correction uses them); ``norm`` is the normalisation frames get before the network;
    ``input_unit`` what one integer input step of the integer graph is worth.
    """

    ann: nn.Module
    qann: nn.Module
    graph: ir.SpikingGraph
    frames: torch.Tensor
    norm: InputNorm | None = None
    input_unit: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.input_unit is None:
            self.input_unit = norm_pixel_unit(self.norm)

    def inputs(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``(N, C, H, W)`` as the network takes them (float64, normalised)."""
        return apply_norm(torch.as_tensor(frames).double(), self.norm)


def _checked_frames(frames: torch.Tensor, what: str) -> torch.Tensor:
    frames = torch.as_tensor(frames)
    if frames.ndim != 4 or frames.shape[0] < 1:
        raise ValueError(f"{what}: expected frames shaped (N, C, H, W), got {tuple(frames.shape)}")
    if not torch.isfinite(frames).all():
        raise ValueError(f"{what}: frames contain NaN or infinite values")
    return frames.double()


def quantize_and_convert(ann: nn.Module, inputs: torch.Tensor, act_bits: int | NeuronBounds, method: str, *,
                         seed: int = 0,
                         norm: InputNorm | None = None, input_unit: np.ndarray | None = None,
                         distill_config: calibration.DistillConfig | None = None) -> Converted:
    """Quantise ``ann``'s activations, calibrate them on ``inputs`` (network inputs) with ``method``
    (one of :data:`calibration.METHODS`) and convert the QANN to the IR."""
    ann = ann.double().eval()
    qann = make_qann(ann, act_bits).double()
    shape = tuple(inputs.shape[1:])
    to_spiking_graph(qann, shape)  # what the graph cannot express fails here, before calibrating
    if not any(isinstance(m, Quantizer) for m in qann.modules()):
        raise ConversionError(f"{type(ann).__name__}: no activation (ReLU / ReLU6) or signed layer output to "
                              "become spiking neurons")
    calibration.calibrate_qann(qann, inputs, method, seed=seed, distill_config=distill_config)
    return Converted(ann, qann, to_spiking_graph(qann, shape), inputs, norm, input_unit)


def convert(module: nn.Module, frames: torch.Tensor, act_bits: int | None = None,
            calibration: str = "percentile", *, level: int | None = None,
            input_norm: str | InputNorm | tuple | None = None, input_unit: float | None = None, seed: int = 0,
            distill_config: calibration.DistillConfig | None = None) -> Converted:
    """Convert any ``nn.Module`` that ``torch.fx`` can trace (conv, linear, BatchNorm, ReLU / ReLU6,
    residual add, average / max pooling, flatten) into a spiking graph.

    ``act_bits`` (default 4) sets unsigned ``b``-bit ReLU quantizers and signed ``b``-bit ones;
    ``level`` instead sets ViStream's ranges (:meth:`vistream_neuro.quant.NeuronBounds.from_level`).
    ``frames``: calibration frames ``(N, C, H, W)``, before ``input_norm`` (``None``, ``"imagenet"``
    or ``(mean, std)``), which is applied to every frame the network sees.  ``input_unit``: what one
    integer input step is worth to the integer graph (default: one 8-bit pixel step).  ``module``
    is not changed.  Raises :class:`vistream_neuro.tracing.ConversionError` naming the module path
    and type of anything the spiking graph cannot express.
    """
    if act_bits is not None and level is not None:
        raise ValueError("give act_bits or level, not both")
    activation = NeuronBounds.from_level(level) if level is not None else NeuronBounds.from_bits(
        4 if act_bits is None else act_bits)
    norm = parse_norm(input_norm)
    inputs = apply_norm(_checked_frames(frames, "calibration frames"), norm)
    unit = None if input_unit is None else np.asarray(float(input_unit))
    return quantize_and_convert(copy.deepcopy(module), inputs, activation, calibration, seed=seed, norm=norm,
                                input_unit=unit, distill_config=distill_config)


def normalise(frames: torch.Tensor, model: str, norm: InputNorm | None = None) -> torch.Tensor:
    """Apply ``model``'s input normalisation (``norm`` for a user model) to RGB frames in [0, 1]."""
    return apply_norm(frames, models.normalisation(model, norm))


def pixel_unit(model: str, norm: InputNorm | None = None) -> np.ndarray:
    """One 8-bit pixel step in ``model``'s normalised input units, per input channel."""
    return norm_pixel_unit(models.normalisation(model, norm))


def convert_model(
    model: str,
    calibration_frames: torch.Tensor,
    act_bits: int | NeuronBounds = 4,
    seed: int = 0,
    weights: str | Path | None = None,
    method: str = "percentile",
    spatial: bool = False,
    *,
    distill_config: calibration.DistillConfig | None = None,
    count: int = CALIBRATION_FRAMES,
    norm: InputNorm | None = None,
) -> Converted:
    """Build ``model`` (a built-in name or ``package.module:factory``), quantise, calibrate on
    frames, convert to the IR.  ``act_bits``: activation bits or explicit :class:`NeuronBounds`.

    ``calibration_frames`` are normalised network inputs; the first ``count`` are used.  ``weights``
    is a float state dict, or a calibration file (:func:`calibration.save_calibration`): then the
    float network and the QANN come from the file as they are (no recalibration; ``method`` is
    ignored) and only the input shape comes from the frames.  ``norm``: a user model's
    normalisation (built-in models have their own).
    """
    frames = calibration_frames[:count].double()
    norm = models.normalisation(model, norm)
    if weights is not None and calibration.is_calibration_file(weights):
        arch = models.build(model, seed=seed, spatial=spatial)
        ann, qann, _ = calibration.load_calibration(weights, model, act_bits, arch, make_qann)
        return Converted(ann, qann, to_spiking_graph(qann, tuple(frames.shape[1:])), frames, norm)
    if model == vistream_resnet.NAME and weights is not None:
        return _vistream_checkpoint(weights, frames, act_bits, norm)
    ann = models.build(model, seed=seed, weights=weights, spatial=spatial)
    return quantize_and_convert(ann, frames, act_bits, method, seed=seed, norm=norm,
                                distill_config=distill_config)


def _vistream_checkpoint(path: str | Path, frames: torch.Tensor, act_bits: int | NeuronBounds,
                         norm: InputNorm | None) -> Converted:
    """ViStream's backbone from its checkpoint: float weights and BatchNorm into the ANN, each
    MyQuan's learned step as its quantizer's scale (no recalibration)."""
    weights, scales = vistream_resnet.split(vistream_resnet.read_state(path), path)
    ann = vistream_resnet.load_float(vistream_resnet.VistreamResNet50(), weights, path).double().eval()
    qann = make_qann(ann, act_bits).double()
    vistream_resnet.set_scales(qann, scales, path)
    return Converted(ann, qann, to_spiking_graph(qann, tuple(frames.shape[1:])), frames, norm)
