"""The MOTS task: the MOT tracker on ground-truth instance masks (their boxes drive the motion
model), mask-pooled embeddings, scored by mask IoU (sMOTSA) on the synthetic sequences or MOTS20."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from evals.harness.config import EvalConfig
from evals.harness.tasks import Column, Task, same_records
from evals.tasks.mot.layout import MotDataError, MotSequence
from evals.tasks.mot.metrics import Matching
from evals.tasks.mot.task import (
    MOT_COLUMNS,
    BoxHead,
    describe,
    is_plain_video,
    load_sequences,
    summarise_with,
)
from evals.tasks.mot.tracker import embed_masks
from evals.tasks.mots.data import (
    IGNORE,
    IGNORE_KEY,
    PEDESTRIAN,
    MotsRow,
    bounding_box,
    mots_accumulate,
    mots_summarise,
    read_mots_dataset,
    write_mots_txt,
)


class MaskHead(BoxHead):
    """MOTS: ground-truth instance masks in (their boxes drive the motion model), mask-pooled
    embeddings, the matched detection's mask out, scored by mask IoU (sMOTSA)."""

    def __init__(self, seq: MotSequence, dets: None = None) -> None:
        self.gt = gt_rows(seq)
        self.masks = [[r.mask for r in self.gt if r.frame == t] for t in range(1, len(seq.frames) + 1)]
        super().__init__(seq, [(np.array([bounding_box(m) for m in masks], dtype=float).reshape(-1, 4),
                                np.ones(len(masks))) for masks in self.masks])

    def embed(self, features: torch.Tensor, t: int) -> np.ndarray:
        return embed_masks(features, self.masks[t])

    def record(self, t: int, tracked: np.ndarray) -> None:
        self._rows += [MotsRow(t + 1, PEDESTRIAN * 1000 + int(r[0]), PEDESTRIAN, self.masks[t][int(r[5])])
                       for r in tracked]

    def output(self) -> list:
        return self._rows

    def same_as(self, other: MaskHead) -> bool:
        return same_records(self.output(), other.output())

    def track_count(self) -> int:
        return len({r.id for r in self._rows})

    def accumulate(self) -> Matching:
        return mots_accumulate(self.gt + ignore_rows(self.seq), self._rows)


def gt_rows(seq: MotSequence) -> list:
    """Pedestrian instance masks with visible pixels, in frame order, as MOTS rows."""
    if not seq.masks:
        raise MotDataError(f"{seq.path or seq.name}: --task mots needs instance masks (MOTS gt.txt)")
    return [MotsRow(f, PEDESTRIAN * 1000 + i, PEDESTRIAN, m) for (f, i), m in sorted(seq.masks.items())
            if i != IGNORE_KEY and m.any()]


def ignore_rows(seq: MotSequence) -> list:
    return [MotsRow(f, IGNORE * 1000, IGNORE, m) for (f, i), m in sorted(seq.masks.items())
            if i == IGNORE_KEY]


def load_mots(config: EvalConfig) -> list[MotSequence]:
    if config.source != "synthetic" and is_plain_video(config.source):
        raise MotDataError(f"{config.source}: --task mots needs a MOTS20 folder with instance masks "
                           "(seqinfo.ini, img1/, gt/gt.txt)")
    return load_sequences(config, read_mots_dataset)


def mots_task(config: EvalConfig) -> Task:
    return Task("mots", load_mots, MaskHead, summarise_with(mots_summarise), _write_mots,
                (Column("sMOTSA", "smotsa"), *MOT_COLUMNS), describe=describe("gt masks"))


def _write_mots(folder: Path, name: str, rows: list) -> None:
    write_mots_txt(folder / f"{name}.txt", rows)
