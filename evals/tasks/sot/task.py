"""The SOT task: UniTrack's cross-correlation (XCorr) head on the shared appearance model.

The first frame's box gives the template: the backbone features under the box, sampled on a
``TEMPLATE`` grid (RoIAlign) from :func:`evals.harness.tasks.correspondence_features`.  In each later
frame a search region ``SEARCH`` times the box, centred on the last position, is sampled at the same
cell size for each of ``SCALES``; the template slides over it (``conv2d``: cross-correlation), the
response is upsampled, weighted by a Hann window (motion prior) and a penalty on scale change, and
its peak gives the new centre and scale.  SiamFC's (Bertinetto et al. 2016) search schedule, with
the backbone's whole-frame features instead of per-crop passes, so the streaming SNN serves it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from evals.harness.config import EvalConfig
from evals.harness.tasks import Column, Task, correspondence_features
from evals.tasks.sot.data import SotSequence, read_otb_dataset, synthetic_sot_dataset, write_otb_results
from evals.tasks.sot.metrics import sot_summarise

TEMPLATE = 6  # template grid (cells) along the box's longer side
SEARCH = 3.0  # search region / box, per side
SCALES = (0.96, 1.0, 1.04)
SCALE_PENALTY = 0.97  # response factor for a scale change
SCALE_RATE = 0.6  # how far the box size follows the best scale
WINDOW_INFLUENCE = 0.25  # Hann window weight in the response
UPSAMPLE = 4


class XCorrHead:
    """Follows one target: ``boxes`` holds ``x, y, w, h`` per frame, the first given."""

    def __init__(self, seq: SotSequence, shared: None = None) -> None:
        self.frame_size = tuple(seq.frames.shape[-2:])
        self.boxes = [np.asarray(seq.boxes[0], dtype=float)]
        self.template: torch.Tensor | None = None

    def _sample(self, features: torch.Tensor, box: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
        (fh, fw), (height, width) = features.shape[-2:], self.frame_size
        sx, sy = fw / width, fh / height
        x, y, w, h = box
        roi = torch.tensor([[0.0, x * sx, y * sy, (x + w) * sx, (y + h) * sy]], dtype=features.dtype)
        return roi_align(features, roi, grid, spatial_scale=1.0, sampling_ratio=2, aligned=True)[0]

    def _grid(self, w: float, h: float) -> tuple[tuple[int, int], float]:
        """Template grid (rows, cols) for a ``w x h`` box and the cell size in pixels."""
        cell = max(w, h) / TEMPLATE
        return (max(1, round(h / cell)), max(1, round(w / cell))), cell

    def step(self, t: int, features: torch.Tensor) -> None:
        features = correspondence_features(features)
        box = self.boxes[-1]
        (rows, cols), cell = self._grid(box[2], box[3])
        if t == 0:
            template = self._sample(features, box, (rows, cols))
            self.template = template / template.norm().clamp_min(1e-12)
            return
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        grid = (round(SEARCH * rows), round(SEARCH * cols))
        candidates = []
        for scale in SCALES:
            w, h = SEARCH * box[2] * scale, SEARCH * box[3] * scale
            response = self._respond(self._sample(features, np.array([cx - w / 2, cy - h / 2, w, h]), grid))
            response = response * (1.0 if scale == 1.0 else SCALE_PENALTY)
            peak = int(torch.argmax(response))
            candidates.append((float(response.flatten()[peak]), scale, divmod(peak, response.shape[1]),
                               response.shape))
        _, scale, (py, px), (ry, rx) = max(candidates, key=lambda c: c[0])
        # the response's centre is the last position; one upsampled step is cell * scale / UPSAMPLE px
        step = cell * scale / UPSAMPLE
        cx += (px - (rx - 1) / 2) * step
        cy += (py - (ry - 1) / 2) * step
        factor = 1 + SCALE_RATE * (scale - 1)
        w, h = box[2] * factor, box[3] * factor
        height, width = self.frame_size
        cx, cy = float(np.clip(cx, 0, width - 1)), float(np.clip(cy, 0, height - 1))
        self.boxes.append(np.array([cx - w / 2, cy - h / 2, w, h]))

    def _respond(self, region: torch.Tensor) -> torch.Tensor:
        """Cross-correlation of the template over ``region``, upsampled and Hann-weighted."""
        response = F.conv2d(region[None], self.template[None])[0, 0]
        response = F.interpolate(response[None, None], scale_factor=UPSAMPLE, mode="bicubic",
                                 align_corners=False)[0, 0]
        window = torch.outer(*(_hann(n, response.dtype) for n in response.shape))
        return (1 - WINDOW_INFLUENCE) * response + WINDOW_INFLUENCE * window

    def output(self) -> np.ndarray:
        return np.stack(self.boxes)

    def same_as(self, other: XCorrHead) -> bool:
        return np.array_equal(self.output(), other.output())


def _hann(n: int, dtype: torch.dtype) -> torch.Tensor:
    """A Hann window of ``n`` positive weights (the zero end points left out)."""
    return torch.hann_window(n + 2, periodic=False, dtype=dtype)[1:-1]


def load_sequences(config: EvalConfig) -> list[SotSequence]:
    if config.source == "synthetic":
        sequences = synthetic_sot_dataset(seed=config.seed)
        if config.frames is not None:
            sequences = [SotSequence(s.name, s.frames[:config.frames], s.boxes[:config.frames], s.frame_rate)
                         for s in sequences]
        return sequences
    return read_otb_dataset(Path(config.source), start=config.start, max_frames=config.frames)


def _summarise(heads: dict[str, XCorrHead], sequences: list[SotSequence]) -> dict:
    gt = {s.name: s.boxes for s in sequences}
    return sot_summarise({name: (head.output(), gt[name]) for name, head in heads.items()})


def _write(folder: Path, name: str, boxes: np.ndarray) -> None:
    write_otb_results(folder / f"{name}.txt", boxes)


def sot_task(config: EvalConfig) -> Task:
    return Task("sot", load_sequences, XCorrHead, _summarise, _write,
                (Column("AUC", "auc"), Column("Prec@20", "precision_20"), Column("Succ@.5", "success_50")))
