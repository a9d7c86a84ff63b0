"""The `stream` task: QANN (reference) and SNN on the same frames, compared frame by frame.

With ``compare`` both streaming modes run in lockstep with the QANN, so ANN, QANN, ``reset``
and ``locc`` figures come from one process and the same frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from backends.lava_estimate import check_lava_run
from backends.registry import lower
from backends.torch_backend import integer_network
from evals.synthetic import synthetic_video
from vistream_neuro import ir
from vistream_neuro.accounting import SCHEDULES, FrameOps, OpCounter, dense_macs
from vistream_neuro.fixed_point import exact_dtype
from vistream_neuro.pipeline import Converted, convert_model, normalise, pixel_unit
from vistream_neuro.sigma_delta import to_sigma_delta
from vistream_neuro.streaming import FrameResult, hold_small_changes, run_stream
from vistream_neuro.video import VideoError, read_video

# fixed: the integer graph (vistream_neuro.fixed_point) in float32, exact while its sums stay below
# 2^24 (checked per sequence; float64 where they may not), as in Lava fixed_pt
PRECISIONS = {"float64": torch.float64, "float32": torch.float32, "fixed": torch.float32}
SIGMA_DELTA = "sigma_delta"
SCHEDULE_CHOICES = (*SCHEDULES, "all")  # all: LoCC in every schedule and encoding, side by side
# the extra LoCC runs of --schedule all: run name -> (schedule, spike encoding)
SCHEDULE_RUNS = {"layerwise": ("layerwise", "ternary"), "layerwise_graded": ("layerwise", "graded")}


@dataclass
class StreamConfig:
    backend: str
    task: str = "stream"
    model: str = "tiny"
    weights: Path | None = None
    source: str | Path = "synthetic"
    start: int = 0
    frames: int | None = 10  # None: whole sequences (tracking tasks)
    input_size: tuple[int, int] | None = (64, 64)  # None: the sequences' own size
    crop: tuple[int, int, int, int] | None = None
    act_bits: int = 4
    calibration: str = "percentile"
    mode: str = "locc"
    compare: bool = False
    t_max: int = 512
    device: str = "cpu"
    precision: str = "fixed"
    seed: int = 0
    force: bool = False  # run on Lava even when the estimated time is impractical
    # tracking: "gt" boxes (ViStream's protocol), "det" (det.txt) or "hog" (OpenCV's people
    # detector); None: gt, or hog for a plain video
    detections: str | None = None
    det_noise: float = 0.0  # tracking: jitter of ground-truth detections, fraction of box size
    frame_stride: int = 1  # stream: use every k-th frame of the source
    sigma_delta: float | None = None  # also run the sigma-delta baseline, threshold = factor * scale
    schedule: str = "timestep"  # timestep, layerwise, or all (every schedule and encoding)
    spikes: str = "ternary"  # ternary: one event per quantum; graded: one per message
    hw_map: str | None = None  # hardware preset to map the graph onto (vistream_neuro.hardware)
    input_deadband: int = 0  # 8-bit levels an input value must move by before it is sent again
    hysteresis: float = 0.0  # steps beyond its rounding band a level's input must move (ir.Neuron)


class RunSpec(NamedTuple):
    """One simulated run of a comparison: how it streams and counts, and on which graph."""

    mode: str  # streaming mode: locc or reset
    schedule: str
    spikes: str
    graph: ir.SpikingGraph
    integer: bool  # runs the integer graph on integer frames (--precision fixed)


@dataclass
class FrameRecord:
    """One frame of one SNN run, next to the QANN."""

    index: int
    timesteps: int
    converged: bool
    max_abs_err: float
    level_mismatch: float
    ops: FrameOps
    sequence: str = ""


@dataclass
class StreamResult:
    graph: ir.SpikingGraph
    ann_macs: dict[str, int]  # per layer, one dense pass
    runs: dict[str, list[FrameRecord]] = field(default_factory=dict)  # per mode
    qann_cosine_to_ann: float = float("nan")
    fixed_cosine_to_qann: float | None = None  # --precision fixed: integer vs float QANN outputs
    float_qann_cosine_to_ann: float | None = None  # --precision fixed: the float QANN's, for the cost
    fixed_dtype: str | None = None  # --precision fixed: float32, or float64 where sums may reach 2^24
    sigma_delta_cosine_to_ann: float | None = None  # the sigma-delta baseline's outputs vs the ANN's
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # task metrics per network
    sequences: list[dict] = field(default_factory=list)  # per sequence: name, frames, metrics
    # network -> sequence -> tracker output (MOT rows, or MOTS rows with masks)
    tracks: dict[str, dict[str, np.ndarray | list]] = field(default_factory=dict)


def load_frames(config: StreamConfig) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB frames in [0, 1] from the synthetic generator or a video."""
    h, w = config.input_size
    if config.source == "synthetic":
        if config.crop is not None:
            raise VideoError("--crop applies to a video, not to the synthetic data")
        video = synthetic_video(config.frames * config.frame_stride, h, w, seed=config.seed)
    else:
        count = None if config.frames is None else config.frames * config.frame_stride
        video = read_video(config.source, config.start, count, config.crop, (h, w))
    frames = torch.from_numpy(video[::config.frame_stride])
    if not torch.isfinite(frames).all():
        raise VideoError(f"{config.source}: frames contain NaN or infinite values")
    return frames


def _record(ref: FrameResult, res: FrameResult, sequence: str = "") -> FrameRecord:
    err = (res.output - ref.output).abs().max().item()
    total = sum(v.numel() for v in ref.levels.values())
    differ = sum(int((res.levels[k] != v).sum()) for k, v in ref.levels.items())
    return FrameRecord(res.index, res.timesteps, res.converged, err, differ / total, res.ops, sequence)


def _baseline_record(ann: torch.Tensor, res: FrameResult, sequence: str = "") -> FrameRecord:
    """A run with no QANN to equal (the sigma-delta baseline): its deviation from the ANN, no levels."""
    err = (res.output.double().cpu() - ann).abs().max().item()
    return FrameRecord(res.index, res.timesteps, res.converged, err, float("nan"), res.ops, sequence)


def stream_compare(config: StreamConfig) -> StreamResult:
    """Convert the model, stream the frames through QANN and SNN (one or both modes), compare."""
    frames = normalise(load_frames(config).double(), config.model)
    net = convert_model(config.model, frames, config.act_bits, config.seed, config.weights,
                        config.calibration)
    runner = Lockstep(net, config, len(frames))
    for _ in runner.run(frames):
        pass
    return runner.finish()


@dataclass
class LockstepFrame:
    """One frame through every network: ANN, QANN (reference) and SNN outputs, in float units."""

    ann: torch.Tensor
    qann: torch.Tensor
    snn: dict[str, torch.Tensor]  # per mode


class Lockstep:
    """Runs the dense ANN, the QANN reference and the SNN modes on the same frames, frame by frame.

    With ``--precision fixed`` the QANN and SNN run the integer graph on integer frames and their
    outputs are decoded back to float units.  One instance serves several sequences: each call of
    :meth:`run` starts fresh simulators (no state crosses sequences).  Every frame's SNN-vs-QANN
    record goes into :attr:`result`; :meth:`finish` completes it.
    """

    def __init__(self, net: Converted, config: StreamConfig, frames_total: int) -> None:
        self.net, self.config = net, config
        self.dtype, self.fixed = PRECISIONS[config.precision], config.precision == "fixed"
        self.graph, self._encode, self._decode = net.graph, (lambda x: x), (lambda y: y)
        if self.fixed:
            fx = integer_network(net, config.model)
            self.graph, self._encode, self._decode = fx.graph, fx.encode, fx.decode
        if config.hysteresis:
            self.graph = ir.with_hysteresis(self.graph, config.hysteresis)
        schedule = "timestep" if config.schedule == "all" else config.schedule
        self.specs = {m: RunSpec(m, schedule, config.spikes, self.graph, self.fixed)
                      for m in (["reset", "locc"] if config.compare else [config.mode])}
        if config.schedule == "all":
            self.specs |= {name: RunSpec("locc", *pair, self.graph, self.fixed)
                           for name, pair in SCHEDULE_RUNS.items()}
        if config.sigma_delta is not None:  # no QANN to equal: the float graph, on float frames
            self.specs[SIGMA_DELTA] = RunSpec("locc", "timestep", "graded",  # it streams differences
                                              to_sigma_delta(net.graph, config.sigma_delta), False)
        self.modes = list(self.specs)
        if config.backend == "lava":
            check_lava_run(self.graph, frames_total * len(self.modes), config.force)
        output = self.graph.node(self.graph.output)
        self._payload = (torch.as_tensor(output.output_scale, dtype=torch.float64)
                         if isinstance(output, ir.Neuron) else None)
        self._cosines: list[float] = []
        self._fixed_cosines: list[float] = []
        self._float_cosines: list[float] = []
        self._sd_cosines: list[float] = []
        self.result = StreamResult(self.graph, dense_macs(self.graph), {m: [] for m in self.modes})

    def run(self, frames: torch.Tensor, desc: str = "frames", sequence: str = "") -> Iterator[LockstepFrame]:
        """``frames``: normalised network inputs ``(T, C, H, W)``."""
        config, batch = self.config, [f[None] for f in frames]
        held = batch
        if config.input_deadband:  # half a level above the band: 8-bit steps compare safely
            band = (config.input_deadband + 0.5) * torch.as_tensor(pixel_unit(config.model)).reshape(-1, 1, 1)
            held = list(hold_small_changes(batch, band.to(batch[0])))
        inputs = [self._encode(f) for f in held]
        dtype = self.dtype
        if self.fixed:  # float32 unless a sum could reach 2^24 (then float64: still exact)
            dtype = exact_dtype(self.graph, 2 * max(float(x.abs().max()) for x in inputs))
            self.result.fixed_dtype = str(dtype).removeprefix("torch.")
        # levels with hysteresis remember the last frame: the reference streams as the SNN does
        reference = run_stream(lower(self.graph, "torch", device=config.device, dtype=dtype), inputs,
                               "locc" if config.hysteresis else "reset")
        specs = list(self.specs.values())
        # a float-graph run beside fixed ones (the sigma-delta baseline) takes float64 frames
        feeds = [(dtype, inputs) if spec.integer or not self.fixed else (torch.float64, held)
                 for spec in specs]
        sims = [lower(spec.graph, config.backend, device=config.device, dtype=run_dtype,
                      fixed_point=spec.integer, schedule=spec.schedule)
                for spec, (run_dtype, _) in zip(specs, feeds, strict=True)]
        streams = [run_stream(sim, feed, spec.mode, config.t_max,
                              OpCounter(spec.graph, config.device, spec.spikes, spec.schedule))
                   for sim, spec, (_, feed) in zip(sims, specs, feeds, strict=True)]
        try:
            for frame, seen, ref, *simulated in tqdm(zip(batch, held, reference, *streams, strict=True),
                                                     total=len(batch), desc=desc, disable=None, leave=False):
                qann = self._decode(self._readout(ref))
                with torch.no_grad():
                    ann = self.net.ann(frame)
                    self._cosines.append(F.cosine_similarity(ann.flatten(1), qann.flatten(1)).item())
                    if self.fixed:
                        float_qann = self.net.qann(seen).flatten(1)
                        self._fixed_cosines.append(F.cosine_similarity(float_qann, qann.flatten(1)).item())
                        self._float_cosines.append(F.cosine_similarity(float_qann, ann.flatten(1)).item())
                runs = dict(zip(self.modes, simulated, strict=True))
                snn = {}
                for mode, res in runs.items():
                    if mode == SIGMA_DELTA:
                        snn[mode] = res.output.double().cpu()
                        self.result.runs[mode].append(_baseline_record(ann, res, sequence))
                        self._sd_cosines.append(
                            F.cosine_similarity(ann.flatten(1), snn[mode].flatten(1)).item())
                    else:
                        snn[mode] = self._decode(self._readout(res))
                        self.result.runs[mode].append(_record(ref, res, sequence))
                yield LockstepFrame(ann, qann, snn)
        finally:
            for sim in sims:
                sim.close()

    def _readout(self, res: FrameResult) -> torch.Tensor:
        """The output the heads see: the output neurons' level counts times their payload.

        A spiking output is an integer count of quanta; reading it as that count (not as the float
        sum of its spikes, which differs from the QANN's value by rounding, ~1e-14) makes the SNN's
        features bit-identical to the QANN's whenever their levels agree, so heads with continuous
        outputs (keypoint positions, scores) give identical results too.
        """
        if self._payload is None:
            return res.output.double().cpu()
        payload = self._payload
        if payload.ndim == 1:
            payload = payload.reshape(-1, *([1] * (res.output.ndim - 2)))
        return res.levels[self.graph.output].double().cpu() * payload

    def finish(self) -> StreamResult:
        """The result with the mean cosines of QANN to ANN outputs and (fixed only) of the integer
        to the float QANN and of the float QANN to the ANN (the integer graph's cost is the gap)."""
        self.result.qann_cosine_to_ann = sum(self._cosines) / len(self._cosines)
        if self.fixed:
            self.result.fixed_cosine_to_qann = sum(self._fixed_cosines) / len(self._fixed_cosines)
            self.result.float_qann_cosine_to_ann = sum(self._float_cosines) / len(self._float_cosines)
        if self._sd_cosines:
            self.result.sigma_delta_cosine_to_ann = sum(self._sd_cosines) / len(self._sd_cosines)
        return self.result
