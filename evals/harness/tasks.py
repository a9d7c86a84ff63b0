"""UniTrack's shape for every tracking task: one appearance model, thin task heads, one runner loop.

A task says how to load its sequences, which head follows one sequence for one network, how to
score the heads and how to write their output in the dataset's own result format.  :func:`run_task`
is the single loop: it converts the backbone once, streams every sequence through the dense ANN, the
QANN and the SNN runs in lockstep (:class:`vistream_neuro.runner.Lockstep`) and hands each network's
features of each frame to that network's head, so differences between networks come from the
features alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from evals.harness.config import EvalConfig
from evals.harness.stream import convert, lockstep
from vistream_neuro.pipeline import normalise
from vistream_neuro.runner import StreamResult
from vistream_neuro.tracing import ConversionError


class Head(Protocol):
    """Follows one sequence for one network."""

    def step(self, t: int, features: torch.Tensor) -> None:
        """Frame ``t`` (0-based): the backbone's ``(1, C, h, w)`` feature map of the whole frame."""

    def output(self) -> Any:
        """What the head tracked, in the form the task's writer takes."""

    def same_as(self, other: Head) -> bool:
        """Whether this head's output equals ``other``'s exactly."""


class TrackedSequence(Protocol):
    name: str
    frames: np.ndarray  # (T, 3, H, W) float32 RGB in [0, 1]


@dataclass(frozen=True)
class Column:
    """One metric column of the terminal table: header, metric key, format."""

    header: str
    key: str
    fmt: str = ".3f"


@dataclass
class Task:
    name: str
    load: Callable[[EvalConfig], Sequence[TrackedSequence]]
    # per sequence: the head of each network; ``prepare`` runs once per sequence (e.g. a detector)
    head: Callable[[Any, Any], Head]
    summarise: Callable[[dict[str, Head], Sequence[TrackedSequence]], dict[str, dict[str, float]]] | None
    write: Callable[[Path, str, Any], None]  # (folder, sequence name, head output)
    columns: tuple[Column, ...]
    prepare: Callable[[Any, EvalConfig], Any] = lambda seq, config: None
    describe: Callable[[Any, dict[str, Head]], dict] = lambda seq, heads: {}
    # scores that compare networks (detections against the float network's): given every network's
    # heads, per network its metrics per sequence and OVERALL; replaces ``summarise``
    score: Callable[[dict[str, dict[str, Head]], Sequence[TrackedSequence]], dict] | None = None
    # a picture of one sequence from every network's head (BGR uint8), written beside the report
    picture: Callable[[Any, dict[str, Head]], np.ndarray] | None = None

    def scores(self, heads: dict[str, dict[str, Head]], sequences: Sequence[TrackedSequence]) -> dict:
        """Per network: its metrics per sequence and OVERALL."""
        if self.score is not None:
            return self.score(heads, sequences)
        return {v: self.summarise(per_seq, sequences) for v, per_seq in heads.items()}


def same_records(mine: Sequence[tuple], theirs: Sequence[tuple]) -> bool:
    """Two heads' outputs as lists of records (tuples of numbers and arrays) are identical."""
    return len(mine) == len(theirs) and all(
        len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(mine, theirs, strict=True))


def correspondence_features(features: torch.Tensor) -> torch.Tensor:
    """Feature vectors for matching positions across frames: centred per channel over the frame,
    then unit length.  A ReLU network's raw vectors are all non-negative, so their cosines are high
    everywhere; centring keeps what distinguishes a position (SOT on the seeded ``tiny`` model:
    success AUC 0.45 raw, 0.70 centred)."""
    features = features.double()
    return F.normalize(features - features.mean(dim=(2, 3), keepdim=True), dim=1)


def network_input(seq: TrackedSequence, config: EvalConfig, size: tuple[int, int]) -> torch.Tensor:
    frames = torch.from_numpy(seq.frames).double()
    if tuple(frames.shape[-2:]) != size:
        frames = F.interpolate(frames, size=size, mode="area")
    return normalise(frames, config.model, config.input_norm)


def run_task(task: Task, config: EvalConfig) -> StreamResult:
    """Every sequence through every network and its head; metrics per network and sequence."""
    sequences = task.load(config)
    size = config.input_size or tuple(sequences[0].frames.shape[-2:])
    inputs = [network_input(s, config, size) for s in sequences]
    net = convert(config, inputs[0], spatial=True)
    if len(net.graph.shapes[net.graph.output]) != 3:
        raise ConversionError(f"--model {config.model}: the {task.name} task reads a (C, H, W) feature map, "
                              f"but the network's output is {net.graph.shapes[net.graph.output]}")
    runner = lockstep(net, config, sum(len(x) for x in inputs))
    result = runner.result
    variants = ["ann", "qann", *runner.names]
    heads: dict[str, dict[str, Head]] = {v: {} for v in variants}
    for seq, frames in tqdm(list(zip(sequences, inputs, strict=True)), desc="sequences", disable=None):
        shared = task.prepare(seq, config)
        now = {v: task.head(seq, shared) for v in variants}
        for t, step in enumerate(runner.run(frames, desc=seq.name, sequence=seq.name)):
            features = {"ann": step.ann, "qann": step.qann, **step.snn}
            for v in variants:
                now[v].step(t, features[v])
        for v in variants:
            heads[v][seq.name] = now[v]
            result.tracks.setdefault(v, {})[seq.name] = now[v].output()
        result.sequences.append({"name": seq.name, "frames": len(seq.frames),
                                 "same_as_qann": {v: now[v].same_as(now["qann"]) for v in variants},
                                 **task.describe(seq, now)})
        if task.picture is not None:
            result.images[f"{task.name}_{seq.name}.png"] = task.picture(seq, now)
    per_variant = task.scores(heads, sequences)
    result.metrics = {v: m["OVERALL"] for v, m in per_variant.items() if "OVERALL" in m}
    for entry in result.sequences:
        entry["metrics"] = {v: per_variant[v][entry["name"]] for v in variants
                            if entry["name"] in per_variant[v]}
    return runner.finish()
