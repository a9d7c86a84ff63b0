"""The `stream` task: QANN (reference) and SNN on the same frames, compared frame by frame.

With ``compare`` both streaming modes run in lockstep with the QANN, so ANN, QANN, ``reset``
and ``locc`` figures come from one process and the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from backends.lava_estimate import check_lava_run
from backends.registry import lower
from evals.synthetic import synthetic_video
from vistream_neuro import ir
from vistream_neuro.accounting import FrameOps, OpCounter, dense_macs
from vistream_neuro.fixed_point import to_fixed_point
from vistream_neuro.pipeline import convert_model, normalise, pixel_unit
from vistream_neuro.streaming import FrameResult, run_stream
from vistream_neuro.video import VideoError, read_video

# fixed: the integer graph (vistream_neuro.fixed_point), exact in float64 and in Lava fixed_pt
PRECISIONS = {"float64": torch.float64, "float32": torch.float32, "fixed": torch.float64}


@dataclass
class StreamConfig:
    backend: str
    model: str = "tiny"
    weights: Path | None = None
    source: str | Path = "synthetic"
    start: int = 0
    frames: int = 10
    input_size: tuple[int, int] = (64, 64)
    crop: tuple[int, int, int, int] | None = None
    act_bits: int = 4
    calibration: str = "percentile"
    mode: str = "locc"
    compare: bool = False
    t_max: int = 512
    device: str = "cpu"
    precision: str = "float64"
    seed: int = 0
    force: bool = False  # run on Lava even when the estimated time is impractical


@dataclass
class FrameRecord:
    """One frame of one SNN run, next to the QANN."""

    index: int
    timesteps: int
    converged: bool
    max_abs_err: float
    level_mismatch: float
    ops: FrameOps


@dataclass
class StreamResult:
    graph: ir.SpikingGraph
    ann_macs: dict[str, int]  # per layer, one dense pass
    runs: dict[str, list[FrameRecord]] = field(default_factory=dict)  # per mode
    qann_cosine_to_ann: float = float("nan")
    fixed_cosine_to_qann: float | None = None  # --precision fixed: integer vs float QANN outputs


def load_frames(config: StreamConfig) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB frames in [0, 1] from the synthetic generator or a video."""
    h, w = config.input_size
    if config.source == "synthetic":
        if config.crop is not None:
            raise VideoError("--crop applies to a video, not to the synthetic data")
        video = synthetic_video(config.frames, h, w, seed=config.seed)
    else:
        video = read_video(config.source, config.start, config.frames, config.crop, (h, w))
    frames = torch.from_numpy(video)
    if not torch.isfinite(frames).all():
        raise VideoError(f"{config.source}: frames contain NaN or infinite values")
    return frames


def _record(ref: FrameResult, res: FrameResult) -> FrameRecord:
    err = (res.output - ref.output).abs().max().item()
    total = sum(v.numel() for v in ref.levels.values())
    differ = sum(int((res.levels[k] != v).sum()) for k, v in ref.levels.items())
    return FrameRecord(res.index, res.timesteps, res.converged, err, differ / total, res.ops)


def stream_compare(config: StreamConfig) -> StreamResult:
    """Convert the model, stream the frames through QANN and SNN (one or both modes), compare."""
    frames = normalise(load_frames(config).double(), config.model)
    net = convert_model(config.model, frames, config.act_bits, config.seed, config.weights,
                        config.calibration)
    dtype, fixed = PRECISIONS[config.precision], config.precision == "fixed"
    modes = ["reset", "locc"] if config.compare else [config.mode]
    batch = [f[None] for f in frames]
    graph, inputs, decode = net.graph, batch, (lambda y: y)
    if fixed:
        fx = to_fixed_point(net.graph, pixel_unit(config.model))
        graph, inputs, decode = fx.graph, [fx.encode(f) for f in batch], fx.decode
    if config.backend == "lava":
        check_lava_run(graph, len(batch) * len(modes), config.force)
    result = StreamResult(graph, dense_macs(graph), {m: [] for m in modes})
    reference = run_stream(lower(graph, "torch", device=config.device, dtype=dtype), inputs, "reset")
    sims = [lower(graph, config.backend, device=config.device, dtype=dtype, fixed_point=fixed)
            for _ in modes]
    streams = [run_stream(sim, inputs, mode, config.t_max, OpCounter(graph, config.device))
               for sim, mode in zip(sims, modes, strict=True)]
    cosines, fixed_cosines = [], []
    try:
        for frame, ref, *simulated in tqdm(zip(batch, reference, *streams, strict=True), total=len(batch),
                                           desc="frames", disable=None, leave=False):
            for mode, res in zip(modes, simulated, strict=True):
                result.runs[mode].append(_record(ref, res))
            qann_out = decode(ref.output.double().cpu()).flatten(1)
            with torch.no_grad():
                cosines.append(F.cosine_similarity(net.ann(frame).flatten(1), qann_out).item())
                if fixed:
                    fixed_cosines.append(F.cosine_similarity(net.qann(frame).flatten(1), qann_out).item())
    finally:
        for sim in sims:
            sim.close()
    result.qann_cosine_to_ann = sum(cosines) / len(cosines)
    if fixed:
        result.fixed_cosine_to_qann = sum(fixed_cosines) / len(fixed_cosines)
    return result
