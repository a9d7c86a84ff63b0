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

from evals.harness.config import EvalConfig
from evals.harness.stream import convert, lockstep
from evals.harness.workers import SERIAL, Workers, map_ordered
from vistream_neuro.diagnostics import collected, warn
from vistream_neuro.pipeline import normalise
from vistream_neuro.runner import Lockstep, LockstepPart, StreamResult
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


@dataclass
class SequenceJob:
    """One sequence of a task, ready to stream: the data, its network inputs, and which of the run's
    runners (one per task) streams it."""

    task: Task
    config: EvalConfig
    sequence: TrackedSequence
    frames: torch.Tensor  # normalised network inputs (T, C, H, W)
    runner: int = 0


@dataclass
class SequenceOutcome:
    """What one sequence gave: each network's head, its report entry, the runner's records and the
    run warnings it raised (raised again where the outcome is gathered, in sequence order)."""

    heads: dict[str, Head]
    entry: dict
    part: LockstepPart
    warnings: list[str]


def track_sequence(runners: Sequence[Lockstep], job: SequenceJob) -> SequenceOutcome:
    """One sequence through every network and its head, on a fork of its runner (in this process or
    a worker's)."""
    task, seq, twin = job.task, job.sequence, runners[job.runner].fork()
    with collected() as warnings:
        shared = task.prepare(seq, job.config)
        variants = ["ann", "qann", *twin.names]
        heads = {v: task.head(seq, shared) for v in variants}
        for t, step in enumerate(twin.run(job.frames, desc=seq.name, sequence=seq.name)):
            features = {"ann": step.ann, "qann": step.qann, **step.snn}
            for v in variants:
                heads[v].step(t, features[v])
        entry = {"name": seq.name, "frames": len(seq.frames),
                 "same_as_qann": {v: heads[v].same_as(heads["qann"]) for v in variants},
                 **task.describe(seq, heads)}
    return SequenceOutcome(heads, entry, twin.part, warnings)


@dataclass
class PreparedTask:
    """A task with its sequences loaded and its backbone converted, before anything streams."""

    task: Task
    config: EvalConfig
    sequences: Sequence[TrackedSequence]
    inputs: list[torch.Tensor]
    runner: Lockstep
    warnings: list[str]


def prepare_task(task: Task, config: EvalConfig) -> PreparedTask:
    """Load ``task``'s sequences and convert the backbone once (calibrated on the first sequence)."""
    with collected() as warnings:
        sequences = task.load(config)
        size = config.input_size or tuple(sequences[0].frames.shape[-2:])
        inputs = [network_input(s, config, size) for s in sequences]
        net = convert(config, inputs[0], spatial=True)
        if len(net.graph.shapes[net.graph.output]) != 3:
            raise ConversionError(f"--model {config.model}: the {task.name} task reads a (C, H, W) feature "
                                  f"map, but the network's output is {net.graph.shapes[net.graph.output]}")
        runner = lockstep(net, config, sum(len(x) for x in inputs))
    return PreparedTask(task, config, sequences, inputs, runner, warnings)


def finish_task(prepared: PreparedTask, outcomes: Sequence[SequenceOutcome]) -> StreamResult:
    """The task's result from its sequences' outcomes (in sequence order): records, tracks, metrics
    per network and sequence, and every run warning in the order a serial run raises them."""
    task, runner = prepared.task, prepared.runner
    with collected() as warnings:
        result = runner.result
        variants = ["ann", "qann", *runner.names]
        heads: dict[str, dict[str, Head]] = {v: {} for v in variants}
        for seq, outcome in zip(prepared.sequences, outcomes, strict=True):
            for message in outcome.warnings:
                warn(message)
            runner.absorb(outcome.part)
            for v in variants:
                heads[v][seq.name] = outcome.heads[v]
                result.tracks.setdefault(v, {})[seq.name] = outcome.heads[v].output()
            result.sequences.append(outcome.entry)
            if task.picture is not None:
                result.images[f"{task.name}_{seq.name}.png"] = task.picture(seq, outcome.heads)
        per_variant = task.scores(heads, prepared.sequences)
        result.metrics = {v: m["OVERALL"] for v, m in per_variant.items() if "OVERALL" in m}
        for entry in result.sequences:
            entry["metrics"] = {v: per_variant[v][entry["name"]] for v in variants
                                if entry["name"] in per_variant[v]}
        result = runner.finish()
    result.warnings = [*prepared.warnings, *warnings]
    return result


def run_tasks(tasks: Sequence[tuple[Task, EvalConfig]], workers: Workers = SERIAL) -> list[StreamResult]:
    """Every sequence of every task through every network and its head; per task its result, with
    the run warnings it raised in ``.warnings``.  The backbones are converted here, once per task;
    all sequences then stream as one set of jobs on ``workers``, gathered in order, so a parallel
    run's results are the serial run's."""
    prepared = [prepare_task(task, config) for task, config in tasks]
    jobs = [SequenceJob(p.task, p.config, seq, frames, i)
            for i, p in enumerate(prepared) for seq, frames in zip(p.sequences, p.inputs, strict=True)]
    names = [f"{job.task.name} sequence {job.sequence.name}" for job in jobs]
    outcomes = map_ordered(track_sequence, [p.runner for p in prepared], jobs, names, workers,
                           desc="sequences")
    return [finish_task(p, [o for job, o in zip(jobs, outcomes, strict=True) if job.runner == i])
            for i, p in enumerate(prepared)]


def run_task(task: Task, config: EvalConfig) -> StreamResult:
    """One task (see :func:`run_tasks`) on ``config.workers``."""
    return run_tasks([(task, config)], config.workers)[0]
