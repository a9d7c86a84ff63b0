"""The `stream` task: QANN and SNN on the same frames, compared frame by frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from backends.registry import lower
from evals.synthetic import synthetic_video
from vistream_neuro.pipeline import convert_model, normalise
from vistream_neuro.streaming import run_stream
from vistream_neuro.video import VideoError, read_video

PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


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
    t_max: int = 512
    device: str = "cpu"
    precision: str = "float64"
    seed: int = 0


@dataclass
class FrameRow:
    index: int
    timesteps: int
    converged: bool
    spikes: int
    max_abs_err: float
    level_mismatch: float


@dataclass
class StreamResult:
    rows: list[FrameRow]
    spikes_by_layer: dict[str, int]
    qann_cosine_to_ann: float


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


def stream_compare(config: StreamConfig) -> StreamResult:
    """Convert the model, stream the frames through QANN (reference) and SNN, compare."""
    frames = normalise(load_frames(config).double(), config.model)
    net = convert_model(config.model, frames, config.act_bits, config.seed, config.weights,
                        config.calibration)
    dtype = PRECISIONS[config.precision]
    qann = lower(net.graph, "torch", device=config.device, dtype=dtype)
    snn = lower(net.graph, config.backend, device=config.device, dtype=dtype)
    batch = [f[None] for f in frames]
    rows, spikes_by_layer, cosines = [], {}, []
    reference = run_stream(qann, batch, "reset")
    simulated = run_stream(snn, batch, config.mode, config.t_max)
    for frame, ref, res in tqdm(zip(batch, reference, simulated, strict=True), total=len(batch),
                                desc="frames", disable=None, leave=False):
        err = (res.output - ref.output).abs().max().item()
        total = sum(v.numel() for v in ref.levels.values())
        differ = sum(int((res.levels[k] != v).sum()) for k, v in ref.levels.items())
        rows.append(FrameRow(res.index, res.timesteps, res.converged, res.total_spikes, err,
                             differ / total))
        for name, count in res.spikes.items():
            spikes_by_layer[name] = spikes_by_layer.get(name, 0) + count
        with torch.no_grad():
            ann_out = net.ann(frame).flatten(1)
        cosines.append(F.cosine_similarity(ann_out, ref.output.double().cpu().flatten(1)).item())
    return StreamResult(rows, spikes_by_layer, sum(cosines) / len(cosines))
