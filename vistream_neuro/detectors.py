"""Intel's trained sigma-delta video object detectors of lava-dl 0.6.0, as float torch networks.

lava-dl ships two detectors with their weights (``lava/lib/dl/slayer/object_detection/models/``):
YOLO-KP (one head, stride 32) and Tiny-YOLOv3 strided (two heads, strides 32 and 16), both with
80-class heads and 3 anchors per head.  Intel trained them as sigma-delta networks: each block is a
weight-normalised conv whose weights pass an 8-bit hook (steps of 2/64), a mean-only batch norm
(its mean, on the same 8-bit grid, is a negative bias), a ReLU and a delta unit.  With the delta
threshold at zero such a network computes on every frame exactly what the float network built
here computes (``tests/test_detectors.py`` checks it against lava-dl's own blocks).  The one part
left out is the input block's rounding of the normalised frame to steps of 1/32: our input is the
8-bit frame itself, a finer grid.

The checkpoint is read with ``torch.load`` alone (lava-dl need not be importable; its files must be
installed).  Each network keeps the delta thresholds it was trained with (``sigma_delta_thresholds``,
one per ReLU in graph order, in its float units), the native sigma-delta baseline, and its anchors.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

DETECTORS = ("yolo-kp", "tiny-yolov3")
CHECKPOINT_DIRS = {"yolo-kp": "Trained_yolo_kp", "tiny-yolov3": "Trained_tiny_yolov3_str"}
NUM_ANCHORS = 3
NUM_CLASSES = 80
WEIGHT_STEP = 2 / 64  # lava-dl's 8-bit hook: quantize_hook_fx(scale=1 << 6, num_bits=8)
WEIGHT_RANGE = (-2 * (1 << 8) / 64, 2 * ((1 << 8) - 1) / 64)
MEAN_RANGE = (-256 / 64, 254 / 64)  # the neuron's own quantize_8bit, which the mean-only norm uses
# (in channels, out channels, kernel, stride) of YOLO-KP's blocks, then its head
YOLO_KP_BLOCKS = ((3, 16, 3, 2), (16, 32, 3, 2), (32, 64, 3, 2), (64, 128, 3, 2), (128, 256, 3, 1),
                  (256, 256, 3, 2), (256, 512, 3, 1), (512, 256, 1, 1), (256, 512, 3, 1))
TINY_BACKEND = ((3, 16, 3, 2), (16, 32, 3, 2), (32, 64, 3, 2), (64, 128, 3, 2), (128, 256, 3, 1))
TINY_HEAD1_BACKEND = ((256, 256, 3, 2), (256, 512, 3, 1), (512, 1024, 3, 1), (1024, 256, 1, 1))


class DetectorError(ValueError):
    """The lava-dl detector files are not installed, or do not fit the network."""


def checkpoint_path(name: str) -> Path:
    """The shipped ``network.pt`` of detector ``name`` inside the installed lava-dl."""
    spec = importlib.util.find_spec("lava")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for root in roots:
        path = root / "lib/dl/slayer/object_detection/models" / CHECKPOINT_DIRS[name] / "network.pt"
        if path.is_file():
            return path
    raise DetectorError(f"--model {name}: its weights ship with lava-dl 0.6.0, which is not installed "
                        "(run `make install`)")


def _quantize(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return (torch.round(x / WEIGHT_STEP) * WEIGHT_STEP).clamp(low, high)


def _weight(state: dict, prefix: str) -> torch.Tensor:
    """A weight-normalised synapse's effective weight, 8-bit hook applied, as a 2-d kernel."""
    g, v = state[f"{prefix}.weight_g"], state[f"{prefix}.weight_v"]
    w = g * v / v.flatten(1).norm(dim=1).reshape(-1, *([1] * (v.ndim - 1)))
    return _quantize(w, *WEIGHT_RANGE)[..., 0]


def _conv(cin: int, cout: int, k: int, stride: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias)


def _set_weight(conv: nn.Conv2d, weight: torch.Tensor, key: str) -> None:
    if tuple(weight.shape) != tuple(conv.weight.shape):
        raise DetectorError(f"{key}: checkpoint weight {tuple(weight.shape)}, "
                            f"network {tuple(conv.weight.shape)}")
    conv.weight.data.copy_(weight)


def _load_block(conv: nn.Conv2d, state: dict, prefix: str) -> None:
    """A sigma-delta conv block: its conv weight, and its mean-only norm as the conv's bias."""
    _set_weight(conv, _weight(state, f"{prefix}.synapse"), prefix)
    mean = state[f"{prefix}.neuron.norm.running_mean"]
    conv.bias.data.copy_(-_quantize(mean, *MEAN_RANGE) + state[f"{prefix}.neuron.bias"])


def _load_head(conv: nn.Conv2d, state: dict, key: str) -> None:
    _set_weight(conv, _quantize(state[key], *WEIGHT_RANGE)[..., 0], key)


def _blocks(spec) -> nn.Sequential:
    layers = []
    for cin, cout, k, stride in spec:
        layers += [_conv(cin, cout, k, stride), nn.ReLU()]
    return nn.Sequential(*layers)


def _thresholds(state: dict, prefixes: list[str]) -> tuple[float, ...]:
    return tuple(float(state[f"{p}.neuron.delta.threshold"].reshape(-1)[0]) for p in prefixes)


class YoloKP(nn.Module):
    """YOLO-KP: nine conv-ReLU blocks and a 1x1 head; ``(N, 3, H, W)`` normalised frames ->
    the raw head ``(N, 3 * 85, H / 32, W / 32)`` (anchor-major: channel ``a * 85 + p``)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = _blocks(YOLO_KP_BLOCKS)
        self.head = _conv(512, NUM_ANCHORS * (5 + NUM_CLASSES), 1, 1, bias=False)
        self.register_buffer("anchors", torch.zeros(1, NUM_ANCHORS, 2))
        self.sigma_delta_thresholds: tuple[float, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))

    def load(self, state: dict) -> YoloKP:
        prefixes = [f"blocks.{i}" for i in range(len(YOLO_KP_BLOCKS))]
        for prefix, conv in zip(prefixes, self.blocks[::2], strict=True):
            _load_block(conv, state, prefix)
        _load_head(self.head, state, "heads.0.weight")
        self.anchors.copy_(state["anchors"])
        self.sigma_delta_thresholds = _thresholds(state, prefixes)
        return self


class TinyYoloV3(nn.Module):
    """Tiny-YOLOv3 strided: a backend, a stride-32 head and a stride-16 head that reads the
    backend's output next to an upsampled branch; returns both raw heads (as :class:`YoloKP`)."""

    def __init__(self) -> None:
        super().__init__()
        heads = NUM_ANCHORS * (5 + NUM_CLASSES)
        self.backend = _blocks(TINY_BACKEND)
        self.head1_backend = _blocks(TINY_HEAD1_BACKEND)
        self.head1 = nn.Sequential(_conv(256, 512, 3, 1), nn.ReLU(), _conv(512, heads, 1, 1, bias=False))
        self.head2_backend = nn.Sequential(_conv(256, 128, 1, 1), nn.ReLU(),
                                           nn.ConvTranspose2d(128, 128, 2, 2, groups=128, bias=False),
                                           nn.ReLU())
        self.head2 = nn.Sequential(_conv(384, 256, 3, 1), nn.ReLU(), _conv(256, heads, 1, 1, bias=False))
        self.register_buffer("anchors", torch.zeros(2, NUM_ANCHORS, 2))
        self.sigma_delta_thresholds: tuple[float, ...] = ()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        backend = self.backend(x)
        h1 = self.head1_backend(backend)
        h2 = self.head2_backend(h1)
        return self.head1(h1), self.head2(torch.cat([h2, backend], dim=1))

    def load(self, state: dict) -> TinyYoloV3:
        blocks = [(f"backend_blocks.{i}", c) for i, c in enumerate(self.backend[::2])]
        blocks += [(f"head1_backend.{i}", c) for i, c in enumerate(self.head1_backend[::2])]
        blocks += [("head1_blocks.0", self.head1[0]), ("head2_backend.0", self.head2_backend[0]),
                   ("head2_blocks.0", self.head2[0])]
        for prefix, conv in blocks:
            _load_block(conv, state, prefix)
        _load_head(self.head1[2], state, "head1_blocks.1.weight")
        _load_head(self.head2[2], state, "head2_blocks.1.weight")
        unpool = _weight(state, "head2_backend.1.synapse")  # (1, 1, 2, 2): one kernel for every channel
        self.head2_backend[2].weight.data.copy_(unpool.expand(128, 1, 2, 2))
        self.anchors.copy_(state["anchors"])
        order = [p for p, _ in blocks[:9]] + ["head2_backend.0", "head2_backend.1", "head1_blocks.0",
                                              "head2_blocks.0"]
        self.sigma_delta_thresholds = _thresholds(state, order)
        return self


def build_detector(name: str) -> nn.Module:
    """Detector ``name`` (:data:`DETECTORS`) with its shipped weights, float, in eval mode."""
    path = checkpoint_path(name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DetectorError(f"--model {name}: cannot read {path} ({type(exc).__name__})") from None
    net = YoloKP() if name == "yolo-kp" else TinyYoloV3()
    try:
        with torch.no_grad():
            net.load(state)
    except KeyError as exc:
        raise DetectorError(f"--model {name}: {path} has no key {exc}") from None
    return net.eval()
