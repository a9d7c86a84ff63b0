"""ViStream's tracking backbone and its checkpoint: the ResNet-50 of its
``imagenet_spikeresnet50*_s3_womotion`` configurations, loaded from its QANN checkpoint as it is.

The backbone (UniTrack's ``ResNet.modify``, ``remove_layers: ['layer4']``, ``down_factor: 8``):
torchvision's ResNet-50 layout with one ReLU module per place (``relu`` in the stem,
``relu1`` / ``relu2`` / ``relu3`` in each bottleneck), every conv of ``layer3`` at stride 1, cut
after ``layer3`` (``layer4``, ``avgpool`` and ``fc`` removed): 1,024 channels at 1/8 of the input.

The checkpoint (``checkpoint-90.pth``, SpikeZIP-style QANN training): ``{"model": state, ...}``
(optimizer state and the training arguments beside it), ``state`` a ResNet-50 with every ReLU
replaced by ``MyQuan(level, sym=False)``, whose only parameter is its learned step ``s`` (a
float32 scalar, key ``<relu>.s``).  Loading takes the float weights and BatchNorm statistics into
the float network, the cut layers' keys aside, and each ``s`` as its quantizer's scale, without
recalibration.  Weight-quantised checkpoints (``weight_quantization_bit < 32``: ``quan_w_fn``
keys) are refused: ViStream's ``eval.sh`` uses 32-bit weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from vistream_neuro.models import CheckpointError, read_checkpoint
from vistream_neuro.quant import Quantizer

NAME = "vistream-resnet50"
BLOCKS = (("layer1", 64, 3, 1), ("layer2", 128, 4, 2), ("layer3", 256, 6, 1))  # layer3: stride 2 -> 1
CUT = ("layer4.", "fc.")  # in the checkpoint, not in the backbone
SCALE = ".s"  # MyQuan's learned step


class Bottleneck(nn.Module):
    """ResNet V1.5 bottleneck (stride on the 3x3 conv) with its own ReLU per place, as ViStream's."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(planes), nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(planes), nn.ReLU()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3, self.relu3 = nn.BatchNorm2d(out), nn.ReLU()
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
                           if stride != 1 or inplanes != out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        return self.relu3(self.bn3(self.conv3(y)) + identity)


class VistreamResNet50(nn.Module):
    """ViStream's ResNet-50 tracking backbone: stem, ``layer1`` to ``layer3`` (stride 8 in all)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for name, planes, blocks, stride in BLOCKS:
            layers = []
            for i in range(blocks):
                layers.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
                inplanes = planes * 4
            setattr(self, name, nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The QANN state of a ViStream checkpoint (``{"model": state, "args": Namespace, ...}``, or the
    state itself), a ``module.`` prefix of distributed training removed."""
    state = read_checkpoint(path, safe=(argparse.Namespace,))
    if isinstance(state.get("model"), dict):
        state = state["model"]
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"--weights {path}: key {bad!r} holds no tensor; expected ViStream's QANN "
                              "state")
    return state


def split(state: dict[str, torch.Tensor], path: str | Path
          ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The float weights of the backbone and the learned steps (per ReLU path), the cut layers'
    keys dropped; a weight-quantised checkpoint is refused."""
    quantised = next((k for k in state if ".quan_w_fn." in k), None)
    if quantised is not None:
        raise CheckpointError(f"--weights {path}: key {quantised!r}: a weight-quantised ViStream "
                              "checkpoint (weight_quantization_bit < 32) is not supported; its eval.sh uses "
                              "32-bit weights")
    kept = {k: v for k, v in state.items() if not k.startswith(CUT)}
    scales = {k.removesuffix(SCALE): v for k, v in kept.items() if k.endswith(SCALE) and v.ndim == 0}
    weights = {k: v for k, v in kept.items() if k.removesuffix(SCALE) not in scales}
    if not scales:
        raise CheckpointError(f"--weights {path}: no MyQuan scale ('<relu>.s') in it; not a ViStream QANN "
                              "checkpoint (a plain float state dict belongs to --model resnet50)")
    return weights, scales


def load_float(model: nn.Module, weights: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """``weights`` into ``model`` strictly, naming the first key that does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    if missing or unexpected:
        what = f"lacks key {missing[0]!r}" if missing else f"has unexpected key {unexpected[0]!r}"
        raise CheckpointError(f"--weights {path}: {what} for ViStream's ResNet-50 backbone "
                              f"({len(missing)} missing, {len(unexpected)} unexpected)")
    for key, value in own.items():
        if tuple(weights[key].shape) != tuple(value.shape):
            raise CheckpointError(f"--weights {path}: key {key!r} has shape {tuple(weights[key].shape)}, "
                                  f"ViStream's ResNet-50 needs {tuple(value.shape)}")
    model.load_state_dict({k: weights[k].to(value.dtype) for k, value in own.items()})
    return model


def set_scales(qann: nn.Module, scales: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """Each quantizer's scale from the learned step of the ReLU it replaced (its float32 value,
    exactly, in float64)."""
    names = {name: q for name, q in qann.named_modules() if isinstance(q, Quantizer)}
    missing = [f"{n}{SCALE}" for n in names if n not in scales]
    unused = [f"{n}{SCALE}" for n in scales if n not in names]
    if missing or unused:
        what = f"lacks key {missing[0]!r}" if missing else f"has unexpected key {unused[0]!r}"
        raise CheckpointError(f"--weights {path}: {what}: its MyQuan scales do not match the backbone's "
                              f"activations ({len(missing)} missing, {len(unused)} unexpected)")
    for name, q in names.items():
        step = scales[name].detach().double()
        if not (torch.isfinite(step) and step > 0):
            raise CheckpointError(f"--weights {path}: key {name}{SCALE} is {float(step)}; a scale must be "
                                  "finite and > 0")
        q.set_scale(step)
    return qann

