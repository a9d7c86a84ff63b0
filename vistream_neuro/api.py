"""The public Python API: :func:`convert` a network, :func:`run` a video through it on a backend.

    import vistream_neuro as vn
    net = vn.convert(my_cnn, calibration_frames, act_bits=4, calibration="perchannel")
    result = vn.run(net, frames, backend="spikingjelly", schedule="layerwise")
    result.frames[0]["level_mismatch"]   # 0.0: the SNN equals the QANN, level for level

Both are thin: conversion is :mod:`vistream_neuro.pipeline`, execution the runner of every
evaluation (:class:`vistream_neuro.runner.Lockstep`), so the API and the CLI give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vistream_neuro import ir
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import Converted, convert
from vistream_neuro.runner import Lockstep, comparison_runs

__all__ = ["RunResult", "convert", "run"]


@dataclass
class RunResult:
    """A stream through one run, frame by frame: the run's outputs, the QANN's (the reference it
    must equal) and the float network's, all in float units; per frame a record with the keys of
    report.json's ``frames`` (``timesteps``, ``sops``, ``input_macs``, ``ann_macs``, ``spikes``,
    ``max_abs_err``, ``level_mismatch``, ...)."""

    outputs: list[torch.Tensor]
    reference: list[torch.Tensor]
    ann: list[torch.Tensor]
    frames: list[dict]
    graph: ir.SpikingGraph  # what ran (the integer graph with precision "fixed")
    options: ExecutionOptions

    @property
    def level_mismatch(self) -> float:
        """The largest fraction of neurons whose level differed from the QANN's on any frame."""
        return max(f["level_mismatch"] for f in self.frames)

    @property
    def sops_per_frame(self) -> float:
        return float(np.mean([f["sops"] for f in self.frames]))


def run(net: Converted, frames: torch.Tensor, backend: str = "spikingjelly", *,
        options: ExecutionOptions | None = None, **option_values) -> RunResult:
    """Stream ``frames`` ``(T, C, H, W)`` (as given to :func:`convert`, before normalisation) through
    ``net`` on ``backend`` and check every frame against the QANN.

    Options are an :class:`ExecutionOptions` or its fields as keywords: ``mode`` (``locc`` /
    ``reset``), ``schedule`` (``timestep`` / ``layerwise``), ``spikes`` (``ternary`` / ``graded``),
    ``precision`` (``fixed`` / ``float64`` / ``float32``), ``device``, ``t_max``, ``hysteresis``.
    """
    if options is not None and option_values:
        raise TypeError("give either options= or option keywords, not both")
    options = options or ExecutionOptions(**option_values)
    frames = torch.as_tensor(frames)
    if frames.ndim != 4 or tuple(frames.shape[1:]) != net.graph.input_shape:
        raise ValueError(f"frames: expected (T, {', '.join(map(str, net.graph.input_shape))}) like the "
                         f"calibration frames, got {tuple(frames.shape)}")
    if not torch.isfinite(frames).all():
        raise ValueError("frames contain NaN or infinite values")
    runner = Lockstep(net, comparison_runs(net, options), backend, frames_total=len(frames))
    outputs, reference, ann, records = [], [], [], []
    for step in runner.run(net.inputs(frames)):
        outputs.append(step.snn[options.mode])
        reference.append(step.qann)
        ann.append(step.ann)
        records.append(step.records[options.mode])
    ann_macs = sum(runner.result.ann_macs.values())
    return RunResult(outputs, reference, ann, [r.as_dict(ann_macs) for r in records], runner.graph, options)
