"""The `stream` task, and the comparison every task runs: QANN (reference) and SNN runs on the same
frames through the library's runner (:class:`vistream_neuro.runner.Lockstep`).

With ``compare`` the dense ANN, the QANN, ``reset`` and ``locc`` run on the same frames, so their
figures come from one process.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evals.data.synthetic import synthetic_video
from evals.harness.config import EvalConfig
from vistream_neuro import calibration
from vistream_neuro.diagnostics import warn
from vistream_neuro.pipeline import Converted, convert_model, normalise
from vistream_neuro.runner import Lockstep, StreamResult, comparison_runs
from vistream_neuro.video import VideoError, read_video


@dataclass(frozen=True)
class StreamOptions:
    frame_stride: int = 1  # use every k-th frame of the source


def stream_options(config: EvalConfig) -> StreamOptions:
    return config.options_for("stream", StreamOptions())


def load_frames(config: EvalConfig) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB frames in [0, 1] from the synthetic generator or a video."""
    h, w = config.input_size
    stride = stream_options(config).frame_stride
    if config.source == "synthetic":
        if config.crop is not None:
            raise VideoError("--crop applies to a video, not to the synthetic data")
        video = synthetic_video(config.frames * stride, h, w, seed=config.seed)
    else:
        count = None if config.frames is None else config.frames * stride
        video = read_video(config.source, config.start, count, config.crop, (h, w))
    frames = torch.from_numpy(video[::stride])
    if not torch.isfinite(frames).all():
        raise VideoError(f"{config.source}: frames contain NaN or infinite values")
    return frames


def lockstep(net: Converted, config: EvalConfig, frames_total: int) -> Lockstep:
    """The runner of ``config``'s comparison for ``net``."""
    runs = comparison_runs(net, config.execution, compare=config.compare, all_schedules=config.all_schedules,
                           sigma_delta_factor=config.sigma_delta)
    return Lockstep(net, runs, config.backend, input_deadband=config.input_deadband,
                    frames_total=frames_total, record=config.mode if config.hw_sim else None)


def convert(config: EvalConfig, inputs: torch.Tensor, spatial: bool = False) -> Converted:
    """``config``'s model converted, calibrated on the normalised ``inputs``; a calibration file made
    at another input size is used as saved, with a warning (its scales saw other statistics)."""
    if config.weights is not None and calibration.is_calibration_file(config.weights):
        made = tuple(calibration.calibration_meta(config.weights).get("input_size") or ())
        if made and made != tuple(inputs.shape[-2:]):
            warn(f"--weights {config.weights}: calibrated at {made[0]}x{made[1]}, used at "
                 f"{inputs.shape[-2]}x{inputs.shape[-1]}; its scales may not fit this input size")
    distill = None if config.stability_weight is None else calibration.DistillConfig(
        seed=config.seed, stability=config.stability_weight)
    return convert_model(config.model, inputs, config.neuron_bounds, config.seed, config.weights,
                         config.calibration, spatial, norm=config.input_norm, distill_config=distill)


def stream_compare(config: EvalConfig) -> StreamResult:
    """Convert the model, stream the frames through QANN and SNN (one or both modes), compare."""
    frames = normalise(load_frames(config).double(), config.model, config.input_norm)
    runner = lockstep(convert(config, frames), config, len(frames))
    for _ in runner.run(frames):
        pass
    return runner.finish()
