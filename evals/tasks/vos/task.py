"""The VOS task: UniTrack's label propagation on the shared appearance model (semi-supervised).

The first frame's mask is given.  Every later frame's labels come from a memory of frames (the
first, with its true labels, and the last ``MEMORY - 1`` frames, with their propagated soft labels)
by feature affinity: each position of the new frame takes the labels of its ``TOP_K`` most similar
memory positions within ``RADIUS`` feature cells, weighted by ``softmax(similarity / TEMPERATURE)``
(the space-time correspondence of Jabri et al. 2020, as UniTrack evaluates it).  Labels live at
the feature map's resolution and are upsampled to the frame for the output mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from evals.harness.config import EvalConfig
from evals.harness.tasks import Column, Task, correspondence_features
from evals.tasks.vos.data import VosSequence, read_davis, synthetic_vos_dataset, write_davis_results
from evals.tasks.vos.metrics import vos_summarise

MEMORY = 4  # frames in the memory: the first and the last MEMORY - 1
TOP_K = 10
TEMPERATURE = 0.05
RADIUS = 6  # feature cells (square window): how far a label may travel from one memory frame


class PropagationHead:
    """Label maps ``(T, H, W)`` uint8 of one sequence, the first frame's given."""

    def __init__(self, seq: VosSequence, shared: None = None) -> None:
        self.first = seq.labels[0].copy()
        self.first[self.first == 255] = 0
        self.classes = int(self.first.max()) + 1
        self.frame_size = self.first.shape
        self.labels: list[np.ndarray] = []
        # per memory frame: features and soft labels of the window around every position
        self.memory: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._inside = torch.ones(0, dtype=torch.bool)  # (W, N): which window positions lie in the frame

    def step(self, t: int, features: torch.Tensor) -> None:
        features = correspondence_features(features).float()
        _, c, h, w = features.shape
        if t == 0:
            onehot = F.one_hot(torch.from_numpy(self.first).long(), self.classes).permute(2, 0, 1).float()
            self.labels.append(self.first)
            self._inside = F.unfold(torch.ones(1, 1, h, w), 2 * RADIUS + 1, padding=RADIUS)[0] > 0
            self.memory = [self._windows(features, F.interpolate(onehot[None], size=(h, w), mode="area"))]
            return
        keys = torch.cat([k for k, _ in self.memory], dim=1)  # (C, M, N): M window positions of all frames
        labels = torch.cat([lab for _, lab in self.memory], dim=1)  # (K, M, N)
        similarity = (features.reshape(c, 1, h * w) * keys).sum(0)
        similarity = similarity.masked_fill(~self._inside.repeat(len(self.memory), 1), -torch.inf)
        top, index = similarity.topk(TOP_K, dim=0)
        weights = torch.softmax(top / TEMPERATURE, dim=0)  # (k, N)
        picked = torch.gather(labels, 1, index[None].expand(self.classes, -1, -1))
        soft = (picked * weights[None]).sum(1).reshape(1, self.classes, h, w)
        self.memory = [self.memory[0], *self.memory[1:][-(MEMORY - 2):], self._windows(features, soft)]
        full = F.interpolate(soft, size=self.frame_size, mode="bilinear", align_corners=False)[0]
        self.labels.append(full.argmax(0).numpy().astype(np.uint8))

    @staticmethod
    def _windows(features: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A memory frame as each position's window: features ``(C, W, N)``, labels ``(K, W, N)``."""
        size = 2 * RADIUS + 1
        (_, c, h, w), k = features.shape, soft.shape[1]
        return (F.unfold(features, size, padding=RADIUS).reshape(c, size**2, h * w),
                F.unfold(soft, size, padding=RADIUS).reshape(k, size**2, h * w))

    def output(self) -> np.ndarray:
        return np.stack(self.labels)

    def same_as(self, other: PropagationHead) -> bool:
        return np.array_equal(self.output(), other.output())


def load_sequences(config: EvalConfig) -> list[VosSequence]:
    if config.source == "synthetic":
        sequences = synthetic_vos_dataset(seed=config.seed)
        if config.frames is not None:
            sequences = [VosSequence(s.name, s.frames[:config.frames], s.labels[:config.frames])
                         for s in sequences]
        return sequences
    return read_davis(Path(config.source), start=config.start, max_frames=config.frames)


def _summarise(heads: dict[str, PropagationHead], sequences: list[VosSequence]) -> dict:
    scored = {s.name: (heads[s.name].output(), s.labels, s.objects) for s in sequences if s.scored}
    return vos_summarise(scored) if scored else {}


def _write(folder: Path, name: str, labels: np.ndarray) -> None:
    write_davis_results(folder / name, labels)


def vos_task(config: EvalConfig) -> Task:
    return Task("vos", load_sequences, PropagationHead, _summarise, _write,
                (Column("J", "j"), Column("F", "f"), Column("J&F", "j_and_f")))
