"""The streaming driver: ``reset`` (per-frame reset, SpikeZIP) and ``locc`` (ViStream) modes.

Written once against :class:`vistream_neuro.simulator.Simulator`.  In ``locc`` mode the network
is never reset and the input layer receives ``x_t - x_{t-1}``; the accumulated output then equals
the QANN output of ``x_t`` once the network is quiet.  In the ``layerwise`` schedule every ST-BIF
layer fires until quiet within its step, so a frame of a graph without sigma-delta neurons ends
after one step, on every backend (docs/ARCHITECTURE.md, "Execution").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vistream_neuro.accounting import FrameOps, OpCounter
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.simulator import Simulator


@dataclass
class FrameResult:
    index: int
    output: torch.Tensor
    timesteps: int
    converged: bool  # quiet before t_max
    levels: dict[str, torch.Tensor]
    ops: FrameOps | None = None  # when run with a counter
    # ViStream's rule (Judger) needs one more step, of zero input, after the first quiet one: taken
    # with quiescence "vistream" (and counted in timesteps), only noted with "spikes"
    judger_step: bool = False


def _step_frame(sim: Simulator, current: torch.Tensor, t_max: int, counter: OpCounter | None,
                one_step: bool) -> tuple[int, bool]:
    """One frame, one step at a time, until quiet or ``t_max`` steps (``one_step``: it settles in
    its first step)."""
    steps, quiet = 0, False
    while steps < t_max and not quiet:
        sim.step(current if steps == 0 else None)
        steps += 1
        if counter is not None:
            counter.count_step(sim.step_values())
        quiet = one_step or sim.is_quiet()
    return steps, quiet


def _zero_step(sim: Simulator, current: torch.Tensor, counter: OpCounter | None) -> None:
    """One step without input, counted."""
    run_frame = getattr(sim, "run_frame", None)
    if run_frame is not None:
        run_frame(torch.zeros_like(current), 1, counter)
        return
    sim.step(None)
    if counter is not None:
        counter.count_step(sim.step_values())


def _has_bias(graph) -> bool:
    return any(getattr(n, "bias", None) is not None and bool(np.any(n.bias)) for n in graph.nodes)


def run_stream(
    sim: Simulator,
    frames: Iterable[torch.Tensor],
    options: ExecutionOptions | None = None,
    counter: OpCounter | None = None,
) -> Iterator[FrameResult]:
    """Feed ``frames`` (each ``(N, C, H, W)``) and yield one result per frame once it settles, in
    the options' ``mode`` and within ``t_max`` steps per frame.

    With a ``counter``, every step's node values are counted (SOPs, spikes, ...).  With
    ``quiescence="vistream"`` a frame takes the extra zero-input step ViStream's rule needs.
    """
    options = options or ExecutionOptions()
    mode, t_max = options.mode, options.t_max
    one_step = options.schedule == "layerwise" and not sim.graph.sigma_deltas
    biased = _has_bias(sim.graph)
    previous = None
    sim.reset()
    if counter is not None:
        counter.reset_stream()
    for index, frame in enumerate(frames):
        if mode == "reset":
            sim.reset()
            if counter is not None:
                counter.reset_stream()
            current = frame
        else:
            current = frame if previous is None else frame - previous
            previous = frame
        run_frame = getattr(sim, "run_frame", None)  # simulators that run many steps per call
        if run_frame is not None:
            steps, quiet = run_frame(current, t_max, counter)
        else:
            steps, quiet = _step_frame(sim, current, t_max, counter, one_step)
        # without delays, only a frame's first step carries input (its current, and the biases after
        # a reset): a frame quiet after it had input in its last step, so ViStream steps once more
        charged = biased and (mode == "reset" or index == 0)
        judger = quiet and steps == 1 and (charged or bool(current.any()))
        if judger and options.quiescence == "vistream":
            _zero_step(sim, current, counter)
            steps += 1
        levels = {k: v.clone() for k, v in sim.levels().items()}
        ops = counter.take_frame(levels) if counter is not None else None
        yield FrameResult(index, sim.output().clone(), steps, quiet, levels, ops, judger)


def hold_small_changes(frames: Iterable[torch.Tensor], threshold: torch.Tensor) -> Iterator[torch.Tensor]:
    """The frames as a change-detecting sensor with a dead band passes them on: each value keeps
    what was last sent until the input differs from it by more than ``threshold`` (broadcast
    against a frame, e.g. per channel).  Sensor noise and compression flicker then send nothing,
    and the network (QANN and SNN alike) sees the held frames; the first frame passes whole."""
    held = None
    for frame in frames:
        held = frame.clone() if held is None else torch.where((frame - held).abs() > threshold, frame, held)
        yield held
